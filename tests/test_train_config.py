"""The training params: the budget in spectra, retired keys, profiles, a standalone stage."""

import copy
import dataclasses
import subprocess
import sys

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import ConfigError, load_params, parse_params

from .conftest import ROOT, tiny_params


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize(
    ("key", "replacement"),
    [
        ("train.epochs", "train.samples"),
        ("train.lr_step", "train.warmup"),
        ("train.lr_gamma", "train.warmup"),
        ("student.epochs", "student.samples"),
        ("student.lr_step", "warm-up and cosine"),
    ],
)
def test_retired_keys_are_rejected_with_what_replaced_them(raw, key, replacement):
    section, name = key.split(".")
    raw[section][name] = 5
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    assert str(err.value).startswith(f"{key}: no longer a params.yaml key")
    assert replacement in str(err.value) and "docs/training.md" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("samples", 0, "train.samples: expected a value >= 1, got 0"),
        ("warmup", 1.2, "train.warmup: expected a value <= 1.0, got 1.2"),
        ("warmup", -0.1, "train.warmup: expected a value >= 0.0"),
        ("workers", -1, "train.workers: expected a value >= 0, got -1"),
        ("eval_every", 0, "train.eval_every: expected a value >= 1, got 0"),
    ],
)
def test_bad_budget_values_are_rejected(raw, key, value, message):
    raw["train"][key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_params(raw)


def test_the_full_profile_is_laid_over_the_sections(params):
    full = load_params(ROOT / "params.yaml", "full")
    assert full.train.samples >= 4_000_000 and full.train.batch_size == 512
    assert full.train.lr == 0.002 and full.train.workers > 0
    assert full.student.samples >= 4_000_000
    assert full.model == params.model and full.simulate == params.simulate
    assert full.train.seed == params.train.seed  # what the profile does not name is kept
    assert params.train.samples < full.train.samples  # no profile: the default budget


def test_the_student_never_gets_squeeze_and_excitation(params):
    # model.attention: se (the 4x ablation's winner, docs/ablation.md) is for the seed network;
    # the fast variant exists for speed (SE costs inference time) and was not measured with it
    from pipeline.stages.train import settings

    se = dataclasses.replace(params, model=dataclasses.replace(params.model, attention="se"))
    assert settings(se, student=False)[0].attention == "se"
    assert settings(se, student=True)[0].attention == "none"


def test_profiles_are_checked_on_every_load_and_named_in_errors(raw):
    data = copy.deepcopy(raw)
    data["profiles"]["full"]["train"]["samples"] = 0
    with pytest.raises(ConfigError, match=r"profiles\.full: train\.samples: expected a value >= 1"):
        parse_params(data)  # even when the profile is not chosen
    data = copy.deepcopy(raw)
    data["profiles"]["full"]["train"]["epochs"] = 3
    with pytest.raises(ConfigError, match=r"profiles\.full: train\.epochs: no longer"):
        parse_params(data)
    with pytest.raises(ConfigError, match=r"profiles\.huge: no such profile .*has: full"):
        parse_params(raw, "huge")
    data = {k: v for k, v in raw.items() if k != "profiles"}
    with pytest.raises(ConfigError, match=r"no such profile \(params.yaml has: none\)"):
        parse_params(data, "full")


def test_the_train_stage_stops_on_bad_params_before_any_work(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(tiny_params(train={"samples": 0})))
    out = tmp_path / "model.pt"
    args = ["--data", str(tmp_path / "missing"), "--out", str(out), "--history", "h.csv"]
    code = main(["--params", str(bad), "train", *args, "--resume", "r.pt", "--no-progress"])
    assert code == 2
    assert "train.samples: expected a value >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_the_train_stage_imports_without_mlflow_dvc_prefect_or_pybaselines():
    """The GPU machine has none of them: the `full` recipe runs the stage standalone."""
    code = (
        "import sys\n"
        "for name in ('mlflow', 'dvc', 'prefect', 'pybaselines', 'onnx', 'onnxruntime'):\n"
        "    sys.modules[name] = None\n"
        "import pipeline.stages.train, pipeline.stages.simulate, pipeline.train\n"
        "import pipeline.simulate, pipeline.stream\n"
        "pipeline.stages.train.load_params('params.yaml', 'full')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_the_train_stage_runs_a_profile_and_removes_its_resume_file(tmp_path):
    from pipeline.stages import simulate, train
    from pipeline.stages._common import read_history

    data = tiny_params()
    data["profiles"] = {"quick": {"train": {"samples": 96, "eval_every": 64}}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    assert simulate.main(["--params", str(params), "--out", str(tmp_path / "sim")]) == 0
    paths = {name: tmp_path / name for name in ("model.pt", "history.csv", "resume.pt")}
    args = ["--params", str(params), "--data", str(tmp_path / "sim"), "--no-progress"]
    args += ["--out", str(paths["model.pt"]), "--history", str(paths["history.csv"])]
    assert train.main([*args, "--resume", str(paths["resume.pt"]), "--profile", "quick"]) == 0
    assert [row["samples"] for row in read_history(paths["history.csv"])] == ["64", "96"]
    assert paths["model.pt"].exists() and not paths["resume.pt"].exists()
