"""Readers of the text exports of Raman instruments, and the one CSV number parser.

:func:`read_text` recognises the format of a text file from its first lines (the table in
:mod:`pipeline.spectra_io`) and returns what the file holds, unchecked: the shared checks,
file names and calibration are :mod:`pipeline.spectra_io`'s. Every problem found here is one
:class:`FormatProblem`, naming the line where one is at fault. This module imports nothing
from the project.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_LABSPEC_KEY = re.compile(r"^#([^=\t]+)=\t?(.*)$")  # "#Laser (nm)=\t785", "#AxisUnit[1]=1/cm"
_LABSPEC_TAB = re.compile(r"^#[^=\t]+=\t")  # only LabSpec puts a tab after the "="
_QUOTED = re.compile(r'"[^"]*"')  # a double-quoted field


class FormatProblem(Exception):
    """A problem found by a reader, before the file name is attached."""


@dataclass
class RawSpectra:
    """What a reader found, before the shared checks: axis (L,), spectra (N, L) or (L,).

    ``raw_counts``, like ``y``: the detector's raw counts beside a processed intensity
    (:attr:`pipeline.spectra_io.Spectra.raw_counts`), else None.
    """

    x: np.ndarray
    y: np.ndarray
    kind: str
    labels: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    raw_counts: np.ndarray | None = None


def parse_number(text: str) -> float | None:
    """The number in one CSV or text field (surrounding spaces allowed), else None.

    ``"1.5e3"``, ``" -2 "``, ``"nan"`` and ``"inf"`` are numbers (NaN and Inf are refused
    later, by :func:`pipeline.spectra_io.check_spectra`, with their place); words and empty
    fields are not. Decimal commas are the caller's to replace.
    """
    try:
        return float(text)
    except ValueError:
        return None


def numbered(prefix: str, i: int, n: int) -> str:
    """The name of item ``i`` (from 0) of ``n``: ``point003``, at least three digits."""
    return f"{prefix}{i + 1:0{max(3, len(str(n)))}d}"


def read_text(path: Path) -> RawSpectra:
    """What the text file ``path`` holds, in the format recognised from its first lines."""
    text = decode(path.read_bytes())
    lines = text.splitlines()  # CRLF and LF alike
    return _sniff(lines)(lines)


def decode(data: bytes) -> str:
    """The text of a file's bytes.

    UTF-16 (with a BOM, or ASCII-range text without one), UTF-8 (with or without a BOM),
    else Latin-1 (LabSpec writes its degree signs in Latin-1).

    Raises
    ------
    FormatProblem
        An empty file, or binary content (NUL characters in the decoded text).
    """
    encoding = _utf16(data)
    if encoding:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text = "\x00"  # not UTF-16 after all: binary
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if not text.strip():
        raise FormatProblem("empty file")
    if "\x00" in text:
        raise FormatProblem("binary content: expected a text export (txt, csv) or an .npz batch")
    return text


def _utf16(data: bytes) -> str | None:
    """The UTF-16 codec of ``data``, else None.

    ``utf-16`` for a UTF-16 BOM; ``utf-16-le``/``-be`` for text without a BOM whose every
    other byte is NUL (the ASCII range in UTF-16, as Windows tools write it).
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    even, odd = data[0:4096:2], data[1:4096:2]
    if len(data) < 4 or len(data) % 2:
        return None
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _sniff(lines: list[str]) -> Callable[[list[str]], RawSpectra]:
    """The reader for a text file, from its first lines."""
    head = [line.strip() for line in lines[:200] if line.strip()]
    if head[0].startswith("#") and {"#Wave", "#Intensity"} <= set(head[0].split()):
        return _read_wire
    if head[0].startswith("ENLIGHTEN") or any(_is_enlighten_table(h) for h in head):
        return _read_enlighten
    if any(_LABSPEC_TAB.match(h) for h in head):
        return _read_labspec
    from pipeline import spectra_tables  # imports this module: imported here, when needed

    if any(spectra_tables.is_named_table(h) for h in head):
        return spectra_tables.read_named_table
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
            word = next(f for f in fields if parse_number(f) is None)
            raise FormatProblem(f"line {i + 1}: {word!r} is not a number")
        if rows and len(values) != len(rows[0]):
            raise FormatProblem(f"line {i + 1}: {len(values)} values, expected {len(rows[0])}")
        rows.append(values)
        numbers.append(i + 1)
    if not rows:
        raise FormatProblem("no rows of numbers found")
    return header, np.array(rows, dtype=np.float64), numbers


