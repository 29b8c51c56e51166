"""The ``check_params`` stage, the root of the DAG: bad params stop ``dvc repro`` before DVC
deletes any stage's outputs (measured on a real scratch git + DVC workspace)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.stages.check_params import VALID

from .conftest import ROOT, tiny_params

OUTPUTS = ("data/simulated/train.npz", "data/simulated/val.npz", "data/simulated/test.npz")


def test_every_stage_depends_on_the_check():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    (out,) = stages["check_params"]["outs"]
    assert "params.yaml" in stages["check_params"]["deps"]
    assert [name for name, stage in stages.items() if out not in stage["deps"]] == ["check_params"]


def test_valid_params_give_the_same_record_whatever_their_values(tmp_path, capsys):
    out = tmp_path / "reports" / "params_check.json"
    for seed in (1, 2):
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump(tiny_params(train={"seed": seed})))
        assert main(["--params", str(params), "check-params", "--out", str(out)]) == 0
        assert json.loads(out.read_text()) == VALID  # a digest here would re-run every stage


def test_bad_params_write_nothing(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(evaluate={"noise_bins": [0.02, 0.01]})))
    out = tmp_path / "params_check.json"
    assert main(["--params", str(params), "check-params", "--out", str(out)]) == 2
    assert "evaluate.noise_bins: expected strictly increasing" in capsys.readouterr().err
    assert not out.exists()


def _run(ws: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_SITE_CACHE_DIR"] = str(ws / ".dvc" / "tmp" / "site-cache")
    return subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=600)


def _digests(ws: Path) -> dict[str, str]:
    return {rel: hashlib.sha256((ws / rel).read_bytes()).hexdigest() for rel in OUTPUTS}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, make_workspace):
    """A workspace where ``dvc repro simulate`` has run: (workspace, params text, digests)."""
    ws = make_workspace(tmp_path_factory.mktemp("ws"))
    done = _run(ws, "dvc", "repro", "simulate")
    assert done.returncode == 0, done.stdout + done.stderr
    return ws, (ws / "params.yaml").read_text(), _digests(ws)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("length: 128", "length: 120"), "simulate.length: 120 is not a multiple of"),
        # DVC reads params.yaml itself (for the stages' params) and refuses this one first
        (("n_train: 256", "n_train: 256\n  n_train: 32"), "Duplicate_keys"),
        (("seed: 20220", "seed: -1"), "simulate.seed: expected a value >= 0"),
    ],
)
def test_bad_params_stop_dvc_repro_before_any_output_is_deleted(simulated, change, message):
    ws, text, digests = simulated
    assert change[0] in text
    (ws / "params.yaml").write_text(text.replace(change[0], change[1], 1))
    try:
        failed = _run(ws, "dvc", "repro")
    finally:
        (ws / "params.yaml").write_text(text)
    assert failed.returncode != 0
    assert message in failed.stdout + failed.stderr
    assert "Running stage 'simulate'" not in failed.stdout
    assert _digests(ws) == digests  # every simulated set still there, unchanged
