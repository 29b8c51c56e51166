"""The training flow: every stage of ``dvc.yaml``, one Prefect task each, in DVC's order.

``dvc repro`` and a run of :func:`training_flow` do the same work (see :mod:`flows.repro`,
which it shares with the fine-tuning flow): up-to-date stages are skipped, overrides of
``params.yaml`` are validated first, saved as a DVC experiment and undone afterwards.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import dvc, report
from flows.repro import run_pipeline


@flow(name="raman-training")
def training_flow(
    overrides: dict[str, Any] | None = None,
    workspace: str | None = None,
    lock_timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Run the DVC pipeline stage by stage; return the registered version and the decision.

    Parameters
    ----------
    overrides
        params.yaml values for this run only, nested (``{"train": {"samples": 100000}}``) or dotted
        (``{"train.samples": 100000}``); validated before any work.
    workspace
        The directory with ``dvc.yaml`` (default: the current directory).
    lock_timeout_s
        Seconds to wait while another run holds the workspace, then give up.
    """
    run, record = run_pipeline(workspace, None, report.TRAINING, overrides, lock_timeout_s)
    return {
        "version": record.get("version"),
        "decision": report.decision(record),
        "reason": record.get("reason"),
        "run_id": record.get("run_id"),
        "registered_now": run.stages.get("register") == dvc.RAN
        and not record.get("already_registered"),
        "stages_run": run.ran,
        "stages": run.stages,
        "experiment": run.experiment,
    }
