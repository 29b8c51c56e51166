"""The promotion gate: a challenger re-evaluated now against production and arPLS/asPLS.

No number is read from logs: every model compared is scored again, on the same benchmark set,
through the registered inference path. A store that cannot say which version is production
stops the gate (:class:`~pipeline.registry.store.RegistryError`); it never reads as "no
production version yet".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.inference import OnnxBaseline
from pipeline.metrics import mean_errors
from pipeline.registry.pyfunc import load_model
from pipeline.registry.store import MODEL_NAME, RegistryError, production_version


@dataclass
class Decision:
    """What the gate decided about a challenger, and why.

    ``challenger`` and ``production`` hold mean ``{"rmse", "mae"}`` on the benchmark set, in
    the normalised units of the simulated spectra; ``production`` is None when there was no
    production version to compare with.
    """

    version: str
    promoted: bool
    reason: str
    challenger: dict[str, float]
    production: dict[str, float] | None
    production_version: str | None
    classical: dict[str, dict[str, float]]


def score_version(version: str, x: np.ndarray, observed: np.ndarray, true: np.ndarray):
    """Re-evaluate a registered version on a benchmark set: mean RMSE and MAE.

    Parameters
    ----------
    version
        The version of ``resunet1d``.
    x
        The axis (L,), increasing.
    observed, true
        Observed spectra and their true baselines, (N, L).

    Raises
    ------
    RegistryError
        No such version, or the store failed.
    """
    network = load_model(f"models:/{MODEL_NAME}/{version}").unwrap_python_model().model
    return mean_errors(network.baselines(x, observed), true, observed)


def score_onnx(onnx_path: Path, grid: int, benchmark: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean RMSE and MAE of an ONNX file on a benchmark set, through the registered path."""
    observed = benchmark["observed"]
    x = np.arange(observed.shape[1], dtype=np.float64)
    baseline = OnnxBaseline(onnx_path, grid=grid).baselines(x, observed)
    return mean_errors(baseline, benchmark["baseline"], observed)


def gate(client, version: str, benchmark: dict[str, np.ndarray], classical: dict) -> Decision:
    """Decide whether ``version`` may become production.

    It must beat the current production version and arPLS/asPLS on both RMSE and MAE of the
    same benchmark set (``observed`` and true ``baseline``, (N, L)), all re-evaluated now.

    Raises
    ------
    RegistryError
        The store cannot say which version is production, or cannot load a version.
    """
    current = production_version(client)
    x = np.arange(benchmark["observed"].shape[1], dtype=np.float64)
    new = score_version(version, x, benchmark["observed"], benchmark["baseline"])
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


def fast_gate(
    client,
    onnx_path: Path,
    grid: int,
    benchmark: dict[str, np.ndarray],
    max_ratio: float,
    reference: str,
) -> Decision:
    """Whether a faster variant may be registered: RMSE within ``max_ratio`` of ``reference``'s.

    ``reference`` is the version the ``register`` stage recorded (:func:`reference_of`), a
    declared input of the stage, never the live ``production`` alias. Both models are scored
    now, on the same benchmark set.

    Raises
    ------
    RegistryError
        ``reference`` does not exist, or the store failed.
    """
    x = np.arange(benchmark["observed"].shape[1], dtype=np.float64)
    old = score_version(str(reference), x, benchmark["observed"], benchmark["baseline"])
    new = score_onnx(onnx_path, grid, benchmark)
    ratio = new["rmse"] / old["rmse"]
    ok = ratio <= max_ratio
    verdict = "within" if ok else "not within"
    reason = (
        f"RMSE {new['rmse']:.5f} = {ratio:.3f} x reference v{reference}'s {old['rmse']:.5f}, "
        f"{verdict} the {max_ratio:g} x allowed"
    )
    return Decision("", ok, reason, new, old, str(reference), {})


def reference_of(record: Mapping[str, Any]) -> str:
    """The version a registration record names: the fast variant's and fine-tuning's reference.

    The ``reference_version`` the record names when it has one; else production as the
    ``register`` stage left it: the registered version when the gate promoted it, else the
    production version it was compared with, else (no production version yet) the
    registered version itself.

    Parameters
    ----------
    record
        The ``register`` stage's record (``reports/registration.json``).

    Raises
    ------
    RegistryError
        The record names no version.
    """
    if record.get("reference_version"):
        return str(record["reference_version"])
    version = record.get("version")
    if version in (None, ""):
        raise RegistryError("the registration record names no registered version")
    if record.get("promoted"):
        return str(version)
    return str(record.get("production_version") or version)
