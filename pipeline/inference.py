"""The one normalisation step, shared by training, evaluation and correction.

The network sees each spectrum min-max scaled to [0, 1] and predicts the baseline in those
units; :func:`denormalise` maps the prediction back to the user's intensity units exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_TINY = 1e-12


def normalise(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale each spectrum (last axis) to [0, 1]; return it with the ``low`` and ``span``."""
    y = np.asarray(y)
    low = y.min(axis=-1, keepdims=True)
    span = np.maximum(y.max(axis=-1, keepdims=True) - low, _TINY)
    return ((y - low) / span).astype(np.float32), low, span


def denormalise(z: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Invert :func:`normalise`."""
    return z * span + low


def predict_baselines(
    run: Callable[[np.ndarray], np.ndarray], y: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Baselines of spectra ``y`` (N, L) in their own units, from a normalised-units model.

    ``run`` maps a float32 batch ``(B, 1, L)`` in [0, 1] to baselines ``(B, 1, L)``.
    """
    y = np.asarray(y)
    out = np.empty(y.shape, dtype=np.float64)
    for start in range(0, len(y), batch_size):
        z, low, span = normalise(y[start : start + batch_size])
        pred = np.asarray(run(z[:, None, :]))[:, 0, :]
        out[start : start + batch_size] = denormalise(pred.astype(np.float64), low, span)
    return out
