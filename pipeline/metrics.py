"""Errors of a predicted baseline against the true one. Imports nothing from the project."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

BENCHMARKS = ("simulated", "semireal", "rruff")
"""Every benchmark a model is scored on, the simulated test set first: its name, then the
real-reference ones (:func:`pipeline.semireal.real_benchmarks`' names)."""


def baseline_errors(
    predicted: np.ndarray, true: np.ndarray, observed: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-spectrum RMSE and MAE, in units of each observed spectrum's intensity range.

    Dividing by the observed range (max - min) makes errors comparable across spectra of any
    intensity scale: they are the errors in the network's normalised units.
    """
    span = np.ptp(np.asarray(observed, dtype=np.float64), axis=-1)
    err = (np.asarray(predicted, dtype=np.float64) - true) / np.maximum(span, 1e-12)[..., None]
    return {"rmse": np.sqrt(np.mean(err**2, axis=-1)), "mae": np.mean(np.abs(err), axis=-1)}


def summarise(values: np.ndarray) -> dict[str, float]:
    """Mean and spread of per-spectrum errors."""
    v = np.asarray(values, dtype=np.float64)
    q25, median, q75 = np.percentile(v, [25, 50, 75])
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "n": int(v.size),
    }


def mean_errors(predicted: np.ndarray, true: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """Mean over spectra of :func:`baseline_errors`: ``{"rmse": float, "mae": float}``.

    The one summary by which methods and model versions are compared (the promotion gate, the
    classical ``lam`` grid, fine-tuning, the benchmarks).
    """
    e = baseline_errors(predicted, true, observed)
    return {"rmse": float(e["rmse"].mean()), "mae": float(e["mae"].mean())}


Block = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Part of a benchmark: the axis ``x`` (L,), observed spectra (n, L) and true baselines (n, L).

A benchmark is a sequence of blocks: one for a set on one grid (simulated, semi-real), one per
spectrum for spectra on their own axes (the RRUFF pairs)."""


def block_errors(method: Callable, blocks: Iterable[Block]) -> dict[str, np.ndarray]:
    """Per-spectrum RMSE and MAE (:func:`baseline_errors`) of ``method(x, observed)``.

    Over every block, concatenated in block order: ``{"rmse": (N,), "mae": (N,)}``.
    """
    parts = [baseline_errors(method(x, y), true, y) for x, y, true in blocks]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("rmse", "mae")}


def benchmark_errors(method: Callable, blocks: Iterable[Block]) -> dict[str, float]:
    """Mean over every spectrum of the blocks of :func:`block_errors`: ``{"rmse", "mae"}``."""
    e = block_errors(method, blocks)
    return {k: float(v.mean()) for k, v in e.items()}
