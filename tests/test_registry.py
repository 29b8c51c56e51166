"""MLflow registry, promotion gate, alias moves and faults, on a real SQLite store."""

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import registry
from pipeline.export import export_onnx
from pipeline.simulate import simulate
from pipeline.train import to_tensors, train

# the gate compares versions with each other; classical numbers no model here could lose to
EASY_CLASSICAL = {"arpls": {"rmse": 10.0, "mae": 10.0}, "aspls": {"rmse": 10.0, "mae": 10.0}}


@pytest.fixture(scope="module")
def store(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("mlflow")
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def models(tiny, tmp_path_factory):
    """Two ONNX models: ``good`` (4 epochs) and ``worse`` (1 epoch at a tiny learning rate)."""
    out = tmp_path_factory.mktemp("onnx")
    tr = simulate(tiny.simulate, tiny.simulate.n_train, seed=1)
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    data = to_tensors(tr.observed, tr.baseline), to_tensors(va.observed, va.baseline)
    plans = {
        "good": dataclasses.replace(tiny.train, epochs=4, lr_step=2),
        "worse": dataclasses.replace(tiny.train, epochs=1, lr=1e-5),
    }
    paths = {}
    for name, plan in plans.items():
        state, _ = train(tiny.model, plan, *data, progress=False)
        from pipeline.model import build_model

        net = build_model(tiny.model.arch, tiny.model.channels, 7, 5)
        net.load_state_dict(state)
        ckpt = out / f"{name}.pt"
        torch.save({"model": state}, ckpt)
        paths[name] = (out / f"{name}.onnx", ckpt)
        export_onnx(net, paths[name][0], length=tiny.simulate.length)
    return paths


@pytest.fixture(scope="module")
def benchmark(tiny):
    s = simulate(tiny.simulate, 64, seed=9)
    return {"observed": s.observed, "baseline": s.baseline}


def _register(client, models, name, benchmark, tiny, classical=EASY_CLASSICAL):
    onnx_path, ckpt = models[name]
    run_id, uri = registry.log_pipeline_run(
        client,
        params={"train": {"epochs": 4 if name == "good" else 1}},
        history=[{"epoch": 1, "train_rmse": 0.1, "val_mae": 0.1}],
        test_metrics={"test_resunet_rmse": 0.1},
        figures=onnx_path.parent / "no-figures",
        checkpoint=ckpt,
        onnx_path=onnx_path,
        digests={"onnx": registry.file_digest(onnx_path)},
        extra_files=[],
        run_name=name,
        grid=tiny.simulate.length,
    )
    with registry.registry_lock():
        return registry.register_and_gate(
            client,
            run_id=run_id,
            model_uri=uri,
            version_tags={"onnx_sha256": registry.file_digest(onnx_path)},
            benchmark=benchmark,
            classical=classical,
            command=f"test register {name}",
        )


@pytest.fixture(scope="module")
def client(store):
    return registry.connect(create=True)


def test_first_version_promoted_worse_one_refused_then_rollback(client, models, benchmark, tiny):
    first = _register(client, models, "good", benchmark, tiny)
    assert first.promoted and first.production is None
    assert registry.production_version(client) == first.version

    worse = _register(client, models, "worse", benchmark, tiny)
    assert worse.challenger["rmse"] > first.challenger["rmse"]  # it is worse, measured
    assert not worse.promoted
    assert f"production v{first.version}" in worse.reason
    assert registry.production_version(client) == first.version
    mv = client.get_model_version(registry.MODEL_NAME, worse.version)
    assert mv.tags["gate.decision"] == "refused"
    challenger = client.get_model_version_by_alias(registry.MODEL_NAME, "challenger")
    assert str(challenger.version) == worse.version

    # a person overrides the gate, then rolls back
    registry.promote(client, worse.version, "manual test", "test promote")
    assert registry.production_version(client) == worse.version
    old, new = registry.rollback(client, "worse after all", "test rollback")
    assert (old, new) == (worse.version, first.version)
    assert registry.production_version(client) == first.version
    log = json.loads(client.get_model_version(registry.MODEL_NAME, first.version).tags["alias_log"])
    assert [e["action"] for e in log if e["alias"] == "production"] == ["set", "removed", "set"]
    assert log[-1]["command"] == "test rollback" and log[-1]["reason"] == "worse after all"
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(client, "again", "test")


def test_production_loads_and_equals_the_python_api(client, models, benchmark, tiny):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@production")
    x = np.linspace(400, 1800, tiny.simulate.length)
    y = benchmark["observed"][:3].astype(np.float64) * 3 + 100
    out = model.predict({"wavenumber": x, "intensity": y})
    direct = model.unwrap_python_model().model.baselines(x, y)
    assert np.allclose(out["baseline"], direct)
    assert np.allclose(out["corrected"], y - direct)


def test_gate_refuses_a_model_that_loses_to_the_classical_methods(client, models, benchmark, tiny):
    hard = {"arpls": {"rmse": 1e-6, "mae": 1e-6}, "aspls": {"rmse": 1e-6, "mae": 1e-6}}
    prod = registry.production_version(client)
    decision = registry.gate(client, prod, benchmark, hard)
    assert not decision.promoted and "arpls" in decision.reason


def test_serving_answers_like_the_python_api(client, store, tiny, benchmark):
    import mlflow.pyfunc

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{registry.MODEL_NAME}@production",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        x = np.linspace(400, 1800, tiny.simulate.length)
        y = benchmark["observed"][:2].astype(np.float64) * 7 + 50
        body = json.dumps({"inputs": {"wavenumber": x.tolist(), "intensity": y.tolist()}})
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            body.encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read())["predictions"]
        model = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@production")
        direct = model.predict({"wavenumber": x, "intensity": y})
        assert np.allclose(answer["baseline"], direct["baseline"], rtol=1e-9, atol=1e-9)
        assert np.allclose(answer["corrected"], direct["corrected"], rtol=1e-9, atol=1e-9)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_concurrent_registrations_do_not_corrupt_the_store(client, models, store, tiny):
    script = f"""
import sys
from pipeline import registry
from tests.test_registry import EASY_CLASSICAL
import numpy as np, pathlib
client = registry.connect(create=True)
onnx, ckpt = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
run_id, uri = registry.log_pipeline_run(client, params={{}}, history=[], test_metrics={{}},
    figures=onnx.parent / "none", checkpoint=ckpt, onnx_path=onnx, digests={{}},
    extra_files=[], run_name="concurrent", grid={tiny.simulate.length})
b = np.load(sys.argv[3])
with registry.registry_lock():
    d = registry.register_and_gate(client, run_id=run_id, model_uri=uri, version_tags={{}},
        benchmark={{"observed": b["observed"], "baseline": b["baseline"]}},
        classical=EASY_CLASSICAL, command="concurrent")
print(d.version)
"""
    bench = store / "bench.npz"
    s = simulate(tiny.simulate, 16, seed=4)
    np.savez(bench, observed=s.observed, baseline=s.baseline)
    before = _versions(client)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(models[n][0]), str(models[n][1]), str(bench)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in ("good", "worse")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    new = {o.strip().splitlines()[-1] for o, _ in outs}
    after = _versions(client)
    assert len(new) == 2 and after == before | new
    for v in new:
        assert client.get_model_version(registry.MODEL_NAME, v).status == "READY"
    db = store / "mlflow.db"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _versions(client):
    return {str(mv.version) for mv in client.search_model_versions(f"name='{registry.MODEL_NAME}'")}


