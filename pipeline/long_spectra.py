"""Classical baselines of very long spectra: fitted on evenly spaced points, interpolated back.

A Whittaker smoother (arPLS, asPLS) on a spectrum of ``L`` points solves a banded system of
``L`` unknowns: pybaselines 1.2 holds about 19 float64 arrays of ``L`` while it does (1.5 GB for
10 million points, measured), and with ``lam`` scaled by ``(L / 512) ** 4``
(:func:`pipeline.baselines.scaled_lam`) the system stops being solvable in float64 long before
that: ``lam`` reaches 1e16 at a million points, where ``lam`` times the float64 epsilon exceeds
the weights (arPLS's baseline of ``benchmarks/big_file.py``'s spectrum missed the true
background by 1.2 times its range at 1 million points on main, b619fc2, and 1.15 at 10 million).

The baseline is smooth over a fixed fraction of the spectrum's window whatever its length, so
:func:`thinned` fits a spectrum longer than :data:`MAX_FIT_POINTS` on :data:`MAX_FIT_POINTS`
of its points, evenly spaced from the first to the last (:func:`sample_indices`), with ``lam``
scaled to that number, and interpolates the baseline linearly back onto every point. The
points are taken as they are, not averaged: arPLS and asPLS weight each point by its residual
against the noise, and means of ``k`` points, ``sqrt(k)`` times less noisy, made arPLS lose
the background on that 10-million-point spectrum (1.1 times its range, with bins of 153
points), where the thinned fit misses it by 0.8% of its range (asPLS 0.7%) at 100,000, 1 and
10 million points alike, as the full fit does at 65,536. Spectra of at most
:data:`MAX_FIT_POINTS` points are fitted as they are: their baselines do not change.
"""

from __future__ import annotations

import numpy as np

MAX_FIT_POINTS = 1 << 16  # 65,536: longer than any real spectrum of ../shared (at most ~4,000)


def sample_indices(length: int, count: int) -> np.ndarray:
    """``count`` indices into ``length`` points, evenly spaced, the first and last included."""
    return np.unique(np.round(np.linspace(0, length - 1, count)).astype(np.intp))


def thinned(estimate, max_points: int = MAX_FIT_POINTS):
    """``estimate`` (a :data:`pipeline.baselines.BaselineFn`), fitting long spectra thinned.

    Parameters
    ----------
    estimate
        ``estimate(x (L,), y (N, L)) -> (N, L)`` baselines, scaling its own ``lam`` with ``L``.
    max_points
        Spectra of at most this many points are passed to ``estimate`` unchanged; longer ones
        are fitted on ``max_points`` of their points (:func:`sample_indices`).

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
        keep = sample_indices(length, max_points)
        x = np.asarray(x, dtype=np.float64)
        coarse = np.atleast_2d(estimate(x[keep], y[:, keep]))
        out = np.empty(y.shape, dtype=np.float64)
        for row, fitted in zip(out, coarse, strict=True):
            row[:] = np.interp(x, x[keep], fitted)
        return out

    fit.__name__ = getattr(estimate, "__name__", "thinned")
    return fit
