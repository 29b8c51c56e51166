"""Readers of the exports of issue 13.

Named-column tables (B&W Tek BWSpec, Neegala), LabSpec 6 multi-spectrum files (time series,
maps), Renishaw step-and-repeat scans, UTF-16 text. Each kind on the real files of
``../shared/cases`` and on a small synthetic file of the same kind; then ``raman-baseline
correct`` on every case file, with the readers' notes in its summary.
"""

import contextlib
import io
import re

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.spectra_io import SpectrumFileError, read_spectra
from pipeline.spectra_stepscan import merge_windows

from .test_cases import CASES_DIR, needs_cases

X = np.linspace(200.0, 1800.0, 40)
Y = 1000 + 50 * np.exp(-(((X - 1000) / 30) ** 2))


def _write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding, newline="")
    return path


# ---------------------------------------------------------------- named-column tables


def _bwspec(x, y, blank_before=0, blank_after=0):
    """A BWSpec 4 export: key;value lines, then a semicolon table with decimal commas."""
    head = "File Version;BWSpec4.11_1\nDate;2021-10-27 15:57:47\nlaser_wavelength;784,82\n"
    names = "Pixel;Wavelength;Wavenumber;Raman Shift;Dark;Raw data #1;Dark Subtracted #1;\n"
    rows = []
    for i in range(blank_before):
        rows.append(f"{i};   ;   ;   ;1000,0000;1010,0000;10,0000;\n")
    for i, (a, b) in enumerate(zip(x, y, strict=True)):
        shift = f"{a:.2f}".replace(".", ",")
        rows.append(f"{i + 85};780,1;12800,5;{shift};1000,0000;{b + 1000:.4f};{b:.4f};\n")
    for i in range(blank_after):
        rows.append(f"{2040 + i};   ;   ;   ;1000,0000;1010,0000;10,0000;\n".replace(".", ","))
    return head + names + "".join(r.replace(".", ",") for r in rows)


def test_bwspec_reads_raman_shift_and_dark_subtracted_skipping_blank_shifts(tmp_path):
    path = _write(tmp_path / "bw.txt", _bwspec(X, Y, blank_before=3, blank_after=2))
    s = read_spectra(path)
    assert s.kind == "table" and s.y.shape == (1, 40)
    assert np.allclose(s.x, np.round(X, 2)) and np.allclose(s.y[0], Y, atol=1e-4)
    assert s.metadata["laser_wavelength"] == "784,82"
    assert s.notes == (
        "read columns 'Raman Shift' (axis) and 'Dark Subtracted #1' of 7",
        "5 rows without a Raman Shift skipped (lines 5-7, 48-49)",
    )


@needs_cases
def test_bwspec_case_files():
    folder = CASES_DIR / "bwtek-bwspec"
    s = read_spectra(folder / "PST02_iRPlus785_trimmed.txt")
    assert s.y.shape == (1, 916) and s.calibrated
    assert s.x[0] == pytest.approx(-42.14) and s.x[-1] == pytest.approx(1816.97)
    assert s.y[0, 0] == 12 and s.y[0, -1] == 120  # Dark Subtracted #1 of pixels 85 and 1000
    assert "6 rows without a Raman Shift skipped (lines 90-92, 1009-1011)" in s.notes
    cut = read_spectra(folder / "bwtek_min.txt")
    assert cut.y.shape == (1, 40) and "1 row without a Raman Shift skipped (line 45)" in cut.notes


def test_neegala_reads_raman_shift_and_processed_data(tmp_path):
    head = "id,59de6c43\nname,PST\ndevice,EZI860\nwl,532nm\n"
    names = "Pixels,Wavelength,Wavenumbers,Raman_Shift,Raw_Data,Background_Data,Processed_Data\n"
    rows = "".join(
        f"{i},{550 + i / 10},{14000 + i},{a},{b + 2000:.0f},2000,{b:.0f}\n"
        for i, (a, b) in enumerate(zip(X, Y, strict=True))
    )
    s = read_spectra(_write(tmp_path / "n.csv", head + names + rows))
    assert s.y.shape == (1, 40) and np.allclose(s.x, X) and np.allclose(s.y[0], np.round(Y))
    assert s.metadata["device"] == "EZI860"
    assert s.notes == ("read columns 'Raman_Shift' (axis) and 'Processed_Data' of 7",)


