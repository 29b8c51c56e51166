"""ONNX export of the trained network, with a parity check against PyTorch.

The exported graph has a dynamic batch axis and a dynamic length axis (any multiple of the
network's ``length_multiple``, 32 by default), so ``correct`` can run spectra of any length.
The parity check runs the file under ONNX Runtime through :func:`pipeline.inference.onnx_session`.
The model's normalisation (:mod:`pipeline.normalise`) is written into the file's metadata
(``metadata_props``, key :data:`NORMALISATION_KEY`), where :class:`pipeline.inference.OnnxBaseline`
reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from pipeline.files import atomic_path
from pipeline.inference import NORMALISATION_KEY, onnx_session

OPSET = 18
INPUT, OUTPUT = "spectrum", "baseline"


def export_onnx(
    model: torch.nn.Module, path: Path, length: int = 512, normalisation: str | None = None
) -> int:
    """Write ``model`` (eval mode) to ``path`` as ONNX; return the opset used.

    ``normalisation`` (by default the model's ``normalisation`` attribute, set by
    :func:`pipeline.checkpoint.from_state`, else ``minmax``) goes into the file's metadata.
    A model with an ``output_names`` attribute (:class:`pipeline.uncertainty.MCDropout`:
    ``baseline`` and ``baseline_upper``) is exported with those outputs, and its ``metadata``
    attribute (a dict of strings) joins the file's metadata.
    """
    normalisation = normalisation or getattr(model, "normalisation", "minmax")
    outputs = list(getattr(model, "output_names", (OUTPUT,)))
    extra = dict(getattr(model, "metadata", {}))
    model = model.eval()
    multiple = model.length_multiple
    batch = torch.export.Dim("batch", min=1, max=65536)
    blocks = torch.export.Dim("blocks", min=1, max=65536 // multiple)
    save_onnx(
        model,
        path,
        torch.rand(2, 1, length),
        (INPUT, outputs),
        {"x": {0: batch, 2: multiple * blocks}},
        {**extra, NORMALISATION_KEY: normalisation},
    )
    return onnx.load(str(path)).opset_import[0].version


def save_onnx(
    model: torch.nn.Module,
    path: Path,
    example: torch.Tensor,
    names: tuple[str, list[str]],
    dynamic_shapes: dict,
    metadata: dict[str, str],
) -> None:
    """Write ``model`` (in eval mode) to ``path`` as ONNX, atomically, then check the file.

    The dynamo exporter (``torch.onnx.export(dynamo=True)``) at :data:`OPSET`, traced on
    ``example``; ``names``: the input's name and the outputs'; ``dynamic_shapes``: the
    exporter's dynamic axes of the forward's argument; ``metadata``: added to the file's
    ``metadata_props`` (what the exporter wrote is kept). Shared by the baseline network's
    export and the denoiser's (:func:`pipeline.denoiser.export_denoiser`).
    """
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[names[0]],
            output_names=list(names[1]),
            opset_version=OPSET,
            dynamic_shapes=dynamic_shapes,
            external_data=False,
            verbose=False,
        )
    with atomic_path(path) as tmp:
        program.save(str(tmp), external_data=False)
        saved = onnx.load(str(tmp))
        props = {p.key: p.value for p in saved.metadata_props}
        onnx.helper.set_model_props(saved, {**props, **metadata})
        without_source_paths(saved)
        onnx.save(saved, str(tmp))
    onnx.checker.check_model(str(path))


STACK_TRACE = "pkg.torch.onnx.stack_trace"  # a node's metadata key the dynamo exporter writes


def without_source_paths(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the exporter's per-node stack traces from ``model`` (in place); return it.

    ``torch.onnx.export(dynamo=True)`` records on every node the stack trace of the Python
    line that made it, with the absolute paths of the source files: the same network exported
    from two checkouts gave files that differed in those paths (and md5s in ``dvc.lock`` that
    changed with the folder). The operators, weights and the other metadata are kept.
    """
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    for node in nodes:
        kept = [p for p in node.metadata_props if p.key != STACK_TRACE]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    return model


def parity(
    model: torch.nn.Module,
    onnx_path: Path,
    shapes: tuple[tuple[int, int], ...] = ((1, 512), (7, 512), (3, 1024), (2, 96)),
    seed: int = 0,
) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime on fresh random spectra.

    Inputs are random normalised spectra (smooth background, bands and noise in [0, 1]) of
    each ``(batch, length)`` in ``shapes``; every output of the model is compared.
    """
    rng = np.random.default_rng(seed)
    sess = onnx_session(onnx_path)
    worst = 0.0
    model = model.eval()
    for batch, length in shapes:
        x = np.cumsum(rng.normal(size=(batch, 1, length)), axis=-1)
        x += rng.normal(scale=0.3, size=x.shape)
        x = (x - x.min(-1, keepdims=True)) / np.ptp(x, axis=-1, keepdims=True)
        x = x.astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x))
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = sess.run(None, {INPUT: x})
        for ort_out, torch_out in zip(got, expected, strict=True):
            worst = max(worst, float(np.abs(ort_out - torch_out.numpy()).max()))
    return worst
