"""Stages ``train`` and ``train_fast``: ResUNet-1D (or, ``--student``, the fast variant).

The student is the same network with ``student.channels`` (16x fewer multiply-adds), trained
the same way for ``student.epochs`` epochs with a learning-rate step of ``student.lr_step``.
An interrupted run resumes from ``--resume`` (written every epoch, removed at the end) when
run again with the same params and data.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from pipeline.checkpoint import save_checkpoint
from pipeline.config import ModelParams, Params, TrainParams
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import arguments, params_of, write_history
from pipeline.train import Epoch, to_tensors, train


def settings(params: Params, student: bool) -> tuple[ModelParams, TrainParams]:
    """The network and training settings of the seed network or of the student."""
    if not student:
        return params.model, params.train
    model = dataclasses.replace(params.model, channels=params.student.channels)
    plan = dataclasses.replace(
        params.train, epochs=params.student.epochs, lr_step=params.student.lr_step
    )
    return model, plan


def run(
    params: Params,
    train_set: SpectrumSet,
    val_set: SpectrumSet,
    student: bool = False,
    resume: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], list[Epoch], ModelParams]:
    """Train; return the best epoch's weights, the history and the network's params."""
    model_params, plan = settings(params, student)
    state, history = train(
        model_params,
        plan,
        to_tensors(train_set.observed, train_set.baseline, model_params.normalisation),
        to_tensors(val_set.observed, val_set.baseline, model_params.normalisation),
        resume_path=resume,
        progress=progress,
    )
    return state, history, model_params


def main(argv: list[str] | None = None) -> int:
    """Write the best epoch's checkpoint and the per-epoch history (CSV)."""
    parser = arguments(__doc__, "train", "data out history resume")
    parser.add_argument("--student", action="store_true", help="the fast variant (student.*)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    params = params_of(args)
    sets = load_sets(args.data, ("train", "val"))
    state, history, model_params = run(
        params, sets["train"], sets["val"], args.student, args.resume, not args.no_progress
    )
    save_checkpoint(args.out, state, model_params)
    write_history(args.history, history)
    args.resume.unlink(missing_ok=True)  # finished: nothing to resume
    best = min(history, key=lambda e: e.val_mae)
    print(f"best epoch {best.epoch}: val MAE {best.val_mae:.5f}, val RMSE {best.val_rmse:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
