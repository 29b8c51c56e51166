"""Stage ``register_finetuned``: the fine-tuned network, tagged with its parent, through the gate.

Both the fine-tuned ONNX model and its parent version are scored now on the simulated test
set; if the fine-tuned RMSE is more than ``finetune.max_sim_rmse_ratio`` times the parent's,
nothing is registered and the record says why. Otherwise an MLflow run (fine-tuning params,
curve, before/after figures and measures) and a new ``resunet1d`` version go through the same
gate as any version: the simulated test set, the semi-real test set and the RRUFF test pairs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np

from pipeline import registry
from pipeline.config import Params
from pipeline.simulate import SpectrumSet
from pipeline.stages._common import (
    read_history,
    script,
)
from pipeline.stages._registering import (
    benchmark,
    classical_errors,
    log_and_register,
    register_once,
    start,
)

# the inputs and outputs named by its cmd in dvc.yaml
PATHS = "data classical onnx checkpoint history report figures export_report out"


def run(
    client,
    params: Params,
    report: dict,
    files: dict[str, Path],
    test: SpectrumSet,
    classical: dict[str, dict[str, float]],
    history: list[dict],
    real: dict,
) -> dict:
    """Score against the parent; register and gate if within the ratio. Return the record.

    ``report`` is the ``finetune`` stage's report; ``files`` names the ``onnx`` model, the
    ``checkpoint``, the ``params`` file, the ``report``, the ``export_report`` and the
    ``figures`` folder; ``real`` the real-reference benchmarks. Call under the registry lock.
    """
    parent = str(report["parent_version"])
    x = np.arange(test.observed.shape[1], dtype=np.float64)
    parent_scores = registry.score_version(parent, x, test.observed, test.baseline)
    tuned = registry.score_onnx(files["onnx"], params.simulate.length, benchmark(test))
    ratio = tuned["rmse"] / parent_scores["rmse"]
    record = {"parent_version": parent, "simulated_test": tuned, "parent": parent_scores}
    record["rmse_ratio"] = ratio
    limit = params.finetune.max_sim_rmse_ratio
    if ratio > limit:
        reason = (
            f"simulated-test RMSE {tuned['rmse']:.5f} is {ratio:.3f} x parent "
            f"v{parent}'s {parent_scores['rmse']:.5f} (> {limit:g})"
        )
        return record | {"registered": False, "reason": reason}
    digests = {k: registry.file_digest(files[k]) for k in ("onnx", "checkpoint", "params")}
    quality = {
        f"real_{method}_{k}": v
        for method, q in report["heldout_quality"].items()
        for k, v in q.items()
    }
    metrics = {f"test_{k}": v for k, v in tuned.items()}
    metrics |= {f"parent_test_{k}": v for k, v in parent_scores.items()}
    metrics["test_rmse_ratio_to_parent"] = ratio
    commit = registry.git_commit()
    run = dict(
        params={"finetune": dataclasses.asdict(params.finetune), "parent_version": parent},
        history=history,
        test_metrics=metrics | quality,
        digests=digests,
        extra_files=[files["report"], files["export_report"]],
        run_name=f"finetune of v{parent} {commit[:12]}",
        grid=params.simulate.length,
    )
    tags = {
        "onnx_sha256": digests["onnx"],
        "parent_version": parent,
        "parent_run_id": str(report["parent_run_id"]),
        "finetuned": "true",
        "finetune.targets": str(report["targets"]),
        "git_commit": commit,
    }
    gate = dict(test=test, classical=classical, real=real)
    run_id, decision = log_and_register(client, files, run, tags, **gate)
    return record | {"registered": True, "run_id": run_id, **dataclasses.asdict(decision)}


def main(argv: list[str] | None = None) -> int:
    """Register the fine-tuned network if it passes; write its record."""
    args, params, client, test, real = start(__doc__, "register-finetuned", PATHS, argv)
    report = json.loads(args.report.read_text())
    files = {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files |= {"report": args.report, "export_report": args.export_report, "figures": args.figures}
    classical = classical_errors(args.classical, test)
    history = read_history(args.history)
    register = partial(run, client, params, report, files, test, classical, history, real)
    record = register_once(client, args.onnx, args.out, register)
    if record is None:
        return 0
    if not record["registered"]:
        print(f"fine-tuned model not registered: {record['reason']}")
        return 0
    verdict = "promoted to production" if record["promoted"] else "stays challenger"
    print(
        f"{registry.MODEL_NAME} v{record['version']} (fine-tuned from v{record['parent_version']},"
        f" simulated-test RMSE {record['rmse_ratio']:.3f} x parent's) {verdict}: {record['reason']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "register_finetuned"))