@pytest.mark.parametrize("sep", [";", ","])
def test_a_named_table_quoted_with_decimal_commas(tmp_path, sep):
    # every field quoted, numbers with decimal commas (failed before: "line 3: '"200,0000"' is
    # not a number" with semicolons, "line 3: 7 values, expected 4" with commas)
    names = sep.join(f'"{n}"' for n in ("Pixel", "Raman Shift", "Wavelength", "Intensity"))
    rows = "".join(
        sep.join(f'"{v}"'.replace(".", ",") for v in (i, f"{a:.4f}", 550.5, f"{b:.4f}")) + "\n"
        for i, (a, b) in enumerate(zip(X, Y, strict=True))
    )
    s = read_spectra(_write(tmp_path / "q.csv", f'"device"{sep}"EZI860"\n' + names + "\n" + rows))
    assert s.kind == "table" and np.allclose(s.x, X) and np.allclose(s.y[0], Y, atol=1e-4)
    assert s.metadata["device"] == "EZI860"
    assert s.notes == ("read columns 'Raman Shift' (axis) and 'Intensity' of 4",)


def test_a_named_table_with_units_in_its_names(tmp_path):
    names = "Pixel;Raman Shift (cm-1);Wavelength (nm);Intensity (counts)\n"
    rows = "".join(f"{i};{a};{a};{b}\n" for i, (a, b) in enumerate(zip(X, Y, strict=True)))
    s = read_spectra(_write(tmp_path / "u.txt", names + rows))
    assert np.allclose(s.x, X) and np.allclose(s.y[0], Y)
    assert s.notes == ("read columns 'Raman Shift (cm-1)' (axis) and 'Intensity (counts)' of 4",)


def test_a_named_table_without_an_intensity_column_names_its_columns(tmp_path):
    text = "Pixel,Raman Shift,Wavelength\n" + "".join(f"{i},{a},{a}\n" for i, a in enumerate(X))
    with pytest.raises(SpectrumFileError, match="line 1: no intensity column among"):
        read_spectra(_write(tmp_path / "t.csv", text))


@needs_cases
def test_neegala_case_files():
    folder = CASES_DIR / "neegala-multicolumn-csv"
    s = read_spectra(folder / "PST_532_SEX139_trimmed.csv")
    assert s.y.shape == (1, 701) and s.metadata["device"] == "EZI860"
    assert s.x[0] == pytest.approx(-1118.2901370987172)
    assert s.y[0, :3].tolist() == [-3210, -3210, 7]  # Processed_Data
    assert read_spectra(folder / "neegala_min.csv").y.shape == (1, 40)


# ------------------------------------------------------------ LabSpec multi-spectrum


def _labspec_multi(coords, spectra):
    lead = "\t" * len(coords[0])
    head = "#Acq. time (s)=\t60\n#Laser=\t532nm_Edge\n"
    axis = lead + "\t".join(f"{a:g}" for a in X) + "\n"
    rows = "".join(
        "\t".join([*(f"{c:g}" for c in where), *(f"{v:g}" for v in y)]) + "\n"
        for where, y in zip(coords, spectra, strict=True)
    )
    return head + axis + rows


def test_labspec_time_series(tmp_path):
    spectra = [Y, 2 * Y, 3 * Y]
    path = _write(tmp_path / "t.txt", _labspec_multi([(0,), (59.88,), (119.76,)], spectra))
    s = read_spectra(path)
    assert s.kind == "labspec" and s.y.shape == (3, 40) and np.allclose(s.y, spectra, rtol=1e-5)
    assert s.labels == ("time001 (t=0 s)", "time002 (t=59.88 s)", "time003 (t=119.76 s)")
    assert s.metadata["Laser"] == "532nm_Edge"


