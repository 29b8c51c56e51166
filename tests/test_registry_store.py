"""pipeline/registry/store.py: checking the store, creating it under the lock, and lookups
that tell "does not exist" from "the store failed", on real SQLite stores."""

import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from pipeline import registry
from pipeline.export import export_onnx
from pipeline.model import ResUNet1D
from pipeline.simulate import simulate

from .conftest import ROOT

LENGTH = 128


def one_line_naming(exc: BaseException, store: Path) -> bool:
    message = str(exc)
    return "\n" not in message and str(store) in message


def new_store(tmp_path: Path, versions: int = 0):
    """A real store with ``versions`` registered versions (stand-in sources) and a client."""
    db = tmp_path / "mlflow.db"
    client = registry.connect(f"sqlite:///{db}", create=True)
    if versions:
        run_id = client.create_run(registry.experiment_id(client)).info.run_id
        client.create_registered_model(registry.MODEL_NAME)
        for _ in range(versions):
            client.create_model_version(registry.MODEL_NAME, "file:///nowhere/model", run_id=run_id)
    return db, client


# ------------------------------------------------------------------------ the store itself


def test_missing_store(tmp_path):
    with pytest.raises(registry.RegistryError, match="no MLflow store") as caught:
        registry.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert one_line_naming(caught.value, tmp_path / "mlflow.db")
    assert not (tmp_path / "mlflow.db").exists()


def test_an_empty_file_is_a_new_store_only_when_creating(tmp_path):
    db = tmp_path / "mlflow.db"
    db.touch()
    with pytest.raises(registry.RegistryError, match=r"no MLflow store .*\(an empty file\)"):
        registry.connect(f"sqlite:///{db}")
    assert db.stat().st_size == 0
    client = registry.connect(f"sqlite:///{db}", create=True)
    assert registry.production_version(client) is None
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alembic_version", "experiments", "registered_models", "model_versions"} <= tables


def test_a_database_without_mlflow_tables_is_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE other (x)")
    with pytest.raises(registry.RegistryError, match="without MLflow's tables"):
        registry.connect(f"sqlite:///{db}")


def test_corrupt_store(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database at all")
    with pytest.raises(registry.RegistryError, match="not an SQLite database") as caught:
        registry.connect(f"sqlite:///{db}")
    assert one_line_naming(caught.value, db)
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)  # the header, then garbage
    with pytest.raises(registry.RegistryError, match="corrupt") as caught:
        registry.connect(f"sqlite:///{db}", create=True)
    assert one_line_naming(caught.value, db)


def test_unreadable_store(tmp_path):
    # tests run as root, so chmod 000 would not stop the read: a folder where the file should be
    db = tmp_path / "mlflow.db"
    db.mkdir()
    for create in (False, True):
        with pytest.raises(registry.RegistryError, match="cannot be read") as caught:
            registry.connect(f"sqlite:///{db}", create=create)
        assert one_line_naming(caught.value, db)


def test_locked_store_is_refused_before_anything(tmp_path):
    db, client = new_store(tmp_path, versions=1)
    registry.promote(client, "1", "test", "test")
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(registry.RegistryError, match="locked by another process") as caught:
            registry.connect(f"sqlite:///{db}", lock_timeout=0.2)
        assert one_line_naming(caught.value, db)
    finally:
        holder.rollback()
        holder.close()
    assert registry.production_version(client) == "1"


def test_unreachable_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(registry.RegistryError, match="unreachable"):
        registry.connect(f"http://127.0.0.1:{port}")


