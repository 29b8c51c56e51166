"""Fine-tuning ResUNet-1D on real spectra, with simulated replay, and the domain-shift report.

The seeds' transfer-learning recipe: pretrain on simulation, then retrain on real spectra at a
lower learning rate for fewer epochs. Here the starting point is the production version's
checkpoint, and every fine-tuning batch mixes real spectra with simulated training spectra
(replay), so that what was learnt on simulation is kept: the stage refuses a result whose
simulated-test RMSE grew by more than ``finetune.max_sim_rmse_ratio``.

Targets
-------
Paired real data (a raw spectrum with a reference baseline, ``data/real/paired/``) is used as
it is. Raw spectra alone have no ground truth; ``finetune.targets`` picks how one is built:

``pseudo``
    The baseline of the better classical method on the simulated test set (arPLS or asPLS, at
    its validated ``lam`` scaled to the spectrum's length), drawn on the whole real spectrum.
``refined``
    The parent network's own baseline, plus that classical method's baseline of the residual
    the network leaves (:func:`pipeline.baselines.refined`): the network's shape, the
    classical method's level.
``transplant``
    The real spectrum's bands and noise (raw minus the classical baseline) laid on a simulated
    background whose baseline is known exactly.

Which one is the default was decided by measurement (README, "Fine-tuning on real spectra").

Augmentation: each training spectrum is a random window of a real spectrum (``min_window`` to
all of its axis) resampled onto the network's grid, so a few dozen real spectra give thousands
of distinct inputs, at every position of the edges and bands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline import plots
from pipeline.baselines import BaselineFn, classical_baselines
from pipeline.checkpoint import torch_run
from pipeline.config import ClassicalParams, FinetuneParams, SimulateParams
from pipeline.metrics import mean_errors
from pipeline.normalise import network_baselines, predict_baselines, resample
from pipeline.quality import quality, summarise
from pipeline.realdata import RealSpectrum

# ------------------------------------------------------------------------------ targets


def saturated(record: RealSpectrum, share: float = 0.01) -> bool:
    """Whether more than ``share`` of the points sit at the spectrum's maximum.

    A clipped detector: the shape above the ceiling, band or background, is lost.
    """
    return bool(np.mean(record.y >= record.y.max()) > share)


def classical_targets(records: Sequence[RealSpectrum], estimate: BaselineFn) -> list[np.ndarray]:
    """A reference baseline per record: its own when paired, else ``estimate``'s."""
    return [
        r.baseline if r.baseline is not None else estimate(r.x, r.y[None, :])[0] for r in records
    ]


