"""MLflow: run tracking, the ``resunet1d`` model registry and the gated promotion.

The only module of the project that imports mlflow. The store is the SQLite file
``mlflow.db`` at the repository root with artifacts under ``mlruns/``, unless
``MLFLOW_TRACKING_URI`` points elsewhere. Model versions move between the aliases
``challenger`` and ``production`` (never the deprecated stages), and every move is recorded
on the version it touches: when, why and by which command.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np

from pipeline.inference import OnnxBaseline
from pipeline.metrics import baseline_errors

MODEL_NAME = "resunet1d"
EXPERIMENT = "raman-baseline"
CHALLENGER, PRODUCTION, FAST = "challenger", "production", "fast"


class RegistryError(RuntimeError):
    """The MLflow store or registry cannot do what was asked; the message says why."""


# ----------------------------------------------------------------------------- the store


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
        return client.create_experiment(EXPERIMENT, artifact_location=_artifact_root())
    except Exception:  # created meanwhile by a concurrent run
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


# ------------------------------------------------------------------------- the pyfunc


class ResUNetBaseline(mlflow.pyfunc.PythonModel):
    """The registered model: ONNX Runtime inside, the one normalisation step around it.

    Input: ``wavenumber`` (L,) and ``intensity`` (N, L) in the user's units.
    Output: ``baseline`` and ``corrected`` (N, L), in the same units.
    """

    def __init__(self, grid: int = 512):
        self.grid = grid  # the length the network was trained on

    def load_context(self, context):  # noqa: D102
        self.model = OnnxBaseline(context.artifacts["onnx"], grid=self.grid)

    def predict(self, context, model_input, params=None):  # noqa: D102
        x, y = _unpack(model_input)
        baseline = self.model.baselines(x, y)
        return {"baseline": baseline, "corrected": y - baseline}


def _unpack(model_input) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(model_input, "to_dict"):  # a DataFrame from a JSON "dataframe_*" request
        model_input = {c: np.stack(model_input[c].to_numpy()) for c in model_input.columns}
    x = np.asarray(model_input["wavenumber"], dtype=np.float64).reshape(-1)
    y = np.atleast_2d(np.asarray(model_input["intensity"], dtype=np.float64))
    if y.shape[-1] != x.size:
        raise ValueError(f"intensity has {y.shape[-1]} points per spectrum, wavenumber {x.size}")
    order = np.argsort(x)
    return x[order], y[..., order]


def signature_and_example(length: int = 512):
    """The pyfunc's signature and a small input example (two spectra)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    f64 = np.dtype("float64")
    signature = ModelSignature(
        inputs=Schema(
            [TensorSpec(f64, (-1,), "wavenumber"), TensorSpec(f64, (-1, -1), "intensity")]
        ),
        outputs=Schema(
            [TensorSpec(f64, (-1, -1), "baseline"), TensorSpec(f64, (-1, -1), "corrected")]
        ),
    )
    x = np.linspace(200.0, 3200.0, length)
    t = (x - x[0]) / (x[-1] - x[0])
    background = 1000 + 800 * np.exp(-2 * t)
    bands = 300 * np.exp(-(((x - 1000) / 8) ** 2)) + 150 * np.exp(-(((x - 1600) / 12) ** 2))
    example = {
        "wavenumber": x,
        "intensity": np.stack([background + bands, 0.5 * background + bands]),
    }
    return signature, example


def pip_requirements() -> list[str]:
    """Explicit, CPU-only requirements of the pyfunc (no torch)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "pandas", "onnxruntime")]


# ----------------------------------------------------------------------------- tracking


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (lists kept as their JSON text)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else value
    return flat


def _artifact_root() -> str | None:
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None  # a tracking server decides


def git_commit(root: Path | None = None) -> str:
    """The workspace's commit, with ``-dirty`` when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, str]:
    """Versions and device, logged with every run."""
    import platform
    from importlib.metadata import version

    env = {"python": platform.python_version(), "platform": platform.platform()}
    for p in ("torch", "numpy", "onnxruntime", "onnx", "mlflow", "pybaselines", "dvc"):
        with contextlib.suppress(Exception):
            env[p] = version(p)
    with contextlib.suppress(Exception):
        import torch

        from pipeline.train import native_bf16, pick_device

        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        env["torch_threads"] = str(torch.get_num_threads())
        env["native_bf16"] = str(native_bf16(pick_device()))
    return env


