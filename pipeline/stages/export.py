"""Stages ``export``, ``export_fast`` and ``export_finetuned``: a checkpoint to ONNX.

The export is refused (no file left behind) when ONNX Runtime and PyTorch disagree by more
than ``--tolerance`` on fresh random spectra of several batch sizes and lengths.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from pipeline.checkpoint import load_checkpoint
from pipeline.export import export_onnx, parity
from pipeline.files import write_json
from pipeline.stages._common import arguments, params_of, script


class ParityError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


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
    args = parser.parse_args(argv)
    params = params_of(args)
    network, _ = load_checkpoint(args.model)
    report = run(network, args.out, params.simulate.length, args.tolerance)
    write_json(args.report, report)
    print(
        f"ONNX opset {report['opset']}, max |ONNX - PyTorch| = {report['max_abs_error']:.2e} "
        "on fresh random spectra"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "export"))
