"""The training-time contract of the network: its units, and how spectra of any axis reach it.

Each model says how its input was normalised (``model.normalisation`` in ``params.yaml``, kept
in its checkpoint and its ONNX file's metadata; a model that does not say is ``minmax``) and
predicts the baseline in the linear units ``(baseline - low) / span`` of that normalisation
(:data:`NetworkRun`); :func:`denormalise` maps the prediction back to the user's intensity
units exactly.

- ``minmax``: ``low, span = min(y), max(y) - min(y)``; ``z = (y - low) / span`` in [0, 1].
  A band 300 times the background's range leaves the background 1/300 of the input, and a
  network's error of 0.3% of the input's range becomes the whole background's range.
- ``envelope``: ``low`` and ``span`` the minimum and range of a coarse lower envelope (the
  minima of 16 segments; :func:`envelope_scale`), so the background spans about [0, 1] however
  tall the bands; ``u = (y - low) / span`` and ``z = u`` up to a knee of 1, ``1 + asinh(u - 1)``
  above it (:func:`compress`), so the bands fit in a range of about 10. The network's target
  stays linear, ``(baseline - low) / span``, and inverts exactly.
  ``docs/normalisation.md`` measures both (``benchmarks/normalisation.py``).

Training, evaluation, export, ``correct``, the served model and fine-tuning all go through
:func:`predict_baselines`, and every spectrum that is not on the network's grid goes through
:func:`network_baselines`: the one inference path.

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
"""A network on normalised spectra: float32 ``(B, 1, L)`` -> baselines ``(B, 1, L)`` in the
linear normalised units (ONNX Runtime: :class:`pipeline.inference.OnnxBaseline`; PyTorch:
:func:`pipeline.checkpoint.torch_run`). It may carry a ``normalisation`` attribute (one of
:data:`NORMALISATIONS`), which the inference paths use when not told otherwise."""

NORMALISATIONS = ("minmax", "envelope")  # the default for models that do not say, first
SEGMENTS = 16  # envelope: the lower envelope's segments
KNEE = 1.0  # envelope: compressed above this many background ranges
REL_FLOOR = 1e-7  # least span, relative to the spectrum's largest magnitude (float32 epsilon)


def normalise(
    y: np.ndarray, normalisation: str = NORMALISATIONS[0]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's input for spectra ``y`` (last axis), and the scale its baseline is in.

    Parameters
    ----------
    y
        Spectra ``(..., L)`` in any intensity units.
    normalisation
        ``minmax``: ``z = (y - low) / span`` with ``low`` and ``span`` the minimum and range.
        ``envelope``: ``low`` and ``span`` the minimum and range of the coarse lower envelope
        (:func:`envelope_scale`), ``z = compress((y - low) / span)`` (:func:`compress`). In
        both, the network's baseline is in the linear units ``(baseline - low) / span``, which
        :func:`denormalise` inverts exactly. ``span`` is at least ``REL_FLOOR * max|y - low|``
        (and the smallest normal float64), so a constant spectrum divides by no zero and the
        result does not depend on the magnitude of ``y``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The input (float32, the shape of ``y``), ``low`` and ``span`` (float64 or ``y``'s
        dtype; the shape of ``y`` with a last axis of 1), in ``y``'s units.

    Raises
    ------
    ValueError
        For a ``normalisation`` not in :data:`NORMALISATIONS`.
    """
    y = np.asarray(y)
    if normalisation == "minmax":
        low = y.min(axis=-1, keepdims=True)
        span = y.max(axis=-1, keepdims=True) - low
    elif normalisation == "envelope":
        low, span = envelope_scale(y)
    else:
        raise ValueError(
            f"unknown normalisation {normalisation!r}; expected one of {NORMALISATIONS}"
        )
    floor = REL_FLOOR * np.abs(y - low).max(axis=-1, keepdims=True)
    tiny = np.finfo(np.result_type(span, np.float32)).tiny  # in span's dtype: minmax unchanged
    span = np.maximum(span, np.maximum(floor, tiny))
    z = (y - low) / span
    if normalisation == "envelope":
        z = compress(z)
    return z.astype(np.float32), low, span


def envelope_scale(y: np.ndarray, segments: int = SEGMENTS) -> tuple[np.ndarray, np.ndarray]:
    """``low`` and ``span`` ``(..., 1)`` of the coarse lower envelope of spectra ``(..., L)``.

    The axis is cut into ``min(segments, L)`` nearly equal segments and each one's minimum
    taken: the bands, which only rise, are left out unless one covers a whole segment.
    ``low`` is the least of those minima and ``span`` the second largest minus ``low`` (the
    largest, with fewer than 4 segments): a segment lying wholly under one band (a broad tall
    one, or its Lorentzian wings) is the largest and is dropped. Noise lowers every minimum by
    about two sigmas alike. On simulated spectra of 512 points (``benchmarks/normalisation.py``'s
    tall set) ``span`` is 0.44 to 1.2 times the true background's range for 96% of those whose
    bands are under 3 ranges tall, and a median 5.8 times it where they are over 30 (band-dense
    spectra of tall bands leave few band-free segments), against 30 to 1,000 times for minmax.
    """
    length = y.shape[-1]
    count = min(segments, length)
    edges = np.linspace(0, length, count + 1).astype(np.intp)[:-1]
    minima = np.sort(np.minimum.reduceat(y, edges, axis=-1), axis=-1)
    top = -2 if count >= 4 else -1
    return minima[..., :1], minima[..., top : top + 1 or None] - minima[..., :1]


