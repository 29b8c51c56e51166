"""A per-point standard deviation of the baseline: MC dropout with fixed masks, calibrated.

A network trained with channel dropout (``model.dropout``, :class:`pipeline.model.ResBlock`)
is run ``samples`` more times with dropout on (MC dropout, Gal & Ghahramani, ICML 2016); the
spread of those passes, times a scale fitted on the validation set (post-hoc sigma scaling,
Laves et al., MIDL 2020), is the standard deviation ``baseline_std`` of the baseline.
``docs/uncertainty.md`` measures it against a deep ensemble (``benchmarks/uncertainty.py``).

- **Fixed masks.** The dropout masks are drawn once, from ``seed``, when the network is wrapped
  (:class:`MCDropout`), and kept in the graph: the same spectrum always gets the same
  ``baseline_std`` (the project's outputs are reproducible), ONNX Runtime needs no random
  operator, and the masks, one value per channel (:class:`torch.nn.Dropout1d`), fit spectra of
  any length. Pass 0 has no dropout: its baseline is the network's plain answer, the same as
  without uncertainty.
- **The graph's outputs.** ``baseline`` ``(B, 1, L)`` and ``baseline_upper`` = baseline +
  sigma ``(B, 1, L)``, both in the network's linear normalised units: the upper curve is a
  baseline too, so the one exact inversion and resampling of :mod:`pipeline.normalise` bring
  it to the user's units and ``baseline_std = upper - baseline`` there.
- **The scale** (:func:`fit_scale`): the factor that makes ±2 sigma hold :data:`TARGET` of the
  true baseline's points on validation spectra; it is part of the graph and of its metadata.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pipeline.inference import UPPER  # the exported graph's second output: baseline + sigma

SCALE_KEY = "sigma_scale"  # ONNX metadata_props: the fitted scale
SAMPLES_KEY = "mc_samples"  # ONNX metadata_props: the MC-dropout passes
TARGET = 0.95  # fraction of the true baseline within ±2 sigma on validation (fit_scale)


class FixedMasks(nn.Module):
    """Channel dropout with masks drawn once: ``(S * B, C, L)`` in, pass ``s`` scaled by mask ``s``.

    Mask 0 is all ones (the network without dropout); masks 1 to ``S - 1`` keep each channel
    with probability ``1 - p`` and scale it by ``1 / (1 - p)``, as
    :class:`torch.nn.Dropout1d` does in training.
    """

    def __init__(self, channels: int, p: float, samples: int, generator: torch.Generator):
        super().__init__()
        keep = torch.rand(samples, channels, 1, generator=generator) >= p
        masks = keep.float() / (1 - p)
        masks[0] = 1.0
        self.register_buffer("masks", masks)  # (S, C, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # noqa: D102
        s = self.masks.shape[0]
        return (h.unflatten(0, (s, -1)) * self.masks[:, None]).flatten(0, 1)  # (S*B, C, L)


class MCDropout(nn.Module):
    """A network with dropout, answering its baseline and baseline + sigma from MC passes.

    Parameters
    ----------
    network
        A :class:`pipeline.model.ResUNet1D` built with ``dropout`` > 0 (copied, not changed).
    samples
        MC-dropout passes (at least 2); the cost is ``samples + 1`` forward passes.
    scale
        The sigma scale (:func:`fit_scale`); 1: the passes' standard deviation itself.
    seed
        Seed of the masks.

    Raises
    ------
    ValueError
        ``network`` has no dropout, or ``samples`` is under 2.
    """

    def __init__(self, network: nn.Module, samples: int, scale: float = 1.0, seed: int = 0):
        super().__init__()
        if samples < 2:
            raise ValueError(f"MC dropout needs at least 2 passes, got {samples}")
        self.network = copy.deepcopy(network).eval()
        generator = torch.Generator().manual_seed(seed)
        blocks = [
            m for m in self.network.modules() if isinstance(getattr(m, "drop", None), nn.Dropout1d)
        ]
        if not blocks:
            raise ValueError("the network has no dropout: train it with model.dropout > 0")
        for block in blocks:
            channels = block.conv1.out_channels
            block.drop = FixedMasks(channels, block.drop.p, samples + 1, generator)
        self.samples, self.scale, self.seed = samples, float(scale), seed
        self.normalisation = getattr(network, "normalisation", "minmax")
        self.length_multiple = network.length_multiple
        self.output_names = ("baseline", UPPER)  # pipeline.export.export_onnx's outputs
        self.metadata = {
            SCALE_KEY: repr(self.scale),
            SAMPLES_KEY: str(samples),
            "mask_seed": str(seed),
        }

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectra ``(B, 1, L)`` -> ``(baseline, baseline + sigma)``, each ``(B, 1, L)``."""
        passes = self.network(x.repeat(self.samples + 1, 1, 1)).unflatten(0, (-1, x.shape[0]))
        sigma = passes[1:].std(dim=0) * self.scale  # (B, 1, L), unbiased over the passes
        return passes[0], passes[0] + sigma


