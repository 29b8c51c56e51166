"""Training of ResUNet-1D on simulated spectra.

Adam on an RMSE loss of the normalised baseline (:mod:`pipeline.normalise`), validation MAE
after every epoch, the best epoch's weights kept, step learning-rate decay. CUDA when present,
else CPU; bf16 autocast where the device has bf16 arithmetic (``train.precision: auto``;
:mod:`pipeline.device`). A resume checkpoint is written after every epoch, so an interrupted
run continues where it stopped; every checkpoint is loaded weights-only. The best weights are
saved by :func:`pipeline.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.config import ModelParams, TrainParams, to_dict
from pipeline.device import pick_device, resolve_precision, step_autocast, tuned_kernels
from pipeline.files import atomic_path
from pipeline.model import build_model
from pipeline.normalise import normalise


@dataclass
class Epoch:
    """One row of the training history."""

    epoch: int
    train_rmse: float
    val_mae: float
    val_rmse: float
    lr: float
    seconds: float


def to_tensors(
    observed: np.ndarray, baseline: np.ndarray, normalisation: str = "minmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised ``(N, 1, L)`` inputs and targets, with the shared normalisation step.

    ``normalisation``: the model's (``model.normalisation``; :mod:`pipeline.normalise`).
    """
    x, low, span = normalise(observed, normalisation)
    target = ((baseline - low) / span).astype(np.float32)
    return torch.from_numpy(x[:, None, :]), torch.from_numpy(target[:, None, :])


def train(
    model_params: ModelParams,
    params: TrainParams,
    train_xy: tuple[torch.Tensor, torch.Tensor],
    val_xy: tuple[torch.Tensor, torch.Tensor],
    resume_path: Path | None = None,
    progress: bool = True,
    init_state: dict[str, torch.Tensor] | None = None,
    frozen_norm: bool = False,
) -> tuple[dict[str, torch.Tensor], list[Epoch]]:
    """Train; return the best epoch's ``state_dict`` (on CPU) and the history.

    ``init_state``: start from these weights (fine-tuning) instead of a random initialisation.
    ``frozen_norm``: keep the batch-norm statistics of ``init_state`` (fine-tuning batches of
    another domain would otherwise shift them, and with them every simulated prediction).
    """
    torch.manual_seed(params.seed)
    if params.threads:
        torch.set_num_threads(params.threads)
    device = pick_device()
    model = build_model(
        model_params.arch, model_params.channels, model_params.enc_kernel, model_params.dec_kernel
    )
    if init_state is not None:
        model.load_state_dict(init_state)
    model = model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, params.lr_step, params.lr_gamma)
    shuffle = torch.Generator().manual_seed(params.seed)
    history: list[Epoch] = []
    best = {"val_mae": math.inf, "state": _cpu_state(model)}

    tag = _resume_tag(model_params, params, train_xy)
    state = _load_resume(resume_path, tag)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        shuffle.set_state(state["shuffle"])
        history = [Epoch(**row) for row in json.loads(state["history"])]
        best = {"val_mae": state["best_val_mae"], "state": state["best"]}

    x_train, y_train = train_xy
    autocast = step_autocast(device, params.precision)
    if progress:
        print(f"training on {device} in {resolve_precision(device, params.precision)}")
    with tuned_kernels(device):
        for epoch in range(len(history) + 1, params.epochs + 1):
            start = time.perf_counter()
            model.train()
            if frozen_norm:
                for module in model.modules():
                    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                        module.eval()
            order = torch.randperm(len(x_train), generator=shuffle)
            batches = [
                order[i : i + params.batch_size] for i in range(0, len(order), params.batch_size)
            ]
            total, seen = 0.0, 0
            bar = tqdm(batches, desc=f"epoch {epoch}/{params.epochs}", disable=not progress)
            for idx in bar:
                xb, yb = x_train[idx].to(device), y_train[idx].to(device)
                loss = train_step(model, optimiser, xb, yb, autocast)
                total += loss.item() * len(idx)
                seen += len(idx)
                bar.set_postfix(rmse=f"{total / seen:.4f}")
            val_mae, val_rmse = evaluate_model(model, val_xy, params.batch_size, device)
            history.append(
                Epoch(
                    epoch,
                    total / seen,
                    val_mae,
                    val_rmse,
                    schedule.get_last_lr()[0],
                    time.perf_counter() - start,
                )
            )
            schedule.step()
            if val_mae < best["val_mae"]:
                best = {"val_mae": val_mae, "state": _cpu_state(model)}
            if resume_path is not None:
                _save_resume(resume_path, tag, model, optimiser, schedule, shuffle, history, best)
    return best["state"], history


def train_step(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    autocast: torch.autocast,
) -> torch.Tensor:
    """One optimisation step on a batch; return its RMSE loss (detached).

    The forward pass runs under ``autocast`` (:func:`step_autocast`: bf16 with fp32 master
    weights, or off), the RMSE in fp32. ``benchmarks/train_speed.py`` times this very function.
    """
    with autocast:
        pred = model(xb)
    loss = torch.sqrt(torch.mean((pred.float() - yb) ** 2))  # RMSE
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    xy: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    device: torch.device,
) -> tuple[float, float]:
    """Mean absolute error and RMSE of the predicted normalised baselines."""
    model.eval()
    abs_sum = sq_sum = 0.0
    x, y = xy
    for i in range(0, len(x), batch_size):
        err = model(x[i : i + batch_size].to(device)).float() - y[i : i + batch_size].to(device)
        abs_sum += err.abs().sum().item()
        sq_sum += (err**2).sum().item()
    n = y.numel()
    return abs_sum / n, math.sqrt(sq_sum / n)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _resume_tag(model_params: ModelParams, params: TrainParams, train_xy) -> str:
    """What a resume checkpoint must match: the params and the training data."""
    h = hashlib.sha256(json.dumps([to_dict(model_params), to_dict(params)]).encode())
    h.update(train_xy[0][: min(len(train_xy[0]), 256)].numpy().tobytes())
    h.update(str(len(train_xy[0])).encode())
    return h.hexdigest()


def _load_resume(path: Path | None, tag: str) -> dict | None:
    if path is None or not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("tag") == tag else None


def _save_resume(path, tag, model, optimiser, schedule, shuffle, history, best) -> None:
    state = {
        "tag": tag,
        "model": _cpu_state(model),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "shuffle": shuffle.get_state(),
        "history": json.dumps([vars(e) for e in history]),
        "best_val_mae": best["val_mae"],
        "best": best["state"],
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