def test_labspec_map_with_x_and_y(tmp_path):
    where = [(-1.5, 2), (0, 2), (1.5, 2), (-1.5, 3)]
    s = read_spectra(_write(tmp_path / "m.txt", _labspec_multi(where, [Y] * 4)))
    assert s.y.shape == (4, 40) and s.labels[2] == "point003 (X=1.5, Y=2)"
    trailing = _labspec_multi(where, [Y] * 4).replace("\n", "\t\r\n")  # CRLF, trailing tabs
    assert read_spectra(_write(tmp_path / "t.txt", trailing)).y.shape == (4, 40)


def test_labspec_multi_rows_of_the_wrong_length(tmp_path):
    text = _labspec_multi([(0,), (60,)], [Y, Y]).rstrip("\n") + "\t5\n"
    with pytest.raises(SpectrumFileError, match="line 5: 42 values, expected 41"):
        read_spectra(_write(tmp_path / "bad.txt", text))
    text = _labspec_multi([(0,), (60,)], [Y[1:], Y[1:]])
    with pytest.raises(SpectrumFileError, match=r"line 4: 40 values, expected 41 \(1 coord"):
        read_spectra(_write(tmp_path / "short.txt", text))


@needs_cases
def test_labspec_time_series_case_file():
    s = read_spectra(CASES_DIR / "labspec-timeseries" / "serie190214-1_first3.txt")
    assert s.y.shape == (3, 1024) and s.x[0] == pytest.approx(12.5534)
    assert s.labels[1] == "time002 (t=59.8802 s)"
    assert s.y[0, 0] == 499 and s.y[2, -1] == 319


# ------------------------------------------------------------------ step-and-repeat


def _windows(offset, sorted_=True):
    """Two windows on their own grids (step 10), overlapping at 400-700."""
    a = np.arange(0.0, 700.0, 10.0)
    b = np.arange(400.0, 1100.0, 10.0) + offset
    x = np.concatenate([a, b])
    y = np.concatenate([np.full(a.size, 100.0), np.full(b.size, 100.5)])
    if sorted_:
        order = np.argsort(-x, kind="stable")  # as WiRE writes them: decreasing, interleaved
        x, y = x[order], y[order]
    return a, b, x, y


@pytest.mark.parametrize("offset", [0.0, 4.0, 9.0])
@pytest.mark.parametrize("sorted_", [True, False])
def test_step_scan_windows_are_merged_once_each(tmp_path, offset, sorted_):
    a, b, x, y = _windows(offset, sorted_)
    path = _write(tmp_path / "s.txt", "".join(f"{p}\t{q}\n" for p, q in zip(x, y, strict=True)))
    s = read_spectra(path)
    # the first window whole, then the second beyond its end; the overlap averaged (0.5 apart
    # on noise-free windows is infinitely many sigmas apart: the first window kept)
    assert np.allclose(s.x, np.concatenate([a, b[b > a[-1]]]))
    assert (s.y[0, : a.size] == 100.0).all() and (s.y[0, a.size :] == 100.5).all()
    assert len(s.notes) == 1 and "2 overlapping windows merged" in s.notes[0]
    assert f"140 points in, {s.x.size} out" in s.notes[0] and ": keep)" in s.notes[0]


def test_step_scan_overlap_is_averaged_where_the_windows_agree():
    rng = np.random.default_rng(1)
    a, b, x, _ = _windows(0.0)
    y = 100 + rng.normal(0, 1, x.size)
    mx, my, note = merge_windows(x, y)
    ya = {v: w for v, w in zip(x[::-1], y[::-1], strict=True)}  # b's value wins at a tie
    yfirst = dict(zip(x, y, strict=True))  # a's value (written first at equal shifts)
    inside = (mx >= 400) & (mx <= 690)
    assert ": mean)" in note and inside.sum() == 30
    expected = [(yfirst[v] + ya[v]) / 2 for v in mx[inside]]
    assert np.allclose(my[inside], expected)


