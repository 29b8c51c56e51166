"""Normalisation as a property of a model: checkpoint, ONNX metadata, every inference path."""

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from pipeline.checkpoint import from_state, load_checkpoint, save_checkpoint, torch_run
from pipeline.config import to_dict
from pipeline.export import export_onnx
from pipeline.inference import NORMALISATION_KEY, OnnxBaseline
from pipeline.model import build_model
from pipeline.normalise import network_baselines, predict_baselines
from pipeline.train import to_tensors


def _state(tiny):
    torch.manual_seed(0)
    m = tiny.model
    return build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel).state_dict()


def _spectra(length=128, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(200.0, 3200.0, length)
    y = 1e4 + 300 * np.exp(-x / 900) + rng.normal(0, 2, (3, length))
    y[:, length // 3] += 5e4  # a band far taller than the background's range
    return x, y


@pytest.fixture(scope="module")
def envelope_files(tmp_path_factory, tiny):
    """A tiny network saved with normalisation envelope: its checkpoint and ONNX file."""
    folder = tmp_path_factory.mktemp("envelope")
    params = dataclasses.replace(tiny.model, normalisation="envelope")
    save_checkpoint(folder / "m.pt", _state(tiny), params)
    network, _ = load_checkpoint(folder / "m.pt")
    export_onnx(network, folder / "m.onnx", length=128)
    return folder / "m.pt", folder / "m.onnx"


def test_a_checkpoint_keeps_its_normalisation(envelope_files):
    network, params = load_checkpoint(envelope_files[0])
    assert params.normalisation == "envelope" and network.normalisation == "envelope"
    assert torch_run(network).normalisation == "envelope"


def test_a_checkpoint_saved_before_the_key_loads_as_minmax(tiny, tmp_path):
    saved = to_dict(tiny.model)
    del saved["normalisation"]
    torch.save({"model": _state(tiny), "model_params": saved}, tmp_path / "old.pt")
    network, params = load_checkpoint(tmp_path / "old.pt")
    assert params == dataclasses.replace(tiny.model, normalisation="minmax")
    assert torch_run(network).normalisation == "minmax"


def test_the_onnx_file_carries_it_and_onnx_runtime_uses_it(envelope_files):
    pt, path = envelope_files
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props == {NORMALISATION_KEY: "envelope"}
    onnx_model = OnnxBaseline(path, grid=128)
    assert onnx_model.normalisation == "envelope"
    network, _ = load_checkpoint(pt)
    x, y = _spectra()
    expected = network_baselines(torch_run(network), 128, x, y)  # the run's: envelope
    assert np.allclose(onnx_model.baselines(x, y), expected, rtol=0, atol=1e-4 * 300)
    as_minmax = network_baselines(torch_run(network), 128, x, y, normalisation="minmax")
    assert not np.allclose(as_minmax, expected, rtol=0, atol=1e-4 * 300)


def test_an_onnx_file_without_the_key_is_minmax_as_before(tiny, tmp_path):
    network = from_state(tiny.model, _state(tiny))
    del network.normalisation  # a module as the export of old models saw it
    export_onnx(network, tmp_path / "old.onnx", length=128)
    model = onnx.load(str(tmp_path / "old.onnx"))
    assert {p.key: p.value for p in model.metadata_props} == {NORMALISATION_KEY: "minmax"}
    del model.metadata_props[:]  # as every file exported before the key existed
    onnx.save(model, str(tmp_path / "old.onnx"))
    onnx_model = OnnxBaseline(tmp_path / "old.onnx", grid=128)
    assert onnx_model.normalisation == "minmax"
    x, y = _spectra()
    low = y.min(axis=1, keepdims=True)  # the min-max contract, written out as it was
    span = np.ptp(y, axis=1, keepdims=True)
    z = ((y - low) / span).astype(np.float32)[:, None, :]
    expected = onnx_model.run(z)[:, 0, :].astype(np.float64) * span + low
    assert np.array_equal(onnx_model.baselines(x, y), expected)


def test_a_normalisation_this_version_does_not_know_is_refused(tiny, tmp_path):
    export_onnx(from_state(tiny.model, _state(tiny)), tmp_path / "m.onnx", 128, "zscore")
    with pytest.raises(ValueError, match="normalisation 'zscore'.*update raman-baseline"):
        OnnxBaseline(tmp_path / "m.onnx", grid=128)


def test_training_targets_follow_the_normalisation():
    x, y = _spectra()
    baseline = y - np.maximum(y - np.median(y, axis=1, keepdims=True), 0)
    for name in ("minmax", "envelope"):
        inputs, targets = to_tensors(y, baseline, name)
        answer = targets.numpy()
        run = lambda z, t=answer: t  # noqa: E731 - a network that answers the target
        assert np.allclose(predict_baselines(run, y, normalisation=name), baseline, atol=1e-3)
        assert inputs.dtype == torch.float32 and inputs.shape == (3, 1, 128)
