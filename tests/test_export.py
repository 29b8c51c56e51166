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


def test_export_stage_fails_and_writes_nothing_when_parity_breaks(tmp_path, tiny, capsys):
    torch.manual_seed(0)
    model = ResUNet1D(channels=tiny.model.channels)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model.state_dict(), tiny.model)
    out = tmp_path / "m.onnx"
    args = ["--params", str(ROOT / "params.yaml"), "export", "--model", str(ckpt)]
    args += ["--out", str(out), "--report", str(tmp_path / "r.json")]
    assert main([*args, "--tolerance", "-1"]) == 1  # no model can pass this
    assert "raman-baseline export: ONNX output differs from PyTorch" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "r.json").exists()
    assert main(args) == 0 and out.exists()


def test_the_file_holds_no_path_of_this_checkout(exported, tmp_path):
    # the exporter's per-node stack traces named /abs/path/pipeline/model.py: the same network
    # exported from two checkouts made two files (two md5s in dvc.lock)
    model, path, _ = exported
    data = path.read_bytes()
    assert str(ROOT).encode() not in data and b"stack_trace" not in data
    again = tmp_path / "again.onnx"
    export_onnx(model, again, length=128)
    assert again.read_bytes() == data  # the same network, the same bytes
