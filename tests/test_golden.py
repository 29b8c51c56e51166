"""Golden outputs of the simulate and train stages on a tiny configuration.

Refactors must not change what the pipeline produces: the simulated sets and the CPU-trained
weights of the tiny configuration (``TINY`` in conftest, in fp32) are hashed (sha256 of every
array) and compared with ``tests/golden.json``. Training is seeded and runs in fp32 on one
thread, so on one machine the weights are byte-identical from run to run; other CPUs round fp32
convolutions (and numpy's SIMD transcendental functions) differently, so the exact hashes are
recorded per machine (:func:`fingerprint`) and a machine with no record is held to numeric
summaries instead.

To record this machine (only after checking that nothing changed on a recorded one):
``GOLDEN_RECORD=1 pytest tests/test_golden.py``.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from .conftest import ROOT, tiny_params

GOLDEN = Path(__file__).with_name("golden.json")
SPLITS = ("train", "val", "test")
ARRAYS = ("observed", "baseline", "peaks", "read_noise", "family")


def fingerprint() -> str:
    """What decides the exact bytes: CPU SIMD level, torch and numpy versions."""
    return "-".join(
        [
            platform.machine(),
            torch.backends.cpu.get_cpu_capability(),
            f"torch{torch.__version__}",
            f"numpy{np.__version__}",
        ]
    )


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{name}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Run the simulate and train stages through the CLI on the golden params."""
    ws = tmp_path_factory.mktemp("golden")
    params = tiny_params(train={"precision": "fp32"})  # fp32: the same on every CPU kind
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cli = [sys.executable, "-m", "pipeline.cli", "--params", str(ws / "params.yaml")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (
        ["simulate", "--out", str(ws / "data")],
        [
            "train",
            "--data",
            str(ws / "data"),
            "--out",
            str(ws / "model.pt"),
            "--history",
            str(ws / "history.csv"),
            "--resume",
            str(ws / "resume.pt"),
            "--no-progress",
        ],
    ):
        proc = subprocess.run([*cli, *args], cwd=ws, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    sets = {}
    for split in SPLITS:
        with np.load(ws / "data" / f"{split}.npz") as f:
            sets[split] = {k: f[k] for k in ARRAYS}
    state = torch.load(ws / "model.pt", map_location="cpu", weights_only=True)["model"]
    weights = {k: v.numpy() for k, v in sorted(state.items())}
    return sets, weights


def _measure(sets, weights) -> dict:
    return {
        "sha256": {
            **{s: _digest((k, sets[s][k]) for k in ARRAYS) for s in SPLITS},
            "weights": _digest(weights.items()),
        },
        "summary": {
            **{
                f"{s}.{k}": [float(np.sum(sets[s][k], dtype=np.float64)), float(np.ptp(sets[s][k]))]
                for s in SPLITS
                for k in ARRAYS
            },
            "weights_l2": float(
                np.sqrt(sum(np.sum(w.astype(np.float64) ** 2) for w in weights.values()))
            ),
        },
    }


def test_simulated_sets_and_trained_weights_match_the_golden_record(outputs):
    measured = _measure(*outputs)
    record = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {"machines": {}}
    key = fingerprint()
    if os.environ.get("GOLDEN_RECORD"):
        record["machines"][key] = measured["sha256"]
        record.setdefault("summary", measured["summary"])
        GOLDEN.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    assert record["machines"], f"no golden record in {GOLDEN}"
    if key in record["machines"]:
        assert measured["sha256"] == record["machines"][key]
        return
    # another machine: the same numbers to rounding (simulation) and training noise (weights)
    for name, (total, span) in record["summary"].items():
        if name == "weights_l2":
            continue
        got_total, got_span = measured["summary"][name]
        assert got_span == pytest.approx(span, rel=1e-5), name
        assert got_total == pytest.approx(total, rel=1e-5), name
    assert measured["summary"]["weights_l2"] == pytest.approx(
        record["summary"]["weights_l2"], rel=2e-2
    )
