"""The MLflow store: where it is, checking it before use, the registry lock, and lookups.

The store is the SQLite file ``mlflow.db`` in the workspace with artifacts under ``mlruns/``
beside it, unless ``MLFLOW_TRACKING_URI`` points elsewhere (another file, or a tracking server).

The registry never guesses: a lookup answers None only when what it looks for truly does not
exist (MLflow says so with its own error); any other failure of the store (locked, unreadable,
unreachable) raises :class:`RegistryError` with one line naming the store and the problem.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.errors import one_line
from pipeline.files import LockTimeout, file_lock

MODEL_NAME = "resunet1d"
EXPERIMENT = "raman-baseline"
CHALLENGER, PRODUCTION, FAST = "challenger", "production", "fast"

_SQLITE = "sqlite:///"
_HEADER = b"SQLite format 3\x00"


class RegistryError(RuntimeError):
    """The MLflow store or registry cannot do what was asked; the message says why, on one line."""


# ----------------------------------------------------------------------------- the store


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``mlflow.db`` in the workspace (the current dir)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"{_SQLITE}{Path('mlflow.db').resolve()}"


def store_name(uri: str) -> str:
    """How messages name a store: the file of a SQLite store, else its URI."""
    return uri.removeprefix(_SQLITE) if uri.startswith(_SQLITE) else uri


def connect(
    uri: str | None = None, create: bool = False, lock_timeout: float = 10.0, write: bool = False
):
    """Check the store, point mlflow at it and return an ``MlflowClient``.

    Parameters
    ----------
    uri
        The store; :func:`tracking_uri` when None.
    create
        Whether a missing SQLite store (no file, a 0-byte file, or a database without MLflow's
        tables) may be created. Its schema is created under :func:`registry_lock`, so that two
        processes starting on a new store never migrate it at once.
    lock_timeout
        Seconds to wait for another process's write lock on a SQLite store.
    write
        Whether the caller will write (move an alias): a SQLite store, or its folder (where
        SQLite writes its journal), that cannot be written is refused before anything is
        tried. Implied by ``create``.

    Returns
    -------
    mlflow.MlflowClient
        A client for both tracking and the model registry of ``uri``.

    Raises
    ------
    RegistryError
        A missing store (unless ``create``), a locked, unreadable or corrupt SQLite file, a
        read-only one when writing, or an unreachable server, before mlflow touches anything.
    """
    uri = uri or tracking_uri()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per model load
    _quiet_store_errors()
    if uri.startswith(_SQLITE):
        path = Path(store_name(uri))
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        if create or write:
            _check_writable(path)
        if create:
            with registry_lock(uri):
                if _check_sqlite(path, create, lock_timeout):
                    _create_schema(uri)
        else:
            _check_sqlite(path, create, lock_timeout)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(uri, uri)


def _quiet_store_errors() -> None:
    """Keep MLflow from logging a traceback for a store error it raises to us anyway.

    MLflow's SQL store logs every SQLAlchemy error with its traceback (a read-only database
    gave 70 lines) before raising it; the caller turns the raised error into one line
    (:func:`store_errors`), so the log would only bury that line.
    """
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def _check_writable(path: Path) -> None:
    """Raise :class:`RegistryError` if the SQLite store ``path`` or its folder is read-only."""
    for what, target in (("file", path), ("folder", path.parent)):
        if target.exists() and not os.access(target, os.W_OK):
            raise RegistryError(
                f"the MLflow store {path} is read-only (its {what} {target} cannot be written): "
                "nothing was changed; make it writable, or work on a copy"
            )


def _check_sqlite(path: Path, create: bool, lock_timeout: float) -> bool:
    """Whether the SQLite store at ``path`` is new (to be created); raise if it is unusable."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        if create:
            return True
        empty = " (an empty file)" if path.exists() else ""
        raise RegistryError(
            f"no MLflow store at {path}{empty}: run the pipeline first (bash scripts/main.sh), "
            "or set MLFLOW_TRACKING_URI"
        )
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise RegistryError(f"the MLflow store {path} cannot be read: {one_line(exc)}") from exc
    if header != _HEADER:
        raise RegistryError(f"{path} is not an SQLite database (corrupt?); move it aside")
    try:
        con = sqlite3.connect(path, timeout=lock_timeout)
        try:
            con.execute("BEGIN IMMEDIATE")  # needs the write lock
            con.execute("ROLLBACK")
            query = "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
            has_schema = con.execute(query).fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise RegistryError(
                f"the MLflow store {path} is locked by another process (waited "
                f"{lock_timeout:g} s); try again when it ends"
            ) from exc
        raise RegistryError(f"the MLflow store {path} cannot be read: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise RegistryError(f"{path} is corrupt ({exc}); move it aside") from exc
    if not has_schema and not create:
        raise RegistryError(
            f"no MLflow store at {path} (an SQLite database without MLflow's tables): run the "
            "pipeline first (bash scripts/main.sh), or set MLFLOW_TRACKING_URI"
        )
    return not has_schema


def _create_schema(uri: str) -> None:
    """Let MLflow create (and migrate to its newest revision) a new store's schema.

    Both of MLflow's stores create missing tables when first instantiated; a first call of
    each does that here, while the caller holds :func:`registry_lock`.
    """
    client = mlflow.MlflowClient(uri, uri)
    try:
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except Exception as exc:
        raise RegistryError(
            f"cannot create the MLflow store {store_name(uri)}: {one_line(exc)}"
        ) from exc


def _check_server(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"MLflow tracking server {uri} is unreachable: {exc}") from exc


_held = threading.local()  # the registry locks this thread holds, with their depth


@contextlib.contextmanager
def registry_lock(uri: str | None = None, timeout: float | None = None) -> Iterator[None]:
    """Serialise registrations, alias moves and schema creation on a local SQLite store.

    An exclusive :func:`pipeline.files.file_lock` on ``<store>.lock`` beside the store, held
    by this thread and no other thread or process; taking it again in the thread that holds it
    does not wait. A tracking server serialises its own writes: nothing is locked then.

    Parameters
    ----------
    uri
        The store; :func:`tracking_uri` when None.
    timeout
        Seconds to wait for another holder; None waits as long as it takes.

    Raises
    ------
    RegistryError
        Another process still holds the lock after ``timeout`` seconds (the message names it).
    """
    uri = uri or tracking_uri()
    if not uri.startswith(_SQLITE):
        yield
        return
    lock_path = Path(store_name(uri) + ".lock").resolve()
    depth = getattr(_held, "depth", None)
    if depth is None:
        depth = _held.depth = {}
    if depth.get(lock_path):
        depth[lock_path] += 1
        try:
            yield
        finally:
            depth[lock_path] -= 1
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock_path, timeout=timeout, holder=command_line()))
        except LockTimeout as exc:
            raise RegistryError(f"the MLflow store {store_name(uri)} is busy: {exc}") from exc
        depth[lock_path] = 1
        try:
            yield
        finally:
            del depth[lock_path]


