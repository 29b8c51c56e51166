"""Fit the empirical background family once, offline: ``pipeline/backgrounds.npz``.

    python benchmarks/empirical_backgrounds.py [--real ../shared/data/real]
                                               [--out pipeline/backgrounds.npz]
                                               [--length 512] [--log10-lam 7]

Every spectrum under ``--real`` (:func:`pipeline.realdata.load`: one record per point of a
multi-point file) is resampled linearly onto ``--length`` points evenly spaced over its own
axis (increasing shift), then fitted with arPLS (pybaselines, Baek et al., Analyst 140, 250,
2015) at a large ``lam`` (``10 ** --log10-lam`` on that grid): a strongly smoothed lower
envelope that follows the fluorescence and passes under the Raman bands. Each fit is scaled
to span [0, 1]; near-duplicates (points of one map) are dropped. The result, float32
``(n, length)`` under ``backgrounds`` with the source of each row under ``source``, is what
:mod:`pipeline.regimes` warps into the ``empirical`` family.

pybaselines is imported here only: the training path reads the fitted file, so a machine
without pybaselines (the GPU box) trains with it all the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from pybaselines import Baseline  # noqa: E402

from pipeline.realdata import load  # noqa: E402

SIMILAR = 0.02  # rows closer than this RMS (in [0, 1] units) to a kept row are duplicates


def fit(x: np.ndarray, y: np.ndarray, length: int, log10_lam: float) -> np.ndarray:
    """arPLS lower envelope of ``y`` on ``length`` even points over ``x``, spanning [0, 1]."""
    grid = np.linspace(x[0], x[-1], length)
    resampled = np.interp(grid, x, y)
    baseline, _ = Baseline(np.arange(length)).arpls(resampled, lam=10.0**log10_lam)
    return (baseline - baseline.min()) / max(np.ptp(baseline), 1e-12)


def main(argv: list[str] | None = None) -> int:
    """Fit, deduplicate, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--out", type=Path, default=ROOT / "pipeline" / "backgrounds.npz")
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--log10-lam", type=float, default=7.0)
    args = parser.parse_args(argv)
    records, problems = load(args.real)
    for path, why in problems:
        print(f"skipped {path}: {why}")
    kept: list[np.ndarray] = []
    sources: list[str] = []
    for r in records:
        b = fit(r.x, r.y.astype(np.float64), args.length, args.log10_lam)
        if any(np.sqrt(np.mean((b - k) ** 2)) < SIMILAR for k in kept):
            continue
        kept.append(b)
        sources.append(f"{r.file} {r.label}")
    np.savez_compressed(
        args.out, backgrounds=np.array(kept, dtype=np.float32), source=np.array(sources)
    )
    print(f"{len(records)} real spectra, {len(kept)} distinct backgrounds -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
