"""(e) The classical evaluation at the seed's scale: arPLS and asPLS with ``fit_many``.

    python benchmarks/classical_speed.py [--n 70000] [--quick] [--params params.yaml]
                                         [--classical-report reports/classical.json] [--json OUT]

``pipeline.baselines.fit_many`` (all cores, or ``classical.n_jobs``; its process pool's
start-up included) for arPLS and asPLS over ``--n`` simulated spectra of 512 points (default
70,000, the seed paper's evaluation size), at the ``lam`` ``correct`` uses
(``correct.chosen_log10_lam``: the value chosen in ``reports/classical.json``, else the middle
of ``params.yaml``'s grid), scaled to 512 points. Prints the wall time, spectra/s and the mean
RMSE/MAE against the true baselines. ``--engine dask`` runs the same fits on a local Dask
cluster of as many single-threaded worker processes (``pipeline.cluster``, the engine the
``classical`` stage takes from ``classical.dask_from`` fits), its start-up included; ``both``
times the two engines one after the other and says whether their baselines are equal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not the workspace's

from benchmarks import common  # noqa: E402
from pipeline import correct  # noqa: E402
from pipeline.baselines import METHODS, fit_many, scaled_lam  # noqa: E402
from pipeline.cluster import cluster  # noqa: E402
from pipeline.config import Params, load_params  # noqa: E402

LENGTH = 512
FULL = {"n": 70_000}
QUICK = {"n": 2_000}


def classical_eval_rows(
    params: Params, n: int, report: Path, say: common.Printout, engines: Sequence[str] = ("pool",)
) -> list[common.Row]:
    """``fit_many`` over ``n`` spectra of :data:`LENGTH` points, at the chosen ``lam``.

    One row per method and engine (``pool``: the process pool; ``dask``: a local Dask
    cluster, :func:`pipeline.cluster.cluster`), start-up included.
    """
    spectra = common.spectra_at(params, LENGTH, n, common.SEED + 1)
    cores = params.classical.n_jobs or len(os.sched_getaffinity(0))
    rows = []
    for name in METHODS:
        settings = getattr(params.classical, name)
        log10_lam, source = correct.chosen_log10_lam(name, settings, report)
        say(f"{name}: log10(lam) = {log10_lam:g} at {params.simulate.length} points ({source})")
        lam = scaled_lam(10**log10_lam, LENGTH, params.simulate.length)
        fits = {}
        for engine in engines:
            start = time.perf_counter()
            with _engine(engine, params.classical.n_jobs) as client:
                n_jobs = params.classical.n_jobs
                fitted = fit_many(
                    name, [lam], settings, spectra.observed, n_jobs=n_jobs, client=client
                )
                fits[engine] = fitted[0]
            seconds = time.perf_counter() - start
            rmse, mae = common.errors_of(fits[engine], spectra)
            how = f"{cores} (fit_many, {engine})"
            row = common.Row("evaluate", name, LENGTH, n, how, n / seconds, seconds)
            row.rmse, row.mae, row.note = rmse, mae, f"{engine} start-up included"
            rows.append(row)
        if len(fits) == 2:
            same = np.array_equal(*fits.values())
            say(f"{name}: the pool's and Dask's baselines are {'equal' if same else 'NOT equal'}")
    return rows


@contextlib.contextmanager
def _engine(engine: str, n_jobs: int):
    if engine == "pool":
        yield None
        return
    with cluster(None, n_jobs) as (client, _):
        yield client


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.parser_for(__doc__, FULL, QUICK)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--classical-report", type=Path, default=Path("reports/classical.json"))
    parser.add_argument(
        "--engine", choices=("pool", "dask", "both"), default="pool", help="default: pool"
    )
    args = parser.parse_args(argv)
    n = common.chosen_sizes(args, FULL, QUICK)["n"]
    say = common.Printout()
    pentapy = common.pentapy_in_use()
    say(f"pybaselines uses pentapy: {pentapy}; {n:,} simulated spectra, seed {common.SEED + 1}")
    engines = ("pool", "dask") if args.engine == "both" else (args.engine,)
    rows = classical_eval_rows(load_params(args.params), n, args.classical_report, say, engines)
    common.finish(say, rows, args.json)


if __name__ == "__main__":
    main()
