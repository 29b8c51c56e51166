"""Stage ``register_fast``: the fast variant, alias ``fast``, if it is nearly as accurate.

The student's ONNX model and the reference version (recorded by ``register`` in its record,
``reference_version``) are both scored now on every benchmark (the simulated test set, the
semi-real test set, the RRUFF test pairs); the student is registered with the alias ``fast``
only if its RMSE is at most ``student.max_rmse_ratio`` times the reference's on each.
Otherwise nothing is registered and the record says why.
"""

from __future__ import annotations

import dataclasses
import sys
from functools import partial
from pathlib import Path

from pipeline import registry
from pipeline.config import Params
from pipeline.registry import FAST
from pipeline.simulate import SpectrumSet
from pipeline.stages._common import (
    read_history,
    script,
)
from pipeline.stages._registering import (
    benchmark,
    log_and_register,
    recorded_version,
    register_once,
    start,
)

# the inputs and outputs named by its cmd in dvc.yaml
PATHS = "data onnx checkpoint history export_report registration out"


def run(
    client,
    params: Params,
    files: dict[str, Path],
    test: SpectrumSet,
    reference: str,
    history: list[dict],
    real: dict,
) -> dict:
    """Score the student against ``reference``; register it as ``fast`` if within the ratio.

    ``files`` names the student's ``onnx`` model, ``checkpoint``, ``params`` file and
    ``export_report``; ``real`` the real-reference benchmarks. Call under the registry lock.
    Returns the record.
    """
    decision = registry.fast_gate(
        client,
        files["onnx"],
        params.simulate.length,
        benchmark(test),
        params.student.max_rmse_ratio,
        reference,
        real,
    )
    record = {"registered": decision.promoted, "reason": decision.reason}
    record |= {"variant": decision.challenger, "production": decision.production}
    record["benchmarks"] = decision.benchmarks
    record["production_version"] = decision.production_version
    record["reference_version"] = reference
    if not decision.promoted:
        return record
    digests = {k: registry.file_digest(files[k]) for k in ("onnx", "params")}
    run = dict(
        params={
            "model": {**dataclasses.asdict(params.model), **dataclasses.asdict(params.student)}
        },
        history=history,
        test_metrics={f"test_{k}": v for k, v in decision.challenger.items()}
        | registry.gate_figures(decision),
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
    why = f"fast gate: {decision.reason}"
    run_id, record["version"] = log_and_register(client, files, run, tags, alias=FAST, why=why)
    record["run_id"] = run_id
    return record


def main(argv: list[str] | None = None) -> int:
    """Register the fast variant if it passes; write its record."""
    args, params, client, test, real = start(__doc__, "register-fast", PATHS, argv)
    reference = recorded_version(args.registration)
    files = {"onnx": args.onnx, "checkpoint": args.checkpoint, "params": args.params}
    files["export_report"] = args.export_report
    history = read_history(args.history)
    register = partial(run, client, params, files, test, reference, history, real)
    record = register_once(client, args.onnx, args.out, register)
    if record is None:
        return 0
    if record["registered"]:
        print(f"{registry.MODEL_NAME} v{record['version']} is @fast: {record['reason']}")
    else:
        print(f"fast variant not registered: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "register_fast"))
