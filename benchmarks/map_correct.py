"""``raman-baseline correct-map`` on a large map against ``correct`` on the same spectra.

Issue 14's must-show: a map of 1,000,000 spectra of 512 points (float32 Zarr, written here)
corrected on 2 cores by 2 worker processes at >= 90% of the spectra/s of ``correct`` on the
same spectra and cores, the peak memory of the whole run <= 3 GB, outputs equal to
``correct``'s (max difference <= 1e-5 of each spectrum's range) on a 1,000-spectrum sample,
and a run killed halfway that, rerun, runs only the missing chunks.

What runs, each as a command in a subprocess, timed end to end (start-up included) and
measured by sampling the RSS of the command's whole process tree with psutil every 0.1 s (a
LocalCluster's workers are child processes that ``/usr/bin/time -v`` does not add up; RSS sums
count shared library pages once per process, so the figure is an upper bound):

1. ``correct-map MAP -o OUT --workers 2``: the full run (spectra/s, peak memory);
2. ``correct-map MAP -o OUT2 --workers 2`` killed (SIGKILL to the whole tree) once half the
   chunks are marked done, then rerun: the chunks each run did, as the command prints them;
3. ``correct SUBSET.npz -o DIR --no-plots``: the same first ``--correct-spectra`` spectra of
   the map (all of them by default when the map has at most 100,000) as one ``.npz`` batch:
   ``correct``'s engine (ONNX Runtime on both cores through its thread pool, the classical
   part in its process); spectra/s, peak memory; and the sample's outputs against run 1's.

``--one-pass`` leaves run 1 out: the killed run and its rerun are then the timed run (their
wall times and CPU seconds added, two cluster start-ups included, so the rate is a lower
bound; the peak is the larger of the two) and the rerun's output is the one compared. It halves
the time of the 1,000,000-spectrum size (about an hour instead of two on 2 cores).

Both commands run the default method (``refined``, the shipped model: the working folder has
no registry and no params.yaml). Sizes that do not fit the time at hand: ``--spectra`` smaller,
and the printed extrapolation to 1,000,000 (kept apart from the measurement).

Usage (from the repository root, inside the environment)::

    python benchmarks/map_correct.py --spectra 1000000 --one-pass   # the must-show size
    python benchmarks/map_correct.py --spectra 40000       # ~10 minutes on a busy 2-core VM
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

from benchmarks.common import cpu_line, load_average  # noqa: E402

POINTS, COLS, TARGET = 512, 1000, 1_000_000
RAN = re.compile(r"(\d+) of (\d+) chunks run \((\d+) done before\): (\d+) spectra in ([\d.]+) s")


def write_map(path: Path, spectra: int, seed: int = 0) -> tuple[tuple[int, ...], float]:
    """A float32 Zarr map ``(spectra / 1000, 1000, 512)``: bands on fluorescence, with noise.

    Written row block by row block (memory bounded); returns its shape and the seconds taken.
    """
    import zarr

    started = time.perf_counter()
    cols = min(COLS, spectra)
    shape = (spectra // cols, cols, POINTS)
    x = np.linspace(200.0, 3200.0, POINTS)
    t = (x - x[0]) / (x[-1] - x[0])
    group = zarr.open_group(path, mode="w")
    group.create_array("wavenumber", data=x)
    intensity = group.create_array("intensity", shape=shape, chunks=(4, cols, POINTS), dtype="f4")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(300, 3100, 12)
    for row in range(0, shape[0], 4):
        rows = min(4, shape[0] - row)
        n = (rows, cols, 1)
        background = rng.uniform(500, 5000, n) * np.exp(-rng.uniform(0.5, 3, n) * t)
        background += rng.uniform(0, 1500, n) * (1 - t) ** 2 + 800
        heights = rng.uniform(0, 600, (rows, cols, len(centres)))
        bands = heights @ (1 / (1 + ((x - centres[:, None]) / 9) ** 2))
        noisy = background + bands + rng.normal(0, 8, (rows, cols, POINTS))
        intensity[row : row + rows] = noisy.astype(np.float32)
    return shape, time.perf_counter() - started


def measured(command: list[str], cwd: Path, kill_when=None) -> dict:
    """Run ``command``: wall time, peak RSS and CPU seconds of its process tree, output, status.

    ``kill_when()``, polled with the samples: when it answers True the whole tree is killed
    (SIGKILL), as a crash or an out-of-memory kill would end the run.
    """
    import psutil

    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        root, peak, killed, cpu, trace = psutil.Process(process.pid), 0, False, {}, []
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                rss = sum(_rss(p) for p in tree)
                peak = max(peak, rss)
                trace.append((time.perf_counter() - started, rss))
                cpu.update({p.pid: _cpu(p, cpu.get(p.pid, 0.0)) for p in tree})
            except psutil.NoSuchProcess:
                pass
            if kill_when is not None and not killed and kill_when():
                for member in reversed(tree):
                    _kill(member)
                killed = True
            time.sleep(0.1)
        log.seek(0)
        output = log.read()
    wall = time.perf_counter() - started
    halves = [max((r for t, r in trace if (t < wall / 2) == first), default=0) for first in (1, 0)]
    return {
        "wall": wall,
        "peak": peak,
        "halves": halves,
        "out": output,
        "rc": process.returncode,
        "cpu": sum(cpu.values()),
    }


def _cpu(process, last: float) -> float:
    """User + system CPU seconds of one process so far (its last sample once it is gone)."""
    import psutil

    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.NoSuchProcess:
        return last


def _rss(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def _kill(process) -> None:
    import psutil

    try:
        process.send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        pass


def chunk_count(out: Path) -> int:
    """How many chunks the output has (0 before it exists)."""
    import zarr

    try:
        return int(np.prod(zarr.open_group(out, mode="r")["done"].shape))
    except Exception:  # not created yet
        return 0


def halfway(out: Path) -> bool:
    """Whether at least half of the output's chunks are marked done."""
    total = chunk_count(out)
    return total > 0 and chunks_done(out) >= total // 2