def test_not_a_step_scan_is_left_to_the_checks(tmp_path):
    assert merge_windows(X, Y) is None  # evenly spaced
    assert merge_windows(np.r_[X[:10], X[9:39]], Y) is None  # one repeated value
    assert merge_windows(np.r_[X[:20], X[20:][::-1]], Y) is None  # unsorted, one grid
    gap = np.r_[np.arange(0.0, 100, 10), np.arange(205.0, 305, 10)]
    assert merge_windows(np.r_[gap, gap[::2] + 3], np.ones(30)) is None


@needs_cases
def test_renishaw_step_scan_case_files():
    folder = CASES_DIR / "renishaw-stepscan-overlap"
    s = read_spectra(folder / "paracetamol.txt")
    assert s.y.shape == (1, 3188) and s.x[0] == pytest.approx(96.7865)
    assert s.x[-1] == pytest.approx(3200.07)
    (note,) = s.notes
    assert "4 overlapping windows merged" in note and "4064 points in, 3188 out" in note
    assert "987.695-1312.37 cm-1 (+2.5 sigma apart: keep)" in note
    assert "2411.52-2655.35 cm-1 (-0.6 sigma apart: mean)" in note
    cut = folder / "paracetamol_2600-2580_min.txt"  # 2 x 25 points, all in one overlap
    assert read_spectra(cut).y.shape == (1, 25)
    problem = "25 points per spectrum, fewer than the minimum 32 (after merging the overlapping "
    with pytest.raises(SpectrumFileError, match=re.escape(problem + "windows of 50 points)")):
        read_spectra(cut, min_points=32)


# ---------------------------------------------------------------------------- UTF-16


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_is_read(tmp_path, encoding):
    text = "Raman shift (cm-1)\tIntensité\r\n" + "".join(
        f"{a}\t{b}\r\n" for a, b in zip(X, Y, strict=True)
    )
    s = read_spectra(_write(tmp_path / "u.txt", text, encoding))
    assert s.y.shape == (1, 40) and np.allclose(s.x, X) and np.allclose(s.y[0], Y)


def test_binary_content_is_still_refused(tmp_path):
    path = tmp_path / "b.dat"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SpectrumFileError, match="binary content"):
        read_spectra(path)


# ------------------------------------------------------------------- correct, as a user

SPECTRA_PER_FILE = {"labspec-timeseries/serie190214-1_first3.txt": 3}  # else 1
CASE_FILES = sorted(
    str(path.relative_to(CASES_DIR))
    for path in CASES_DIR.glob("*/*")
    if path.name not in ("SOURCE.txt", "README.md")
)  # every export in ../shared/cases (issue 13: every one loads and is corrected)


def test_the_cases_are_all_there():
    if not CASES_DIR.is_dir():
        pytest.skip("../shared/cases is not here")
    assert len(CASE_FILES) >= 11 and set(SPECTRA_PER_FILE) <= set(CASE_FILES)


@needs_cases
@pytest.mark.parametrize("name", CASE_FILES)
def test_correct_reads_every_case_file_and_prints_its_notes(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml, no registry: the shipped model, as a user
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out, err = io.StringIO(), io.StringIO()
    argv = ["correct", str(CASES_DIR / name), "-o", "out"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([*argv, "--no-plots", "--no-progress"])
    assert status == 0, err.getvalue()
    assert len(list((tmp_path / "out").glob("*.csv"))) == SPECTRA_PER_FILE.get(name, 1)
    notes = read_spectra(CASES_DIR / name).notes
    for note in notes:
        assert f"  note: {CASES_DIR / name}: {note}" in out.getvalue()
