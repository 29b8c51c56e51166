"""benchmarks/inference_speed.py: FLOPs counted on the ONNX graph, workloads and ratios."""

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks import common, inference_speed

from .conftest import register_production


def _tiny_onnx() -> onnx.ModelProto:
    # (batch, 2, L) -> Conv k3 pad 1 -> (batch, 4, L) -> ConvTranspose k4 s2 p1 -> (batch, 3, 2L)
    conv_w = numpy_helper.from_array(np.zeros((4, 2, 3), np.float32), "conv_w")
    up_w = numpy_helper.from_array(np.zeros((4, 3, 4), np.float32), "up_w")
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["h"], kernel_shape=[3], pads=[1, 1]),
        helper.make_node(
            "ConvTranspose", ["h", "up_w"], ["y"], kernel_shape=[4], strides=[2], pads=[1, 1]
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, "length"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, None])],
        initializer=[conv_w, up_w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_conv_macs_match_a_hand_count():
    model = _tiny_onnx()
    # Conv: 16 outputs x 4 channels, each 2 inputs x 3 taps = 384
    # ConvTranspose: 16 inputs x 4 channels, each to 3 channels x 4 taps = 768
    assert inference_speed.conv_macs(model, 16) == 384 + 768
    assert inference_speed.conv_macs(model, 32, batch=2) == 4 * (384 + 768)
    # the model itself is left as it was (symbolic dims)
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_param == "length"


def test_workloads_cover_the_spectra_in_batches():
    sizes = {"spectra": 2048, "single_calls": 256, "repeats": 3}
    assert inference_speed.workloads(sizes) == {1: 256, 64: 32, 1024: 2}
    assert inference_speed.workloads({**sizes, "spectra": 100})[1024] == 1


def test_ratios_against_arpls_and_production_at_the_same_length_and_batch():
    Row = common.Row
    rows = [
        Row("inference", "arpls", 512, 1024, rate=1000.0, rmse=0.02),
        Row("inference", common.PRODUCTION_LABEL, 512, 1024, rate=500.0, rmse=0.010),
        Row("inference", common.FAST_LABEL, 512, 1024, rate=2500.0, rmse=0.0104),
        Row("inference", common.FAST_LABEL, 2048, 1024, rate=2500.0, rmse=0.0104),
    ]
    inference_speed.add_ratios(rows)
    assert [r.ratio for r in rows[:3]] == [1.0, 0.5, 2.5]
    assert rows[0].rmse_ratio == 2.0 and math.isclose(rows[2].rmse_ratio, 1.04)
    assert rows[3].ratio is None and rows[3].rmse_ratio is None  # nothing at L 2,048
    assert common.must_show(rows, 1.05)["fast_vs_arpls"] == 2.5


def test_registered_networks_are_found_loaded_and_counted(tmp_path, monkeypatch):
    """Production from a real store, fast missing (a note, no row), FLOPs on its ONNX file."""
    import sys

    import torch

    from pipeline import registry
    from pipeline.export import export_onnx
    from pipeline.model import ResUNet1D

    torch.manual_seed(0)
    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(ResUNet1D(channels=(4, 6, 8, 10, 12, 14)), onnx_path, length=128)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = registry.connect(create=True)
    register_production(client, onnx_path, 128, "benchmark test")

    say = common.Printout()
    specs = inference_speed.network_specs([onnx_path], True, say)
    assert specs == {
        common.PRODUCTION_LABEL: inference_speed.PRODUCTION,
        "onnx tiny.onnx": str(onnx_path),
    }
    assert say.lines == [
        f"note: {inference_speed.FAST} does not exist in this store: its rows are skipped"
    ]
    expected = inference_speed.conv_macs(onnx.load(onnx_path), 128)
    assert inference_speed.network_macs(inference_speed.PRODUCTION, 128) == expected > 0
    path_before = list(sys.path)
    networks = inference_speed.load_networks(specs, grid=128)
    assert sys.path == path_before  # the pyfunc's bundled copy of pipeline is not left first
    x, y = np.linspace(200, 3200, 300), np.random.default_rng(0).normal(size=(2, 300))
    production, local = (networks[label].baselines(x, y) for label in specs)
    assert np.allclose(production, local)  # the same network, by both paths