def test_cli_reports_no_store(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["--params", str(ROOT / "params.yaml"), "rollback"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("raman-baseline rollback: no MLflow store") and "\n" not in err


# ---------------------------------------------------------------- schema under the lock


def test_a_new_store_is_created_under_the_registry_lock(tmp_path):
    db = tmp_path / "new" / "mlflow.db"
    uri = f"sqlite:///{db}"
    done = threading.Event()
    errors = []

    def create():
        try:
            registry.connect(uri, create=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        done.set()

    with registry.registry_lock(uri):  # another registration holds the store
        worker = threading.Thread(target=create)
        worker.start()
        assert not done.wait(1.0), "the store was created while another holder had the lock"
        assert not db.exists() or db.stat().st_size == 0
    worker.join(60)
    assert done.is_set() and not errors
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_registry_lock_is_reentrant_in_its_thread(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with registry.registry_lock(uri), registry.registry_lock(uri):
        registry.connect(uri, create=True)  # takes it a third time to create the schema
    with registry.registry_lock(uri, timeout=0):  # released: free at once
        pass


# --------------------------------------------------------------------------- lookups


def test_missing_things_read_as_none(tmp_path):
    _, client = new_store(tmp_path)
    assert registry.production_version(client) is None  # no registered model
    assert registry.find_version_by_tag(client, "onnx_sha256", "x") is None
    client.create_registered_model(registry.MODEL_NAME)
    assert registry.production_version(client) is None  # a model, no alias
    assert registry.alias_version(client, registry.CHALLENGER) is None
    with pytest.raises(registry.RegistryError, match="has no version 3"):
        registry.model_version(client, "3")


@pytest.mark.parametrize(
    "method, lookup",
    [
        ("get_model_version_by_alias", lambda c: registry.production_version(c)),
        ("search_model_versions", lambda c: registry.find_version_by_tag(c, "k", "v")),
        ("get_model_version", lambda c: registry.model_version(c, "1")),
    ],
)
def test_a_failing_store_never_reads_as_missing(tmp_path, monkeypatch, method, lookup):
    db, client = new_store(tmp_path, versions=1)

    def locked(*args, **kwargs):
        raise MlflowException(
            "(sqlite3.OperationalError) database is locked\n[SQL: SELECT ...]",
            error_code=TEMPORARILY_UNAVAILABLE,
        )

    monkeypatch.setattr(client, method, locked)
    with pytest.raises(registry.RegistryError, match="database is locked") as caught:
        lookup(client)
    assert one_line_naming(caught.value, db)


@pytest.mark.slow
def test_store_locked_after_connecting_stops_the_register_path(tmp_path, monkeypatch, capsys):
    """MLflow waits out its own 20 s busy timeout, then the lookup fails: slow by design."""
    db, client = new_store(tmp_path, versions=2)
    registry.promote(client, "1", "test", "test")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    before = _aliases_and_versions(client)
    run_id = client.get_model_version(registry.MODEL_NAME, "1").run_id
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(registry.RegistryError, match="database is locked") as caught:
            registry.register_and_gate(
                client,
                run_id=run_id,
                model_uri="file:///nowhere/model",
                version_tags={},
                benchmark={},
                classical={},
                command="test",
            )
        assert one_line_naming(caught.value, db)
        from pipeline.cli import main  # the CLI: exit 1 and one line

        assert main(["--params", str(ROOT / "params.yaml"), "rollback"]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("raman-baseline rollback: the MLflow store") and "locked" in err
    finally:
        holder.rollback()
        holder.close()
    assert _aliases_and_versions(client) == before


def _aliases_and_versions(client):
    model = client.get_registered_model(registry.MODEL_NAME)
    versions = client.search_model_versions(f"name='{registry.MODEL_NAME}'")
    aliases_ = {a: str(v) for a, v in model.aliases.items()}
    return aliases_, dict(model.tags), {str(mv.version): dict(mv.tags) for mv in versions}


# ------------------------------------------------------------- two registrations at once

REGISTER = """
import sys
from pathlib import Path

import numpy as np

from pipeline import registry

onnx, bench = Path(sys.argv[1]), np.load(sys.argv[2])
try:
    client = registry.connect(create=True)
    run_id, uri = registry.log_pipeline_run(
        client, params={}, history=[], test_metrics={}, figures=None, checkpoint=onnx,
        onnx_path=onnx, digests={}, extra_files=[], run_name="concurrent", grid=%d)
    with registry.registry_lock():
        d = registry.register_and_gate(
            client, run_id=run_id, model_uri=uri, version_tags={},
            benchmark={"observed": bench["observed"], "baseline": bench["baseline"]},
            classical={m: {"rmse": 1e9, "mae": 1e9} for m in ("arpls", "aspls")},
            command="concurrent")
except registry.RegistryError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
print(d.version)
"""


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, tiny):
    """An untrained tiny network (any baseline it draws will do) and a small benchmark set."""
    out = tmp_path_factory.mktemp("untrained")
    torch.manual_seed(0)
    export_onnx(ResUNet1D(channels=tiny.model.channels), out / "tiny.onnx", length=LENGTH)
    s = simulate(tiny.simulate, 8, seed=4)
    np.savez(out / "bench.npz", observed=s.observed, baseline=s.baseline)
    return out / "tiny.onnx", out / "bench.npz"


@pytest.mark.parametrize("round_", range(3))  # each round about 5 s
def test_two_registrations_on_a_new_store(tmp_path, untrained, round_):
    db = tmp_path / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    env["PYTHONPATH"] = f"{ROOT}{':' + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER % LENGTH, *map(str, untrained)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    registered = set()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode in (0, 3), err
        if p.returncode == 0:
            registered.add(out.strip().splitlines()[-1])
        else:  # refused cleanly: a RegistryError's one line, no traceback
            assert "Traceback" not in err and err.strip().splitlines()[-1]
    assert registered, [err for _, err in outs]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    client = registry.connect(f"sqlite:///{db}")
    versions = client.search_model_versions(f"name='{registry.MODEL_NAME}'")
    assert {str(mv.version) for mv in versions} == registered
    assert all(mv.status == "READY" for mv in versions)
