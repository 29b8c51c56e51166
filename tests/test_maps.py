"""correct-map on a real LocalCluster (worker processes): outputs equal to correct's, resume,
NaN pixels, every input kind, and the bad inputs refused in one line before any work."""

import h5py
import numpy as np
import pytest
import zarr

from pipeline import cli, map_io, maps
from pipeline.cluster import cluster

ROWS, COLS, POINTS = 6, 7, 512


def make_map(rng, shape=(ROWS, COLS)):
    x = np.linspace(200.0, 3200.0, POINTS)
    t = (x - x[0]) / (x[-1] - x[0])
    amp = rng.uniform(200, 2000, shape + (1,))
    band = 300 * np.exp(-(((x - 1000) / 8) ** 2)) + 150 * np.exp(-(((x - 1600) / 12) ** 2))
    y = 1000 + amp * np.exp(-2 * t) + band + rng.normal(0, 5, shape + (POINTS,))
    return x, y.astype(np.float32)


def write_zarr(path, x, y, chunks=None):
    group = zarr.open_group(path, mode="w")
    group.create_array("wavenumber", data=x)
    group.create_array("intensity", data=y, chunks=chunks or y.shape)
    return path


@pytest.fixture(scope="module")
def client():
    with cluster(None, 2) as (dask_client, _):
        yield dask_client


