"""Reader of text tables whose header row names a Raman-shift column among several others.

Instrument software that writes every quantity it has (pixel, wavelength, wavenumber, Raman
shift, dark, raw, processed...) into one table: B&W Tek BWSpec (``key;value`` metadata lines,
then a semicolon table with decimal commas: ``Pixel;Wavelength;Wavenumber;Raman Shift;Dark;
...;Dark Subtracted #1;...``), Neegala (``key,value`` lines, then ``Pixels,Wavelength,
Wavenumbers,Raman_Shift,Raw_Data,Background_Data,Processed_Data``). The Raman-shift column is
the axis; the intensity is the first column found of :data:`INTENSITY_COLUMNS` (the
dark- or background-subtracted signal before the raw one). When it is not the raw counts, those
(:data:`RAW_COLUMNS`) are read too, as ``raw_counts``: a pixel clipped at the detector's
ceiling there is clipped in the subtracted intensity too, though it no longer looks it there
(65535 minus a varying background), and :mod:`pipeline.masking` masks it. Rows whose shift
cell is blank (pixels outside the calibrated range: BWSpec leaves them empty) are skipped and
counted in a note. This module imports from the project only :mod:`pipeline.spectra_text`.
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.spectra_text import (
    FormatProblem,
    RawSpectra,
    delimiter_of,
    parse_number,
    split_fields,
)

# column names compared without case, spaces or punctuation ("Raman Shift (cm-1)" ->
# "ramanshiftcm1"); intensities in order of preference
SHIFT_PREFIX = "ramanshift"
RAW_COLUMNS = ("rawdata1", "rawdata", "raw")  # the detector's counts, before any subtraction
INTENSITY_COLUMNS = (
    "darksubtracted1",  # BWSpec: raw minus dark
    "darksubtracted",
    "processeddata",  # Neegala: raw minus background
    "processed",
    "intensity",
    "counts",
    "rawdata1",
    "rawdata",
    "raw",
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_named_table(line: str) -> bool:
    """A header row of three or more named columns, one of them a Raman shift."""
    delimiter = delimiter_of(line)
    if delimiter is None:
        return False
    names = [_key(n) for n in split_fields(line, delimiter) if n]
    return len(names) >= 3 and any(n.startswith(SHIFT_PREFIX) for n in names)


def read_named_table(lines: list[str]) -> RawSpectra:
    """The Raman shift and the preferred intensity column of a named table.

    Raises
    ------
    FormatProblem
        No intensity column among :data:`INTENSITY_COLUMNS`, a row of the wrong length, a
        cell that is not a number (with its line), no row with a shift.
    """
    start = next(i for i, line in enumerate(lines) if is_named_table(line.strip()))
    delimiter = delimiter_of(lines[start])
    names = split_fields(lines[start].rstrip("\r\n"), delimiter)
    if names and not names[-1]:  # a trailing delimiter (BWSpec) ends no column
        names = names[:-1]
    keys = [_key(n) for n in names]
    shift = next(i for i, k in enumerate(keys) if k.startswith(SHIFT_PREFIX))
    intensity = _intensity_column(keys)
    if intensity is None:
        raise FormatProblem(
            f"line {start + 1}: no intensity column among {names} "
            f"(expected one of Dark Subtracted #1, Processed_Data, Intensity, Counts, Raw...)"
        )
    raw = next(
        (keys.index(k) for k in RAW_COLUMNS if k in keys and keys.index(k) != intensity), None
    )
    metadata = {}
    for line in lines[:start]:
        key, _, value = line.partition(delimiter)
        if key.strip():
            metadata[key.strip().strip('"')] = value.strip().rstrip(delimiter).strip().strip('"')
    rows, skipped = [], []
    for i in range(start + 1, len(lines)):
        if not lines[i].strip():
            continue
        cells = split_fields(lines[i].rstrip("\r\n"), delimiter)
        if len(cells) == len(names) + 1 and not cells[-1].strip():
            cells = cells[:-1]
        if len(cells) != len(names):
            raise FormatProblem(f"line {i + 1}: {len(cells)} values, expected {len(names)}")
        picked = [cells[shift].strip(), cells[intensity].strip()]
        if not picked[0]:
            skipped.append(i + 1)
            continue
        # a comma left in a cell is a decimal one: a comma table's own were quoted
        values = [parse_number(c.replace(",", ".")) for c in picked]
        for cell, value in zip(picked, values, strict=True):
            if value is None:
                raise FormatProblem(f"line {i + 1}: {cell!r} is not a number")
        counts = parse_number(cells[raw].replace(",", ".")) if raw is not None else None
        rows.append([*values, np.nan if counts is None else counts])
    if not rows:
        raise FormatProblem(f"no row with a value under {names[shift]!r}")
    table = np.array(rows, dtype=np.float64)
    notes = [f"read columns {names[shift]!r} (axis) and {names[intensity]!r} of {len(names)}"]
    if skipped:
        rows_, lines_ = ("row", "line") if len(skipped) == 1 else ("rows", "lines")
        notes.append(
            f"{len(skipped)} {rows_} without a {names[shift]} skipped ({lines_} {_spans(skipped)})"
        )
    metadata["intensity_column"] = names[intensity]
    raw_counts = table[:, 2] if raw is not None else None  # where clipped, so is the intensity
    return RawSpectra(
        table[:, 0], table[:, 1], "table", (), metadata, tuple(notes), raw_counts=raw_counts
    )


def _intensity_column(keys: list[str]) -> int | None:
    """The index of the preferred intensity column, or None.

    The first of :data:`INTENSITY_COLUMNS` named exactly, else the first that begins a name
    (``Intensity (counts)``).
    """
    for match in (str.__eq__, str.startswith):
        for wanted in INTENSITY_COLUMNS:
            found = next((i for i, k in enumerate(keys) if match(k, wanted)), None)
            if found is not None:
                return found
    return None


def _spans(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    spans, first = [], numbers[0]
    for a, b in zip(numbers, [*numbers[1:], None], strict=True):
        if b != a + 1:
            spans.append(f"{first}-{a}" if a != first else f"{a}")
            first = b
    return ", ".join(spans)
