"""Training on several processes with torch.distributed (DDP), launched by ``torchrun``.

``torchrun --nproc-per-node N -m pipeline.stages.train ...`` starts N processes (ranks) and
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous address in their environment;
:func:`process_group` joins them: NCCL on GPUs (rank ``r`` on GPU ``LOCAL_RANK``), gloo on
CPUs. Without ``WORLD_SIZE`` (or with 1) everything here is a no-op and training is the one
process it always was.

The distributed run trains on the same global batches as one process, so its result is that
of one process within floating-point rounding (tests/test_train_ddp.py):

- **Data**: rank ``r`` of ``W`` simulates blocks ``r, r + W, ...`` of the seeded stream
  (:mod:`pipeline.stream`) and every round of ``W`` blocks is exchanged with ``all_gather``
  (:func:`shared_batches`), so each rank holds the one-process sequence of spectra while
  simulating only ``1/W`` of it; the rank trains on its slice ``r`` of each global batch
  (:func:`part`), ``B / W`` spectra.
- **Loss**: the RMSE of the whole global batch (:func:`global_rmse`): the squared errors are
  summed on each rank and all-reduced. The RMSE is not a mean, so averaging each rank's own
  RMSE would give another gradient.
- **Batch norm**: the statistics of the global batch (:class:`SyncNorm`), as one process
  computes them; torch's ``SyncBatchNorm`` runs on GPUs only, and the tests run on CPUs.
- **Gradients**: both all-reduces are differentiable (their backward is an all-reduce of the
  gradients, :class:`_AllReduceSum`); each rank's loss is the global one, so the objective
  summed over ranks is ``W`` times the RMSE, and DDP's averaging divides it by ``W``: every
  rank applies the gradient of the global batch's RMSE.

A global batch (and a budget) that ``W`` does not divide would give unequal slices, and DDP's
averaging would then not be that gradient: :func:`check_world` refuses it.

References: PyTorch DDP, https://pytorch.org/docs/stable/notes/ddp.html; torchrun,
https://pytorch.org/docs/stable/elastic/run.html.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from pipeline.stream import Batch, SimulatedStream, cut_batches

T = TypeVar("T")


class WorldSizeError(ValueError):
    """The world size does not divide the global batch or the budget (message for users)."""


def world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_world(world: int, sizes: dict[str, int]) -> None:
    """Refuse a world size that would give the ranks unequal slices of a global batch.

    Parameters
    ----------
    world
        The number of training processes.
    sizes
        The batch size and the budget (whose remainder is the last, shorter batch), by the
        params key that sets them: ``{"train.batch_size": 512, "train.samples": ...}``.

    Raises
    ------
    WorldSizeError
        One of ``sizes`` is not a multiple of ``world``.
    """
    for key, value in sizes.items():
        if value % world:
            raise WorldSizeError(
                f"{key} {value} is not divisible by the {world} training processes "
                f"(torchrun's --nproc-per-node times nodes): choose a process count that "
                f"divides it, or set {key} to a multiple of {world}"
            )


@contextlib.contextmanager
def process_group() -> Iterator[int]:
    """Join torchrun's process group for the block; yield this process's rank (0 alone).

    NCCL when CUDA is present (each rank on GPU ``LOCAL_RANK``), else gloo. The group is
    destroyed on leaving, however the block ends.
    """
    if world_size() == 1:
        yield 0
        return
    if torch.cuda.is_available():
        gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(gpu)
        dist.init_process_group("nccl", device_id=gpu)  # bound to its GPU from the start
    else:
        dist.init_process_group("gloo")
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def active() -> bool:
    """Whether this process trains with others (an initialised group of 2 or more)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """The rank of this process (0 when alone)."""
    return dist.get_rank() if active() else 0


def size() -> int:
    """The number of training processes in the group (1 when alone)."""
    return dist.get_world_size() if active() else 1


