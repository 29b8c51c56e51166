"""ONNX Runtime inference: the exported network on the one normalisation path."""

import ast

import numpy as np
import pytest
import torch

from pipeline.checkpoint import torch_run
from pipeline.export import export_onnx
from pipeline.inference import OnnxBaseline, onnx_session
from pipeline.model import ResUNet1D
from pipeline.normalise import LENGTH_MODES, network_baselines, predict_baselines

from .conftest import ROOT


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny):
    """An untrained tiny ResUNet-1D and its ONNX file: any baseline it draws is a valid test."""
    torch.manual_seed(0)
    model = ResUNet1D(channels=tiny.model.channels).eval()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    export_onnx(model, path, length=128)
    return model, path


@pytest.fixture(scope="module")
def network(exported):
    return OnnxBaseline(exported[1], grid=128)


def spectrum(length=700, seed=0):
    """A smooth background with bands on a non-uniform axis (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(200.0, 3200.0, length))
    y = 5000 * np.exp(-x / 1500) + 800 + rng.normal(0, 5, length)
    for centre in (600.0, 1000.0, 1600.0, 2900.0):
        y += 700 * np.exp(-(((x - centre) / 9) ** 2))
    return x, y


def test_length_multiple_is_read_from_the_graph(network):
    assert network.length_multiple == 32


def test_run_takes_any_batch_and_multiple_of_32_in_chunks(exported):
    model, path = exported
    chunked = OnnxBaseline(path, grid=128, workers=2, chunk=2)
    z = np.random.default_rng(0).random((5, 1, 96), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(z)).numpy()
    assert np.abs(chunked.run(z) - expected).max() <= 1e-4


def test_onnx_path_equals_pytorch_path_in_user_units(exported, network):
    model, _ = exported
    y = np.random.default_rng(0).random((3, 128)) * 500 + 20
    ref = predict_baselines(torch_run(model), y)
    got = network.baselines(np.arange(128.0), y)
    assert np.abs(got - ref).max() <= 1e-4 * np.ptp(y)


@pytest.mark.parametrize("mode", LENGTH_MODES)
def test_baselines_in_the_users_units_on_any_axis(network, mode):
    x, y = spectrum(777)
    b = network.baselines(x, y, length_mode=mode)
    assert b.shape == (1, 777) and np.isfinite(b).all()
    scaled = network.baselines(x, 250 * y - 3e4, length_mode=mode)
    assert np.allclose(scaled, 250 * b - 3e4, rtol=0, atol=1e-5 * 250 * np.ptp(y))
    same = network_baselines(network.run, 128, x, y, mode, 32, "edge")
    assert np.array_equal(b, same)  # the one path, nothing else


def test_a_session_opened_elsewhere_gets_this_version_s_methods(exported, network):
    x, y = spectrum(300)
    wrapped = OnnxBaseline.from_session(network.session, grid=128)
    assert wrapped.length_multiple == 32
    assert np.array_equal(wrapped.baselines(x, y), network.baselines(x, y))


def test_onnx_session_threads(exported):
    session = onnx_session(exported[1], threads=1)
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.get_session_options().intra_op_num_threads == 1


def test_only_inference_imports_onnxruntime():
    importers = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "onnxruntime" for n in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(importers)) == ["pipeline/inference.py"]
