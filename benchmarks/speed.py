"""The project's performance table: every figure measured in one run, on the same cores.

    python benchmarks/speed.py [--workspace DIR] [--params FILE] [--quick] [--onnx PATH ...]
                               [--repro] [--no-mlflow] [--out reports/speed.csv]
                               [--eval-n 70000] [--repeats 3] [--sections abcde]

``--workspace`` (default: the current directory) is a built workspace: ``params.yaml``,
``reports/classical.json`` and ``mlflow.db`` holding ``models:/resunet1d@production``. The
``pipeline`` package is imported from this checkout (the folder above this file), never from
the workspace. ``--quick`` runs every section at small sizes (a minute or two; noisier).

Sections
--------
(a) Inference, spectra/s, through exactly what ``raman-baseline correct`` runs:
    ``pipeline.correct.load_network`` then ``network_baselines`` (default length mode), for
    ``models:/resunet1d@production`` (the fp32 seed network), ``models:/resunet1d@fast`` when
    that alias exists, and every ``--onnx PATH``; at batch sizes 1, 64 and 1,024 spectra per
    call and lengths 512 and 2,048 (``x = linspace(200, 3200, L)``). Against pybaselines arPLS
    and asPLS at the ``lam`` ``correct`` uses (``chosen_log10_lam`` from the workspace's
    ``reports/classical.json``, ``scaled_lam`` for L) on all cores: a persistent spawn process
    pool, one worker per core and one BLAS thread each, started and warmed before timing, the
    batch split into one chunk per worker. Batch 1 of arPLS/asPLS is ``correct``'s own serial
    path, one spectrum per call on one core in this process. Every row also has the RMSE and
    MAE of its baselines against the true ones (``pipeline.metrics.baseline_errors``, mean
    over spectra), spectra/s relative to arPLS at the same L and batch, RMSE relative to the
    production network at the same L and batch, and (networks) GFLOP/s and the fraction of
    the CPU's fp32 peak reached.
(b) Training samples/s of the ``params.yaml`` model at ``train.batch_size`` and length 512:
    a plain fp32 eager loop (Adam, RMSE loss, no autocast) against the project's own step,
    ``pipeline.train.train_step`` under ``step_autocast`` (``train.precision``; ``auto`` is
    bf16 only on a CPU with bf16 arithmetic), on the same simulated batches, the same number
    of warm-up and timed steps: ``benchmarks/train_speed.py``, which also runs alone (on a
    GPU too).
(c) Simulation spectra/s per core at length 512: ``benchmarks/simulate_speed.py`` run as a
    child process (it pins itself to one core and one thread), its median.
(d) Wall time of the default ``dvc repro`` (``--repro`` only; 15-30 minutes): the workspace's
    committed HEAD cloned into a temporary folder, run there with this virtual environment,
    the clone's own code and the environment ``scripts/env.sh`` exports.
(e) Classical evaluation at scale: ``pipeline.baselines.fit_many`` (all cores, process pool
    start included) for arPLS and asPLS over ``--eval-n`` spectra of length 512 (default
    70,000, the seed paper's evaluation size).

FLOPs per spectrum of each network are counted on its ONNX graph (every Conv and
ConvTranspose node, shapes by ONNX shape inference at the network's grid length: in the
default ``resample`` mode the network always runs at that grid, whatever L). FLOPs = 2 x MACs.
The CPU's fp32 peak is cores x clock x fp32 FLOPs per cycle per core (64 with AVX-512: two
FMA units x 16 lanes x 2; 32 with AVX2 only; ``--flops-per-cycle`` overrides); the clock is
lscpu's max MHz when given, else the current MHz of ``/proc/cpuinfo``. The printout says which.

Spectra are simulated with ``params.yaml``'s ``simulate`` section, ``length`` set to L, seed
:data:`SEED` (the pipeline's own sets use ``simulate.seed * 1000 + 0, 1, 2``: no overlap).
Timing: every rate is the best of ``--repeats`` timed runs after a warm-up call (best, not
median: on a shared machine the best run is the one least disturbed by other processes).

Output: the table is printed, written to ``--out`` (CSV) and beside it as ``.txt`` (the
printout), and logged to MLflow (experiment ``raman-benchmarks`` in the workspace's store:
every figure a metric, the CSV and the printout as artifacts; ``--no-mlflow`` skips it). It
ends with the must-show ratios and PASS/FAIL against their targets: figures, not assertions;
the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not the workspace's

import numpy as np  # noqa: E402

from pipeline import correct  # noqa: E402
from pipeline.baselines import METHODS as CLASSICAL  # noqa: E402
from pipeline.baselines import (  # noqa: E402
    _one_thread,
    classical_baselines,
    fit_block,
    fit_many,
    scaled_lam,
)
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.metrics import mean_errors as mean_baseline_errors  # noqa: E402
from pipeline.simulate import SpectrumSet, simulate  # noqa: E402

SEED = 777  # simulated benchmark spectra; the pipeline's sets use 20220 * 1000 + 0, 1, 2
LENGTHS = (512, 2048)
BATCHES = (1, 64, 1024)
AXIS = (200.0, 3200.0)  # x = linspace(*AXIS, L)
PRODUCTION, FAST = "models:/resunet1d@production", "models:/resunet1d@fast"
PRODUCTION_LABEL, FAST_LABEL = "production (fp32)", "fast (student)"
EXPERIMENT = "raman-benchmarks"
# the must-show targets (figures to print PASS/FAIL against, not assertions)
SPEED_TARGET, SPEED_GOAL = 2.0, 3.0  # fast network / arPLS spectra/s, batch 1,024, L 512
RMSE_LIMIT = 1.05  # fast RMSE / production RMSE, at most (params.yaml student.max_rmse_ratio)
TRAIN_TARGET = 2.0  # project training step / plain fp32 eager
SIM_TARGET = 50_000.0  # simulated spectra/s per core


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each section does."""

    spectra: int = 2048  # per length, section (a); batches of 64 and 1,024 cover them all
    single_calls: int = 256  # batch-1 calls timed, section (a)
    repeats: int = 3  # timed runs per figure (the best is kept)
    train_warmup: int = 5
    train_steps: int = 20
    sim_n: int = 20_000
    sim_repeats: int = 5
    eval_n: int = 70_000


