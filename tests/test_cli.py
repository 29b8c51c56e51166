"""The ``raman-baseline`` dispatcher: every dvc.yaml stage, ``--params`` anywhere, no guessing."""

import os
import shlex
import subprocess
import sys

import pytest
import yaml

from pipeline.cli import STAGES, USER, build_parser, main

from .conftest import ROOT, tiny_params


def test_every_dvc_stage_command_is_dispatched_and_listed(capsys):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = {shlex.split(s["cmd"])[1] for s in stages.values()}
    assert commands == set(STAGES)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    listed = capsys.readouterr().out
    for command in [*STAGES, *USER]:
        assert command in listed


@pytest.mark.parametrize("where", ["before", "after"])
def test_params_may_come_before_or_after_the_command(tmp_path, capsys, where):
    bad = tmp_path / "bad.yaml"
    data = tiny_params()
    data["simulate"]["n_test"] = -1
    bad.write_text(yaml.safe_dump(data))
    args = ["simulate", "--out", str(tmp_path / "sim")]
    argv = ["--params", str(bad), *args] if where == "before" else [*args, "--params", str(bad)]
    assert main(argv) == 2
    assert f"invalid {bad}: simulate.n_test: expected a value >= 1" in capsys.readouterr().err
    assert not (tmp_path / "sim").exists()


@pytest.mark.parametrize("command", ["promote", "rollback", "simulate"])
def test_unknown_arguments_are_refused_not_ignored(command, capsys):
    extra = ["--version", "1", "--reason", "x"] if command == "promote" else []
    if command == "simulate":
        extra = ["--out", "nowhere"]
    with pytest.raises(SystemExit) as exc:
        main([command, *extra, "--bogus"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_dvc_yaml_stage_names_are_commands_too(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["register_fast", "--help"])
    assert exc.value.code == 0
    assert "raman-baseline register-fast" in capsys.readouterr().out


def test_a_missing_input_file_is_one_line_not_a_traceback(tmp_path, capsys):
    args = ["--model", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]
    code = main(["export", *args, "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "raman-baseline export: FileNotFoundError: [Errno 2] No such file or directory: 'nope.pt'"
    ]


def test_promote_waits_for_a_held_registry_lock_then_says_so(tmp_path, monkeypatch, capsys):
    import fcntl

    from pipeline import cli, registry

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    registry.connect(create=True)
    monkeypatch.setattr(cli, "LOCK_WAIT_S", 0.5)
    with (tmp_path / "mlflow.db.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a registration in progress elsewhere
        code = main(["promote", "--version", "1", "--reason", "by hand"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("raman-baseline promote: ") and "mlflow.db.lock" in last, err


@pytest.mark.parametrize("stage", ["simulate", "train"])
def test_a_stage_run_as_a_module_reports_bad_params_in_one_line(tmp_path, stage):
    """``python -m pipeline.stages.<stage>`` (DEVELOPERS.md) answers as the command line does."""
    bad = tmp_path / "bad.yaml"
    data = tiny_params()
    data["simulate"]["length"] = 120
    bad.write_text(yaml.safe_dump(data))
    paths = {"simulate": ["--out", "sim"], "train": ["--data", "sim", "--out", "m.pt"]}[stage]
    paths += ["--history", "h.csv", "--resume", "r.pt"] if stage == "train" else []
    done = subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{stage}", "--params", str(bad), *paths],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"raman-baseline: invalid {bad}: simulate.length: 120 is not a multiple of 32, which "
        "the 6 levels of model.channels need"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
