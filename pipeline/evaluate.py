"""Evaluation on the simulated test set: ResUNet-1D against arPLS and asPLS.

Errors are per spectrum, in units of the observed spectrum's intensity range; the report
gives mean and spread per method, and breaks them down by read-noise level and by baseline
family. Figures: two qualitative examples and bar charts of RMSE and MAE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import plots
from pipeline.config import BASELINE_FAMILIES
from pipeline.metrics import baseline_errors, summarise
from pipeline.simulate import SpectrumSet

METHODS = ("resunet", "arpls", "aspls")


def score(
    test: SpectrumSet, predictions: dict[str, np.ndarray], noise_bins: tuple[float, ...]
) -> dict:
    """Metrics of each method's baselines on ``test``: overall, by noise level, by family."""
    errors = {m: baseline_errors(b, test.baseline, test.observed) for m, b in predictions.items()}
    report: dict = {m: {k: summarise(v) for k, v in e.items()} for m, e in errors.items()}

    groups: dict[str, dict[str, np.ndarray]] = {"by_noise": {}, "by_family": {}}
    edges = list(noise_bins)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        last = hi == edges[-1]
        mask = (test.read_noise >= lo) & (
            (test.read_noise <= hi) if last else (test.read_noise < hi)
        )
        groups["by_noise"][f"{lo:g}-{hi:g}"] = mask
    for code, family in enumerate(BASELINE_FAMILIES):
        groups["by_family"][family] = test.family == code
    for name, masks in groups.items():
        report[name] = {
            label: {
                "n": int(mask.sum()),
                **{
                    f"{m}_{k}": float(e[k][mask].mean())
                    for m, e in errors.items()
                    for k in ("rmse", "mae")
                },
            }
            for label, mask in masks.items()
            if mask.any()
        }

    if "resunet" in predictions:
        classical = [m for m in predictions if m != "resunet"]
        for k in ("rmse", "mae"):
            best = min(report[m][k]["mean"] for m in classical)
            report.setdefault("ratio", {})[f"{k}_resunet_over_best_classical"] = (
                report["resunet"][k]["mean"] / best
            )
    return report


def plot_examples(
    test: SpectrumSet, predictions: dict[str, np.ndarray], indices: list[int], out_dir: Path
) -> list[Path]:
    """``fig_qual_<k>.png``: observed spectrum, true baseline and each method's baseline."""
    paths = []
    for k, i in enumerate(indices, start=1):
        ax = plots.figure((9, 4.5)).subplots()
        ax.plot(test.observed[i], color="0.55", lw=0.8, label="observed")
        ax.plot(test.baseline[i], color="k", lw=2, label="true baseline")
        for m in ("arpls", "aspls", "resunet"):
            if m in predictions:
                label, colour, _ = plots.method_style(m)
                ax.plot(predictions[m][i], color=colour, lw=1.4, ls="--", label=label)
        family = BASELINE_FAMILIES[test.family[i]]
        ax.set(
            title=f"Test spectrum {i}: {family} background, read noise {test.read_noise[i]:.3f}",
            xlabel="point",
            ylabel="intensity",
        )
        ax.legend(frameon=False, ncol=3)
        paths.append(plots.save(ax.figure, out_dir / f"fig_qual_{k}.png", dpi=120))
    return paths


def plot_bars(report: dict, out_dir: Path) -> list[Path]:
    """``fig_rmse.png`` and ``fig_mae.png``: mean error per method, with its std."""
    methods = [m for m in METHODS if m in report]
    paths = []
    for k in ("rmse", "mae"):
        ax = plots.figure((5, 4)).subplots()
        means = [report[m][k]["mean"] for m in methods]
        stds = [report[m][k]["std"] for m in methods]
        ax.bar(
            [plots.method_style(m)[0] for m in methods],
            means,
            yerr=stds,
            capsize=4,
            color=[plots.method_style(m)[1] for m in methods],
        )
        for x, v in enumerate(means):
            ax.annotate(
                f"{v:.4f}",
                (x, v),
                ha="center",
                va="bottom",
                xytext=(12, 2),
                textcoords="offset points",
            )
        n = report[methods[0]][k]["n"]
        ax.set(
            ylabel=f"{k.upper()} (fraction of spectrum range)",
            title=f"Baseline {k.upper()} on {n} test spectra",
        )
        paths.append(plots.save(ax.figure, out_dir / f"fig_{k}.png", dpi=120))
    return paths
