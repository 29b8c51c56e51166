import numpy as np
import pytest
import torch

from pipeline.checkpoint import save_checkpoint
from pipeline.cli import main
from pipeline.export import export_onnx, parity
from pipeline.inference import OnnxBaseline
from pipeline.model import ResUNet1D

from .conftest import ROOT


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny):
    torch.manual_seed(0)
    model = ResUNet1D(channels=tiny.model.channels).eval()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    opset = export_onnx(model, path, length=128)
    return model, path, opset


def test_export_has_dynamic_batch_and_length(exported):
    model, path, opset = exported
    assert opset >= 17
    onnx_model = OnnxBaseline(path, grid=128)
    for batch, length in [(1, 128), (5, 96), (2, 1024)]:
        z = np.random.default_rng(batch).random((batch, 1, length), dtype=np.float32)
        out = onnx_model.run(z)
        with torch.no_grad():
            expected = model(torch.from_numpy(z)).numpy()
        assert out.shape == (batch, 1, length)
        assert np.abs(out - expected).max() <= 1e-4


def test_parity_check_is_within_tolerance(exported):
    model, path, _ = exported
    assert parity(model, path) <= 1e-4


def test_export_stage_fails_and_writes_nothing_when_parity_breaks(tmp_path, tiny):
    torch.manual_seed(0)
    model = ResUNet1D(channels=tiny.model.channels)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model.state_dict(), tiny.model)
    out = tmp_path / "m.onnx"
    args = ["--params", str(ROOT / "params.yaml"), "export", "--model", str(ckpt)]
    args += ["--out", str(out), "--report", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit, match="differs from PyTorch"):
        main([*args, "--tolerance", "-1"])  # no model can pass this
    assert not out.exists() and not (tmp_path / "r.json").exists()
    assert main(args) == 0 and out.exists()
