"""Stages ``train`` and ``train_fast``: ResUNet-1D (or, ``--student``, the fast variant).

The network trains on the seeded stream of freshly simulated spectra (:mod:`pipeline.stream`,
``train.workers`` simulation processes) for ``train.samples`` spectra, AdamW with a linear
warm-up and a cosine decay, validated on ``<data>/val.npz`` every ``train.eval_every``
spectra; the best validation MAE's weights are kept. The student is the same network with
``student.channels`` (16x fewer multiply-adds), trained the same way for ``student.samples``.

``--profile NAME`` lays ``profiles.NAME`` of params.yaml over the sections (``full``: the
GPU budget, DEVELOPERS.md). The stage imports torch, numpy, scipy, yaml and tqdm only, so it
runs standalone: ``python -m pipeline.stages.train --profile full ...``. An interrupted run
resumes from ``--resume`` (written at every evaluation, removed at the end) when run again
with the same params. One trainer at a time writes ``--out`` (``<out>.lock``,
:mod:`pipeline.lifeline`); under DVC, the trainer dies with DVC.

Under ``torchrun --nproc-per-node N -m pipeline.stages.train ...`` the N processes train as
one with DDP (:mod:`pipeline.distributed`: the same global batches, each process on ``1/N``
of every batch; NCCL on GPUs, gloo on CPUs); rank 0 alone holds the lock and writes the
checkpoint, the history, the resume file and the messages. A process count that does not
divide the batch size (or the budget) is refused in one line before any work
(``--check-world N`` checks it without training: ``scripts/train_full.sh`` does so before
starting torchrun).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from pipeline import distributed
from pipeline.checkpoint import save_checkpoint
from pipeline.config import ModelParams, Params, load_params
from pipeline.lifeline import only_writer
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import arguments, script, write_history
from pipeline.stream import SimulatedStream, to_tensors
from pipeline.train import Evaluation, Recipe, recipe, train


def settings(params: Params, student: bool) -> tuple[ModelParams, Recipe]:
    """The network and the training recipe of the seed network or of the student."""
    if not student:
        return params.model, recipe(params.train)
    # the fast variant is for speed: no MC-dropout passes (docs/uncertainty.md), and no
    # squeeze-and-excitation (15% slower under ONNX Runtime, not measured on the student)
    model = dataclasses.replace(
        params.model,
        channels=params.student.channels,
        dropout=0.0,
        mc_samples=0,
        attention="none",
    )
    return model, recipe(params.train, samples=params.student.samples)


def run(
    params: Params,
    val_set: SpectrumSet,
    student: bool = False,
    resume: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], list[Evaluation], ModelParams]:
    """Train on the stream; return the best weights, the history and the network's params."""
    model_params, plan = settings(params, student)
    stream = SimulatedStream(
        params.simulate,
        params.train.seed,
        params.train.workers,
        normalisation=model_params.normalisation,
    )
    state, history = train(
        model_params,
        plan,
        stream,
        to_tensors(val_set.observed, val_set.baseline, model_params.normalisation),
        resume_path=resume,
        progress=progress,
    )
    return state, history, model_params


def main(argv: list[str] | None = None) -> int:
    """Write the best evaluation's checkpoint and the history (CSV, a row per evaluation)."""
    parser = arguments(__doc__, "train", "data out history resume")
    parser.add_argument("--student", action="store_true", help="the fast variant (student.*)")
    parser.add_argument("--profile", help="lay profiles.PROFILE of params.yaml over it")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--check-world",
        type=int,
        metavar="N",
        help="only check that N processes (torchrun) can share the batch, then exit",
    )
    args = parser.parse_args(argv)
    params = load_params(args.params, args.profile)  # checked before any work
    _, plan = settings(params, args.student)
    budget = "student.samples" if args.student else "train.samples"
    try:
        distributed.check_world(
            args.check_world or distributed.world_size(),
            {"train.batch_size": plan.batch_size, budget: plan.samples},
        )
    except distributed.WorldSizeError:
        if int(os.environ.get("RANK", "0")) == 0:
            raise  # one line from rank 0; the other ranks leave quietly
        return 1
    if args.check_world:
        return 0
    command = "raman-baseline train-fast" if args.student else "raman-baseline train"
    with distributed.process_group() as rank:
        # a second trainer on these outputs is refused; rank 0 alone writes them
        lock = only_writer(args.out, command) if rank == 0 else contextlib.nullcontext()
        with lock:
            val = load_sets(args.data, ("val",))["val"]
            start = time.perf_counter()
            progress = not args.no_progress
            state, history, model_params = run(params, val, args.student, args.resume, progress)
            seconds = time.perf_counter() - start
            if rank == 0:
                save_checkpoint(args.out, state, model_params)
                write_history(args.history, history)
                args.resume.unlink(missing_ok=True)  # finished: nothing to resume
    if rank:
        return 0
    best = min(history, key=lambda e: e.val_mae)
    print(
        f"trained on {history[-1].samples:,} spectra in {seconds:.0f} s "
        f"(this run, resumed parts excluded); best at {best.samples:,}: "
        f"val MAE {best.val_mae:.5f}, val RMSE {best.val_rmse:.5f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "train"))
