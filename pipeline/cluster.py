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


@contextlib.contextmanager
def cluster(scheduler: str | None = None, workers: int = 0) -> Iterator[tuple[Any, str]]:
    """A Dask client and one line naming the cluster: ``scheduler``'s, else a local one.

    Local: a :class:`distributed.LocalCluster` of ``workers`` processes (0: one per core),
    one thread each, no dashboard. An existing cluster must have a worker within
    :data:`WAIT_FOR_WORKERS_S` seconds.

    Raises
    ------
    OSError
        The scheduler cannot be reached in 10 s; ``TimeoutError`` (an ``OSError``): it has no
        worker.
    """
    import logging
    import os

    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout="10s") as client:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)  # none: TimeoutError, one line
            n = len(client.scheduler_info()["workers"])
            yield client, f"the Dask cluster at {scheduler} ({n} workers)"
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as local,
        Client(local) as client,
    ):
        yield client, f"a local Dask cluster of {n} worker processes, one thread each"