def part(count: int) -> slice:
    """The share of this rank in ``count`` items: ``r * count // W`` up to the next rank's.

    The slice of a global batch (equal shares: :func:`check_world`), or of the validation set
    (the shares may differ by one). All of it when alone.
    """
    if not active():
        return slice(None)
    r, world = dist.get_rank(), dist.get_world_size()
    return slice(r * count // world, (r + 1) * count // world)


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` with a gradient: the backward all-reduces the gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def sum_all(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks, differentiable (``tensor`` itself when alone)."""
    return _AllReduceSum.apply(tensor) if active() else tensor


def global_rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RMSE over the global batch, from this rank's ``(b, 1, L)`` slice of it; fp32."""
    err = pred.float() - target
    sums = torch.stack([(err * err).sum(), err.new_tensor(float(err.numel()))])
    total = sum_all(sums)
    return torch.sqrt(total[0] / total[1])


class SyncNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are those of the global batch.

    Per channel, the sums of ``x`` and ``x ** 2`` (float64, so that ``E[x^2] - E[x]^2``
    does not cancel) and the count are all-reduced over the ranks; the mean and the biased
    variance normalise, and the running statistics are updated with the unbiased variance,
    as ``BatchNorm1d`` does. The same parameters and buffers, so the same ``state_dict``.
    In eval mode, or alone, it is ``BatchNorm1d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, C, L)`` (or ``(B, C)``) with the global batch's statistics."""
        if not (self.training and active()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xd = x.double()
        count = xd.new_tensor([x.numel() / x.shape[1]])
        total = sum_all(torch.cat([xd.sum(dims), (xd * xd).sum(dims), count]))
        channels, n = x.shape[1], total[-1]
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean * mean).clamp_min(0)
        scale = torch.rsqrt(var + self.eps).float()
        out = (x.float() - mean.float().view(shape)) * scale.view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:  # a cumulative average, as BatchNorm1d
                    m = 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.float(), m)
                self.running_var.lerp_((var * n / (n - 1)).float(), m)
        return out.to(x.dtype)


def sync_norm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm1d`` replaced by a :class:`SyncNorm` sharing its tensors."""
    if type(module) is nn.BatchNorm1d:
        synced = SyncNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        synced.load_state_dict(module.state_dict())
        return synced.to(module.running_mean.device).train(module.training)
    for name, child in module.named_children():
        setattr(module, name, sync_norm(child))
    return module


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP over ``model`` (already holding :class:`SyncNorm`) when several, else ``model``.

    DDP's defaults: rank 0's buffers are broadcast before each forward pass, a no-op in
    effect (:class:`SyncNorm` updates the running statistics from all-reduced sums, bitwise
    the same on every rank), left on: ``broadcast_buffers=False`` is deprecated in torch 2.13,
    and its replacement ``forward_sync_buffers`` may be missing from older versions.
    """
    if not active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def device_of_rank(default: torch.device) -> torch.device:
    """GPU ``LOCAL_RANK`` under NCCL; else ``default`` (:func:`pipeline.device.pick_device`)."""
    if active() and default.type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return default


def from_rank0(load: Callable[[], T], device: torch.device) -> T:
    """``load()`` run on rank 0 alone and its result sent to every rank (a resume state)."""
    if not active():
        return load()
    box = [load() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


def shared_batches(
    stream: SimulatedStream, start: int, batch_size: int, device: torch.device
) -> Iterator[Batch]:
    """The one-process global batches of ``stream``, each rank simulating ``1/W`` of them.

    Rank ``r`` makes blocks ``first + r, first + r + W, ...`` (``stream.workers`` processes
    of its own); each round of ``W`` blocks is gathered on every rank in block order and cut
    into batches of ``batch_size`` from spectrum ``start`` on, as
    :meth:`~pipeline.stream.SimulatedStream.batches` does. Under NCCL the exchange, and so
    the batches, are on ``device``.
    """
    world = dist.get_world_size()
    first, skip = divmod(start, stream.block)
    own = stream.blocks(first + dist.get_rank(), stride=world)
    return cut_batches(_gathered(own, world, device), skip, batch_size)


def _gathered(own: Iterator[Batch], world: int, device: torch.device) -> Iterator[Batch]:
    where = device if dist.get_backend() == "nccl" else torch.device("cpu")
    for x, y in own:
        pair = torch.cat([x, y], dim=1).to(where)  # (block, 2, L): one exchange per round
        parts = [torch.empty_like(pair) for _ in range(world)]
        dist.all_gather(parts, pair)
        for block in parts:
            yield block[:, :1], block[:, 1:]
