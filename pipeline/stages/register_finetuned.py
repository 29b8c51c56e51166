"""Stage ``register_finetuned``: the fine-tuned network, tagged with its parent, through the gate.

Both the fine-tuned ONNX model and its parent version are scored now on the simulated test
set; if the fine-tuned RMSE is more than ``finetune.max_sim_rmse_ratio`` times the parent's,
nothing is registered and the record says why. Otherwise an MLflow run (fine-tuning params,
curve, before/after figures and measures) and a new ``resunet1d`` version go through the same
gate as any version.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from pipeline import registry
from pipeline.config import Params
from pipeline.files import write_json
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import (
    arguments,
    params_of,
    path_arguments,
    read_history,
)
from pipeline.stages._registering import already_registered, benchmark, classical_errors


def run(
    client,
    params: Params,
    report: dict,
    files: dict[str, Path],
    test: SpectrumSet,
    classical: dict[str, dict[str, float]],
    history: list[dict],
) -> dict:
    """Score against the parent; register and gate if within the ratio. Return the record.

    ``report`` is the ``finetune`` stage's report; ``files`` names the ``onnx`` model, the
    ``checkpoint``, the ``params`` file, the ``report``, the ``export_report`` and the
    ``figures`` folder. Call under the registry lock.
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
    run_id, model_uri = registry.log_pipeline_run(
        client,
        params={"finetune": dataclasses.asdict(params.finetune), "parent_version": parent},
        history=history,
        test_metrics=metrics | quality,
        figures=files["figures"],
        checkpoint=files["checkpoint"],
        onnx_path=files["onnx"],
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
    decision = registry.register_and_gate(
        client,
        run_id=run_id,
        model_uri=model_uri,
        version_tags=tags,
        benchmark=benchmark(test),
        classical=classical,
        command=registry.command_line(),
    )
    return record | {"registered": True, "run_id": run_id, **dataclasses.asdict(decision)}


def main(argv: list[str] | None = None) -> int:
    """Register the fine-tuned network if it passes; write its record."""
    parser = arguments(__doc__, "register-finetuned")
    path_arguments(
        parser,
        data="folder of the simulated sets",
        classical="classical fits, .npz",
        onnx="the fine-tuned ONNX model",
        checkpoint="the fine-tuned checkpoint, .pt",
        history="fine-tuning history, .csv",
        report="finetune's report, .json",
        figures="finetune's figures folder",
        export_report="the fine-tuned model's export report, .json",
        out="this stage's record, .json",
    )
    args = parser.parse_args(argv)
    params = params_of(args)
    client = registry.connect()
    report = json.loads(args.report.read_text())
    test = load_sets(args.data, ("test",))["test"]
    files = {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files |= {"report": args.report, "export_report": args.export_report, "figures": args.figures}
    with registry.registry_lock():
        if already_registered(client, registry.file_digest(args.onnx), args.out):
            return 0
        record = run(
            client,
            params,
            report,
            files,
            test,
            classical_errors(args.classical, test),
            read_history(args.history),
        )
    write_json(args.out, record)
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
    sys.exit(main())
