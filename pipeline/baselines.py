"""Classical baselines, arPLS and asPLS, from pybaselines (not re-implemented).

Every baseline method in the project, classical or neural, has one signature:
``method(x, y) -> baseline``. For sets of spectra, :func:`fit_many` spreads the fits over all
cores, one :class:`pybaselines.Baseline` object per worker and chunk.

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

import numpy as np
from pybaselines import Baseline

from pipeline.config import ClassicalMethodParams

METHODS = ("arpls", "aspls")
BaselineMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]


def classical(name: str, lam: float, settings: ClassicalMethodParams) -> BaselineMethod:
    """The ``method(x, y) -> baseline`` function of arPLS or asPLS at a given ``lam``."""
    if name not in METHODS:
        raise ValueError(f"unknown classical method {name!r}; expected one of {METHODS}")

    def method(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fit_block(name, lam, settings.max_iter, settings.tol, x, np.atleast_2d(y))[0]

    method.__name__ = name
    return method


def fit_block(
    name: str, lam: float, max_iter: int, tol: float, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Fit every spectrum (row) of ``y`` on the axis ``x``, reusing one ``Baseline`` object."""
    fitter = Baseline(x, check_finite=False)
    fit = getattr(fitter, name)
    out = np.empty(y.shape, dtype=np.float64)
    for i, spectrum in enumerate(y):
        out[i] = fit(spectrum, lam=lam, max_iter=max_iter, tol=tol)[0]
    return out


def fit_many(
    name: str,
    lams: Sequence[float],
    settings: ClassicalMethodParams,
    y: np.ndarray,
    x: np.ndarray | None = None,
    n_jobs: int = 0,
    chunk: int = 32,
) -> list[np.ndarray]:
    """Baselines of every spectrum of ``y`` (N, L) at each ``lam``: one array per ``lam``.

    The fits are spread over ``n_jobs`` processes (0: all cores), one pool for all of them.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(y.shape[1], dtype=np.float64) if x is None else x
    jobs = [(lam, y[i : i + chunk]) for lam in lams for i in range(0, len(y), chunk)]
    work = partial(_fit_job, name, settings.max_iter, settings.tol, x)
    workers = min(n_jobs or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        blocks = [work(job) for job in jobs]
    else:
        # spawn, not fork: the parent may hold OpenMP threads (torch) that a fork would break
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, ctx, initializer=_one_thread) as pool:
            blocks = list(pool.map(work, jobs))
    per_lam = len(blocks) // len(lams)
    return [np.concatenate(blocks[i * per_lam : (i + 1) * per_lam]) for i in range(len(lams))]


def _fit_job(name, max_iter, tol, x, job):
    lam, y = job
    return fit_block(name, lam, max_iter, tol, x, y)


def _one_thread() -> None:
    """Workers each take one core; keep BLAS from oversubscribing."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