def chunks_done(out: Path) -> int:
    """How many chunks the output marks done (0 before it exists)."""
    import zarr

    try:
        return int(np.asarray(zarr.open_group(out, mode="r")["done"][...]).sum())
    except Exception:  # not created yet
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", type=int, default=TARGET)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=4096, help="spectra per chunk")
    parser.add_argument("--correct-spectra", type=int, default=0, help="0: all up to 100,000")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--folder", type=Path, help="default: a temporary folder, removed")
    parser.add_argument(
        "--one-pass",
        action="store_true",
        help="time the killed run plus its rerun instead of a separate full run",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="map-bench-") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        return run(args, folder)


def run(args, folder: Path) -> int:
    import zarr

    print(f"CPU: {cpu_line()}; affinity {len(os.sched_getaffinity(0))} cores")
    print(f"load average before: {load_average()}")
    shape, made = write_map(folder / "map.zarr", args.spectra)
    n = int(np.prod(shape[:-1]))
    print(f"map: {shape} float32 Zarr ({n:,} spectra, {n * POINTS * 4 / 1e9:.2f} GB), {made:.0f} s")
    tool = [str(Path(sys.executable).parent / "raman-baseline")]
    common = ["--workers", str(args.workers), "--chunk", str(args.chunk), "--no-progress"]
    if not args.one_pass:
        full = measured([*tool, "correct-map", "map.zarr", "-o", "out.zarr", *common], folder)
        ran = RAN.search(full["out"])
        assert full["rc"] == 0 and ran, full["out"]
        report("correct-map", n, full, [ran], args.workers)
    half = measured(
        [*tool, "correct-map", "map.zarr", "-o", "resumed.zarr", *common],
        folder,
        kill_when=lambda: halfway(folder / "resumed.zarr"),
    )
    before, total = chunks_done(folder / "resumed.zarr"), chunk_count(folder / "resumed.zarr")
    rerun = measured([*tool, "correct-map", "map.zarr", "-o", "resumed.zarr", *common], folder)
    again = RAN.search(rerun["out"])
    assert rerun["rc"] == 0 and again, rerun["out"]
    print(
        f"killed (SIGKILL, whole tree) after {half['wall']:.1f} s with {before} of {total} chunks "
        f"done; rerun: {again.group(1)} chunks run, {again.group(3)} skipped "
        f"({again.group(4)} spectra in {float(again.group(5)):.1f} s)"
    )
    if args.one_pass:
        full = {
            "wall": half["wall"] + rerun["wall"],
            "cpu": half["cpu"] + rerun["cpu"],
            "peak": max(half["peak"], rerun["peak"]),
            "halves": [half["peak"], rerun["peak"]],
        }
        report("correct-map, killed run + rerun", n, full, [again], args.workers)
    m = args.correct_spectra or min(n, 100_000)
    y = zarr.open_group(folder / "map.zarr", mode="r")["intensity"][...].reshape(-1, POINTS)[:m]
    x = zarr.open_group(folder / "map.zarr", mode="r")["wavenumber"][...]
    np.savez(folder / "subset.npz", x=x, y=y)
    del y
    plain = measured(
        [*tool, "correct", "subset.npz", "-o", "corrected", "--no-plots", "--no-progress"], folder
    )
    assert plain["rc"] == 0, plain["out"]
    print(
        f"correct, one process (ONNX Runtime threads = cores): {m:,} spectra in "
        f"{plain['wall']:.1f} s end to end = {m / plain['wall']:.0f} spectra/s; "
        f"peak RSS {plain['peak'] / 1e9:.2f} GB; {1e3 * plain['cpu'] / m:.2f} CPU ms per spectrum"
    )
    ratio = (n / full["wall"]) / (m / plain["wall"])
    print(f"ratio correct-map / correct, spectra/s end to end: {ratio:.2f} (target >= 0.90)")
    per_cpu = (plain["cpu"] / m) / (full["cpu"] / n)
    print(f"ratio correct / correct-map, CPU seconds per spectrum: {per_cpu:.2f}")
    compare(folder, "resumed.zarr" if args.one_pass else "out.zarr", m, args.sample)
    if n < TARGET:
        rate = n / full["wall"]
        print(
            f"extrapolation (not measured): {TARGET:,} spectra at {rate:.0f} spectra/s would take "
            f"{TARGET / rate / 60:.0f} min"
        )
    print(f"load average after: {load_average()}")
    return 0


