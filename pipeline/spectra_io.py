"""Readers for Raman spectra as users bring them: instrument exports, plain text, batches.

:func:`read_spectra` recognises the format from the file itself and returns :class:`Spectra`:
an increasing axis ``x`` (L,), the spectra ``y`` (N, L) and where they came from.

=================  ====================================================================
format             how it is recognised, and what is read
=================  ====================================================================
``npz``            suffix ``.npz``: arrays ``x`` (L,) and ``y`` (N, L) or (L,)
``wdf``            suffix ``.wdf``: Renishaw WiRE binary, through ``renishaw-wdf``
``spc``            suffix ``.spc``: Galactic SPC, through ``spc-io``
``jcamp``          suffix ``.jdx``, ``.dx``, ``.jcamp``: JCAMP-DX, through ``jcamp`` (a file
                   so named without ``##`` records is read by its content, as text)
``spe``            suffix ``.spe``: Princeton Instruments SPE, through ``spexread``
                   (the four: :mod:`pipeline.spectra_formats`, with the measurements
                   that chose each library)
``wire``           Renishaw WiRE txt: a ``#Wave  #Intensity`` header line, possibly after
                   coordinate columns (``#X  #Y  #Wave  #Intensity``): one spectrum per
                   point, a new point wherever the coordinates change or the axis restarts
``enlighten``      Wasatch ENLIGHTEN csv: ``key,value`` metadata lines, then a table with
                   ``Pixel`` and ``Wavenumber`` columns; the ``Processed`` intensity (else
                   ``Raw``). Rows outside the detector's region of interest (``NA`` at the
                   start or end of the table) are dropped.
``labspec``        Horiba LabSpec txt: ``#key=<tab>value`` header lines, then two columns;
                   or (LabSpec 6 multi-spectrum) an axis row led by one empty cell per
                   coordinate, then one spectrum per row led by its time or X, Y
``table``          a header row naming 3+ columns, one a Raman shift (B&W Tek BWSpec,
                   Neegala): that column and the preferred intensity column
                   (:mod:`pipeline.spectra_tables`); rows with a blank shift skipped
``text``           any other text with two columns (axis, intensity), delimited by tabs,
                   commas, semicolons (decimal commas allowed) or spaces, after optional
                   header or ``#`` comment lines; fields may be double-quoted (a quoted
                   field of a comma table may hold a decimal comma: ``"1234,5","567,8"``)
``matrix``         text with more than two columns: the first row is the axis, every
                   further row a spectrum
=================  ====================================================================

Text may be UTF-8, Latin-1 or UTF-16 (with a BOM, or without one when every other byte is
NUL). One spectrum whose shifts repeat in overlapping windows (a Renishaw step-and-repeat
scan) is merged into one axis by :mod:`pipeline.spectra_stepscan`. What a reader did beyond
reading (columns chosen, rows skipped, windows merged) is in :attr:`Spectra.notes`.

Calibration: an axis that is exactly ``0, 1, 2, ...`` (or ``1, 2, 3, ...``) is a detector pixel
index, not a Raman shift, and the spectra are flagged ``calibrated=False`` (OpenRAMAN exports,
``Pixels #,Intensity (a.u.)``). A column is judged by its values, not its header: the Wasatch
WP 532X files here are headed ``Pixel,Intensity`` but their first column holds Raman shifts
(negative and fractional values, from -601 to 4765 cm-1), so they are read as calibrated.

Every problem is one :class:`SpectrumFileError` naming the file: an empty file, non-numeric
content (with its line), NaN or Inf, a single column, a duplicated or non-monotonic axis, or
fewer points than ``min_points``. Decreasing axes (WiRE, LabSpec) are returned increasing.

:func:`check_spectra` is the one validator of spectra in the project, whatever brought them:
these readers, the served model's requests, ``correct``. The text formats are read by
:mod:`pipeline.spectra_text` (with :func:`parse_number`, the one CSV number parser) and
:mod:`pipeline.spectra_tables`; these modules, :mod:`pipeline.spectra_stepscan` and
:mod:`pipeline.spectra_formats` import nothing else from the project.
"""

from __future__ import annotations

import dataclasses
import numbers
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.spectra_formats import reader_for
from pipeline.spectra_large import read_large
from pipeline.spectra_stepscan import merge_windows
from pipeline.spectra_text import FormatProblem, RawSpectra, numbered, read_text
from pipeline.spectra_text import parse_number as parse_number  # the one CSV number parser

MIN_POINTS = 16  # fewer points cannot hold a band and the baseline on both sides of it


