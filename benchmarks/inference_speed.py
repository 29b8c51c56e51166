"""(a) Inference spectra/s through ``raman-baseline correct``'s own path, against arPLS/asPLS.

    python benchmarks/inference_speed.py [--params params.yaml] [--quick] [--onnx PATH ...]
                                         [--no-registry] [--length-mode resample] [--json OUT]

Run in a built workspace (the current directory): ``mlflow.db`` holding
``models:/resunet1d@production`` and ``reports/classical.json``. ``--no-registry`` times only
the ``--onnx`` networks and needs no store; without ``reports/classical.json`` the classical
methods use the middle of ``params.yaml``'s ``lam`` grid (the printout says which).

Networks: ``pipeline.correct.load_network(spec, grid)`` then ``model.baselines(x, y,
length_mode=...)`` (ONNX Runtime: normalise, network, invert, resample when needed), for
``models:/resunet1d@production`` (the fp32 seed network), ``models:/resunet1d@fast`` when that
alias exists, and every ``--onnx PATH``; at batch sizes 1, 64 and 1,024 spectra per call and
lengths 512 and 2,048 (``x = linspace(200, 3200, L)``).

Classical: pybaselines arPLS and asPLS at the ``lam`` ``correct`` uses
(``correct.chosen_log10_lam``, scaled to L by ``scaled_lam``) on all cores: a persistent spawn
process pool, one worker per core and one BLAS thread each, started and warmed before timing,
the batch split into one chunk per worker (``pipeline.baselines.fit_block``). Batch 1 is
``correct``'s own serial path (``classical_baselines``), one spectrum per call on one core in
this process.

Every row has the RMSE and MAE of its baselines against the true ones
(``pipeline.metrics.mean_errors``), spectra/s relative to arPLS at the same L and batch, RMSE
relative to the production network at the same L and batch, and (networks) GFLOP/s and the
fraction of the CPU's fp32 peak reached. FLOPs per spectrum are counted on each network's ONNX
graph (:func:`conv_macs` at the network's grid length: in the default ``resample`` mode the
network always runs at that grid, whatever L); FLOPs = 2 x MACs. Every rate is the best of
``--repeats`` timed runs after a warm-up call.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not the workspace's

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline import correct  # noqa: E402
from pipeline.baselines import METHODS as CLASSICAL  # noqa: E402
from pipeline.baselines import (  # noqa: E402
    _one_thread,
    classical_baselines,
    fit_block,
    scaled_lam,
)
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.normalise import LENGTH_MODES  # noqa: E402

LENGTHS = (512, 2048)
BATCHES = (1, 64, 1024)
AXIS = (200.0, 3200.0)  # x = linspace(*AXIS, L)
PRODUCTION, FAST = "models:/resunet1d@production", "models:/resunet1d@fast"
# spectra per length (batches of 64 and 1,024 cover them all), batch-1 calls, timed runs
FULL = {"spectra": 2048, "single_calls": 256, "repeats": 3}
QUICK = {"spectra": 1024, "single_calls": 32, "repeats": 2}


def conv_macs(model, length: int, batch: int = 1) -> int:
    """Multiply-adds of every Conv and ConvTranspose node of an ONNX model.

    The first input's batch and last (length) dimensions are set to ``batch`` and ``length``
    and every shape inferred (``onnx.shape_inference``). A Conv with output ``(N, C_out, L_out)``
    and weight ``(C_out, C_in / groups, K)`` does ``N C_out L_out C_in K / groups`` MACs; a
    ConvTranspose with input ``(N, C_in, L_in)`` and weight ``(C_in, C_out / groups, K)`` does
    ``N C_in L_in C_out K / groups``. Works the same for 2-D kernels.
    """
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())  # a copy to edit
    del model.graph.value_info[:]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[-1].dim_value = batch, length
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]
    }
    shapes.update({w.name: list(w.dims) for w in model.graph.initializer})
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            total += math.prod(shapes[node.output[0]]) * math.prod(shapes[node.input[1]][1:])
        elif node.op_type == "ConvTranspose":
            total += math.prod(shapes[node.input[0]]) * math.prod(shapes[node.input[1]][1:])
    return total


def workloads(sizes: dict[str, int]) -> dict[int, int]:
    """Calls timed per batch size: all the spectra, in batches (batch 1: ``single_calls``)."""
    return {b: sizes["single_calls"] if b == 1 else max(1, sizes["spectra"] // b) for b in BATCHES}


def add_ratios(rows: list[common.Row]) -> None:
    """Spectra/s relative to arPLS, RMSE relative to production, at the same L and batch."""
    by_key = {(r.name, r.length, r.batch): r for r in rows}
    for r in rows:
        arpls = by_key.get(("arpls", r.length, r.batch))
        production = by_key.get((common.PRODUCTION_LABEL, r.length, r.batch))
        if arpls and arpls.rate and r.rate is not None:
            r.ratio = r.rate / arpls.rate
        if production and production.rmse and r.rmse is not None:
            r.rmse_ratio = r.rmse / production.rmse


# ------------------------------------------------------------------- the methods


@contextlib.contextmanager
def classical_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Spawn workers, one BLAS thread each (as ``fit_many``); started and warmed here."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=_one_thread) as pool:
        x, y = np.linspace(*AXIS, 64), np.ones((1, 64))
        warm = [pool.submit(fit_block, name, 1e3, 5, 1e-3, x, y) for name in CLASSICAL]
        warm += [pool.submit(time.sleep, 0.5) for _ in range(workers)]  # every worker spawned
        for job in warm:
            job.result()
        yield pool


def pooled(
    pool: ProcessPoolExecutor, workers: int, fit: Callable
) -> Callable[[np.ndarray], np.ndarray]:
    """A batch split into one chunk per worker, fitted in the pool."""

    def estimate(y: np.ndarray) -> np.ndarray:
        return np.concatenate(list(pool.map(fit, np.array_split(y, workers))))

    return estimate


def serial(estimate: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """``estimate`` on one core in this process (one BLAS thread)."""
    from threadpoolctl import threadpool_limits

    def run(y: np.ndarray) -> np.ndarray:
        with threadpool_limits(1):
            return estimate(y)

    return run


def classical_estimators(
    params: Params, report: Path, x: np.ndarray, pool: ProcessPoolExecutor, workers: int
) -> dict[str, dict[int, Callable]]:
    """arPLS/asPLS as ``correct`` runs them (batch 1) and on the pool (larger batches)."""
    out = {}
    for name in CLASSICAL:
        settings = getattr(params.classical, name)
        log10_lam, _ = correct.chosen_log10_lam(name, settings, report)
        lam = scaled_lam(10**log10_lam, len(x), params.simulate.length)
        one = classical_baselines(name, log10_lam, settings, params.simulate.length)
        fit = partial(fit_block, name, lam, settings.max_iter, settings.tol, x)
        out[name] = {
            b: serial(partial(one, x)) if b == 1 else pooled(pool, workers, fit) for b in BATCHES
        }
    return out


def network_specs(onnx_paths: Sequence[Path], registry_models: bool, say: common.Printout) -> dict:
    """Label -> model spec: production, fast if its alias exists, then every ``--onnx``."""
    specs = {}
    if registry_models:
        from pipeline import registry

        specs[common.PRODUCTION_LABEL] = PRODUCTION
        if registry.alias_version(registry.connect(), registry.FAST) is not None:
            specs[common.FAST_LABEL] = FAST
        else:
            say(f"note: {FAST} does not exist in this store: its rows are skipped")
    for path in onnx_paths:
        specs[f"onnx {path.name}"] = str(path)
    return specs


def network_macs(spec: str, grid: int) -> int:
    """MACs per spectrum of the network behind ``spec`` (ONNX file or ``models:/``), at ``grid``."""
    import onnx

    if spec.lower().endswith(".onnx"):
        return conv_macs(onnx.load(spec), grid)
    from pipeline import registry

    with tempfile.TemporaryDirectory() as tmp:
        return conv_macs(onnx.load(registry.onnx_of(registry.connect(), spec, Path(tmp))), grid)


def load_networks(specs: dict[str, str], grid: int) -> dict:
    """``correct.load_network`` for every spec, leaving ``sys.path`` as it was.

    Loading a registered pyfunc puts its bundled copy of ``pipeline`` first on ``sys.path``;
    process pools spawned later would import that (older) copy instead of this checkout's.
    """
    saved = list(sys.path)
    try:
        return {label: correct.load_network(spec, grid) for label, spec in specs.items()}
    finally:
        sys.path[:] = saved


# ------------------------------------------------------------------- the table


def inference_rows(
    params: Params,
    sizes: dict[str, int],
    specs: dict[str, str],
    length_mode: str,
    report: Path,
    say: common.Printout,
    flops_per_cycle: int | None = None,
) -> list[common.Row]:
    """Every network and classical method at every length and batch size."""
    peak, cpu = common.cpu_description(flops_per_cycle)
    say(cpu)
    pentapy = common.pentapy_in_use()
    say(f"pybaselines uses pentapy: {pentapy}; simulated spectra: seed {common.SEED} (+L)")
    say(f"sizes: {sizes}; length mode {length_mode}")
    workers = len(os.sched_getaffinity(0))
    grid = params.simulate.length
    networks = load_networks(specs, grid)
    macs = {label: network_macs(spec, networks[label].grid) for label, spec in specs.items()}
    for label, n in macs.items():
        say(f"{label}: {n / 1e6:,.1f} M MACs = {2 * n / 1e6:,.1f} MFLOP/spectrum (at its grid)")
    for name in CLASSICAL:
        log10_lam, source = correct.chosen_log10_lam(name, getattr(params.classical, name), report)
        say(f"{name}: log10(lam) = {log10_lam:g} at {grid} points ({source}); x (L/{grid})^4")
    rows = []
    with classical_pool(workers) as pool:
        for length in LENGTHS:
            n = max(sizes["spectra"], max(BATCHES), sizes["single_calls"])
            spectra = common.spectra_at(params, length, n, common.SEED + length)
            x = np.linspace(*AXIS, length)
            methods = {
                label: dict.fromkeys(BATCHES, partial(model.baselines, x, length_mode=length_mode))
                for label, model in networks.items()
            }
            methods.update(classical_estimators(params, report, x, pool, workers))
            for batch, calls in workloads(sizes).items():
                blocks = [spectra.observed[i * batch : (i + 1) * batch] for i in range(calls)]
                blocks = [b.astype(np.float64) for b in blocks]
                for label, by_batch in methods.items():
                    rate, out = common.best_rate(by_batch[batch], blocks, sizes["repeats"])
                    rmse, mae = common.errors_of(out, spectra, calls * batch)
                    row = common.Row(
                        "inference", label, length, batch, rate=rate, rmse=rmse, mae=mae
                    )
                    if label in macs:
                        model = networks[label]  # one single-threaded ORT stream per chunk
                        row.cores = f"{min(model.workers, -(-batch // model.chunk))} (ORT)"
                        row.gflops = 2 * macs[label] * rate / 1e9
                        row.peak = row.gflops * 1e9 / peak
                    else:
                        row.cores = "1 (serial, here)" if batch == 1 else f"{workers} (processes)"
                    rows.append(row)
    add_ratios(rows)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", ".*Add type hints", UserWarning)  # mlflow, loading a pyfunc
    parser = common.parser_for(__doc__, FULL, QUICK)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--classical-report", type=Path, default=Path("reports/classical.json"))
    parser.add_argument("--onnx", type=Path, action="append", default=[], help="another network")
    parser.add_argument(
        "--no-registry", action="store_true", help="only the --onnx networks: no MLflow store"
    )
    parser.add_argument("--length-mode", choices=LENGTH_MODES, default=LENGTH_MODES[0])
    parser.add_argument("--flops-per-cycle", type=int, default=None)
    args = parser.parse_args(argv)
    if args.no_registry and not args.onnx:
        parser.error("--no-registry needs at least one --onnx PATH")
    say = common.Printout()
    sizes = common.chosen_sizes(args, FULL, QUICK)
    onnx_paths = [p.resolve() for p in args.onnx]
    specs = network_specs(onnx_paths, not args.no_registry, say)
    params = load_params(args.params)
    report = args.classical_report
    rows = inference_rows(params, sizes, specs, args.length_mode, report, say, args.flops_per_cycle)
    common.finish(say, rows, args.json)


if __name__ == "__main__":
    main()
