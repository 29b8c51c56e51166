"""Prefect orchestration of the DVC pipeline: when and how often, never what.

``flows.training`` (every stage of ``dvc.yaml``) and ``flows.finetune`` (``register_finetuned``
and the stages it depends on) are thin flows over one body, ``flows.repro.run_pipeline``: one
retrying Prefect task per stage, the workspace lock, overrides, and the run's report
(``flows.report``). ``flows.maps`` runs ``correct-map``'s chunks as Prefect tasks on a Dask
cluster (prefect-dask). ``flows.serve`` serves all three as deployments. Importing the flows
loads neither the model, nor torch, nor mlflow: the stages run as ``dvc repro`` would run them,
in subprocesses, and the map engine is imported by a map run.
"""
