"""``dvc repro`` as a Prefect run: the one body of the training and fine-tuning flows.

:func:`run_pipeline` runs the stages of ``dvc.yaml`` (all of them, or one target and the
stages it depends on) in DVC's order, one retrying Prefect task each: each stage runs through
``dvc repro --single-item``, so DVC still skips what is up to date and records what ran in
``dvc.lock``. Overrides of ``params.yaml`` are validated before any work, written into the
workspace's ``params.yaml`` for the run (so the stages, ``dvc.lock`` and the MLflow run see
them), saved as a DVC experiment, and undone when the run ends. One run at a time holds the
workspace; its report is published as a markdown artifact while the workspace still holds its
outputs. The flows themselves only name their target and their report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows import dvc
from flows import overrides as params_yaml
from flows.lock import workspace_lock
from flows.report import PipelineRun, Report

STAGE_RETRIES = 2
STAGE_RETRY_BACKOFF_S = 5.0  # first retry after ~5 s, the next after ~10 s


@task(name="validate-overrides", cache_policy=NO_CACHE)
def validate_overrides(workspace: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """``params.yaml`` with ``changes`` applied, validated; nothing is written yet."""
    if not (workspace / "dvc.yaml").is_file():
        raise FileNotFoundError(f"{workspace}: no dvc.yaml here; pass the pipeline's workspace")
    params = params_yaml.resolve(workspace, changes)
    if changes:
        if dvc.git_head(workspace) is None:
            raise RuntimeError(
                f"{workspace}: a run with overrides is saved as a DVC experiment, which needs "
                "a git commit to start from; commit the workspace first"
            )
        get_run_logger().info("overrides %s are valid", json.dumps(changes))
    return params


@task(name="pipeline-stages", cache_policy=NO_CACHE)
def pipeline_stages(workspace: Path, target: str | None = None) -> list[str]:
    """The stages of ``dvc.yaml`` (or ``target`` and its dependencies), dependencies first."""
    stages = dvc.stage_order(workspace, target)
    what = f"{target} and its dependencies" if target else "pipeline"
    get_run_logger().info("%s (from dvc dag): %s", what, " -> ".join(stages))
    return stages


@task(
    name="dvc-stage",
    task_run_name="{stage}",
    retries=STAGE_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=STAGE_RETRY_BACKOFF_S),
    retry_jitter_factor=0.2,
    cache_policy=NO_CACHE,
)
def run_stage(workspace: Path, stage: str) -> str:
    """``dvc repro --single-item <stage>``; what DVC did: ran it, restored it, or skipped it."""
    logger = get_run_logger()
    result = dvc.dvc(workspace, "repro", "--single-item", stage, log=logger.info)
    return dvc.outcome(result, stage)


@task(name="apply-overrides", cache_policy=NO_CACHE)
def apply_overrides(workspace: Path, changes: dict[str, Any]) -> None:
    """Write the overridden params into ``params.yaml``, keeping the original aside."""
    params_yaml.apply(workspace, params_yaml.resolve(workspace, changes))
    get_run_logger().info("params.yaml holds the overrides for this run")


@task(name="restore-params", cache_policy=NO_CACHE)
def restore_params(workspace: Path) -> bool:
    """Put back ``params.yaml`` and ``dvc.lock`` as they were before overrides, if changed.

    The outputs follow (``dvc checkout``), so the workspace matches ``params.yaml`` again;
    the overridden run lives on in its DVC experiment and MLflow run.
    """
    if not params_yaml.undo(workspace):
        return False
    logger = get_run_logger()
    logger.info("params.yaml and dvc.lock restored; checking out their outputs")
    result = dvc.dvc(workspace, "checkout", "--force", log=logger.info, check=False)
    if result.returncode != 0:
        logger.warning("dvc checkout failed: `dvc status` shows what a `dvc repro` would redo")
    return True


@task(name="save-experiment", cache_policy=NO_CACHE)
def save_experiment(workspace: Path, changes: dict[str, Any]) -> str:
    """Record the workspace (overridden params, ``dvc.lock``, metrics) as a DVC experiment."""
    name = f"prefect-{runtime.flow_run.name}-{str(runtime.flow_run.id)[:8]}"
    message = f"Prefect flow run {runtime.flow_run.name}: overrides {json.dumps(changes)}"
    dvc.dvc(workspace, "exp", "save", "--name", name, "-m", message, log=get_run_logger().info)
    return name


@task(name="run-report", task_run_name="{report.key}", cache_policy=NO_CACHE)
def publish_report(workspace: Path, report: Report, run: PipelineRun) -> dict[str, Any]:
    """Read the run's records; publish ``report`` as a markdown artifact; return the record."""
    text, record = report.write(workspace, run)
    create_markdown_artifact(text, key=report.key, description=report.description)
    return record


def run_pipeline(
    workspace: str | None,
    target: str | None,
    report: Report,
    overrides: dict[str, Any] | None = None,
    lock_timeout_s: float = 3600.0,
) -> tuple[PipelineRun, dict[str, Any]]:
    """Run ``target`` (None: every stage of ``dvc.yaml``) stage by stage; publish ``report``.

    Returns the run (each stage and what DVC did, the overrides, the DVC experiment) and the
    registration record that ``report`` read.

    Parameters
    ----------
    workspace
        The directory with ``dvc.yaml`` (default: the current directory).
    target
        The stage to bring up to date with every stage it depends on; None for all stages.
    report
        The markdown artifact to publish once the stages are done, and the record it reads.
    overrides
        params.yaml values for this run only, nested (``{"train": {"samples": 100000}}``) or dotted
        (``{"train.samples": 100000}``); validated before any work.
    lock_timeout_s
        Seconds to wait while another run holds the workspace, then give up.
    """
    ws, changes = Path(workspace or ".").resolve(), overrides or {}
    validate_overrides(ws, changes)
    stages = pipeline_stages(ws, target)
    with workspace_lock(ws, lock_timeout_s, _holder(), on_wait=get_run_logger().warning):
        restore_params(ws)  # a run killed while holding overrides left them behind
        if changes:
            apply_overrides(ws, changes)
        try:
            done = {stage: run_stage(ws, stage) for stage in stages}
            # the record, while the workspace still holds this run's outputs
            experiment = save_experiment(ws, changes) if changes else None
            run = PipelineRun(stages=done, overrides=changes, experiment=experiment)
            record = publish_report(ws, report, run)
        finally:
            if changes:
                restore_params(ws)
    return run, record


def _holder() -> str:
    return f"flow run {runtime.flow_run.name} ({runtime.flow_run.id})"
