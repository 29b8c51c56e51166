"""Real regimes of the simulator beyond the default mixture (issue 12, item 4).

Each regime is switched on by a fraction (or a family weight) in ``params.yaml``'s
``simulate`` section; at 0 it draws no random number, so the spectra of params without it
stay byte-identical. The definitions, the values chosen and why: ``docs/simulation.md``
("Real regimes").

- :func:`dense_counts` and :func:`clustered_centres`: band-dense spectra
  (``peaks.dense_*``): 40-120 bands gathered in a few clusters, overlapping (minerals,
  tissue).
- :func:`add_broad_bands`: one to a few broad Gaussian bands (``peaks.broad_*``: water's
  O-H stretch, glass), narrower than the narrowest background feature.
- :func:`filter_edge`: a rise into, or a cut-off at, the low-shift end of the axis
  (``baseline.edge_*``: an edge or notch filter).
- :func:`empirical`: the ``empirical`` background family: smooth fits of real spectra
  (``pipeline/backgrounds.npz``, fitted offline by ``benchmarks/empirical_backgrounds.py``),
  randomly cropped, warped and tilted (``baseline.warp``, ``baseline.crop``).
- :func:`range_noise`: noise set to 1/10,000 to 1/300 of the spectrum's range
  (``noise.range_*``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from pipeline.config import SimulateParams

BACKGROUNDS = Path(__file__).with_name("backgrounds.npz")  # benchmarks/empirical_backgrounds.py
_F32 = np.float32


def dense_counts(rng: np.random.Generator, params: SimulateParams, counts: np.ndarray):
    """Band counts with the dense spectra's drawn from ``peaks.dense_count``.

    Returns ``(counts, dense)``: the ``(n,)`` counts and the ``(n,)`` bool mask of the dense
    spectra (None, and ``counts`` unchanged, when ``peaks.dense_fraction`` is 0).
    """
    p = params.peaks
    if p.dense_fraction <= 0:
        return counts, None
    n = counts.size
    dense = rng.random(n) < p.dense_fraction
    many = rng.integers(p.dense_count[0], p.dense_count[1] + 1, n)
    return np.where(dense, many, counts), dense


def clustered_centres(
    rng: np.random.Generator,
    params: SimulateParams,
    centre: np.ndarray,
    owner: np.ndarray,
    dense: np.ndarray,
) -> np.ndarray:
    """``centre`` (points, per band) with the dense spectra's bands gathered in clusters.

    Each dense spectrum has ``peaks.dense_clusters`` clusters (uniform over the axis); each of
    its bands sits at one of them plus a Gaussian offset of sigma ``peaks.dense_spread``
    (fraction of the axis, log-uniform per spectrum), clipped to the axis.
    """
    p = params.peaks
    n, length = dense.size, params.length
    k_max = p.dense_clusters[1]
    clusters = rng.random((n, k_max)) * (length - 1)  # (n, k_max) cluster centres
    k = rng.integers(p.dense_clusters[0], k_max + 1, n)
    spread = np.exp(rng.uniform(*np.log(p.dense_spread), n)) * length
    pick = (rng.random(owner.size) * k[owner]).astype(np.int64)
    at = clusters[owner, pick] + spread[owner] * rng.standard_normal(owner.size)
    at = np.clip(at, 0, length - 1).astype(_F32)
    return np.where(dense[owner], at, centre).astype(_F32)


def add_broad_bands(rng: np.random.Generator, params: SimulateParams, out: np.ndarray) -> None:
    """Add broad Gaussian bands to a fraction ``peaks.broad_fraction`` of ``out`` (n, L).

    ``peaks.broad_count`` bands each, FWHM ``peaks.broad_width`` points (log-uniform),
    centres anywhere on the axis, heights ``peaks.amplitude`` times the spectrum's tallest
    narrow band (1 where it has none), before the bands are scaled to their ratio.
    """
    p = params.peaks
    if p.broad_fraction <= 0:
        return
    n, length = out.shape
    rows = np.flatnonzero(rng.random(n) < p.broad_fraction)
    m = p.broad_count[1]
    count = rng.integers(p.broad_count[0], m + 1, rows.size)
    centre = rng.random((rows.size, m)) * (length - 1)
    low, high = np.log(p.broad_width)
    fwhm = np.exp(rng.uniform(low, high, (rows.size, m)))
    height = rng.uniform(*p.amplitude, (rows.size, m)) * (np.arange(m) < count[:, None])
    top = out[rows].max(axis=1)
    height *= np.where(top > 0, top, 1)[:, None]
    x = np.arange(length)
    u = (x[None, None, :] - centre[..., None]) / fwhm[..., None]  # (rows, m, L)
    out[rows] += np.einsum("rm,rml->rl", height, np.exp(-4 * np.log(2) * u * u)).astype(_F32)


def filter_edge(
    rng: np.random.Generator, params: SimulateParams, baseline: np.ndarray, peaks: np.ndarray
) -> None:
    """A filter edge at the low-shift end of a fraction ``baseline.edge_fraction`` (in place).

    The edge spans ``baseline.edge_width`` of the axis (uniform). A share
    ``baseline.edge_cutoff`` of those spectra is cut off there: the baseline and the bands are
    multiplied by a smooth transmission rising from 0 at the first point to 1 past the edge (a
    logistic). The others rise into the edge: an exponential of decay length a third of the
    edge and height ``baseline.edge_rise`` baseline ranges (uniform) is added to the baseline,
    the light of the laser line leaking past the filter. The baseline is then not in [0, 1]:
    its range grows by up to the rise.
    """
    b = params.baseline
    if b.edge_fraction <= 0:
        return
    n, length = baseline.shape
    rows = np.flatnonzero(rng.random(n) < b.edge_fraction)
    t = np.linspace(0, 1, length, dtype=_F32)[None, :]
    width = rng.uniform(*b.edge_width, (rows.size, 1)).astype(_F32)
    cut = rng.random((rows.size, 1)) < b.edge_cutoff
    rise = rng.uniform(*b.edge_rise, (rows.size, 1)).astype(_F32)
    # transmission 0.0025 at t = 0, 0.5 at t = width / 2, 0.9975 at t = width
    transmission = 1 / (1 + np.exp(-12 * (t - width / 2) / width))
    leak = rise * np.exp(-3 * t / width)
    baseline[rows] = np.where(cut, baseline[rows] * transmission, baseline[rows] + leak)
    peaks[rows] = np.where(cut, peaks[rows] * transmission, peaks[rows])


@functools.cache
def fitted_backgrounds(path: Path = BACKGROUNDS) -> np.ndarray:
    """The fitted real backgrounds, float64 ``(n, points)``, each spanning [0, 1].

    Raises
    ------
    FileNotFoundError
        ``path`` is missing (``python benchmarks/empirical_backgrounds.py`` writes it).
    """
    with np.load(path) as f:
        return f["backgrounds"].astype(np.float64)


def empirical(rng: np.random.Generator, params: SimulateParams, n: int) -> np.ndarray:
    """``(n, L)`` warped real backgrounds (before scaling to [0, 1]).

    Each: one fitted background (uniform over the file's rows), a window of it spanning
    ``baseline.crop`` of its axis (uniform; its start uniform), the window's axis warped by
    ``s -> s ** g`` (``g`` log-uniform in ``baseline.warp``: features squeezed towards one
    end) and a linear tilt of up to 0.3 of its range added, as the exponential family does.
    """
    table = fitted_backgrounds()
    source = rng.integers(0, len(table), n)
    span = rng.uniform(*params.baseline.crop, n)
    start = rng.random(n) * (1 - span)
    gamma = np.exp(rng.uniform(*np.log(params.baseline.warp), n))
    tilt = rng.uniform(-0.3, 0.3, n)
    s = np.linspace(0, 1, params.length)[None, :]
    where = (start[:, None] + span[:, None] * s ** gamma[:, None]) * (table.shape[1] - 1)
    low = np.clip(np.floor(where).astype(np.int64), 0, table.shape[1] - 2)
    frac = where - low
    rows = table[source]
    picked = np.take_along_axis(rows, low, 1) * (1 - frac)
    picked += np.take_along_axis(rows, low + 1, 1) * frac
    return (picked + tilt[:, None] * s).astype(_F32)


def range_noise(
    rng: np.random.Generator,
    params: SimulateParams,
    baseline: np.ndarray,
    peaks: np.ndarray,
    read: np.ndarray,
    shot: np.ndarray,
) -> None:
    """Set the noise of a fraction ``noise.range_fraction`` to a share of the range (in place).

    For those spectra the read-noise sigma becomes ``noise.range_sigma`` (log-uniform, e.g.
    1/10,000 to 1/300) times the range of ``baseline + peaks`` (both ``(n, L)``, baseline-range
    units) and the shot noise 0, so the noise is that share of the spectrum's range whatever
    its bands. ``read`` and ``shot`` are ``(n,)``.
    """
    p = params.noise
    if p.range_fraction <= 0:
        return
    n = read.size
    rows = rng.random(n) < p.range_fraction
    share = np.exp(rng.uniform(*np.log(p.range_sigma), n))
    clean = baseline[rows] + peaks[rows]
    read[rows] = share[rows] * np.ptp(clean, axis=1)
    shot[rows] = 0
