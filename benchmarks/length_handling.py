"""Spectra of any length: resample onto the training grid, or run at the native length?

    python benchmarks/length_handling.py --model models/resunet.onnx
    python benchmarks/length_handling.py --checkpoint models/resunet.pt   # exported on the fly

For each length L, simulates ``--n`` spectra with params.yaml's ``simulate`` section at
``length=L`` (true baselines known: backgrounds span the window, bands keep their widths in
points, as in training; ``--bands scaled`` widens the bands by L / simulate.length instead,
as if the same spectrum were sampled more finely) and estimates their baselines through
``pipeline.correct``:

- ``resample``: onto a uniform grid of ``simulate.length`` points and back (OnnxBaseline);
- ``native``: at L points, padded to a multiple of 32 (``edge`` or ``reflect``), then cropped.

Errors are pipeline.metrics.mean_errors: per spectrum in units of its range, mean over the
spectra. For reference, arPLS at the validated ``lam`` scaled by (L / simulate.length)^4 (what
``correct --method arpls`` does) and at the same ``lam`` unscaled. Prints a markdown table.
"""

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline.baselines import classical_baselines  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.correct import chosen_log10_lam, load_network  # noqa: E402
from pipeline.normalise import network_baselines  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402

LENGTHS = (300, 512, 777, 1015, 1500, 2048, 3000, 4000)
MODES = (("resample", "edge"), ("native", "edge"), ("native", "reflect"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="an exported .onnx file")
    source.add_argument("--checkpoint", type=Path, help="a .pt checkpoint, exported here")
    parser.add_argument("--n", type=int, default=200, help="spectra per length")
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--classical-report", type=Path, default=Path("reports/classical.json"))
    parser.add_argument("--bands", choices=("points", "scaled"), default="points")
    args = parser.parse_args()

    params = load_params(args.params)
    grid = params.simulate.length
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = args.model or _export(args.checkpoint, Path(tmp) / "model.onnx", grid)
        model = load_network(str(onnx_path), grid=grid)
        settings = params.classical.arpls
        log10_lam, _ = chosen_log10_lam("arpls", settings, args.classical_report)
        arpls = {
            "scaled": classical_baselines("arpls", log10_lam, settings, grid),
            "fixed": lambda x, y: classical_baselines("arpls", log10_lam, settings, y.shape[1])(
                x, y
            ),
        }
        rows = []
        for length in args.lengths:
            sim = simulate(_at_length(params.simulate, length, args.bands), args.n, length)
            x = np.arange(length, dtype=np.float64)
            row = {"L": length}
            for mode, pad in MODES:
                start = time.perf_counter()
                b = network_baselines(
                    model.run, model.grid, x, sim.observed, mode, model.length_multiple, pad
                )
                row[f"{mode}-{pad}", "ms"] = 1e3 * (time.perf_counter() - start) / args.n
                row[f"{mode}-{pad}"] = common.errors_of(b, sim)
            for name, fn in arpls.items():
                row[f"arpls-{name}"] = common.errors_of(fn(x, sim.observed), sim)
            rows.append(row)
            print(f"  L = {length} done", flush=True)
    _print_table(rows, args, onnx_path, log10_lam, grid)


def _at_length(sim, length: int, bands: str):
    """The simulation settings at ``length`` points; band widths in points, or scaled."""
    if bands == "scaled":
        factor = length / sim.length
        widths = tuple(w * factor for w in sim.peaks.width)
        sim = dataclasses.replace(sim, peaks=dataclasses.replace(sim.peaks, width=widths))
    return dataclasses.replace(sim, length=length)


def _export(checkpoint: Path, out: Path, grid: int) -> Path:
    from pipeline.checkpoint import load_checkpoint
    from pipeline.export import export_onnx

    export_onnx(load_checkpoint(checkpoint)[0], out, length=grid)
    return out


def _print_table(rows, args, onnx_path, log10_lam, grid) -> None:
    source = args.checkpoint or onnx_path
    print(f"\nbaseline errors, mean over {args.n} simulated spectra per length ({source})")
    print(f"band widths: {'in points, as in training' if args.bands == 'points' else 'scaled'}")
    print(f"units of each spectrum's range; arPLS log10(lam) = {log10_lam:g} at {grid} points\n")
    head = (
        "| L | RMSE resample | RMSE native (edge) | RMSE native (reflect) | MAE resample "
        "| MAE native (edge) | MAE native (reflect) | native (edge) / resample, RMSE "
        "| arPLS RMSE, lam scaled | arPLS RMSE, lam fixed | ms/spectrum resample / native |"
    )
    print(head)
    print("|" + "---|" * head.count(" | ") + "---|")
    for r in rows:
        res, edge, refl = r["resample-edge"], r["native-edge"], r["native-reflect"]
        print(
            f"| {r['L']} | {res[0]:.4f} | {edge[0]:.4f} | {refl[0]:.4f} "
            f"| {res[1]:.4f} | {edge[1]:.4f} | {refl[1]:.4f} | {edge[0] / res[0]:.2f} "
            f"| {r['arpls-scaled'][0]:.4f} | {r['arpls-fixed'][0]:.4f} "
            f"| {r['resample-edge', 'ms']:.1f} / {r['native-edge', 'ms']:.1f} |"
        )
    mean = {k: np.mean([r[k] for r in rows], axis=0) for k in rows[0] if isinstance(k, str)}
    print(
        f"| mean | {mean['resample-edge'][0]:.4f} | {mean['native-edge'][0]:.4f} "
        f"| {mean['native-reflect'][0]:.4f} | {mean['resample-edge'][1]:.4f} "
        f"| {mean['native-edge'][1]:.4f} | {mean['native-reflect'][1]:.4f} "
        f"| {mean['native-edge'][0] / mean['resample-edge'][0]:.2f} "
        f"| {mean['arpls-scaled'][0]:.4f} | {mean['arpls-fixed'][0]:.4f} | |"
    )


if __name__ == "__main__":
    main()
