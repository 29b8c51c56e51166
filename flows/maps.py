"""The map-correction flow: ``correct-map``'s chunks as Prefect tasks on a Dask cluster.

:func:`map_flow` (flow ``raman-map-correction``) plans the run once, as ``raman-baseline
correct-map`` does (:func:`pipeline.maps.plan` resolves the method and the model;
:func:`pipeline.map_io.prepare_output` creates or reopens the output store; the chunks marked
done there are skipped), then submits one Prefect task per chunk still to do through
prefect-dask's :class:`~prefect_dask.DaskTaskRunner`: a local
:class:`distributed.LocalCluster` (one single-threaded worker process per core, or
``workers``), or an existing scheduler by address. Each task reads its chunk and calls the
engine's per-chunk function, :func:`pipeline.maps.correct_block`, which writes the chunk into
the store and marks it done: a failed or cancelled run resumes where it stopped.

The run report (:func:`map_report`: chunks run and skipped, spectra, spectra/s, the model and
its version, the method) is published as the markdown artifact ``raman-map-correction-report``
and written as JSON beside the output (``OUT.zarr.report.json``, or ``report_path``).

Like the other flows, importing this module loads neither the model nor ONNX Runtime: the
engine is imported when a run starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect_dask import DaskTaskRunner

FLOW = "raman-map-correction"
REPORT_KEY = "raman-map-correction-report"


def task_runner(scheduler: str | None = None, workers: int = 0) -> DaskTaskRunner:
    """The Dask task runner of a run: the cluster at ``scheduler``, else a local one.

    Local: a :class:`distributed.LocalCluster` of ``workers`` processes (0: one per core), one
    thread each (each runs one ONNX Runtime stream), as ``correct-map``'s; its dashboard on a
    free port (DaskTaskRunner logs the link in the flow run's log).
    """
    if scheduler:
        return DaskTaskRunner(address=scheduler, client_kwargs={"timeout": "10s"})
    n = workers or os.cpu_count() or 1
    local = {
        "n_workers": n,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",  # None still takes :8787, and warns when it is taken
        "silence_logs": logging.CRITICAL,
    }
    return DaskTaskRunner(cluster_kwargs=local)


@task(
    task_run_name="chunk-{index}",
    cache_policy=NO_CACHE,  # the store's done markers say what is done, not Prefect's cache
    retries=1,  # a chunk rewrites its whole region: a retry after a lost worker is safe
    retry_delay_seconds=5,
)
def correct_chunk(source, index: tuple[int, ...], chunks, x, recipe, out: str) -> tuple:
    """Read chunk ``index`` of the map ``source`` and correct it into ``out`` (on a worker).

    ``source`` is a :class:`pipeline.map_io.MapInput`, ``chunks`` its chunk shape, ``x`` the
    stored axis (L,), ``recipe`` a :class:`pipeline.maps.Recipe`. Only this chunk is read
    (Dask's synchronous scheduler, inside the task). Returns
    :func:`pipeline.maps.correct_block`'s ``(index, spectra, first dead, masked, dead)``.
    """
    from pipeline import maps

    block = source.lazy(chunks).blocks[tuple(index) + (0,)].compute(scheduler="sync")
    return maps.correct_block(block, tuple(index), x, recipe, out)


@flow(name=FLOW, task_runner=task_runner())
def map_flow(
    input_path: str,
    output: str,
    method: str | None = None,
    model: str | None = None,
    store: str | None = None,
    chunk_spectra: int | None = None,
    scheduler: str | None = None,
    workers: int = 0,
    dataset: str = "intensity",
    axis_dataset: str = "wavenumber",
    axis: str | None = None,
    overwrite: bool = False,
    report_path: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Correct a map into a Zarr store chunk by chunk on Dask; return the run report.

    Parameters
    ----------
    input_path, output
        The map (Zarr store, HDF5 file or ``.npy`` with ``axis``) and the output ``.zarr``,
        as ``correct-map``'s INPUT and ``-o``.
    method, model, store
        As ``correct``'s ``--method`` (default: ``correct``'s), ``--model`` and ``--store``.
    chunk_spectra
        Spectra per chunk (default :data:`pipeline.maps.SPECTRA_PER_CHUNK`).
    scheduler
        ``tcp://HOST:PORT`` of a running Dask scheduler; None: a local cluster.
    workers
        Local cluster only: worker processes (0: one per core).
    dataset, axis_dataset, axis
        As ``correct-map``'s ``--dataset``, ``--axis-dataset`` and ``--axis``.
    overwrite
        Replace an output made from another map, method or model.
    report_path
        The JSON report (default: ``<output>.report.json``).
    workspace
        The folder relative paths, ``params.yaml`` and ``./mlflow.db`` are taken from
        (default: the current one).

    Raises
    ------
    MapInputError, RegistryError, ModelLoadError, CorrectionError
        Bad input or model, before any chunk runs.
    MapError
        A chunk failed twice; the chunks written stay done.
    """
    here = contextlib.chdir(workspace) if workspace else contextlib.nullcontext()
    with here:
        from pipeline import map_io  # the engine: loaded by a run, not by an import

        axis_file = Path(axis) if axis else None
        source, x = map_io.open_input(Path(input_path), dataset, axis_dataset, axis_file)
        plan = _plan(source, x, output, method, model, store, chunk_spectra, overwrite)
        counts, where = _run_chunks(plan, scheduler, workers)
        report = map_report(plan, counts, where)
        path = Path(report_path or f"{output}.report.json").resolve()
        path.write_text(json.dumps(report, indent=2) + "\n")
    create_markdown_artifact(
        key=REPORT_KEY, markdown=report_markdown(report), description="Map correction run"
    )
    return report


def _plan(source, x, output, method, model, store, chunk_spectra, overwrite) -> dict[str, Any]:
    """Everything the chunks need, made once: the model resolved, the output ready."""
    import numpy as np

    from pipeline import correct, map_io, maps
    from pipeline.config import load_params

    params = load_params(Path("params.yaml")) if Path("params.yaml").is_file() else None
    recipe, attrs, _ = maps.plan(method or correct.DEFAULT_METHOD, model, store, params)
    chunks = map_io.spectra_chunks(source.shape, chunk_spectra or maps.SPECTRA_PER_CHUNK)
    group, _ = map_io.prepare_output(Path(output), source, x, chunks, attrs, overwrite)
    done = np.asarray(group[map_io.DONE][...])
    todo = [index for index in np.ndindex(done.shape) if not done[index]]
    out = str(Path(output).resolve())
    return {
        "source": source,
        "x": x,
        "recipe": recipe,
        "attrs": attrs,
        "chunks": chunks,
        "out": out,
        "total": done.size,
        "todo": todo,
    }


def _run_chunks(plan: dict[str, Any], scheduler: str | None, workers: int):
    """One task per chunk to do, on the cluster; ``(counts, the cluster in words)``."""
    from pipeline import maps
    from pipeline.cluster import WAIT_FOR_WORKERS_S
    from pipeline.errors import one_line

    counts = {"ran": 0, "spectra": 0, "dead": 0, "masked_pixels": 0, "seconds": 0.0}
    counts["first_dead"] = []
    if not plan["todo"]:
        return counts, "none started: every chunk was done"
    with contextlib.ExitStack() as stack:
        if scheduler or workers:
            runner = stack.enter_context(task_runner(scheduler, workers))
        else:
            runner = FlowRunContext.get().task_runner  # the flow's own: one worker per core
        client = runner.client  # the cluster starts here, before the clock
        if scheduler:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
        where = _where(client, scheduler)
        started = time.perf_counter()
        keep = {k: plan[k] for k in ("source", "chunks", "x", "recipe", "out")}
        futures = {
            runner.submit(correct_chunk, {"index": index, **keep}): index for index in plan["todo"]
        }
        for future in as_completed(list(futures)):
            try:
                _, n, dead_at, masked, dead = future.result()
            except Exception as exc:
                raise maps.MapError(f"chunk {futures[future]} failed: {one_line(exc)}") from exc
            counts["ran"] += 1
            counts["spectra"] += n
            counts["dead"] += dead
            counts["masked_pixels"] += masked
            counts["first_dead"] = (counts["first_dead"] + [list(i) for i in dead_at])[:5]
        counts["seconds"] = time.perf_counter() - started
    return counts, where


def _where(client, scheduler: str | None) -> str:
    n = len(client.scheduler_info()["workers"])
    if scheduler:
        return f"the Dask cluster at {scheduler} ({n} workers)"
    return f"a local Dask cluster of {n} worker processes, one thread each"


def map_report(plan: dict[str, Any], counts: dict[str, Any], where: str) -> dict[str, Any]:
    """The run report: what was corrected, with what, how much of it and how fast.

    Keys: ``input``, ``shape``, ``output``, ``method``, ``how``, ``model`` (the model URI as
    the output's attributes hold it: ``shipped``, ``models:/resunet1d/<version>`` or an ONNX
    path; None for a classical method), ``model_version``, ``model_store`` (the registry
    read, if any), ``package_version``, ``cluster``, ``chunk_shape``, ``chunks``,
    ``chunks_run``, ``chunks_skipped`` (done by an earlier run), ``spectra`` (corrected by this
    run), ``dead_spectra``, ``first_dead``, ``masked_pixels``, ``seconds`` (the chunks'
    wall time, cluster start-up excluded), ``spectra_per_s``, ``flow_run``, ``finished`` (UTC).
    """
    source, attrs = plan["source"], plan["attrs"]
    seconds = counts["seconds"]
    context = FlowRunContext.get()
    return {
        "input": str(source.path),
        "shape": list(source.shape),
        "output": plan["out"],
        "method": attrs["method"],
        "how": attrs["how"],
        "model": attrs["model"],
        "model_version": attrs["model_version"],
        "model_store": plan["recipe"].uri,
        "package_version": attrs["package_version"],
        "cluster": where,
        "chunk_shape": list(plan["chunks"]),
        "chunks": plan["total"],
        "chunks_run": counts["ran"],
        "chunks_skipped": plan["total"] - len(plan["todo"]),
        "spectra": counts["spectra"],
        "dead_spectra": counts["dead"],
        "first_dead": counts["first_dead"],
        "masked_pixels": counts["masked_pixels"],
        "seconds": round(seconds, 3),
        "spectra_per_s": round(counts["spectra"] / seconds, 1) if seconds else 0.0,
        "flow_run": context.flow_run.name if context and context.flow_run else None,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The report as the markdown of the run's artifact."""
    model = report["model"] or "none (a classical method)"
    version = report["model_version"] or "n/a"
    lines = [
        f"# Map correction: {report['chunks_run']} of {report['chunks']} chunks run, "
        f"{report['chunks_skipped']} skipped (done before)",
        "",
        f"`{report['input']}` {tuple(report['shape'])} → `{report['output']}`",
        "",
        "| | |",
        "|---|---|",
        f"| spectra corrected | {report['spectra']} |",
        f"| time (chunks) | {report['seconds']:.1f} s |",
        f"| spectra/s | {report['spectra_per_s']:.0f} |",
        f"| method | `{report['method']}`: {report['how']} |",
        f"| model | `{model}` |",
        f"| model version | {version} |",
        f"| registry | {report['model_store'] or 'none'} |",
        f"| chunk shape | {tuple(report['chunk_shape'])} |",
        f"| cluster | {report['cluster']} |",
        f"| dead spectra (left NaN) | {report['dead_spectra']} |",
        f"| masked pixels (left out of the fit) | {report['masked_pixels']} |",
        f"| raman-baseline | {report['package_version']} |",
    ]
    return "\n".join(lines) + "\n"
