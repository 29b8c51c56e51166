"""The baseline's standard deviation: MC dropout, its export, and ``correct --uncertainty``."""

import numpy as np
import pytest
import torch

from pipeline.cli import main as main_cli
from pipeline.config import ConfigError, parse_params
from pipeline.export import export_onnx, parity
from pipeline.inference import OnnxBaseline
from pipeline.model import ResUNet1D, build_model
from pipeline.params_check import read_yaml
from pipeline.uncertainty import MCDropout, coverage, fit_scale

from .conftest import ROOT
from .test_correct import run_correct, spectrum, untrained_onnx, write_two_columns

CHANNELS = (4, 6, 8, 10, 12, 14)


def dropout_net(p: float = 0.3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resunet", CHANNELS, 7, 5, dropout=p).eval()


@pytest.fixture(scope="module")
def uncertain_onnx(tmp_path_factory):
    """An untrained tiny ResUNet-1D with dropout, exported with 4 MC passes and scale 2."""
    path = tmp_path_factory.mktemp("model") / "uncertain.onnx"
    wrapped = MCDropout(dropout_net(), samples=4, scale=2.0, seed=1)
    export_onnx(wrapped, path, length=512)
    assert parity(wrapped, path, shapes=((3, 512), (2, 96))) < 1e-4
    return path


def test_no_dropout_builds_todays_network_and_dropout_adds_no_weights():
    plain = ResUNet1D(channels=CHANNELS)
    assert not any(isinstance(m, torch.nn.Dropout1d) for m in plain.modules())
    with_dropout = dropout_net()
    drops = [m for m in with_dropout.modules() if isinstance(m, torch.nn.Dropout1d)]
    assert len(drops) == 2 * (len(CHANNELS) - 1)  # one per residual block, down and up
    assert list(with_dropout.state_dict()) == list(plain.state_dict())


def test_mc_dropout_pass_zero_is_the_plain_answer_and_sigma_is_repeatable():
    net = dropout_net()
    wrapped = MCDropout(net, samples=6, seed=3)
    x = torch.rand(3, 1, 96)
    with torch.no_grad():
        base, upper = wrapped(x)
        again = wrapped(x)
        plain = net(x)
    assert torch.allclose(base, plain, atol=1e-6)
    sigma = upper - base
    assert (sigma > 0).all()
    assert torch.equal(upper, again[1])  # fixed masks: the same answer every time
    with torch.no_grad():
        other = MCDropout(net, samples=6, seed=4)(x)[1]
    assert not torch.equal(upper, other)


def test_mc_dropout_needs_a_network_with_dropout_and_two_passes():
    with pytest.raises(ValueError, match="model.dropout > 0"):
        MCDropout(ResUNet1D(channels=CHANNELS), samples=4)
    with pytest.raises(ValueError, match="at least 2"):
        MCDropout(dropout_net(), samples=1)


def test_fit_scale_puts_95_percent_within_two_sigma():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.5, 2.0, (200, 50))
    truth = rng.normal(0, 3 * std)  # sigma three times too small
    baseline = np.zeros_like(truth)
    scale = fit_scale(truth, baseline, std)
    assert scale == pytest.approx(3.0, rel=0.05)
    assert coverage(truth, baseline, scale * std, 2.0) == pytest.approx(0.95, abs=0.002)
    assert coverage(truth, baseline, scale * std, 1.0) == pytest.approx(0.683, abs=0.02)


def test_params_mc_samples_needs_dropout():
    data = read_yaml(ROOT / "params.yaml")
    params = parse_params(data)
    assert (params.model.dropout, params.model.mc_samples) == (0.0, 0)  # today's network
    data["model"]["mc_samples"] = 8
    with pytest.raises(ConfigError, match="model.dropout > 0"):
        parse_params(data)
    data["model"]["dropout"] = 0.1
    assert parse_params(data).model.mc_samples == 8


def test_onnx_answers_baseline_and_std_in_the_spectrums_units(uncertain_onnx, tmp_path):
    network = OnnxBaseline(uncertain_onnx, grid=512)
    assert network.has_uncertainty
    x, y = spectrum(700)  # not on the grid: resampled there and back
    both = network.baselines_and_std(x, y[None] * 3 + 10)
    assert both.shape == (2, 1, 700)
    assert np.allclose(both[0], network.baselines(x, y[None] * 3 + 10))
    assert (both[1] > 0).all()
    scaled = network.baselines_and_std(x, y[None])
    assert np.allclose(both[1], 3 * scaled[1], rtol=1e-3)  # sigma scales with the spectrum
    plain = OnnxBaseline(untrained_onnx(tmp_path / "plain.onnx", CHANNELS, 0), grid=512)
    assert not plain.has_uncertainty
    with pytest.raises(ValueError, match="no uncertainty output"):
        plain.baselines_and_std(x, y[None])


