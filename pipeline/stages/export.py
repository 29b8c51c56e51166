"""Stages ``export``, ``export_fast`` and ``export_finetuned``: a checkpoint to ONNX.

The export is refused (no file left behind) when ONNX Runtime and PyTorch disagree by more
than ``--tolerance`` on fresh random spectra of several batch sizes and lengths. A network
trained with dropout and ``model.mc_samples`` > 0 is exported with its baseline's standard
deviation (:func:`pipeline.uncertainty.calibrated`: the sigma scale fitted on ``--val``, the
simulated validation set; ``docs/uncertainty.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.checkpoint import load_checkpoint
from pipeline.config import ModelParams
from pipeline.export import export_onnx, parity
from pipeline.files import write_json
from pipeline.stages._common import arguments, params_of, script
from pipeline.uncertainty import calibrated


class ParityError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


class ExportError(RuntimeError):
    """The export cannot be made as asked; the message says why."""


def with_uncertainty(
    network: torch.nn.Module, model_params: ModelParams, val: Path | None
) -> tuple[torch.nn.Module, dict]:
    """``network`` as exported: wrapped for MC dropout when ``model_params.mc_samples`` > 0.

    Returns the network and the uncertainty report (empty without MC dropout).

    Raises
    ------
    ExportError
        MC dropout is asked for but no ``val`` set is given, or the network has no dropout.
    """
    if not model_params.mc_samples:
        return network, {}
    if val is None:
        raise ExportError(
            f"model.mc_samples {model_params.mc_samples}: give --val (the simulated validation "
            "set the sigma scale is fitted on)"
        )
    if not model_params.dropout:
        raise ExportError("model.mc_samples: the checkpoint was trained without dropout")
    with np.load(val) as spectra:  # a simulated set (pipeline.simulate.SpectrumSet.save)
        observed, baseline = spectra["observed"], spectra["baseline"]
    return calibrated(network, model_params.mc_samples, observed, baseline)


def run(network: torch.nn.Module, out: Path, length: int, tolerance: float) -> dict:
    """Export ``network`` to ``out``; return the export report (opset, parity error).

    Raises :class:`ParityError` (and removes ``out``) when the parity check fails.
    """
    opset = export_onnx(network, out, length=length)
    error = parity(network, out)
    if not error <= tolerance:
        out.unlink(missing_ok=True)
        raise ParityError(
            f"ONNX output differs from PyTorch by {error:.2e} (> {tolerance:g}); no model written"
        )
    return {
        "opset": opset,
        "max_abs_error": error,
        "tolerance": tolerance,
        "dynamic_axes": {"batch": "any", "length": f"multiple of {network.length_multiple}"},
    }


def main(argv: list[str] | None = None) -> int:
    """Write the ONNX model and the export report (JSON)."""
    parser = arguments(__doc__, "export", "model out report")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument(
        "--val", type=Path, help="simulated validation set: fits the sigma of model.mc_samples"
    )
    args = parser.parse_args(argv)
    params = params_of(args)
    network, model_params = load_checkpoint(args.model)
    network, uncertainty = with_uncertainty(network, model_params, args.val)
    report = run(network, args.out, params.simulate.length, args.tolerance)
    if uncertainty:
        report["uncertainty"] = uncertainty
    write_json(args.report, report)
    print(
        f"ONNX opset {report['opset']}, max |ONNX - PyTorch| = {report['max_abs_error']:.2e} "
        "on fresh random spectra"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "export"))