def coverage(truth: np.ndarray, baseline: np.ndarray, std: np.ndarray, k: float) -> float:
    """Fraction of points whose true baseline lies within ``baseline ± k * std``.

    All ``(N, L)`` in the same units; NaN points (masked) are left out.
    """
    err = np.abs(np.asarray(truth, np.float64) - baseline)
    inside = err <= k * np.asarray(std, np.float64)
    known = np.isfinite(err) & np.isfinite(std)
    return float(inside[known].mean())


def fit_scale(
    truth: np.ndarray, baseline: np.ndarray, std: np.ndarray, target: float = TARGET
) -> float:
    """The sigma scale that puts ``target`` of the validation points within ±2 sigma.

    The ``target`` quantile of ``|truth - baseline| / std`` over every point, halved: one
    number for every spectrum and point (post-hoc scaling, Laves et al. 2020; fitted to the
    coverage asked for rather than to the Gaussian likelihood, whose heavy-tailed errors
    would inflate it). ``(N, L)`` arrays in the same units.

    Points where the passes agree exactly (``std`` 0) are left out of the fit.

    Raises
    ------
    ValueError
        Every ``std`` is 0: the passes did not differ.
    """
    std = np.asarray(std, np.float64)
    spread = std > 0
    if not spread.any():
        raise ValueError("a standard deviation of 0: the MC-dropout passes do not differ")
    ratio = np.abs(np.asarray(truth, np.float64) - baseline)[spread] / std[spread]
    return float(np.quantile(ratio, target) / 2)


def gaussian_nll_scale(truth: np.ndarray, baseline: np.ndarray, std: np.ndarray) -> float:
    """The scale of least Gaussian negative log-likelihood, ``sqrt(mean((err / std)^2))``.

    Laves et al. 2020's own criterion, reported beside :func:`fit_scale` by the benchmark.
    """
    ratio = (np.asarray(truth, np.float64) - baseline) / np.asarray(std, np.float64)
    return float(np.sqrt(np.mean(ratio**2)))


@torch.no_grad()
def normalised_passes(
    wrapped: MCDropout, observed: np.ndarray, baseline: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(truth, baseline, sigma)`` ``(N, L)`` in normalised units, for spectra on the grid.

    ``observed`` and ``baseline`` ``(N, L)`` (a simulated set, the true baseline known) are
    normalised as the network's input (:func:`pipeline.normalise.normalise`); coverage is the
    same in these units as in the spectra's (the scaling is affine per spectrum).
    """
    from pipeline.normalise import normalise

    z, low, span = normalise(observed, wrapped.normalisation)
    truth = (baseline - low) / span
    base, upper = [], []
    for start in range(0, len(z), batch_size):
        b, u = wrapped(torch.from_numpy(z[start : start + batch_size, None, :]))
        base.append(b[:, 0].numpy())
        upper.append(u[:, 0].numpy())
    b, u = np.concatenate(base).astype(np.float64), np.concatenate(upper).astype(np.float64)
    return truth, b, u - b


def calibrated(
    network: nn.Module, samples: int, observed: np.ndarray, baseline: np.ndarray, seed: int = 0
) -> tuple[MCDropout, dict]:
    """``network`` with ``samples`` MC-dropout passes, its sigma scale fitted on a validation set.

    ``observed`` and ``baseline`` ``(N, L)``: simulated validation spectra and their true
    baselines (``data/simulated/val.npz``). Returns the wrapped network (what ``export``
    writes) and a report: the scale, and the fraction of validation points within ±1 and ±2
    sigma before and after it.
    """
    truth, base, sigma = normalised_passes(
        MCDropout(network, samples, 1.0, seed), observed, baseline
    )
    scale = fit_scale(truth, base, sigma)
    report = {
        "sigma_scale": scale,
        "mc_samples": samples,
        "mask_seed": seed,
        "val_spectra": len(truth),
    }
    for label, s in (("unscaled", 1.0), ("scaled", scale)):
        for k in (1, 2):
            report[f"val_in_{k}sigma_{label}"] = coverage(truth, base, s * sigma, k)
    return MCDropout(network, samples, scale, seed), report