# ------------------------------------------------------------------- the promotion gate


@dataclass
class Decision:
    """What the gate decided about a challenger, and why."""

    version: str
    promoted: bool
    reason: str
    challenger: dict[str, float]
    production: dict[str, float] | None
    production_version: str | None
    classical: dict[str, dict[str, float]]


def score_version(version: str, x: np.ndarray, observed: np.ndarray, true: np.ndarray):
    """Re-evaluate a registered version on a benchmark set: mean RMSE and MAE."""
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    baseline = model.unwrap_python_model().model.baselines(x, observed)
    e = baseline_errors(baseline, true, observed)
    return {"rmse": float(e["rmse"].mean()), "mae": float(e["mae"].mean())}


def gate(client, version: str, benchmark: dict[str, np.ndarray], classical: dict) -> Decision:
    """Decide whether ``version`` may become production.

    It must beat the current production version and arPLS/asPLS on both RMSE and MAE of the
    same benchmark set, all re-evaluated now (no number is read from logs).
    """
    x = np.arange(benchmark["observed"].shape[1], dtype=np.float64)
    new = score_version(version, x, benchmark["observed"], benchmark["baseline"])
    current = production_version(client)
    old = None
    if current is not None and current != version:
        old = score_version(current, x, benchmark["observed"], benchmark["baseline"])
    failures = []
    for k in ("rmse", "mae"):
        best_name = min(classical, key=lambda m: classical[m][k])
        if not new[k] < classical[best_name][k]:
            failures.append(
                f"{k.upper()} {new[k]:.5f} >= {best_name} {classical[best_name][k]:.5f}"
            )
        if old is not None and not new[k] < old[k]:
            failures.append(f"{k.upper()} {new[k]:.5f} >= production v{current} {old[k]:.5f}")
    promoted = not failures
    if promoted:
        vs = f"production v{current}" if old is not None else "no production version yet"
        reason = f"beats arPLS, asPLS and {vs} on RMSE and MAE"
    else:
        reason = "; ".join(failures)
    return Decision(version, promoted, reason, new, old, current, classical)


# ------------------------------------------------------------------------- alias moves


def production_version(client) -> str | None:
    """The version behind ``production``, or None."""
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, PRODUCTION).version)
    except Exception:
        return None


def move_alias(client, alias: str, version: str, reason: str, command: str) -> None:
    """Point ``alias`` at ``version``; record the move on the versions involved."""
    previous = None
    with contextlib.suppress(Exception):
        previous = str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    _append_log(
        client,
        version,
        {
            "alias": alias,
            "action": "set",
            "at": at,
            "reason": reason,
            "command": command,
            "previous": previous,
        },
    )
    if previous is not None and previous != version:
        _append_log(
            client,
            previous,
            {
                "alias": alias,
                "action": "removed",
                "at": at,
                "reason": reason,
                "command": command,
                "next": version,
            },
        )
    if alias == PRODUCTION:
        history = _production_history(client)
        if not history or history[-1] != version:
            history.append(version)
        client.set_registered_model_tag(MODEL_NAME, "production_history", json.dumps(history))


def promote(client, version: str, reason: str, command: str) -> None:
    """Give ``version`` the ``production`` alias (a person's decision, recorded as such)."""
    client.get_model_version(MODEL_NAME, version)  # raises if there is no such version
    move_alias(client, PRODUCTION, str(version), reason, command)