QUICK = Sizes(
    spectra=1024,
    single_calls=32,
    repeats=2,
    train_warmup=2,
    train_steps=5,
    sim_n=5_000,
    sim_repeats=3,
    eval_n=2_000,
)


@dataclasses.dataclass
class Row:
    """One line of the table; ``rate`` is spectra (or samples) per second."""

    section: str
    name: str
    length: int | None = None
    batch: int | None = None
    cores: str = ""
    rate: float | None = None
    seconds: float | None = None
    ratio: float | None = None  # rate / the section's reference rate
    rmse: float | None = None
    mae: float | None = None
    rmse_ratio: float | None = None  # RMSE / the production network's, same L and batch
    gflops: float | None = None
    peak: float | None = None  # fraction of the CPU's fp32 peak
    note: str = ""


# ----------------------------------------------------------------------------- helpers


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """Fixed-width text table.

    Parameters
    ----------
    rows
        One mapping per line.
    columns
        ``(key, header, format)``; ``format`` is a ``str.format`` spec such as ``"{:,.0f}"``,
        or ``""`` for text (left-aligned). Missing or ``None`` values print as ``-``.
    """
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        line = []
        for key, _, fmt in columns:
            value = row.get(key)
            line.append("-" if value is None or value == "" else (fmt or "{}").format(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    text = [i for i, (_, _, fmt) in enumerate(columns) if not fmt]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in text else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    )


def metric_name(*parts: object) -> str:
    """An MLflow metric name: the parts joined by dots, runs of other characters made ``_``."""
    clean = (re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(p)).strip("_") for p in parts if p)
    return ".".join(p for p in clean if p)


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


def parse_clock(lscpu: str, cpuinfo: str) -> tuple[float, str]:
    """CPU clock in MHz: lscpu's ``CPU max MHz`` if given, else ``/proc/cpuinfo``'s current."""
    found = re.search(r"^CPU max MHz:\s*([\d.]+)", lscpu, re.MULTILINE)
    if found and float(found.group(1)) > 0:
        return float(found.group(1)), "lscpu CPU max MHz"
    found = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.MULTILINE)
    if found:
        return float(found.group(1)), "current clock, /proc/cpuinfo cpu MHz"
    raise ValueError("no CPU clock in lscpu or /proc/cpuinfo")