def _splitter(line: str) -> Callable[[str], list[str]]:
    delimiter = delimiter_of(line)
    if delimiter == "\t":  # tabs, possibly doubled (WiRE, LabSpec headers)
        return _spaced
    if delimiter == ";":  # a semicolon table may use decimal commas
        return lambda s: [f.replace(",", ".") for f in split_fields(s.rstrip(";"), ";")]
    if delimiter == ",":  # a trailing delimiter (spreadsheet exports) ends no column;
        # a comma inside a field can only have been quoted: a decimal comma
        comma = lambda s: [_decimal_comma(f) for f in split_fields(s.rstrip(","), ",")]  # noqa: E731
        if _numbers(comma(line)) is None and _numbers(_spaced(line)) is not None:
            return _spaced  # "1234,5 567,8": spaces between numbers with decimal commas
        return comma
    return _spaced


def delimiter_of(line: str) -> str | None:
    """The delimiter of a table's line: tab, semicolon, comma (outside quotes), else None."""
    bare = _QUOTED.sub("", line)  # '"1234,5";"567,8"' is a semicolon line
    return next((d for d in ("\t", ";", ",") if d in bare), None)


def split_fields(line: str, delimiter: str) -> list[str]:
    """The fields of one line of a ``delimiter`` table, stripped of spaces and quotes.

    A field may be double-quoted and hold the delimiter (``"1234,5","567,8"``, as
    spreadsheets export with decimal commas).
    """
    if '"' in line:
        fields = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
    else:
        fields = line.split(delimiter)
    return [f.strip() for f in fields]


def _spaced(line: str) -> list[str]:
    """Fields between tabs or spaces, unquoted; a comma inside a field is a decimal comma."""
    return [_decimal_comma(f.strip('"')) for f in line.split()]


def _decimal_comma(field: str) -> str:
    """``"567,8"`` -> ``"567.8"``: one comma and no point is a decimal comma."""
    return field.replace(",", ".") if field.count(",") == 1 and "." not in field else field


def _numbers(fields: list[str]) -> list[float] | None:
    values = [parse_number(f) for f in fields]
    return None if None in values or not values else values


def _two_columns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if table.shape[1] == 1:
        raise FormatProblem("a single column of numbers: expected two (axis, intensity)")
    if table.shape[1] != 2:
        raise FormatProblem(f"{table.shape[1]} columns: expected two (axis, intensity)")
    return table[:, 0], table[:, 1]


def _read_plain(lines: list[str]) -> RawSpectra:
    _, table, _ = _table(lines)
    if table.shape[1] > 2:
        if len(table) < 2:
            raise FormatProblem("a matrix file needs the axis row and at least one spectrum row")
        return RawSpectra(table[0], table[1:], "matrix")
    x, y = _two_columns(table)
    return RawSpectra(x, y, "text")


def _read_labspec(lines: list[str]) -> RawSpectra:
    metadata = {}
    for line in lines:
        m = _LABSPEC_KEY.match(line.strip())
        if m:
            metadata[m.group(1).strip()] = m.group(2).strip()
    first = next(i for i, line in enumerate(lines) if line.strip() and line[0] != "#")
    if lines[first].startswith("\t"):
        return _read_labspec_multi(lines, first, metadata)
    _, table, _ = _table(lines)
    x, y = _two_columns(table)
    return RawSpectra(x, y, "labspec", metadata=metadata)


_LABSPEC_COORDS = {1: ("t",), 2: ("X", "Y"), 3: ("X", "Y", "Z")}


def _read_labspec_multi(lines: list[str], first: int, metadata: dict[str, str]) -> RawSpectra:
    """A LabSpec 6 multi-spectrum export: a time series or a map.

    The axis as a row led by one empty cell per coordinate (one for a time series, two for
    an X-Y map), then one row per spectrum led by its time (s) or coordinates (um).
    """
    cells = lines[first].rstrip().split("\t")  # a trailing tab ends no column
    k = next(i for i, c in enumerate(cells) if c.strip())  # empty cells before the axis
    if k not in _LABSPEC_COORDS:
        raise FormatProblem(f"line {first + 1}: {k} empty cells before the axis, expected 1-3")
    _, table, _ = _table(lines, first + 1)
    axis = _numbers(cells[k:])
    if axis is None:
        raise FormatProblem(f"line {first + 1}: the axis row holds a cell that is not a number")
    if table.shape[1] != len(axis) + k:
        raise FormatProblem(
            f"line {first + 2}: {table.shape[1]} values, expected {len(axis) + k} "
            f"({k} coordinate(s) and the {len(axis)} points of the axis row)"
        )
    names = _LABSPEC_COORDS[k]
    labels = tuple(
        f"{numbered('time' if k == 1 else 'point', i, len(table))} ("
        + ", ".join(f"{n}={v:g}" for n, v in zip(names, row[:k], strict=True))
        + (" s)" if k == 1 else ")")
        for i, row in enumerate(table)
    )
    return RawSpectra(np.array(axis), table[:, k:], "labspec", labels, metadata)


