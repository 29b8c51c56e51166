"""The denoising network: its layers, its training on simulated spectra, its ONNX export.

:class:`DilatedDnCNN` is a residual denoiser (DnCNN, Zhang et al., IEEE TIP 2017: the network
learns the noise and the graph subtracts it) whose 3-point convolutions are dilated 1, 2, 4,
... and back (IRCNN, Zhang et al., CVPR 2017), so that a few layers see a band and its
surroundings (about 100 points with the default dilations). :class:`Denoiser` wraps it with
the compression of :mod:`pipeline.denoise`: input and output are spectra in sigma units.

Training (:func:`train_denoiser`) draws fresh spectra from the simulator (the ``simulate``
section, its own seed ``denoise.seed``): the input is the spectrum minus its true baseline plus
a small smooth residual (the error a baseline estimate leaves, ``denoise.residual`` of the
baseline's range, which the network must keep), the target is the clean bands plus that same
residual; noise and cosmic-ray spikes are what it must remove. The simulator's settings are
``simulate``'s but for the share of spectra with a spike, ``denoise.cosmic_ray_prob``: at the
simulator's 0.05 too few spikes were seen (0.3 lowered the test RMSE by 7% at 16,384 spectra,
docs/denoising.md). The loss is the Huber loss in
sigma units (quadratic within :data:`HUBER` sigmas), AdamW with warm-up and cosine decay as
the baseline network's recipe (:func:`pipeline.train.learning_rate`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.config import DenoiseParams, SimulateParams
from pipeline.denoise import INPUT, KNEE, OUTPUT, ROLE, ROLE_KEY, to_sigma_units
from pipeline.simulate import simulate
from pipeline.stream import BLOCK, block_seed
from pipeline.train import Recipe, learning_rate

HUBER = 3.0  # sigmas: the loss is quadratic within, linear beyond (spikes, band tops)


class DilatedDnCNN(nn.Module):
    """Conv-ReLU, then (dilated Conv-BatchNorm-ReLU) per dilation, then Conv: the residual.

    Parameters
    ----------
    width
        Channels of the hidden layers.
    dilations
        One hidden layer per value, its 3-point convolution dilated by it.

    Input and output are ``(B, 1, L)``, any L (zero padding keeps the length).
    """

    def __init__(self, width: int = 48, dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 8, 4, 2, 1)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for d in dilations:
            layers += [
                nn.Conv1d(width, width, 3, padding=d, dilation=d, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv1d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.body(x)


class Denoiser(nn.Module):
    """Spectra in sigma units ``(B, 1, L)`` in, denoised spectra in sigma units out.

    The network sees ``asinh(u / KNEE)`` (tall bands compressed, the noise linear) and answers
    the noise in sigma units; the output is ``u - net(asinh(u / KNEE))``.
    """

    def __init__(self, width: int = 48, dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 8, 4, 2, 1)):
        super().__init__()
        self.net = DilatedDnCNN(width, dilations)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return u - self.net(torch.asinh(u / KNEE))


@dataclass(frozen=True)
class BlockRow:
    """One row of the training history: after a block of :data:`pipeline.stream.BLOCK` spectra.

    ``seen``: spectra trained on so far; ``loss``: the block's mean training loss (Huber, sigma
    units); ``seconds``: since the start. The stage writes the rows with
    :func:`pipeline.stages._common.write_history`, as the baseline network's.
    """

    seen: int
    loss: float
    seconds: float


def build_denoiser(params: DenoiseParams) -> Denoiser:
    """The :class:`Denoiser` of the ``denoise`` section of ``params.yaml``."""
    return Denoiser(params.width, tuple(params.dilations))


def training_pairs(
    sim: SimulateParams, seed: int, block: int, residual: float, size: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Block ``block`` of the denoiser's stream: inputs and targets ``(size, 1, L)``, sigma units.

    The spectra are ``simulate(sim, size, block_seed(seed, block))``; input: observed minus the
    true baseline, plus a residual; target: the clean bands plus the same residual. The
    residual is another spectrum's baseline shape (the block's baselines rolled by one),
    centred, times ``residual`` x this baseline's range x a uniform factor in [-1, 1].
    """
    spectra = simulate(sim, size, block_seed(seed, block))  # the caller's noise settings
    rng = np.random.default_rng(block_seed(seed + 1, block))
    base = spectra.baseline.astype(np.float64)
    span = np.ptp(base, axis=1, keepdims=True)
    shape = (base - base.min(axis=1, keepdims=True)) / np.maximum(span, 1e-12)
    shape = np.roll(shape - shape.mean(axis=1, keepdims=True), 1, axis=0)
    smooth = shape * span * residual * rng.uniform(-1, 1, (size, 1))
    u, sigma = to_sigma_units(spectra.observed - base + smooth)
    target = (spectra.peaks + smooth) / sigma[:, None]
    return u[:, None, :], target.astype(np.float32)[:, None, :]


def train_denoiser(
    params: DenoiseParams,
    sim: SimulateParams,
    threads: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[Denoiser, list[BlockRow]]:
    """Train a :class:`Denoiser` on ``params.samples`` fresh simulated spectra.

    Returns the model (eval mode) and its history, a :class:`BlockRow` per
    :data:`pipeline.stream.BLOCK` spectra.
    """
    torch.manual_seed(params.seed)
    if threads:
        torch.set_num_threads(threads)
    model = build_denoiser(params)
    noise = dataclasses.replace(sim.noise, cosmic_ray_prob=params.cosmic_ray_prob)
    sim = dataclasses.replace(sim, noise=noise)
    plan = Recipe(
        samples=params.samples,
        batch_size=params.batch_size,
        lr=params.lr,
        weight_decay=params.weight_decay,
        eval_every=params.samples,
        seed=params.seed,
        precision="fp32",
        threads=threads,
        warmup=params.warmup,
    )
    decay = params.weight_decay
    optimiser = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=decay)
    loss_fn = nn.HuberLoss(delta=HUBER)
    history, seen, start, block = [], 0, time.perf_counter(), 0
    every = max(1, params.samples // BLOCK // 16)
    model.train()
    while seen < params.samples:
        x, y = map(torch.from_numpy, training_pairs(sim, params.seed, block, params.residual))
        losses = []
        for i in range(0, len(x), params.batch_size):
            batch = min(params.batch_size, params.samples - seen)
            if batch <= 0:
                break
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(plan, seen, batch)
            loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            seen += batch
        history.append(BlockRow(seen, float(np.mean(losses)), time.perf_counter() - start))
        if block % every == 0 or seen >= params.samples:  # about 16 lines in all
            log(f"denoiser: {seen} of {params.samples} spectra, loss {history[-1].loss:.4f}")
        block += 1
    return model.eval(), history


def export_denoiser(model: Denoiser, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model`` as ONNX: input :data:`INPUT`, output :data:`OUTPUT`, ``(batch, 1, L)``.

    The batch and the length are dynamic; the metadata marks the file as a denoiser
    (:data:`pipeline.denoise.ROLE_KEY`), which :class:`pipeline.denoise.OnnxDenoiser` checks.
    """
    from pipeline.export import save_onnx

    batch = torch.export.Dim("batch", min=1, max=65536)
    length = torch.export.Dim("length", min=8, max=1 << 20)
    save_onnx(
        model.eval(),
        path,
        torch.rand(2, 1, 512),
        (INPUT, [OUTPUT]),
        {"u": {0: batch, 2: length}},
        {**(metadata or {}), ROLE_KEY: ROLE},
    )
