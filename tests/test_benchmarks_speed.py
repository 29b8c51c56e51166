"""benchmarks/speed.py, the runner: what it passes to each script, and one real quick section."""

import subprocess
import sys

import pytest

from benchmarks import common, speed
from tests.conftest import ROOT


@pytest.mark.parametrize("letter", sorted(speed.SCRIPTS))
def test_every_script_answers_help(letter):
    script = ROOT / "benchmarks" / speed.SCRIPTS[letter][0]
    done = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--json" in done.stdout


def test_each_section_gets_its_own_options(tmp_path):
    args = speed.parse_args(
        ["--quick", "--repeats", "4", "--eval-n", "99", "--onnx", "a.onnx", "--no-registry"]
    )
    params = tmp_path / "params.yaml"
    a = speed.section_arguments("a", args, params)
    assert a[:5] == ["--quick", "--params", str(params), "--repeats", "4"]
    assert a[5].startswith("--onnx=/") and a[5].endswith("a.onnx") and a[6:] == ["--no-registry"]
    assert speed.section_arguments("b", args, params)[-2:] == ["--repeats", "4"]
    assert speed.section_arguments("c", args, params) == ["--quick", "--params", str(params)]
    assert speed.section_arguments("d", args, params) == ["--workspace", "."]
    assert speed.section_arguments("e", args, params)[-2:] == ["--n", "99"]
    assert speed.why_missing("d", {}, "abcde").startswith("not measured (run with --repro")
    assert speed.why_missing("b", {"b": None}, "b").startswith("FAILED")


def test_a_quick_simulation_section_is_tabled_and_logged(tmp_path, monkeypatch):
    from pipeline import registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # restored afterwards: main() moves into the workspace
    argv = ["--workspace", str(tmp_path), "--params", str(ROOT / "params.yaml")]
    assert speed.main([*argv, "--sections", "c", "--quick"]) == 0

    rows = (tmp_path / "reports" / "speed.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("simulate,simulation per core,512,5000")
    text = (tmp_path / "reports" / "speed.txt").read_text()
    assert "median" in text and common.TITLES["simulate"] in text
    assert "inference_speed.py: not run (--sections)" in text
    assert "training: project step / plain fp32 eager = not measured (>= 2): n/a" in text
    assert "(3) simulation spectra/s per core = not measured" not in text
    client = registry.connect()
    experiment = client.get_experiment_by_name(speed.EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    assert (
        run.data.metrics["must.sim_per_core"]
        == run.data.metrics["simulate.simulation_per_core.L512.b5000.rate"]
    )
    assert run.data.params["sections"] == "c" and "workspace_commit" in run.data.tags
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"speed.csv", "speed.txt"}
