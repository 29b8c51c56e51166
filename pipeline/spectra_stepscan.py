"""Step-and-repeat (extended) scans: overlapping detector windows merged into one spectrum.

A Renishaw WiRE extended scan moves the grating in steps and records one detector window at
each; neighbouring windows overlap by some wavenumbers, so the exported two columns repeat
shifts there: either interleaved (each window on its own grid, sorted together: the shifts
of the two windows alternate, now and then equal) or one window after the other (the axis
jumps back). :func:`merge_windows` finds the windows as runs of evenly spaced shifts (each
window has its own, smoothly varying step; a point that continues no window's step starts a
new one) and merges each overlap one of two ways:

``mean``
    in the overlap, the first window's points are kept, each averaged with the second
    window linearly interpolated there (equal shifts: the plain mean of the two values);
``keep``
    the first window is kept whole, the second only beyond its end.

:data:`MERGE` ``auto`` chooses per overlap, by measurement (``benchmarks/stepscan.py``): the
mean halves the noise's variance where the windows agree (RMSE 0.61-0.72 noise sigmas
against the truth, keep 1.0), but carries half of any difference between them; windows
further apart than :data:`AGREE` (1.4) sigmas (where the mean's RMSE, about
sqrt(0.7^2 + (d/2)^2), passes keep's 1.0) keep the first window. In the paracetamol
step-scan of ``../shared/cases`` the windows are 2.6, 1.1 and 0.5 sigmas apart (3% of the
intensity): the first overlap is kept, the others averaged. The note says which.

Files whose repeated or irregular shifts are not overlapping windows (a single duplicated
value, an unsorted axis, windows with a gap between them) are left alone, for
:func:`pipeline.spectra_io.check_spectra` to refuse. This module imports nothing from the
project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MERGE = "auto"  # chosen by measurement: benchmarks/stepscan.py
AGREE = 1.4  # windows this many noise sigmas apart or closer are averaged, else one kept
MAX_POINTS = 1_000_000  # step-scans are a few thousand points; larger files are not looked at
_TOLERANCE = 0.35  # a point continues a window within 35% of its step from the next place
_MIN_WINDOW = 4  # fewest points of a window


@dataclass
class _Window:
    index: list[int] = field(default_factory=list)
    step: float = 0.0
    before: float = 0.0  # the step before the last point was added


def _miss(window: _Window, xs: np.ndarray, x: float) -> float:
    """How far ``x`` is from the next place of ``window``, in steps."""
    return abs(x - xs[window.index[-1]] - window.step) / window.step


def looks_merged(x: np.ndarray) -> bool:
    """Whether an axis is one window: nothing to merge.

    True when it is strictly monotonic and each step is within a factor 1.5 of the one
    before (a detector's dispersion changes the step slowly; interleaved windows alternate
    short and long steps, and halve the step where an overlap begins).
    """
    step = np.diff(x)
    if not step.size or not np.isfinite(step).all():
        return True
    if not ((step > 0).all() or (step < 0).all()):
        return False
    ratio = step[1:] / step[:-1]
    return bool(((ratio > 1 / 1.5) & (ratio < 1.5)).all())


def merge_windows(
    x: np.ndarray, y: np.ndarray, how: str = MERGE
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """One spectrum from the overlapping windows of a step-and-repeat scan.

    Parameters
    ----------
    x
        The shifts (L,) as written, in any order, with repeated values in the overlaps.
    y
        The intensities (L,).
    how
        ``mean`` or ``keep`` (module docstring).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, str) or None
        The merged axis (M,), strictly increasing, its intensities (M,) and a note saying
        what was done; None when ``x`` is not made of overlapping evenly spaced windows.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape or len(x) < 2 * _MIN_WINDOW or len(x) > MAX_POINTS:
        return None
    if not np.isfinite(x).all() or looks_merged(x):
        return None
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    windows = _windows(xs)
    if windows is None or len(windows) < 2:
        return None
    parts = [(xs[w.index], ys[w.index]) for w in windows]
    mx, my = parts[0]
    done = []
    for wx, wy in parts[1:]:
        if wx[0] > mx[-1]:
            return None  # a gap between windows: not one scan
        inside = mx >= wx[0]
        apart = _apart(mx, my, inside, wx, wy)
        merge = how if how != "auto" else "mean" if abs(apart) <= AGREE else "keep"
        if merge == "mean":
            my = np.where(inside, (my + np.interp(mx, wx, wy)) / 2, my)
        elif merge != "keep":
            raise ValueError(f"merge {how!r}: expected auto, mean or keep")
        done.append(f"{wx[0]:.6g}-{mx[-1]:.6g} cm-1 ({apart:+.1f} sigma apart: {merge})")
        beyond = wx > mx[-1]
        mx, my = np.concatenate([mx, wx[beyond]]), np.concatenate([my, wy[beyond]])
    note = (
        f"step-and-repeat scan: {len(windows)} overlapping windows merged into one spectrum "
        f"({len(x)} points in, {len(mx)} out); overlaps {', '.join(done)}"
    )
    return mx, my, note


