"""Trained weights on disk, and a PyTorch network as a numpy function.

A checkpoint holds the weights and the model params that rebuild the network, all plain
tensors and values, so it loads with ``torch.load(weights_only=True)``. Train, evaluate,
export and fine-tuning save and load through here; :func:`torch_run` is the one adapter from a
PyTorch network to the :data:`pipeline.normalise.NetworkRun` every inference path takes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.config import ModelParams, to_dict
from pipeline.files import atomic_path
from pipeline.model import build_model
from pipeline.normalise import NetworkRun


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], model_params: ModelParams) -> None:
    """Write weights plus the model params needed to rebuild the network, atomically.

    Parameters
    ----------
    path
        The checkpoint file (``models/resunet.pt``).
    state
        The network's ``state_dict``.
    model_params
        What :func:`pipeline.model.build_model` needs to rebuild it.
    """
    with atomic_path(path) as tmp:
        torch.save({"model": state, "model_params": to_dict(model_params)}, tmp)


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, ModelParams]:
    """The network of a checkpoint written by :func:`save_checkpoint`, on CPU in eval mode.

    Returns
    -------
    (torch.nn.Module, ModelParams)
        The network with its weights, and the model params it was built from.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    saved = ckpt["model_params"]
    params = ModelParams(**{**saved, "channels": tuple(saved["channels"])})
    model = build_model(params.arch, params.channels, params.enc_kernel, params.dec_kernel)
    model.load_state_dict(ckpt["model"])
    return model.eval(), params


def torch_run(model: torch.nn.Module) -> NetworkRun:
    """A PyTorch network as a :data:`pipeline.normalise.NetworkRun`: in eval mode, no grad.

    The input is made a contiguous float32 tensor on the CPU; the output comes back as numpy.
    """
    model = model.eval()

    @torch.no_grad()
    def run(z: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(z, np.float32))).numpy()

    return run
