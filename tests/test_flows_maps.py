"""The map-correction flow (flows/maps.py) for real under a temporary Prefect API: its own
DaskTaskRunner LocalCluster of worker processes, and an existing cluster by address, both equal
to correct-map's output; the report (artifact and JSON); a rerun that skips every chunk; a bad
input; its deployment. (test_flows.py checks that
flows.serve, and so flows.maps, imports neither the model nor ONNX Runtime.)"""

import json

import numpy as np
import pytest
import zarr
from distributed import LocalCluster
from prefect import get_client

import flows.serve
from flows.maps import FLOW, REPORT_KEY, map_flow
from pipeline import cli

from .conftest import ROOT
from .test_flows import _artifacts, prefect_harness  # noqa: F401  (the session's Prefect API)

ROWS, COLS, POINTS = 4, 5, 512
CHUNK = 5  # spectra per chunk: one row, so 4 chunks


def make_map(path):
    """A 4 x 5 x 512 float32 Zarr map: decaying fluorescence under two bands, noise."""
    rng = np.random.default_rng(14)
    x = np.linspace(200.0, 3200.0, POINTS)
    t = (x - x[0]) / (x[-1] - x[0])
    amp = rng.uniform(200, 2000, (ROWS, COLS, 1))
    band = 300 * np.exp(-(((x - 1000) / 8) ** 2)) + 150 * np.exp(-(((x - 1600) / 12) ** 2))
    y = (1000 + amp * np.exp(-2 * t) + band + rng.normal(0, 5, (ROWS, COLS, POINTS))).astype(
        np.float32
    )
    group = zarr.open_group(path, mode="w")
    group.create_array("wavenumber", data=x)
    group.create_array("intensity", data=y, chunks=(2, COLS, POINTS))
    return path


@pytest.fixture(autouse=True)
def no_registry(tmp_path, monkeypatch):
    """The flow and correct-map both run the shipped model, without params.yaml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.usefixtures("prefect_harness")
def test_flow_on_dask_equals_correct_map_and_a_rerun_skips_every_chunk(tmp_path):
    source = make_map(tmp_path / "map.zarr")
    args = {"input_path": str(source), "output": "out.zarr", "chunk_spectra": CHUNK}
    state = map_flow(**args, workers=2, return_state=True)
    report = state.result()
    assert (report["chunks"], report["chunks_run"], report["chunks_skipped"]) == (4, 4, 0)
    assert report["spectra"] == ROWS * COLS and report["spectra_per_s"] > 0
    assert report["method"] == "refined" and report["model"] == "shipped"
    assert report["model_version"].startswith("resunet1d shipped")
    assert report["chunk_shape"] == [1, COLS, POINTS] and report["dead_spectra"] == 0
    assert report["cluster"] == "a local Dask cluster of 2 worker processes, one thread each"
    assert json.loads((tmp_path / "out.zarr.report.json").read_text()) == report

    with get_client(sync_client=True) as client:
        (artifact,) = _artifacts(client, state.state_details.flow_run_id)
        tasks = client.read_task_runs()
    assert artifact.key == REPORT_KEY and artifact.type == "markdown"
    assert "4 of 4 chunks run, 0 skipped" in artifact.data
    assert report["model_version"] in artifact.data
    chunk_runs = {t.name for t in tasks if t.flow_run_id == state.state_details.flow_run_id}
    assert chunk_runs == {f"chunk-({row}, 0)" for row in range(ROWS)}

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        address = cluster.scheduler_address  # an existing cluster, reached by address
        by_address = map_flow(**{**args, "output": "addr.zarr"}, scheduler=address)
        argv = ["correct-map", str(source), "-o", "cli.zarr", "--chunk", str(CHUNK)]
        assert cli.main([*argv, "--scheduler", address, "--no-progress"]) == 0
    assert by_address["cluster"] == f"the Dask cluster at {address} (2 workers)"
    assert by_address["chunks_run"] == 4
    cli_out = zarr.open_group("cli.zarr", mode="r")
    for out in ("out.zarr", "addr.zarr"):
        ours = zarr.open_group(out, mode="r")
        for name in ("baseline", "corrected"):
            assert np.array_equal(ours[name][...], cli_out[name][...])
        assert np.isfinite(ours["baseline"][...]).all()
        assert ours.attrs["raman_baseline"]["model_version"] == report["model_version"]

    again = map_flow(**args, report_path=str(tmp_path / "again.json"))
    assert (again["chunks_run"], again["chunks_skipped"], again["spectra"]) == (0, 4, 0)
    assert again["cluster"] == "none started: every chunk was done"
    assert json.loads((tmp_path / "again.json").read_text()) == again


@pytest.mark.usefixtures("prefect_harness")
def test_a_bad_input_fails_the_flow_before_any_chunk(tmp_path):
    state = map_flow(input_path="missing.zarr", output="out.zarr", return_state=True)
    assert state.is_failed() and "missing.zarr: no such file or folder" in state.message
    assert not (tmp_path / "out.zarr").exists()


def test_map_deployment_is_served_on_demand_with_the_others(monkeypatch):
    served = []
    monkeypatch.setattr(flows.serve, "serve", lambda *deployments: served.extend(deployments))
    flows.serve.main(["--workspace", str(ROOT)])
    (deployment,) = [d for d in served if d.flow_name == FLOW]
    assert deployment.name == "on-demand" and deployment.schedules == []
    assert deployment.parameters == {"workspace": str(ROOT)}
    assert deployment.tags == ["raman-baseline"]