def command_line() -> str:
    """The command that is running, for the alias log and the lock file."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def artifact_root(uri: str | None = None) -> str | None:
    """Where new experiments keep artifacts: ``mlruns/`` beside a SQLite store, else None.

    ``uri`` is the store (:func:`tracking_uri` when None).
    """
    uri = uri or tracking_uri()
    if uri.startswith(_SQLITE):
        return (Path(store_name(uri)).parent / "mlruns").resolve().as_uri()
    return None  # a tracking server decides


def experiment_id(client, name: str = EXPERIMENT) -> str:
    """The id of the experiment ``name``, created when missing (artifacts in ``mlruns/``).

    ``name`` is the project's experiment by default; the benchmarks log to their own. A new
    experiment keeps its artifacts under ``mlruns/`` beside ``mlflow.db`` (:func:`artifact_root`).
    """
    with store_errors(client, f"finding the experiment {name}"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(
                name, artifact_location=artifact_root(client.tracking_uri)
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return client.get_experiment_by_name(name).experiment_id  # made meanwhile


# ---------------------------------------------------------------------------- lookups

# MLflow's answer for an alias that is not set (``SqlAlchemyStore.get_model_version_by_alias``,
# and the same error passed on by a tracking server, prefixed with its code):
# INVALID_PARAMETER_VALUE with this message
_NO_ALIAS = re.compile(r"^(INVALID_PARAMETER_VALUE: )?Registered model alias \S+ not found")


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` is MLflow saying that a registered model, version or alias does not exist.

    ``RESOURCE_DOES_NOT_EXIST`` (no such model or version), or the ``INVALID_PARAMETER_VALUE``
    MLflow 3 raises for an alias that is not set. Anything else (a locked database, a server
    that does not answer) is not "missing".
    """
    if not isinstance(exc, MlflowException):
        return False
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    return exc.error_code == "INVALID_PARAMETER_VALUE" and bool(_NO_ALIAS.match(exc.message))


def store_error(client, doing: str, exc: BaseException) -> RegistryError:
    """A :class:`RegistryError` for ``exc``, raised by the store of ``client`` while ``doing``."""
    if isinstance(exc, RegistryError):
        return exc
    return RegistryError(
        f"{doing} failed on the MLflow store {store_name(client.tracking_uri)}: {one_line(exc)}"
    )


@contextlib.contextmanager
def store_errors(client, doing: str) -> Iterator[None]:
    """Turn any exception while ``doing`` into a one-line :class:`RegistryError` (see above)."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:
        raise store_error(client, doing, exc) from exc


def alias_version(client, alias: str) -> str | None:
    """The version behind ``alias``, or None when the alias (or the model) does not exist.

    Raises
    ------
    RegistryError
        The store failed (locked, unreadable, unreachable): the answer is unknown.
    """
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except Exception as exc:
        if is_missing(exc):
            return None
        raise store_error(client, f"reading {MODEL_NAME}@{alias}", exc) from exc


def production_version(client) -> str | None:
    """The version behind ``production``, or None when there is none (see :func:`alias_version`)."""
    return alias_version(client, PRODUCTION)


def find_version_by_tag(client, key: str, value: str) -> str | None:
    """The registered version carrying tag ``key=value``, or None when no version does.

    Raises
    ------
    RegistryError
        The store failed: whether such a version exists is unknown.
    """
    with store_errors(client, f"searching {MODEL_NAME} for the tag {key}"):
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    for mv in versions:
        if mv.tags.get(key) == value:
            return str(mv.version)
    return None


def model_version(client, version: str):
    """The ``ModelVersion`` ``version`` of the model.

    Raises
    ------
    RegistryError
        No such version (the message says so), or the store failed.
    """
    try:
        return client.get_model_version(MODEL_NAME, str(version))
    except Exception as exc:
        if is_missing(exc):
            raise RegistryError(
                f"{MODEL_NAME} has no version {version} in the MLflow store "
                f"{store_name(client.tracking_uri)}"
            ) from exc
        raise store_error(client, f"reading {MODEL_NAME} v{version}", exc) from exc
