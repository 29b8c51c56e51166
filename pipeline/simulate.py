"""Simulated Raman spectra: smooth fluorescence baseline + Raman bands + noise.

A spectrum, in units where the baseline spans [0, 1], is::

    observed = baseline + bands + noise (+ cosmic-ray spikes)

then multiplied by a random intensity scale and shifted by a random offset, so the
normalisation step downstream is exercised. The baseline family, band shape, counts, widths,
noise levels and mixing ratio are drawn from the ranges in ``params.yaml`` (``simulate``).

Everything is vectorised numpy: random draws for the whole set first, then the bands in
chunks of spectra (no Python loop per spectrum). The same params and seed give byte-identical
arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from pipeline import regimes
from pipeline.config import BASELINE_FAMILIES, PEAK_SHAPES, SimulateParams

_CHUNK = 32  # spectra per dense Lorentzian block: keeps (spectra, bands, L) in L2 cache
_COMPACT_BLOCK = 256  # spectra per windowed-band block
_NOISE_CHUNK = 256
_F32 = np.float32


@dataclass(frozen=True)
class SpectrumSet:
    """Simulated spectra, all ``(N, L)`` float32 in the same (raw) intensity units."""

    observed: np.ndarray  # what an instrument would record
    baseline: np.ndarray  # the true fluorescence background
    peaks: np.ndarray  # the clean Raman bands
    read_noise: np.ndarray  # (N,) read-noise sigma, in baseline-range units
    family: np.ndarray  # (N,) index into BASELINE_FAMILIES

    def __len__(self) -> int:
        return len(self.observed)

    def save(self, path) -> None:
        """Write to ``.npz``."""
        np.savez(
            path,
            observed=self.observed,
            baseline=self.baseline,
            peaks=self.peaks,
            read_noise=self.read_noise,
            family=self.family,
            families=np.array(BASELINE_FAMILIES),
        )

    @classmethod
    def load(cls, path) -> SpectrumSet:
        """Read a set written by :meth:`save`."""
        with np.load(path) as f:
            return cls(
                **{k: f[k] for k in ("observed", "baseline", "peaks", "read_noise", "family")}
            )


def load_sets(folder: str | Path, splits: Sequence[str]) -> dict[str, SpectrumSet]:
    """The simulated sets ``<folder>/<split>.npz`` written by the ``simulate`` stage."""
    return {split: SpectrumSet.load(Path(folder) / f"{split}.npz") for split in splits}


def simulate(params: SimulateParams, n: int, seed: int) -> SpectrumSet:
    """Simulate ``n`` spectra of length ``params.length``."""
    rng = np.random.default_rng(seed)
    length = params.length
    family = _choice(rng, params.baseline.families, BASELINE_FAMILIES, n)
    baseline = baselines(rng, params, family)
    peaks = bands(rng, params, n)
    regimes.filter_edge(rng, params, baseline, peaks)  # each regime: no draw when switched off

    noise = params.noise
    read = _uniform(rng, noise.read, n)
    shot = _uniform(rng, noise.shot, n)
    regimes.range_noise(rng, params, baseline, peaks, read, shot)
    hit = rng.random(n) < noise.cosmic_ray_prob
    spike_at = rng.integers(0, length, n)
    spike = _uniform(rng, noise.cosmic_ray_height, n) * hit
    scale = _log_uniform(rng, params.intensity.scale, n)[:, None]
    offset = scale * _uniform(rng, params.intensity.offset, n)[:, None]
    level = _flat_level(rng, params, n)  # (N, 1): zero unless intensity.flat_fraction > 0
    offset += scale * level

    observed = np.empty_like(baseline)
    for start in range(0, n, _NOISE_CHUNK):  # cache-sized blocks, no big temporaries
        rows = slice(start, start + _NOISE_CHUNK)
        clean = np.add(baseline[rows], peaks[rows], out=observed[rows])
        # Read and shot noise are independent Gaussians: one draw with their summed variance.
        sigma = clean + level[rows]  # a flat fluorescence level adds its shot noise
        sigma *= shot[rows, None] ** 2
        sigma += read[rows, None] ** 2
        np.sqrt(sigma, out=sigma)
        sigma *= _standard_normal(rng, sigma.shape)
        clean += sigma
    observed[np.arange(n), spike_at] += spike  # cosmic rays (zero height where none hit)
    for a, b in ((observed, offset), (baseline, offset), (peaks, 0)):
        a *= scale
        a += b
    return SpectrumSet(
        observed=observed,
        baseline=baseline,
        peaks=peaks,
        read_noise=read,
        family=family.astype(np.int8),
    )


def baselines(rng: np.random.Generator, params: SimulateParams, family: np.ndarray) -> np.ndarray:
    """Smooth backgrounds, one per entry of ``family``, each scaled to span [0, 1]."""
    out = np.empty((family.size, params.length), dtype=_F32)
    basic = [f for f in BASELINE_FAMILIES if f not in ("sum", "empirical")]
    for code, name in enumerate(BASELINE_FAMILIES):
        rows = np.flatnonzero(family == code)
        if rows.size == 0:
            continue
        if name == "sum":  # a weighted sum of two backgrounds of basic families
            weights = {f: 1.0 for f in basic}
            parts = [
                baselines(rng, params, _choice(rng, weights, BASELINE_FAMILIES, rows.size))
                for _ in range(2)
            ]
            w = rng.random((rows.size, 1), dtype=_F32)
            out[rows] = _unit_range(w * parts[0] + (1 - w) * parts[1])
        else:
            out[rows] = _unit_range(_FAMILIES[name](rng, params, rows.size))
    return out


def _spline(rng, params, n):
    """Natural cubic spline through random anchors, evenly spaced."""
    counts = rng.integers(params.baseline.anchors[0], params.baseline.anchors[1] + 1, n)
    out = np.empty((n, params.length), dtype=_F32)
    for k in np.unique(counts):  # one small matmul per anchor count, not per spectrum
        rows = np.flatnonzero(counts == k)
        out[rows] = rng.random((rows.size, k), dtype=_F32) @ _spline_basis(params.length, k).T
    return out


@functools.cache
def _spline_basis(length: int, anchors: int) -> np.ndarray:
    """``(length, anchors)``: the natural cubic spline is linear in the anchor values."""
    knots = np.linspace(0, 1, anchors)
    spline = CubicSpline(knots, np.eye(anchors), bc_type="natural")
    return spline(np.linspace(0, 1, length)).astype(_F32)


def _polynomial(rng, params, n):
    """Random Legendre series of random degree."""
    low, high = params.baseline.poly_degree
    degree = rng.integers(low, high + 1, n)
    coef = rng.standard_normal((n, high + 1), dtype=_F32)
    coef[np.arange(high + 1)[None, :] > degree[:, None]] = 0
    return coef @ _legendre_basis(params.length, high).T


@functools.cache
def _legendre_basis(length: int, degree: int) -> np.ndarray:
    t = np.linspace(-1, 1, length)
    return np.polynomial.legendre.legvander(t, degree).astype(_F32)


def _exponential(rng, params, n):
    """Exponential decay (or rise) with a random decay length, plus a random linear tilt."""
    t = _axis(params.length)
    tau = _uniform(rng, params.baseline.decay, n)[:, None]
    rising = rng.random((n, 1)) < 0.5
    s = np.where(rising, 1 - t, t)
    tilt = _uniform(rng, (-0.3, 0.3), n)[:, None]
    return np.exp(-s / tau) + tilt * t


def _hump(rng, params, n):
    """A broad Gaussian hump, its centre possibly outside the window."""
    t = _axis(params.length)
    centre = _uniform(rng, (-0.2, 1.2), n)[:, None]
    width = _uniform(rng, params.baseline.hump_width, n)[:, None]
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def _step(rng, params, n):
    """A smooth logistic step up or down."""
    t = _axis(params.length)
    centre = _uniform(rng, (0.15, 0.85), n)[:, None]
    width = _uniform(rng, params.baseline.step_width, n)[:, None]
    sign = np.where(rng.random((n, 1)) < 0.5, -1, 1).astype(_F32)
    return 1 / (1 + np.exp(sign * (centre - t) / width))


_FAMILIES = {
    "spline": _spline,
    "polynomial": _polynomial,
    "exponential": _exponential,
    "hump": _hump,
    "step": _step,
    "empirical": regimes.empirical,
}


def bands(rng: np.random.Generator, params: SimulateParams, n: int) -> np.ndarray:
    """Raman bands: ``(n, L)``, the tallest band of each spectrum at its mixing ratio.

    Each spectrum has one band shape (the instrument's line shape) and a random number of
    bands with random centres, widths (FWHM, points, log-uniform) and amplitudes. A
    pseudo-Voigt band is split into its Lorentzian and Gaussian parts. Lorentzians have long
    tails and are drawn over the whole axis; Gaussians (to 3 FWHM, below 1e-10 there) and Hann
    windows (zero beyond 1 FWHM) only over a window around their centre.
    """
    p = params.peaks
    shape = _choice(rng, p.shapes, PEAK_SHAPES, n)
    eta = rng.random(n, dtype=_F32)  # Lorentzian fraction of a pseudo-Voigt spectrum
    counts = rng.integers(p.count[0], p.count[1] + 1, n)
    counts, dense = regimes.dense_counts(rng, params, counts)
    owner = np.repeat(np.arange(n), counts)  # the spectrum of each band, ascending
    total = owner.size
    centre = rng.random(total, dtype=_F32) * (params.length - 1)
    if dense is not None:
        centre = regimes.clustered_centres(rng, params, centre, owner, dense)
    fwhm = _log_uniform(rng, p.width, total)
    amp = _uniform(rng, p.amplitude, total)
    ratio = _log_uniform(rng, p.ratio, n)
    if p.tall_fraction > 0:  # drawn only when asked, so that today's params give today's bands
        tall = rng.random(n) < p.tall_fraction
        ratio = np.where(tall, _log_uniform(rng, p.tall_ratio, n), ratio)

    band_shape = np.array(PEAK_SHAPES)[shape[owner]]
    lorentz = amp * np.select(
        [band_shape == "lorentzian", band_shape == "pseudo_voigt"], [1, eta[owner]], 0
    ).astype(_F32)
    compact = amp - lorentz
    hann = band_shape == "hann"

    out = np.zeros((n, params.length), dtype=_F32)
    _add_lorentzians(out, owner, centre, fwhm, lorentz)
    for is_hann, reach in ((False, 3.0), (True, 1.0)):
        sel = (compact > 0) & (hann == is_hann)
        _add_compact(out, owner[sel], centre[sel], fwhm[sel], compact[sel], is_hann, reach)
    regimes.add_broad_bands(rng, params, out)
    tallest = out.max(axis=1, keepdims=True)
    return out * np.divide(ratio[:, None], tallest, out=np.zeros_like(tallest), where=tallest > 0)


def _flat_level(rng: np.random.Generator, params: SimulateParams, n: int) -> np.ndarray:
    """``(n, 1)`` flat fluorescence levels in baseline ranges: nearly flat backgrounds.

    A fraction ``intensity.flat_fraction`` of the spectra get a level drawn log-uniform from
    ``intensity.flat_level``, the others zero. The level's shot noise makes the background's
    range only a few noise sigmas on the highest levels (a silicon wafer's spectrum); no random
    number is drawn when the fraction is zero.
    """
    level = np.zeros((n, 1), dtype=_F32)
    fraction = params.intensity.flat_fraction
    if fraction > 0:
        flat = rng.random(n) < fraction
        level[flat, 0] = _log_uniform(rng, params.intensity.flat_level, n)[flat]
    return level


def _add_lorentzians(out, owner, centre, fwhm, amp) -> None:
    """Add Lorentzian bands over the whole axis, in dense (spectra, bands, L) blocks."""
    sel = np.flatnonzero(amp > 0)
    owner = owner[sel]
    counts = np.bincount(owner, minlength=len(out))
    first = np.concatenate([[0], np.cumsum(counts)])  # band k of spectrum i: sel[first[i] + k]
    # Blocks of spectra with similar band counts, so little is spent on padding.
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] > 0]
    x = np.arange(out.shape[1], dtype=_F32)
    for start in range(0, order.size, _CHUNK):
        rows = order[start : start + _CHUNK]
        width = int(counts[rows].max())
        slot = np.arange(width)[None, :]
        valid = slot < counts[rows, None]
        band = sel[np.where(valid, first[rows, None] + slot, first[rows, None])]  # (spectra, w)
        u = x - centre[band][..., None]  # (spectra, w, L)
        u *= (2 / fwhm[band])[..., None]
        u *= u
        u += 1
        np.reciprocal(u, out=u)
        weight = np.where(valid, amp[band], 0)[:, None, :]  # (spectra, 1, w)
        out[rows] += (weight @ u)[:, 0, :]  # the sum of each spectrum's bands


def _add_compact(out, owner, centre, fwhm, amp, is_hann: bool, reach: float) -> None:
    """Add bands that vanish beyond ``reach`` FWHM of their centre, on windows around it."""
    n, length = out.shape
    half = np.ceil(reach * fwhm).astype(np.int32) + 1
    size = 2 ** np.ceil(np.log2(2 * half + 1)).astype(np.int32)  # window classes: 4, 8, 16...
    pad = int(size.max(initial=2)) // 2
    padded = np.empty((_COMPACT_BLOCK, length + 2 * pad), dtype=_F32)  # windows run past ends
    bounds = np.searchsorted(owner, np.arange(0, n + _COMPACT_BLOCK, _COMPACT_BLOCK))
    for first, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
        if lo == hi:
            continue
        padded.fill(0)
        rows = slice(first * _COMPACT_BLOCK, (first + 1) * _COMPACT_BLOCK)
        # flat index of each band's centre in padded.ravel()
        at = (owner[lo:hi] - rows.start) * padded.shape[1] + pad + np.floor(centre[lo:hi])
        for w in np.unique(size[lo:hi]):
            b = lo + np.flatnonzero(size[lo:hi] == w)
            offsets = np.arange(-w // 2, w // 2, dtype=np.int32)
            u = (np.floor(centre[b]) - centre[b])[:, None] + offsets.astype(_F32)  # (bands, w)
            u *= (1 / fwhm[b])[:, None]  # FWHM units
            prof = _hann(u) if is_hann else _gaussian(u)
            prof *= amp[b, None]
            flat = at[b - lo].astype(np.int32)[:, None] + offsets
            np.add.at(padded.reshape(-1), flat.ravel(), prof.ravel())  # 1D: the fast path
        out[rows] += padded[: out[rows].shape[0], pad : pad + length]


def _gaussian(u: np.ndarray) -> np.ndarray:
    """Unit-height Gaussian of FWHM 1 at offset ``u``; overwrites ``u``."""
    u *= u
    u *= _F32(-4 * np.log(2))
    return np.exp(u, out=u)


def _hann(u: np.ndarray) -> np.ndarray:
    """Raised cosine of full width 2 (FWHM 1), zero outside; overwrites ``u``."""
    np.clip(u, -1, 1, out=u)
    u *= _F32(np.pi)
    np.cos(u, out=u)
    u += 1
    u *= _F32(0.5)
    return u


def _standard_normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Standard normal float32 draws by the Box-Muller transform.

    About 1.6x faster than ``rng.standard_normal(dtype=float32)`` (numpy's ziggurat), the
    largest single cost of a simulated spectrum. Each 64-bit draw of the generator gives two
    23-bit uniforms.
    """
    rows, length = shape
    half = (length + 1) // 2
    bits = rng.bit_generator.random_raw(rows * half).view(np.uint32)
    u = ((bits >> 9) | np.uint32(0x3F800000)).view(_F32).reshape(2, rows, half, order="F")
    radius = _F32(2) - u[0]  # uniform on (0, 1]
    np.log(radius, out=radius)
    radius *= -2
    np.sqrt(radius, out=radius)
    angle = u[1] - _F32(1)  # uniform on [0, 1)
    angle *= _F32(2 * np.pi)
    out = np.empty((rows, 2 * half), dtype=_F32)
    np.cos(angle, out=out[:, :half])
    np.sin(angle, out=out[:, half:])
    out[:, :half] *= radius
    out[:, half:] *= radius
    return out[:, :length]


def _axis(length: int) -> np.ndarray:
    return np.linspace(0, 1, length, dtype=_F32)[None, :]


def _unit_range(b: np.ndarray) -> np.ndarray:
    low = b.min(axis=1, keepdims=True)
    span = b.max(axis=1, keepdims=True) - low
    return (b - low) / np.maximum(span, 1e-6)


def _choice(rng, weights: dict[str, float], names: tuple[str, ...], n: int) -> np.ndarray:
    p = np.array([weights.get(name, 0.0) for name in names], dtype=float)
    return rng.choice(len(names), size=n, p=p / p.sum())


def _uniform(rng, bounds, n) -> np.ndarray:
    low, high = bounds
    return (low + (high - low) * rng.random(n)).astype(_F32)


def _log_uniform(rng, bounds, n) -> np.ndarray:
    low, high = np.log(bounds[0]), np.log(bounds[1])
    return np.exp(low + (high - low) * rng.random(n)).astype(_F32)
