"""The training-time contract of the network: its units, and how spectra of any axis reach it.

The network sees each spectrum min-max scaled to [0, 1] and predicts the baseline in those
units (:data:`NetworkRun`); :func:`denormalise` maps the prediction back to the user's
intensity units exactly. Training, evaluation, export, ``correct``, the served model and
fine-tuning all go through :func:`predict_baselines`, and every spectrum that is not on the
network's grid goes through :func:`network_baselines`: the one inference path.

Lengths. The network was trained on spectra of ``simulate.length`` points (512) and is fully
convolutional, so a spectrum of another length can either be resampled onto a uniform grid of
512 points and its baseline resampled back (``resample``), or run at its own number of points,
padded to the next multiple of 32 and cropped (``native``). ``benchmarks/length_handling.py``
measures both on simulated spectra of 300 to 4,000 points: ``resample`` is the better one
overall (native is 1.45 times worse at 300 points, about 5% better above 1,500 points at two
to five times the cost, and far worse when bands widen with L), so it is the default, first in
:data:`LENGTH_MODES`; it is also what the registered model does when served.

This module imports nothing from the project, nor torch, nor ONNX Runtime: training depends on
it, and on nothing of how inference is run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LENGTH_MODES = ("resample", "native")  # the default first: see benchmarks/length_handling.py
PAD_MODE = "edge"  # native mode's padding, measured against "reflect" by the same benchmark

NetworkRun = Callable[[np.ndarray], np.ndarray]
"""A network on normalised spectra: float32 ``(B, 1, L)`` in [0, 1] -> baselines ``(B, 1, L)``
in the same units (ONNX Runtime: :class:`pipeline.inference.OnnxBaseline`; PyTorch:
:func:`pipeline.checkpoint.torch_run`)."""

_TINY = 1e-12


def normalise(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale each spectrum (last axis) to [0, 1].

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The scaled spectra (float32, the shape of ``y``), and ``low`` and ``span`` (the
        minimum and range, at least 1e-12, of each spectrum; shape of ``y`` with a last axis
        of 1), in ``y``'s units.
    """
    y = np.asarray(y)
    low = y.min(axis=-1, keepdims=True)
    span = np.maximum(y.max(axis=-1, keepdims=True) - low, _TINY)
    return ((y - low) / span).astype(np.float32), low, span


def denormalise(z: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Invert :func:`normalise`: ``z * span + low``, in the original units."""
    return z * span + low


def predict_baselines(run: NetworkRun, y: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Baselines of spectra ``y`` (N, L) in their own units, from a normalised-units network.

    ``y`` is normalised, run through ``run`` in batches of ``batch_size``, and the output
    denormalised: float64 (N, L).
    """
    y = np.asarray(y)
    out = np.empty(y.shape, dtype=np.float64)
    for start in range(0, len(y), batch_size):
        z, low, span = normalise(y[start : start + batch_size])
        pred = np.asarray(run(z[:, None, :]))[:, 0, :]
        out[start : start + batch_size] = denormalise(pred.astype(np.float64), low, span)
    return out


def padded(run: NetworkRun, multiple: int, pad: str = PAD_MODE) -> NetworkRun:
    """Wrap a ``(B, 1, L)`` network so that it takes any ``L``.

    The input is padded on both ends (``numpy.pad`` mode ``pad``) to the next multiple of
    ``multiple``, and the output cropped back to ``L`` points.
    """

    def run_padded(z: np.ndarray) -> np.ndarray:
        length = z.shape[-1]
        extra = -length % multiple
        left = extra // 2
        z = np.pad(z, ((0, 0), (0, 0), (left, extra - left)), mode=pad)
        return run(z)[..., left : left + length]

    return run_padded


def network_baselines(
    run: NetworkRun,
    grid: int,
    x: np.ndarray,
    y: np.ndarray,
    length_mode: str = LENGTH_MODES[0],
    multiple: int = 32,
    pad: str = PAD_MODE,
    batch_size: int = 1024,
) -> np.ndarray:
    """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x`` ``(L,)``.

    Parameters
    ----------
    run
        The network (:data:`NetworkRun`).
    grid
        The number of points the network was trained on.
    x, y
        The axis and spectra, checked (:func:`pipeline.spectra_io.check_spectra`); ``y`` may
        be one spectrum (L,).
    length_mode
        ``resample``: onto a uniform axis of ``grid`` points over ``x``'s range and back,
        unless ``x`` is one already. ``native``: at the spectrum's own number of points,
        padded to a multiple of ``multiple`` with ``numpy.pad`` mode ``pad`` and cropped; an
        axis that is not uniform is first resampled onto a uniform one of as many points.
    multiple, pad
        The length the network needs a multiple of, and the padding (``native`` only).
    batch_size
        Spectra per call of ``run``.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, L)``, in ``y``'s units: normalisation is inverted exactly.

    Raises
    ------
    ValueError
        For a ``length_mode`` not in :data:`LENGTH_MODES`.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if length_mode not in LENGTH_MODES:
        raise ValueError(f"unknown length mode {length_mode!r}; expected one of {LENGTH_MODES}")
    points = grid
    if length_mode == "native":
        run, points = padded(run, multiple, pad), x.size
    if x.size == points and uniform(x):
        return predict_baselines(run, y, batch_size)
    on = np.linspace(x[0], x[-1], points)
    return resample(on, predict_baselines(run, resample(x, y, on), batch_size), x)


def resample(x: np.ndarray, y: np.ndarray, new_x: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y`` from the increasing axis ``x`` to ``new_x``.

    ``new_x`` outside ``x``'s range takes the end values.
    """
    idx = np.clip(np.searchsorted(x, new_x) - 1, 0, len(x) - 2)
    w = np.clip((new_x - x[idx]) / (x[idx + 1] - x[idx]), 0.0, 1.0)
    return y[..., idx] * (1 - w) + y[..., idx + 1] * w


def uniform(x: np.ndarray) -> bool:
    """Whether the axis ``x`` has equal steps (to 1e-6 relative)."""
    step = np.diff(x)
    return bool(np.allclose(step, step[0], rtol=1e-6, atol=0))
