"""Baseline methods: the one signature, and arPLS and asPLS from pybaselines (not re-implemented).

Every baseline method in the project, classical or neural, is a :data:`BaselineFn`:
``method(x, y) -> baseline``. For sets of spectra, :func:`fit_many` spreads the fits over all
cores, one :class:`pybaselines.Baseline` object per worker and chunk. pybaselines is imported
only when a fit runs, so importing this module is light.

``lam`` is chosen on the validation set at ``simulate.length`` points; a Whittaker smoother
with a second-order difference penalty smooths over about ``lam ** (1/4)`` points, so for a
spectrum of ``L`` points :func:`classical_baselines` scales ``lam`` by
``(L / simulate.length) ** 4`` (:func:`scaled_lam`): the same smoothness relative to the
spectrum's window.

References
----------
Baek, S.-J., et al. Baseline correction using asymmetrically reweighted penalized least
squares smoothing. Analyst, 2015, 140, 250-257 (arPLS).

Zhang, F., et al. Baseline correction for infrared spectra using adaptive smoothness
parameter penalized least squares method. Spectroscopy Letters, 2020, 53, 222-233 (asPLS).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from pipeline.config import ClassicalMethodParams
from pipeline.long_spectra import thinned

METHODS = ("arpls", "aspls")
REFINED_METHODS = ("none", *METHODS)  # refined's classical part; "none": the network alone

BaselineFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A baseline method, classical or neural: ``method(x, y) -> baseline``.

``x`` is the increasing axis (L,), float64 (Raman shift, or pixel index); ``y`` the spectra
(N, L) in any intensity units. The answer is the baselines (N, L) in ``y``'s units, float64;
``y`` is not modified. The classical methods of :func:`classical` also take one spectrum (L,)
and answer (L,).
"""


