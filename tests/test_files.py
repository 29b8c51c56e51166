import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.files import LockTimeout, atomic_path, file_lock, write_json

from .conftest import ROOT


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("interrupted")
    assert target.read_text().startswith("{")
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_temporary_name_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "train.npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent.parent == tmp_path  # in the target folder
        tmp.write_bytes(b"x")
    assert (tmp_path / "train.npz").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


def test_temporary_names_are_unpredictable_exclusive_and_private(tmp_path):
    target = tmp_path / "metrics.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second  # two writers of one target (threads, processes) never share
        for tmp in (first, second):
            assert tmp.is_file() and not tmp.is_symlink()  # created, exclusively, by atomic_path
            assert str(os.getpid()) not in tmp.parent.name  # nothing to guess it from
            assert tmp.parent.stat().st_mode & 0o777 == 0o700  # nobody else can plant in it
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the last to finish wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_symlink_planted_at_a_predictable_temporary_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    # the name atomic_path used before (.<stem>.tmp-<pid><suffix>) and the target's own name
    (out / f".metrics.tmp-{os.getpid()}.json").symlink_to(victim)
    (out / "metrics.json").symlink_to(victim)
    write_json(out / "metrics.json", {"a": 1})
    assert victim.read_text() == "precious"
    assert not (out / "metrics.json").is_symlink()
    assert json.loads((out / "metrics.json").read_text()) == {"a": 1}


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    code = (
        "import signal, sys, time; from pipeline.files import atomic_path\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a stage starts, whatever pytest's\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half'); print('writing', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    target = tmp_path / "out" / "train.pt"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert list(target.parent.iterdir()) == []  # neither the target nor a temporary file


def _hold(path, seconds, holder="nightly run"):
    """Another process holding ``path``'s lock for ``seconds``; returns once it holds it."""
    code = (
        "import sys, time; from pipeline.files import file_lock\n"
        "with file_lock(sys.argv[1], holder=sys.argv[3]):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(seconds), holder],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_file_lock_records_its_holder_and_clears_it(tmp_path):
    path = tmp_path / "sub" / "store.lock"
    with file_lock(path, holder="registration") as held:
        assert held == path
        assert path.read_text().startswith(f"registration (pid {os.getpid()}, since ")
    assert path.read_text() == ""
    with file_lock(path, timeout=0):  # free again, and granted at once
        pass


def test_file_lock_times_out_naming_the_file_and_holder(tmp_path):
    path = tmp_path / "store.lock"
    holder = _hold(path, 30)
    try:
        told = []
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="nightly run") as exc:
            with file_lock(path, timeout=0.5, poll=0.1, on_wait=told.append):
                pytest.fail("the lock was granted twice")
        assert 0.5 <= time.monotonic() - start < 10
        assert isinstance(exc.value, LockTimeout)
        assert str(path) in str(exc.value) and exc.value.holder.startswith("nightly run (pid")
        assert "gave up after waiting 0.5 s" in str(exc.value)
        assert len(told) == 1 and "nightly run" in told[0] and str(path) in told[0]
        with pytest.raises(TimeoutError):  # 0: refused at once, and nobody told of a wait
            with file_lock(path, timeout=0, on_wait=told.append):
                pass
        assert len(told) == 1
    finally:
        holder.kill()
        holder.wait()
    with file_lock(path, timeout=0):  # freed with its process, even killed
        pass


def test_file_lock_blocks_by_default_until_the_holder_is_done(tmp_path):
    path = tmp_path / "store.lock"
    holder = _hold(path, 1)
    told = []
    try:
        start = time.monotonic()
        with file_lock(path, on_wait=told.append):
            waited = time.monotonic() - start
        assert holder.wait(10) == 0
    finally:
        holder.kill()
        holder.wait()
    assert 0.5 < waited < 30
    assert len(told) == 1 and "as long as it takes" in told[0]