def rollback(client, reason: str, command: str) -> tuple[str, str]:
    """Move ``production`` back to the version that held it before; return (from, to)."""
    current = production_version(client)
    if current is None:
        raise RegistryError(f"{MODEL_NAME} has no production version to roll back from")
    history = _production_history(client)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(
            f"production v{current} is the first production version: nothing to roll back to"
        )
    target = history[-1]
    client.set_registered_model_tag(MODEL_NAME, "production_history", json.dumps(history))
    move_alias(client, PRODUCTION, target, reason, command)
    return current, target


def _production_history(client) -> list[str]:
    model = client.get_registered_model(MODEL_NAME)
    return json.loads(model.tags.get("production_history", "[]"))


def _append_log(client, version: str, entry: dict) -> None:
    mv = client.get_model_version(MODEL_NAME, version)
    log = json.loads(mv.tags.get("alias_log", "[]"))
    log.append(entry)
    client.set_model_version_tag(MODEL_NAME, version, "alias_log", json.dumps(log))


def command_line() -> str:
    """The command that is running, for the alias log."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


# ------------------------------------------------------------------------ registration


def file_digest(path: Path) -> str:
    """sha256 of a file."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def log_pipeline_run(
    client,
    *,
    params: dict,
    history: list[dict],
    test_metrics: dict,
    figures: Path | None,
    checkpoint: Path,
    onnx_path: Path,
    digests: dict[str, str],
    extra_files: list[Path],
    run_name: str,
    grid: int = 512,
) -> tuple[str, str]:
    """Record one pipeline execution as an MLflow run; return (run id, model uri)."""
    signature, example = signature_and_example(grid)
    with mlflow.start_run(experiment_id=experiment_id(client), run_name=run_name) as run:
        mlflow.log_params(flatten(params))
        for row in history:
            epoch = int(row["epoch"])
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=epoch)
        mlflow.log_metrics(test_metrics)
        mlflow.set_tags(
            {"git_commit": git_commit(), **{f"env.{k}": v for k, v in environment().items()}}
        )
        mlflow.set_tags({f"data.{k}": v for k, v in digests.items()})
        mlflow.log_dict(digests, "data_digests.json")
        if figures is not None and figures.is_dir():
            mlflow.log_artifacts(str(figures), "figures")
        for path in extra_files:
            if path.exists():
                mlflow.log_artifact(str(path))
        mlflow.log_artifact(str(checkpoint), "checkpoint")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ResUNetBaseline(grid),
            artifacts={"onnx": str(onnx_path)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            code_paths=[str(Path(__file__).parent)],
            metadata={
                "execution_provider": "CPUExecutionProvider",
                "onnx_sha256": digests.get("onnx", ""),
            },
        )
    return run.info.run_id, info.model_uri


def register_and_gate(
    client,
    *,
    run_id: str,
    model_uri: str,
    version_tags: dict[str, str],
    benchmark: dict[str, np.ndarray],
    classical: dict[str, dict[str, float]],
    command: str,
) -> Decision:
    """Register a new ``resunet1d`` version and let the gate decide on ``production``.

    The version gets ``challenger``. Call under :func:`registry_lock`. On any failure the
    new version is deleted again, so none is left half-registered.
    """
    with contextlib.suppress(Exception):
        client.create_registered_model(
            MODEL_NAME,
            description="ResUNet-1D baseline estimator for Raman spectra (ONNX, CPU)",
        )
    mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=version_tags)
    version = str(mv.version)
    try:
        _wait_ready(client, version)
        decision = gate(client, version, benchmark, classical)
        move_alias(client, CHALLENGER, version, "newly registered", command)
        client.set_model_version_tag(
            MODEL_NAME,
            version,
            "gate.decision",
            "promoted" if decision.promoted else "refused",
        )
        client.set_model_version_tag(MODEL_NAME, version, "gate.reason", decision.reason)
        if decision.promoted:
            move_alias(client, PRODUCTION, version, f"gate: {decision.reason}", command)
    except BaseException:
        # never leave a half-registered version behind
        with contextlib.suppress(Exception):
            client.delete_model_version(MODEL_NAME, version)
        raise
    for k, v in decision.challenger.items():
        client.log_metric(run_id, f"gate_{k}", v)
    client.set_tag(run_id, "gate.decision", "promoted" if decision.promoted else "refused")
    client.set_tag(run_id, "gate.reason", decision.reason)
    return decision


