"""The promotion gate: a challenger re-evaluated now against production and arPLS/asPLS.

No number is read from logs: every model compared is scored again, on the same benchmark sets,
through the registered inference path, so a production version registered before a benchmark
existed is scored on it like any other. The benchmarks: the simulated test set (``benchmark``:
observed spectra and true baselines), and the real-reference ones (``real``: the semi-real
test set and the RRUFF test pairs, as blocks, :data:`pipeline.metrics.Block`), every error an
RMSE or MAE in units of each spectrum's range. A store that cannot say which version is
production stops the gate (:class:`~pipeline.registry.store.RegistryError`); it never reads as
"no production version yet".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.inference import OnnxBaseline
from pipeline.metrics import BENCHMARKS, Block, benchmark_errors, mean_errors
from pipeline.registry.pyfunc import load_model
from pipeline.registry.store import (
    FAST,
    MODEL_NAME,
    RegistryError,
    alias_version,
    production_version,
    store_errors,
)

SIMULATED = BENCHMARKS[0]  # the name of the simulated test set among the benchmarks

RealBenchmarks = Mapping[str, Sequence[Block]]
"""The real-reference benchmarks by name (``semireal``, ``rruff``): blocks of spectra."""


@dataclass
class Decision:
    """What the gate decided about a challenger, and why.

    ``challenger`` and ``production`` hold mean ``{"rmse", "mae"}`` on the simulated test set;
    ``production`` is None when there was no production version to compare with.
    ``benchmarks`` holds every benchmark's figures, the simulated one included:
    ``{name: {"challenger": {"rmse", "mae"}, "production": {...} or None}}``.
    """

    version: str
    promoted: bool
    reason: str
    challenger: dict[str, float]
    production: dict[str, float] | None
    production_version: str | None
    classical: dict[str, dict[str, float]]
    benchmarks: dict[str, dict[str, dict[str, float] | None]] = field(default_factory=dict)


def network_of(version: str):
    """The network of a registered version (:class:`pipeline.inference.OnnxBaseline`).

    Raises
    ------
    RegistryError
        No such version, or the store failed.
    """
    return load_model(f"models:/{MODEL_NAME}/{version}").unwrap_python_model().model


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
    return mean_errors(network_of(version).baselines(x, observed), true, observed)


def score_all(
    network, benchmark: dict[str, np.ndarray], real: RealBenchmarks | None
) -> dict[str, dict[str, float]]:
    """Mean RMSE and MAE of ``network`` (``baselines(x, y)``) on every benchmark, by name."""
    observed = benchmark["observed"]
    x = np.arange(observed.shape[1], dtype=np.float64)
    scores = {
        SIMULATED: mean_errors(network.baselines(x, observed), benchmark["baseline"], observed)
    }
    for name, blocks in (real or {}).items():
        scores[name] = benchmark_errors(network.baselines, blocks)
    return scores


def score_onnx(onnx_path: Path, grid: int, benchmark: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean RMSE and MAE of an ONNX file on a benchmark set, through the registered path."""
    return score_all(OnnxBaseline(onnx_path, grid=grid), benchmark, None)[SIMULATED]


def gate(
    client,
    version: str,
    benchmark: dict[str, np.ndarray],
    classical: dict,
    real: RealBenchmarks | None = None,
) -> Decision:
    """Decide whether ``version`` may become production.

    On the simulated test set (``benchmark``: ``observed`` and true ``baseline``, (N, L)) it
    must beat the current production version and arPLS/asPLS (``classical``: their mean
    errors there) on both RMSE and MAE; on each real-reference benchmark (``real``) its RMSE
    must be no worse than production's. Every model is re-evaluated now, production included.

    Raises
    ------
    RegistryError
        The store cannot say which version is production, or cannot load a version.
    """
    current = production_version(client)
    new_all = score_all(network_of(version), benchmark, real)
    old_all = None
    if current is not None and current != version:
        old_all = score_all(network_of(current), benchmark, real)
    new, old = new_all[SIMULATED], old_all and old_all[SIMULATED]
    failures = []
    for k in ("rmse", "mae"):
        best_name = min(classical, key=lambda m: classical[m][k])
        if not new[k] < classical[best_name][k]:
            failures.append(
                f"{k.upper()} {new[k]:.5f} >= {best_name} {classical[best_name][k]:.5f}"
            )
        if old is not None and not new[k] < old[k]:
            failures.append(f"{k.upper()} {new[k]:.5f} >= production v{current} {old[k]:.5f}")
    for name in real or {}:
        if old_all is not None and new_all[name]["rmse"] > old_all[name]["rmse"]:
            failures.append(
                f"{name} RMSE {new_all[name]['rmse']:.5f} > production v{current} "
                f"{old_all[name]['rmse']:.5f}"
            )
    promoted = not failures
    if promoted:
        vs = f"production v{current}" if old is not None else "no production version yet"
        reason = f"beats arPLS, asPLS and {vs} on RMSE and MAE"
        if real and old is not None:
            reason += f"; RMSE no worse than production on {', '.join(real)}"
    else:
        reason = "; ".join(failures)
    figures = {
        name: {"challenger": scores, "production": old_all and old_all[name]}
        for name, scores in new_all.items()
    }
    return Decision(version, promoted, reason, new, old, current, classical, figures)


