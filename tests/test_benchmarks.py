"""The pure helpers of benchmarks/speed.py: no timing, no model, no store."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("benchmarks_speed", ROOT / "benchmarks" / "speed.py")
speed = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = speed  # dataclasses look their module up there
spec.loader.exec_module(speed)


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
    assert speed.conv_macs(model, 16) == 384 + 768
    assert speed.conv_macs(model, 32, batch=2) == 4 * (384 + 768)
    # the model itself is left as it was (symbolic dims)
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_param == "length"


def test_format_table_aligns_and_marks_missing():
    rows = [{"name": "arpls", "rate": 1234.5, "ratio": 1.0}, {"name": "fast", "rate": 9.0}]
    cols = [("name", "method", ""), ("rate", "spectra/s", "{:,.0f}"), ("ratio", "x", "{:.2f}")]
    lines = speed.format_table(rows, cols).splitlines()
    assert lines[0].split() == ["method", "spectra/s", "x"]
    assert lines[1].split() == ["arpls", "1,234", "1.00"]
    assert lines[2].split() == ["fast", "9", "-"]
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers: equal widths


def test_metric_names_are_sanitised():
    name = speed.metric_name("inference", "onnx student (v2).onnx", "L512", None, "rate")
    assert name == "inference.onnx_student_v2_.onnx.L512.rate"
    assert (
        speed.metric_name("inference", "production (fp32)", 512) == "inference.production_fp32.512"
    )


def test_clock_prefers_max_mhz():
    assert speed.parse_clock("CPU max MHz:  3800.0000\n", "cpu MHz\t\t: 2100.5\n") == (
        3800.0,
        "lscpu CPU max MHz",
    )
    mhz, source = speed.parse_clock("Model name: x\n", "cpu MHz\t\t: 2100.5\n")
    assert mhz == 2100.5 and "current" in source
    with pytest.raises(ValueError):
        speed.parse_clock("", "")


def test_simulate_speed_output_is_parsed():
    out = (
        "simulation, length 512, ...\n  best      61,234 spectra/s\n  median    58,001 spectra/s\n"
    )
    assert speed.parse_simulate_speed(out) == 58_001


def test_env_exports_are_read_from_the_script():
    script = 'export PATH="$ROOT/.venv/bin:$PATH"\nexport DVC_SITE_CACHE_DIR="$ROOT/.dvc/x"\n'
    script += "  export OMP_WAIT_POLICY=PASSIVE\necho export NOT=this\n"
    env = speed.parse_env_exports(script, Path("/clone"))
    assert env == {"DVC_SITE_CACHE_DIR": "/clone/.dvc/x", "OMP_WAIT_POLICY": "PASSIVE"}


def test_ratios_and_verdicts():
    rows = [
        speed.Row("inference", "arpls", 512, 1024, rate=1000.0, rmse=0.02),
        speed.Row("inference", speed.PRODUCTION_LABEL, 512, 1024, rate=500.0, rmse=0.010),
        speed.Row("inference", speed.FAST_LABEL, 512, 1024, rate=2500.0, rmse=0.0104),
        speed.Row("train", "plain", rate=100.0, ratio=1.0),
        speed.Row("train", "project", rate=180.0, ratio=1.8),
    ]
    speed.add_ratios(rows)
    figures = speed.must_show(rows, 1.05)
    assert figures["fast_vs_arpls"] == 2.5
    assert math.isclose(figures["fast_rmse_ratio"], 1.04)
    assert figures["train_ratio"] == 1.8 and figures["sim_per_core"] is None
    text = "\n".join(speed.must_show_lines(figures))
    assert "= 2.50 (>= 2): PASS; goal 3: FAIL" in text
    assert "= 1.040 (<= 1.05): PASS" in text
    assert "= 1.80 (>= 2): FAIL" in text
    assert "not measured (>= 50,000): n/a" in text
