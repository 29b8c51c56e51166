"""Binary and interchange formats (pipeline.spectra_formats) on small real public files.

The files and their licences: ``tests/data/formats/SOURCE.md``. Each is checked against
values from outside this project: Renishaw's own tests of ``Si-map.wdf``, specio's CSV export
of ``sp1.spc``, the XY pairs written in ``tannic_acid.jdx`` itself, the data of
``paracetamol.SPE`` at the offsets its header format documents.
"""

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.spectra_io import SpectrumFileError, read_spectra

FORMATS = Path(__file__).parent / "data" / "formats"


def test_wdf_map_every_spectrum_with_its_coordinates():
    s = read_spectra(FORMATS / "Si-map.wdf")
    assert s.kind == "wdf" and s.y.shape == (88, 575) and s.calibrated
    assert s.x[0] == pytest.approx(53.361473) and s.x[-1] == pytest.approx(957.44409)
    # renishaw-wdf's test_wdf.py: the first four values as stored (decreasing shift)
    assert [int(v) for v in s.y[0, ::-1][:4]] == [1595, 1565, 1590, 1580]
    assert [int(v) for v in s.y[-1, ::-1][:4]] == [1612, 1615, 1514, 1553]
    assert [int(v) for v in s.y[0:4, -1]] == [1595, 1583, 1640, 2120]
    assert s.labels[0] == "point001 (X=-7.09, Y=-8.93)" and len(set(s.labels)) == 88
    assert s.metadata["title"] == "Simple mapping measurement 2" and s.notes == ()


def test_spc_raman_file_as_specio_exported_it():
    s = read_spectra(FORMATS / "sp1.spc")
    assert s.kind == "spc" and s.y.shape == (1, 1732) and s.metadata["x_type"] == "XRAMANS"
    assert s.x[0] == pytest.approx(400.19921875) and s.x[-1] == pytest.approx(3798.6435546875)
    # specio 0.1.0's datasets/data/spectra.csv, row 20170410EDL_L01_cell01_c1.spc (= sp1.spc)
    assert np.allclose(s.y[0, :3], [173.33334350585938, 187.3333282470703, 188.3333282470703])
    assert np.allclose(s.y[0, -3:], [107.15319061279297, 106.04219055175781, 109.70896911621094])
    assert s.y.sum() == pytest.approx(276059.08081817627, rel=1e-12)


def test_jcamp_raman_file_as_its_xy_pairs(tmp_path):
    path = FORMATS / "tannic_acid.jdx"
    pairs = np.loadtxt(path, comments="##", delimiter=",")
    s = read_spectra(path)
    assert s.kind == "jcamp" and s.y.shape == (1, 1949)
    assert np.array_equal(s.x, pairs[:, 0]) and np.array_equal(s.y[0], pairs[:, 1])
    assert s.metadata["datatype"] == "RAMAN SPECTRUM" and s.notes == ()
    dos = tmp_path / "dos.dx"  # a DOS end-of-file mark after ##END= (jcamp refuses it)
    dos.write_bytes(path.read_bytes() + b"\x1a")
    assert np.array_equal(read_spectra(dos).y, s.y)


def test_spe_winspec_file_as_its_header_describes_it():
    path = FORMATS / "paracetamol.SPE"
    s = read_spectra(path)
    assert s.kind == "spe" and s.y.shape == (1, 1024)
    # WinSpec's identity calibration: the pixel index, flagged uncalibrated
    assert np.array_equal(s.x, np.arange(1.0, 1025.0)) and not s.calibrated
    # SPE 2.x: xdim at byte 42 (uint16), data type at 108 (1: int32), data from byte 4100
    data = path.read_bytes()
    assert int.from_bytes(data[42:44], "little") == 1024 and data[108] == 1
    assert np.array_equal(s.y[0], np.frombuffer(data, "<i4", offset=4100))
    assert s.metadata["notes"] == "Paracetamol?" and s.notes == ()


def test_jcamp_of_another_kind_says_so(tmp_path):
    text = (FORMATS / "tannic_acid.jdx").read_text().replace("RAMAN SPECTRUM", "INFRARED SPECTRUM")
    s = read_spectra(_write(tmp_path / "ir.jdx", text))
    assert s.notes == ("JCAMP-DX data type 'INFRARED SPECTRUM'",)


def _write(path, text):
    path.write_text(text)
    return path


BAD = {
    "garbage.wdf": (b"WDF1\x00\x01\x02 not really", "not a readable Renishaw .wdf file"),
    "garbage.spc": (b"\x00\x01\x02garbage", "binary content that is not a readable Galactic"),
    "empty.wdf": (b"", "empty file"),
    "garbage.spe": (b"\x00" * 64, "not a readable Princeton .spe file"),
    "peaks.jdx": (b"##TITLE=x\n##JCAMP-DX=4.24\n##PEAKTABLE=(XY..XY)\n1,2\n##END=\n", "XYDATA"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_one_line_naming_the_file(tmp_path, name):
    content, problem = BAD[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SpectrumFileError, match=problem) as info:
        read_spectra(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".jcamp", ".jdx", ".dx"])
def test_a_jcamp_name_without_jcamp_records_is_read_by_its_content(tmp_path, suffix):
    # taken as JCAMP-DX by its name before: "a JCAMP-DX file without XYDATA (peak tables, ...)"
    licence = _write(tmp_path / f"LICENSE{suffix}", "MIT License\n\nCopyright (c) 2020\n")
    with pytest.raises(SpectrumFileError, match=r"not JCAMP-DX \(no ##TITLE= or ##XYDATA=") as info:
        read_spectra(licence)
    assert str(licence) in str(info.value) and "\n" not in str(info.value)
    x = np.linspace(200.0, 1800.0, 40)
    table = _write(tmp_path / f"table{suffix}", "".join(f"{a}\t{a / 10}\n" for a in x))
    s = read_spectra(table)
    assert s.kind == "text" and np.array_equal(s.x, x) and np.array_equal(s.y[0], x / 10)
    assert s.notes == (f"named {suffix} but not JCAMP-DX (no ## records): read as text",)


def test_truncated_jcamp_is_refused(tmp_path):
    lines = (FORMATS / "tannic_acid.jdx").read_text().splitlines()
    path = _write(tmp_path / "cut.jdx", "\n".join(lines[:-400]) + "\n##END=\n")
    with pytest.raises(SpectrumFileError, match="1550 points where NPOINTS says 1949"):
        read_spectra(path)


@pytest.mark.parametrize(
    ("name", "outputs"),
    [("Si-map.wdf", 88), ("sp1.spc", 1), ("tannic_acid.jdx", 1), ("paracetamol.SPE", 1)],
)
def test_correct_reads_the_binary_formats(tmp_path, monkeypatch, name, outputs):
    monkeypatch.chdir(tmp_path)  # no params.yaml, no registry: the shipped model, as a user
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    err = io.StringIO()
    argv = ["correct", str(FORMATS / name), "-o", "out", "--no-plots"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main([*argv, "--no-progress"]) == 0, err.getvalue()
    assert len(list((tmp_path / "out").glob("*.csv"))) == outputs
