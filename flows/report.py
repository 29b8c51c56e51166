"""The markdown run report: test metrics, the gate's decision and where the run is recorded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

METHODS = {"resunet": "ResUNet-1D", "arpls": "arPLS", "aspls": "asPLS"}


def decision(record: Mapping[str, Any]) -> str:
    """``promoted``, ``refused`` or ``already registered``, from ``registration.json``."""
    if record.get("already_registered"):
        return "already registered"
    return "promoted" if record.get("promoted") else "refused"


def _number(value: Any) -> str:
    return f"{value:.5f}" if isinstance(value, int | float) else "n/a"


def markdown(
    *,
    metrics: Mapping[str, Any],
    record: Mapping[str, Any],
    stages: Mapping[str, str],
    overrides: Mapping[str, Any],
    experiment: str | None,
) -> str:
    """The report of one flow run.

    Parameters
    ----------
    metrics
        ``reports/metrics.json``: mean RMSE and MAE of each method on the test set.
    record
        ``reports/registration.json``: the registered version, the gate's decision and the
        production version's numbers re-evaluated by the gate on the same test set.
    stages
        Each stage, in order, and what DVC did with it: ``ran``, ``restored from run-cache``
        or ``up to date``.
    overrides
        The params.yaml overrides of this run.
    experiment
        The DVC experiment that records this run, if one was saved.
    """
    version = record.get("version", "?")
    lines = [
        f"# ResUNet-1D training run: `resunet1d` v{version} {decision(record)}",
        "",
        "## Test set (reports/metrics.json)",
        "",
        "| method | RMSE | MAE |",
        "|---|---|---|",
    ]
    for key, label in METHODS.items():
        m = metrics.get(key, {})
        rmse, mae = m.get("rmse", {}).get("mean"), m.get("mae", {}).get("mean")
        lines.append(f"| {label} (this run) | {_number(rmse)} | {_number(mae)} |")
    production = record.get("production")
    if production:
        pv = record.get("production_version", "?")
        lines.append(
            f"| ResUNet-1D production v{pv} (before this run, scored by the gate) "
            f"| {_number(production.get('rmse'))} | {_number(production.get('mae'))} |"
        )
    challenger = record.get("challenger")
    if challenger:
        lines.append(
            f"| ResUNet-1D v{version} (ONNX, scored by the gate) "
            f"| {_number(challenger.get('rmse'))} | {_number(challenger.get('mae'))} |"
        )
    lines += ["", "## Promotion gate", ""]
    if stages.get("register", "ran") != "ran":
        lines += [
            f"The register stage was {stages['register']}: the record is an earlier run's.",
            "",
        ]
    if record.get("already_registered"):
        lines.append(f"This model was already registered as v{version}: nothing new to gate.")
    else:
        lines.append(f"**{decision(record)}**: {record.get('reason', 'no reason recorded')}")
    if not production and not record.get("already_registered"):
        lines.append("")
        lines.append("There was no production version before this run.")
    run_id = record.get("run_id")
    if stages.get("register", "ran") == "ran" and run_id:
        mlflow_run = f"`{run_id}`"
    else:
        mlflow_run = "none new" + (f" (the record's: `{run_id}`)" if run_id else "")
    lines += [
        "",
        "## Records",
        "",
        f"- MLflow run id(s): {mlflow_run}",
        f"- registered model: `{record.get('name', 'resunet1d')}` v{version}",
        f"- DVC experiment: {f'`{experiment}`' if experiment else 'none (no overrides)'}",
        f"- overrides: {f'`{json.dumps(dict(overrides))}`' if overrides else 'none'}",
        "",
        "## Stages",
        "",
        "| stage | DVC |",
        "|---|---|",
        *(f"| {stage} | {what} |" for stage, what in stages.items()),
    ]
    return "\n".join(lines) + "\n"
