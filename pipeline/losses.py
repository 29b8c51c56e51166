"""The training loss with a smoothness prior on the predicted baseline (``train.smoothness``).

With ``e = pred - target`` and ``d[i] = pred[i - 1] - 2 pred[i] + pred[i + 1]`` the second
difference of the predicted baseline along the length, both in the network's normalised units,

    loss = sqrt(mean(e ** 2) + w * mean(d ** 2))

the root of a Whittaker-Henderson objective (Eilers, "A perfect smoother", Anal. Chem. 2003:
a fidelity term plus ``lam`` times the squared second differences, the penalty arPLS and asPLS
put on their baselines) with the true baseline in place of the data. ``w = 0`` is the plain
RMSE of :func:`pipeline.train.rmse`, and :func:`pipeline.train.train` then calls that very
function, so the default loss is unchanged to the bit.

Scale. A smooth background rising by the whole normalised range over 512 points has second
differences of order ``8 / 511 ** 2 ~ 3e-5`` (``w * d ** 2`` negligible for any ``w`` below
``1e4``), while a baseline that follows a band a few points wide or ripples by ``1e-3`` per
point has ``|d|`` of ``1e-3`` to ``1e-2``: the penalty acts on what the baseline should not do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Total = Callable[[torch.Tensor], torch.Tensor]  # sums over the global batch (DDP), or as is


def second_difference(pred: torch.Tensor) -> torch.Tensor:
    """Second differences along the length: ``(B, 1, L)`` -> ``(B, 1, L - 2)``.

    ``pred[..., i - 1] - 2 pred[..., i] + pred[..., i + 1]`` for ``i = 1 .. L - 2``.
    """
    return pred[..., :-2] - 2 * pred[..., 1:-1] + pred[..., 2:]


def smooth_rmse(
    pred: torch.Tensor, target: torch.Tensor, smoothness: float, total: Total | None = None
) -> torch.Tensor:
    """The penalised RMSE of a batch (module notes), in fp32.

    Parameters
    ----------
    pred, target
        Predicted and true baselines ``(B, 1, L)``, normalised units; ``L >= 3``.
    smoothness
        ``w``, the weight of the mean squared second difference of ``pred``.
    total
        Sums the per-rank ``[sum e**2, count, sum d**2, count]`` over the global batch under
        DDP (:func:`pipeline.distributed.sum_all`); ``None``: this batch alone.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable in ``pred``.
    """
    pred = pred.float()
    err = pred - target
    d = second_difference(pred)
    sums = torch.stack(
        [
            (err * err).sum(),
            err.new_tensor(float(err.numel())),
            (d * d).sum(),
            d.new_tensor(float(d.numel())),
        ]
    )
    if total is not None:
        sums = total(sums)
    return torch.sqrt(sums[0] / sums[1] + smoothness * sums[2] / sums[3])
