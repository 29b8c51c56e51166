"""Stage ``train_denoiser``: the denoiser trained, exported to ONNX and judged.

The denoiser (:mod:`pipeline.denoiser`, the ``denoise`` section of ``params.yaml``) trains on
fresh simulated spectra, is exported to ONNX, and is judged on the simulated validation and
test sets against the best Savitzky-Golay window (:func:`pipeline.denoise.compare`, the true
baselines subtracted): the report holds those figures, the training time and the export's
parity with PyTorch, the history its loss per block of spectra.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from pipeline.denoise import OnnxDenoiser, compare
from pipeline.denoiser import export_denoiser, train_denoiser
from pipeline.files import atomic_path
from pipeline.simulate import load_sets
from pipeline.stages._common import arguments, params_of, script

PARITY_TOL = 1e-3  # sigma units: ONNX Runtime against PyTorch on the validation spectra


def parity(model, onnx_path, corrected: np.ndarray) -> float:
    """Largest difference (sigma units) of the ONNX graph's output from PyTorch's."""
    import torch

    from pipeline.denoise import to_sigma_units

    u, _ = to_sigma_units(corrected)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(u[:, None, :])).numpy()[:, 0]
    session = OnnxDenoiser(onnx_path, threads=1).session
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: u[:, None, :]})
    return float(np.abs(onnx_out[:, 0] - torch_out).max())


def main(argv: list[str] | None = None) -> int:
    """Train, export and judge the denoiser; write the ONNX file, the report and the history."""
    parser = arguments(__doc__, "train-denoiser", "data out report history")
    args = parser.parse_args(argv)
    params = params_of(args)
    sets = load_sets(args.data, ("val", "test"))
    start = time.perf_counter()
    model, history = train_denoiser(params.denoise, params.simulate)
    seconds = time.perf_counter() - start
    export_denoiser(model, args.out)
    val = sets["val"]
    gap = parity(model, args.out, val.observed[:64] - val.baseline[:64])
    if gap > PARITY_TOL:
        raise RuntimeError(f"train-denoiser: the ONNX graph differs from PyTorch by {gap:.2e}")
    found = compare(OnnxDenoiser(args.out).denoise, val, sets["test"])
    report = {
        "samples": params.denoise.samples,
        "train_seconds": round(seconds, 1),
        "parity_max_abs": gap,
        "ratio_to_savitzky_golay": found["ratio"],
        **{f"{k}_{m}": v for k in ("raw", "sg", "denoiser") for m, v in found[k].items()},
        "savitzky_golay": found["savitzky_golay"],
    }
    with atomic_path(args.report) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    with atomic_path(args.history) as tmp:
        rows = ["seen,loss,seconds"] + [
            f"{r['seen']},{r['loss']:.6g},{r['seconds']:.2f}" for r in history
        ]
        tmp.write_text("\n".join(rows) + "\n")
    print(
        f"train-denoiser: {params.denoise.samples} spectra in {seconds:.0f} s; RMSE "
        f"{found['denoiser']['rmse']:.5f} against Savitzky-Golay's {found['sg']['rmse']:.5f} "
        f"(ratio {found['ratio']:.2f}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "train_denoiser"))
