"""Masked pixels: what ``correct`` leaves out of the baseline fit, and how it writes them back.

A pixel is masked when it carries no measurement of the spectrum:

- NaN, anywhere (a reader's missing value); a spectrum of NaN only, one of a batch, is masked
  whole, not fitted, and its note (:data:`NAN_ONLY`) names it (``spectrum 2: ...``, from 1 as
  every message and label of the project);
- padding at either end: a run of at least :data:`MIN_RUN` pixels, counted from the end (after
  any NaN there), all exactly ``0`` (rows outside the calibrated range that the instrument
  fills with zeros: the Zolix probe export writes 4 at the start and 43 at the end) or all
  exactly the spectrum's maximum (pixels clipped at the detector's ceiling). The ceiling is
  recognised as the spectrum's own maximum repeated, not as a number: it is 65535 for a 16-bit
  detector, 4095 or 16383 for others, and another value once dark-subtracted or summed.
  A lone pixel (a run of 1) is kept: a single zero or maximum at an end is as likely data.
- saturation inside: a run of at least :data:`MIN_INSIDE` consecutive pixels all exactly the
  spectrum's maximum (a laser line or a strong band clipped at the detector's ceiling), or of
  :data:`MIN_RUN` when that maximum is a detector's full scale ``2**bits - 1`` (:data:`CEILINGS`:
  4095, 16383, 32767, 65535, 262143, ...). A genuine band's top is kept: measured counts carry
  noise, so its highest pixel is one, or two equal by chance, never three equal exactly; a
  flat stretch below the maximum, and zeros inside, are data too. When the intensity is a
  processed column (dark- or background-subtracted) read beside the detector's raw counts
  (:attr:`pipeline.spectra_io.Spectra.raw_counts`: Neegala, BWSpec tables), the rule runs on
  those counts: the laser line of the Neegala case clips ``Raw_Data`` at 65535 over 21 pixels,
  where ``Processed_Data`` (65535 minus a varying background) no longer looks clipped.

The fit (:func:`fit_unmasked`) runs on each spectrum's span between its end runs, a regular
array that every method takes (the network at any length, arPLS/asPLS with ``lam`` scaled to
the span's length); a masked pixel inside the span (NaN, saturated) is filled by linear
interpolation on ``x`` for the method's input. Every masked pixel, interior NaN included,
gets NaN in ``baseline`` and
``corrected``: an empty cell in the CSV (:func:`pipeline.table_csv.write_columns`), a gap in
the PNG. The note (:attr:`Masked.note`) says what was left out, per file.

This module imports nothing from the project but :mod:`pipeline.spectra_io`'s error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.spectra_io import SpectrumFileError

MIN_RUN = 2  # fewest equal pixels at an end taken as padding or a detector ceiling
MIN_INSIDE = 3  # fewest equal pixels at the maximum inside a spectrum taken as its ceiling
# full scales of 12- to 32-bit detectors (ADCs): MIN_RUN such pixels anywhere are clipped
CEILINGS = frozenset(2.0**bits - 1 for bits in (12, 14, 15, 16, 18, 20, 24, 32))
NAN_ONLY = "every pixel NaN: not corrected"  # a spectrum of NaN only, among others


@dataclass(frozen=True)
class Masked:
    """The masked pixels of spectra ``(N, L)``.

    Attributes
    ----------
    mask
        ``(N, L)`` bool, True where a pixel is left out of the fit and of the outputs.
    start, stop
        ``(N,)`` int: each spectrum's fitted span is ``[start, stop)``.
    what
        ``(N,)`` one description per spectrum of what was masked, ``""`` for nothing.
    """

    mask: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    what: tuple[str, ...]

    @property
    def note(self) -> str:
        """One line for the run's summary: what was masked, in which spectra; ``""`` if none."""
        n = len(self.what)
        found = [w for w in dict.fromkeys(self.what) if w]
        parts = []
        for w in found:
            rows = [i for i, v in enumerate(self.what) if v == w]
            if n == 1 or len(rows) == n:
                parts.append(w)
            elif len(rows) == 1:
                parts.append(f"spectrum {rows[0] + 1}: {w}")
            else:
                parts.append(f"{len(rows)} of {n} spectra (first {rows[0] + 1}): {w}")
        return "; ".join(parts) + ("; empty in the outputs" if parts else "")