def parse_simulate_speed(output: str) -> float:
    """The median spectra/s printed by ``benchmarks/simulate_speed.py``."""
    found = re.search(r"median\s+([\d,]+)\s+spectra/s", output)
    if not found:
        raise ValueError(f"no median in simulate_speed.py's output:\n{output}")
    return float(found.group(1).replace(",", ""))


def parse_env_exports(script: str, root: Path) -> dict[str, str]:
    """``export NAME=value`` lines of a shell script, ``$ROOT`` replaced (``scripts/env.sh``).

    ``PATH`` and ``VIRTUAL_ENV`` are left out: the caller decides which environment runs.
    """
    env = {}
    for name, value in re.findall(r"^\s*export\s+(\w+)=(.*?)\s*$", script, re.MULTILINE):
        if name in ("PATH", "VIRTUAL_ENV"):
            continue
        value = value.strip("\"'").replace("${ROOT}", str(root)).replace("$ROOT", str(root))
        env[name] = value
    return env


def verdict(value: float | None, threshold: float, at_most: bool = False) -> str:
    """PASS, FAIL or n/a (not measured)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return "PASS" if (value <= threshold if at_most else value >= threshold) else "FAIL"


class Printout:
    """Print and keep every line, for the ``.txt`` artifact."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.extend(text.splitlines() or [""])

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# ------------------------------------------------------------------- the machine


def cpu_description(flops_per_cycle: int | None) -> tuple[float, str]:
    """The CPU's fp32 peak in FLOP/s and how it was derived."""
    cores = len(os.sched_getaffinity(0))
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    mhz, source = parse_clock(lscpu, cpuinfo)
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    avx512 = re.search(r"^flags\s*:.*\bavx512f\b", cpuinfo, re.MULTILINE) is not None
    if flops_per_cycle is None:
        flops_per_cycle = 64 if avx512 else 32
        how = "2 FMA units x 16 fp32 lanes x 2 (AVX-512)" if avx512 else "2 FMA x 8 x 2 (AVX2)"
    else:
        how = "--flops-per-cycle"
    peak = cores * mhz * 1e6 * flops_per_cycle
    name = model.group(1) if model else "unknown CPU"
    text = (
        f"{name}: fp32 peak {peak / 1e9:,.0f} GFLOP/s = {cores} cores x {mhz:,.0f} MHz "
        f"({source}) x {flops_per_cycle} FLOPs/cycle/core ({how}; assumed, not measured)"
    )
    return peak, text


def pentapy_in_use() -> str:
    """Whether pybaselines solves the Whittaker systems with pentapy (its private setup)."""
    try:
        from pybaselines import Baseline

        x = np.linspace(0.0, 1.0, 64)
        system = Baseline(x)._setup_whittaker(np.zeros(64), 1e3, 2)[2]
        return "yes" if system.using_pentapy else "NO (scipy solve_banded)"
    except Exception as exc:  # a private API: say so rather than fail
        return f"unknown ({type(exc).__name__}: {exc})"


# ------------------------------------------------------------------ (a) inference


def spectra_at(params: Params, length: int, n: int, seed: int) -> SpectrumSet:
    """``n`` simulated spectra of ``length`` points (params.yaml's simulate section)."""
    return simulate(dataclasses.replace(params.simulate, length=length), n, seed)


