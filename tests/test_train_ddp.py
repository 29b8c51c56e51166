"""Training with torch.distributed: 2 CPU processes (gloo) against one, on the same batches.

Each run is spawned (``torch.multiprocessing``) with torchrun's environment (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``), CUDA hidden, fp32, one thread per process. An
evaluation after every step makes each history row one step's loss over the global batch.
"""

import dataclasses
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
import yaml

import pipeline.train as tr
from pipeline import distributed
from pipeline.simulate import simulate
from pipeline.stream import SimulatedStream
from pipeline.train import recipe, to_tensors, train

from .conftest import ROOT, tiny_params

STEPS = 20
LOSS_TOL = 1e-4  # the bound on each step's global loss
# Weights after 20 AdamW steps: the runs differ only in the order of floating-point sums
# (batch-norm statistics, loss, gradients), amplified by Adam's normalised updates of
# near-zero gradients; measured 8.7e-6 on 2026-11-30 (docs/training.md).
WEIGHT_TOL = 1e-4


FLAGS = ("out", "history", "resume")


class _Stop(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, setup, resume, out, stop_at):
    """One training process: train, save this rank's history and best weights to ``out``."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1"
    )
    os.environ["MASTER_PORT"] = str(port)
    model_params, plan, sim_params, val = setup
    if stop_at:  # every rank stops at the same evaluation, as if the job were killed there
        real, calls = tr.evaluate_model, []

        def evaluate(*args):
            calls.append(1)
            if len(calls) == stop_at:
                raise _Stop
            return real(*args)

        tr.evaluate_model = evaluate
    with distributed.process_group():
        stream = SimulatedStream(sim_params, plan.seed, normalisation=model_params.normalisation)
        try:
            state, history = train(model_params, plan, stream, val, resume, progress=False)
        except _Stop:
            return
    torch.save({"state": state, "history": [vars(e) for e in history]}, f"{out}.{rank}")


def _launch(world, setup, resume, out, stop_at=0):
    """Run ``world`` training processes; the saved results of each rank."""
    mp.spawn(_rank, (world, _free_port(), setup, resume, out, stop_at), nprocs=world)
    if stop_at:
        return None
    return [torch.load(f"{out}.{r}", weights_only=True) for r in range(world)]


@pytest.fixture(scope="module")
def setup(tiny):
    plan = recipe(tiny.train)
    plan = dataclasses.replace(
        plan, samples=STEPS * plan.batch_size, eval_every=plan.batch_size, precision="fp32"
    )
    assert plan.threads == 1 and plan.batch_size == 32
    va = simulate(tiny.simulate, tiny.simulate.n_val, seed=2)
    return tiny.model, plan, tiny.simulate, to_tensors(va.observed, va.baseline)


@pytest.fixture(scope="module")
def runs(setup, tmp_path_factory):
    """One process, then two, each from scratch; the resume files hold the last weights."""
    tmp = tmp_path_factory.mktemp("ddp")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU and gloo in the spawned processes
    one = _launch(1, setup, tmp / "one.pt", tmp / "one")[0]
    two = _launch(2, setup, tmp / "two.pt", tmp / "two")
    last = {n: torch.load(tmp / f"{n}.pt", weights_only=True)["model"] for n in ("one", "two")}
    return one, two, last, tmp


def _rows(run: dict) -> list[dict]:
    """A run's history without the wall times."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run["history"]]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_two_gloo_processes_give_the_losses_and_weights_of_one(runs):
    one, two, last, _ = runs
    losses = [[row["train_rmse"] for row in run["history"]] for run in (one, *two)]
    assert all(len(run) == STEPS for run in losses)
    loss_diff = max(abs(a - b) for a, b in zip(losses[0], losses[1], strict=True))
    weight_diff = _max_diff(last["one"], last["two"])
    print(f"\nmax loss difference over {STEPS} steps {loss_diff:.2e}; weights {weight_diff:.2e}")
    assert loss_diff <= LOSS_TOL
    assert _rows(two[0]) == _rows(two[1])  # every rank has the same history
    assert weight_diff <= WEIGHT_TOL
    assert _max_diff(two[0]["state"], two[1]["state"]) == 0  # the same weights on every rank
    assert losses[0][-1] < losses[0][0]  # it trained


def test_an_interrupted_distributed_run_resumes_with_two_processes_or_one(runs, setup):
    _, two, last, tmp = runs
    resume = tmp / "resumed.pt"
    _launch(2, setup, resume, tmp / "cut", stop_at=STEPS // 2)  # killed at evaluation 10
    assert torch.load(resume, weights_only=True)["seen"] == (STEPS // 2 - 1) * 32
    alone = tmp / "alone.pt"
    shutil.copy(resume, alone)
    again = _launch(2, setup, resume, tmp / "again")
    assert _rows(again[0]) == _rows(two[0])
    final = torch.load(resume, weights_only=True)["model"]
    assert _max_diff(final, last["two"]) == 0
    # the resume file is one process's too: one process finishes what two started
    _launch(1, setup, alone, tmp / "alone")
    assert _max_diff(torch.load(alone, weights_only=True)["model"], last["one"]) <= WEIGHT_TOL


def test_the_stage_under_torchrun_writes_from_rank_0(tmp_path):
    from pipeline.stages import simulate
    from pipeline.stages._common import read_history

    params = tmp_path / "params.yaml"
    train = {"samples": 128, "eval_every": 64, "workers": 1}  # a simulation process per rank
    params.write_text(yaml.safe_dump(tiny_params(train=train)))
    assert simulate.main(["--params", str(params), "--out", str(tmp_path / "sim")]) == 0
    paths = {name: tmp_path / name for name in ("model.pt", "history.csv", "resume.pt")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "pipeline.stages.train", "--params", str(params), "--no-progress"]
    cmd += ["--data", str(tmp_path / "sim")]
    cmd += [f"--{flag}={paths[name]}" for flag, name in zip(FLAGS, paths, strict=True)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained on 128 spectra") == 1  # rank 0 speaks, once
    assert [row["samples"] for row in read_history(paths["history.csv"])] == ["64", "128"]
    assert paths["model.pt"].exists() and not paths["resume.pt"].exists()


def test_a_process_count_that_does_not_divide_the_batch_is_refused_in_one_line(
    tmp_path, monkeypatch, capsys
):
    from pipeline.stages import train as stage

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    out = tmp_path / "model.pt"
    args = ["--params", str(params), "--data", str(tmp_path), "--out", str(out)]
    args += ["--history", "h.csv", "--resume", "r.pt", "--no-progress"]
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc-per-node 3 sets it
    code = stage.script(lambda: stage.main(args), "train")
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert err.count("\n") == 1 and "train.batch_size 32 is not divisible by the 3" in err
    monkeypatch.setenv("RANK", "1")  # the other ranks leave without a word
    assert stage.script(lambda: stage.main(args), "train") == 1
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("WORLD_SIZE")
    assert stage.main([*args, "--check-world", "4"]) == 0  # what train_full.sh asks first
