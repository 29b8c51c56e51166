"""Masked pixels (issue 13, item 2): padding at the ends and NaN pixels are left out of the fit,
written back as empty cells, and said in a note per file."""

import contextlib
import io
import os

import numpy as np
import pytest

from pipeline import correct
from pipeline.cli import main
from pipeline.masking import find_masked, fit_unmasked
from pipeline.quality import case_verdict, noise_sigma
from pipeline.spectra_io import SpectrumError, check_spectra, read_spectra

from .conftest import ROOT

ZOLIX = (
    ROOT.parent / "shared" / "cases" / "zolix-zero-padded" / "PST02_Zolix785_Probe_070_190ms.txt"
)
needs_zolix = pytest.mark.skipif(
    not ZOLIX.is_file() and not os.environ.get("CI"), reason=f"no case at {ZOLIX}"
)


def _spectrum(length=600, seed=1):
    """Counts of a detector: a sloping background, bands, noise; on a uniform axis (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(100.0, 3100.0, length)
    y = 3000 * np.exp(-x / 1500) + 900 + rng.normal(0, 5, length)
    for centre in (700.0, 1300.0, 2200.0):
        y += 800 * np.exp(-(((x - centre) / 10) ** 2))
    return x, np.round(y)


def _write(path, x, y):
    path.write_text("".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True)))
    return path


def _correct(tmp_path, monkeypatch, path, *args):
    """``raman-baseline correct PATH -o OUT ARGS`` from an empty folder: (status, out, err)."""
    monkeypatch.chdir(tmp_path)  # no params.yaml, no mlflow.db: the shipped model and card
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["correct", str(path), "-o", str(tmp_path / "out"), "--no-progress", *args])
    return status, out.getvalue(), err.getvalue()


def _table(path):
    """The output CSV, empty cells as NaN; every cell either a number or empty."""
    lines = path.read_text().splitlines()
    assert lines[0] == "wavenumber,intensity,baseline,corrected"
    assert "nan" not in path.read_text().lower()
    return np.genfromtxt(path, delimiter=",", skip_header=1)


def _arpls_of(x, y):
    """arPLS as ``correct --method arpls`` runs it with nothing named (the shipped card)."""
    return correct.classical_method("arpls", None, None)[0](x, y[None, :])[0]


def test_zero_runs_at_the_ends_are_left_out_of_the_fit_and_written_empty(tmp_path, monkeypatch):
    x, y = _spectrum()
    y[:4], y[-43:] = 0.0, 0.0
    status, out, err = _correct(
        tmp_path, monkeypatch, _write(tmp_path / "z.csv", x, y), "--method", "arpls"
    )
    assert status == 0, err
    assert "4 zero pixels at the start and 43 at the end left out of the fit" in out
    table = _table(tmp_path / "out" / "z.csv")
    assert np.array_equal(table[:, 1], y)  # the raw intensities as read, zeros too
    masked = np.zeros(len(x), bool)
    masked[:4] = masked[-43:] = True
    assert np.isnan(table[masked, 2:]).all() and np.isfinite(table[~masked, 2:]).all()
    # the fit saw the unmasked span only: the same baseline as that span alone
    assert np.allclose(table[~masked, 2], _arpls_of(x[~masked], y[~masked]), rtol=1e-9)
    assert (tmp_path / "out" / "z.png").is_file()


def test_a_run_at_the_detector_ceiling_is_left_out(tmp_path, monkeypatch):
    x, y = _spectrum()
    y[-12:] = 65535.0
    status, out, err = _correct(
        tmp_path, monkeypatch, _write(tmp_path / "c.csv", x, y), "--method", "arpls", "--no-plots"
    )
    assert status == 0, err
    assert "12 saturated pixels (65535) at the end left out of the fit" in out
    table = _table(tmp_path / "out" / "c.csv")
    assert np.isnan(table[-12:, 2:]).all() and np.isfinite(table[:-12, 2:]).all()
    assert np.allclose(table[:-12, 2], _arpls_of(x[:-12], y[:-12]), rtol=1e-9)


def test_a_saturated_run_inside_is_left_out_and_written_empty(tmp_path, monkeypatch):
    # a laser line or a strong band clipped at the detector's ceiling inside the window (the
    # Neegala case's Raw_Data: 21 pixels at 65535 about 0 cm-1); fitted as data before
    x, y = _spectrum()
    clipped = slice(150, 171)
    y[clipped] = 65535.0
    status, out, err = _correct(
        tmp_path, monkeypatch, _write(tmp_path / "s.csv", x, y), "--method", "arpls", "--no-plots"
    )
    assert status == 0, err
    where = f"x = {x[150]:.6g} to {x[170]:.6g}"
    assert f"21 saturated pixels (65535) inside, at {where}, fitted across (interpolated)" in out
    table = _table(tmp_path / "out" / "s.csv")
    assert np.array_equal(table[:, 1], y)  # the intensities as read
    masked = np.zeros(len(x), bool)
    masked[clipped] = True
    assert np.isnan(table[masked, 2:]).all() and np.isfinite(table[~masked, 2:]).all()
    filled = np.interp(x, x[~masked], y[~masked])  # what the method was given there
    assert np.allclose(table[~masked, 2], _arpls_of(x, filled)[~masked], rtol=1e-9)


NEEGALA = ROOT.parent / "shared" / "cases" / "neegala-multicolumn-csv"


def _neegala(path, x, raw, background):
    """A Neegala csv: metadata, then the 7-column table; Processed_Data = raw - background."""
    head = "id,59de6c43\ndevice,EZI860\n"
    names = "Pixels,Wavelength,Wavenumbers,Raman_Shift,Raw_Data,Background_Data,Processed_Data\n"
    rows = "".join(
        f"{i},{532 + a / 200:.4f},{14000 + a:.4f},{float(a)!r},{r:.0f},{b:.0f},{r - b:.0f}\n"
        for i, (a, r, b) in enumerate(zip(x, raw, background, strict=True))
    )
    path.write_text(head + names + rows)
    return path


def test_pixels_clipped_in_the_raw_counts_are_masked_in_the_processed_intensity(
    tmp_path, monkeypatch
):
    # Neegala: the laser line clips Raw_Data at 65535; the intensity read, Processed_Data =
    # raw - background, then varies there (65535 - 998, 65535 - 1349...): fitted as data before
    x, raw = _spectrum()
    background = 1000 + np.random.default_rng(2).integers(0, 400, x.size)
    raw[150:171] = 65535.0
    path = _neegala(tmp_path / "n.csv", x, raw, background)
    status, out, err = _correct(tmp_path, monkeypatch, path, "--method", "arpls", "--no-plots")
    assert status == 0, err
    where = f"x = {x[150]:.6g} to {x[170]:.6g}"
    assert f"21 saturated pixels (raw 65535) inside, at {where}, fitted across" in out
    table = _table(tmp_path / "out" / "n.csv")
    assert np.array_equal(table[:, 1], raw - background)  # Processed_Data as read
    masked = np.zeros(len(x), bool)
    masked[150:171] = True
    assert np.isnan(table[masked, 2:]).all() and np.isfinite(table[~masked, 2:]).all()


@pytest.mark.skipif(not NEEGALA.is_dir() and not os.environ.get("CI"), reason="no case")
def test_the_cases_clipped_laser_lines_are_masked(tmp_path, monkeypatch):
    path = NEEGALA / "PST_532_SEX139_trimmed.csv"
    status, out, err = _correct(tmp_path, monkeypatch, path, "--method", "arpls", "--no-plots")
    assert status == 0, err
    assert "21 saturated pixels (raw 65535) inside, at x = -19.0272 to 89.2728" in out
    table = _table(tmp_path / "out" / f"{path.stem}.csv")
    assert np.isnan(table[183:204, 2:]).all() and np.isfinite(table[:183, 2:]).all()
    # the BWSpec case too: 'Raw data #1' at 65535 on the laser line's edge, 86-94 cm-1
    bwtek = read_spectra(NEEGALA.parent / "bwtek-bwspec" / "PST02_iRPlus785_trimmed.txt")
    masked = find_masked(bwtek.y, bwtek.x, bwtek.raw_counts)
    assert masked.what[0].startswith("4 saturated pixels (raw 65535) inside, at x = 86.37 to 93.55")


def test_which_flat_maxima_inside_are_saturation():
    x, y = _spectrum(length=300)
    top = y.max()

    def what(fill, at=100):
        z = y.copy()
        z[at : at + len(fill)] = fill
        return find_masked(z, x).what[0]

    assert what([top + 50] * 3).startswith("3 saturated pixels")  # 3 equal at the maximum
    assert what([top + 50] * 2) == ""  # 2: a band's top, by chance
    assert what([top + 50, top + 49, top + 50]) == ""  # 2 maxima apart
    assert what([top - 1] * 5) == ""  # equal, below the maximum: a flat stretch of data
    assert what([4095.0] * 2).startswith("2 saturated pixels (4095)")  # a 12-bit ceiling
    z = y.copy()
    z[[100, 101, 102, 200, 201, 202]] = top + 50
    both = find_masked(z).what[0]  # without x: the pixels, from 1
    inside = "inside, pixels 101-103, 201-203, fitted across (interpolated)"
    assert both == f"6 saturated pixels ({top + 50:.10g}) {inside}"


def test_interior_nan_pixels_are_fitted_across_and_written_empty(tmp_path, monkeypatch):
    x, y = _spectrum()
    holes = [200, 201, 350]
    y[holes] = np.nan
    status, out, err = _correct(
        tmp_path, monkeypatch, _write(tmp_path / "n.csv", x, y), "--method", "arpls", "--no-plots"
    )
    assert status == 0, err
    assert "3 NaN pixels inside fitted across" in out
    table = _table(tmp_path / "out" / "n.csv")
    assert np.isnan(table[holes, 1:]).all()
    kept = np.isfinite(y)
    assert np.isfinite(table[kept, 1:]).all()
    filled = np.interp(x, x[kept], y[kept])  # what the method was given at the holes
    assert np.allclose(table[kept, 2], _arpls_of(x, filled)[kept], rtol=1e-9)


def test_lone_and_interior_zeros_are_data(tmp_path, monkeypatch):
    x, y = _spectrum()
    y[-1], y[300:303] = 0.0, 0.0
    status, out, err = _correct(
        tmp_path, monkeypatch, _write(tmp_path / "d.csv", x, y), "--method", "arpls", "--no-plots"
    )
    assert status == 0, err
    assert "left out" not in out
    assert np.isfinite(_table(tmp_path / "out" / "d.csv")).all()


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        (lambda y: np.full_like(y, np.nan), "every intensity is NaN"),
        (lambda y: np.zeros_like(y), "fewer than the minimum"),
        (lambda y: np.where(np.arange(y.size) < y.size - 10, 0.0, y), "fewer than the minimum"),
    ],
    ids=["all NaN", "all zero", "10 left"],
)
def test_a_spectrum_with_too_few_unmasked_points_is_one_line(tmp_path, monkeypatch, fill, expected):
    x, y = _spectrum(length=60)
    path = _write(tmp_path / "bad.csv", x, fill(y))
    status, _, err = _correct(tmp_path, monkeypatch, path, "--method", "arpls", "--no-plots")
    assert status == 1
    (failed,) = [line for line in err.splitlines() if "failed:" in line]
    assert str(path) in failed and expected in failed


def test_check_spectra_takes_nan_intensities_as_masked_only_when_asked():
    x, y = _spectrum(length=40)
    y[5] = np.nan
    with pytest.raises(SpectrumError, match="NaN or Inf"):
        check_spectra(x, y, "request")  # the served model's requests, training data: refused
    assert np.isnan(check_spectra(x, y, "file", masked=True)[1][0, 5])
    refused = {
        "axis NaN": (np.where(np.arange(40) == 3, np.nan, x), y, "axis holds NaN"),
        "Inf": (x, np.where(np.arange(40) == 7, np.inf, y), "Inf intensities"),
        "all NaN": (x, np.full((2, 40), np.nan), "every spectrum: every intensity is NaN"),
    }
    for xs, ys, match in refused.values():
        with pytest.raises(SpectrumError, match=match):
            check_spectra(xs, ys, "file", masked=True)
    # one spectrum of NaN only among others: masked whole (the others are corrected)
    both = check_spectra(x, np.vstack([y, np.full(40, np.nan)]), "file", masked=True)[1]
    assert np.isnan(both[1]).all() and np.array_equal(both[0], y, equal_nan=True)


def _npz_batch(path, x, y):
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize("plots", [(), ("--no-plots",)])
def test_a_spectrum_of_nan_only_in_a_batch_is_written_back_nan_the_others_corrected(
    tmp_path, monkeypatch, plots
):
    # the whole batch failed before: "spectrum 2: every intensity is NaN: nothing to correct"
    x, y = _spectrum(length=200)
    batch = np.vstack([y, np.full_like(y, np.nan), y + 100.0])
    for name, write in (("b.npz", _npz_batch), ("m.csv", _write_matrix)):
        status, out, err = _correct(
            tmp_path, monkeypatch, write(tmp_path / name, x, batch), "--method", "arpls", *plots
        )
        assert status == 0, err
        # 1-based, as the labels (spectrum002, point002) and every other message
        assert "spectrum 2: every pixel NaN: not corrected; empty in the outputs" in out
        assert "2 spectra corrected" in out + err  # the NaN-only one is not counted
    with np.load(tmp_path / "out" / "b.npz") as f:
        baseline, corrected = f["baseline"], f["corrected"]
    assert np.isnan(baseline[1]).all() and np.isnan(corrected[1]).all()
    for i in (0, 2):
        assert np.allclose(baseline[i], _arpls_of(x, batch[i]), rtol=1e-9)
    assert np.isnan(_table(tmp_path / "out" / "m_point002.csv")[:, 1:]).all()
    assert np.isfinite(_table(tmp_path / "out" / "m_point003.csv")).all()


def _write_matrix(path, x, y):
    """A matrix CSV: the axis row, then one row per spectrum (NaN written ``nan``)."""
    rows = [x, *y]
    path.write_text("".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows))
    return path


@needs_zolix
@pytest.mark.parametrize("method", ["refined", "arpls"])
def test_zolix_zero_rows_are_not_corrected_into_large_negatives(tmp_path, monkeypatch, method):
    """The case's 4 zero rows at the start and 43 at the end came out as -240 to -714 counts,
    and the baseline, pulled down into them, left the last 20 data points 7 to 8 sigmas high
    (their median; 1.6 at the start). Now: the zero rows empty, those medians under 1 sigma."""
    status, out, err = _correct(tmp_path, monkeypatch, ZOLIX, "--method", method, "--no-plots")
    assert status == 0, err
    assert "4 zero pixels at the start and 43 at the end left out of the fit" in out
    table = _table(tmp_path / "out" / f"{ZOLIX.stem}.csv")
    data = slice(4, -43)
    assert np.isnan(table[:4, 2:]).all() and np.isnan(table[-43:, 2:]).all()
    corrected = table[data, 3]
    sigma = noise_sigma(table[data, 1])[0]
    assert corrected.min() > -10 * sigma, (
        f"min {corrected.min():.1f} = {corrected.min() / sigma:.1f} sigma"
    )
    assert case_verdict(table[data, 1], table[data, 2])["passes"][0]
    for edge in (corrected[:20], corrected[-20:]):  # the data next to the padding
        assert abs(np.median(edge)) < sigma, f"{np.median(edge) / sigma:+.2f} sigma"


def test_notes_and_spans_of_a_map_whose_spectra_differ():
    _, y = _spectrum(length=100)
    y = np.vstack([y, y, y])
    y[1, -5:] = 0.0
    y[2, :2], y[2, 2:5], y[2, -3:] = np.nan, 0.0, 0.0
    masked = find_masked(y)
    assert masked.start.tolist() == [0, 0, 5] and masked.stop.tolist() == [100, 95, 97]
    assert masked.what == (
        "",
        "5 zero pixels at the end left out of the fit",
        "2 NaN pixels at the start and 3 zero pixels at the start and 3 at the end left out of "
        "the fit",
    )
    assert masked.note.startswith("spectrum 2: 5 zero pixels at the end left out of the fit; ")
    calls = []

    def estimate(x, part):
        calls.append(part.shape)
        return np.full(part.shape, 1.0)

    baseline = fit_unmasked(np.arange(100.0), y, masked, estimate)
    assert sorted(calls) == [(1, 92), (1, 95), (1, 100)]  # one call per span
    assert np.array_equal(np.isnan(baseline), masked.mask)
