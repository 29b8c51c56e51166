"""The one normalisation step, shared by training, evaluation and correction.

The network sees each spectrum min-max scaled to [0, 1] and predicts the baseline in those
units; :func:`denormalise` maps the prediction back to the user's intensity units exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
    run: Callable[[np.ndarray], np.ndarray], y: np.ndarray, batch_size: int = 1024
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

    Speed (``benchmarks/README.md``): a batch is cut into chunks of ``chunk`` spectra run by
    ``workers`` threads (0: one per core), each chunk on one core. On 2 cores that beat one
    session using 2 intra-op threads by 1.1x (seed network) to 1.6x (small students): convolutions
    this small do not split well across cores, chunks of 64 spectra stay in cache.
    """

    def __init__(self, onnx_path, grid: int = 512, workers: int = 0, chunk: int = 64):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.grid = grid
        self.workers = workers or os.cpu_count() or 1
        self.chunk = chunk
        self._pool: ThreadPoolExecutor | None = None

    def run(self, z: np.ndarray) -> np.ndarray:
        """Normalised ``(B, 1, L)`` float32 in, normalised baselines ``(B, 1, L)`` out."""
        z = np.ascontiguousarray(z, np.float32)
        starts = range(0, len(z), self.chunk)
        if len(starts) <= 1 or self.workers == 1:
            return np.concatenate([self._run_chunk(z[i : i + self.chunk]) for i in starts])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)  # ORT releases the GIL while it runs
        return np.concatenate(
            list(self._pool.map(lambda i: self._run_chunk(z[i : i + self.chunk]), starts))
        )

    def _run_chunk(self, z: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: z})[0]

    def baselines(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x``."""
        return baselines_on_grid(self.run, self.grid, x, y, batch_size)


def baselines_on_grid(
    run: Callable[[np.ndarray], np.ndarray],
    grid: int,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 1024,
) -> np.ndarray:
    """Baselines ``(N, L)`` of spectra ``y`` on the increasing axis ``x`` from a network ``run``.

    The spectra are resampled onto a uniform axis of ``grid`` points unless they are already
    on one, and their baselines resampled back; see :func:`predict_baselines` for ``run``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if len(x) == grid and uniform(x):
        return predict_baselines(run, y, batch_size)
    on = np.linspace(x[0], x[-1], grid)
    return resample(on, predict_baselines(run, resample(x, y, on), batch_size), x)


def resample(x: np.ndarray, y: np.ndarray, new_x: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y`` from the increasing axis ``x`` to ``new_x``."""
    idx = np.clip(np.searchsorted(x, new_x) - 1, 0, len(x) - 2)
    w = np.clip((new_x - x[idx]) / (x[idx + 1] - x[idx]), 0.0, 1.0)
    return y[..., idx] * (1 - w) + y[..., idx + 1] * w


def uniform(x: np.ndarray) -> bool:
    """Whether the axis ``x`` has equal steps (to 1e-6 relative)."""
    step = np.diff(x)
    return bool(np.allclose(step, step[0], rtol=1e-6, atol=0))
