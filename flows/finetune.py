"""The fine-tuning flow: the production network retrained on the real spectra of ``data/real``.

It runs the ``register_finetuned`` stage of ``dvc.yaml`` and every stage it depends on, one
Prefect task each, exactly as :mod:`flows.training` runs the whole pipeline (``dvc repro
--single-item``, retries, the workspace lock): up-to-date stages are skipped, so after a
training run only the real-data stages run. Use it after adding spectra to the folder that
``finetune.real_source`` names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import dvc
from flows.lock import workspace_lock
from flows.training import run_stage

TARGET = "register_finetuned"
REPORT_KEY = "raman-finetune-report"


@task(name="finetune-stages", cache_policy=NO_CACHE)
def finetune_stages(workspace: Path) -> list[str]:
    """``register_finetuned`` and the stages it depends on, dependencies first."""
    stages = dvc.stage_order(workspace, TARGET)
    get_run_logger().info("fine-tuning (from dvc dag): %s", " -> ".join(stages))
    return stages


def markdown(report: dict[str, Any], record: dict[str, Any], stages: dict[str, str]) -> str:
    """The fine-tuning run report: simulated test before/after, held-out real quality."""
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
    lines += ["", "## Stages", ""] + [f"- `{s}`: {what}" for s, what in stages.items()]
    return "\n".join(lines) + "\n"


@task(name="finetune-report", cache_policy=NO_CACHE)
def publish_report(workspace: Path, stages: dict[str, str]) -> dict[str, Any]:
    """Read the fine-tuning report and registration record; publish a markdown artifact."""
    report = json.loads((workspace / "reports" / "finetune.json").read_text())
    record = json.loads((workspace / "reports" / "registration_finetuned.json").read_text())
    create_markdown_artifact(
        markdown(report, record, stages), key=REPORT_KEY, description="ResUNet-1D fine-tuning"
    )
    return record


@flow(name="raman-finetune")
def finetune_flow(workspace: str | None = None, lock_timeout_s: float = 3600.0) -> dict[str, Any]:
    """Fine-tune the production version on ``data/real``; return the registration record."""
    ws = Path(workspace or ".").resolve()
    if not (ws / "dvc.yaml").is_file():
        raise FileNotFoundError(f"{ws}: no dvc.yaml here; pass the pipeline's workspace")
    stages = finetune_stages(ws)
    holder = f"flow run {runtime.flow_run.name} ({runtime.flow_run.id})"
    with workspace_lock(ws, lock_timeout_s, holder, on_wait=get_run_logger().warning):
        done = {stage: run_stage(ws, stage) for stage in stages}
        record = publish_report(ws, done)
    return {**record, "stages": done}
