"""What the three registering stages share: the benchmarks, re-registration and the record.

Every registering stage scores models on the simulated test set and the real-reference
benchmarks (the semi-real test set and the RRUFF test pairs of the ``semireal`` stage, passed
as ``--semireal`` and ``--rruff``), registers nothing twice (the ONNX file's sha256 is a
version tag), and writes a JSON record that the downstream stages read:
``reference_version`` is the version the fast variant and fine-tuning compare with and start
from, so that the live ``production`` alias is never an input DVC cannot see.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline import registry
from pipeline.files import write_json
from pipeline.metrics import mean_errors
from pipeline.semireal import real_benchmarks
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import arguments, params_of


def start(doc: str | None, prog: str, paths: str, argv, create: bool = False, metrics: tuple = ()):
    """What every registering stage's ``main`` begins with.

    Parse ``argv`` (the path options ``paths``, :func:`pipeline.stages._common.arguments`),
    ``--semireal``, ``--rruff`` and ``--<name>-metrics`` for each of ``metrics``), validate
    the params, connect to the store (``create``: make it when missing) and load the
    benchmarks. Returns ``(args, params, client, test,
    real)``: the simulated test set and the real-reference benchmarks' test parts
    (:func:`pipeline.semireal.real_benchmarks`).
    """
    parser = arguments(doc, prog, paths)
    parser.add_argument("--semireal", type=Path, required=True, help="the semi-real sets' folder")
    parser.add_argument("--rruff", type=Path, required=True, help="the RRUFF parts' folder")
    for name in metrics:
        help_ = f"the evaluate_real stage's {name} metrics (.json)"
        parser.add_argument(f"--{name}-metrics", type=Path, required=True, help=help_)
    args = parser.parse_args(argv)
    params = params_of(args)
    client = registry.connect(create=create)
    real = real_benchmarks(args.semireal, args.rruff, "test")
    return args, params, client, load_sets(args.data, ("test",))["test"], real


def benchmark(test: SpectrumSet) -> dict[str, np.ndarray]:
    """The gate's benchmark: observed spectra and true baselines ``(N, L)``."""
    return {"observed": test.observed, "baseline": test.baseline}


def classical_errors(fits: Path, test: SpectrumSet) -> dict[str, dict[str, float]]:
    """Mean RMSE and MAE of each classical method's test-set fits (``classical`` stage)."""
    with np.load(fits) as f:
        return {m: mean_errors(f[m], test.baseline, test.observed) for m in f.files}


def log_and_register(client, files: dict[str, Path], run: dict, tags: dict[str, str], **gate):
    """Log one MLflow run and register its model as a new version tagged ``tags``.

    ``files`` names the ``onnx`` model, its ``checkpoint`` and (optionally) the ``figures``
    folder; ``run`` holds the rest of :func:`pipeline.registry.log_pipeline_run`'s arguments.
    ``gate``: ``test``, ``classical`` (each method's mean errors on it) and ``real`` (the
    real-reference benchmarks) send the version through the promotion gate, and
    ``(run_id, decision)`` is returned; ``alias`` and ``why`` give it that alias instead, and
    ``(run_id, version)`` is returned. Call under the registry lock.
    """
    run_id, model_uri = registry.log_pipeline_run(
        client,
        figures=files.get("figures"),
        checkpoint=files["checkpoint"],
        onnx_path=files["onnx"],
        **run,
    )
    new = {"run_id": run_id, "model_uri": model_uri, "version_tags": tags}
    if "alias" in gate:
        return run_id, registry.register_alias(client, **new, alias=gate["alias"], why=gate["why"])
    decision = registry.register_and_gate(
        client,
        **new,
        benchmark=benchmark(gate["test"]),
        classical=gate["classical"],
        command=registry.command_line(),
        real=gate["real"],
    )
    return run_id, decision


def already_registered(client, onnx_digest: str, out: Path) -> bool:
    """Whether this ONNX file is a registered version already; if so, record that in ``out``.

    The record says whether the gate promoted that version and which version holds
    production now, so that :func:`recorded_version` names the same reference as a
    registration would.
    """
    existing = registry.find_version_by_tag(client, "onnx_sha256", onnx_digest)
    if existing is None:
        return False
    print(f"this model is already registered as {registry.MODEL_NAME} v{existing}")
    tags = registry.model_version(client, existing).tags
    record = {"name": registry.MODEL_NAME, "version": existing, "already_registered": True}
    record["promoted"] = tags.get("gate.decision") == "promoted"
    record["production_version"] = registry.production_version(client)
    record["parent_version"] = tags.get("parent_version")
    record["reference_version"] = registry.reference_of(record)
    write_json(out, record)
    return True


def register_once(client, onnx: Path, out: Path, register: Callable[[], dict]) -> dict | None:
    """Under the registry lock, ``register()`` unless ``onnx`` is a registered version already.

    Writes the stage's record to ``out`` either way; returns the new record, or None when the
    model was registered before (:func:`already_registered`).
    """
    with registry.registry_lock():  # one registration at a time on this store
        if already_registered(client, registry.file_digest(onnx), out):
            return None
        record = register()
    write_json(out, record)
    return record


def recorded_version(path: Path) -> str:
    """The reference version a registering stage's record (``registration.json``) names."""
    return registry.reference_of(json.loads(Path(path).read_text()))
