"""What the benchmark scripts share: their rows, printouts, options, timing and the CPU.

Every script of this folder prints its own table and, with ``--json OUT``, writes its rows and
printed notes for the runner ``speed.py``, which prints them all as one table. Nothing here
loads a model or opens a store; ``tests/test_benchmarks_common.py`` checks the pure helpers.
Only the standard library and numpy are imported at the top (``train_speed.py`` must run on a
machine with torch and little else).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

# idle OpenMP threads must not spin on a shared machine (scripts/env.sh); before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SEED = 777  # simulated benchmark spectra; the pipeline's sets use simulate.seed * 1000 + 0, 1, 2
PRODUCTION_LABEL, FAST_LABEL = "production (fp32)", "fast (student)"
# the must-show targets: figures to print PASS/FAIL against (speed.py), not assertions
SPEED_TARGET, SPEED_GOAL = 2.0, 3.0  # fast network / arPLS spectra/s, batch 1,024, L 512
TRAIN_TARGET = 2.0  # project training step / plain fp32 eager
SIM_TARGET = 50_000.0  # simulated spectra/s per core
# the cases of ../shared/cases judged by the case rule (all load since issue 13; the verdicts
# of the others are in the issue 13 closing note, not benchmarked here)
CASES = ("si-wafer-labspec", "rruff-anatase-raw", "hdpe-horiba-csv")


@dataclasses.dataclass
class Row:
    """One line of a table; ``rate`` is spectra (or samples) per second."""

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


# ------------------------------------------------------------------------- printing

# (key, header, format); format "" is text, left-aligned (format_table)
_LENGTH = ("length", "L", "{}")
_BATCH = ("batch", "batch", "{:,}")
_CORES = ("cores", "cores", "")
_SPECTRA_S = ("rate", "spectra/s", "{:,.0f}")
_RMSE = ("rmse", "RMSE", "{:.5f}")
_NOTE = ("note", "", "")
COLUMNS = {
    "inference": [
        ("name", "model / method", ""),
        _LENGTH,
        _BATCH,
        _CORES,
        _SPECTRA_S,
        ("ratio", "x arPLS", "{:.2f}"),
        _RMSE,
        ("mae", "MAE", "{:.5f}"),
        ("rmse_ratio", "RMSE x prod", "{:.3f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("peak", "of peak", "{:.1%}"),
    ],
    "train": [
        ("name", "training step", ""),
        _LENGTH,
        _BATCH,
        _CORES,
        ("rate", "samples/s", "{:,.1f}"),
        ("ratio", "x plain", "{:.2f}"),
        _NOTE,
    ],
    "simulate": [("name", "simulation", ""), _LENGTH, _CORES, _SPECTRA_S, _NOTE],
    "repro": [("name", "pipeline", ""), _CORES, ("seconds", "wall s", "{:,.0f}"), _NOTE],
    "evaluate": [
        ("name", "classical evaluation", ""),
        _LENGTH,
        ("batch", "spectra", "{:,}"),
        _CORES,
        ("seconds", "wall s", "{:,.1f}"),
        _SPECTRA_S,
        _RMSE,
        _NOTE,
    ],
}
TITLES = {
    "inference": "(a) inference through `correct`'s path (best of repeats)",
    "train": "(b) training, default model",
    "simulate": "(c) simulation",
    "repro": "(d) end-to-end `dvc repro`",
    "evaluate": "(e) classical evaluation at scale",
}


def format_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str, str]]) -> str:
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


def section_table(section: str, rows: Sequence[Row]) -> str:
    """The title and table of one section's rows (those of other sections are left out)."""
    chosen = [dataclasses.asdict(r) for r in rows if r.section == section]
    return f"{TITLES[section]}\n{format_table(chosen, COLUMNS[section])}"


class Printout:
    """Print and keep every line: the notes of a script's JSON, the runner's ``.txt``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.extend(text.splitlines() or [""])

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def case_file(folder: Path) -> Path | None:
    """The instrument export of one case folder (not ``SOURCE.txt``, not a ``*_min*`` cut)."""
    files = sorted(
        f for f in Path(folder).glob("*") if f.name != "SOURCE.txt" and "_min" not in f.name
    )
    return files[0] if files else None


def case_spectra(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{case: (x, y)}`` of each of :data:`CASES` under ``folder`` whose file loads.

    A case that does not load is printed and left out.
    """
    from pipeline.spectra_io import read_spectra  # light: no torch, no onnxruntime

    out = {}
    for case in CASES:
        path = case_file(Path(folder) / case)
        try:
            s = read_spectra(path)
        except Exception as exc:  # noqa: BLE001 - a case that does not load is reported
            print(f"{case}: {path} does not load: {exc}")
            continue
        out[case] = (s.x, np.atleast_2d(s.y))
    return out


CASE_COLUMNS = (
    ("case", "case", ""),
    ("method", "method", ""),
    ("median", "median (sigma)", "{:+.2f}"),
    ("negative", "% below -3 sigma", "{:.2f}"),
    ("passes", "passes", ""),
)