def _apart(
    x: np.ndarray, y: np.ndarray, inside: np.ndarray, wx: np.ndarray, wy: np.ndarray
) -> float:
    """How far apart two windows are in their overlap, in noise sigmas.

    The median of the first minus the second (interpolated onto the first's shifts), over
    the first window's noise sigma (1.4826 x the MAD of its second differences / sqrt(6), as
    :func:`pipeline.quality.case_verdict`).
    """
    ends = inside & (x <= wx[-1])
    own = y[~inside] if (~inside).sum() >= 8 else y
    d2 = np.diff(own[-200:], 2)
    sigma = 1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6)
    diff = np.median(y[ends] - np.interp(x[ends], wx, wy)) if ends.any() else 0.0
    return float(diff / sigma) if sigma > 0 else (0.0 if diff == 0 else float(np.inf))


def _windows(xs: np.ndarray) -> list[_Window] | None:
    """The evenly spaced runs of the sorted shifts ``xs``, by where they start.

    None when some run is too short or uneven to be a detector window.
    """
    first = _first_step(xs)
    if first <= 0:
        return None
    open_: list[_Window] = []
    closed: list[_Window] = []
    for i, xi in enumerate(xs):
        passed = [w for w in open_ if xi > xs[w.index[-1]] + (1 + 2 * _TOLERANCE) * w.step]
        closed += passed
        open_ = [w for w in open_ if w not in passed]
        misses = [_miss(w, xs, xi) for w in open_]
        if misses and min(misses) < _TOLERANCE:
            _add(open_[int(np.argmin(misses))], xs, i)
            continue
        new = _Window([i], open_[-1].step if open_ else first)
        # the previous point may have been the new window's first, taken by an old window
        # because it fell near that window's next place: keep the better fit of the two
        old = next((w for w in open_ if w.index[-1] == i - 1 and len(w.index) > 1), None)
        if old is not None:
            j, step = old.index.pop(), old.step
            old.step = old.before
            if _miss(old, xs, xi) < _miss(old, xs, xs[j]):
                new.index = [j]
                _add(old, xs, i)
            else:
                old.index.append(j)
                old.step = step
        open_.append(new)
    windows = sorted(closed + open_, key=lambda w: w.index[0])
    for w in windows:
        step = np.diff(xs[w.index])
        if len(w.index) < _MIN_WINDOW or step.min() < 0.5 * np.median(step):
            return None
    return windows


def _add(window: _Window, xs: np.ndarray, i: int) -> None:
    """Point ``i`` continues ``window``.

    The step drifts slowly along a window (dispersion): a smoothed update keeps one uneven
    gap (where windows meet) from throwing it off.
    """
    window.before = window.step
    window.step += 0.2 * (xs[i] - xs[window.index[-1]] - window.step)
    window.index.append(i)


def _first_step(xs: np.ndarray) -> float:
    """The step of the first window, from the first 16 points.

    Their median spacing when it is even (one window alone), else the median spacing of
    every other point (two interleaved windows).
    """
    head = np.diff(xs[:17])
    if head.size and head.min() > 0.6 * np.median(head):
        return float(np.median(head))
    return float(np.median(xs[2:17] - xs[:15])) if len(xs) > 2 else 0.0
