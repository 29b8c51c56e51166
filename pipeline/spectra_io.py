"""Readers for Raman spectra as users bring them: instrument exports, plain text, batches.

:func:`read_spectra` recognises the format from the file itself and returns :class:`Spectra`:
an increasing axis ``x`` (L,), the spectra ``y`` (N, L) and where they came from.

=================  ====================================================================
format             how it is recognised, and what is read
=================  ====================================================================
``npz``            suffix ``.npz``: arrays ``x`` (L,) and ``y`` (N, L) or (L,)
``wire``           Renishaw WiRE txt: a ``#Wave  #Intensity`` header line, possibly after
                   coordinate columns (``#X  #Y  #Wave  #Intensity``): one spectrum per
                   point, a new point wherever the coordinates change or the axis restarts
``enlighten``      Wasatch ENLIGHTEN csv: ``key,value`` metadata lines, then a table with
                   ``Pixel`` and ``Wavenumber`` columns; the ``Processed`` intensity (else
                   ``Raw``). Rows outside the detector's region of interest (``NA`` at the
                   start or end of the table) are dropped.
``labspec``        Horiba LabSpec txt: ``#key=<tab>value`` header lines, then two columns
``text``           any other text with two columns (axis, intensity), delimited by tabs,
                   commas, semicolons (decimal commas allowed) or spaces, after optional
                   header or ``#`` comment lines
``matrix``         text with more than two columns: the first row is the axis, every
                   further row a spectrum
=================  ====================================================================

Calibration: an axis that is exactly ``0, 1, 2, ...`` (or ``1, 2, 3, ...``) is a detector pixel
index, not a Raman shift, and the spectra are flagged ``calibrated=False`` (OpenRAMAN exports,
``Pixels #,Intensity (a.u.)``). A column is judged by its values, not its header: the Wasatch
WP 532X files here are headed ``Pixel,Intensity`` but their first column holds Raman shifts
(negative and fractional values, from -601 to 4765 cm-1), so they are read as calibrated.

Every problem is one :class:`SpectrumFileError` naming the file: an empty file, non-numeric
content (with its line), NaN or Inf, a single column, a duplicated or non-monotonic axis, or
fewer points than ``min_points``. Decreasing axes (WiRE, LabSpec) are returned increasing.
This module imports nothing from the project.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_POINTS = 32  # fewer points than one block of the network cannot carry a baseline

_LABSPEC_KEY = re.compile(r"^#([^=\t]+)=\t?(.*)$")  # "#Laser (nm)=\t785", "#AxisUnit[1]=1/cm"
_LABSPEC_TAB = re.compile(r"^#[^=\t]+=\t")  # only LabSpec puts a tab after the "="


class SpectrumFileError(ValueError):
    """A file that cannot be read as spectra; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class _Bad(Exception):
    """A problem found by a reader, before the file name is attached."""


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
        The format recognised: ``npz``, ``wire``, ``enlighten``, ``labspec``, ``text`` or
        ``matrix``.
    metadata
        Header entries of the file (LabSpec, ENLIGHTEN), as text.
    """

    x: np.ndarray
    y: np.ndarray
    source: Path
    labels: tuple[str, ...]
    calibrated: bool
    kind: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class _Raw:
    """What a reader found, before the shared checks."""

    x: np.ndarray
    y: np.ndarray
    kind: str
    labels: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


def read_spectra(path: str | Path, min_points: int = MIN_POINTS) -> Spectra:
    """Read every spectrum of a file.

    Parameters
    ----------
    path
        The file; its format is recognised from its suffix (``.npz``) or its content.
    min_points
        Fewest points per spectrum accepted.

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
            raise _Bad("no such file" if not path.exists() else "not a file")
        raw = _read_npz(path) if path.suffix.lower() == ".npz" else _read_text(path)
        return _checked(path, raw, min_points)
    except _Bad as exc:
        raise SpectrumFileError(path, str(exc)) from None


def checked_spectra(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    labels: tuple[str, ...] = (),
    min_points: int = MIN_POINTS,
) -> Spectra:
    """Arrays read from ``path`` by another reader, after :func:`read_spectra`'s checks.

    Shapes, NaN or Inf, duplicated or non-monotonic axis, ``min_points``; a decreasing axis
    is returned increasing with the rows of ``y`` reversed alike.

    Raises
    ------
    SpectrumFileError
        Naming ``path`` and the problem.
    """
    try:
        return _checked(Path(path), _Raw(x, y, kind, tuple(labels)), min_points)
    except _Bad as exc:
        raise SpectrumFileError(path, str(exc)) from None


# --------------------------------------------------------------------------- the checks


