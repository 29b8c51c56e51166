"""Classical baselines of very long spectra: fitted on bin means, interpolated back.

A Whittaker smoother (arPLS, asPLS) on a spectrum of ``L`` points solves a banded system of
``L`` unknowns: pybaselines 1.2 holds about 19 float64 arrays of ``L`` while it does (1.5 GB for
10 million points, measured), and with ``lam`` scaled by ``(L / 512) ** 4``
(:func:`pipeline.baselines.scaled_lam`) the system stops being solvable in float64 long before
that: ``lam`` reaches 1e16 at a million points, where ``lam`` times the float64 epsilon exceeds
the weights (arPLS's baseline of the benchmark's 1-million-point spectrum missed the true
background by 1.2 times its range on main, b619fc2).

The baseline is smooth over a fixed fraction of the spectrum's window whatever its length, so
:func:`binned` fits spectra longer than :data:`MAX_FIT_POINTS` on the means of bins of ``k``
consecutive points (``k`` the fewest that leaves at most :data:`MAX_FIT_POINTS` bins; the last
bin may be shorter), with ``lam`` scaled to the number of bins, and interpolates the bins'
baseline linearly back onto every point (constant beyond the first and last bin centres).
Spectra of at most :data:`MAX_FIT_POINTS` points are fitted as they are: their baselines do not
change. Averaging ``k`` points divides the noise by about ``sqrt(k)``; bands narrower than a
bin are flattened in the fit only, never in the corrected spectrum.
"""

from __future__ import annotations

import math

import numpy as np

MAX_FIT_POINTS = 1 << 16  # 65,536: longer than any real spectrum of ../shared (at most ~4,000)


def bin_means(values: np.ndarray, k: int) -> np.ndarray:
    """Means of consecutive bins of ``k`` points along the last axis: (..., ceil(L / k)).

    The last bin holds the ``L % k`` remaining points when ``k`` does not divide ``L``.
    """
    length = values.shape[-1]
    starts = np.arange(0, length, k)
    counts = np.diff(np.append(starts, length))
    return np.add.reduceat(values, starts, axis=-1) / counts


def binned(estimate, max_points: int = MAX_FIT_POINTS):
    """``estimate`` (a :data:`pipeline.baselines.BaselineFn`), fitting long spectra on bins.

    Parameters
    ----------
    estimate
        ``estimate(x (L,), y (N, L)) -> (N, L)`` baselines, scaling its own ``lam`` with ``L``.
    max_points
        Spectra of at most this many points are passed to ``estimate`` unchanged.

    Returns
    -------
    BaselineFn
        ``(x (L,), y (N, L) or (L,)) -> (N, L)`` float64 baselines in ``y``'s units.
    """

    def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = np.atleast_2d(y)
        length = y.shape[-1]
        if length <= max_points:
            return estimate(x, y)
        k = math.ceil(length / max_points)
        centres = bin_means(np.asarray(x, dtype=np.float64), k)
        coarse = np.atleast_2d(estimate(centres, bin_means(y, k)))
        out = np.empty(y.shape, dtype=np.float64)
        for row, fitted in zip(out, coarse, strict=True):
            row[:] = np.interp(x, centres, fitted)
        return out

    fit.__name__ = getattr(estimate, "__name__", "binned")
    return fit