def test_correct_uncertainty_writes_baseline_std_and_the_band(tmp_path, uncertain_onnx):
    x, y = spectrum(700)
    y[:3] = 0.0  # padding at the start: masked, empty in every column
    src = write_two_columns(tmp_path / "s.csv", x, y)
    out = tmp_path / "out"
    args = (src, "-o", out, "--model", uncertain_onnx, "--method", "resunet", "--uncertainty")
    assert run_correct(*args) == (0, "")
    lines = (out / "s.csv").read_text().splitlines()
    assert lines[0] == "wavenumber,intensity,baseline,corrected,baseline_std"
    table = np.genfromtxt(out / "s.csv", delimiter=",", skip_header=1)
    network = OnnxBaseline(uncertain_onnx, grid=512)
    expected = network.baselines_and_std(x[3:], y[None, 3:])
    assert np.isnan(table[:3, 2:]).all()
    assert np.allclose(table[3:, 2], expected[0, 0], rtol=1e-8)
    assert np.allclose(table[3:, 4], expected[1, 0], rtol=1e-6)
    assert (out / "s.png").stat().st_size > 0
    batch = tmp_path / "batch.npz"
    np.savez(batch, x=x[3:], y=np.stack([y[3:], 2 * y[3:]]))
    assert (
        run_correct(
            batch, "-o", out, "--model", uncertain_onnx, "--method", "resunet", "--uncertainty"
        )[0]
        == 0
    )
    with np.load(out / "batch.npz") as f:
        assert f["baseline_std"].shape == (2, 697)
        assert np.allclose(f["baseline_std"][1], 2 * f["baseline_std"][0], rtol=1e-3)


def test_the_same_run_without_uncertainty_writes_todays_columns(tmp_path, uncertain_onnx):
    x, y = spectrum(300)
    src = write_two_columns(tmp_path / "s.csv", x, y)
    args = (src, "-o", tmp_path / "out", "--model", uncertain_onnx, "--method", "resunet")
    assert run_correct(*args) == (0, "")
    header = (tmp_path / "out" / "s.csv").read_text().splitlines()[0]
    assert header == "wavenumber,intensity,baseline,corrected"


def test_uncertainty_from_a_model_without_it_is_one_line_naming_the_model(tmp_path, capsys):
    x, y = spectrum(300)
    src = write_two_columns(tmp_path / "s.csv", x, y)
    plain = untrained_onnx(tmp_path / "plain.onnx", CHANNELS, 0)
    args = (src, "-o", tmp_path / "out", "--method", "resunet", "--uncertainty")
    status, line = run_correct(*args, "--model", plain)
    assert status != 0
    assert f"the model {plain} has no uncertainty output (baseline_std)" in line
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    status, line = run_correct(*args, "--model", "shipped")  # the shipped model has none
    assert status != 0 and "the shipped model resunet1d shipped" in line
    assert "has no uncertainty output" in line


def test_uncertainty_with_another_method_is_one_line(tmp_path, uncertain_onnx):
    x, y = spectrum(300)
    src = write_two_columns(tmp_path / "s.csv", x, y)
    args = (src, "-o", tmp_path / "out", "--model", uncertain_onnx, "--uncertainty")
    status, line = run_correct(*args)  # the default method, refined
    assert status != 0 and "--method resunet, not refined" in line


