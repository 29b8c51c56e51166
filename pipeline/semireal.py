"""The semi-real set: real Raman bands on simulated backgrounds, so the true baseline is known.

Each spectrum, on the network's grid of ``simulate.length`` points, is::

    observed = baseline + bands + noise

- ``bands``: a processed RRUFF spectrum (:mod:`pipeline.rruff`: the real band shapes,
  positions and the measurement's own noise, background removed by the RRUFF curators),
  linearly resampled onto a uniform grid over its own axis, divided by its maximum and
  multiplied by a ratio (tallest band / background range) drawn log-uniform from
  ``semireal.ratio``;
- ``baseline``: one of :func:`pipeline.simulate.baselines`' families (weights
  ``simulate.baseline.families``), spanning [0, 1];
- ``noise``: Gaussian, sigma drawn uniform from ``semireal.read_noise`` (background-range
  units), on top of the real noise the bands carry.

The validation and test sets are built from the validation and test parts of the RRUFF
split (:func:`pipeline.rruff.split`: by crystal mount), so no source spectrum is in both.
Sources are used in turn (spectrum ``i`` from source ``i mod n_sources``), each time with a
fresh background, ratio and noise. The same params and seed give identical arrays.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.config import BASELINE_FAMILIES, SemirealParams, SimulateParams
from pipeline.metrics import Block
from pipeline.rruff import Pairs
from pipeline.simulate import SpectrumSet, baselines


def band_profiles(sources: Pairs, length: int) -> np.ndarray:
    """Each processed spectrum on a uniform grid of ``length`` points, its maximum at 1.

    Returns float64 ``(len(sources), length)``.

    Raises
    ------
    ValueError
        A processed spectrum with no positive value (no bands to take).
    """
    out = np.empty((len(sources), length))
    for i, (x, processed) in enumerate(zip(sources.x, sources.processed, strict=True)):
        grid = np.linspace(x[0], x[-1], length)
        profile = np.interp(grid, x, processed)
        top = profile.max()
        if not top > 0:
            raise ValueError(f"{sources.names[i]}: the processed spectrum has no band")
        out[i] = profile / top
    return out


def build(
    sources: Pairs, params: SemirealParams, simulate: SimulateParams, n: int, seed: int
) -> tuple[SpectrumSet, np.ndarray]:
    """``n`` semi-real spectra from ``sources``: the set, and each spectrum's source index.

    The set's arrays are float32 ``(n, simulate.length)``; ``read_noise`` is each spectrum's
    added noise sigma, ``family`` its background family (index into
    :data:`pipeline.config.BASELINE_FAMILIES`).
    """
    rng = np.random.default_rng(seed)
    profiles = band_profiles(sources, simulate.length)
    source = np.arange(n) % len(sources)
    weights = simulate.baseline.families
    p = np.array([weights.get(f, 0.0) for f in BASELINE_FAMILIES])
    family = rng.choice(len(BASELINE_FAMILIES), size=n, p=p / p.sum())
    baseline = baselines(rng, simulate, family).astype(np.float64)
    low, high = np.log(params.ratio[0]), np.log(params.ratio[1])
    ratio = np.exp(rng.uniform(low, high, n))
    read = rng.uniform(*params.read_noise, n)
    peaks = profiles[source] * ratio[:, None]
    observed = baseline + peaks + read[:, None] * rng.standard_normal(baseline.shape)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    spectra = SpectrumSet(
        observed=f32(observed),
        baseline=f32(baseline),
        peaks=f32(peaks),
        read_noise=f32(read),
        family=family.astype(np.int8),
    )
    return spectra, source


def save(path: str | Path, spectra: SpectrumSet, source_names: list[str]) -> None:
    """Write a set as :meth:`pipeline.simulate.SpectrumSet.save` does, plus ``source``.

    ``source``: the RRUFF file name each spectrum's bands came from.
    """
    arrays = {f.name: getattr(spectra, f.name) for f in dataclasses.fields(spectra)}
    np.savez(path, **arrays, families=np.array(BASELINE_FAMILIES), source=np.array(source_names))


def blocks(spectra: SpectrumSet) -> list[Block]:
    """A set on one grid as a benchmark: one block, the axis the point index (float64)."""
    x = np.arange(spectra.observed.shape[1], dtype=np.float64)
    return [(x, spectra.observed.astype(np.float64), spectra.baseline.astype(np.float64))]


def real_benchmarks(semireal_dir: str | Path, rruff_dir: str | Path, part: str) -> dict:
    """``{"semireal": blocks, "rruff": blocks}`` of one part (``val`` or ``test``).

    As the ``semireal`` stage wrote them.
    """
    spectra = SpectrumSet.load(Path(semireal_dir) / f"{part}.npz")
    pairs = Pairs.load(Path(rruff_dir) / f"{part}.npz")
    return {"semireal": blocks(spectra), "rruff": list(pairs.blocks())}