@pytest.fixture(autouse=True)
def no_registry(tmp_path, monkeypatch):
    """correct and correct-map both run the shipped model, without params.yaml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def run_map(client, path, out, method="refined", chunk=10, stop_after=None, **open_kw):
    source, x = map_io.open_input(path, **open_kw)
    recipe, attrs, _ = maps.plan(method)
    return maps.correct_map(
        source, x, out, recipe, attrs, client, chunk, progress=False, stop_after=stop_after
    )


def correct_cli(tmp_path, x, y, method="refined"):
    """What `raman-baseline correct` gives for these spectra, through an .npz batch."""
    np.savez(tmp_path / "batch.npz", x=x, y=y.reshape(-1, POINTS))
    argv = ["correct", str(tmp_path / "batch.npz"), "-o", str(tmp_path / "c"), "--no-progress"]
    assert cli.main([*argv, "--method", method, "--no-plots"]) == 0
    return np.load(tmp_path / "c" / "batch.npz")["baseline"]


def assert_close_to(baseline, expected, y):
    flat = baseline.reshape(-1, POINTS)
    scale = np.nanmax(y.reshape(-1, POINTS), axis=1) - np.nanmin(y.reshape(-1, POINTS), axis=1)
    assert np.array_equal(np.isnan(flat), np.isnan(expected))
    error = np.nanmax(np.abs(flat - expected), axis=1) / scale
    assert np.nanmax(error) <= 1e-5


def test_local_cluster_equals_correct(client, tmp_path):
    x, y = make_map(np.random.default_rng(1))
    report = run_map(client, write_zarr(tmp_path / "in.zarr", x, y, (2, 7, POINTS)), "out.zarr")
    assert (report.ran, report.spectra, report.dead) == (6, ROWS * COLS, 0)
    out = zarr.open_group("out.zarr", mode="r")
    assert out["baseline"].shape == y.shape and out["corrected"].shape == y.shape
    assert np.array_equal(out["wavenumber"][...], x)
    attrs = out.attrs[map_io.ATTRS]
    assert attrs["method"] == "refined" and attrs["model"] == "shipped"
    assert attrs["model_version"].startswith("resunet1d shipped") and attrs["package_version"]
    baseline = out["baseline"][...]
    assert_close_to(baseline, correct_cli(tmp_path, x, y), y)
    assert np.allclose(out["corrected"][...], y - baseline, atol=1e-3)


def test_resume_runs_only_the_missing_chunks(client, tmp_path):
    x, y = make_map(np.random.default_rng(2))
    write_zarr(tmp_path / "in.zarr", x, y)
    first = run_map(client, tmp_path / "in.zarr", "out.zarr", "arpls", stop_after=2)
    assert (first.chunks, first.ran, first.skipped) == (6, 2, 0)
    assert zarr.open_group("out.zarr")["done"][...].sum() == 2
    second = run_map(client, tmp_path / "in.zarr", "out.zarr", "arpls")
    assert (second.ran, second.skipped, second.spectra) == (4, 2, 4 * COLS)
    third = run_map(client, tmp_path / "in.zarr", "out.zarr", "arpls")
    assert third.ran == 0
    whole = run_map(client, tmp_path / "in.zarr", "whole.zarr", "arpls")
    assert whole.ran == 6
    resumed = zarr.open_group("out.zarr")["baseline"][...]
    assert np.array_equal(resumed, zarr.open_group("whole.zarr")["baseline"][...])


def test_nan_pixels_are_masked_and_reported(client, tmp_path):
    x, y = make_map(np.random.default_rng(3))
    y[2, 3] = np.nan  # a dead pixel of the map
    y[4, 0] = 0.0  # another: zeros only
    y[1, 1, 100:110] = np.nan  # missing points inside a spectrum
    y[0, 5, -3:] = np.inf  # saturated at the end
    report = run_map(client, write_zarr(tmp_path / "in.zarr", x, y), "out.zarr")
    assert report.dead == 2 and set(report.first_dead) == {(2, 3), (4, 0)}
    assert report.masked_pixels == 13
    baseline = zarr.open_group("out.zarr")["baseline"][...]
    assert np.isnan(baseline[2, 3]).all() and np.isnan(baseline[4, 0]).all()
    assert np.isnan(baseline[1, 1, 100:110]).all() and np.isnan(baseline[0, 5, -3:]).all()
    live = np.ones((ROWS, COLS), bool)
    live[2, 3] = live[4, 0] = False
    assert np.isfinite(baseline[live][:, 200:300]).all()
    finite = np.where(np.isinf(y), np.nan, y)
    expected = correct_cli(tmp_path, x, finite[live])
    assert_close_to(baseline[live], expected, finite[live])


@pytest.mark.parametrize("kind", ["hdf5", "npy", "stack"])
def test_every_input_kind_equals_correct(client, tmp_path, kind):
    x, y = make_map(np.random.default_rng(4), (3, 5))
    options = {}
    if kind == "hdf5":
        path = tmp_path / "map.h5"
        with h5py.File(path, "w") as file:
            file["wavenumber"], file["spectra"] = x, y
        options["dataset"] = "spectra"
    elif kind == "npy":
        path = tmp_path / "map.npy"
        np.save(path, y)
        np.savetxt(tmp_path / "axis.txt", x[::-1])  # a decreasing axis: kept in the output
        options["axis_file"] = tmp_path / "axis.txt"
        y = y[..., ::-1]
    else:
        path = write_zarr(tmp_path / "stack.zarr", x, y.reshape(-1, POINTS))
    report = run_map(client, path, "out.zarr", "arpls", chunk=4, **options)
    assert report.spectra == 15
    baseline = zarr.open_group("out.zarr")["baseline"][...]
    if kind == "npy":
        baseline = baseline[..., ::-1]
    assert_close_to(baseline, correct_cli(tmp_path, x, y, "arpls"), y)


def fails(capsys, *argv):
    assert cli.main(["correct-map", *map(str, argv), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_inputs_are_one_line_before_any_work(tmp_path, capsys):
    x, y = make_map(np.random.default_rng(5), (2, 3))
    write_zarr(tmp_path / "in.zarr", x, y)
    assert "no array 'nope'" in fails(capsys, "in.zarr", "-o", "o.zarr", "--dataset", "nope")
    short = zarr.open_group(tmp_path / "short.zarr", mode="w")
    short.create_array("wavenumber", data=x[:500])
    short.create_array("intensity", data=y)
    assert "do not fit an axis of shape (500,)" in fails(capsys, "short.zarr", "-o", "o.zarr")
    np.save(tmp_path / "m.npy", y)
    assert "--axis" in fails(capsys, "m.npy", "-o", "o.zarr")
    with h5py.File(tmp_path / "m.h5", "w") as file:
        file["wavenumber"], file["intensity"] = x, y
    assert "no dataset 'wn'" in fails(capsys, "m.h5", "-o", "o.zarr", "--axis-dataset", "wn")
    assert not (tmp_path / "o.zarr").exists()
    (tmp_path / "folder").mkdir()
    assert "not a correct-map output" in fails(capsys, "in.zarr", "-o", "folder")
    source, axis = map_io.open_input(tmp_path / "in.zarr")
    recipe, attrs, _ = maps.plan("arpls")
    map_io.prepare_output(tmp_path / "made.zarr", source, axis, (1, 3, POINTS), attrs)
    write_zarr(tmp_path / "other.zarr", x, y)
    made_from = fails(capsys, "other.zarr", "-o", "made.zarr", "--method", "arpls")
    assert "made from" in made_from and "--overwrite" in made_from


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--workers", "-1", "-1 is less than 0"),
        ("--chunk", "0", "0 is less than 1"),
        # a traceback (ValueError) after the output store was made, before
        ("--scheduler", "foo", "'foo': not a Dask scheduler address (invalid url scheme"),
        ("--scheduler", "http://h:8786", "'http://h:8786': not a Dask scheduler address (unknown"),
        ("--scheduler", "tcp://h", "'tcp://h': not a Dask scheduler address (missing port number"),
    ],
)
def test_a_worker_count_or_chunk_out_of_range_is_refused_before_any_work(
    tmp_path, capsys, option, value, expected
):
    """--workers -1 hung (a LocalCluster of no workers); --chunk 0 ran chunks of one; a bad
    --scheduler address was a traceback."""
    x, y = make_map(np.random.default_rng(6), (2, 3))
    write_zarr(tmp_path / "in.zarr", x, y)
    argv = ["correct-map", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "o.zarr"), option, value]
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert f"argument {option}: {expected}" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()


def test_an_unreachable_scheduler_leaves_no_store_behind(tmp_path, capsys):
    """The empty store it left refused the next run's other method ("made from ... with other
    method"): a run that never started blocked the next one."""
    from tests.test_maps_scheduler import free_port

    x, y = make_map(np.random.default_rng(8), (2, 3))
    write_zarr(tmp_path / "in.zarr", x, y)
    nobody = f"tcp://127.0.0.1:{free_port()}"
    err = fails(capsys, "in.zarr", "-o", "o.zarr", "--scheduler", nobody, "--method", "arpls")
    assert "OSError" in err or "Timed out" in err
    assert not (tmp_path / "o.zarr").exists()
    argv = ["correct-map", "in.zarr", "-o", "o.zarr", "--workers", "1", "--no-progress"]
    assert cli.main(argv) == 0  # the next run, local, default method: not refused


def test_datasets_in_groups_are_listed_and_read_by_their_path(tmp_path, capsys):
    x, y = make_map(np.random.default_rng(9), (2, 3))
    with h5py.File(tmp_path / "nested.h5", "w") as file:
        file["data/spectra"], file["data/wn"] = y, x
    err = fails(capsys, "nested.h5", "-o", "o.zarr")
    assert "(datasets: data/spectra, data/wn)" in err  # was "(datasets: none)"
    group = zarr.open_group(tmp_path / "nested.zarr", mode="w")
    group.create_group("data").create_array("spectra", data=y)
    group.create_array("wavenumber", data=x)
    assert "(arrays: data/spectra, wavenumber)" in fails(capsys, "nested.zarr", "-o", "o.zarr")
    source, axis = map_io.open_input(
        tmp_path / "nested.h5", "data/spectra", "data/wn"
    )  # by path: as before
    assert source.shape == y.shape and np.array_equal(axis, x)
