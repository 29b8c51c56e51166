"""The fast path for large plain two-column text files: pandas' C parser, in chunks.

:func:`pipeline.spectra_text.read_text` holds a whole file as Python lines and lists of floats:
about 16 times the file's size in memory (3.9 GB for a 10-million-row file of 237 MB).
:func:`read_large` reads the files that reader would read as a plain two-column table
(``text``: axis, intensity) with :func:`pandas.read_csv` in chunks of :data:`CHUNK_ROWS` rows,
into two float64 arrays allocated once from the file's line count: about 0.7 times the file.

It reads only what it is sure of: files over :data:`LARGE_BYTES` whose first lines
:func:`pipeline.spectra_text.read_text` recognises as a plain table of two columns, every
further line two numbers and finite. Anything else (another format, a word, a third column, an
empty field, NaN or Inf, text that is not UTF-8 or Latin-1) answers None, and the caller reads
the file with :func:`pipeline.spectra_text.read_text`, which finds the problem and names its
line as always. The header and the delimiter are found by the same rules (a semicolon table
with decimal commas included). pandas 3's default float parser gave the same values as
Python's ``float`` (which ``read_text`` uses) on 5 million random values in five formats
(``%.17g``, ``%.6f``, ``%.10g``, ``%.6e``, ``repr``), bit for bit; ``tests/test_spectra_large.py``
checks both readers' arrays are equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.spectra_text import RawSpectra, _read_plain, _sniff, _splitter

LARGE_BYTES = 16 * 2**20  # files above this size are read here when they can be
CHUNK_ROWS = 1 << 20  # rows parsed per chunk: about 50 MB of pandas' buffers
HEAD_BYTES = 1 << 20  # read to recognise the format, as read_text's first 200 lines
HEAD_LINES = 200


def read_large(path: Path, min_bytes: int | None = None) -> RawSpectra | None:
    """The axis (L,) and the spectrum (L,) of a large plain two-column text file, else None.

    Parameters
    ----------
    path
        The file.
    min_bytes
        Files of at most this size answer None (default :data:`LARGE_BYTES`):
        :func:`pipeline.spectra_text.read_text` reads them.

    Returns
    -------
    RawSpectra or None
        Of kind ``text``, unchecked (the shared checks are the caller's); None when the file
        is small or not one this reader is sure of, to be read by ``read_text``.
    """
    if path.stat().st_size <= (LARGE_BYTES if min_bytes is None else min_bytes):
        return None
    layout = _layout(path)
    if layout is None:
        return None
    skip, options = layout
    rows = _count_lines(path) - skip + 1
    x, y = np.empty(rows), np.empty(rows)
    n = 0
    import pandas as pd  # only for large files: importing pandas costs 60 MB

    try:
        chunks = pd.read_csv(
            path,
            header=None,
            skiprows=skip,
            chunksize=CHUNK_ROWS,
            dtype=np.float64,
            keep_default_na=False,  # "NA" or an empty field is a problem, not NaN
            na_filter=False,
            engine="c",
            encoding="latin-1",  # the header is skipped; numbers are ASCII
            **options,
        )
        for chunk in chunks:
            if chunk.shape[1] != 2 or n + len(chunk) > rows:
                return None
            values = chunk.to_numpy(np.float64)
            if not np.isfinite(values).all():
                return None
            x[n : n + len(chunk)], y[n : n + len(chunk)] = values[:, 0], values[:, 1]
            n += len(chunk)
    except (ValueError, pd.errors.ParserError, UnicodeError):
        return None
    return RawSpectra(x[:n], y[:n], "text") if n else None


def _layout(path: Path) -> tuple[int, dict] | None:
    """Lines before the first row of numbers, and the delimiter as read_csv options; or None.

    None unless :func:`pipeline.spectra_text.read_text` would read the file's first lines as a
    plain table of two columns.
    """
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.splitlines()[:-1][:HEAD_LINES]  # the last may be cut short
    if not any(line.strip() for line in lines) or _sniff(lines) is not _read_plain:
        return None
    try:
        if _read_plain(lines).kind != "text":  # a matrix, or not numbers at all
            return None
    except Exception:  # read_text finds and names the problem
        return None
    for i, line in enumerate(lines):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = _splitter(line)(line)
        if all(_is_number(f) for f in fields):
            return i, _delimiter(line)
    return None


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _delimiter(line: str) -> dict:
    """:func:`pandas.read_csv` options for the delimiter :func:`_splitter` picks for ``line``."""
    if "\t" in line:
        return {"sep": r"\s+"}
    if ";" in line:
        return {"sep": ";", "decimal": ","}
    if "," in line:
        return {"sep": ",", "skipinitialspace": True}
    return {"sep": r"\s+"}


def _count_lines(path: Path, block: int = 1 << 24) -> int:
    """Line breaks in the file, plus one: at least its number of lines."""
    count = 1
    with open(path, "rb") as f:
        while data := f.read(block):
            count += data.count(b"\n") + data.count(b"\r")  # CR alone ends a line too
    return count
