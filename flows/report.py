"""The markdown run reports of the flows, read from the records their stages write.

:data:`TRAINING`: test metrics, the gate's decision and where the run is recorded.
:data:`FINETUNE`: the fine-tuned network against its parent, and the registration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.dvc import RAN


@dataclass(frozen=True)
class PipelineRun:
    """What a flow run did, as its report tells it.

    Attributes
    ----------
    stages
        Each stage, in order, and what DVC did with it: ``ran``, ``restored from run-cache``
        or ``up to date``.
    overrides
        The params.yaml overrides of this run.
    experiment
        The DVC experiment that records this run, if one was saved.
    """

    stages: dict[str, str]
    overrides: dict[str, Any]
    experiment: str | None

    @property
    def ran(self) -> list[str]:
        """The stages DVC ran (neither up to date nor restored from the run-cache), in order."""
        return [stage for stage, what in self.stages.items() if what == RAN]


@dataclass(frozen=True)
class Report:
    """The markdown artifact a flow run publishes.

    Attributes
    ----------
    key
        The artifact key: every run of a flow publishes under the same one, so the UI lists
        them together.
    description
        The artifact's description.
    write
        ``write(workspace, run) -> (markdown, record)``: reads the run's records from the
        workspace's ``reports/``; ``record`` is the registration record.
    """

    key: str
    description: str
    write: Callable[[Path, PipelineRun], tuple[str, dict[str, Any]]]


METHODS = {"resunet": "ResUNet-1D", "arpls": "arPLS", "aspls": "asPLS"}


def decision(record: Mapping[str, Any]) -> str:
    """``promoted``, ``refused`` or ``already registered``, from ``registration.json``."""
    if record.get("already_registered"):
        return "already registered"
    return "promoted" if record.get("promoted") else "refused"


def _number(value: Any) -> str:
    return f"{value:.5f}" if isinstance(value, int | float) else "n/a"


def training_markdown(
    metrics: Mapping[str, Any], record: Mapping[str, Any], run: PipelineRun
) -> str:
    """The report of one training run.

    Parameters
    ----------
    metrics
        ``reports/metrics.json``: mean RMSE and MAE of each method on the test set.
    record
        ``reports/registration.json``: the registered version, the gate's decision and the
        production version's numbers re-evaluated by the gate on the same test set.
    run
        The stages and what DVC did with each, the overrides, the DVC experiment.
    """
    stages, overrides, experiment = run.stages, run.overrides, run.experiment
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


def finetune_markdown(
    report: Mapping[str, Any], record: Mapping[str, Any], run: PipelineRun
) -> str:
    """The fine-tuning run report: simulated test before/after, held-out real quality.

    ``report`` is ``reports/finetune.json`` (the parent version, the targets, the simulated
    test set before and after, the truth-free quality on held-out real spectra) and ``record``
    is ``reports/registration_finetuned.json``; of ``run``, only the stages are shown, as the
    fine-tuning flow takes no overrides.
    """
    sim = report["simulated_test"]
    if record.get("already_registered"):
        verdict = f"already registered as v{record.get('version')}"
    elif not record.get("registered", False):
        verdict = f"not registered: {record.get('reason')}"
    else:
        gate = "promoted to production" if record.get("promoted") else "stays challenger"
        verdict = f"registered as v{record.get('version')}, {gate}: {record.get('reason')}"
    lines = [
        f"# Fine-tuning of `resunet1d` v{report['parent_version']}: {verdict}",
        "",
        f"Targets for raw spectra: `{report['targets']}` ({report['pseudo_label_method']}); "
        f"{report['real']['train_spectra']} real spectra trained on, "
        f"{report['real']['heldout_spectra']} held out.",
        "",
        "| simulated test | RMSE | MAE |",
        "|---|---|---|",
        f"| parent | {sim['before']['rmse']:.5f} | {sim['before']['mae']:.5f} |",
        f"| fine-tuned | {sim['after']['rmse']:.5f} | {sim['after']['mae']:.5f} |",
        "",
        "## Held-out real spectra (no ground truth)",
        "",
    ]
    quality = report["heldout_quality"]
    measures = list(next(iter(quality.values())))
    lines += ["| method | " + " | ".join(measures) + " |", "|---" * (len(measures) + 1) + "|"]
    for method, q in quality.items():
        lines.append(f"| {method} | " + " | ".join(f"{q[m]:.4g}" for m in measures) + " |")
    lines += ["", "## Stages", ""] + [f"- `{s}`: {what}" for s, what in run.stages.items()]
    return "\n".join(lines) + "\n"


def _read(workspace: Path, name: str) -> dict[str, Any]:
    return json.loads((Path(workspace) / "reports" / name).read_text())


def _write_training(workspace: Path, run: PipelineRun) -> tuple[str, dict[str, Any]]:
    record = _read(workspace, "registration.json")
    return training_markdown(_read(workspace, "metrics.json"), record, run), record


def _write_finetune(workspace: Path, run: PipelineRun) -> tuple[str, dict[str, Any]]:
    record = _read(workspace, "registration_finetuned.json")
    return finetune_markdown(_read(workspace, "finetune.json"), record, run), record


TRAINING = Report("raman-training-report", "ResUNet-1D training run", _write_training)
FINETUNE = Report("raman-finetune-report", "ResUNet-1D fine-tuning", _write_finetune)