class SpectrumError(ValueError):
    """Spectra that cannot be used; the message names their source and the problem.

    Attributes
    ----------
    source
        Where the spectra came from (a file, a request), as given to :func:`check_spectra`.
    problem
        What is wrong, without the source.
    """

    def __init__(self, source: object, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class SpectrumFileError(SpectrumError):
    """A file that cannot be read as spectra; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(path, problem)
        self.path = Path(path)


@dataclass(frozen=True)
class Spectra:
    """Spectra read from one file, on one shared increasing axis.

    Attributes
    ----------
    x
        The axis (L,), strictly increasing: Raman shift in cm-1, or the pixel index when
        ``calibrated`` is False.
    y
        Intensities (N, L) in the file's own units, one row per spectrum.
    source
        The file read.
    labels
        One label per spectrum (``point003 (X=1.5, Y=-2)`` for map points).
    calibrated
        False when the axis is a detector pixel index.
    kind
        The format recognised: ``npz``, ``wdf``, ``spc``, ``jcamp``, ``spe``, ``wire``,
        ``enlighten``, ``labspec``, ``table``, ``text`` or ``matrix``.
    metadata
        Header entries of the file (LabSpec, ENLIGHTEN), as text.
    notes
        What the reader did beyond reading, one sentence each, for the user: the columns
        chosen among several, rows skipped, overlapping windows merged.
    raw_counts
        The detector's raw counts (N, L), on ``x`` like ``y``, when ``y`` is a processed
        column beside them (a Neegala or BWSpec table's dark- or background-subtracted
        intensity); else None. Where they are clipped at the detector's ceiling, ``y`` is too
        (:mod:`pipeline.masking`).
    """

    x: np.ndarray
    y: np.ndarray
    source: Path
    labels: tuple[str, ...]
    calibrated: bool
    kind: str
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    raw_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


# --------------------------------------------------------------------------- the checks


def check_spectra(
    x: object, y: object, source: object, min_points: int = MIN_POINTS, masked: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra on one axis, checked: the one validator of the project.

    Parameters
    ----------
    x
        The axis (L,): an array, list or any sequence of real numbers.
    y
        The intensities (N, L), or one spectrum (L,), likewise.
    source
        Where they came from (a file, a request), named in every error.
    min_points
        Fewest points per spectrum accepted.
    masked
        Whether NaN intensities are accepted as masked pixels (:mod:`pipeline.masking`:
        ``correct`` leaves them out of the fit), a spectrum of NaN only too when others are
        not (it is written back NaN); spectra of NaN only and nothing else are still refused.
        The served model's requests and the training data refuse NaN (the default).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``x`` (L,) and ``y`` (N, L), float64, C-contiguous, the axis strictly increasing: a
        strictly decreasing axis is reversed, and every spectrum's points with it.

    Raises
    ------
    SpectrumError
        Naming ``source`` and the first problem found, in this order: values that are not
        real numbers (booleans, text, None, complex; with the index of the first), shapes that
        do not fit, no spectra, no points, fewer than ``min_points`` points, NaN or Inf in the
        axis or the intensities (with the first place; with ``masked``, Inf intensities or
        only NaN in every spectrum), a duplicated axis value, an axis that is not monotonic (with
        where it turns back).
    """
    x = _real_array(x, "the axis", "x", source)
    y = _real_array(y, "the intensities", "y", source)
    if y.ndim == 1:
        y = y[None, :]
    if x.ndim != 1 or y.ndim != 2 or y.shape[1] != x.size:
        problem = f"axis of shape {x.shape} does not fit spectra of shape {y.shape}"
        raise SpectrumError(source, f"{problem}; expected (L,) and (N, L) or (L,)")
    if y.shape[0] == 0:
        raise SpectrumError(source, "no spectra")
    if x.size == 0:
        raise SpectrumError(source, "empty: 0 points per spectrum")
    if x.size < min_points:
        problem = f"{x.size} points per spectrum, fewer than the minimum {min_points}"
        raise SpectrumError(source, problem)
    if not np.isfinite(x).all():
        problem = f"the axis holds NaN or Inf (at point {_first(~np.isfinite(x))})"
        raise SpectrumError(source, problem)
    bad = np.isinf(y) if masked else ~np.isfinite(y)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"spectrum {row + 1}, " if len(y) > 1 else ""
        what = "Inf" if masked else "NaN or Inf"
        problem = f"{bad.sum()} {what} intensities (first at {where}x = {x[col]:g})"
        raise SpectrumError(source, problem)
    if np.isnan(y).all():  # one spectrum of NaN only among others is masked whole
        which = "every spectrum: " if len(y) > 1 else ""
        raise SpectrumError(source, f"{which}every intensity is NaN: nothing to correct")
    step = np.diff(x)
    if (step == 0).any():
        raise SpectrumError(source, f"duplicated axis value x = {x[_first(step == 0)]:g}")
    if step.size and not ((step > 0).all() or (step < 0).all()):
        turn = _first(np.sign(step) != np.sign(step[0])) + 1
        raise SpectrumError(source, f"the axis is not monotonic: it turns back at x = {x[turn]:g}")
    if step.size and step[0] < 0:
        x, y = x[::-1], y[:, ::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _real_array(values: object, what: str, name: str, source: object) -> np.ndarray:
    """``values`` as a float64 array, refusing anything that is not a real number."""
    try:
        a = np.asarray(values)
    except ValueError:  # nested sequences of different lengths
        raise SpectrumError(source, f"{what}: rows of different lengths") from None
    if a.dtype.kind in "iuf":
        return a.astype(np.float64)
    if not isinstance(values, np.ndarray):  # a list mixing numbers and text became all text:
        a = np.asarray(values, dtype=object)  # keep each value's type to name the first bad one
    if a.dtype.kind != "O":  # text, booleans, complex, dates: no element is usable
        raise SpectrumError(source, f"{what}: {a.dtype} values, not real numbers")
    for i, value in enumerate(a.flat):
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            index = ", ".join(map(str, np.unravel_index(i, a.shape)))
            raise SpectrumError(source, f"{what}: {name}[{index}] = {value!r} is not a number")
    return a.astype(np.float64)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


# ---------------------------------------------------------------------------- the readers


def read_spectra(path: str | Path, min_points: int = MIN_POINTS, masked: bool = False) -> Spectra:
    """Read every spectrum of a file.

    Parameters
    ----------
    path
        The file; its format is recognised from its suffix (``.npz``) or its content.
    min_points
        Fewest points per spectrum accepted.
    masked
        Accept NaN intensities as masked pixels (``correct``), :func:`check_spectra`.

    Returns
    -------
    Spectra
        The axis sorted increasing and the spectra, in the file's intensity units.

    Raises
    ------
    SpectrumFileError
        When the file is missing, empty or not a readable set of spectra.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise FormatProblem("no such file" if not path.exists() else "not a file")
        library = reader_for(path)
        if path.suffix.lower() == ".npz":
            raw = _read_npz(path)
        elif library is not None and path.stat().st_size == 0:
            raise FormatProblem("empty file")
        else:
            raw = library(path) if library is not None else (read_large(path) or read_text(path))
    except FormatProblem as exc:
        raise SpectrumFileError(path, str(exc)) from None
    return _checked(path, raw, min_points, masked)


def checked_spectra(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    labels: tuple[str, ...] = (),
    min_points: int = MIN_POINTS,
) -> Spectra:
    """Arrays read from ``path`` by another reader, after :func:`read_spectra`'s checks.

    :func:`check_spectra`; a decreasing axis is returned increasing with the rows of ``y``
    reversed alike.

    Raises
    ------
    SpectrumFileError
        Naming ``path`` and the problem.
    """
    return _checked(Path(path), RawSpectra(x, y, kind, tuple(labels)), min_points)


def _checked(path: Path, raw: RawSpectra, min_points: int, masked: bool = False) -> Spectra:
    """:func:`check_spectra` on what a reader found, as :class:`Spectra` of ``path``."""
    if raw.kind == "matrix" and len(raw.x) < min_points:  # a matrix has the right shapes
        hint = "a matrix file holds the axis in its first ROW, one spectrum per row"
        problem = f"{len(raw.x)} points per spectrum, fewer than the minimum {min_points}"
        raise SpectrumFileError(path, f"{problem} ({hint})")
    read = len(raw.x)
    raw = _merged(raw)
    try:
        x, y = check_spectra(raw.x, raw.y, path, min_points, masked)
    except SpectrumError as exc:
        merged = f" (after merging the overlapping windows of {read} points)"
        raise SpectrumFileError(path, exc.problem + (merged if len(raw.x) < read else "")) from None
    labels = raw.labels or tuple(
        numbered("spectrum", i, len(y)) if len(y) > 1 else path.stem for i in range(len(y))
    )
    counts = None
    if raw.raw_counts is not None:  # on the axis as check_spectra returned it
        counts = np.asarray(raw.raw_counts, np.float64).reshape(y.shape)
        counts = counts[:, ::-1] if raw.x[0] > raw.x[-1] else counts
    return Spectra(
        x=x,
        y=y,
        source=path,
        labels=tuple(labels),
        calibrated=not _is_pixel_index(x),
        kind=raw.kind,
        metadata=raw.metadata,
        notes=tuple(raw.notes),
        raw_counts=counts,
    )


def _merged(raw: RawSpectra) -> RawSpectra:
    """``raw`` with its overlapping windows merged, if it is a step-and-repeat scan.

    One spectrum whose axis repeats shifts in overlapping windows, merged by
    :func:`pipeline.spectra_stepscan.merge_windows` with a note; else ``raw`` as is.
    """
    y = np.asarray(raw.y)
    if raw.kind == "npz" or y.ndim != 1 and len(y) != 1:
        return raw
    merged = merge_windows(np.asarray(raw.x), y.reshape(-1))
    if merged is None:
        return raw
    x, y, note = merged
    return dataclasses.replace(raw, x=x, y=y, notes=(*raw.notes, note), raw_counts=None)


def _is_pixel_index(x: np.ndarray) -> bool:
    """``0, 1, 2, ...`` or ``1, 2, 3, ...``: a detector pixel index, not a Raman shift."""
    return x[0] in (0.0, 1.0) and bool(np.all(np.diff(x) == 1.0))


def _read_npz(path: Path) -> RawSpectra:
    """Arrays ``x`` and ``y`` of an ``.npz`` batch; their values are checked by the caller."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                found = sorted(f.files)
                raise FormatProblem(f"no array {missing[0]!r} (found {found}); expected x, y")
            x, y = f["x"], f["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatProblem(f"not a readable .npz file ({exc})") from None
    return RawSpectra(x, y, "npz")
