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
from pipeline.normalise import NORMALISATIONS, NetworkRun


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
    # saved before the keys existed: minmax, no attention, no dropout or uncertainty
    saved = {
        "normalisation": "minmax",
        "attention": "none",
        "dropout": 0.0,
        "mc_samples": 0,
        **ckpt["model_params"],
    }
    params = ModelParams(**{**saved, "channels": tuple(saved["channels"])})
    return from_state(params, ckpt["model"]), params


def network_of(model_params: ModelParams) -> torch.nn.Module:
    """A fresh network of ``model_params`` (:func:`pipeline.model.build_model`), untrained."""
    return build_model(
        model_params.arch,
        model_params.channels,
        model_params.enc_kernel,
        model_params.dec_kernel,
        attention=model_params.attention,
        dropout=model_params.dropout,
    )


def from_state(model_params: ModelParams, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The network of ``model_params`` holding the weights ``state``, in eval mode.

    Its ``normalisation`` attribute is ``model_params.normalisation``: :func:`torch_run` and
    :func:`pipeline.export.export_onnx` pass it on.
    """
    model = network_of(model_params)
    model.load_state_dict(state)
    model.normalisation = model_params.normalisation
    return model.eval()


def torch_run(model: torch.nn.Module) -> NetworkRun:
    """A PyTorch network as a :data:`pipeline.normalise.NetworkRun`: in eval mode, no grad.

    The input is made a contiguous float32 tensor on the CPU; the output comes back as numpy.
    The run's ``normalisation`` is the model's (set by :func:`from_state`; else ``minmax``).
    """
    model = model.eval()

    @torch.no_grad()
    def run(z: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(z, np.float32))).numpy()

    run.normalisation = getattr(model, "normalisation", NORMALISATIONS[0])
    return run
