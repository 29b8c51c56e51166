"""The CSV writer in blocks: savetxt's text, NaN as an empty cell."""

import numpy as np
import pytest

from pipeline.table_csv import write_columns


def test_the_text_is_savetxts_for_the_same_format(tmp_path):
    rng = np.random.default_rng(0)
    n = 10_007  # several blocks and a remainder
    columns = [rng.normal(0, 1, n) * 10.0 ** rng.integers(-300, 300, n) for _ in range(3)]
    columns.append(np.round(rng.normal(0, 1000, n)))
    columns[0][:5] = [0.0, -0.0, 1e-320, np.inf, -np.inf]
    write_columns(tmp_path / "blocks.csv", columns, list("abcd"), block_rows=1000)
    np.savetxt(
        tmp_path / "whole.csv",
        np.column_stack(columns),
        fmt="%.10g",
        delimiter=",",
        header="a,b,c,d",
        comments="",
    )
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_nan_is_an_empty_cell(tmp_path):
    x = np.array([1.0, 2.0, 3.0])
    write_columns(tmp_path / "t.csv", [x, np.array([np.nan, 0.5, np.nan])], ["x", "y"])
    assert (tmp_path / "t.csv").read_text() == "x,y\n1,\n2,0.5\n3,\n"


def test_columns_of_different_lengths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lengths"):
        write_columns(tmp_path / "t.csv", [np.zeros(3), np.zeros(4)], ["x", "y"])
