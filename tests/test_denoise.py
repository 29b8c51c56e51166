"""The denoiser: its scaling, how it is judged, its training, its ONNX file and its errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline import shipped
from pipeline.config import parse_params
from pipeline.denoise import (
    WHAT_TO_DO,
    DenoiserError,
    OnnxDenoiser,
    band_height_errors,
    best_savitzky_golay,
    compare,
    spurious_bands,
    to_sigma_units,
)
from pipeline.simulate import simulate
from tests.conftest import tiny_params

torch = pytest.importorskip("torch")

from pipeline.denoiser import Denoiser, export_denoiser, train_denoiser  # noqa: E402


def gaussian(x, centre, fwhm, height=1.0):
    return height * np.exp(-4 * np.log(2) * ((x - centre) / fwhm) ** 2)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """An untrained denoiser of two narrow layers, exported."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("denoiser") / "denoiser.onnx"
    model = Denoiser(width=4, dilations=(1, 2))
    export_denoiser(model.eval(), path)
    return path, model


def test_sigma_units_scale_by_the_noise_and_leave_nan_out():
    rng = np.random.default_rng(0)
    c = rng.normal(0, 2.5, (3, 4000)) + gaussian(np.arange(4000.0), 2000, 20, 500)
    c[1, :100] = np.nan
    u, sigma = to_sigma_units(c)
    assert u.dtype == np.float32 and u.shape == c.shape
    np.testing.assert_allclose(sigma, 2.5, rtol=0.05)
    assert np.all(u[1, :100] == u[1, 100])  # the first unmasked value, held to the end
    gap = np.array([[0.0, 1.0, np.nan, np.nan, 4.0, 5.0, 6.0, 7.0]])
    filled = to_sigma_units(gap)[0][0] * to_sigma_units(gap)[1][0]
    np.testing.assert_allclose(filled[2:4], [2.0, 3.0], rtol=1e-6)  # a line across the gap
    np.testing.assert_allclose(u[0], c[0] / sigma[0], rtol=1e-6)


def test_band_heights_are_relative_errors_at_the_true_maxima():
    x = np.arange(500.0)
    clean = (gaussian(x, 100, 10, 50) + gaussian(x, 300, 10, 20))[None]
    found = band_height_errors(clean, clean * 1.1, np.array([1.0]))
    np.testing.assert_allclose(found, [0.1, 0.1])
    # a band under 5 sigma is not judged
    assert band_height_errors(clean, clean, np.array([5.0])).size == 1


def test_spurious_bands_are_maxima_away_from_every_true_one():
    x = np.arange(500.0)
    clean = gaussian(x, 100, 10, 50)[None]
    fake = clean + gaussian(x, 400, 5, 10)[None]
    assert spurious_bands(clean, clean, np.array([1.0])).tolist() == [0]
    assert spurious_bands(clean, fake, np.array([1.0])).tolist() == [1]
    assert spurious_bands(clean, fake, np.array([3.0])).tolist() == [0]  # 10 < 4 x 3
    # a maximum on the flank of a true band is spurious, but not where the truth is empty
    flank = clean + gaussian(x, 110, 3, 20)[None]
    assert spurious_bands(clean, flank, np.array([1.0])).tolist() == [1]
    assert spurious_bands(clean, flank, np.array([1.0]), empty=1.0).tolist() == [0]
    assert spurious_bands(clean, fake, np.array([1.0]), empty=1.0).tolist() == [1]


def test_the_best_savitzky_golay_window_grows_with_the_bands_width():
    rng = np.random.default_rng(1)
    x = np.arange(512.0)

    def chosen(fwhm):
        clean = np.stack([gaussian(x, c, fwhm, 10) for c in rng.uniform(100, 400, 40)])
        noisy = clean + rng.normal(0, 1, clean.shape)
        return best_savitzky_golay(noisy, clean, noisy)[0]

    assert chosen(40.0) > chosen(4.0)


def test_a_short_training_lowers_the_error_below_the_raw_noise():
    data = tiny_params(denoise={"samples": 1536, "width": 8, "dilations": [1, 2, 4]})
    params = parse_params(data)
    sim = dataclasses.replace(params.simulate, length=256)
    model, history = train_denoiser(params.denoise, sim, threads=1, log=lambda _: None)
    assert [h.seen for h in history] == [512, 1024, 1536]
    test = simulate(sim, 200, seed=99)

    def denoise(corrected):
        u, sigma = to_sigma_units(corrected)
        with torch.no_grad():
            out = model(torch.from_numpy(u[:, None, :])).numpy()[:, 0]
        return out * sigma[:, None]

    found = compare(denoise, simulate(sim, 100, seed=98), test)
    assert found["denoiser"]["rmse"] < 0.95 * found["raw"]["rmse"]  # 0.87 when written


def test_the_onnx_denoiser_matches_torch_at_any_length_and_keeps_nan(tiny_onnx):
    path, model = tiny_onnx
    rng = np.random.default_rng(2)
    network = OnnxDenoiser(path, threads=1)
    for length in (37, 512, 3000):
        c = rng.normal(0, 3, (3, length)) + 40 * rng.random((3, 1))
        got = network.denoise(c)
        u, sigma = to_sigma_units(c)
        with torch.no_grad():
            want = model(torch.from_numpy(u[:, None, :])).numpy()[:, 0] * sigma[:, None]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * sigma.max())
    c = rng.normal(0, 1, 200)
    c[50:60] = np.nan
    got = network.denoise(c)
    assert got.shape == (200,) and np.isnan(got[50:60]).all() and np.isfinite(got[:50]).all()


def test_a_denoiser_graph_with_another_input_is_refused_when_loaded(tmp_path):
    """It was loaded, and each file then failed on ONNX Runtime's 'Required inputs (['x'])'."""
    import onnx

    path = tmp_path / "denoiser.onnx"
    export_denoiser(Denoiser(width=4, dilations=(1, 2)), path)
    graph = onnx.load(path)
    old = graph.graph.input[0].name
    graph.graph.input[0].name = "x"
    for node in graph.graph.node:
        node.input[:] = ["x" if name == old else name for name in node.input]
    onnx.save(graph, path)
    with pytest.raises(DenoiserError, match="has no denoising output") as info:
        OnnxDenoiser(path)
    assert str(path) in str(info.value)


def test_a_file_that_is_no_denoiser_is_one_line_naming_it(tmp_path):
    baseline_model = shipped.load().onnx
    with pytest.raises(DenoiserError, match="has no denoising output") as info:
        OnnxDenoiser(baseline_model)
    assert str(baseline_model) in str(info.value) and "\n" not in str(info.value)
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    refused = {"missing.onnx": "no denoiser file", text.name: "is not an ONNX model"}
    refused[folder.name] = "is a folder, not a denoiser file"  # was "no denoiser file"
    for name, problem in refused.items():
        with pytest.raises(DenoiserError, match=problem) as info:
            OnnxDenoiser(tmp_path / name)
        message = str(info.value)  # one line, the file and what to name instead
        assert "\n" not in message and str(tmp_path / name) in message
        assert message.endswith(WHAT_TO_DO) and "train-denoiser" in WHAT_TO_DO