def compress(u: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """``u`` up to ``knee``, ``knee + asinh(u - knee)`` above: bands tall and background whole.

    The identity and its first two derivatives are continuous at the knee (asinh's slope is 1
    and its curvature 0 at 0), and above it the growth is logarithmic: a band 300 background
    ranges tall reaches 7.4, one 10,000 tall 10.9. The asinh stretch is that of Lupton, Gunn &
    Szalay, AJ 118, 1406 (1999), for data of large dynamic range. It is only ever applied to the
    network's input: the baseline stays in the linear units that :func:`denormalise` inverts.
    """
    return np.where(u > knee, knee + np.arcsinh(np.maximum(u - knee, 0)), u)


def denormalise(z: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Invert the baseline's scaling of :func:`normalise`: ``z * span + low``, in ``y``'s units."""
    return z * span + low


def predict_baselines(
    run: NetworkRun,
    y: np.ndarray,
    batch_size: int = 1024,
    normalisation: str | None = None,
    channels: bool = False,
) -> np.ndarray:
    """Baselines of spectra ``y`` (N, L) in their own units, from a normalised-units network.

    ``y`` is normalised (:func:`normalise` with ``normalisation``: by default the
    ``normalisation`` attribute of ``run``, as :func:`pipeline.checkpoint.torch_run` sets it,
    else ``minmax``), run through ``run`` in batches of ``batch_size``, and the output
    denormalised: float64 (N, L). ``channels``: every output curve of a network of ``C``
    (each a baseline in the linear normalised units, denormalised alike: an uncertainty
    model's baseline + sigma, :mod:`pipeline.uncertainty`), float64 ``(N, C, L)``.
    """
    normalisation = normalisation or getattr(run, "normalisation", NORMALISATIONS[0])
    y = np.asarray(y)
    out = np.empty((len(y), 1, y.shape[-1]), dtype=np.float64)
    for start in range(0, len(y), batch_size):
        z, low, span = normalise(y[start : start + batch_size], normalisation)
        pred = np.asarray(run(z[:, None, :])).astype(np.float64)  # (b, C, L)
        if pred.shape[1] != out.shape[1]:
            out = np.empty((len(y), pred.shape[1], y.shape[-1]), dtype=np.float64)
        out[start : start + batch_size] = denormalise(pred, low[:, None], span[:, None])
    return out if channels else out[:, 0]


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
    normalisation: str | None = None,
    channels: bool = False,
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
    normalisation
        The network's (:data:`NORMALISATIONS`); by default ``run``'s ``normalisation``
        attribute, else ``minmax`` (:func:`predict_baselines`).
    channels
        Every output curve of the network, ``(N, C, L)`` (:func:`predict_baselines`), each
        normalised, padded and resampled as the baseline.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, L)`` (``(N, C, L)`` with ``channels``), in ``y``'s units: normalisation
        is inverted exactly.

    Raises
    ------
    ValueError
        For a ``length_mode`` not in :data:`LENGTH_MODES`.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if length_mode not in LENGTH_MODES:
        raise ValueError(f"unknown length mode {length_mode!r}; expected one of {LENGTH_MODES}")
    normalisation = normalisation or getattr(run, "normalisation", NORMALISATIONS[0])
    points = grid
    if length_mode == "native":
        run, points = padded(run, multiple, pad), x.size
    if x.size == points and uniform(x):
        return predict_baselines(run, y, batch_size, normalisation, channels)
    on = np.linspace(x[0], x[-1], points)
    fitted = predict_baselines(run, resample(x, y, on), batch_size, normalisation, channels)
    return resample(on, fitted, x)


def resample(x: np.ndarray, y: np.ndarray, new_x: np.ndarray, block: int = 1 << 18) -> np.ndarray:
    """Linear interpolation of every row of ``y`` from the increasing axis ``x`` to ``new_x``.

    ``new_x`` outside ``x``'s range takes the end values. A long ``new_x`` is taken in blocks
    of ``block`` points, so the temporaries stay small (a 10-million-point spectrum's baseline
    back from the network's grid); the values are the same.
    """
    if new_x.size > block:
        out = np.empty((*np.shape(y)[:-1], new_x.size), dtype=np.result_type(y, new_x, 1.0))
        for start in range(0, new_x.size, block):
            out[..., start : start + block] = resample(x, y, new_x[start : start + block], block)
        return out
    idx = np.clip(np.searchsorted(x, new_x) - 1, 0, len(x) - 2)
    w = np.clip((new_x - x[idx]) / (x[idx + 1] - x[idx]), 0.0, 1.0)
    return y[..., idx] * (1 - w) + y[..., idx + 1] * w


def uniform(x: np.ndarray) -> bool:
    """Whether the axis ``x`` has equal steps (to 1e-6 relative)."""
    step = np.diff(x)
    return bool(np.allclose(step, step[0], rtol=1e-6, atol=0))