def case_row(case: str, method: str, y: np.ndarray, baseline: np.ndarray) -> dict:
    """One case corrected by one method, judged by the cases' README rule (:data:`CASE_COLUMNS`).

    :func:`pipeline.quality.case_verdict` of the first spectrum: its median in noise sigmas,
    the percentage of points below -3 sigmas, and whether it passes.
    """
    from pipeline.quality import case_verdict

    v = case_verdict(y, baseline)
    return {
        "case": case,
        "method": method,
        "median": float(v["median_offset"][0]),
        "negative": 100 * float(v["negative_fraction"][0]),
        "passes": "yes" if v["passes"][0] else "no",
    }


def case_table(methods: Mapping[str, Callable], folder: Path) -> str:
    """Each method's verdict on each case of ``folder`` that loads, as a text table.

    ``methods``: ``{name: BaselineFn}`` (``x (L,), y (N, L) -> baselines (N, L)``); the rule is
    :func:`pipeline.quality.case_verdict`'s (:func:`case_row`).
    """
    rows = []
    for case, (x, y) in case_spectra(folder).items():
        rows += [case_row(case, name, y, fn(x, y)) for name, fn in methods.items()]
    return format_table(rows, CASE_COLUMNS)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# -------------------------------------------------------------- options and output


def parser_for(
    doc: str, full: Mapping[str, int] | None = None, quick: Mapping[str, int] | None = None
) -> argparse.ArgumentParser:
    """The options every script has: ``--json OUT``, and ``--quick`` with one per size.

    ``full`` and ``quick`` map a size's name (``single_calls``, option ``--single-calls``) to
    its default and its ``--quick`` value; :func:`chosen_sizes` reads them back.
    """
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the rows here, for speed.py")
    if full:
        parser.add_argument("--quick", action="store_true", help="small sizes (noisier)")
        for name, value in full.items():
            flag = "--" + name.replace("_", "-")
            parser.add_argument(
                flag, type=int, help=f"default {value:,} (--quick: {quick[name]:,})"
            )
    return parser


def benchmark_parser(doc: str, root: Path) -> argparse.ArgumentParser:
    """A parser with the options of the evaluate_real benchmarks' inputs.

    ``--params`` (default ``root/params.yaml``), and the folders ``--data`` (simulated
    val/test.npz), ``--semireal`` and ``--rruff`` (their val/test.npz), all required.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--params", type=Path, default=root / "params.yaml")
    parser.add_argument("--data", type=Path, required=True, help="simulated val/test.npz")
    parser.add_argument("--semireal", type=Path, required=True, help="semi-real val/test.npz")
    parser.add_argument("--rruff", type=Path, required=True, help="RRUFF parts val/test.npz")
    return parser


def chosen_sizes(
    args: argparse.Namespace, full: Mapping[str, int], quick: Mapping[str, int]
) -> dict[str, int]:
    """The full or ``--quick`` sizes, each replaced by its option when given."""
    base = quick if args.quick else full
    return {name: getattr(args, name) or value for name, value in base.items()}


def write_rows(path: Path, rows: Sequence[Row], notes: Sequence[str]) -> None:
    """A script's rows and printed notes, as JSON for the runner (:func:`read_rows`)."""
    from pipeline.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"rows": [dataclasses.asdict(r) for r in rows], "notes": list(notes)}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def read_rows(path: Path) -> tuple[list[Row], list[str]]:
    """What :func:`write_rows` wrote: the rows and the notes."""
    data = json.loads(path.read_text())
    return [Row(**r) for r in data["rows"]], data["notes"]


def finish(say: Printout, rows: Sequence[Row], json_path: Path | None) -> None:
    """Print the table of each section among ``rows``; write them to ``json_path`` if given."""
    notes = list(say.lines)
    for section in dict.fromkeys(r.section for r in rows):
        say()
        say(section_table(section, rows))
    if json_path is not None:
        write_rows(json_path, rows, notes)


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """The whole table, one row per line, every field."""
    from pipeline.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [f.name for f in dataclasses.fields(Row)]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)


def metric_name(*parts: object) -> str:
    """An MLflow metric name: the parts joined by dots, runs of other characters made ``_``."""
    clean = (re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(p)).strip("_") for p in parts if p)
    return ".".join(p for p in clean if p)


def metrics_of(rows: Sequence[Row], figures: Mapping[str, float | None]) -> dict[str, float]:
    """Every figure of the table, and the must-show ``figures``, as MLflow metrics."""
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


