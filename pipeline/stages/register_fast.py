"""Stage ``register_fast``: the fast variant, alias ``fast``, if it is nearly as accurate.

The student's ONNX model and the reference version (recorded by ``register`` in its record,
``reference_version``) are both scored now on the simulated test set; the student is
registered with the alias ``fast`` only if its RMSE is at most ``student.max_rmse_ratio``
times the reference's. Otherwise nothing is registered and the record says why.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

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
from pipeline.stages._registering import already_registered, benchmark, recorded_version


def run(
    client,
    params: Params,
    reference: str,
    files: dict[str, Path],
    test: SpectrumSet,
    history: list[dict],
) -> dict:
    """Score the student against ``reference``; register it as ``fast`` if within the ratio.

    ``files`` names the student's ``onnx`` model, ``checkpoint``, ``params`` file and
    ``export_report``. Call under the registry lock. Returns the record.
    """
    decision = registry.fast_gate(
        client,
        files["onnx"],
        params.simulate.length,
        benchmark(test),
        params.student.max_rmse_ratio,
        reference,
    )
    record = {"registered": decision.promoted, "reason": decision.reason}
    record |= {"variant": decision.challenger, "production": decision.production}
    record["production_version"] = decision.production_version
    record["reference_version"] = reference
    if not decision.promoted:
        return record
    digests = {k: registry.file_digest(files[k]) for k in ("onnx", "params")}
    run_id, model_uri = registry.log_pipeline_run(
        client,
        params={
            "model": {**dataclasses.asdict(params.model), **dataclasses.asdict(params.student)}
        },
        history=history,
        test_metrics={f"test_{k}": v for k, v in decision.challenger.items()},
        figures=None,
        checkpoint=files["checkpoint"],
        onnx_path=files["onnx"],
        digests=digests,
        extra_files=[files["export_report"]],
        run_name=f"fast variant {registry.git_commit()[:12]}",
        grid=params.simulate.length,
    )
    tags = {
        "onnx_sha256": digests["onnx"],
        "variant": "fast",
        "reference_version": reference,
        "gate.decision": "registered",
        "gate.reason": decision.reason,
    }
    record["version"] = registry.register_alias(
        client,
        run_id=run_id,
        model_uri=model_uri,
        version_tags=tags,
        alias=registry.FAST,
        why=f"fast gate: {decision.reason}",
    )
    record["run_id"] = run_id
    return record


def main(argv: list[str] | None = None) -> int:
    """Register the fast variant if it passes; write its record."""
    parser = arguments(__doc__, "register-fast")
    path_arguments(
        parser,
        data="folder of the simulated sets",
        onnx="the student's ONNX model",
        checkpoint="the student's checkpoint, .pt",
        history="the student's training history, .csv",
        export_report="the student's export report, .json",
        registration="register's record (names the reference version)",
        out="this stage's record, .json",
    )
    args = parser.parse_args(argv)
    params = params_of(args)
    reference = recorded_version(args.registration)
    client = registry.connect()
    test = load_sets(args.data, ("test",))["test"]
    files = {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files["export_report"] = args.export_report
    with registry.registry_lock():
        if already_registered(client, registry.file_digest(args.onnx), args.out):
            return 0
        record = run(client, params, reference, files, test, read_history(args.history))
    write_json(args.out, record)
    if record["registered"]:
        print(f"{registry.MODEL_NAME} v{record['version']} is @fast: {record['reason']}")
    else:
        print(f"fast variant not registered: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