def windows(
    records: Sequence[RealSpectrum],
    targets: Sequence[np.ndarray],
    n: int,
    grid: int,
    min_window: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random windows of the records and their targets, resampled onto ``grid`` points.

    Each window covers a uniform random fraction ``[min_window, 1]`` of a random record's axis
    at a random position. Returns ``observed`` and ``baseline``, both ``(n, grid)`` float32.
    """
    observed = np.empty((n, grid), np.float32)
    baseline = np.empty((n, grid), np.float32)
    pick = rng.integers(len(records), size=n)
    frac = rng.uniform(min_window, 1.0, size=n)
    where = rng.uniform(0.0, 1.0, size=n)
    for i, (k, f, w) in enumerate(zip(pick, frac, where, strict=True)):
        x = records[k].x
        width = f * (x[-1] - x[0])
        start = x[0] + w * (x[-1] - x[0] - width)
        on = np.linspace(start, start + width, grid)
        observed[i] = resample(x, records[k].y, on)
        baseline[i] = resample(x, targets[k], on)
    return observed, baseline


def transplant(
    observed: np.ndarray,
    baseline: np.ndarray,
    sim: SimulateParams,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Real bands and noise (``observed - baseline``) on simulated backgrounds of known shape.

    The background is a simulated baseline scaled so that the tallest band over the background's
    range follows ``simulate.peaks.ratio`` (log-uniform), as in the simulated training set.
    Returns the new ``observed`` and its exact ``baseline``.
    """
    from pipeline.simulate import simulate

    n, grid = observed.shape
    bands = observed - baseline
    backgrounds = simulate(_at_length(sim, grid), n, int(rng.integers(2**31))).baseline
    low = backgrounds.min(axis=1, keepdims=True)
    unit = (backgrounds - low) / np.maximum(np.ptp(backgrounds, axis=1, keepdims=True), 1e-12)
    lo, hi = np.log(sim.peaks.ratio[0]), np.log(sim.peaks.ratio[1])
    ratio = np.exp(rng.uniform(lo, hi, size=(n, 1)))
    height = np.maximum(np.ptp(bands, axis=1, keepdims=True), 1e-12)
    new_baseline = (unit * height / ratio).astype(np.float32)
    return (bands + new_baseline).astype(np.float32), new_baseline


def _at_length(sim: SimulateParams, length: int) -> SimulateParams:
    return dataclasses.replace(sim, length=length)


# ----------------------------------------------------------------------- the training set


@dataclass(frozen=True)
class TrainingSet:
    """Fine-tuning inputs and targets (raw units), and where they came from."""

    observed: np.ndarray  # (N, grid)
    baseline: np.ndarray  # (N, grid)
    n_real: int
    n_replay: int


def training_set(
    records: Sequence[RealSpectrum],
    targets: Sequence[np.ndarray],
    replay: tuple[np.ndarray, np.ndarray],
    params: FinetuneParams,
    sim: SimulateParams,
    n_real: int,
    n_replay: int,
    seed: int,
) -> TrainingSet:
    """Real windows (with the chosen targets) and simulated replay, shuffled together."""
    rng = np.random.default_rng(seed)
    grid = replay[0].shape[1]
    observed, baseline = windows(records, targets, n_real, grid, params.min_window, rng)
    if params.targets == "transplant":
        paired = np.array([r.baseline is not None for r in records])
        if not paired.all():  # paired windows keep their real background and reference
            observed, baseline = transplant(observed, baseline, sim, rng)
    take = rng.choice(len(replay[0]), size=min(n_replay, len(replay[0])), replace=False)
    observed = np.concatenate([observed, replay[0][take]])
    baseline = np.concatenate([baseline, replay[1][take]])
    order = rng.permutation(len(observed))
    return TrainingSet(observed[order], baseline[order], n_real, len(take))


# ------------------------------------------------------------------------- evaluation


def network_method(model: torch.nn.Module, grid: int) -> BaselineFn:
    """A PyTorch network as a :data:`~pipeline.baselines.BaselineFn`, on ``correct``'s path.

    Spectra are resampled onto ``grid`` points and back
    (:func:`pipeline.normalise.network_baselines`), as the exported network is served.
    """
    run = torch_run(model)
    return lambda x, y: network_baselines(run, grid, x, y)


def simulated_errors(
    model: torch.nn.Module, observed: np.ndarray, true: np.ndarray
) -> dict[str, float]:
    """Mean RMSE and MAE of a network on simulated spectra (normalised units)."""
    return mean_errors(predict_baselines(torch_run(model), observed), true, observed)


def real_baselines(
    records: Sequence[RealSpectrum], methods: dict[str, BaselineFn]
) -> dict[str, list[np.ndarray]]:
    """Every method's baseline of every record, in the record's own units and axis."""
    return {
        name: [np.asarray(fn(r.x, r.y[None, :]))[0] for r in records]
        for name, fn in methods.items()
    }


def real_quality(
    records: Sequence[RealSpectrum], baselines: dict[str, list[np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Truth-free quality of every method on the records (:mod:`pipeline.quality`)."""
    out = {}
    for name, per_record in baselines.items():
        rows = [quality(r.y[None, :], b[None, :]) for r, b in zip(records, per_record, strict=True)]
        merged = {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}
        out[name] = summarise(merged)
    return out


def classical_methods(
    classical: ClassicalParams, log10_lams: dict[str, float], reference_length: int
) -> dict[str, BaselineFn]:
    """The classical methods as ``correct`` runs them: validated ``lam``, scaled to each length."""
    return {
        name: classical_baselines(
            name, log10_lams[name], getattr(classical, name), reference_length
        )
        for name in ("arpls", "aspls")
    }


# ---------------------------------------------------------------------------- figures


def plot_real(
    path: Path, record: RealSpectrum, baselines: dict[str, np.ndarray], title: str
) -> Path:
    """One real spectrum with every method's baseline (top) and corrected spectra (bottom)."""
    return plots.correction(
        path, record.x, record.y, baselines, title, record.calibrated, figsize=(9, 6), dpi=90
    )


def plot_quality(path: Path, table: dict[str, dict[str, float]]) -> Path:
    """Bars of each truth-free measure per method."""
    measures = list(next(iter(table.values())))
    fig = plots.figure((3.2 * len(measures), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(measures)))
    names = list(table)
    for ax, measure in zip(axes, measures, strict=True):
        colours = [plots.method_style(n)[1] or "0.5" for n in names]
        ax.bar(range(len(names)), [table[n][measure] for n in names], color=colours)
        ax.set_xticks(range(len(names)), [plots.method_style(n)[0] for n in names])
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.set_title(measure, fontsize=9)
    return plots.save(fig, path, dpi=90)