def verdict(value: float | None, threshold: float, at_most: bool = False) -> str:
    """PASS, FAIL or n/a (not measured)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return "PASS" if (value <= threshold if at_most else value >= threshold) else "FAIL"


def must_show(rows: Sequence[Row], max_rmse_ratio: float) -> dict[str, float | None]:
    """The must-show figures (``None``: not measured)."""
    by_key = {(r.section, r.name, r.length, r.batch): r for r in rows}
    fast = by_key.get(("inference", FAST_LABEL, 512, 1024))
    train = [r for r in rows if r.section == "train" and r.ratio is not None]
    sim = [r for r in rows if r.section == "simulate"]
    return {
        "fast_vs_arpls": fast.ratio if fast else None,
        "fast_rmse_ratio": fast.rmse_ratio if fast else None,
        "train_ratio": train[-1].ratio if train else None,
        "sim_per_core": sim[0].rate if sim else None,
        "max_rmse_ratio": max_rmse_ratio,
    }


def must_show_lines(figures: dict[str, float | None]) -> list[str]:
    """Each must-show figure, its target and PASS/FAIL (n/a: not measured)."""

    def show(key: str, fmt: str) -> str:
        return "not measured" if figures[key] is None else fmt.format(figures[key])

    speed, limit = figures["fast_vs_arpls"], figures["max_rmse_ratio"]
    rmse, train, sim = figures["fast_rmse_ratio"], figures["train_ratio"], figures["sim_per_core"]
    return [
        "must-show ratios (figures, not assertions):",
        "  (1) inference, correct's path, batch 1,024, L 512: fast / arPLS spectra/s = "
        f"{show('fast_vs_arpls', '{:.2f}')} (>= {SPEED_TARGET:g}): {verdict(speed, SPEED_TARGET)}"
        f"; goal {SPEED_GOAL:g}: {verdict(speed, SPEED_GOAL)}",
        f"      fast RMSE / fp32 production RMSE = {show('fast_rmse_ratio', '{:.3f}')} "
        f"(<= {limit:g}): {verdict(rmse, limit, at_most=True)}",
        f"  (2) training: project step / plain fp32 eager = {show('train_ratio', '{:.2f}')} "
        f"(>= {TRAIN_TARGET:g}): {verdict(train, TRAIN_TARGET)}",
        f"  (3) simulation spectra/s per core = {show('sim_per_core', '{:,.0f}')} "
        f"(>= {SIM_TARGET:,.0f}): {verdict(sim, SIM_TARGET)}",
    ]


# ------------------------------------------------------------------ measuring


def best_rate(
    estimate: Callable[[np.ndarray], np.ndarray], blocks: Sequence[np.ndarray], repeats: int
) -> tuple[float, np.ndarray]:
    """Best spectra/s of ``estimate`` over every block, after one warm-up call.

    Best, not median: on a shared machine the best run is the one least disturbed by other
    processes. Returns the rate and the estimates of every block, concatenated.
    """
    estimate(blocks[0])
    best, out = math.inf, []
    for _ in range(repeats):
        start = time.perf_counter()
        out = [estimate(b) for b in blocks]
        best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in blocks) / best, np.concatenate(out)


def spectra_at(params, length: int, n: int, seed: int):
    """``n`` spectra of ``length`` points simulated with ``params.simulate`` (a SpectrumSet)."""
    from pipeline.simulate import simulate

    return simulate(dataclasses.replace(params.simulate, length=length), n, seed)


def errors_of(baseline: np.ndarray, spectra, n: int | None = None) -> tuple[float, float]:
    """Mean per-spectrum RMSE and MAE of the first ``n`` (all) spectra's estimated baselines."""
    from pipeline.metrics import mean_errors

    n = len(baseline) if n is None else n
    e = mean_errors(baseline, spectra.baseline[:n], spectra.observed[:n])
    return e["rmse"], e["mae"]


# ------------------------------------------------------------------ the machine


def parse_clock(lscpu: str, cpuinfo: str) -> tuple[float, str]:
    """CPU clock in MHz: lscpu's ``CPU max MHz`` if given, else ``/proc/cpuinfo``'s current."""
    found = re.search(r"^CPU max MHz:\s*([\d.]+)", lscpu, re.MULTILINE)
    if found and float(found.group(1)) > 0:
        return float(found.group(1)), "lscpu CPU max MHz"
    found = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.MULTILINE)
    if found:
        return float(found.group(1)), "current clock, /proc/cpuinfo cpu MHz"
    raise ValueError("no CPU clock in lscpu or /proc/cpuinfo")


def cpu_line() -> str:
    """The CPU as ``lscpu`` names it: model, family, cores, AVX-512 BF16 or not."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout

    def get(key: str) -> str:
        found = re.search(rf"^{key}:\s*(.+)$", out, re.MULTILINE)
        return found.group(1).strip() if found else "?"

    bf16 = "avx512_bf16" if "avx512_bf16" in get("Flags") else "no avx512_bf16"
    return f"{get('Model name')}, family {get('CPU family')}, {os.cpu_count()} cores, {bf16}"


def cpu_description(flops_per_cycle: int | None = None) -> tuple[float, str]:
    """The CPU's fp32 peak in FLOP/s and how it was derived.

    Cores x clock x fp32 FLOPs per cycle per core: 64 with AVX-512 (two FMA units x 16 lanes
    x 2), 32 with AVX2 only, or ``flops_per_cycle``. Assumed, not measured.
    """
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
