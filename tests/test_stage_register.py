"""The register stage against a store that fails: one line, non-zero exit, aliases unchanged.

A tiny pipeline is built up to ``export`` with real DVC; the register stage then runs through
``raman-baseline`` as ``dvc repro`` runs it, on a real SQLite MLflow store.
"""

import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.checkpoint import save_checkpoint

pytestmark = pytest.mark.slow


def _env(ws: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_SITE_CACHE_DIR"] = str(ws / ".dvc" / "tmp" / "site-cache")
    return env


def _register_cmd(ws: Path, **replace: str) -> list[str]:
    """dvc.yaml's register command, with some of its paths replaced."""
    cmd = shlex.split(yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]["register"]["cmd"])
    for option, value in replace.items():
        cmd[cmd.index(f"--{option}") + 1] = value
    return cmd


def _run(ws: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ws, env=_env(ws), capture_output=True, text=True, timeout=600)


def _aliases(ws: Path) -> dict[str, str]:
    con = sqlite3.connect(ws / "mlflow.db")
    try:
        return dict(con.execute("SELECT alias, version FROM registered_model_aliases").fetchall())
    finally:
        con.close()


def _one_line_failure(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("raman-baseline register: "), proc.stderr
    for word in words:
        assert word in last, last
    return last


@pytest.fixture(scope="module")
def built(tmp_path_factory, make_workspace):
    """A tiny workspace with everything up to ``export``, one version registered, and a second
    ONNX model (other weights) that is not registered yet."""
    ws = make_workspace(tmp_path_factory.mktemp("register-ws"))
    for cmd in (["dvc", "repro", "evaluate", "evaluate_real", "export"], _register_cmd(ws)):
        proc = _run(ws, cmd)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    ckpt = torch.load(ws / "models/resunet.pt", weights_only=True)
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    from pipeline.config import parse_params

    model_params = parse_params(yaml.safe_load((ws / "params.yaml").read_text())).model
    save_checkpoint(ws / "other.pt", state, model_params)
    export = ["raman-baseline", "export", "--model", "other.pt", "--out", "other.onnx"]
    proc = _run(ws, [*export, "--report", "other_export.json"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws


def test_a_locked_store_stops_the_stage_and_moves_no_alias(built):
    before = _aliases(built)
    holder = sqlite3.connect(built / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = _run(built, _register_cmd(built, onnx="other.onnx", out="other_reg.json"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _one_line_failure(proc, "mlflow.db", "locked")
    assert _aliases(built) == before
    assert not (built / "other_reg.json").exists()


def test_an_unreadable_store_stops_the_stage(built, tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"this is not a database" * 100)
    env_cmd = _register_cmd(built, onnx="other.onnx", out="other_reg.json")
    env = {**_env(built), "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    proc = subprocess.run(env_cmd, cwd=built, env=env, capture_output=True, text=True)
    _one_line_failure(proc, str(store))


def test_a_production_lookup_that_fails_once_stops_the_stage(built, monkeypatch, capsys):
    """One transient store error while the gate reads production: no guess, no alias moved."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipeline.cli import main

    before = _aliases(built)
    real = MlflowClient.get_model_version_by_alias
    calls = {"n": 0}

    def flaky(self, name, alias):
        calls["n"] += 1
        if alias == "production" and calls["n"] == 1:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return real(self, name, alias)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", flaky)
    monkeypatch.chdir(built)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cmd = _register_cmd(built, onnx="other.onnx", out="other_reg.json")
    code = main(cmd[1:])
    err = capsys.readouterr().err
    assert code != 0 and calls["n"] >= 1
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("raman-baseline register: ") and "locked" in last, err
    assert _aliases(built) == before
    assert not (built / "other_reg.json").exists()
    # and nothing was left registered: a clean rerun registers it once
    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", real)
    assert main(cmd[1:]) == 0