def find_masked(
    y: np.ndarray, x: np.ndarray | None = None, raw_counts: np.ndarray | None = None
) -> Masked:
    """The masked pixels of spectra ``y`` ``(N, L)`` (rules in the module's docstring).

    ``x`` (L,), the Raman shift (cm-1), only names where saturated runs inside are in the
    descriptions; without it they name pixels (from 1). ``raw_counts`` ``(N, L)``: the
    detector's counts that ``y`` was processed from
    (:attr:`pipeline.spectra_io.Spectra.raw_counts`); their saturated runs are masked in ``y``.
    """
    y = np.atleast_2d(y)
    n, length = y.shape
    mask = np.isnan(y)
    start, stop = np.zeros(n, np.intp), np.full(n, length, np.intp)
    what = []
    for i, spectrum in enumerate(y):
        top = np.nanmax(spectrum) if not mask[i].all() else np.nan
        head = _end_run(spectrum, top)
        start[i] = sum(count for count, _ in head)
        tail = _end_run(spectrum[start[i] :][::-1], top)  # none when the head took it all
        stop[i] = length - sum(count for count, _ in tail)
        mask[i, : start[i]] = True
        mask[i, stop[i] :] = True
        inside = int(np.isnan(spectrum[start[i] : stop[i]]).sum())
        clipped = _saturated_inside(spectrum[start[i] : stop[i]], top, start[i])
        described = _describe(head, tail, inside) + _describe_inside(clipped, f"{top:.10g}", x)
        if raw_counts is not None:
            counts = np.atleast_2d(raw_counts)[i]
            ceiling = np.nanmax(counts) if np.isfinite(counts).any() else np.nan
            raw = _saturated_inside(counts[start[i] : stop[i]], ceiling, start[i])
            described += _describe_inside(raw, f"raw {ceiling:.10g}", x)
            clipped += raw
        for a, b in clipped:
            mask[i, a:b] = True
        nan_only = inside == 0 and head == [(length, "NaN")]
        what.append(NAN_ONLY if nan_only else described.lstrip("; "))
    return Masked(mask, start, stop, tuple(what))


def _end_run(values: np.ndarray, top: float) -> list[tuple[int, str]]:
    """``(count, kind)`` of the runs masked from ``values[0]`` on: NaN, then zero or ceiling."""
    runs = []
    nan = _leading(np.isnan(values))
    if nan:
        runs.append((nan, "NaN"))
    rest = values[nan:]
    if rest.size and (rest[0] == 0 or rest[0] == top):
        count = _leading(rest == rest[0])
        if count >= MIN_RUN:
            kind = "zero" if rest[0] == 0 else f"saturated ({rest[0]:.10g})"
            runs.append((count, kind))
    return runs


