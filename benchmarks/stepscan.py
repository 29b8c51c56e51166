"""How to merge the overlaps of a step-and-repeat scan: ``mean`` or ``keep`` (spectra_stepscan).

    python benchmarks/stepscan.py [--cases ../shared/cases]

Two measurements, one table each:

1. Simulated, with a known truth: a spectrum of Lorentzian bands on a curved background,
   sampled by two windows on their own grids (step 0.8 cm-1, the second shifted by a
   fraction of a step), each with its own Gaussian noise (sigma 1), the second lower by 0-3
   sigmas (a window's response not flattened exactly). The RMSE of each merge against the
   truth (the first window's level) in the overlap, in noise sigmas, median of 200 draws.
2. Real: the Renishaw paracetamol step-scan of ``../shared/cases``: in each overlap, how far
   apart the two windows are (median of the first minus the second interpolated there, in
   the first's noise sigmas, and as a percent of the intensity), and the noise of each merge
   in the overlap (sigma from second differences, as :func:`pipeline.quality.case_verdict`
   measures it) over the noise just outside.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

from pipeline.spectra_stepscan import _windows, merge_windows  # noqa: E402

HOW = ("mean", "keep", "auto")


def noise(y: np.ndarray) -> float:
    """1.4826 x the MAD of the second differences / sqrt(6) (the cases' README)."""
    d = np.diff(y, 2)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(6))


def truth(x: np.ndarray) -> np.ndarray:
    bands = sum(
        a / (1 + ((x - c) / w) ** 2) for a, c, w in [(50, 1030, 4), (20, 1060, 8), (35, 1100, 3)]
    )
    return bands + 100 + 0.05 * (x - 1000) + 2e-4 * (x - 1050) ** 2


def simulated(rng: np.random.Generator, apart: float, offset: float) -> dict[str, float]:
    h = 0.8
    a = 1000 + h * np.arange(100)  # 1000-1079.2
    b = 1040 + offset * h + h * np.arange(100)  # overlap 1040-1079
    ya = truth(a) + rng.normal(0, 1, a.size)
    yb = truth(b) - apart + rng.normal(0, 1, b.size)
    x, y = np.concatenate([a, b]), np.concatenate([ya, yb])
    out = {}
    for how in HOW:
        mx, my, _ = merge_windows(x, y, how)
        inside = (mx >= b[0]) & (mx <= a[-1])
        out[how] = float(np.sqrt(np.mean((my[inside] - truth(mx[inside])) ** 2)))
    return out


def real(path: Path) -> None:
    x, y = np.loadtxt(path, unpack=True)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    windows = _windows(xs)
    merged = {how: merge_windows(x, y, how) for how in HOW}
    print(f"\n{path.name}: {len(windows)} windows of {[len(w.index) for w in windows]} points")
    print(
        "overlap (cm-1)   | points | first-second (sigma) | (%)   | "
        + " | ".join(f"noise {h} in/out" for h in HOW)
    )
    for wa, wb in zip(windows, windows[1:], strict=False):
        xa, ya, xb, yb = xs[wa.index], ys[wa.index], xs[wb.index], ys[wb.index]
        inside = (xa >= xb[0]) & (xa <= xb[-1])
        diff = ya[inside] - np.interp(xa[inside], xb, yb)
        sigma = noise(ya[~inside])
        ratios = []
        for how in HOW:
            mx, my, _ = merged[how]
            lo, hi = xb[0], xa[-1]
            ov = (mx >= lo) & (mx <= hi)
            width = hi - lo
            near = ((mx >= lo - width) & (mx < lo)) | ((mx > hi) & (mx <= hi + width))
            ratios.append(f"{noise(my[ov]) / noise(my[near]):.2f}")
        print(
            f"{xb[0]:7.1f}-{xa[-1]:7.1f} | {inside.sum():6d} | "
            f"{np.median(diff) / sigma:+20.2f} | {100 * np.median(diff / ya[inside]):+5.1f} | "
            + " | ".join(f"{r:>16}" for r in ratios)
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT.parent / "shared" / "cases")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print("simulated: RMSE in the overlap / noise sigma (200 draws, median)")
    print("apart (sigma) | grid offset | " + " | ".join(f"{h:>6}" for h in HOW))
    for apart in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        for offset in (0.0, 0.5):
            runs = [simulated(rng, apart, offset) for _ in range(200)]
            cells = " | ".join(f"{np.median([r[h] for r in runs]):6.3f}" for h in HOW)
            print(f"{apart:13.1f} | {offset:11.1f} | {cells}")
    case = args.cases / "renishaw-stepscan-overlap" / "paracetamol.txt"
    if case.is_file():
        real(case)


if __name__ == "__main__":
    main()
