"""Stage ``register_shipped``: the model shipped in the package, registered with its lineage.

It runs before ``register``: the shipped model (:mod:`pipeline.shipped`, checked against its
card first) is logged as a run and registered as a ``resunet1d`` version with the alias
``shipped``, tagged with its card's lineage (``source=shipped``, git commit, params and data
digests, device, wall time, metrics). It becomes ``production`` only when no version holds
production yet, so on a fresh clone the shipped model is production and the CPU-trained
challenger of ``register`` competes with it through the gate. A second run finds the version
registered (its ONNX file's sha256 is a tag) and registers nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline import registry, shipped
from pipeline.stages._common import arguments, script
from pipeline.stages._registering import log_and_register, register_once

ALIAS = "shipped"
# the inputs and outputs named by its cmd in dvc.yaml
PATHS = "out"


def version_tags(card: dict[str, Any]) -> dict[str, str]:
    """The registry tags of the shipped version: its card's lineage, as strings."""
    onnx = next(e for e in card["files"].values() if e["role"] == "onnx")
    tags = {
        "source": "shipped",
        "shipped_id": card["id"],
        "onnx_sha256": onnx["sha256"],
        "params_sha256": card.get("params_sha256", ""),
        "git_commit": card.get("git_commit", "unknown"),
        "device": card.get("device", "unknown"),
        "wall_time_s": json.dumps(card.get("wall_time_s", {})),
        "normalisation": card.get("normalisation", "minmax"),
        "storage.weights": card.get("storage", {}).get("weights", ""),
    }
    data = card.get("data", {})
    tags |= {f"data.{k.removeprefix('data.')}": v for k, v in data.get("sha256", {}).items()}
    tags |= {f"dvc.{k}": v for k, v in data.get("dvc_lock", {}).items()}
    return tags | {k: f"{v:.6g}" for k, v in test_metrics(card).items()}


def test_metrics(card: dict[str, Any]) -> dict[str, float]:
    """``test_<method>_<rmse|mae>`` of the card's simulated test entry (none if unmeasured)."""
    found = (card.get("metrics") or {}).get("simulated_test") or {}
    return {
        f"test_{m}_{k}": float(found[m][k])
        for m in ("resunet", "arpls", "aspls")
        for k in ("rmse", "mae")
        if isinstance(found.get(m), dict) and k in found[m]
    }


def run(client, model: shipped.ShippedModel, command: str) -> dict:
    """Log the shipped model's run, register it, make it production if none is; the record.

    Call under the registry lock.
    """
    card = model.card
    files = {"onnx": model.onnx, "checkpoint": model.checkpoint}
    digests = {role: e["sha256"] for e in card["files"].values() for role in [e["role"]]}
    run_ = dict(
        params=card.get("params", {}),
        history=[],
        test_metrics=test_metrics(card),
        digests=digests,
        extra_files=[model.folder / shipped.CARD],
        run_name=f"shipped {card['id']}",
        grid=model.grid,
    )
    production = registry.production_version(client)
    why = f"the model shipped in the package ({model.label})"
    run_id, version = log_and_register(
        client, files, run_, version_tags(card), alias=ALIAS, why=why
    )
    promoted = production is None
    reason = "no production version yet" if promoted else f"production is v{production}"
    if promoted:
        registry.move_alias(client, registry.PRODUCTION, version, f"shipped: {reason}", command)
    record = {
        "name": registry.MODEL_NAME,
        "run_id": run_id,
        "version": version,
        "shipped_id": card["id"],
        "promoted": promoted,
        "production_version": version if promoted else production,
        "reason": reason,
    }
    return record | {"reference_version": registry.reference_of(record)}


def main(argv: list[str] | None = None) -> int:
    """Register the shipped model (once); write the registration record."""
    args = arguments(__doc__, "register_shipped", PATHS).parse_args(argv)
    model = shipped.load()
    client = registry.connect(create=True)

    def register() -> dict:
        return run(client, model, registry.command_line())

    record = register_once(client, model.onnx, Path(args.out), register)
    if record is None:
        return 0
    verdict = "production" if record["promoted"] else "alias shipped only"
    name = f"{registry.MODEL_NAME} v{record['version']} ({model.label})"
    print(f"{name}: {verdict}, {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "register_shipped"))
