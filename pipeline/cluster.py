"""The Dask cluster the scale-out paths run on: an existing one by address, else a local one.

``correct-map`` (:mod:`pipeline.maps`) and the ``classical`` stage's large sets
(:func:`pipeline.baselines.fit_many` with a client) take their client from :func:`cluster`.
Dask's ``distributed`` is imported when a cluster is asked for, never at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

WAIT_FOR_WORKERS_S = 60  # an existing cluster with no worker: how long before giving up


class SchedulerAddressError(ValueError):
    """A scheduler address Dask cannot use (no scheme, an unknown one, no port)."""


def check_address(address: str) -> str:
    """``address`` if Dask can reach a scheduler by it (``tcp://HOST:PORT``), else an error.

    Raises
    ------
    SchedulerAddressError
        One line naming the address and what is wrong, before any connection or output.
    """
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address, strict=True)
        if scheme not in registry.backends:
            raise ValueError(f"unknown scheme {scheme}://")
        if scheme != "inproc":
            parse_host_port(location)
    except ValueError as exc:
        reason = str(exc).split(". ")[0].lower()
        raise SchedulerAddressError(
            f"{address!r}: not a Dask scheduler address ({reason}); expected tcp://HOST:PORT"
        ) from None
    return address


@contextlib.contextmanager
def cluster(scheduler: str | None = None, workers: int = 0) -> Iterator[tuple[Any, str]]:
    """A Dask client and one line naming the cluster: ``scheduler``'s, else a local one.

    Local: a :class:`distributed.LocalCluster` of ``workers`` processes (0: one per core),
    one thread each, no dashboard. An existing cluster must have a worker within
    :data:`WAIT_FOR_WORKERS_S` seconds.

    Raises
    ------
    SchedulerAddressError
        ``scheduler`` is not an address (:func:`check_address`).
    OSError
        The scheduler cannot be reached in 10 s; ``TimeoutError`` (an ``OSError``): it has no
        worker.
    """
    import logging
    import os

    from distributed import Client, LocalCluster

    if scheduler:
        with Client(check_address(scheduler), timeout="10s") as client:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)  # none: TimeoutError, one line
            n = len(client.scheduler_info()["workers"])
            yield client, f"the Dask cluster at {scheduler} ({n} workers)"
        return
    n = workers or os.cpu_count() or 1
    with _deaf_to_ctrl_c():  # the workers are started with Ctrl-C ignored: they inherit that
        local = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # no dashboard, and the scheduler's HTTP server (health, metrics) on a free port:
            # on 8787, its default, a second run at once warned "Port 8787 is already in use"
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,
        )
    with local, Client(local) as client:
        yield client, f"a local Dask cluster of {n} worker processes, one thread each"


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """Ignore SIGINT while worker processes are started, then restore this process's handler.

    Ctrl-C reaches every process of the terminal's foreground group. The workers inherit the
    ignored SIGINT (an ignored signal stays ignored across exec, and Python installs its
    KeyboardInterrupt handler only over the default one), so only this process is
    interrupted: it stops the run in one line and closes the cluster, which stops the
    workers, instead of each worker printing its own traceback.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal is main-only
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
