"""Prefect orchestration of the DVC pipeline: when and how often, never what.

``flows.training`` drives the stages that ``dvc.yaml`` defines, one Prefect task per stage;
``flows.serve`` serves it as a scheduled deployment. The flows import neither the model, nor
torch, nor mlflow: the stages run as ``dvc repro`` would run them, in subprocesses.
"""
