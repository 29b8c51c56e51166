"""Stage ``classical``: arPLS and asPLS, ``lam`` chosen on validation, fitted on the test set.

Each method's ``lam`` is the point of its ``classical.<method>.log10_lam`` grid with the lowest
mean RMSE on the first ``classical.n_val_grid`` validation spectra (never the test set).

The fits run in a process pool of ``classical.n_jobs`` workers. A set of at least
``classical.dask_from`` fits (spectra x ``lam`` values; 0: never), or any set when
``classical.scheduler`` names an existing cluster, runs on a Dask cluster instead, the engine
of ``correct-map`` (:func:`pipeline.cluster.cluster`): the same blocks through the same
function, so the same baselines. The report names the engine of each method.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.baselines import METHODS, fit_many
from pipeline.config import ClassicalParams
from pipeline.files import atomic_path, write_json
from pipeline.metrics import mean_errors
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import arguments, params_of, script


def choose_lam(
    name: str, params: ClassicalParams, val: SpectrumSet, client: Any = None
) -> tuple[float, dict]:
    """``log10(lam)`` of method ``name`` with the lowest validation RMSE, and the whole grid."""
    settings = getattr(params, name)
    n = min(params.n_val_grid, len(val))
    lams = [10**ll for ll in settings.log10_lam]
    fitted = fit_many(name, lams, settings, val.observed[:n], n_jobs=params.n_jobs, client=client)
    grid = {
        f"{log_lam:g}": mean_errors(b, val.baseline[:n], val.observed[:n])
        for log_lam, b in zip(settings.log10_lam, fitted, strict=True)
    }
    chosen = min(settings.log10_lam, key=lambda ll: grid[f"{ll:g}"]["rmse"])
    return chosen, grid


def largest_call(params: ClassicalParams, val: SpectrumSet, test: SpectrumSet) -> int:
    """The most fits (spectra x ``lam`` values) one call of :func:`run` asks for at once."""
    grids = max(len(getattr(params, name).log10_lam) for name in METHODS)
    return max(min(params.n_val_grid, len(val)) * grids, len(test))


@contextlib.contextmanager
def engine(params: ClassicalParams, fits: int) -> Iterator[tuple[Any, str]]:
    """A Dask client for a set of ``fits`` fits, or None for the process pool; and its name.

    Dask when ``classical.scheduler`` is set (that cluster) or ``fits`` reaches
    ``classical.dask_from`` (a local cluster of ``classical.n_jobs`` workers, 0: one per
    core). Raises ``OSError`` when the scheduler cannot be reached or has no worker.
    """
    if not params.scheduler and not (params.dask_from and fits >= params.dask_from):
        yield None, f"a process pool ({params.n_jobs or 'one per core'} workers)"
        return
    from pipeline.cluster import cluster

    with cluster(params.scheduler or None, params.n_jobs) as (client, where):
        yield client, where


def run(
    params: ClassicalParams, val: SpectrumSet, test: SpectrumSet, client: Any = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Every method's test-set baselines ``(N, L)`` at its chosen ``lam``, and the report.

    ``client``: a ``distributed.Client`` the fits run on (:func:`engine`); None: a pool.
    """
    fits, report = {}, {}
    for name in METHODS:
        chosen, grid = choose_lam(name, params, val, client)
        start = time.perf_counter()
        settings = getattr(params, name)
        fits[name] = fit_many(
            name, [10**chosen], settings, test.observed, n_jobs=params.n_jobs, client=client
        )[0]
        report[name] = {
            "log10_lam": chosen,
            "val_spectra": min(params.n_val_grid, len(val)),
            "grid": grid,
            "test_fit_seconds": round(time.perf_counter() - start, 2),
        }
    return fits, report


def main(argv: list[str] | None = None) -> int:
    """Write the test-set baselines (npz, one array per method) and the report (JSON)."""
    parser = arguments(__doc__, "classical", "data out report")
    args = parser.parse_args(argv)
    params = params_of(args).classical
    sets = load_sets(args.data, ("val", "test"))
    with engine(params, largest_call(params, sets["val"], sets["test"])) as (client, where):
        print(f"fitting on {where}")
        fits, report = run(params, sets["val"], sets["test"], client)
    with atomic_path(args.out) as tmp:
        np.savez(tmp, **{k: v.astype(np.float32) for k, v in fits.items()})
    write_json(args.report, report)
    for name, r in report.items():
        rmse = r["grid"][f"{r['log10_lam']:g}"]["rmse"]
        print(
            f"{name}: log10(lam) = {r['log10_lam']:g} (val RMSE {rmse:.4f}), "
            f"{len(sets['test'])} test fits in {r['test_fit_seconds']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "classical"))
