"""The ``raman-baseline`` dispatcher: every dvc.yaml stage, ``--params`` anywhere, no guessing."""

import shlex

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
    assert "simulate.n_test: expected a value >= 1" in capsys.readouterr().err
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
