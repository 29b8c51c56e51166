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


class OnnxBaseline:
    """The exported network under ONNX Runtime (CPU): the inference path used everywhere.

    :meth:`baselines` takes spectra on any sorted axis, resamples them onto a uniform grid of
    ``grid`` points when they are not already on one, normalises, runs the network, inverts the
    normalisation exactly and resamples the baseline back onto the input axis.
    """

    def __init__(self, onnx_path, grid: int = 512, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.grid = grid

    def run(self, z: np.ndarray) -> np.ndarray:
        """Normalised ``(B, 1, L)`` float32 in, normalised baselines ``(B, 1, L)`` out."""
        return self.session.run(None, {self.input: np.ascontiguousarray(z, np.float32)})[0]

    def baselines(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        if len(x) == self.grid and _uniform(x):
            return predict_baselines(self.run, y, batch_size)
        grid = np.linspace(x[0], x[-1], self.grid)
        on_grid = resample(x, y, grid)
        return resample(grid, predict_baselines(self.run, on_grid, batch_size), x)


def resample(x: np.ndarray, y: np.ndarray, new_x: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y`` from the increasing axis ``x`` to ``new_x``."""
    idx = np.clip(np.searchsorted(x, new_x) - 1, 0, len(x) - 2)
    w = np.clip((new_x - x[idx]) / (x[idx + 1] - x[idx]), 0.0, 1.0)
    return y[..., idx] * (1 - w) + y[..., idx + 1] * w


def _uniform(x: np.ndarray) -> bool:
    step = np.diff(x)
    return bool(np.allclose(step, step[0], rtol=1e-6, atol=0))