def classical(name: str, lam: float, settings: ClassicalMethodParams) -> BaselineFn:
    """ArPLS or asPLS at a given ``lam`` as a :data:`BaselineFn`; the answer has ``y``'s shape.

    Raises
    ------
    ValueError
        For a ``name`` not in :data:`METHODS`.
    """
    if name not in METHODS:
        raise ValueError(f"unknown classical method {name!r}; expected one of {METHODS}")

    def method(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        fitted = fit_block(name, lam, settings.max_iter, settings.tol, x, np.atleast_2d(y))
        return fitted.reshape(np.shape(y))

    method.__name__ = name
    return method


def scaled_lam(lam: float, length: int, reference_length: int) -> float:
    """``lam`` chosen at ``reference_length`` points, for a spectrum of ``length`` points.

    A second-order Whittaker penalty smooths over about ``lam ** (1/4)`` points: keeping the
    same smoothness relative to the window scales ``lam`` by ``(length / reference) ** 4``.
    """
    return lam * (length / reference_length) ** 4


def classical_baselines(
    name: str, log10_lam: float, settings: ClassicalMethodParams, reference_length: int
) -> BaselineFn:
    """The classical method ``name`` at ``10 ** log10_lam``, scaled to each spectrum's length.

    ``log10_lam`` was chosen on spectra of ``reference_length`` points (:func:`scaled_lam`).
    The answer is (N, L) for spectra (N, L) or one spectrum (L,). Spectra longer than
    :data:`pipeline.long_spectra.MAX_FIT_POINTS` are fitted on that many of their points and
    interpolated back (:func:`pipeline.long_spectra.thinned`): in bounded memory, with a
    solvable ``lam``.
    """

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = np.atleast_2d(y)
        lam = scaled_lam(10**log10_lam, y.shape[1], reference_length)
        return classical(name, lam, settings)(x, y)

    return thinned(estimate)


def refined(network: BaselineFn, classical: BaselineFn) -> BaselineFn:
    """The network's baseline plus the classical method's baseline of what the network left.

    The classical fit of the residual ``y - network`` catches a smooth error of the network
    (an offset, a tilt) with the classical method's asymmetric weighting, while the shape
    under the bands stays the network's.
    """

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        first = network(x, y)
        return first + classical(x, y - first)

    return estimate


def refined_baselines(
    network: BaselineFn,
    method: str,
    log10_lam: float | None,
    settings: ClassicalMethodParams | None,
    reference_length: int,
) -> BaselineFn:
    """``refined`` with its classical part as chosen on validation, or the network alone.

    ``method`` is one of :data:`REFINED_METHODS`: ``"none"`` (the choice when no correction
    of the network's residual lowers the validation error) answers ``network`` itself;
    ``arpls`` or ``aspls`` at ``10 ** log10_lam`` (chosen at ``reference_length`` points,
    :func:`classical_baselines`) makes :func:`refined`.

    Raises
    ------
    ValueError
        For a ``method`` not in :data:`REFINED_METHODS`, or a classical one without
        ``log10_lam`` and ``settings``.
    """
    if method not in REFINED_METHODS:
        raise ValueError(f"unknown refined method {method!r}; expected one of {REFINED_METHODS}")
    if method == "none":
        return network
    if log10_lam is None or settings is None:
        raise ValueError(f"refined with {method} needs its log10_lam and settings")
    return refined(network, classical_baselines(method, log10_lam, settings, reference_length))


def fit_block(
    name: str, lam: float, max_iter: int, tol: float, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Fit every spectrum (row) of ``y`` (N, L) on the axis ``x``, reusing one ``Baseline``.

    Each spectrum is fitted divided by :func:`magnitude` and its baseline multiplied back:
    pybaselines squares the residual, which overflows for intensities beyond about 1e154 (a
    spectrum times 1e+297 had no baseline). A power of two scales floats exactly, so spectra
    that differ by one get the same baseline to the last bit, times that power.
    """
    from pybaselines import Baseline  # imported when a fit runs: importing this module is light

    fitter = Baseline(x, check_finite=False)
    fit = getattr(fitter, name)
    out = np.empty(y.shape, dtype=np.float64)
    for i, spectrum in enumerate(y):
        scale = magnitude(spectrum)
        out[i] = fit(spectrum / scale, lam=lam, max_iter=max_iter, tol=tol)[0] * scale
    return out


def magnitude(y: np.ndarray) -> float:
    """The power of two ``2 ** e`` with ``max|y| / 2 ** e`` in [0.5, 1): 1 for zeros or NaN.

    Dividing by it changes no digit of ``y`` (``numpy.frexp``), only the exponent.
    """
    return float(np.ldexp(1.0, np.frexp(np.max(np.abs(y)))[1]))


def fit_many(
    name: str,
    lams: Sequence[float],
    settings: ClassicalMethodParams,
    y: np.ndarray,
    x: np.ndarray | None = None,
    n_jobs: int = 0,
    chunk: int = 32,
    client: Any = None,
) -> list[np.ndarray]:
    """Baselines of every spectrum of ``y`` (N, L) at each ``lam``: one array per ``lam``.

    The spectra are cut into blocks of ``chunk``, each fitted by :func:`fit_block`. The blocks
    are spread over ``n_jobs`` processes (0: all cores), one pool for all of them, or, with a
    Dask ``client`` (:func:`pipeline.cluster.cluster`, the engine of ``correct-map``), run as
    that cluster's tasks: the same blocks through the same function, so the same numbers.

    Parameters
    ----------
    name
        ``"arpls"`` or ``"aspls"`` (pybaselines).
    lams
        The ``lam`` values; every spectrum is fitted at each.
    settings
        ``max_iter`` and ``tol`` of the method.
    y
        Spectra ``(N, L)``; ``x`` their axis ``(L,)`` (default: point indices).
    n_jobs, chunk, client
        Processes of the pool (0: all cores; 1: in this process), spectra per block (at least
        :data:`DASK_CHUNK` on Dask), and a ``distributed.Client`` to run the blocks on
        instead of the pool.

    Returns
    -------
    list of numpy.ndarray
        One ``(N, L)`` float64 array of baselines per ``lam``, in the order of ``lams``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(y.shape[1], dtype=np.float64) if x is None else x
    if client is not None:
        blocks = _on_dask(client, name, lams, settings, x, y, max(chunk, DASK_CHUNK))
    else:
        blocks = _on_pool(name, lams, settings, x, y, chunk, n_jobs)
    per_lam = len(blocks) // len(lams)
    return [np.concatenate(blocks[i * per_lam : (i + 1) * per_lam]) for i in range(len(lams))]


def _on_pool(name, lams, settings, x, y, chunk, n_jobs) -> list[np.ndarray]:
    """:func:`fit_block` of every block at every ``lam`` in ``n_jobs`` processes, in order."""
    jobs = [(lam, y[i : i + chunk]) for lam in lams for i in range(0, len(y), chunk)]
    work = partial(_fit_job, name, settings.max_iter, settings.tol, x)
    workers = min(n_jobs or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        return [work(job) for job in jobs]
    # spawn, not fork: the parent may hold OpenMP threads (torch) that a fork would break
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, ctx, initializer=_one_thread) as pool:
        return list(pool.map(work, jobs))


# spectra per Dask task at least: fewer, larger tasks than the pool's, as Dask's per-task cost
# is about a millisecond; each spectrum is fitted alone, so the blocks change no baseline
DASK_CHUNK = 512


def _on_dask(client, name, lams, settings, x, y, chunk) -> list[np.ndarray]:
    """:func:`fit_block` of every block at every ``lam`` as tasks; blocks in ``jobs`` order.

    The axis and the blocks are scattered to the workers first (each block once, whatever the
    number of ``lam`` values), so the task graph carries references, not the spectra.
    """
    # hash=False: keys of their own. Content keys are shared with an earlier call's equal data,
    # whose release as its futures go lost this call's ("lost dependencies")
    axis = client.scatter(x, broadcast=True, hash=False)
    blocks = client.scatter([y[i : i + chunk] for i in range(0, len(y), chunk)], hash=False)
    tasks = [
        client.submit(fit_block, name, lam, settings.max_iter, settings.tol, axis, b, pure=False)
        for lam in lams
        for b in blocks
    ]
    return client.gather(tasks)


def _fit_job(name, max_iter, tol, x, job):
    lam, y = job
    return fit_block(name, lam, max_iter, tol, x, y)


def _one_thread() -> None:
    """Workers each take one core; keep BLAS from oversubscribing."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