def _read_wire(lines: list[str]) -> RawSpectra:
    names = next(line for line in lines if line.strip()).split()
    _, table, numbers = _table(lines)
    if table.shape[1] != len(names):
        raise FormatProblem(
            f"line {numbers[0]}: {table.shape[1]} values under {len(names)} headers"
        )
    wave, intensity = table[:, names.index("#Wave")], table[:, names.index("#Intensity")]
    coords = np.delete(table, [names.index("#Wave"), names.index("#Intensity")], axis=1)
    if coords.shape[1] == 0:
        return RawSpectra(wave, intensity, "wire")
    # a new point where the coordinates change or the axis jumps back to its start
    step = np.diff(wave)
    moved = (np.diff(coords, axis=0) != 0).any(axis=1)
    restart = np.sign(step) != np.sign(step[0]) if len(step) else step.astype(bool)
    starts = np.concatenate([[0], np.flatnonzero(moved | restart) + 1, [len(wave)]])
    blocks = list(zip(starts[:-1], starts[1:], strict=True))
    first = wave[blocks[0][0] : blocks[0][1]]
    for k, (a, b) in enumerate(blocks[1:], start=2):
        if b - a != len(first) or not np.allclose(wave[a:b], first, rtol=0, atol=1e-6):
            raise FormatProblem(
                f"point {k} (line {numbers[a]}) has a different axis from point 1 "
                f"({b - a} points, expected {len(first)})"
            )
    labels = tuple(
        f"{numbered('point', k, len(blocks))} ("
        + ", ".join(
            f"{n.lstrip('#')}={v:g}" for n, v in zip(_coord_names(names), coords[a], strict=True)
        )
        + ")"
        for k, (a, _) in enumerate(blocks)
    )
    y = np.stack([intensity[a:b] for a, b in blocks])
    return RawSpectra(first, y, "wire", labels=labels)


def _coord_names(names: list[str]) -> list[str]:
    return [n for n in names if n not in ("#Wave", "#Intensity")]


def _is_enlighten_table(line: str) -> bool:
    fields = [f.strip() for f in line.split(",")]
    return "Pixel" in fields and "Wavenumber" in fields


def _read_enlighten(lines: list[str]) -> RawSpectra:
    start = next((i for i, line in enumerate(lines) if _is_enlighten_table(line)), None)
    if start is None:
        raise FormatProblem("ENLIGHTEN file without a table headed Pixel,...,Wavenumber,...")
    metadata = {}
    for line in lines[:start]:
        key, _, value = line.partition(",")
        if key.strip():
            metadata[key.strip()] = value.strip()
    names = [f.strip() for f in lines[start].split(",")]
    column = next((c for c in ("Processed", "Raw") if c in names), None)
    if column is None:
        raise FormatProblem(f"ENLIGHTEN table without a Processed or Raw column (columns: {names})")
    pick = [names.index("Wavenumber"), names.index(column)]
    rows = []
    for i in range(start + 1, len(lines)):
        if not lines[i].strip():
            continue
        fields = [f.strip() for f in lines[i].split(",")]
        if len(fields) != len(names):
            raise FormatProblem(f"line {i + 1}: {len(fields)} values, expected {len(names)}")
        values = []
        for j in pick:
            if fields[j] in ("NA", ""):
                values.append(np.nan)
            elif (v := parse_number(fields[j])) is None:
                raise FormatProblem(f"line {i + 1}: {fields[j]!r} is not a number")
            else:
                values.append(v)
        rows.append(values)
    if not rows:
        raise FormatProblem("ENLIGHTEN table without rows")
    table = np.array(rows)
    # NA rows at either end are pixels outside the region of interest; inside, an error
    measured = np.flatnonzero(np.isfinite(table[:, 1]))
    if measured.size:
        table = table[measured[0] : measured[-1] + 1]
    metadata["intensity_column"] = column
    return RawSpectra(table[:, 0], table[:, 1], "enlighten", metadata=metadata)
