"""``raman-baseline correct --denoise``: the ``denoised`` column, array and panel; bad input."""

import numpy as np
import pytest

from pipeline import plots, shipped
from pipeline.denoise import OnnxDenoiser

from .test_correct import onnx_model, run_correct, spectrum, write_two_columns  # noqa: F401
from .test_ship_denoiser import BASELINE_MODEL, shipped_copy, tiny_denoiser
from .test_uncertainty import uncertain_onnx  # noqa: F401  (fixtures: onnx_model, this)


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    return tiny_denoiser(tmp_path_factory.mktemp("denoiser") / "tiny_denoiser.onnx")


def with_masked_pixels(tmp_path, name="s.csv"):
    """A spectrum CSV with NaN pixels inside (5 of them at 100-104); (path, x, y)."""
    x, y = spectrum(700)
    y[100:105] = np.nan
    return write_two_columns(tmp_path / name, x, y), x, y


def read_table(path):
    header = path.read_text().splitlines()[0].split(",")
    return header, np.genfromtxt(path, delimiter=",", skip_header=1)


def test_denoise_adds_a_denoised_column_with_masked_pixels_left_empty(tmp_path, denoiser):
    src, x, y = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    args = (src, "-o", out, "--method", "arpls", "--denoise", "--denoiser", denoiser, "--no-plots")
    assert run_correct(*args) == (0, "")
    header, table = read_table(out / "s.csv")
    assert header == ["wavenumber", "intensity", "baseline", "corrected", "denoised"]
    denoised = table[:, 4]
    assert np.isnan(denoised[100:105]).all()
    assert np.isfinite(np.delete(denoised, range(100, 105))).all()
    corrected = table[:, 3]  # what the denoiser was given, as written (10 significant digits)
    expected = OnnxDenoiser(denoiser).denoise(corrected[None, :])[0]
    assert np.allclose(denoised, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_denoise_writes_a_denoised_array_in_an_npz_batch(tmp_path, denoiser):
    x, y = spectrum(600)
    batch = np.stack([y, 2 * y])
    batch[1, 50:53] = np.nan
    np.savez(tmp_path / "batch.npz", x=x, y=batch)
    out = tmp_path / "out"
    args = (tmp_path / "batch.npz", "-o", out, "--method", "arpls", "--denoiser", denoiser)
    assert run_correct(*args) == (0, "")
    with np.load(out / "batch.npz") as f:
        assert set(f.files) == {"x", "y", "baseline", "corrected", "denoised"}
        denoised, corrected = f["denoised"], f["corrected"]
    assert denoised.shape == (2, 600)
    assert np.isnan(denoised[1, 50:53]).all() and np.isfinite(denoised[0]).all()
    assert np.allclose(denoised, OnnxDenoiser(denoiser).denoise(corrected), equal_nan=True)


def test_the_png_has_a_third_panel(tmp_path, denoiser, monkeypatch):
    axes = []
    real_save = plots.save

    def save(fig, path, dpi=100):
        axes.append([a.get_ylabel() for a in fig.axes])
        return real_save(fig, path, dpi)

    monkeypatch.setattr(plots, "save", save)
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    assert run_correct(src, "-o", out, "--method", "arpls", "--denoiser", denoiser)[0] == 0
    assert axes == [["intensity", "corrected", "denoised"]]
    assert (out / "s.png").stat().st_size > 5_000
    axes.clear()
    assert run_correct(src, "-o", tmp_path / "plain", "--method", "arpls")[0] == 0
    assert axes == [["intensity", "corrected"]]  # without --denoise: today's two panels


@pytest.mark.parametrize("method", ["resunet", "refined", "aspls"])
def test_denoise_follows_every_method(tmp_path, denoiser, onnx_model, method):  # noqa: F811
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    args = (src, "-o", out, "--method", method, "--model", onnx_model, "--no-plots")
    assert run_correct(*args, "--denoiser", denoiser) == (0, "")
    header, table = read_table(out / "s.csv")
    assert header[-1] == "denoised" and np.isnan(table[100:105, 4]).all()


def test_denoise_with_uncertainty_puts_denoised_before_baseline_std(
    tmp_path,
    denoiser,
    uncertain_onnx,  # noqa: F811
):
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    args = (src, "-o", out, "--model", uncertain_onnx, "--method", "resunet", "--uncertainty")
    assert run_correct(*args, "--denoiser", denoiser) == (0, "")
    header, table = read_table(out / "s.csv")
    assert header[3:] == ["corrected", "denoised", "baseline_std"]
    assert np.isnan(table[100:105, 4:]).all()


def test_a_second_run_replaces_the_first_ones_outputs(tmp_path, denoiser):
    """pipeline.outputs knows a CSV with a denoised column as an earlier output of ours."""
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    args = (src, "-o", out, "--method", "arpls", "--denoiser", denoiser)
    assert run_correct(*args) == (0, "")
    assert run_correct(*args) == (0, "")
    assert run_correct(src, "-o", out, "--method", "arpls") == (0, "")  # and back without it
    assert read_table(out / "s.csv")[0][-1] == "corrected"


def test_the_shipped_denoiser_runs_by_default_and_is_named(tmp_path, denoiser, monkeypatch, capsys):
    folder = shipped_copy(tmp_path / "shipped", denoiser)
    monkeypatch.setattr(shipped, "FOLDER", folder)
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    assert run_correct(src, "-o", out, "--method", "arpls", "--denoise", "--no-plots") == (0, "")
    sha = shipped.sha256(folder / "denoiser.onnx")[:12]
    assert f"; denoised by the shipped denoiser {sha}" in capsys.readouterr().out
    assert read_table(out / "s.csv")[0][-1] == "denoised"


def test_denoiser_alone_implies_denoise_and_names_the_file(tmp_path, denoiser, capsys):
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    assert run_correct(src, "-o", out, "--method", "arpls", "--denoiser", denoiser)[0] == 0
    assert f"denoised by the denoiser {denoiser}" in capsys.readouterr().out


def bad_input(tmp_path, capsys, *args):
    """``correct`` with ``args``: (exit status, stderr's lines); nothing may be written."""
    src, _, _ = with_masked_pixels(tmp_path)
    out = tmp_path / "out"
    status, _ = run_correct(src, "-o", out, "--method", "arpls", *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert not out.exists()  # refused before any file is written
    return status, err


def test_a_baseline_model_as_denoiser_is_one_line_naming_it(tmp_path, capsys):
    status, err = bad_input(tmp_path, capsys, "--denoise", "--denoiser", BASELINE_MODEL)
    assert status == 1 and len(err) == 1
    assert f"the model {BASELINE_MODEL} has no denoising output" in err[0]


def test_a_missing_denoiser_is_one_line_naming_it(tmp_path, capsys):
    status, err = bad_input(tmp_path, capsys, "--denoiser", tmp_path / "none.onnx")
    assert status == 1 and len(err) == 1
    assert f"no denoiser file {tmp_path / 'none.onnx'}" in err[0]


def test_a_file_that_is_not_onnx_is_one_line_naming_it(tmp_path, capsys):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    status, err = bad_input(tmp_path, capsys, "--denoiser", text)
    assert status == 1 and len(err) == 1 and f"{text} is not an ONNX model" in err[0]


def test_denoise_with_no_shipped_denoiser_is_one_line(tmp_path, capsys, monkeypatch):
    folder = shipped_copy(tmp_path / "shipped")
    monkeypatch.setattr(shipped, "FOLDER", folder)
    status, err = bad_input(tmp_path, capsys, "--denoise")
    assert status == 1 and len(err) == 1
    assert f"card {folder / shipped.CARD} names no denoiser" in err[0]
    assert "--denoiser PATH" in err[0]


# ------------------------------------------------------------------------ correct-map --denoise


def write_map(path, descending=False):
    """A Zarr map (5, 1, 512) with NaN pixels in one spectrum and one dead spectrum; (x, y)."""
    import zarr

    x, y = spectrum(512)
    x = np.linspace(200.0, 3200.0, 512)
    y = np.stack([y * (k + 1) for k in range(5)]).reshape(5, 1, 512)
    y[1, 0, 200:204] = np.nan
    y[3, 0] = np.nan  # dead: NaN in every output
    if descending:
        x, y = x[::-1], y[..., ::-1]
    group = zarr.open_group(path, mode="w")
    group.create_array("wavenumber", data=x)
    group.create_array("intensity", data=y, chunks=(2, 1, 512))
    return x, y


@pytest.mark.parametrize("descending", [False, True])
def test_correct_map_writes_a_denoised_array(tmp_path, denoiser, monkeypatch, descending):
    """correct-map --denoise: the corrected map denoised as correct does (in-process cluster)."""
    import zarr
    from distributed import Client

    from pipeline import map_io, maps

    monkeypatch.chdir(tmp_path)
    write_map(tmp_path / "in.zarr", descending)
    source, axis = map_io.open_input(tmp_path / "in.zarr")
    recipe, attrs, how = maps.plan("arpls", denoiser=denoiser)
    assert how.endswith(f"; denoised by the denoiser {denoiser}")
    assert attrs["denoiser"] == f"sha256 {shipped.sha256(denoiser)[:12]}"
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        maps.correct_map(source, axis, tmp_path / "out.zarr", recipe, attrs, c, 2, progress=False)
    out = zarr.open_group(tmp_path / "out.zarr", mode="r")
    corrected, denoised = out["corrected"][:, 0], out["denoised"][:, 0]
    step = -1 if descending else 1  # the denoiser runs on the increasing axis, as in correct
    expected = OnnxDenoiser(denoiser).denoise(corrected[:, ::step])[:, ::step]
    assert np.allclose(denoised, expected, rtol=1e-4, atol=1e-3, equal_nan=True)
    assert np.isnan(denoised[3]).all() and np.isfinite(denoised[[0, 2, 4]]).all()
    assert np.array_equal(np.isnan(denoised[1]), np.isnan(corrected[1]))
    plain_attrs = maps.plan("arpls")[1]
    assert plain_attrs["denoiser"] is None
    with pytest.raises(map_io.MapInputError, match="denoiser"):  # not resumed as the same run
        map_io.prepare_output(tmp_path / "out.zarr", source, axis, (2, 1, 512), plain_attrs)


def test_correct_map_with_a_baseline_model_as_denoiser_is_one_line(tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    write_map(tmp_path / "in.zarr")
    argv = ["correct-map", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "o.zarr")]
    status = main([*argv, "--method", "arpls", "--denoiser", str(BASELINE_MODEL)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert f"the model {BASELINE_MODEL} has no denoising output" in err[0]
    assert not (tmp_path / "o.zarr").exists()