def report(what: str, n: int, run: dict, ran: list, workers: int) -> None:
    """Print a timed correct-map run: spectra/s end to end and once up, memory, CPU per spectrum."""
    up = sum(int(r.group(4)) for r in ran) / sum(float(r.group(5)) for r in ran)
    print(
        f"{what}, {workers} workers: {n:,} spectra in {run['wall']:.1f} s end to end "
        f"= {n / run['wall']:.0f} spectra/s ({up:.0f} spectra/s once the cluster is up); "
        f"peak RSS of the process tree {run['peak'] / 1e9:.2f} GB; "
        f"{1e3 * run['cpu'] / n:.2f} CPU ms per spectrum (all processes); peak RSS in the "
        f"first and second part of the run: {run['halves'][0] / 1e9:.2f}, "
        f"{run['halves'][1] / 1e9:.2f} GB"
    )


def compare(folder: Path, output: str, m: int, sample: int) -> None:
    """Largest difference between the two outputs, relative to each spectrum's range."""
    import zarr

    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(m, size=min(sample, m), replace=False))
    ours = zarr.open_group(folder / output, mode="r")["baseline"][...].reshape(-1, POINTS)
    theirs = np.load(folder / "corrected" / "subset.npz")
    y = theirs["y"][rows]
    error = np.abs(ours[rows] - theirs["baseline"][rows]).max(axis=1) / np.ptp(y, axis=1)
    everywhere = np.abs(ours[:m] - theirs["baseline"]).max(axis=1) / np.ptp(theirs["y"], axis=1)
    print(
        f"outputs on {len(rows)} random spectra: max |correct-map - correct| = "
        f"{error.max():.2e} of the spectrum's range (bound 1e-5); on all {m:,}: "
        f"{everywhere.max():.2e}"
    )


if __name__ == "__main__":
    sys.exit(main())
