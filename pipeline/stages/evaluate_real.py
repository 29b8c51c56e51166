"""Stage ``evaluate_real``: ResUNet-1D, arPLS, asPLS and refined on every benchmark.

The benchmarks: the simulated test set, the semi-real test set and the RRUFF test pairs
(``semireal`` stage), each with its own validation part, on which every classical ``lam`` and
``refined``'s classical part (arPLS, asPLS or none) and ``lam`` are chosen
(:func:`pipeline.evaluate.score_benchmark`; simulated: the first ``classical.n_val_grid``
validation spectra). The network runs through the exported ONNX model, the registered
inference path.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.config import Params
from pipeline.evaluate import score_benchmark
from pipeline.files import write_json
from pipeline.inference import OnnxBaseline
from pipeline.metrics import BENCHMARKS
from pipeline.semireal import blocks, real_benchmarks
from pipeline.simulate import load_sets
from pipeline.stages._common import arguments, params_of, script


def load_benchmarks(params: Params, data: Path, semireal: Path, rruff: Path) -> dict:
    """``{benchmark: (val blocks, test blocks)}`` for every one of :data:`BENCHMARKS`."""
    sets = load_sets(data, ("val", "test"))
    n = params.classical.n_val_grid
    val = blocks(sets["val"])[0]
    out = {"simulated": ([(val[0], val[1][:n], val[2][:n])], blocks(sets["test"]))}
    parts = {p: real_benchmarks(semireal, rruff, p) for p in ("val", "test")}
    return out | {b: (parts["val"][b], parts["test"][b]) for b in ("semireal", "rruff")}


def run(params: Params, onnx: Path, benchmarks: dict) -> dict[str, dict]:
    """The report of every benchmark (:func:`pipeline.evaluate.score_benchmark`)."""
    network = OnnxBaseline(onnx, grid=params.simulate.length).baselines
    reports = {}
    for name, (val, test) in benchmarks.items():
        start = time.perf_counter()
        reports[name] = score_benchmark(
            network, params.classical, params.simulate.length, val, test
        )
        reports[name]["seconds"] = round(time.perf_counter() - start, 1)
    return reports


def table(reports: dict[str, dict]) -> str:
    """Mean RMSE per method and benchmark, and the ratios to the better classical method."""
    methods = ("resunet", "refined", "arpls", "aspls")
    lines = [
        f"{'benchmark':10s} "
        + " ".join(f"{m:>9s}" for m in methods)
        + "  resunet/best refined/best"
    ]
    for name, r in reports.items():
        ratio = r["ratio"]
        lines.append(
            f"{name:10s} "
            + " ".join(f"{r[m]['rmse']['mean']:9.5f}" for m in methods)
            + f"  {ratio['rmse_resunet_over_best_classical']:12.3f}"
            + f" {ratio['rmse_refined_over_best_classical']:12.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write one metrics file per benchmark; print the table."""
    parser = arguments(__doc__, "evaluate-real", "data onnx")
    for flag, what in (
        ("--semireal", "folder of the semi-real sets (val/test.npz)"),
        ("--rruff", "folder of the RRUFF parts (val/test.npz)"),
        *((f"--{b}-metrics", f"the {b} benchmark's metrics (.json)") for b in BENCHMARKS),
    ):
        parser.add_argument(flag, type=Path, required=True, help=what)
    args = parser.parse_args(argv)
    params = params_of(args)
    reports = run(params, args.onnx, load_benchmarks(params, args.data, args.semireal, args.rruff))
    for name, report in reports.items():
        write_json(getattr(args, f"{name}_metrics"), report)
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "evaluate_real"))
