"""What the three registering stages share: the benchmark, re-registration and the record.

Every registering stage scores models on the simulated test set (the benchmark), registers
nothing twice (the ONNX file's sha256 is a version tag), and writes a JSON record that the
downstream stages read: ``reference_version`` is the version the fast variant and fine-tuning
compare with and start from, so that the live ``production`` alias is never an input DVC
cannot see.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import registry
from pipeline.files import write_json
from pipeline.metrics import mean_errors
from pipeline.simulate import SpectrumSet


def benchmark(test: SpectrumSet) -> dict[str, np.ndarray]:
    """The gate's benchmark: observed spectra and true baselines ``(N, L)``."""
    return {"observed": test.observed, "baseline": test.baseline}


def classical_errors(fits: Path, test: SpectrumSet) -> dict[str, dict[str, float]]:
    """Mean RMSE and MAE of each classical method's test-set fits (``classical`` stage)."""
    with np.load(fits) as f:
        return {m: mean_errors(f[m], test.baseline, test.observed) for m in f.files}


def already_registered(client, onnx_digest: str, out: Path) -> bool:
    """Whether this ONNX file is a registered version already; if so, record that in ``out``.

    The record names the version and the ``reference_version`` recorded when it was
    registered, so downstream stages start from the same version as before.
    """
    existing = registry.find_version_by_tag(client, "onnx_sha256", onnx_digest)
    if existing is None:
        return False
    print(f"this model is already registered as {registry.MODEL_NAME} v{existing}")
    tags = registry.version_tags(client, existing)
    record = {"name": registry.MODEL_NAME, "version": existing, "already_registered": True}
    record["reference_version"] = tags.get("reference_version", existing)
    write_json(out, record)
    return True


def recorded_version(path: Path) -> str:
    """The ``reference_version`` of a registering stage's record (``registration.json``)."""
    import json

    record = json.loads(Path(path).read_text())
    version = record.get("reference_version")
    if version is None:
        raise registry.RegistryError(
            f"{path} names no reference version: rerun the register stage (dvc repro register)"
        )
    return str(version)
