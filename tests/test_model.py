import pytest
import torch

from pipeline.model import ResUNet1D, UNet1D, build_model, count_parameters

SEED_PARAMETERS = 2_350_457

# (channels, length) after each level, from the seed's table
ENCODER = [(32, 512), (48, 256), (72, 128), (108, 64), (162, 32)]
BOTTLENECK = (243, 16)
DECODER = [(162, 32), (108, 64), (72, 128), (48, 256), (32, 512)]


def test_default_network_matches_the_seed_table():
    model = ResUNet1D().eval()
    shapes = {}

    def keep(name):
        return lambda _m, _i, out: shapes.__setitem__(name, tuple(out.shape[1:]))

    model.stem.register_forward_hook(keep("stem"))
    for i, block in enumerate(model.down):
        block.register_forward_hook(keep(f"down{i}"))
    for i, block in enumerate(model.up):
        block.register_forward_hook(keep(f"up{i}"))
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 512))
    encoder = [shapes["stem"]] + [shapes[f"down{i}"] for i in range(4)]
    assert encoder == ENCODER
    assert shapes["down4"] == BOTTLENECK
    assert [shapes[f"up{i}"] for i in range(5)] == DECODER
    assert out.shape == (2, 1, 512)


def test_parameter_count_within_5_percent_of_the_seed():
    n = count_parameters(ResUNet1D())
    assert abs(n - SEED_PARAMETERS) / SEED_PARAMETERS <= 0.05, n


def test_encoder_downsamples_by_strided_convolution_not_pooling():
    model = ResUNet1D()
    assert not any(isinstance(m, torch.nn.MaxPool1d) for m in model.modules())
    assert all(block.conv1.stride == (2,) for block in model.down)
    assert all(isinstance(up.up, torch.nn.ConvTranspose1d) for up in model.up)


@pytest.mark.parametrize("length", [32, 256, 1024, 2048])
def test_fully_convolutional_on_multiples_of_32(length):
    model = ResUNet1D().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, length)).shape == (1, 1, length)
    assert model.length_multiple == 32


def test_plain_unet_ablation():
    model = build_model("unet")
    assert isinstance(model, UNet1D)
    assert any(isinstance(m, torch.nn.MaxPool1d) for m in model.modules())
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 512)).shape == (2, 1, 512)


def test_unknown_arch():
    with pytest.raises(ValueError, match="model.arch"):
        build_model("mlp")
