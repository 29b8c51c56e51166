"""Stage ``evaluate``: ResUNet-1D, arPLS and asPLS on the simulated test set.

ResUNet-1D runs through the same normalisation as every other path (PyTorch, fp32, CPU); the
classical baselines are the ``classical`` stage's fits at their validated ``lam``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from pipeline.checkpoint import load_checkpoint, torch_run
from pipeline.config import EvaluateParams
from pipeline.evaluate import plot_bars, plot_examples, score
from pipeline.files import write_json
from pipeline.normalise import predict_baselines
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import arguments, params_of, script


def run(
    params: EvaluateParams,
    test: SpectrumSet,
    network: torch.nn.Module,
    classical: dict[str, np.ndarray],
    classical_lam: dict[str, float],
) -> tuple[dict, dict[str, np.ndarray]]:
    """The metrics report, and every method's test-set baselines ``(N, L)``."""
    predictions = dict(classical)
    predictions["resunet"] = predict_baselines(torch_run(network), test.observed, params.batch_size)
    report = score(test, predictions, params.noise_bins)
    report["classical_lam"] = classical_lam
    return report, predictions


def main(argv: list[str] | None = None) -> int:
    """Write the metrics (JSON) and the figures."""
    parser = arguments(__doc__, "evaluate", "data model classical classical_report metrics figures")
    args = parser.parse_args(argv)
    params = params_of(args).evaluate
    test = load_sets(args.data, ("test",))["test"]
    with np.load(args.classical) as f:
        classical = {k: f[k] for k in f.files}
    lams = {m: v["log10_lam"] for m, v in json.loads(args.classical_report.read_text()).items()}
    network, _ = load_checkpoint(args.model)
    report, predictions = run(params, test, network, classical, lams)

    write_json(args.metrics, report)
    plot_examples(test, predictions, [0, 1], args.figures)
    plot_bars(report, args.figures)
    for m in ("resunet", "arpls", "aspls"):
        print(f"{m:8s} RMSE {report[m]['rmse']['mean']:.5f}  MAE {report[m]['mae']['mean']:.5f}")
    print("ResUNet / best classical:", json.dumps(report["ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "evaluate"))
