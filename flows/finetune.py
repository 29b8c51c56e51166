"""The fine-tuning flow: the production network retrained on the real spectra of ``data/real``.

It runs the ``register_finetuned`` stage of ``dvc.yaml`` and every stage it depends on, with
the body of the training flow (:func:`flows.repro.run_pipeline`: ``dvc repro --single-item``
per stage, retries, the workspace lock): up-to-date stages are skipped, so after a training
run only the real-data stages run. Use it after adding spectra to the folder that
``finetune.real_source`` names.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import report
from flows.repro import run_pipeline

TARGET = "register_finetuned"


@flow(name="raman-finetune")
def finetune_flow(workspace: str | None = None, lock_timeout_s: float = 3600.0) -> dict[str, Any]:
    """Fine-tune the production version on ``data/real``; return the registration record.

    Parameters
    ----------
    workspace
        The directory with ``dvc.yaml`` (default: the current directory).
    lock_timeout_s
        Seconds to wait while another run holds the workspace, then give up.
    """
    run, record = run_pipeline(workspace, TARGET, report.FINETUNE, lock_timeout_s=lock_timeout_s)
    return {**record, "stages": run.stages}
