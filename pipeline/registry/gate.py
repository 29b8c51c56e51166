"""The promotion gate: a challenger re-evaluated now against production and arPLS/asPLS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import numpy as np

from pipeline.inference import OnnxBaseline
from pipeline.metrics import baseline_errors
from pipeline.registry.store import MODEL_NAME, RegistryError, production_version


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