def _saturated_inside(values: np.ndarray, top: float, offset: int) -> list[tuple[int, int]]:
    """``(start, stop)`` pixels (from ``offset``) of the runs at the ceiling inside a span.

    A run of at least :data:`MIN_INSIDE` pixels equal to the spectrum's maximum ``top``, or of
    :data:`MIN_RUN` when ``top`` is a detector's full scale (:data:`CEILINGS`).
    """
    if not np.isfinite(top) or not values.size:
        return []
    flags = np.concatenate([[0], (values == top).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    need = MIN_RUN if top in CEILINGS else MIN_INSIDE
    return [
        (offset + a, offset + b)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
        if b - a >= need
    ]


def _describe_inside(runs: list[tuple[int, int]], value: str, x: np.ndarray | None) -> str:
    """``; 21 saturated pixels (65535) inside, at x = -19 to 89, fitted across ...``."""
    if not runs:
        return ""
    count = sum(b - a for a, b in runs)
    if x is None:
        where = "pixels " + ", ".join(f"{a + 1}-{b}" if b - a > 1 else f"{b}" for a, b in runs)
    else:
        where = "at x = " + ", ".join(f"{x[a]:.6g} to {x[b - 1]:.6g}" for a, b in runs)
    return f"; {count} saturated pixels ({value}) inside, {where}, fitted across (interpolated)"


def _leading(flags: np.ndarray) -> int:
    """How many of ``flags`` are True before the first False."""
    return int(flags.size if flags.all() else np.argmin(flags))


def _describe(head: list[tuple[int, str]], tail: list[tuple[int, str]], inside: int) -> str:
    """``4 zero pixels at the start and 43 at the end left out of the fit; ...``."""
    kinds = dict.fromkeys(kind for _, kind in head + tail)
    phrases = []
    for kind in kinds:
        at_start = sum(c for c, k in head if k == kind)
        at_end = sum(c for c, k in tail if k == kind)
        name = kind.replace(" ", " pixels ", 1) if " " in kind else f"{kind} pixels"
        if at_start and at_end:
            phrases.append(f"{at_start} {name} at the start and {at_end} at the end")
        else:
            phrases.append(f"{at_start or at_end} {name} at the {'start' if at_start else 'end'}")
    parts = [" and ".join(phrases) + " left out of the fit"] if phrases else []
    if inside:
        parts.append(f"{inside} NaN pixels inside fitted across (interpolated)")
    return "; ".join(parts)


def check_unmasked(masked: Masked, source: Path, min_points: int) -> None:
    """Refuse spectra with fewer than ``min_points`` unmasked pixels, but of NaN only.

    A spectrum of NaN only (:data:`NAN_ONLY`, one of a batch: the readers refuse a file of
    nothing else) is not corrected and written back NaN, with its note.

    Raises
    ------
    SpectrumFileError
        Naming ``source``, the first such spectrum and what was masked in it.
    """
    kept = (~masked.mask).sum(axis=1)
    short = np.flatnonzero((kept < min_points) & (np.array(masked.what) != NAN_ONLY))
    if short.size:
        i = short[0]
        which = f"spectrum {i + 1}: " if len(kept) > 1 else ""
        problem = (
            f"{which}{kept[i]} of {masked.mask.shape[1]} points left once masked pixels are "
            f"left out ({masked.what[i] or 'NaN'}), fewer than the minimum {min_points}"
        )
        raise SpectrumFileError(source, problem)


def fit_unmasked(
    x: np.ndarray,
    y: np.ndarray,
    masked: Masked,
    estimate: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Baselines ``(N, L)`` of spectra ``y`` from ``estimate`` run on their unmasked spans.

    Spectra with the same span are fitted together (one call of ``estimate`` on ``x`` and
    ``y`` cut to the span); a masked pixel inside a span (NaN, saturated) is filled by linear
    interpolation on ``x``.
    Masked pixels get NaN; a spectrum masked whole is not fitted. ``estimate`` is a
    :data:`pipeline.baselines.BaselineFn`; its answer is checked by the caller. An answer with
    leading axes (``(2, n, L)``: baselines and their standard deviations,
    :func:`pipeline.correct.uncertainty_method`) gives ``(2, N, L)``, each masked alike.
    """
    y = np.atleast_2d(y)
    baseline = None
    spans = np.stack([masked.start, masked.stop], axis=1)
    live = masked.start < masked.stop  # a spectrum masked whole is not fitted: NaN
    for start, stop in np.unique(spans[live], axis=0):
        rows = np.flatnonzero(live & (spans[:, 0] == start) & (spans[:, 1] == stop))
        part_x, part = x[start:stop], y[rows, start:stop].copy()
        for row, holes in zip(part, masked.mask[rows, start:stop], strict=True):
            if holes.any():  # NaN, saturated runs: interpolated for the method's input only
                row[holes] = np.interp(part_x[holes], part_x[~holes], row[~holes])
        fitted = np.asarray(estimate(part_x, part))
        if baseline is None:
            baseline = np.full((*fitted.shape[:-2], *y.shape), np.nan)
        baseline[..., rows, start:stop] = fitted
    if baseline is None:  # no spectra, or none left to fit
        baseline = np.full(y.shape, np.nan)
    baseline[..., masked.mask] = np.nan
    return baseline
