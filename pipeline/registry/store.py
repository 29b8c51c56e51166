"""The MLflow store: where it is, checking it before use, and the registry lock.

The store is the SQLite file ``mlflow.db`` in the workspace with artifacts under ``mlruns/``
beside it, unless ``MLFLOW_TRACKING_URI`` points elsewhere (another file, or a tracking server).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

MODEL_NAME = "resunet1d"
EXPERIMENT = "raman-baseline"
CHALLENGER, PRODUCTION, FAST = "challenger", "production", "fast"


class RegistryError(RuntimeError):
    """The MLflow store or registry cannot do what was asked; the message says why."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``mlflow.db`` in the workspace (the current dir)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def connect(uri: str | None = None, create: bool = False, lock_timeout: float = 10.0):
    """Check the store, point mlflow at it and return an ``MlflowClient``.

    A missing (unless ``create``), locked or corrupt SQLite file, or an unreachable server,
    raises :class:`RegistryError` before mlflow touches anything.
    """
    uri = uri or tracking_uri()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///")), create, lock_timeout)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(uri, uri)


def _check_sqlite(path: Path, create: bool, lock_timeout: float) -> None:
    if not path.exists():
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        raise RegistryError(
            f"no MLflow store at {path}: run the pipeline first (bash scripts/main.sh), "
            "or set MLFLOW_TRACKING_URI"
        )
    with path.open("rb") as f:
        header = f.read(16)
    if header and header != b"SQLite format 3\x00":
        raise RegistryError(f"{path} is not an SQLite database (corrupt?); move it aside")
    try:
        con = sqlite3.connect(path, timeout=lock_timeout)
        try:
            con.execute("BEGIN IMMEDIATE")  # needs the write lock
            con.execute("ROLLBACK")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise RegistryError(
                f"{path} is locked by another process (waited {lock_timeout:g} s); "
                "try again when it ends"
            ) from exc
        raise RegistryError(f"{path} cannot be read: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise RegistryError(f"{path} is corrupt ({exc}); move it aside") from exc


def _check_server(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"MLflow tracking server {uri} is unreachable: {exc}") from exc


@contextlib.contextmanager
def registry_lock(uri: str | None = None):
    """Serialise registrations and alias moves on a local SQLite store across processes."""
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield  # a tracking server serialises its own writes
        return
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    with lock_path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def experiment_id(client) -> str:
    """The project's experiment, with its artifacts under ``mlruns/`` beside ``mlflow.db``."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=artifact_root())
    except Exception:  # created meanwhile by a concurrent run
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


def artifact_root() -> str | None:
    """Where new experiments keep artifacts: ``mlruns/`` beside a SQLite store, else None."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None  # a tracking server decides


# ---------------------------------------------------------------------------- lookups


def production_version(client) -> str | None:
    """The version behind ``production``, or None."""
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, PRODUCTION).version)
    except Exception:
        return None


def find_version_by_tag(client, key: str, value: str) -> str | None:
    """The registered version carrying tag ``key=value``, if any."""
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    except Exception:
        return None
    for mv in versions:
        if mv.tags.get(key) == value:
            return str(mv.version)
    return None