def _checked(path: Path, raw: _Raw, min_points: int) -> Spectra:
    """Shared checks; sort a decreasing axis."""
    x = np.asarray(raw.x, dtype=np.float64)
    y = np.asarray(raw.y, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if x.ndim != 1 or y.ndim != 2 or y.shape[1] != x.size:
        raise _Bad(f"axis of shape {x.shape} does not fit spectra of shape {y.shape}")
    if y.shape[0] == 0:
        raise _Bad("no spectra")
    if x.size < min_points:
        hint = ""
        if raw.kind == "matrix":
            hint = " (a matrix file holds the axis in its first ROW, one spectrum per row)"
        raise _Bad(f"{x.size} points per spectrum, fewer than the minimum {min_points}{hint}")
    if not np.isfinite(x).all():
        raise _Bad(f"the axis holds NaN or Inf (at point {_first(~np.isfinite(x))})")
    bad = ~np.isfinite(y)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"spectrum {row + 1}, " if len(y) > 1 else ""
        raise _Bad(f"{bad.sum()} NaN or Inf intensities (first at {where}x = {x[col]:g})")
    step = np.diff(x)
    if (step == 0).any():
        raise _Bad(f"duplicated axis value x = {x[_first(step == 0)]:g}")
    if not ((step > 0).all() or (step < 0).all()):
        turn = _first(np.sign(step) != np.sign(step[0])) + 1
        raise _Bad(f"the axis is not monotonic: it turns back at x = {x[turn]:g}")
    if step[0] < 0:
        x, y = x[::-1], y[:, ::-1]
    labels = raw.labels or tuple(
        f"spectrum{i + 1:0{_digits(len(y))}d}" if len(y) > 1 else path.stem for i in range(len(y))
    )
    return Spectra(
        x=np.ascontiguousarray(x),
        y=np.ascontiguousarray(y),
        source=path,
        labels=tuple(labels),
        calibrated=not _is_pixel_index(x),
        kind=raw.kind,
        metadata=raw.metadata,
    )


def _is_pixel_index(x: np.ndarray) -> bool:
    """``0, 1, 2, ...`` or ``1, 2, 3, ...``: a detector pixel index, not a Raman shift."""
    return x[0] in (0.0, 1.0) and bool(np.all(np.diff(x) == 1.0))


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _digits(n: int) -> int:
    return max(3, len(str(n)))


# ---------------------------------------------------------------------------- npz batch


def _read_npz(path: Path) -> _Raw:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise _Bad(f"no array {missing[0]!r} (found {sorted(f.files)}); expected x, y")
            x, y = f["x"], f["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise _Bad(f"not a readable .npz file ({exc})") from None
    for name, a in (("x", x), ("y", y)):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise _Bad(f"array {name!r} holds {a.dtype}, not real numbers")
    if x.ndim != 1 or y.ndim not in (1, 2) or y.shape[-1] != x.size:
        raise _Bad(f"x of shape {x.shape} and y of shape {y.shape}; expected (L,) and (N, L)")
    return _Raw(x, y, "npz")


# --------------------------------------------------------------------------------- text


def _read_text(path: Path) -> _Raw:
    data = path.read_bytes()
    if not data.strip():
        raise _Bad("empty file")
    if b"\x00" in data:
        raise _Bad("binary content: expected a text export (txt, csv) or an .npz batch")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # LabSpec writes its degree signs in Latin-1
    lines = text.splitlines()  # CRLF and LF alike
    return _sniff(lines)(lines)


def _sniff(lines: list[str]) -> Callable[[list[str]], _Raw]:
    """The reader for a text file, from its first lines."""
    head = [line.strip() for line in lines[:200] if line.strip()]
    if head[0].startswith("#") and {"#Wave", "#Intensity"} <= set(head[0].split()):
        return _read_wire
    if head[0].startswith("ENLIGHTEN") or any(_is_enlighten_table(h) for h in head):
        return _read_enlighten
    if any(_LABSPEC_TAB.match(h) for h in head):
        return _read_labspec
    return _read_plain


def _table(lines: list[str], first: int = 0) -> tuple[list[str], np.ndarray, list[int]]:
    """Numbers of a delimited table: (header lines, values (rows, columns), line numbers).

    Blank and ``#`` lines are skipped; lines before the first row of numbers are the header.
    The delimiter is taken from that first row: tab, semicolon, comma, else whitespace.
    """
    header: list[str] = []
    rows: list[list[float]] = []
    numbers: list[int] = []
    split = None
    for i in range(first, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        if split is None:
            candidate = _splitter(line)
            if _numbers(candidate(line)) is None:
                header.append(line)
                continue
            split = candidate
        fields = split(line)
        values = _numbers(fields)
        if values is None:
            word = next(f for f in fields if _number(f) is None)
            raise _Bad(f"line {i + 1}: {word!r} is not a number")
        if rows and len(values) != len(rows[0]):
            raise _Bad(f"line {i + 1}: {len(values)} values, expected {len(rows[0])}")
        rows.append(values)
        numbers.append(i + 1)
    if not rows:
        raise _Bad("no rows of numbers found")
    return header, np.array(rows, dtype=np.float64), numbers


def _splitter(line: str) -> Callable[[str], list[str]]:
    if "\t" in line:
        return str.split  # tabs, possibly doubled (WiRE, LabSpec headers)
    if ";" in line:  # a semicolon table may use decimal commas
        return lambda s: [f.strip().replace(",", ".") for f in s.rstrip(";").split(";")]
    if "," in line:  # a trailing delimiter (spreadsheet exports) ends no column
        return lambda s: [f.strip() for f in s.rstrip(",").split(",")]
    return str.split


def _number(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None


def _numbers(fields: list[str]) -> list[float] | None:
    values = [_number(f) for f in fields]
    return None if None in values or not values else values


def _two_columns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if table.shape[1] == 1:
        raise _Bad("a single column of numbers: expected two (axis, intensity)")
    if table.shape[1] != 2:
        raise _Bad(f"{table.shape[1]} columns: expected two (axis, intensity)")
    return table[:, 0], table[:, 1]


def _read_plain(lines: list[str]) -> _Raw:
    _, table, _ = _table(lines)
    if table.shape[1] > 2:
        if len(table) < 2:
            raise _Bad("a matrix file needs the axis row and at least one spectrum row")
        return _Raw(table[0], table[1:], "matrix")
    x, y = _two_columns(table)
    return _Raw(x, y, "text")


def _read_labspec(lines: list[str]) -> _Raw:
    metadata = {}
    for line in lines:
        m = _LABSPEC_KEY.match(line.strip())
        if m:
            metadata[m.group(1).strip()] = m.group(2).strip()
    _, table, _ = _table(lines)
    x, y = _two_columns(table)
    return _Raw(x, y, "labspec", metadata=metadata)


def _read_wire(lines: list[str]) -> _Raw:
    names = next(line for line in lines if line.strip()).split()
    _, table, numbers = _table(lines)
    if table.shape[1] != len(names):
        raise _Bad(f"line {numbers[0]}: {table.shape[1]} values under {len(names)} headers")
    wave, intensity = table[:, names.index("#Wave")], table[:, names.index("#Intensity")]
    coords = np.delete(table, [names.index("#Wave"), names.index("#Intensity")], axis=1)
    if coords.shape[1] == 0:
        return _Raw(wave, intensity, "wire")
    # a new point where the coordinates change or the axis jumps back to its start
    step = np.diff(wave)
    moved = (np.diff(coords, axis=0) != 0).any(axis=1)
    restart = np.sign(step) != np.sign(step[0]) if len(step) else step.astype(bool)
    starts = np.concatenate([[0], np.flatnonzero(moved | restart) + 1, [len(wave)]])
    blocks = list(zip(starts[:-1], starts[1:], strict=True))
    first = wave[blocks[0][0] : blocks[0][1]]
    for k, (a, b) in enumerate(blocks[1:], start=2):
        if b - a != len(first) or not np.allclose(wave[a:b], first, rtol=0, atol=1e-6):
            raise _Bad(
                f"point {k} (line {numbers[a]}) has a different axis from point 1 "
                f"({b - a} points, expected {len(first)})"
            )
    labels = tuple(
        f"point{k + 1:0{_digits(len(blocks))}d} ("
        + ", ".join(
            f"{n.lstrip('#')}={v:g}" for n, v in zip(_coord_names(names), coords[a], strict=True)
        )
        + ")"
        for k, (a, _) in enumerate(blocks)
    )
    y = np.stack([intensity[a:b] for a, b in blocks])
    return _Raw(first, y, "wire", labels=labels)


def _coord_names(names: list[str]) -> list[str]:
    return [n for n in names if n not in ("#Wave", "#Intensity")]


def _is_enlighten_table(line: str) -> bool:
    fields = [f.strip() for f in line.split(",")]
    return "Pixel" in fields and "Wavenumber" in fields


def _read_enlighten(lines: list[str]) -> _Raw:
    start = next((i for i, line in enumerate(lines) if _is_enlighten_table(line)), None)
    if start is None:
        raise _Bad("ENLIGHTEN file without a table headed Pixel,...,Wavenumber,...")
    metadata = {}
    for line in lines[:start]:
        key, _, value = line.partition(",")
        if key.strip():
            metadata[key.strip()] = value.strip()
    names = [f.strip() for f in lines[start].split(",")]
    column = next((c for c in ("Processed", "Raw") if c in names), None)
    if column is None:
        raise _Bad(f"ENLIGHTEN table without a Processed or Raw column (columns: {names})")
    pick = [names.index("Wavenumber"), names.index(column)]
    rows = []
    for i in range(start + 1, len(lines)):
        if not lines[i].strip():
            continue
        fields = [f.strip() for f in lines[i].split(",")]
        if len(fields) != len(names):
            raise _Bad(f"line {i + 1}: {len(fields)} values, expected {len(names)}")
        values = []
        for j in pick:
            if fields[j] in ("NA", ""):
                values.append(np.nan)
            elif (v := _number(fields[j])) is None:
                raise _Bad(f"line {i + 1}: {fields[j]!r} is not a number")
            else:
                values.append(v)
        rows.append(values)
    if not rows:
        raise _Bad("ENLIGHTEN table without rows")
    table = np.array(rows)
    # NA rows at either end are pixels outside the region of interest; inside, an error
    measured = np.flatnonzero(np.isfinite(table[:, 1]))
    if measured.size:
        table = table[measured[0] : measured[-1] + 1]
    metadata["intensity_column"] = column
    return _Raw(table[:, 0], table[:, 1], "enlighten", metadata=metadata)
