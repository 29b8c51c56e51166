"""Readers: every real instrument file shipped with the project, every kind of bad input."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.spectra_io import (
    MIN_POINTS,
    SpectrumError,
    SpectrumFileError,
    check_spectra,
    parse_number,
    read_spectra,
)

from .conftest import EXPECTED, REAL, needs_real, real_files


@needs_real
def test_every_real_file_has_an_expectation():
    found = {p.relative_to(REAL).as_posix() for p in real_files()}
    assert found == set(EXPECTED)


@needs_real
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file(name):
    n, length, calibrated, kind = EXPECTED[name]
    s = read_spectra(REAL / name)
    assert s.y.shape == (n, length) and s.x.shape == (length,)
    assert len(s) == n and len(s.labels) == n
    assert np.all(np.diff(s.x) > 0)
    assert np.isfinite(s.y).all()
    assert s.calibrated is calibrated and s.kind == kind
    assert s.source == REAL / name


@needs_real
def test_decreasing_files_are_reversed_with_their_intensities():
    # the first data lines of these files are the highest shifts: they must end the arrays
    s = read_spectra(REAL / "Renishaw_Qontor/acetonitrile_5x.txt")
    assert s.x[-1] == pytest.approx(3199.438477) and s.y[0, -1] == pytest.approx(59.220352)
    s = read_spectra(REAL / "Horiba_MacroRAM/acetonitrile.txt")
    assert s.x[-1] == pytest.approx(3513.15) and s.y[0, -1] == pytest.approx(331.5)
    assert s.metadata["Laser (nm)"] == "785"


@needs_real
def test_multipoint_renishaw_points_are_separate_spectra():
    s = read_spectra(REAL / "Renishaw_Qontor/CC-124_TAP_plate_5x_3_points.txt")
    assert s.labels[0] == "point001 (X=404.763, Y=-427.523)"
    assert s.x[-1] == pytest.approx(1808.186523)
    assert s.y[0, -1] == pytest.approx(19434.511719)  # the file's first row
    assert not np.allclose(s.y[0], s.y[1])


@needs_real
def test_enlighten_reads_wavenumber_and_processed():
    s = read_spectra(REAL / "Wasatch_WP785X/acetonitrile.csv")
    assert s.x[0] == pytest.approx(260.19) and s.y[0, 0] == pytest.approx(38.5)
    assert s.x[-1] == pytest.approx(3653.54) and s.y[0, -1] == pytest.approx(-415.0)
    assert s.metadata["intensity_column"] == "Processed"
    assert s.metadata["Laser Wavelength"] == "785.041"


# ---------------------------------------------------------------- good synthetic files

X = np.linspace(200.0, 1800.0, 40)
Y = 1000 + 50 * np.sin(X / 90)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "sep, header",
    [("\t", ""), (",", "shift,counts\n"), (" ", "# a comment\n"), ("  ", "x y\n# note\n")],
)
def test_plain_two_columns_any_delimiter(tmp_path, sep, header):
    rows = "".join(f"{a}{sep}{b}\n" for a, b in zip(X, Y, strict=True))
    s = read_spectra(_write(tmp_path / "s.txt", header + rows))
    assert s.kind == "text" and s.calibrated
    assert np.array_equal(s.x, X) and np.array_equal(s.y[0], Y)


def test_trailing_delimiters_and_crlf(tmp_path):
    rows = "".join(f"{a},{b},\r\n" for a, b in zip(X, Y, strict=True))
    s = read_spectra(_write(tmp_path / "s.csv", rows))
    assert np.array_equal(s.x, X) and np.array_equal(s.y[0], Y)


def test_semicolons_with_decimal_commas(tmp_path):
    rows = "".join(f"{a:.6f};{b:.6f}\n".replace(".", ",") for a, b in zip(X, Y, strict=True))
    s = read_spectra(_write(tmp_path / "s.csv", "Raman shift;Intensity\r\n" + rows))
    assert np.allclose(s.x, X) and np.allclose(s.y[0], Y)


@pytest.mark.parametrize("sep", ["\t", " ", "  "])
def test_tabs_or_spaces_with_decimal_commas(tmp_path, sep):
    rows = "".join(
        f"{a:.6f}{sep}{b:.6f}\n".replace(".", ",") for a, b in zip(X, Y, strict=True)
    )  # a European export; read only with semicolons before ("no rows of numbers found")
    s = read_spectra(_write(tmp_path / "s.txt", f"Raman shift{sep}Intensity\n" + rows))
    assert np.allclose(s.x, X) and np.allclose(s.y[0], Y)


@pytest.mark.parametrize("sep", [";", ",", "\t"])
@pytest.mark.parametrize("decimal", [",", "."])
def test_quoted_numbers_read_as_unquoted(tmp_path, sep, decimal):
    # a spreadsheet's export quoting every field: '"1234,5";"567,8"', '"1234,5","567,8"'
    # (failed before: "no rows of numbers found", with either decimal mark)
    rows = "".join(
        f'"{a:.6f}"{sep}"{b:.6f}"\n'.replace(".", decimal) for a, b in zip(X, Y, strict=True)
    )
    s = read_spectra(_write(tmp_path / "s.csv", f'"Raman shift"{sep}"Intensity"\n' + rows))
    assert s.kind == "text" and np.allclose(s.x, X) and np.allclose(s.y[0], Y)


def test_quoted_numbers_in_a_matrix_and_a_trailing_delimiter(tmp_path):
    rows = [X, Y, 2 * Y]
    text = "".join(";".join(f'"{v:.6f}"'.replace(".", ",") for v in r) + ";\n" for r in rows)
    s = read_spectra(_write(tmp_path / "m.csv", text))
    assert s.kind == "matrix" and np.allclose(s.y, [Y, 2 * Y])


def test_commas_then_spaces_stay_a_comma_table(tmp_path):
    rows = "".join(f"{a:.6f}, {b:.6f}\n" for a, b in zip(X, Y, strict=True))
    s = read_spectra(_write(tmp_path / "s.csv", rows))
    assert np.allclose(s.x, X) and np.allclose(s.y[0], Y)


def test_decreasing_axis_is_sorted(tmp_path):
    rows = "".join(f"{a},{b}\n" for a, b in zip(X[::-1], Y[::-1], strict=True))
    s = read_spectra(_write(tmp_path / "s.csv", rows))
    assert np.array_equal(s.x, X) and np.array_equal(s.y[0], Y)


def test_pixel_index_is_uncalibrated(tmp_path):
    rows = "".join(f"{i:.5e},{b}\n" for i, b in enumerate(Y))
    s = read_spectra(_write(tmp_path / "p.csv", "Pixels #,Intensity (a.u.)\n" + rows))
    assert not s.calibrated and np.array_equal(s.x, np.arange(len(Y)))
    # the same header over fractional, negative values: a Raman shift axis (Wasatch 532X)
    rows = "".join(f"{a - 600.5},{b}\n" for a, b in zip(X, Y, strict=True))
    assert read_spectra(_write(tmp_path / "w.csv", "Pixel,Intensity\n" + rows)).calibrated


def test_matrix_first_row_is_the_axis(tmp_path):
    y = np.stack([Y, 2 * Y, Y - 5])
    text = ",".join(map(str, X)) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in y)
    s = read_spectra(_write(tmp_path / "m.csv", text))
    assert s.kind == "matrix" and np.array_equal(s.y, y) and np.array_equal(s.x, X)
    assert s.labels == ("spectrum001", "spectrum002", "spectrum003")


def test_npz_batch(tmp_path):
    y = np.stack([Y, 3 * Y])
    np.savez(tmp_path / "b.npz", x=X[::-1], y=y[:, ::-1])
    s = read_spectra(tmp_path / "b.npz")
    assert s.kind == "npz" and np.array_equal(s.x, X) and np.array_equal(s.y, y)
    np.savez(tmp_path / "one.npz", x=X, y=Y)
    assert read_spectra(tmp_path / "one.npz").y.shape == (1, len(X))


def test_wire_multipoint_blocks(tmp_path):
    lines = ["#X\t\t#Y\t\t#Wave\t\t#Intensity"]
    for k in range(3):
        lines += [
            f"{k * 1.5}\t-2\t{a}\t{b * (k + 1)}" for a, b in zip(X[::-1], Y[::-1], strict=True)
        ]
    s = read_spectra(_write(tmp_path / "map.txt", "\r\n".join(lines) + "\r\n"))
    assert s.y.shape == (3, len(X)) and np.array_equal(s.x, X)
    assert np.allclose(s.y, np.stack([Y, 2 * Y, 3 * Y]))
    assert s.labels[1] == "point002 (X=1.5, Y=-2)"


def test_wire_points_at_the_same_place_are_split_by_the_axis(tmp_path):
    lines = ["#X\t#Y\t#Wave\t#Intensity"]
    for k in range(2):
        lines += [f"0\t0\t{a}\t{b + k}" for a, b in zip(X[::-1], Y[::-1], strict=True)]
    assert read_spectra(_write(tmp_path / "same.txt", "\n".join(lines))).y.shape == (2, len(X))


def test_enlighten_drops_na_only_at_the_ends(tmp_path):
    head = (
        "ENLIGHTEN Version,4.1.6\nLaser Wavelength,785.0\n\nPixel,Wavelength,Wavenumber,Processed\n"
    )
    rows = [f"{i},{800 + i},{a},{b}" for i, (a, b) in enumerate(zip(X, Y, strict=True))]
    rows[0] = rows[0].rsplit(",", 1)[0] + ",NA"
    s = read_spectra(_write(tmp_path / "e.csv", head + "\n".join(rows)))
    assert s.kind == "enlighten" and np.array_equal(s.x, X[1:]) and np.array_equal(s.y[0], Y[1:])
    rows[20] = rows[20].rsplit(",", 1)[0] + ",NA"
    with pytest.raises(SpectrumFileError, match="NaN or Inf"):
        read_spectra(_write(tmp_path / "e2.csv", head + "\n".join(rows)))


# ------------------------------------------------------------------------- bad input


def _rows(x, y, sep=","):
    return "".join(f"{a}{sep}{b}\n" for a, b in zip(x, y, strict=True))


BAD = {
    "empty.txt": ("", "empty file"),
    "blank.txt": ("\n  \n\t\n", "empty file"),
    "words.txt": ("shift,counts\nno numbers here\n", "no rows of numbers"),
    "middle.csv": (_rows(X[:5], Y[:5]) + "1.0,abc\n" + _rows(X[5:], Y[5:]), "line 6: 'abc'"),
    "nan.csv": (_rows(X, np.where(np.arange(40) == 7, np.nan, Y)), "NaN or Inf"),
    "inf.csv": (_rows(X, np.where(np.arange(40) == 7, np.inf, Y)), "NaN or Inf"),
    "axis_nan.csv": (_rows(np.where(np.arange(40) == 3, np.nan, X), Y), "axis holds NaN"),
    "one_column.txt": ("".join(f"{b}\n" for b in Y), "single column"),
    "ragged.csv": (_rows(X[:5], Y[:5]) + "1,2,3\n", "line 6: 3 values, expected 2"),
    "duplicated.csv": (_rows(np.r_[X[:10], X[9:39]], Y), "duplicated axis value x = "),
    "unsorted.csv": (_rows(np.r_[X[:20], X[20:][::-1]], Y), "not monotonic"),
    "short.csv": (
        _rows(X[:10], Y[:10]),
        f"10 points per spectrum, fewer than the minimum {MIN_POINTS}",
    ),
    "binary.spc": ("\x00\x01\x02garbage", "binary content"),
    "labspec_map.txt": ("#Laser=\t532\n" + "1\t2\t3\n" * 40, "3 columns: expected two"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_text_input(tmp_path, name):
    text, problem = BAD[name]
    path = _write(tmp_path / name, text)
    with pytest.raises(SpectrumFileError, match=problem) as info:
        read_spectra(path)
    assert str(path) in str(info.value) and info.value.path == path
    assert isinstance(info.value, ValueError)


def test_minimum_points_is_a_parameter(tmp_path):
    path = _write(tmp_path / "s.csv", _rows(X, Y))
    with pytest.raises(
        SpectrumFileError, match="40 points per spectrum, fewer than the minimum 64"
    ):
        read_spectra(path, min_points=64)
    assert read_spectra(path, min_points=40).y.shape == (1, 40)


def test_file_name_with_spaces_and_missing_file(tmp_path):
    assert read_spectra(_write(tmp_path / "my spectrum 2.txt", _rows(X, Y))).y.shape == (1, 40)
    with pytest.raises(SpectrumFileError, match="no such file"):
        read_spectra(tmp_path / "nothing here.txt")
    with pytest.raises(SpectrumFileError, match="not a file"):
        read_spectra(tmp_path)


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "nokey.npz", x=X, intensity=Y)
    np.savez(tmp_path / "shape.npz", x=X, y=np.ones((2, 39)))
    np.savez(tmp_path / "nan.npz", x=X, y=np.where(np.arange(40) == 3, np.nan, Y))
    np.savez(tmp_path / "text.npz", x=X, y=np.array(["a"] * 40))
    (tmp_path / "zip.npz").write_bytes(b"not a zip at all")
    cases = {
        "nokey.npz": "no array 'y'",
        "shape.npz": r"expected \(L,\) and \(N, L\)",
        "nan.npz": "NaN or Inf",
        "text.npz": "not real numbers",
        "zip.npz": "not a readable .npz",
    }
    for name, problem in cases.items():
        with pytest.raises(SpectrumFileError, match=problem):
            read_spectra(tmp_path / name)


def test_wire_points_with_different_axes(tmp_path):
    lines = ["#X\t#Y\t#Wave\t#Intensity"]
    lines += [f"0\t0\t{a}\t{b}" for a, b in zip(X[::-1], Y[::-1], strict=True)]
    lines += [f"1\t0\t{a + 0.5}\t{b}" for a, b in zip(X[::-1], Y[::-1], strict=True)]
    with pytest.raises(SpectrumFileError, match="point 2 .* different axis"):
        read_spectra(_write(tmp_path / "map.txt", "\n".join(lines)))


# ---------------------------------------------------------------------- check_spectra

XS = np.linspace(200.0, 1800.0, 40)
YS = np.stack([1000 + 50 * np.sin(XS / 90), 900 + 40 * np.cos(XS / 70)])


def test_check_spectra_accepts_lists_and_ints_and_returns_float64():
    x, y = check_spectra(list(range(40)), [list(range(40))], "request")
    assert x.dtype == y.dtype == np.float64 and y.shape == (1, 40)
    x, y = check_spectra(XS.astype(np.float32), YS[0], "request")
    assert y.shape == (1, 40) and x.flags.c_contiguous
    objects = np.array(list(XS), dtype=object)  # e.g. a pandas object column
    assert np.array_equal(check_spectra(objects, YS, "request")[0], XS)


def test_check_spectra_reverses_a_decreasing_axis_with_the_spectra():
    x, y = check_spectra(XS[::-1], YS[:, ::-1], "wire")
    assert np.array_equal(x, XS) and np.array_equal(y, YS) and y.flags.c_contiguous
    x, y = check_spectra(XS, YS, "as is")
    assert np.array_equal(x, XS) and np.array_equal(y, YS)


def _nan_at(a, index):
    a = np.array(a, dtype=np.float64)
    a[index] = np.nan
    return a


REFUSED = {
    "text axis": (np.array(["a"] * 40), YS, "the axis: <U1 values, not real numbers"),
    "bool intensities": (XS, YS > 0, "the intensities: bool values, not real numbers"),
    "complex": (XS, YS + 1j, "complex128 values, not real numbers"),
    "None": (XS, [list(YS[0][:5]) + [None] + list(YS[0][6:])], r"y\[0, 5\] = None is not"),
    "word": (list(XS[:3]) + ["12,5"] + list(XS[4:]), YS, r"x\[3\] = '12,5' is not a number"),
    "ragged": (XS, [list(YS[0]), list(YS[1][:-1])], "rows of different lengths"),
    "mismatched": (XS[:-1], YS, r"axis of shape \(39,\) does not fit spectra of shape \(2, 40\)"),
    "2-D axis": (YS, YS, "does not fit"),
    "no spectra": (XS, np.empty((0, 40)), "no spectra"),
    "empty": ([], [], "empty: 0 points"),
    "short": (XS[:10], YS[:, :10], "10 points per spectrum, fewer than the minimum 16"),
    "axis NaN": (_nan_at(XS, 3), YS, r"the axis holds NaN or Inf \(at point 3\)"),
    "axis Inf": (np.where(np.arange(40) == 39, np.inf, XS), YS, "axis holds NaN or Inf"),
    "NaN": (
        XS,
        _nan_at(YS, (1, 4)),
        rf"1 NaN or Inf intensities \(first at spectrum 2, x = {XS[4]:g}",
    ),
    "Inf": (XS, np.where(YS > 1030, -np.inf, YS), "NaN or Inf intensities"),
    "duplicated": (np.r_[XS[:10], XS[9:39]], YS, f"duplicated axis value x = {XS[9]:g}"),
    "not monotonic": (
        np.r_[XS[:20], XS[20:][::-1]],
        YS,
        f"the axis is not monotonic: it turns back at x = {XS[38]:g}",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_spectra_refuses(case):
    x, y, problem = REFUSED[case]
    with pytest.raises(SpectrumError, match=problem) as info:
        check_spectra(x, y, "request 7")
    assert str(info.value).startswith("request 7: ") and isinstance(info.value, ValueError)
    assert info.value.source == "request 7" and info.value.problem in str(info.value)


def test_check_spectra_minimum_points_is_a_parameter():
    assert check_spectra(XS[:10], YS[:, :10], "s", min_points=10)[1].shape == (2, 10)
    with pytest.raises(SpectrumError, match="fewer than the minimum 41"):
        check_spectra(XS, YS, "s", min_points=41)


def test_a_file_error_is_a_spectrum_error(tmp_path):
    with pytest.raises(SpectrumError):
        read_spectra(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    "text, number",
    [("1.5", 1.5), (" -2 ", -2.0), ("1e3", 1000.0), ("abc", None), ("", None), ("1,5", None)],
)
def test_parse_number(text, number):
    assert parse_number(text) == number
