"""The classical stage on correct-map's engine: a large set's fits as tasks of a Dask cluster
(a real LocalCluster of worker processes, and `dask scheduler` + `dask worker` reached by
address), with the same baselines as the process pool; an unreachable scheduler is one line."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pipeline.cluster import cluster
from pipeline.config import parse_params
from pipeline.simulate import simulate
from pipeline.stages import classical

from .conftest import ROOT, tiny_params
from .test_maps_scheduler import dask_processes, free_port


@pytest.fixture(scope="module")
def sets():
    params = parse_params(tiny_params())
    return params, simulate(params.simulate, 24, seed=3), simulate(params.simulate, 40, seed=4)


def with_classical(params, **over):
    return dataclasses.replace(params.classical, **over)


def test_engine_is_the_pool_below_dask_from_and_dask_from_there(sets):
    params, val, test = sets
    fits = classical.largest_call(params.classical, val, test)
    assert fits == max(min(params.classical.n_val_grid, 24) * 2, 40)  # 2-point lam grids
    with classical.engine(with_classical(params, dask_from=0), 10**9) as (client, where):
        assert client is None and "process pool" in where  # 0: never
    with classical.engine(with_classical(params, dask_from=fits + 1), fits) as (client, _):
        assert client is None
    with classical.engine(with_classical(params, dask_from=fits, n_jobs=2), fits) as (client, w):
        assert w == "a local Dask cluster of 2 worker processes, one thread each"
        assert len(client.scheduler_info()["workers"]) == 2


def test_fits_on_a_local_dask_cluster_equal_the_process_pool(sets):
    params, val, test = sets
    pool, pool_report = classical.run(params.classical, val, test)
    with cluster(None, 2) as (client, _):
        dask, dask_report = classical.run(params.classical, val, test, client)
    for name in pool:
        assert np.array_equal(pool[name], dask[name])  # same blocks, same function: same bits
        assert pool_report[name]["grid"] == dask_report[name]["grid"]
        assert pool_report[name]["log10_lam"] == dask_report[name]["log10_lam"]


def stage(tmp_path, sets, **classical_over):
    params, val, test = sets
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    val.save(data / "val.npz")
    test.save(data / "test.npz")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(classical=classical_over)))
    argv = ["--data", "data", "--out", "fits.npz", "--report", "report.json"]
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.classical", *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_stage_reaches_a_scheduler_and_worker_by_address(tmp_path, sets):
    pooled = stage(tmp_path / "pool", sets)
    assert pooled.returncode == 0, pooled.stderr
    assert "fitting on a process pool" in pooled.stdout
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with dask_processes(tmp_path, env, workers=2) as address:
        done = stage(tmp_path / "remote", sets, scheduler=address)
    assert done.returncode == 0, done.stderr
    assert f"fitting on the Dask cluster at {address}" in done.stdout
    ours, theirs = np.load(tmp_path / "remote/fits.npz"), np.load(tmp_path / "pool/fits.npz")
    for name in theirs.files:
        assert np.array_equal(ours[name], theirs[name])


def test_an_unreachable_scheduler_is_one_line_before_any_fit(tmp_path, sets):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    done = stage(tmp_path, sets, scheduler=address)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "classical" in lines[0], done.stderr
    assert not (tmp_path / "fits.npz").exists()
