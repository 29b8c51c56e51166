"""Denoising of corrected spectra: the denoiser against the best Savitzky-Golay window.

Issue 15's must-show, on the pipeline's simulated test set (``simulate.seed * 1000 + 2``, the
``simulate`` stage's ``test.npz``):

- the RMSE of the denoised corrected spectrum against the clean bands, in units of each
  observed spectrum's range (:func:`pipeline.metrics.baseline_errors`' units), beside that of
  the best Savitzky-Golay window and order, chosen on the validation set by the same RMSE;
- band heights: ``(estimate - truth) / truth`` at every true band standing at least 5 sigma
  out of the noise (:func:`pipeline.denoise.band_height_errors`);
- bands where the truth has none: maxima of prominence >= 4 sigma with no true maximum within
  3 points (:func:`pipeline.denoise.spurious_bands`), per 100 spectra;
- the cost, spectra/s of the denoiser under ONNX Runtime on one thread.

Each figure is given twice: on spectra corrected with the true baseline (the denoising alone),
and with the shipped model's default method, ``refined`` (what ``correct --denoise`` gives; its
baseline error is in both the denoiser's and Savitzky-Golay's RMSE).

    python benchmarks/denoising.py [--denoiser models/denoiser.onnx] [--n-test 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_line, load_average  # noqa: E402


def sets(params, n_val: int, n_test: int):
    """The simulate stage's validation and test sets (their first ``n`` spectra)."""
    from pipeline.simulate import simulate
    from pipeline.stages.simulate import split_seed

    sim = params.simulate
    return (
        simulate(sim, n_val, split_seed(sim, "val")),
        simulate(sim, n_test, split_seed(sim, "test")),
    )


