import numpy as np
import torch

from pipeline.checkpoint import load_checkpoint, save_checkpoint, torch_run
from pipeline.model import build_model


def _model(tiny):
    torch.manual_seed(0)
    m = tiny.model
    return build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel)


def test_checkpoint_round_trip_weights_only(tiny, tmp_path):
    model = _model(tiny)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model.state_dict(), tiny.model)
    torch.load(path, weights_only=True)  # loads without unpickling code
    loaded, params = load_checkpoint(path)
    assert params == tiny.model and not loaded.training
    x = torch.rand(4, 1, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert not list(tmp_path.glob(".*tmp*"))


def test_torch_run_is_a_float32_numpy_network_without_grad(tiny):
    model = _model(tiny).train()
    run = torch_run(model)
    assert not model.training  # eval mode: batch norm uses its running statistics
    z = np.random.default_rng(0).random((3, 1, 128))  # float64, as callers may pass
    out = run(z[:, :, ::1])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == z.shape
    with torch.no_grad():
        assert np.array_equal(out, model(torch.from_numpy(z.astype(np.float32))).numpy())