def workloads(sizes: Sizes) -> dict[int, int]:
    """Calls timed per batch size: all the spectra, in batches (batch 1: ``single_calls``)."""
    return {b: sizes.single_calls if b == 1 else max(1, sizes.spectra // b) for b in BATCHES}


def best_rate(
    estimate: Callable[[np.ndarray], np.ndarray], blocks: list[np.ndarray], repeats: int
) -> tuple[float, np.ndarray]:
    """Best spectra/s of ``estimate`` over every block, after one warm-up call."""
    estimate(blocks[0])
    best, out = math.inf, []
    for _ in range(repeats):
        start = time.perf_counter()
        out = [estimate(b) for b in blocks]
        best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in blocks) / best, np.concatenate(out)


def mean_errors(baseline: np.ndarray, spectra: SpectrumSet, n: int) -> tuple[float, float]:
    """Mean per-spectrum RMSE and MAE of the first ``n`` spectra's baselines."""
    e = mean_baseline_errors(baseline, spectra.baseline[:n], spectra.observed[:n])
    return e["rmse"], e["mae"]


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
        reference = params.simulate.length
        one = classical_baselines(name, log10_lam, settings, reference)
        fit = partial(fit_block, name, lam, settings.max_iter, settings.tol, x)
        out[name] = {
            b: serial(partial(one, x)) if b == 1 else pooled(pool, workers, fit) for b in BATCHES
        }
    return out


def network_specs(onnx_paths: Sequence[Path], say: Printout) -> dict[str, str]:
    """Label -> model spec: production, fast if its alias exists, then every ``--onnx``."""
    from pipeline import registry

    specs = {PRODUCTION_LABEL: PRODUCTION}
    client = registry.connect()
    try:
        client.get_model_version_by_alias(registry.MODEL_NAME, FAST.rsplit("@", 1)[1])
        specs[FAST_LABEL] = FAST
    except Exception:  # mlflow raises its own exception when the alias is missing
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
        local = registry.mlflow.artifacts.download_artifacts(artifact_uri=spec, dst_path=tmp)
        (path,) = Path(local).rglob("*.onnx")
        return conv_macs(onnx.load(path), grid)


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


def inference_rows(
    params: Params, sizes: Sizes, specs: dict[str, str], peak: float, say: Printout
) -> tuple[list[Row], dict[str, int]]:
    """Section (a): every network and classical method at every length and batch size."""
    workers = len(os.sched_getaffinity(0))
    report = Path("reports/classical.json")
    grid = params.simulate.length
    networks = load_networks(specs, grid)
    macs = {label: network_macs(spec, networks[label].grid) for label, spec in specs.items()}
    for name in CLASSICAL:
        log10_lam, source = correct.chosen_log10_lam(name, getattr(params.classical, name), report)
        say(f"{name}: log10(lam) = {log10_lam:g} at {grid} points ({source}); x (L/{grid})^4")
    rows = []
    with classical_pool(workers) as pool:
        for length in LENGTHS:
            n = max(sizes.spectra, max(BATCHES), sizes.single_calls)
            spectra = spectra_at(params, length, n, SEED + length)
            x = np.linspace(*AXIS, length)
            methods = {
                label: dict.fromkeys(BATCHES, partial(model.baselines, x))
                for label, model in networks.items()
            }
            methods.update(classical_estimators(params, report, x, pool, workers))
            for batch, calls in workloads(sizes).items():
                blocks = [spectra.observed[i * batch : (i + 1) * batch] for i in range(calls)]
                blocks = [b.astype(np.float64) for b in blocks]
                for label, by_batch in methods.items():
                    rate, out = best_rate(by_batch[batch], blocks, sizes.repeats)
                    rmse, mae = mean_errors(out, spectra, calls * batch)
                    row = Row("inference", label, length, batch, rate=rate, rmse=rmse, mae=mae)
                    if label in macs:
                        model = networks[label]  # one single-threaded ORT stream per chunk
                        row.cores = f"{min(model.workers, -(-batch // model.chunk))} (ORT)"
                        row.gflops = 2 * macs[label] * rate / 1e9
                        row.peak = row.gflops * 1e9 / peak
                    else:
                        row.cores = "1 (serial, here)" if batch == 1 else f"{workers} (processes)"
                    rows.append(row)
    add_ratios(rows)
    return rows, macs


def add_ratios(rows: list[Row]) -> None:
    """Spectra/s relative to arPLS, RMSE relative to production, at the same L and batch."""
    by_key = {(r.name, r.length, r.batch): r for r in rows}
    for r in rows:
        arpls = by_key.get(("arpls", r.length, r.batch))
        production = by_key.get((PRODUCTION_LABEL, r.length, r.batch))
        if arpls and arpls.rate and r.rate is not None:
            r.ratio = r.rate / arpls.rate
        if production and production.rmse and r.rmse is not None:
            r.rmse_ratio = r.rmse / production.rmse


# ------------------------------------------------------------------- (b) training


def training_rows(params: Params, sizes: Sizes, length: int = 512) -> list[Row]:
    """Section (b): ``benchmarks/train_speed.py``'s plain fp32 loop against the project step."""
    import torch

    from benchmarks.train_speed import step_rates

    size = params.train.batch_size
    rates = step_rates(params, size, length, sizes.train_warmup, sizes.train_steps, sizes.repeats)
    note = f"{sizes.train_warmup} warm-up + {sizes.train_steps} timed steps, best of "
    threads = f"{torch.get_num_threads()} (torch threads)"
    rows = [Row("train", label, length, size, threads, rate, s) for label, rate, s in rates]
    for r in rows:
        r.ratio, r.note = r.rate / rows[0].rate, note + str(sizes.repeats)
    return rows


# ----------------------------------------------------------------- (c) simulation


def simulation_row(params_path: Path, sizes: Sizes) -> Row:
    """Section (c): ``benchmarks/simulate_speed.py`` in a child process, its median."""
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "simulate_speed.py"),
        *("--n", str(sizes.sim_n), "--repeats", str(sizes.sim_repeats)),
        *("--length", "512", "--params", str(params_path)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    rate = parse_simulate_speed(done.stdout)
    note = f"simulate_speed.py --n {sizes.sim_n} --repeats {sizes.sim_repeats}: median, pinned"
    return Row("simulate", "simulation per core", 512, sizes.sim_n, "1 (pinned)", rate, note=note)


# ------------------------------------------------------------------- (d) dvc repro


def repro_row(workspace: Path, say: Printout) -> Row:
    """Section (d): ``dvc repro`` of the workspace's committed HEAD in a fresh clone."""
    with tempfile.TemporaryDirectory(prefix="speed-repro-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(workspace), str(clone)], check=True)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        say(f"dvc repro of {workspace} at {head} in {clone} (15-30 minutes) ...")
        env = repro_env(clone)
        dvc = shutil.which("dvc", path=env["PATH"]) or "dvc"
        start = time.perf_counter()
        subprocess.run([dvc, "repro"], cwd=clone, env=env, check=True)
        seconds = time.perf_counter() - start
    return Row("repro", "dvc repro (default)", cores="all", seconds=seconds, note=f"commit {head}")


def repro_env(clone: Path) -> dict[str, str]:
    """This virtual environment first on PATH, the clone's code, and what env.sh exports."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(parse_env_exports((clone / "scripts" / "env.sh").read_text(), clone))
    venv_bin = Path(sys.executable).parent
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PYTHONPATH"] = str(clone)  # the clone's pipeline, before the editable install's
    return env


# ------------------------------------------------------- (e) classical evaluation


def classical_eval_rows(params: Params, n: int) -> list[Row]:
    """Section (e): ``fit_many`` over ``n`` spectra of 512 points, at the chosen ``lam``."""
    report = Path("reports/classical.json")
    spectra = spectra_at(params, 512, n, SEED + 1)
    cores = params.classical.n_jobs or len(os.sched_getaffinity(0))
    rows = []
    for name in CLASSICAL:
        settings = getattr(params.classical, name)
        log10_lam, _ = correct.chosen_log10_lam(name, settings, report)
        lam = scaled_lam(10**log10_lam, 512, params.simulate.length)
        start = time.perf_counter()
        fitted = fit_many(name, [lam], settings, spectra.observed, n_jobs=params.classical.n_jobs)
        seconds = time.perf_counter() - start
        rmse, mae = mean_errors(fitted[0], spectra, n)
        row = Row("evaluate", name, 512, n, f"{cores} (fit_many)", n / seconds, seconds)
        row.rmse, row.mae, row.note = rmse, mae, "pool start-up included"
        rows.append(row)
    return rows


# ------------------------------------------------------------------- the report

COLUMNS = {
    "inference": [
        ("name", "model / method", ""),
        ("length", "L", "{}"),
        ("batch", "batch", "{:,}"),
        ("cores", "cores", ""),
        ("rate", "spectra/s", "{:,.0f}"),
        ("ratio", "x arPLS", "{:.2f}"),
        ("rmse", "RMSE", "{:.5f}"),
        ("mae", "MAE", "{:.5f}"),
        ("rmse_ratio", "RMSE x prod", "{:.3f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("peak", "of peak", "{:.1%}"),
    ],
    "train": [
        ("name", "training step", ""),
        ("length", "L", "{}"),
        ("batch", "batch", "{:,}"),
        ("cores", "cores", ""),
        ("rate", "samples/s", "{:,.1f}"),
        ("ratio", "x plain", "{:.2f}"),
        ("note", "", ""),
    ],
    "simulate": [
        ("name", "simulation", ""),
        ("length", "L", "{}"),
        ("cores", "cores", ""),
        ("rate", "spectra/s", "{:,.0f}"),
        ("note", "", ""),
    ],
    "repro": [
        ("name", "pipeline", ""),
        ("cores", "cores", ""),
        ("seconds", "wall s", "{:,.0f}"),
        ("note", "", ""),
    ],
    "evaluate": [
        ("name", "classical evaluation", ""),
        ("length", "L", "{}"),
        ("batch", "spectra", "{:,}"),
        ("cores", "cores", ""),
        ("seconds", "wall s", "{:,.1f}"),
        ("rate", "spectra/s", "{:,.0f}"),
        ("rmse", "RMSE", "{:.5f}"),
        ("note", "", ""),
    ],
}
TITLES = {
    "inference": "(a) inference through `correct`'s path (best of repeats)",
    "train": "(b) training, default model",
    "simulate": "(c) simulation",
    "repro": "(d) end-to-end `dvc repro`",
    "evaluate": "(e) classical evaluation at scale",
}


def must_show(rows: list[Row], max_rmse_ratio: float) -> dict[str, float | None]:
    """The must-show figures (``None``: not measured)."""
    by_key = {(r.section, r.name, r.length, r.batch): r for r in rows}
    fast = by_key.get(("inference", FAST_LABEL, 512, 1024))
    train = [r for r in rows if r.section == "train"]
    sim = [r for r in rows if r.section == "simulate"]
    return {
        "fast_vs_arpls": fast.ratio if fast else None,
        "fast_rmse_ratio": fast.rmse_ratio if fast else None,
        "train_ratio": train[-1].ratio if train else None,
        "sim_per_core": sim[0].rate if sim else None,
        "max_rmse_ratio": max_rmse_ratio,
    }


def must_show_lines(figures: dict[str, float | None]) -> list[str]:
    """The closing lines: each must-show figure, its target and PASS/FAIL (n/a: not measured)."""

    def show(key: str, fmt: str) -> str:
        value = figures[key]
        return "not measured" if value is None else fmt.format(value)

    speed, limit = figures["fast_vs_arpls"], figures["max_rmse_ratio"]
    rmse, train, sim = figures["fast_rmse_ratio"], figures["train_ratio"], figures["sim_per_core"]
    goal = f"; goal {SPEED_GOAL:g}: {verdict(speed, SPEED_GOAL)}"
    return [
        "must-show ratios (figures, not assertions):",
        "  (1) inference, correct's path, batch 1,024, L 512: fast / arPLS spectra/s = "
        f"{show('fast_vs_arpls', '{:.2f}')} (>= {SPEED_TARGET:g}): {verdict(speed, SPEED_TARGET)}"
        + goal,
        f"      fast RMSE / fp32 production RMSE = {show('fast_rmse_ratio', '{:.3f}')} "
        f"(<= {limit:g}): {verdict(rmse, limit, at_most=True)}",
        f"  (2) training: project step / plain fp32 eager = {show('train_ratio', '{:.2f}')} "
        f"(>= {TRAIN_TARGET:g}): {verdict(train, TRAIN_TARGET)}",
        f"  (3) simulation spectra/s per core = {show('sim_per_core', '{:,.0f}')} "
        f"(>= {SIM_TARGET:,.0f}): {verdict(sim, SIM_TARGET)}",
    ]


def write_csv(path: Path, rows: list[Row]) -> None:
    """The whole table, one row per line, every field."""
    from pipeline.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [f.name for f in dataclasses.fields(Row)]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)


def metrics_of(rows: list[Row], figures: dict[str, float | None]) -> dict[str, float]:
    """Every figure of the table as an MLflow metric."""
    out = {}
    for r in rows:
        length = f"L{r.length}" if r.length else None
        batch = f"b{r.batch}" if r.batch else None
        for field in ("rate", "seconds", "ratio", "rmse", "mae", "rmse_ratio", "gflops", "peak"):
            value = getattr(r, field)
            if value is not None and math.isfinite(value):
                out[metric_name(r.section, r.name, length, batch, field)] = float(value)
    out.update({metric_name("must", k): float(v) for k, v in figures.items() if v is not None})
    return out


def log_mlflow(
    rows: list[Row], figures: dict, run_params: dict, files: Sequence[Path], workspace: Path
) -> str:
    """One run in the ``raman-benchmarks`` experiment; return its id."""
    from pipeline import registry

    client = registry.connect(create=True)
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment = (
        found.experiment_id
        if found
        else client.create_experiment(EXPERIMENT, artifact_location=registry._artifact_root())
    )
    mlflow = registry.mlflow
    with mlflow.start_run(experiment_id=experiment, run_name="speed") as run:
        mlflow.log_params(run_params)
        mlflow.log_metrics(metrics_of(rows, figures))
        tags = {f"env.{k}": v for k, v in registry.environment().items()}
        tags.update(
            code_commit=registry.git_commit(ROOT), workspace_commit=registry.git_commit(workspace)
        )
        mlflow.set_tags(tags)
        for path in files:
            mlflow.log_artifact(str(path))
    return run.info.run_id


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--params", type=Path, default=None, help="default: WORKSPACE/params.yaml")
    parser.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    parser.add_argument("--onnx", type=Path, action="append", default=[], help="another network")
    parser.add_argument("--repro", action="store_true", help="also time `dvc repro` (15-30 min)")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("reports/speed.csv"), help="in WORKSPACE")
    parser.add_argument("--eval-n", type=int, default=None, help="section (e) spectra")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--flops-per-cycle", type=int, default=None)
    parser.add_argument(
        "--sections", default="abcde", help="which sections to run, e.g. 'ab' (default: all)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    # idle OpenMP threads must not spin on a shared machine (scripts/env.sh); before torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", ".*Add type hints", UserWarning)  # mlflow, loading a pyfunc
    args = parse_args(argv)
    onnx_paths = [p.resolve() for p in args.onnx]
    workspace = args.workspace.resolve()
    params_path = (args.params or workspace / "params.yaml").resolve()
    out = args.out if args.out.is_absolute() else workspace / args.out
    os.chdir(workspace)  # the store, reports/ and mlflow's relative paths are the workspace's
    sizes = QUICK if args.quick else Sizes()
    sizes = dataclasses.replace(
        sizes, eval_n=args.eval_n or sizes.eval_n, repeats=args.repeats or sizes.repeats
    )
    params = load_params(params_path)
    say = Printout()
    peak, cpu = cpu_description(args.flops_per_cycle)
    say(f"speed benchmark: workspace {workspace}, params {params_path}, code {ROOT}")
    say(cpu)
    say(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    say(f"pybaselines uses pentapy: {pentapy_in_use()}; simulated spectra: seed {SEED} (+L)")
    say(f"sizes: {dataclasses.asdict(sizes)}")

    rows: list[Row] = []
    macs: dict[str, int] = {}
    if "a" in args.sections:
        inference, macs = inference_rows(params, sizes, network_specs(onnx_paths, say), peak, say)
        rows += inference
    if "b" in args.sections:
        rows += training_rows(params, sizes)
    if "c" in args.sections:
        rows += [simulation_row(params_path, sizes)]
    if "d" in args.sections and args.repro:
        rows += [repro_row(workspace, say)]
    if "e" in args.sections:
        rows += classical_eval_rows(params, sizes.eval_n)

    say()
    for label, n in macs.items():
        say(f"{label}: {n / 1e6:,.1f} M MACs = {2 * n / 1e6:,.1f} MFLOP/spectrum (at its grid)")
    for section, title in TITLES.items():
        chosen = [dataclasses.asdict(r) for r in rows if r.section == section]
        say()
        say(title)
        if chosen:
            say(format_table(chosen, COLUMNS[section]))
        elif section == "repro":
            say("  not measured (run with --repro; it takes 15-30 minutes)")
        else:
            say("  not run (--sections)")
    max_ratio = getattr(getattr(params, "student", None), "max_rmse_ratio", RMSE_LIMIT)
    figures = must_show(rows, max_ratio)
    say()
    for line in must_show_lines(figures):
        say(line)
    say(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    write_csv(out, rows)
    text_path = out.with_suffix(".txt")
    text_path.write_text(say.text)
    print(f"wrote {out} and {text_path}")
    if not args.no_mlflow:
        run_params = {"quick": args.quick, "seed": SEED, "params": str(params_path)}
        run_params.update({f"sizes.{k}": v for k, v in dataclasses.asdict(sizes).items()})
        run_id = log_mlflow(rows, figures, run_params, [out, text_path], workspace)
        print(f"logged to MLflow: experiment {EXPERIMENT}, run {run_id}")


if __name__ == "__main__":
    main()