def refined_baselines(observed: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The shipped model's default method (``refined``), as ``correct`` runs it."""
    from pipeline import shipped
    from pipeline.correct import refined_method
    from pipeline.inference import OnnxBaseline

    model = shipped.load()
    network = OnnxBaseline(model.onnx, grid=model.grid)
    estimate, _ = refined_method(network.baselines, None, None)
    return np.asarray(estimate(x, observed), dtype=np.float64)


REAL_FIGURES = {  # noisy real spectra of four instruments under ../shared/data/real: the zoom
    # (x from, to) on the carotenoid bands of the Chlamydomonas cells (1157, 1525 cm-1)
    "OpenRAMAN/CC-124_TAP_Pos-2-000_002.csv": (350, 700),  # pixels: the axis is uncalibrated
    "Wasatch_WP532X/CC-124_TAP_Pos-4-002_001.csv": (1100, 1650),
    "Renishaw_Qontor/chlamy_spectra/2024-11-12_CC-124_TAP_slide_10_cells.txt": (1100, 1650),
    "Horiba_MacroRAM/CC-124-TAP-2.txt": (1100, 1650),
}


def real_figures(denoiser: Path, real: Path, folder: Path, sg: tuple[int, int]) -> list[Path]:
    """PNGs of real spectra: corrected (``refined``), Savitzky-Golay and the denoiser.

    Each has the whole spectrum on top and a zoom below on the range :data:`REAL_FIGURES`
    gives. Returns the paths written.
    """
    from pipeline.denoise import OnnxDenoiser, savitzky_golay
    from pipeline.masking import find_masked
    from pipeline.plots import axis_label, figure, save
    from pipeline.spectra_io import read_spectra

    network = OnnxDenoiser(denoiser)
    written = []
    for name, (low, high) in REAL_FIGURES.items():
        spectra = read_spectra(real / name, masked=True)
        x, y = spectra.x, spectra.y[:1]
        keep = ~find_masked(y).mask[0]
        x, y = x[keep], y[:, keep]
        corrected = y - refined_baselines(y, x)
        smooth = savitzky_golay(corrected, *sg)[0]
        clean = network.denoise(corrected)[0]
        corrected = corrected[0]
        fig = figure((9, 6))
        top, zoom = fig.subplots(2, 1)
        window = (x >= low) & (x <= high)
        for ax, part in ((top, slice(None)), (zoom, window)):
            ax.plot(x[part], corrected[part], color="0.7", lw=0.8, label="corrected (refined)")
            ax.plot(
                x[part],
                smooth[part],
                color="tab:orange",
                lw=0.9,
                label=f"Savitzky-Golay {sg[0]}/{sg[1]}",
            )
            ax.plot(x[part], clean[part], color="tab:blue", lw=1.1, label="denoised")
            ax.set_xlabel(axis_label(spectra.calibrated))
        top.set_title(name)
        top.legend(loc="upper right", fontsize=8)
        zoom.set_title(f"zoom: {low} to {high}", fontsize=9)
        written.append(save(fig, folder / (Path(name).stem + ".png")))
    return written


def rate(denoiser_path: Path, corrected: np.ndarray, repeats: int = 3) -> float:
    """Spectra/s of the denoiser on one thread (best of ``repeats``)."""
    from pipeline.denoise import OnnxDenoiser

    network = OnnxDenoiser(denoiser_path, threads=1)
    network.denoise(corrected[:64])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        network.denoise(corrected)
        best = min(best, time.perf_counter() - start)
    return len(corrected) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denoiser", type=Path, default=ROOT / "models" / "denoiser.onnx")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--baselines", default="true,refined", help="true, refined or both")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--figures", type=Path, help="write PNGs of real spectra here")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    args = parser.parse_args(argv)

    from pipeline.config import load_params
    from pipeline.denoise import OnnxDenoiser, compare

    params = load_params(args.params)
    val, test = sets(params, args.n_val, args.n_test)
    x = np.linspace(0.0, 1.0, params.simulate.length)
    network = OnnxDenoiser(args.denoiser)
    print(f"denoiser {args.denoiser}; {cpu_line()}; load {load_average()}")
    print(f"simulated validation {len(val)}, test {len(test)} spectra of {x.size} points")
    out = {"denoiser": str(args.denoiser), "cpu": cpu_line(), "baselines": {}}
    for which in args.baselines.split(","):
        if which == "true":
            fits = None
        elif which == "refined":
            fits = (refined_baselines(val.observed, x), refined_baselines(test.observed, x))
        else:
            parser.error(f"--baselines: expected true or refined, got {which!r}")
        found = compare(network.denoise, val, test, fits)
        window, order = found["savitzky_golay"]
        print(
            f"\nbaseline: {which}; Savitzky-Golay chosen on validation: {window} points, "
            f"order {order}"
        )
        print(
            f"{'estimate':34s} {'RMSE':>8s} {'|height err| med':>17s} {'within 5%':>10s} "
            f"{'(>=20 sigma)':>12s} {'bias med':>9s} {'spurious/100':>13s} {'(no band)':>10s}"
        )
        names = {
            "raw": "corrected, not denoised",
            "sg": f"Savitzky-Golay {window}/{order}",
            "denoiser": "denoiser",
            "bound": "perfect denoiser (baseline error)",
        }
        for key, name in names.items():
            r = found[key]
            print(
                f"{name:34s} {r['rmse']:8.5f} {100 * r['height_median_abs']:16.2f}% "
                f"{100 * r['height_within_5pct']:9.1f}% "
                f"{100 * r['height_within_5pct_20sigma']:11.1f}% "
                f"{100 * r['height_median']:8.2f}% {r['spurious_per_100']:13.1f} "
                f"{r['empty_per_100']:10.1f}"
            )
        bound = found["bound"]["rmse"] / found["sg"]["rmse"]
        print(f"a perfect denoiser's RMSE / Savitzky-Golay's: {bound:.3f}")
        print(
            f"denoiser RMSE / Savitzky-Golay RMSE: {found['ratio']:.3f} (target <= 0.7); "
            f"bands judged: {found['raw']['bands']}"
        )
        out["baselines"][which] = found
    speed = rate(args.denoiser, test.observed - test.baseline)
    print(f"\ndenoiser speed: {speed:,.0f} spectra/s (ONNX Runtime, 1 thread, {x.size} points)")
    out["spectra_per_s"] = speed
    if args.figures:
        window = out["baselines"].get("refined", next(iter(out["baselines"].values())))
        for path in real_figures(args.denoiser, args.real, args.figures, window["savitzky_golay"]):
            print(f"figure: {path}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
