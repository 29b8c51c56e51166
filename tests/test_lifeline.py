"""pipeline/lifeline.py: a trainer DVC runs dies with DVC (a real parent killed with SIGKILL),
one started by hand does not, and a second trainer on the same output is refused."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline import lifeline
from pipeline.cli import main
from pipeline.files import file_lock

from .conftest import ROOT, tiny_params

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# a parent that starts the command given after it, says the child's pid, and waits for it
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny params with a budget no test waits for, and the simulated sets."""
    ws = tmp_path_factory.mktemp("ws")
    (ws / "params.yaml").write_text(yaml.safe_dump(tiny_params(train={"samples": 10**8})))
    assert main(["--params", str(ws / "params.yaml"), "simulate", "--out", str(ws / "sim")]) == 0
    return ws


def trainer(ws: Path, out: str = "m.pt") -> list[str]:
    return [
        sys.executable, "-m", "pipeline.cli", "--params", str(ws / "params.yaml"), "train",
        "--data", str(ws / "sim"), "--out", str(ws / out), "--history", str(ws / "h.csv"),
        "--resume", str(ws / "resume.pt"),
    ]  # fmt: skip


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for an init that does not reap is not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def start_then_kill_parent(ws: Path, dvc: bool) -> int:
    """Start a parent running the trainer; once the trainer trains, SIGKILL the parent.

    ``dvc``: the parent is DVC (``DVC_STAGE`` set, as DVC sets it). Returns the trainer's pid.
    """
    env = {k: v for k, v in os.environ.items() if k != "DVC_STAGE"}
    env |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"} | (
        {"DVC_STAGE": "train"} if dvc else {}
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, *trainer(ws)],
        env=env,
        cwd=ws,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the progress bar
        text=True,
    )
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().startswith("training on")  # the trainer is at work
    parent.kill()  # SIGKILL: no chance to pass anything on
    parent.wait()
    return child


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


@linux_only
def test_a_trainer_run_by_dvc_dies_with_its_parent(workspace):
    child = start_then_kill_parent(workspace, dvc=True)
    try:
        assert gone_within(child, 5.0), "the trainer outlived its parent"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


@linux_only
def test_a_trainer_started_by_hand_outlives_its_parent(workspace):
    """nohup training (DEVELOPERS.md) must survive the shell that started it."""
    child = start_then_kill_parent(workspace, dvc=False)
    try:
        assert not gone_within(child, 2.0)
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_second_trainer_on_the_same_output_is_refused(workspace, monkeypatch, capsys):
    monkeypatch.setattr(lifeline, "LOCK_WAIT_S", 0.3)
    out = workspace / "busy.pt"
    with file_lock(f"{out}.lock", holder="raman-baseline train"):  # a trainer at work
        assert main(trainer(workspace, "busy.pt")[3:]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(
        f"raman-baseline train: another process is writing {out} (raman-baseline train (pid "
    )
    assert not out.exists()
