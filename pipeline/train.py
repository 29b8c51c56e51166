"""Training of ResUNet-1D, with a budget counted in spectra.

An RMSE loss of the normalised baseline (:mod:`pipeline.normalise`), with ``smoothness`` > 0
a second-difference penalty on the predicted baseline added under the root
(:func:`pipeline.losses.smooth_rmse`, ``train.smoothness``). Batches come from a
source (:mod:`pipeline.stream`): the seeded stream of freshly simulated spectra (pretraining)
or fixed tensors visited in shuffled passes (fine-tuning's real + replayed spectra). The
run consumes exactly ``samples`` spectra (the last batch is cut short if needed), validates
on the fixed validation set every ``eval_every`` spectra and at the end, and keeps the weights
of the evaluation with the lowest validation MAE; each evaluation is a row of the history.

The learning rate (:func:`learning_rate`) either warms up linearly over ``warmup`` of the
budget and then decays on a half cosine to zero (AdamW, pretraining: Loshchilov & Hutter,
"Decoupled weight decay regularization", ICLR 2019; "SGDR", ICLR 2017), or is multiplied by
``gamma`` every ``step_every`` spectra (Adam, fine-tuning's recipe, as before the stream).

CUDA when present, else CPU; bf16 autocast where the device has bf16 arithmetic
(``train.precision: auto``; :mod:`pipeline.device`). A resume checkpoint is written after
every evaluation: it records the spectra consumed, so an interrupted run continues the
source where it stopped and ends with the weights of an uninterrupted run. Every checkpoint
is loaded weights-only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline import distributed
from pipeline.checkpoint import network_of
from pipeline.config import ModelParams, TrainParams, to_dict
from pipeline.device import pick_device, resolve_precision, step_autocast, tuned_kernels
from pipeline.errors import one_line
from pipeline.files import atomic_path
from pipeline.losses import smooth_rmse
from pipeline.stream import Batch, FixedSet, SimulatedStream, to_tensors

__all__ = ["Evaluation", "Recipe", "learning_rate", "recipe", "to_tensors", "train"]
Source = SimulatedStream | FixedSet


@dataclass
class Evaluation:
    """One row of the training history: a validation pass.

    ``epoch`` is the evaluation's number (1-based; MLflow's step); ``samples`` the training
    spectra consumed so far; ``train_rmse`` the mean batch loss since the previous row; ``lr``
    the learning rate of the last step; ``seconds`` the wall time since the previous row.
    """

    epoch: int
    samples: int
    train_rmse: float
    val_mae: float
    val_rmse: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class Recipe:
    """How :func:`train` runs: budget, optimiser, learning-rate schedule, device settings.

    ``decay``: ``"cosine"`` (linear warm-up over the fraction ``warmup`` of ``samples``, then
    a half cosine to zero) or ``"step"`` (``lr * gamma ** (seen // step_every)``).
    ``optimiser``: ``"adamw"`` (decoupled weight decay) or ``"adam"`` (L2 in the gradient).
    ``smoothness``: the weight of :func:`pipeline.losses.smooth_rmse`'s penalty; 0: plain RMSE.
    """

    samples: int
    batch_size: int
    lr: float
    weight_decay: float
    eval_every: int
    seed: int
    precision: str
    threads: int
    warmup: float = 0.0
    decay: str = "cosine"
    step_every: int = 1
    gamma: float = 1.0
    optimiser: str = "adamw"
    smoothness: float = 0.0


def recipe(params: TrainParams, samples: int | None = None) -> Recipe:
    """The pretraining recipe of ``params`` (AdamW, warm-up + cosine); ``samples`` overrides."""
    return Recipe(
        samples=params.samples if samples is None else samples,
        batch_size=params.batch_size,
        lr=params.lr,
        weight_decay=params.weight_decay,
        eval_every=params.eval_every,
        seed=params.seed,
        precision=params.precision,
        threads=params.threads,
        warmup=params.warmup,
        smoothness=params.smoothness,
    )


def learning_rate(plan: Recipe, seen: int, batch: int) -> float:
    """The learning rate of the step that trains on spectra ``seen`` to ``seen + batch``.

    Cosine: evaluated at the middle of the step's batch, ``m = seen + batch / 2``, with the
    warm-up ending at ``W = warmup * samples`` spectra: ``lr * m / W`` while ``m < W``, then
    ``lr * (1 + cos(pi * (m - W) / (samples - W))) / 2``, so the first and the last steps
    have small positive rates. Step: ``lr * gamma ** (seen // step_every)``.
    """
    if plan.decay == "step":
        return plan.lr * plan.gamma ** (seen // plan.step_every)
    middle = seen + batch / 2
    warm = plan.warmup * plan.samples
    if middle < warm:
        return plan.lr * middle / warm
    progress = min(1.0, (middle - warm) / max(plan.samples - warm, 1e-12))
    return plan.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(
    model_params: ModelParams,
    plan: Recipe | TrainParams,
    source: Source | Batch,
    val_xy: Batch,
    resume_path: Path | None = None,
    progress: bool = True,
    init_state: dict[str, torch.Tensor] | None = None,
    frozen_norm: bool = False,
) -> tuple[dict[str, torch.Tensor], list[Evaluation]]:
    """Train; return the best evaluation's ``state_dict`` (on CPU) and the history.

    Parameters
    ----------
    model_params
        The network to build.
    plan
        A :class:`Recipe`, or ``TrainParams`` (read through :func:`recipe`).
    source
        A :class:`~pipeline.stream.SimulatedStream`, a :class:`~pipeline.stream.FixedSet`,
        or ``(x, y)`` tensors ``(N, 1, L)`` (a fixed set shuffled with ``plan.seed``).
    val_xy
        Validation inputs and targets, ``(M, 1, L)`` each.
    resume_path
        Resume checkpoint: read if it matches the params and source, written after every
        evaluation.
    init_state
        Start from these weights (fine-tuning) instead of a random initialisation.
    frozen_norm
        Keep the batch-norm statistics of ``init_state`` (fine-tuning batches of another
        domain would otherwise shift them, and with them every simulated prediction).

    Raises
    ------
    pipeline.distributed.WorldSizeError
        Under DDP, the world size does not divide ``batch_size`` or ``samples``.
    ValueError
        Under DDP, a source other than a :class:`~pipeline.stream.SimulatedStream`.

    Notes
    -----
    In a torch.distributed process group of ``W`` ranks (:mod:`pipeline.distributed`), every
    rank calls this: each trains on its ``1/W`` of every global batch of the one-process
    stream, the gradient is that of the global batch's RMSE, and every rank returns the same
    weights and history; rank 0 alone writes ``resume_path`` and shows progress.
    """
    plan = recipe(plan) if isinstance(plan, TrainParams) else plan
    source = FixedSet(source, plan.seed) if isinstance(source, tuple) else source
    shared = distributed.active()
    if shared:
        sizes = {"batch_size": plan.batch_size, "samples": plan.samples}
        distributed.check_world(distributed.size(), sizes)
        if not isinstance(source, SimulatedStream):
            raise ValueError("distributed training takes the simulated stream only")
    torch.manual_seed(plan.seed)
    if plan.threads:
        torch.set_num_threads(plan.threads)
    device = distributed.device_of_rank(pick_device())
    net = network_of(model_params)
    if init_state is not None:
        net.load_state_dict(init_state)
    net = (distributed.sync_norm(net) if shared else net).to(device)  # net: weights, val
    model = distributed.wrap(net, device)  # what trains: DDP when several processes
    kind = torch.optim.AdamW if plan.optimiser == "adamw" else torch.optim.Adam
    optimiser = kind(net.parameters(), lr=plan.lr, weight_decay=plan.weight_decay)
    history: list[Evaluation] = []
    best = {"val_mae": math.inf, "state": _cpu_state(net)}
    seen = 0
    writer = distributed.rank() == 0
    progress = progress and writer

    tag = _resume_tag(model_params, plan, source)
    state = distributed.from_rank0(lambda: _load_resume(resume_path, tag), device)
    if state is not None:
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        history = [Evaluation(**row) for row in json.loads(state["history"])]
        best = {"val_mae": state["best_val_mae"], "state": state["best"]}
        seen = int(state["seen"])

    autocast = step_autocast(device, plan.precision)
    if progress:
        ranks = f", {distributed.size()} processes" if shared else ""
        print(f"training on {device} in {resolve_precision(device, plan.precision)}{ranks}")
    bar = tqdm(total=plan.samples, initial=seen, unit="spectra", disable=not progress)
    total = count = 0.0
    start = time.perf_counter()
    next_eval = min(plan.samples, (seen // plan.eval_every + 1) * plan.eval_every)
    if shared:  # the same global batches, each rank simulating 1/W of them
        batches = distributed.shared_batches(source, seen, plan.batch_size, device)
    else:
        batches = source.batches(seen, plan.batch_size)
    loss_of = distributed.global_rmse if shared else rmse
    if plan.smoothness:
        over = distributed.sum_all if shared else None  # the global batch's sums under DDP
        loss_of = functools.partial(smooth_rmse, smoothness=plan.smoothness, total=over)
    with tuned_kernels(device), bar, contextlib.closing(batches):  # closing: stops workers
        _train_mode(model, frozen_norm)
        while seen < plan.samples:
            xb, yb = next(batches)
            take = min(len(xb), plan.samples - seen)  # the budget, exactly
            lr = learning_rate(plan, seen, take)
            for group in optimiser.param_groups:
                group["lr"] = lr
            mine = distributed.part(take)  # this rank's slice of the global batch
            xb, yb = xb[:take][mine].to(device), yb[:take][mine].to(device)
            loss = train_step(model, optimiser, xb, yb, autocast, loss_of)
            total += loss.item() * take
            count += take
            seen += take
            bar.update(take)
            bar.set_postfix(rmse=f"{total / count:.4f}", lr=f"{lr:.2e}")
            if seen < next_eval:
                continue
            val_mae, val_rmse = evaluate_model(net, val_xy, plan.batch_size, device)
            row = Evaluation(
                len(history) + 1,
                seen,
                total / count,
                val_mae,
                val_rmse,
                lr,
                time.perf_counter() - start,
            )
            history.append(row)
            if val_mae < best["val_mae"]:
                best = {"val_mae": val_mae, "state": _cpu_state(net)}
            if resume_path is not None and writer:
                _save_resume(resume_path, tag, net, optimiser, seen, history, best)
            total = count = 0.0
            start = time.perf_counter()
            next_eval = min(plan.samples, next_eval + plan.eval_every)
            _train_mode(model, frozen_norm)
    return best["state"], history


def _train_mode(model: torch.nn.Module, frozen_norm: bool) -> None:
    model.train()
    if frozen_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def train_step(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    autocast: torch.autocast,
    loss_of=None,
) -> torch.Tensor:
    """One optimisation step on a batch; return its RMSE loss (detached).

    The forward pass runs under ``autocast`` (:func:`step_autocast`: bf16 with fp32 master
    weights, or off), the loss in fp32: ``loss_of(pred, yb)``, by default :func:`rmse`
    (:func:`pipeline.distributed.global_rmse` under DDP). ``benchmarks/train_speed.py``
    times this very function.
    """
    with autocast:
        pred = model(xb)
    loss = (loss_of or rmse)(pred, yb)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The RMSE of a batch of predictions ``(B, 1, L)``, in fp32."""
    return torch.sqrt(torch.mean((pred.float() - target) ** 2))


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    xy: Batch,
    batch_size: int,
    device: torch.device,
) -> tuple[float, float]:
    """Mean absolute error and RMSE of the predicted normalised baselines.

    Under DDP each rank predicts its share of ``xy`` and the sums are all-reduced.
    """
    model.eval()
    abs_sum = sq_sum = 0.0
    x, y = xy
    x, y = x[distributed.part(len(x))], y[distributed.part(len(x))]
    for i in range(0, len(x), batch_size):
        err = model(x[i : i + batch_size].to(device)).float() - y[i : i + batch_size].to(device)
        abs_sum += err.abs().sum().item()
        sq_sum += (err**2).sum().item()
    sums = distributed.sum_all(torch.tensor([abs_sum, sq_sum], dtype=torch.float64, device=device))
    n = xy[1].numel()
    return sums[0].item() / n, math.sqrt(sums[1].item() / n)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# keys added after resume files were first written: left out of the tag at these values, so a
# resume file of a run without them still matches
_LATER_KEYS = {"attention": "none", "dropout": 0.0, "mc_samples": 0, "smoothness": 0.0}


def _resume_tag(model_params: ModelParams, plan: Recipe, source: Source) -> str:
    """What a resume checkpoint must match: the params, the recipe and the source."""
    parts = [to_dict(model_params), dataclasses.asdict(plan)]
    parts = [
        {k: v for k, v in p.items() if k not in _LATER_KEYS or v != _LATER_KEYS[k]} for p in parts
    ]
    h = hashlib.sha256(json.dumps(parts).encode())
    h.update(source.identity())
    return h.hexdigest()


def _load_resume(path: Path | None, tag: str) -> dict | None:
    """The resume checkpoint at ``path`` if it matches ``tag``, else None (start over).

    One that cannot be read (truncated, not a checkpoint) is renamed ``<name>.corrupt``, with a
    warning on stderr, instead of stopping every later run until someone deletes it.
    """
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"a {type(state).__name__}, not a resume checkpoint")
    except Exception as exc:  # torch raises many types for a damaged file
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        print(
            f"warning: the resume checkpoint {path} cannot be read ({one_line(exc)}); "
            f"moved to {aside}; training starts over",
            file=sys.stderr,
        )
        return None
    return state if state.get("tag") == tag else None


def _save_resume(path, tag, model, optimiser, seen, history, best) -> None:
    state = {
        "tag": tag,
        "model": _cpu_state(model),
        "optimiser": optimiser.state_dict(),
        "seen": seen,
        "history": json.dumps([vars(e) for e in history]),
        "best_val_mae": best["val_mae"],
        "best": best["state"],
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
