"""Peak memory of ``raman-baseline correct`` on one very large two-column text file.

Issue 13, item 8: the peak resident memory of ``correct`` must be at most 4 times the size
of the input file. This script writes a realistic file of ``--rows`` rows (10 million by
default): one long spectrum, Raman shift and intensity with six decimals as instrument
software exports them (``%.6f``, a header line, comma-delimited), Lorentzian bands on a smooth
fluorescence background with Poisson-like noise. It then runs
``/usr/bin/time -v raman-baseline correct FILE -o OUT`` once per method (the default method,
and ``--method arpls``), each in an empty working folder (so the shipped model is used), and
prints per run: the file's size, the peak RSS, their ratio, the wall time, the CPU time and
the exit status; with the CPU (``lscpu`` model and family, AVX-512 BF16 or not) and the load
average before and after, since other work shares the machine.

It asserts nothing: ``tests/test_spectra_large.py`` checks the memory each byte of a smaller
file adds (at most 4 bytes).

Usage (from the repository root, inside the environment)::

    python benchmarks/big_file.py --file /tmp/big.csv          # writes it if missing
    python benchmarks/big_file.py --rows 2000000 --methods arpls
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's benchmarks, not an installed copy

from benchmarks.common import cpu_line, load_average  # noqa: E402

ROWS = 10_000_000
LIMIT = 4.0  # the bound: peak RSS / file size
METHODS = ("default", "arpls")  # "default": no --method, what a user gets
CHUNK = 500_000  # rows written per block


def spectrum_block(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Intensities (counts) at the Raman shifts ``x`` (cm-1): bands on a fluorescence background.

    The background is a broad Gaussian plus a gentle slope (a fluorescence hump, thousands of
    counts); twelve Lorentzian bands of 4-12 cm-1 half-width, a few hundred to a few thousand
    counts tall; noise with the standard deviation of shot noise (square root of the signal).
    """
    background = 4000.0 * np.exp(-(((x - 1800.0) / 1400.0) ** 2)) + 0.3 * x + 800.0
    centres = np.array([225, 420, 520, 785, 1001, 1086, 1332, 1450, 1580, 2330, 2900, 3060.0])
    heights = np.array([900, 600, 3000, 400, 2500, 700, 1200, 500, 1800, 300, 1500, 800.0])
    widths = np.array([6, 8, 4, 10, 5, 7, 12, 9, 6, 11, 8, 7.0])
    bands = np.zeros_like(x)
    for c, h, w in zip(centres, heights, widths, strict=True):
        bands += h / (1.0 + ((x - c) / w) ** 2)
    signal = background + bands
    return signal + rng.standard_normal(x.size) * np.sqrt(signal)


def write_file(path: Path, rows: int, seed: int = 0, start: float = 100.0, stop: float = 3500.0):
    """Write ``rows`` rows ``shift,intensity`` (``%.6f``) after a header line; the file's bytes.

    The shifts are evenly spaced from ``start`` to ``stop`` cm-1 (their six decimals keep them
    strictly increasing for up to about 3e9 rows over this range). Written in blocks, so the
    writer never holds the whole table.
    """
    rng = np.random.default_rng(seed)
    step = (stop - start) / (rows - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("Raman shift (cm-1),Intensity (counts)\n")
        for first in range(0, rows, CHUNK):
            x = start + step * np.arange(first, min(first + CHUNK, rows), dtype=np.float64)
            np.savetxt(f, np.column_stack([x, spectrum_block(x, rng)]), fmt="%.6f", delimiter=",")
    return path.stat().st_size


def parse_time_v(text: str) -> dict:
    """Peak RSS (bytes), wall time (s), CPU time (s) and CPU use from ``/usr/bin/time -v``."""

    def field(name: str) -> str:
        found = re.search(rf"^\s*{re.escape(name)}:\s*(.+)$", text, re.MULTILINE)
        if not found:
            raise ValueError(f"no {name!r} in /usr/bin/time -v output")
        return found.group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    return {
        "peak_rss": int(field("Maximum resident set size (kbytes)")) * 1024,
        "wall_s": wall,
        "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
        "cpu_percent": field("Percent of CPU this job got"),
    }


def run_correct(path: Path, method: str) -> dict:
    """``/usr/bin/time -v raman-baseline correct PATH -o OUT`` in an empty folder; its figures."""
    with tempfile.TemporaryDirectory(prefix="big_file_") as work:
        cmd = ["/usr/bin/time", "-v", "raman-baseline", "correct", str(path.resolve()), "-o", "out"]
        if method != "default":
            cmd += ["--method", method]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        figures = parse_time_v(done.stderr)
        outputs = sorted(p.name for p in (Path(work) / "out").glob("*"))
        tail = [line for line in done.stderr.splitlines() if line and not line[0].isspace()]
    return {
        "method": method,
        "status": done.returncode,
        "outputs": outputs,
        **figures,
        "said": (done.stdout.strip().splitlines() or [""])[-1] or (tail[-1] if tail else ""),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, default=Path(tempfile.gettempdir()) / "big_spectrum.csv")
    p.add_argument("--rows", type=int, default=ROWS, help=f"rows of the file (default {ROWS:,})")
    p.add_argument("--rewrite", action="store_true", help="write the file even if it exists")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help="default and/or others")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args(argv)

    if args.rewrite or not args.file.exists():
        start = time.perf_counter()
        write_file(args.file, args.rows)
        print(f"wrote {args.file} ({args.rows:,} rows) in {time.perf_counter() - start:.0f} s")
    size = args.file.stat().st_size
    print(f"file: {args.file}, {size / 1e6:,.1f} MB")
    print(f"CPU: {cpu_line()}; load average before: {load_average()}")
    rows = []
    for method in args.methods:
        r = run_correct(args.file, method)
        r["ratio"] = r["peak_rss"] / size
        r["verdict"] = "PASS" if r["ratio"] <= LIMIT and r["status"] == 0 else "FAIL"
        rows.append(r)
        print(
            f"{method:>8}: peak RSS {r['peak_rss'] / 1e6:,.0f} MB = {r['ratio']:.2f} x the file "
            f"({r['verdict']} against {LIMIT:g} x), wall {r['wall_s']:.0f} s, "
            f"CPU {r['cpu_s']:.0f} s ({r['cpu_percent']}), exit {r['status']}, "
            f"outputs {r['outputs']}"
        )
        if r["status"]:
            print(f"          said: {r['said']}")
    print(f"load average after: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({"file_bytes": size, "cpu": cpu_line(), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
