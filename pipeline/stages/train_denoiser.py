"""Stage ``train_denoiser``: the denoiser trained, exported to ONNX and judged.

The denoiser (:mod:`pipeline.denoiser`, the ``denoise`` section of ``params.yaml``) trains on
fresh simulated spectra, is exported to ONNX, and is judged on the simulated validation and
test sets against the best Savitzky-Golay window (:func:`pipeline.denoise.compare`, the true
baselines subtracted): the report holds those figures, the training time and the export's
parity with PyTorch, the history its loss per block of spectra. ``--profile NAME`` lays
``profiles.NAME`` of params.yaml over it (``cpu_long``: the shipped denoiser's 131,072 spectra).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from pipeline.config import load_params
from pipeline.denoise import INPUT, OUTPUT, OnnxDenoiser, compare, to_sigma_units
from pipeline.denoiser import export_denoiser, train_denoiser
from pipeline.files import write_json
from pipeline.simulate import load_sets
from pipeline.stages._common import arguments, script, write_history

# ONNX Runtime against PyTorch on validation spectra: |difference| <= ABS + REL x |value|, in
# sigma units (float32 through 11 convolutions: a band of 10,000 sigma differs by ~1e-3)
PARITY_ABS, PARITY_REL = 1e-3, 1e-5


def parity(model, onnx_path, corrected: np.ndarray) -> tuple[float, float]:
    """The ONNX graph's output against PyTorch's on ``corrected`` ``(N, L)``.

    Returns the largest absolute difference (sigma units) and the largest ratio of the
    difference to its tolerance, ``PARITY_ABS + PARITY_REL * |value|`` (at most 1 to pass).
    """
    import torch

    u, _ = to_sigma_units(corrected)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(u[:, None, :])).numpy()[:, 0]
    session = OnnxDenoiser(onnx_path, threads=1).session
    (onnx_out,) = session.run([OUTPUT], {INPUT: u[:, None, :]})
    gap = np.abs(onnx_out[:, 0] - torch_out)
    return float(gap.max()), float((gap / (PARITY_ABS + PARITY_REL * np.abs(torch_out))).max())


def main(argv: list[str] | None = None) -> int:
    """Train, export and judge the denoiser; write the ONNX file, the report and the history."""
    parser = arguments(__doc__, "train-denoiser", "data out report history")
    parser.add_argument("--profile", help="lay profiles.PROFILE of params.yaml over it")
    args = parser.parse_args(argv)
    params = load_params(args.params, args.profile)  # checked before any work
    sets = load_sets(args.data, ("val", "test"))
    start = time.perf_counter()
    model, history = train_denoiser(params.denoise, params.simulate)
    seconds = time.perf_counter() - start
    export_denoiser(model, args.out)
    val = sets["val"]
    gap, over = parity(model, args.out, val.observed[:64] - val.baseline[:64])
    if over > 1:
        raise RuntimeError(
            f"train-denoiser: the ONNX graph differs from PyTorch by up to {gap:.2e} sigma, "
            f"{over:.1f}x the tolerance ({PARITY_ABS:g} + {PARITY_REL:g} x |value|)"
        )
    found = compare(OnnxDenoiser(args.out).denoise, val, sets["test"])
    report = {
        "samples": params.denoise.samples,
        "train_seconds": round(seconds, 1),
        "parity_max_abs": gap,
        "parity_max_of_tolerance": over,
        "ratio_to_savitzky_golay": found["ratio"],
        **{f"{k}_{m}": v for k in ("raw", "sg", "denoiser") for m, v in found[k].items()},
        "savitzky_golay": found["savitzky_golay"],
    }
    write_json(args.report, report)
    write_history(args.history, history)
    print(
        f"train-denoiser: {params.denoise.samples} spectra in {seconds:.0f} s; RMSE "
        f"{found['denoiser']['rmse']:.5f} against Savitzky-Golay's {found['sg']['rmse']:.5f} "
        f"(ratio {found['ratio']:.2f}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "train_denoiser"))