# ------------------------------------------------------------------------------ faults


def test_missing_store(tmp_path):
    with pytest.raises(registry.RegistryError, match="no MLflow store"):
        registry.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_corrupt_store(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database at all")
    with pytest.raises(registry.RegistryError, match="not an SQLite database"):
        registry.connect(f"sqlite:///{db}")


def test_locked_store(tmp_path):
    db = tmp_path / "mlflow.db"
    holder = sqlite3.connect(db)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(registry.RegistryError, match="locked by another process"):
            registry.connect(f"sqlite:///{db}", lock_timeout=0.2)
    finally:
        holder.rollback()
        holder.close()


def test_unreachable_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(registry.RegistryError, match="unreachable"):
        registry.connect(f"http://127.0.0.1:{port}")


def test_cli_reports_no_store_and_no_production(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    from .conftest import ROOT

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = str(ROOT / "params.yaml")
    assert main(["--params", params, "rollback"]) == 1
    assert "no MLflow store" in capsys.readouterr().err
    client = registry.connect(create=True)
    assert registry.production_version(client) is None
    with pytest.raises(registry.RegistryError, match="has no production version"):
        registry.rollback(client, "r", "c")


def test_fast_variant_is_registered_only_within_the_ratio_of_production(
    client, models, benchmark, tiny
):
    registry.connect()  # the tests above pointed mlflow at other stores
    prod = registry.production_version(client)
    grid = tiny.simulate.length
    refused = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1.05)
    assert not refused.promoted and "not within the 1.05 x allowed" in refused.reason
    assert refused.challenger["rmse"] > 1.05 * refused.production["rmse"]  # re-scored now
    assert refused.production_version == prod
    allowed = registry.fast_gate(client, models["worse"][0], grid, benchmark, 1000.0)
    assert allowed.promoted and allowed.challenger == refused.challenger

    onnx_path, ckpt = models["worse"]
    run_id, uri = registry.log_pipeline_run(
        client,
        params={"student": {"channels": [4]}},
        history=[],
        test_metrics={"test_rmse": allowed.challenger["rmse"]},
        figures=None,
        checkpoint=ckpt,
        onnx_path=onnx_path,
        digests={"onnx": registry.file_digest(onnx_path)},
        extra_files=[],
        run_name="fast",
        grid=grid,
    )
    version = registry.register_alias(
        client,
        run_id=run_id,
        model_uri=uri,
        version_tags={"variant": "fast"},
        alias=registry.FAST,
        why="test",
    )
    fast = client.get_model_version_by_alias(registry.MODEL_NAME, registry.FAST)
    assert str(fast.version) == version and fast.tags["variant"] == "fast"
    assert registry.production_version(client) == prod  # the fast alias never moves production


def test_fine_tuning_starts_from_the_production_checkpoint(client, models, tmp_path):
    registry.connect()
    version, run_id, path = registry.production_checkpoint(client, tmp_path)
    assert version == registry.production_version(client)
    assert client.get_model_version(registry.MODEL_NAME, version).run_id == run_id
    assert path.read_bytes() in {ckpt.read_bytes() for _, ckpt in models.values()}


def test_without_production_the_reference_is_the_registered_version(tmp_path):
    empty = registry.connect(f"sqlite:///{tmp_path / 'mlflow.db'}", create=True)
    assert registry.reference_version(empty, "3") == "3"
    with pytest.raises(registry.RegistryError, match="no production version"):
        registry.reference_version(empty)