def test_correct_map_writes_a_baseline_std_array(tmp_path, uncertain_onnx, monkeypatch):
    """correct-map --uncertainty: a baseline_std array equal to correct's (in-process cluster)."""
    import zarr
    from distributed import Client

    from pipeline import map_io, maps

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    x, y = spectrum(512)
    x = np.linspace(200.0, 3200.0, 512)
    y = np.stack([y * (k + 1) for k in range(5)]).reshape(5, 1, 512).astype(np.float32)
    group = zarr.open_group(tmp_path / "in.zarr", mode="w")
    group.create_array("wavenumber", data=x)
    group.create_array("intensity", data=y, chunks=(2, 1, 512))
    source, axis = map_io.open_input(tmp_path / "in.zarr")
    recipe, attrs, how = maps.plan("resunet", str(uncertain_onnx), uncertainty=True)
    assert "baseline_std" in how
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        maps.correct_map(source, axis, tmp_path / "out.zarr", recipe, attrs, c, 2, progress=False)
    out = zarr.open_group(tmp_path / "out.zarr", mode="r")
    network = OnnxBaseline(uncertain_onnx, grid=512)
    expected = network.baselines_and_std(x, y[:, 0].astype(np.float64))
    assert np.allclose(out["baseline"][:, 0], expected[0], rtol=1e-5)
    assert np.allclose(out["baseline_std"][:, 0], expected[1], rtol=1e-4)
    plain_recipe, plain_attrs, _ = maps.plan("resunet", str(uncertain_onnx))
    with pytest.raises(map_io.MapInputError, match="uncertainty"):  # not resumed as the same run
        map_io.prepare_output(tmp_path / "out.zarr", source, axis, (2, 1, 512), plain_attrs)


def test_correct_map_uncertainty_without_the_head_is_one_line(tmp_path, capsys, monkeypatch):
    import zarr

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    group = zarr.open_group(tmp_path / "in.zarr", mode="w")
    group.create_array("wavenumber", data=np.linspace(200.0, 3200.0, 64))
    group.create_array("intensity", data=np.ones((3, 64)))
    plain = untrained_onnx(tmp_path / "plain.onnx", CHANNELS, 0)
    argv = ["correct-map", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "o.zarr")]
    status = main_cli([*argv, "--method", "resunet", "--model", str(plain), "--uncertainty"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1
    assert f"the model {plain.resolve()} has no uncertainty output" in err[0]
    assert not (tmp_path / "o.zarr").exists()


def test_served_model_answers_baseline_std(uncertain_onnx):
    from types import SimpleNamespace

    from pipeline.registry.pyfunc import ResUNetBaseline

    served = ResUNetBaseline(grid=512)
    served.load_context(SimpleNamespace(artifacts={"onnx": str(uncertain_onnx)}))
    x, y = spectrum(300)
    up = served.predict(None, {"wavenumber": x, "intensity": y[None]})
    down = served.predict(None, {"wavenumber": x[::-1], "intensity": y[None, ::-1]})
    expected = OnnxBaseline(uncertain_onnx, grid=512).baselines_and_std(x, y[None])
    assert np.allclose(up["baseline_std"], expected[1])
    assert np.allclose(down["baseline_std"], up["baseline_std"][:, ::-1])
    assert set(up) == {"baseline", "corrected", "baseline_std"}


def test_export_stage_wraps_and_calibrates_an_mc_dropout_checkpoint(tmp_path):
    from pipeline.config import ModelParams
    from pipeline.stages.export import ExportError, with_uncertainty

    net = dropout_net()
    model_params = ModelParams("resunet", CHANNELS, 7, 5, "minmax", "none", 0.3, 4)
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 64)
    baseline = 1 + rng.uniform(0, 1, (20, 1)) * np.exp(-3 * t)
    val = tmp_path / "val.npz"
    np.savez(val, observed=baseline + rng.normal(0, 0.01, (20, 64)), baseline=baseline)
    wrapped, report = with_uncertainty(net, model_params, val)
    assert isinstance(wrapped, MCDropout) and wrapped.samples == 4
    assert wrapped.scale == pytest.approx(report["sigma_scale"]) and report["sigma_scale"] > 0
    assert report["val_in_2sigma_scaled"] == pytest.approx(0.95, abs=0.01)
    with pytest.raises(ExportError, match="--val"):
        with_uncertainty(net, model_params, None)
    plain = ModelParams("resunet", CHANNELS, 7, 5, "minmax", "none", 0.0, 0)
    assert with_uncertainty(net, plain, None) == (net, {})


def test_band_of_a_long_spectrum_keeps_each_buckets_extremes():
    from pipeline.plots import band

    x = np.arange(100_000.0)
    low, high = np.sin(x / 500) - 1, np.sin(x / 500) + 1
    low[5] = -10.0
    bx, blow, bhigh = band(x, low, high, buckets=100)
    assert len(bx) == len(blow) == len(bhigh) == 100
    assert blow[0] == -10.0 and (bhigh >= blow).all()
    assert len(band(x[:50], low[:50], high[:50])[1]) == 50
