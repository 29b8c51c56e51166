"""Store faults through the real command line: a read-only, empty or missing version's store
gives one line and exit 1 (never a traceback), nothing moves, and ``correct`` reads a
registered model from a store it may not write to.

Each command runs as ``python -m pipeline.cli`` in a subprocess, where a traceback would show.
Tests run as root here, and root writes through file modes: a read-only file or folder is
made immutable (``chattr +i``) then, and the test is skipped where that is not allowed.
"""

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import registry
from pipeline.export import export_onnx
from pipeline.model import ResUNet1D

from .conftest import ROOT, register_production

NAME = registry.MODEL_NAME


def cli(cwd: Path, *args: str, store: Path | None = None) -> subprocess.CompletedProcess:
    """``raman-baseline ARGS`` in ``cwd``; ``store`` as ``MLFLOW_TRACKING_URI`` if given."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    if store is not None:
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def told(done: subprocess.CompletedProcess, command: str) -> str:
    """The one line ``command`` ended with on stderr; no traceback, exit status 1."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"raman-baseline {command}: "), done.stderr
    return last


@contextlib.contextmanager
def read_only(*paths: Path, recursive: bool = False) -> Iterator[None]:
    """Make ``paths`` (and, ``recursive``, all below them) unwritable, even for root."""
    every = [p for path in paths for p in ([path, *path.rglob("*")] if recursive else [path])]
    modes = {p: p.stat().st_mode for p in every}
    root = os.geteuid() == 0
    if root and shutil.which("chattr") is None:
        pytest.skip("root writes through file modes, and there is no chattr here")
    for p in every:
        p.chmod(modes[p] & ~0o222)
    try:
        if root:
            done = subprocess.run(["chattr", "+i", *map(str, every)], capture_output=True)
            if done.returncode:
                pytest.skip(f"root writes through file modes, and chattr +i failed: {done.stderr}")
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", *map(str, every)], capture_output=True)
        for p in every:
            p.chmod(modes[p])


@pytest.fixture
def store(tmp_path):
    """A store with versions 1 to 3 (stand-in sources), v2 production after v1."""
    db = tmp_path / "mlflow.db"
    client = registry.connect(f"sqlite:///{db}", create=True)
    run_id = client.create_run(registry.experiment_id(client)).info.run_id
    client.create_registered_model(NAME)
    for _ in range(3):
        client.create_model_version(NAME, "file:///nowhere/model", run_id=run_id)
    registry.promote(client, "1", "first", "test")
    registry.promote(client, "2", "second", "test")
    return db, client


def aliases(client) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}


@pytest.mark.parametrize("unwritable", ["file", "folder"])
@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_a_read_only_store_is_one_line_and_nothing_moves(store, command, unwritable):
    db, client = store
    args = ["promote", "--version", "3", "--reason", "x"] if command == "promote" else [command]
    with read_only(db if unwritable == "file" else db.parent):
        done = cli(db.parent, *args)
    line = told(done, command)
    assert f"the MLflow store {db} is read-only" in line
    assert aliases(client) == {"production": "2"}


def test_promoting_a_version_that_does_not_exist_is_one_line(store):
    db, client = store
    done = cli(db.parent, "promote", "--version", "999", "--reason", "x")
    assert told(done, "promote").endswith(f"{NAME} has no version 999 in the MLflow store {db}")
    assert aliases(client) == {"production": "2"}


@pytest.mark.parametrize("command", ["promote", "rollback", "correct"])
def test_an_empty_store_file_is_refused_not_initialised(tmp_path, command):
    empty = tmp_path / "empty.db"
    empty.touch()
    spectrum = tmp_path / "s.csv"
    x = np.linspace(400.0, 1800.0, 300)
    np.savetxt(spectrum, np.c_[x, 1000 + 100 * np.exp(-(((x - 1000) / 8) ** 2))], delimiter=",")
    args = {
        "promote": (["promote", "--version", "1", "--reason", "x"], empty),
        "rollback": (["rollback"], empty),
        "correct": (["correct", str(spectrum), "-o", "out", "--store", str(empty)], None),
    }[command]
    done = cli(tmp_path, *args[0], store=args[1])
    assert f"no MLflow store at {empty} (an empty file)" in told(done, command)
    assert empty.stat().st_size == 0
    assert not (tmp_path / "out").exists()


def test_correct_loads_a_registered_model_from_a_read_only_store(tmp_path):
    db = tmp_path / "mlflow.db"
    client = registry.connect(f"sqlite:///{db}", create=True)
    torch.manual_seed(0)
    onnx = tmp_path / "m.onnx"
    export_onnx(ResUNet1D(channels=(4, 6, 8, 10, 12, 14)), onnx, length=512)
    register_production(client, onnx)
    spectrum = tmp_path / "s.csv"
    x = np.linspace(400.0, 1800.0, 600)
    np.savetxt(spectrum, np.c_[x, 1000 + 300 * np.exp(-(((x - 1000) / 8) ** 2))], delimiter=",")
    mlruns = tmp_path / "mlruns"
    before = sorted(p.relative_to(tmp_path) for p in mlruns.rglob("*"))
    out = tmp_path / "out"
    with read_only(db, mlruns, recursive=True):
        done = cli(tmp_path, "correct", str(spectrum), "-o", str(out), "--method", "resunet")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Downloading artifacts" not in done.stderr
    assert (out / "s.csv").is_file()
    assert sorted(p.relative_to(tmp_path) for p in mlruns.rglob("*")) == before


def test_a_registration_on_a_read_only_store_is_refused_before_anything(store):
    db, client = store
    with read_only(db), pytest.raises(registry.RegistryError, match="is read-only") as caught:
        registry.connect(f"sqlite:///{db}", create=True)  # as the register stages connect
    assert "\n" not in str(caught.value) and str(db) in str(caught.value)
