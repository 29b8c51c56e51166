"""Paired real data: a CSV of a raw spectrum with its reference baseline.

The columns are named in a header line: ``wavenumber,intensity,baseline`` (``corrected`` may
follow: exactly what ``raman-baseline correct`` writes) or ``wavenumber,intensity,corrected``
(then the baseline is ``intensity - corrected``); other columns are ignored. Such files live
under ``data/real/paired/`` (:mod:`pipeline.realdata`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.spectra_io import (
    MIN_POINTS,
    Spectra,
    SpectrumFileError,
    checked_spectra,
    parse_number,
)

PAIRED_AXIS = ("wavenumber", "intensity")
PAIRED_TARGETS = ("baseline", "corrected")


def _csv_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a CSV, each with its line number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpectrumFileError(path, "not a UTF-8 text CSV") from None
    lines = [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise SpectrumFileError(path, "empty file")
    return lines


def _csv_header(path: Path, line: str) -> list[str]:
    """Column names, lower case; a first line of numbers is no header."""
    header = [name.strip().lower() for name in line.split(",")]
    if all(parse_number(name) is not None for name in header):
        raise SpectrumFileError(path, f"no header line: expected {_expected_columns()}")
    return header


def _csv_values(
    path: Path, lines: list[tuple[int, str]], width: int
) -> tuple[np.ndarray, list[int]]:
    """Values (rows, width) of the lines under the header, and the line number of each row."""
    rows, numbers = [], []
    for number, line in lines:
        fields = line.split(",")
        if len(fields) != width:
            problem = f"line {number}: {len(fields)} values under {width} column names"
            raise SpectrumFileError(path, problem)
        values = [parse_number(f) for f in fields]
        if None in values:
            bad = fields[values.index(None)]
            raise SpectrumFileError(path, f"line {number}: {bad.strip()!r} is not a number")
        rows.append(values)
        numbers.append(number)
    if not rows:
        raise SpectrumFileError(path, "no rows of numbers under the header")
    return np.array(rows, dtype=np.float64), numbers


def _expected_columns() -> str:
    return "wavenumber,intensity,baseline[,corrected] or wavenumber,intensity,corrected"


def _paired_columns(path: Path, header: list[str]) -> list[str]:
    """The columns used, ``wavenumber, intensity`` then the targets present."""
    doubled = sorted({name for name in header if header.count(name) > 1})
    if doubled:
        raise SpectrumFileError(path, f"column {doubled[0]!r} appears twice")
    targets = [name for name in PAIRED_TARGETS if name in header]
    missing = [name for name in PAIRED_AXIS if name not in header]
    if missing or not targets:
        lacking = missing[0] if missing else " or ".join(PAIRED_TARGETS)
        problem = (
            f"no column {lacking!r} (found {','.join(header)}; expected {_expected_columns()})"
        )
        raise SpectrumFileError(path, problem)
    return [*PAIRED_AXIS, *targets]


def read_paired(path: str | Path, min_points: int = MIN_POINTS) -> tuple[Spectra, np.ndarray]:
    """A paired CSV: the raw spectrum and its reference baseline.

    Parameters
    ----------
    path
        A CSV with a header naming ``wavenumber``, ``intensity`` and ``baseline`` or
        ``corrected`` (both allowed: then ``corrected`` must equal ``intensity - baseline``);
        other columns are ignored.
    min_points
        Fewest points accepted.

    Returns
    -------
    (Spectra, numpy.ndarray)
        The spectrum (``y`` of shape (1, L), ``kind`` ``"paired"``) and its baseline (1, L),
        on the increasing axis.

    Raises
    ------
    SpectrumFileError
        Naming the file: no header, a missing column, a non-number, NaN or Inf, an axis that
        is duplicated or not monotonic, too few points, inconsistent columns.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise SpectrumFileError(path, f"paired data must be a CSV ({_expected_columns()})")
    lines = _csv_lines(path)
    header = _csv_header(path, lines[0][1])
    used = _paired_columns(path, header)
    table, numbers = _csv_values(path, lines[1:], len(header))
    values = {name: table[:, header.index(name)] for name in used}
    for name, column in values.items():
        bad = ~np.isfinite(column)
        if bad.any():
            line = numbers[int(np.flatnonzero(bad)[0])]
            raise SpectrumFileError(
                path, f"column {name!r} holds NaN or Inf (first at line {line})"
            )
    intensity = values["intensity"]
    if "baseline" not in values:
        baseline = intensity - values["corrected"]
    else:
        baseline = values["baseline"]
        if "corrected" in values:
            _check_corrected(path, intensity, baseline, values["corrected"], numbers)
    rows = np.stack([intensity, baseline])
    both = checked_spectra(path, values["wavenumber"], rows, "paired", (path.stem, ""), min_points)
    spectra = dataclasses.replace(both, y=both.y[:1], labels=both.labels[:1])
    return spectra, both.y[1:]


def _check_corrected(
    path: Path, y: np.ndarray, baseline: np.ndarray, corrected: np.ndarray, numbers: list[int]
) -> None:
    """``corrected`` must be ``y - baseline`` to the 10 digits ``correct`` writes."""
    tolerance = 1e-8 * np.maximum(np.abs(y), np.abs(baseline)) + 1e-12
    off = np.abs(y - baseline - corrected) > tolerance
    if off.any():
        line = numbers[int(np.flatnonzero(off)[0])]
        problem = f"column 'corrected' is not intensity - baseline (first at line {line})"
        raise SpectrumFileError(path, problem)