def fast_gate(
    client,
    onnx_path: Path,
    grid: int,
    benchmark: dict[str, np.ndarray],
    max_ratio: float,
    reference: str,
    real: RealBenchmarks | None = None,
) -> Decision:
    """Whether a faster variant may be registered: RMSE within ``max_ratio`` of ``reference``'s.

    On every benchmark: the simulated test set and each of ``real``. ``reference`` is the
    version the ``register`` stage recorded (:func:`reference_of`), a declared input of the
    stage, never the live ``production`` alias. Both models are scored now, on the same sets.

    Raises
    ------
    RegistryError
        ``reference`` does not exist, or the store failed.
    """
    old_all = score_all(network_of(str(reference)), benchmark, real)
    new_all = score_all(OnnxBaseline(onnx_path, grid=grid), benchmark, real)
    parts, ok = [], True
    for name, old in old_all.items():
        new = new_all[name]
        ratio = new["rmse"] / old["rmse"] if old["rmse"] > 0 else _zero_ratio(new["rmse"])
        ok = ok and ratio <= max_ratio
        where = "" if name == SIMULATED else f"{name} "
        parts.append(
            f"{where}RMSE {new['rmse']:.5f} = {ratio:.3f} x reference v{reference}'s "
            f"{old['rmse']:.5f}"
        )
    verdict = "within" if ok else "not within"
    reason = f"{'; '.join(parts)}: {verdict} the {max_ratio:g} x allowed on every benchmark"
    figures = {n: {"challenger": new_all[n], "production": old_all[n]} for n in new_all}
    return Decision(
        "", ok, reason, new_all[SIMULATED], old_all[SIMULATED], str(reference), {}, figures
    )


def fast_variant(client, max_ratio: float) -> tuple[str | None, str | None, str]:
    """The registered variant to run instead of production, if one is within ``max_ratio``.

    Candidates are the versions tagged ``variant`` (``register_fast`` tags ``variant=fast``)
    and the one holding the ``fast`` alias, that one first, then the newest. A candidate
    qualifies when the figures its gate recorded (its run's ``gate_<benchmark>_rmse`` and
    ``gate_<benchmark>_production_rmse``) were measured against the version that is
    production now (its ``reference_version`` tag) and its RMSE is at most ``max_ratio``
    times production's on every one of :data:`BENCHMARKS`. Nothing is re-scored: a variant
    measured against an earlier production version does not qualify until it is measured
    again.

    Parameters
    ----------
    client
        An ``MlflowClient`` of the store (:func:`pipeline.registry.connect`).
    max_ratio
        The largest RMSE ratio to production allowed on each benchmark (1.05: within 5%).

    Returns
    -------
    tuple
        ``(production, variant, why)``: the production version (None when there is none),
        the qualifying variant's version (None when none qualifies) and why not (empty
        when one does).

    Raises
    ------
    RegistryError
        The store failed: which model to run is unknown.
    """
    current = production_version(client)
    if current is None:
        return None, None, "no production version"
    fast = alias_version(client, FAST)
    with store_errors(client, f"listing the versions of {MODEL_NAME}"):
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    candidates = [
        mv
        for mv in versions
        if (mv.tags.get("variant") or str(mv.version) == fast) and str(mv.version) != current
    ]
    candidates.sort(key=lambda mv: (str(mv.version) != fast, -int(mv.version)))
    refusals = []
    for mv in candidates:
        refusal = _variant_refusal(client, mv, current, max_ratio)
        if refusal is None:
            return current, str(mv.version), ""
        refusals.append(f"v{mv.version} {refusal}")
    return current, None, "; ".join(refusals) or "no fast variant registered"


def _variant_refusal(client, version, current: str, max_ratio: float) -> str | None:
    """Why the variant ``version`` (a ``ModelVersion``) may not stand in for ``current``."""
    against = version.tags.get("reference_version")
    if against != current:
        measured = f"against v{against}" if against else "against no recorded version"
        return f"was measured {measured}, not production v{current}"
    with store_errors(client, f"reading the gate figures of {MODEL_NAME} v{version.version}"):
        figures = client.get_run(version.run_id).data.metrics if version.run_id else {}
    for name in BENCHMARKS:
        new = figures.get(f"gate_{name}_rmse")
        old = figures.get(f"gate_{name}_production_rmse")
        if new is None or old is None:
            return f"has no {name} RMSE recorded against production v{current}"
        ratio = new / old if old > 0 else _zero_ratio(new)
        if not ratio <= max_ratio:
            return f"has {name} RMSE {ratio:.3f} x production v{current}'s (over {max_ratio:g} x)"
    return None


def _zero_ratio(new: float) -> float:
    """``new / 0``: 1 when both are 0 (equal), else infinitely worse."""
    return 1.0 if new == 0 else math.inf


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
