"""The whole DVC pipeline on a tiny configuration, in a scratch git + DVC workspace."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import TINY

pytestmark = pytest.mark.slow


def _run(cwd, *cmd, check=True):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_SITE_CACHE_DIR"] = str(cwd / ".dvc" / "tmp" / "site-cache")
    env.pop("MLFLOW_TRACKING_URI", None)  # the workspace's own mlflow.db
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, make_workspace):
    ws = make_workspace(tmp_path_factory.mktemp("ws"))
    _run(ws, "dvc", "remote", "add", "-d", "store", str(tmp_path_factory.mktemp("remote")))
    _run(ws, "dvc", "repro")
    return ws


def test_repro_writes_every_output(workspace):
    for rel in [
        "data/simulated/train.npz",
        "data/classical/test_baselines.npz",
        "models/resunet.pt",
        "reports/train_history.csv",
        "reports/figures/fig_qual_1.png",
        "reports/figures/fig_qual_2.png",
        "reports/figures/fig_rmse.png",
        "reports/figures/fig_mae.png",
        "models/resunet.onnx",
        "reports/export.json",
        "reports/registration.json",
        "models/denoiser.onnx",
        "reports/denoiser.json",
        "reports/denoiser_history.csv",
        "mlflow.db",
        "dvc.lock",
    ]:
        assert (workspace / rel).is_file(), rel
    metrics = json.loads((workspace / "reports/metrics.json").read_text())
    for method in ("resunet", "arpls", "aspls"):
        assert metrics[method]["rmse"]["n"] == TINY["simulate"]["n_test"]
    assert set(metrics["by_family"]) <= {
        "spline",
        "polynomial",
        "exponential",
        "hump",
        "step",
        "sum",
    }
    assert metrics["classical_lam"]["arpls"] in (3.0, 5.0)
    assert "rmse_resunet_over_best_classical" in metrics["ratio"]
    shown = _run(workspace, "dvc", "metrics", "show", "--json").stdout
    assert "resunet" in shown
    export = json.loads((workspace / "reports/export.json").read_text())
    assert export["max_abs_error"] <= 1e-4 and export["opset"] >= 17
    # the shipped model is registered first and, on this new store, becomes production
    shipped = json.loads((workspace / "reports/registration_shipped.json").read_text())
    assert shipped["version"] == "1" and shipped["promoted"]
    registration = json.loads((workspace / "reports/registration.json").read_text())
    assert registration["name"] == "resunet1d" and registration["version"] == "2"
    assert registration["reason"]  # the gate's decision against the shipped model, its reason
    assert set(registration["benchmarks"]) == {"simulated", "semireal", "rruff"}
    for name, n_test in (("semireal", TINY["semireal"]["n_test"]), ("rruff", 30)):
        real = json.loads((workspace / f"reports/metrics_{name}.json").read_text())
        assert real["n_test"] == n_test and "rmse_refined_over_best_classical" in real["ratio"]
    assert (workspace / "mlruns").is_dir()


def test_repro_fine_tunes_on_the_real_folder_and_registers_with_the_parent(workspace):
    real = sorted(
        p.relative_to(workspace / "data/real") for p in (workspace / "data/real").rglob("*")
    )
    assert Path("Horiba_MacroRAM/acetonitrile.txt") in real  # seeded from the shared folder
    report = json.loads((workspace / "reports/finetune.json").read_text())
    registration = json.loads((workspace / "reports/registration.json").read_text())
    parent = registration["reference_version"]  # production after the gate
    assert str(report["parent_version"]) == parent
    assert report["real"]["heldout_spectra"] > 0 and report["real"]["train_spectra"] > 0
    assert set(report["heldout_quality"]) == {"resunet_before", "resunet_after", "arpls", "aspls"}
    assert "saturated detector" in " ".join(report["real"]["skipped"])
    figures = sorted(p.name for p in (workspace / "reports/finetune_figures").iterdir())
    assert figures == ["quality.png", "real_00.png", "real_01.png"]
    record = json.loads((workspace / "reports/registration_finetuned.json").read_text())
    assert record["parent_version"] == parent
    ratio = record["simulated_test"]["rmse"] / record["parent"]["rmse"]
    assert record["rmse_ratio"] == pytest.approx(ratio)
    assert record["registered"] == (ratio <= 1.10)
    if record["registered"]:
        import mlflow

        uri = f"sqlite:///{workspace / 'mlflow.db'}"
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        version = client.get_model_version("resunet1d", record["version"])
        assert version.tags["parent_version"] == parent
        artifacts = {a.path for a in client.list_artifacts(record["run_id"], "figures")}
        assert "figures/quality.png" in artifacts


def test_repro_gates_the_fast_variant_against_the_registered_model(workspace):
    record = json.loads((workspace / "reports/registration_fast.json").read_text())
    assert record["production_version"] == "1"
    ratio = record["variant"]["rmse"] / record["production"]["rmse"]
    assert record["registered"] == (ratio <= 1.05), record["reason"]
    assert f"{ratio:.3f} x reference v1" in record["reason"]


def test_nothing_to_do_when_nothing_changed(workspace):
    out = _run(workspace, "dvc", "status").stdout
    assert "up to date" in out


def test_changing_train_params_reruns_train_and_later_stages_only(workspace):
    params_path = workspace / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["train"]["seed"] = 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    before = json.loads((workspace / "reports/registration.json").read_text())
    finetuned = (workspace / "models/finetuned.pt").read_bytes()
    try:
        out = _run(workspace, "dvc", "repro").stdout
        stages = yaml.safe_load((workspace / "dvc.yaml").read_text())["stages"]
        ran = {s for s in stages if f"Running stage '{s}'" in out}
        # the data, the classical fits and the denoiser (no train.* in it) stay; both networks
        # and the fine-tuning follow; check_params reruns (params.yaml changed) with the same
        # output, so it moves nothing
        kept = {"simulate", "real", "classical", "register_shipped", "semireal", "train_denoiser"}
        if (workspace / "models/finetuned.pt").read_bytes() == finetuned:
            kept.add("export_finetuned")  # fine-tuned again from the same production model
        assert ran == set(stages) - kept, out
        registration = json.loads((workspace / "reports/registration.json").read_text())
        assert int(registration["version"]) > int(before["version"])  # new, through the gate
        assert registration["reason"]
    finally:
        params_path.write_text(original)
        _run(workspace, "dvc", "repro")


def test_changing_denoise_params_reruns_the_denoiser_only(workspace):
    params_path = workspace / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["denoise"]["seed"] += 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        out = _run(workspace, "dvc", "repro").stdout
        stages = yaml.safe_load((workspace / "dvc.yaml").read_text())["stages"]
        assert {s for s in stages if f"Running stage '{s}'" in out} == {
            "check_params",
            "train_denoiser",
        }, out
        report = json.loads((workspace / "reports/denoiser.json").read_text())
        assert report["samples"] == params["denoise"]["samples"] and report["denoiser_rmse"] > 0
    finally:
        params_path.write_text(original)
        _run(workspace, "dvc", "repro")


def test_bad_params_stop_dvc_repro_at_the_root_and_every_output_survives(workspace):
    """check_params (the DAG's root) refuses them before DVC deletes any stage's outputs."""
    params_path = workspace / "params.yaml"
    original = params_path.read_text()
    model = (workspace / "models/resunet.pt").read_bytes()
    params = yaml.safe_load(original)
    params["train"]["samples"] = -3
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _run(workspace, "dvc", "repro", check=False)
        assert proc.returncode != 0
        assert "train.samples: expected a value >= 1, got -3" in proc.stdout + proc.stderr
        assert "Running stage 'train'" not in proc.stdout
        assert (workspace / "models/resunet.pt").read_bytes() == model  # left as it was
    finally:
        params_path.write_text(original)
    # DVC removed the check's own small record before running it, nothing else
    status = _run(workspace, "dvc", "status").stdout
    assert "deleted:            reports/params_check.json" in status
    assert "models/resunet.pt" not in status and "data/simulated" not in status
    _run(workspace, "dvc", "checkout", "-q", "check_params")
    assert "up to date" in _run(workspace, "dvc", "status").stdout


def test_push_then_pull_restores_identical_artifacts(workspace):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    expected = {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["md5"].endswith(".dir")  # folders: checked below by a file in them
    }
    assert "models/resunet.pt" in expected
    _run(workspace, "dvc", "push", "-q")
    for rel in ("data", "models", "reports"):
        shutil.rmtree(workspace / rel)
    shutil.rmtree(workspace / ".dvc" / "cache")
    _run(workspace, "dvc", "pull", "-q")
    for rel, md5 in expected.items():
        assert _md5(workspace / rel) == md5, rel
    assert (workspace / "reports/figures/fig_rmse.png").exists()
    assert (workspace / "data/real/README.md").exists()
    assert "up to date" in _run(workspace, "dvc", "status").stdout
