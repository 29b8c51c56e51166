import pytest
import torch

from pipeline import device
from pipeline.device import (
    native_bf16,
    pick_device,
    resolve_precision,
    step_autocast,
    tuned_kernels,
)


def test_pick_device_follows_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


@pytest.mark.parametrize(
    ("asked", "native", "expected"),
    [
        ("auto", True, "bf16"),
        ("auto", False, "fp32"),
        ("bf16", False, "bf16"),
        ("fp32", True, "fp32"),
    ],
)
def test_auto_precision_is_bf16_only_where_the_hardware_has_it(
    monkeypatch, asked, native, expected
):
    monkeypatch.setattr(device, "native_bf16", lambda device: native)
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, asked) == expected
    assert step_autocast(cpu, asked).fast_dtype == torch.bfloat16
    assert step_autocast(cpu, asked)._enabled == (expected == "bf16")


def test_auto_precision_is_fp32_on_cuda(monkeypatch):
    monkeypatch.setattr(device, "native_bf16", lambda device: True)
    assert resolve_precision(torch.device("cuda"), "auto") == "fp32"  # measured: faster there
    assert resolve_precision(torch.device("cuda"), "bf16") == "bf16"


def test_tuned_kernels_autotune_cudnn_on_cuda_only_and_restore_the_setting(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with tuned_kernels(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark is False
    with tuned_kernels(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    cpu = torch.device("cpu")
    for bf16, amx in [(False, False), (True, False), (False, True)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert native_bf16(cpu) == (bf16 or amx)


@pytest.mark.gpu
def test_training_steps_run_on_cuda_and_reduce_the_loss(tiny):
    from pipeline.model import build_model
    from pipeline.simulate import simulate
    from pipeline.train import to_tensors, train_step

    device = torch.device("cuda")
    spectra = simulate(tiny.simulate, 64, seed=5)
    x, y = (t.to(device) for t in to_tensors(spectra.observed, spectra.baseline))
    m = tiny.model
    model = build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    with tuned_kernels(device):
        losses = [
            float(train_step(model, optimiser, x, y, step_autocast(device, "auto")))
            for _ in range(20)
        ]
    assert losses[-1] < losses[0]
