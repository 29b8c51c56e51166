"""Where and in what precision the network trains: device, bf16, cuDNN autotuning, autocast.

CUDA when present, else CPU; ``train.precision: auto`` is bf16 only where the hardware does
bf16 arithmetic, and fp32 everywhere else (measurements in ``benchmarks/README.md``). This
module imports nothing from the project.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def pick_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: AVX512-BF16 or AMX. Without either (an
    AVX2-only CPU), PyTorch emulates bf16 convolutions: a training step ran 12x slower than in
    fp32 on an AVX2 AMD EPYC (benchmarks/README.md).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so guarded
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(device: torch.device, precision: str) -> str:
    """``train.precision`` on ``device``: ``fp32`` or ``bf16``.

    ``auto`` is bf16 on a CPU with bf16 arithmetic (:func:`native_bf16`) and fp32 elsewhere,
    CUDA included: on an H200, fp32 (TF32 convolutions) with autotuned cuDNN kernels trained
    this network faster than bf16 autocast, and as accurately (benchmarks/README.md).
    """
    if precision == "auto":
        return "bf16" if device.type == "cpu" and native_bf16(device) else "fp32"
    return precision


@contextlib.contextmanager
def tuned_kernels(device: torch.device) -> Iterator[None]:
    """Autotuned cuDNN kernels on CUDA while training (batch shapes repeat); nothing on CPU.

    On an H200 it made a step of the default network 2.4x faster at batch 128.
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def step_autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast context of a training step: bf16 when ``precision`` resolves to ``bf16``."""
    enabled = resolve_precision(device, precision) == "bf16"
    return torch.autocast(device.type, torch.bfloat16, enabled=enabled)
