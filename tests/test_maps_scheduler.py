"""correct-map as separate processes: on an existing Dask cluster (`dask scheduler` and `dask
worker` started apart, reached by --scheduler tcp://127.0.0.1:PORT), and Ctrl-C of a local run."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from tests.test_maps import make_map, write_zarr

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no scheduler on port {port}")


@contextlib.contextmanager
def dask_processes(cwd: Path, env: dict, workers: int = 1):
    """``dask scheduler`` and ``dask worker`` as separate processes; yields the address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(BIN / "dask")
    common = {"env": env, "cwd": cwd, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **common
    )
    worker = None
    try:
        wait_for(port)
        worker = subprocess.Popen(
            [dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1"]
            + ["--no-dashboard"],
            **common,
        )
        yield address
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def test_command_reaches_a_scheduler_and_worker_by_address(tmp_path):
    x, y = make_map(np.random.default_rng(6), (4, 5))
    write_zarr(tmp_path / "in.zarr", x, y, (1, 5, 512))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    with dask_processes(tmp_path, env) as address:
        argv = ["correct-map", "in.zarr", "-o", "out.zarr", "--scheduler", address, "--chunk", "5"]
        done = subprocess.run(
            [str(BIN / "raman-baseline"), *argv, "--method", "arpls", "--no-progress"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert f"on the Dask cluster at {address} (1 workers)" in done.stdout
    assert "4 of 4 chunks run" in done.stdout
    out = zarr.open_group(tmp_path / "out.zarr", mode="r")
    assert out["done"][...].all()
    assert np.isfinite(out["baseline"][...]).all()


def test_ctrl_c_stops_a_local_run_in_one_line_and_a_rerun_resumes(tmp_path):
    x, y = make_map(np.random.default_rng(7), (60, 100))
    write_zarr(tmp_path / "in.zarr", x, y, (1, 100, 512))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["correct-map", "in.zarr", "-o", "out.zarr", "--method", "arpls", "--chunk", "100"]
    command = [str(BIN / "raman-baseline"), *argv, "--workers", "2", "--no-progress"]
    run = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # Ctrl-C as a terminal delivers it: a test run in the background (nohup, CI runners)
        # hands its children SIGINT ignored, and Python keeps an ignored SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        done = tmp_path / "out.zarr" / "done"
        if done.exists() and zarr.open_group(tmp_path / "out.zarr", mode="r")["done"][...].any():
            break
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group gets it
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err  # no worker's
    assert "interrupted (Ctrl-C)" in err and "the same command does the rest" in err
    finished = int(zarr.open_group(tmp_path / "out.zarr", mode="r")["done"][...].sum())
    assert 0 < finished < 60
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{60 - finished} of 60 chunks run ({finished} done before)" in again.stdout
