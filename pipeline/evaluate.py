"""Evaluation: ResUNet-1D against arPLS and asPLS, on the simulated test set and any benchmark.

Errors are per spectrum, in units of the observed spectrum's intensity range; the report
gives mean and spread per method, and breaks them down by read-noise level and by baseline
family. Figures: two qualitative examples and bar charts of RMSE and MAE.

:func:`score_benchmark` scores the network, arPLS, asPLS and ``refined``
(:func:`pipeline.baselines.refined`) on any benchmark given as blocks
(:data:`pipeline.metrics.Block`), each classical ``lam`` (and ``refined``'s method and
``lam``) chosen on the benchmark's own validation blocks: the real-reference benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import plots
from pipeline.baselines import METHODS as CLASSICAL
from pipeline.baselines import REFINED_METHODS, BaselineFn, classical_baselines
from pipeline.config import BASELINE_FAMILIES, ClassicalParams
from pipeline.metrics import Block, baseline_errors, summarise
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


def _errors(predicted: list[np.ndarray], blocks: list[Block]) -> dict[str, np.ndarray]:
    """Per-spectrum errors of baselines given block by block, concatenated."""
    parts = [baseline_errors(p, true, y) for p, (_, y, true) in zip(predicted, blocks, strict=True)]
    return {k: np.concatenate([e[k] for e in parts]) for k in ("rmse", "mae")}


def _fits(method: BaselineFn, blocks: list[Block], under: list[np.ndarray] | None = None):
    """``method`` on every block, or with ``under``, ``under + method(x, y - under)``.

    ``under`` (the network's baselines per block) makes it :func:`pipeline.baselines.refined`
    with the network run once.
    """
    if under is None:
        return [method(x, y) for x, y, _ in blocks]
    return [u + method(x, y - u) for u, (x, y, _) in zip(under, blocks, strict=True)]


def _mean_rmse(predicted: list[np.ndarray], blocks: list[Block]) -> float:
    return float(_errors(predicted, blocks)["rmse"].mean())


def refined_choice(grids: dict[str, dict[str, float]]) -> dict:
    """``refined``'s classical part: the lowest validation RMSE over its candidates.

    ``grids`` holds ``refined_<method>`` -> {log10_lam as text: validation RMSE} for each of
    :data:`pipeline.baselines.REFINED_METHODS` (``refined_none``: the network alone, one
    entry). Returns ``{"method", "log10_lam"}``, ``log10_lam`` None for ``"none"``; on a tie
    the network alone wins (no correction is the simpler answer).
    """
    candidates = [
        (rmse, m, None if m == "none" else float(ll))
        for m in REFINED_METHODS
        for ll, rmse in grids[f"refined_{m}"].items()
    ]
    _, method, log10_lam = min(candidates, key=lambda c: c[0])  # min keeps the first: none
    return {"method": method, "log10_lam": log10_lam}


def score_benchmark(
    network: BaselineFn,
    params: ClassicalParams,
    grid: int,
    val: list[Block],
    test: list[Block],
) -> dict:
    """The network, arPLS, asPLS and ``refined`` on a benchmark's test blocks.

    Each classical method's ``log10_lam`` is the point of its ``classical`` grid with the
    lowest mean RMSE on the validation blocks (set-wide: one ``lam`` for every spectrum,
    scaled to each spectrum's length, :func:`pipeline.baselines.classical_baselines` with
    reference length ``grid``). ``refined`` (the network's baseline plus a classical fit of
    its residual) takes the method and ``lam`` of the lowest validation RMSE over both grids
    and "none", the network alone (:func:`refined_choice`).

    Returns
    -------
    dict
        Per method ``{"rmse", "mae"}`` summaries (:func:`pipeline.metrics.summarise`),
        ``ratio`` (each of ResUNet and refined over the better classical method, by the mean),
        ``lam`` (the choices; ``lam["refined"]`` is ``{"method", "log10_lam"}``), ``val_grid``
        (validation RMSE at every grid point, ``refined_none`` the network's), ``n_val``
        and ``n_test`` (spectra).
    """
    net_val, net_test = _fits(network, val), _fits(network, test)
    grids: dict[str, dict[str, float]] = {"refined_none": {"none": _mean_rmse(net_val, val)}}
    lam: dict = {}
    predictions = {"resunet": net_test}
    for name in CLASSICAL:
        settings = getattr(params, name)
        for label, under in ((name, None), (f"refined_{name}", net_val)):
            grids[label] = {
                f"{ll:g}": _mean_rmse(
                    _fits(classical_baselines(name, ll, settings, grid), val, under), val
                )
                for ll in settings.log10_lam
            }
        lam[name] = float(min(settings.log10_lam, key=lambda ll: grids[name][f"{ll:g}"]))
        predictions[name] = _fits(classical_baselines(name, lam[name], settings, grid), test)
    lam["refined"] = refined_choice(grids)
    method = lam["refined"]["method"]
    if method == "none":
        predictions["refined"] = net_test
    else:
        fit = classical_baselines(
            method, lam["refined"]["log10_lam"], getattr(params, method), grid
        )
        predictions["refined"] = _fits(fit, test, net_test)
    errors = {m: _errors(p, test) for m, p in predictions.items()}
    report: dict = {m: {k: summarise(v) for k, v in e.items()} for m, e in errors.items()}
    report["ratio"] = {
        f"{k}_{m}_over_best_classical": report[m][k]["mean"]
        / min(report[c][k]["mean"] for c in CLASSICAL)
        for m in ("resunet", "refined")
        for k in ("rmse", "mae")
    }
    n_val = sum(len(y) for _, y, _ in val)
    return report | {
        "lam": lam,
        "val_grid": grids,
        "n_val": n_val,
        "n_test": len(errors["resunet"]["rmse"]),
    }