def _wait_ready(client, version: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while client.get_model_version(MODEL_NAME, version).status != "READY":
        if time.monotonic() > deadline:
            raise RegistryError(f"{MODEL_NAME} v{version} did not become READY")
        time.sleep(0.2)


# ------------------------------------------------------ fine-tuning and the fast variant


def reference_version(client, fallback: str | None = None) -> str:
    """The production version; ``fallback`` (the version just registered) when there is none.

    A workspace whose first model was refused by the gate has no production version yet;
    fine-tuning and the fast variant then start from, and compare with, that model.
    """
    version = production_version(client) or fallback
    if version is None:
        raise RegistryError(f"{MODEL_NAME} has no production version: run the pipeline first")
    return str(version)


def production_checkpoint(client, dest: Path, fallback: str | None = None) -> tuple[str, str, Path]:
    """:func:`reference_version`, its run and its checkpoint downloaded into ``dest``."""
    version = reference_version(client, fallback)
    run_id = client.get_model_version(MODEL_NAME, version).run_id
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="checkpoint", dst_path=str(dest)
        )
    except Exception as exc:
        message = f"cannot download the checkpoint of {MODEL_NAME} v{version}: {exc}"
        raise RegistryError(message) from exc
    found = sorted(Path(path).glob("*.pt"))
    if not found:
        raise RegistryError(f"{MODEL_NAME} v{version}'s run {run_id} holds no checkpoint/*.pt")
    return version, run_id, found[0]


def score_onnx(onnx_path: Path, grid: int, benchmark: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean RMSE and MAE of an ONNX file on a benchmark set, through the registered path."""
    observed = benchmark["observed"]
    x = np.arange(observed.shape[1], dtype=np.float64)
    baseline = OnnxBaseline(onnx_path, grid=grid).baselines(x, observed)
    e = baseline_errors(baseline, benchmark["baseline"], observed)
    return {"rmse": float(e["rmse"].mean()), "mae": float(e["mae"].mean())}


def fast_gate(
    client,
    onnx_path: Path,
    grid: int,
    benchmark: dict[str, np.ndarray],
    max_ratio: float,
    fallback: str | None = None,
) -> Decision:
    """Whether a faster variant may be registered: RMSE within ``max_ratio`` of production's.

    The reference is :func:`reference_version` (production, else ``fallback``).
    Both are scored now, on the same benchmark set; no number is read from logs.
    """
    current = reference_version(client, fallback)
    x = np.arange(benchmark["observed"].shape[1], dtype=np.float64)
    reference = score_version(current, x, benchmark["observed"], benchmark["baseline"])
    new = score_onnx(onnx_path, grid, benchmark)
    ratio = new["rmse"] / reference["rmse"]
    ok = ratio <= max_ratio
    verdict = "within" if ok else "not within"
    reason = (
        f"RMSE {new['rmse']:.5f} = {ratio:.3f} x production v{current}'s {reference['rmse']:.5f}, "
        f"{verdict} the {max_ratio:g} x allowed"
    )
    return Decision("", ok, reason, new, reference, current, {})


def register_alias(
    client, *, run_id: str, model_uri: str, version_tags: dict[str, str], alias: str, why: str
) -> str:
    """Register a new version and give it ``alias`` (not ``production``); return the version."""
    with contextlib.suppress(Exception):
        client.create_registered_model(MODEL_NAME)
    mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=version_tags)
    version = str(mv.version)
    try:
        _wait_ready(client, version)
        move_alias(client, alias, version, why, command_line())
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_model_version(MODEL_NAME, version)
        raise
    return version
