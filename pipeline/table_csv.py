"""A CSV table of float columns written in blocks: the memory of a block, not of the table.

:func:`numpy.savetxt` of ``numpy.column_stack(columns)`` holds the whole stacked table, a
second copy of every column (320 MB for four columns of 10 million rows). :func:`write_columns`
stacks and formats :data:`BLOCK_ROWS` rows at a time, with the same text as ``savetxt`` for
the same ``fmt``, and writes NaN as an empty cell (a masked pixel: no value there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLOCK_ROWS = 1 << 16  # rows formatted at a time: a few MB


def write_columns(
    path: str | Path,
    columns: Sequence[np.ndarray],
    names: Sequence[str],
    fmt: str = "%.10g",
    block_rows: int = BLOCK_ROWS,
) -> None:
    """Write ``columns`` (each (L,)) under the header ``names`` as a comma-separated file.

    Parameters
    ----------
    path
        The file written (created or truncated); the caller makes the write atomic.
    columns
        One array (L,) per column, all of one length.
    names
        The header's column names, one per column.
    fmt
        ``%``-format of every value: each row is what :func:`numpy.savetxt` writes with
        ``fmt``, ``delimiter=","``, ``header=",".join(names)`` and ``comments=""``, except
        that a NaN value is an empty cell.
    block_rows
        Rows stacked and formatted at a time.

    Raises
    ------
    ValueError
        When the columns differ in length or ``names`` does not name each column.
    """
    length = {len(c) for c in columns}
    if len(length) > 1 or len(names) != len(columns):
        lengths = [len(c) for c in columns]
        raise ValueError(f"{len(names)} names for columns of lengths {lengths}")
    rows = length.pop() if length else 0
    line = ",".join([fmt] * len(columns)) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(names) + "\n")
        for start in range(0, rows, block_rows):
            block = np.column_stack([c[start : start + block_rows] for c in columns])
            masked = np.isnan(block).any(axis=1)
            f.writelines(
                _with_gaps(row, fmt) if gap else line % tuple(row)
                for row, gap in zip(block.tolist(), masked.tolist(), strict=True)
            )


def _with_gaps(row: list[float], fmt: str) -> str:
    """A row holding NaN: each NaN an empty cell, the other values formatted."""
    return ",".join("" if v != v else fmt % v for v in row) + "\n"
