"""model.attention: squeeze-and-excitation in the residual blocks, and none = today's network."""

import dataclasses

import numpy as np
import pytest
import torch

from pipeline import config, model
from pipeline.checkpoint import from_state, load_checkpoint, save_checkpoint
from pipeline.config import ConfigError, parse_params, to_dict
from pipeline.export import export_onnx, parity
from pipeline.inference import OnnxBaseline
from pipeline.model import SqueezeExcite, build_model, count_parameters
from tests.conftest import ROOT, tiny_params

SHIPPED = ROOT / "pipeline" / "shipped" / "resunet1d.pt"


def _net(params, attention, seed=0):
    torch.manual_seed(seed)
    m = params
    return build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel, attention)


def test_config_and_model_name_the_same_choices():
    assert config.ATTENTIONS == model.ATTENTIONS


def test_none_is_todays_network_so_the_shipped_checkpoint_loads_unchanged():
    saved = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert "attention" not in saved["model_params"]  # trained before the option existed
    network, params = load_checkpoint(SHIPPED)
    assert params.attention == "none"
    fresh = build_model(
        params.arch, params.channels, params.enc_kernel, params.dec_kernel, "none"
    ).state_dict()
    assert {k: v.shape for k, v in fresh.items()} == {k: v.shape for k, v in saved["model"].items()}
    assert not any(isinstance(m, SqueezeExcite) for m in network.modules())


def test_se_gates_every_residual_block_and_adds_few_parameters(params):
    none, se = _net(params.model, "none"), _net(params.model, "se")
    units = [m for m in se.modules() if isinstance(m, SqueezeExcite)]
    blocks = [m for m in se.modules() if isinstance(m, model.ResBlock)]
    assert len(units) == len(blocks) == 2 * (len(params.model.channels) - 1)
    extra = 0
    for block in blocks:
        c = block.bn2.num_features
        hidden = max(model.SE_MIN_HIDDEN, c // model.SE_REDUCTION)
        assert block.se.squeeze.out_features == hidden
        extra += 2 * c * hidden + hidden + c  # two linear layers with biases
    assert count_parameters(se) == count_parameters(none) + extra
    assert extra / count_parameters(none) < 0.03  # about 1.6% for the seed's channels
    # the shared parameters keep their names: only .se. entries are new
    new = set(se.state_dict()) - set(none.state_dict())
    assert new and all(".se." in k for k in new)
    assert set(none.state_dict()) <= set(se.state_dict())


def test_the_gate_is_one_value_per_channel_from_the_whole_spectrum():
    torch.manual_seed(1)
    unit = SqueezeExcite(16)
    h = torch.randn(3, 16, 40)
    gate = unit(h) / h  # (B, C, L): the same along the length
    assert torch.allclose(gate, gate[..., :1].expand_as(gate), atol=1e-5)
    assert (gate > 0).all() and (gate < 1).all()
    shuffled = h[..., torch.randperm(40)]  # positions do not matter, only the channel means
    assert torch.allclose(unit(shuffled) / shuffled, gate, atol=1e-5)
    far = h.clone()
    far[..., -1] += 50.0  # a change at the far end moves the gate everywhere
    assert not torch.allclose((unit(far) / far)[..., 0], gate[..., 0])


def test_se_runs_at_any_length_and_trains(tiny):
    net = _net(tiny.model, "se").train()
    for length in (32, 96, 160):
        assert net(torch.rand(2, 1, length)).shape == (2, 1, length)
    loss = net(torch.rand(4, 1, 64)).square().mean()
    loss.backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if ".se." in n)


def test_a_checkpoint_keeps_its_attention_and_exports_to_onnx(tiny, tmp_path):
    params = dataclasses.replace(tiny.model, attention="se")
    state = _net(tiny.model, "se").state_dict()
    save_checkpoint(tmp_path / "se.pt", state, params)
    network, loaded = load_checkpoint(tmp_path / "se.pt")
    assert loaded.attention == "se"
    assert sum(isinstance(m, SqueezeExcite) for m in network.modules()) == 10
    export_onnx(network, tmp_path / "se.onnx", length=128)
    assert parity(network, tmp_path / "se.onnx", shapes=((1, 128), (5, 64), (2, 320))) < 1e-4
    x = np.linspace(200.0, 3200.0, 200)
    y = 100 + 30 * np.exp(-x / 900) + np.random.default_rng(0).normal(0, 0.5, (3, 200))
    onnx_baseline = OnnxBaseline(tmp_path / "se.onnx", grid=128).baselines(x, y)
    assert onnx_baseline.shape == y.shape and np.isfinite(onnx_baseline).all()


def test_a_checkpoint_saved_before_the_key_loads_as_none(tiny, tmp_path):
    saved = to_dict(tiny.model)
    del saved["attention"]
    torch.save(
        {"model": _net(tiny.model, "none").state_dict(), "model_params": saved}, tmp_path / "o.pt"
    )
    network, params = load_checkpoint(tmp_path / "o.pt")
    assert params == dataclasses.replace(tiny.model, attention="none")
    with pytest.raises(RuntimeError, match="se"):  # an SE checkpoint's weights do not fit none
        from_state(tiny.model, _net(tiny.model, "se").state_dict())


def test_bad_attention_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="model.attention: expected one of none, se, got 'cbam'"):
        parse_params(tiny_params(model={"attention": "cbam"}))
    with pytest.raises(ConfigError, match="model.attention: se needs model.arch: resunet"):
        parse_params(tiny_params(model={"attention": "se", "arch": "unet"}))
    with pytest.raises(ValueError, match="model.attention: se needs model.arch: resunet"):
        build_model("unet", attention="se")
    with pytest.raises(ValueError, match="model.attention: expected one of none, se"):
        build_model("resunet", attention="cbam")
