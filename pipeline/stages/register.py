"""Stage ``register``: the MLflow run of this pipeline execution, a new version, the gate.

The run holds every params.yaml value, the training curves, the test metrics, the figures,
the data digests, the checkpoint and the ONNX model (as the pyfunc ``resunet1d`` serves). The
new version gets the alias ``challenger``; the gate re-scores it, production and arPLS/asPLS
on the test set and moves ``production`` only if it beats all of them on RMSE and MAE.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from pipeline import registry
from pipeline.config import Params, to_dict
from pipeline.files import write_json
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import (
    arguments,
    params_of,
    path_arguments,
    read_history,
)
from pipeline.stages._registering import already_registered, benchmark, classical_errors


def test_metrics(metrics: dict) -> dict[str, float]:
    """``test_<method>_<rmse|mae>`` of the ``evaluate`` stage's metrics."""
    return {
        f"test_{m}_{k}": metrics[m][k]["mean"]
        for m in ("resunet", "arpls", "aspls")
        for k in ("rmse", "mae")
    }


def run(
    client,
    params: Params,
    files: dict[str, Path],
    test: SpectrumSet,
    classical: dict[str, dict[str, float]],
    metrics: dict,
    history: list[dict],
    extra_files: list[Path],
) -> dict:
    """Log the run, register the version, run the gate; return the registration record.

    ``files`` names the ``train``, ``val``, ``test`` sets, the ``onnx`` model, the
    ``checkpoint``, the ``params`` file and the ``figures`` folder. Call under the registry lock.
    """
    digests = {k: registry.file_digest(v) for k, v in files.items() if k != "figures"}
    scores = test_metrics(metrics)
    commit = registry.git_commit()
    run_id, model_uri = registry.log_pipeline_run(
        client,
        params=to_dict(params),
        history=history,
        test_metrics=scores,
        figures=files["figures"],
        checkpoint=files["checkpoint"],
        onnx_path=files["onnx"],
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
    decision = registry.register_and_gate(
        client,
        run_id=run_id,
        model_uri=model_uri,
        version_tags=tags,
        benchmark=benchmark(test),
        classical=classical,
        command=registry.command_line(),
    )
    # what the fast variant and fine-tuning start from: production after the gate, or this
    # version while nothing was ever promoted
    reference = decision.version if decision.promoted else decision.production_version
    reference = str(reference or decision.version)
    registry.set_version_tag(client, decision.version, "reference_version", reference)
    record = {"name": registry.MODEL_NAME, "run_id": run_id, **dataclasses.asdict(decision)}
    return record | {"reference_version": reference}


def main(argv: list[str] | None = None) -> int:
    """Register the model of this pipeline execution; write the registration record."""
    parser = arguments(__doc__, "register")
    path_arguments(
        parser,
        data="folder of the simulated sets",
        onnx="ONNX model",
        checkpoint="checkpoint, .pt",
        classical="classical fits, .npz",
        metrics="evaluate's metrics.json",
        history="training history, .csv",
        figures="evaluate's figures folder",
        export_report="export.json",
        dvc_lock="DVC's lock file (logged with the run)",
        out="registration record, .json",
    )
    args = parser.parse_args(argv)
    params = params_of(args)
    client = registry.connect(create=True)
    test = load_sets(args.data, ("test",))["test"]
    files = {s: args.data / f"{s}.npz" for s in ("train", "val", "test")}
    files |= {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files["figures"] = args.figures
    with registry.registry_lock():  # one registration at a time on this store
        if already_registered(client, registry.file_digest(args.onnx), args.out):
            return 0
        record = run(
            client,
            params,
            files,
            test,
            classical_errors(args.classical, test),
            json.loads(args.metrics.read_text()),
            read_history(args.history),
            [args.dvc_lock, args.params, args.export_report],
        )
    write_json(args.out, record)
    verdict = "promoted to production" if record["promoted"] else "stays challenger"
    print(f"{registry.MODEL_NAME} v{record['version']} {verdict}: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
