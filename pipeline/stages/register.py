"""Stage ``register``: the MLflow run of this pipeline execution, a new version, the gate.

The run holds every params.yaml value, the training curves, the test metrics, the figures,
the data digests, the checkpoint and the ONNX model (as the pyfunc ``resunet1d`` serves). The
new version gets the alias ``challenger``; the gate re-scores it, production and arPLS/asPLS
on the test set and moves ``production`` only if it beats all of them on RMSE and MAE, and its
RMSE is no worse than production's on the semi-real test set and the RRUFF test pairs. The
``evaluate_real`` stage's figures (every method on every benchmark) are logged with the run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from functools import partial
from pathlib import Path

from pipeline import registry
from pipeline.config import Params, to_dict
from pipeline.metrics import BENCHMARKS
from pipeline.simulate import SpectrumSet
from pipeline.stages._common import (
    read_history,
    script,
)
from pipeline.stages._registering import (
    classical_errors,
    log_and_register,
    register_once,
    start,
)

# the inputs and outputs named by its cmd in dvc.yaml
PATHS = "data onnx checkpoint classical metrics history figures export_report dvc_lock out"
REAL_METRICS = BENCHMARKS  # evaluate_real's metrics, one per benchmark: --<name>-metrics


def test_metrics(metrics: dict, real: dict[str, dict] | None = None) -> dict[str, float]:
    """Figures logged with the run, by name.

    ``test_<method>_<rmse|mae>`` of the ``evaluate`` stage's metrics, and
    ``<benchmark>_<method>_<rmse|mae>`` of the ``evaluate_real`` stage's (``real``).
    """
    scores = {
        f"test_{m}_{k}": metrics[m][k]["mean"]
        for m in ("resunet", "arpls", "aspls")
        for k in ("rmse", "mae")
    }
    for name, report in (real or {}).items():
        methods = [m for m in ("resunet", "refined", "arpls", "aspls") if m in report]
        scores |= {
            f"{name}_{m}_{k}": report[m][k]["mean"] for m in methods for k in ("rmse", "mae")
        }
    return scores


def run(
    client,
    params: Params,
    files: dict[str, Path],
    test: SpectrumSet,
    classical: dict[str, dict[str, float]],
    metrics: dict,
    history: list[dict],
    extra_files: list[Path],
    real: dict,
    real_metrics: dict[str, dict],
) -> dict:
    """Log the run, register the version, run the gate; return the registration record.

    ``files`` names the ``train``, ``val``, ``test`` sets, the ``onnx`` model, the
    ``checkpoint``, the ``params`` file and the ``figures`` folder; ``real`` the real-reference
    benchmarks the gate scores, ``real_metrics`` the ``evaluate_real`` stage's reports. Call
    under the registry lock.
    """
    digests = {k: registry.file_digest(v) for k, v in files.items() if k != "figures"}
    scores = test_metrics(metrics, real_metrics)
    commit = registry.git_commit()
    run = dict(
        params=to_dict(params),
        history=history,
        test_metrics=scores,
        digests=digests,
        extra_files=extra_files,
        run_name=f"pipeline {commit[:12]}",
        grid=params.simulate.length,
    )
    tags = {
        "onnx_sha256": digests["onnx"],
        "params_sha256": digests["params"],
        "data.train_sha256": digests["train"],
        "data.test_sha256": digests["test"],
        "git_commit": commit,
        **{k: f"{v:.6g}" for k, v in scores.items()},
    }
    gate = dict(test=test, classical=classical, real=real)
    run_id, decision = log_and_register(client, files, run, tags, **gate)
    record = {"name": registry.MODEL_NAME, "run_id": run_id, **dataclasses.asdict(decision)}
    # what the fast variant and fine-tuning start from (a declared input of theirs)
    return record | {"reference_version": registry.reference_of(record)}


def main(argv: list[str] | None = None) -> int:
    """Register the model of this pipeline execution; write the registration record."""
    args, params, client, test, real = start(
        __doc__, "register", PATHS, argv, create=True, metrics=REAL_METRICS
    )
    files = {s: args.data / f"{s}.npz" for s in ("train", "val", "test")}
    files |= {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files["figures"] = args.figures
    metrics = json.loads(args.metrics.read_text())
    reports = {b: json.loads(getattr(args, f"{b}_metrics").read_text()) for b in REAL_METRICS}
    extra = [args.dvc_lock, args.params, args.export_report]
    classical = classical_errors(args.classical, test)
    history = read_history(args.history)
    register = partial(
        run, client, params, files, test, classical, metrics, history, extra, real, reports
    )
    record = register_once(client, args.onnx, args.out, register)
    if record is None:
        return 0
    verdict = "promoted to production" if record["promoted"] else "stays challenger"
    print(f"{registry.MODEL_NAME} v{record['version']} {verdict}: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "register"))
