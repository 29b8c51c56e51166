"""Run tracking: one pipeline execution logged as an MLflow run, with its provenance.

A run holds the params, per-epoch metrics, test metrics, figures, data digests, the git commit,
the environment, the checkpoint (under ``checkpoint/``, which fine-tuning downloads again with
:func:`checkpoint_of`) and the pyfunc model with its ONNX file. The benchmarks log their table
as a run of its own experiment (:func:`log_benchmark`) and count a registered network's
operations on its ONNX file (:func:`onnx_of`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from pipeline.inference import OnnxBaseline
from pipeline.registry.pyfunc import ResUNetBaseline, pip_requirements, signature_and_example
from pipeline.registry.store import (
    MODEL_NAME,
    RegistryError,
    experiment_id,
    model_version,
    store_errors,
)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (lists kept as their JSON text)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else value
    return flat


def git_commit(root: Path | None = None) -> str:
    """The workspace's commit, with ``-dirty`` when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, str]:
    """Versions and device, logged with every run."""
    import platform
    from importlib.metadata import version

    env = {"python": platform.python_version(), "platform": platform.platform()}
    for p in ("torch", "numpy", "onnxruntime", "onnx", "mlflow", "pybaselines", "dvc"):
        with contextlib.suppress(Exception):
            env[p] = version(p)
    with contextlib.suppress(Exception):
        import torch

        from pipeline.device import native_bf16, pick_device

        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        env["torch_threads"] = str(torch.get_num_threads())
        env["native_bf16"] = str(native_bf16(pick_device()))
    return env


# ------------------------------------------------------------------------ registration


def file_digest(path: Path) -> str:
    """sha256 of a file."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def log_pipeline_run(
    client,
    *,
    params: dict,
    history: list[dict],
    test_metrics: dict,
    figures: Path | None,
    checkpoint: Path,
    onnx_path: Path,
    digests: dict[str, str],
    extra_files: list[Path],
    run_name: str,
    grid: int = 512,
) -> tuple[str, str]:
    """Record one pipeline execution as an MLflow run; return (run id, model uri).

    ``checkpoint`` is logged under ``checkpoint/`` (:func:`checkpoint_of` reads it back);
    the model is the pyfunc :class:`~pipeline.registry.pyfunc.ResUNetBaseline` around
    ``onnx_path`` for spectra of ``grid`` points, with the whole ``pipeline`` package as its
    code.

    Raises
    ------
    RegistryError
        Logging failed (the store, or a file to log); the message names the store.
    """
    signature, example = signature_and_example(grid, answers_std(onnx_path))
    experiment = experiment_id(client)
    with (
        store_errors(client, f"logging the run {run_name!r}"),
        mlflow.start_run(experiment_id=experiment, run_name=run_name) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params(flatten(params))
        for row in history:
            epoch = int(row["epoch"])
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=epoch)
        mlflow.log_metrics(test_metrics)
        mlflow.set_tags(
            {"git_commit": git_commit(), **{f"env.{k}": v for k, v in environment().items()}}
        )
        mlflow.set_tags({f"data.{k}": v for k, v in digests.items()})
        mlflow.log_dict(digests, "data_digests.json")
        if figures is not None and figures.is_dir():
            mlflow.log_artifacts(str(figures), "figures")
        for path in extra_files:
            if path.exists():
                mlflow.log_artifact(str(path))
        mlflow.log_artifact(str(checkpoint), "checkpoint")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ResUNetBaseline(grid),
            artifacts={"onnx": str(onnx_path)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            code_paths=[str(package_code(Path(tmp)))],
            metadata={
                "execution_provider": "CPUExecutionProvider",
                "onnx_sha256": digests.get("onnx", ""),
            },
        )
    return run.info.run_id, info.model_uri


def answers_std(onnx_path: Path) -> bool:
    """Whether the ONNX file answers ``baseline_std`` too (:mod:`pipeline.uncertainty`).

    False for a file ONNX Runtime cannot open: logging it then fails with its own message.
    """
    try:
        return OnnxBaseline(onnx_path, workers=1).has_uncertainty
    except Exception:  # onnxruntime's own exception types
        return False


def package_code(dest: Path) -> Path:
    """A copy of the ``pipeline`` package in ``dest``, as a logged model's code.

    Without the shipped model's files (``pipeline/shipped/``: about 10 MB that no registered
    model runs) and without ``__pycache__``.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.onnx", "*.pt", "model_card.json")
    return Path(shutil.copytree(Path(__file__).parents[1], dest / "pipeline", ignore=ignore))


def checkpoint_of(client, version: str, dest: Path) -> tuple[str, Path]:
    """The run of a registered version and its checkpoint, downloaded into ``dest``.

    Parameters
    ----------
    version
        The version of ``resunet1d``: the one a stage's declared input names (fine-tuning's
        parent comes from ``reports/registration.json``), never read from a live alias here.
    dest
        A folder to download into.

    Returns
    -------
    (str, pathlib.Path)
        The run id and the ``.pt`` file the run logged under ``checkpoint/``.

    Raises
    ------
    RegistryError
        No such version, no checkpoint in its run, or the store failed.
    """
    run_id = model_version(client, version).run_id
    with store_errors(client, f"downloading the checkpoint of {MODEL_NAME} v{version}"):
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="checkpoint",
            dst_path=str(dest),
            tracking_uri=client.tracking_uri,
        )
    found = sorted(Path(path).glob("*.pt"))
    if not found:
        raise RegistryError(f"{MODEL_NAME} v{version}'s run {run_id} holds no checkpoint/*.pt")
    return run_id, found[0]


# -------------------------------------------------------------------------- benchmarks


def log_benchmark(
    client,
    *,
    experiment: str,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    tags: dict[str, str] | None = None,
) -> str:
    """Record one benchmark run (``benchmarks/speed.py``) in ``experiment``; return its run id.

    Parameters
    ----------
    experiment
        The experiment's name (``raman-benchmarks``), created when missing.
    params, metrics
        Logged as they are: every figure of the table a metric.
    artifacts
        Files logged at the run's root (the table's CSV and its printout).
    tags
        Set besides the environment's versions (``env.*``, :func:`environment`).

    Raises
    ------
    RegistryError
        The store failed, or a file could not be logged; the message names the store.
    """
    experiment_ = experiment_id(client, experiment)
    with (
        store_errors(client, f"logging the benchmark run {run_name!r}"),
        mlflow.start_run(experiment_id=experiment_, run_name=run_name) as run,
    ):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({**{f"env.{k}": v for k, v in environment().items()}, **(tags or {})})
        for path in artifacts:
            mlflow.log_artifact(str(path))
    return run.info.run_id


def onnx_of(client, uri: str, dest: Path) -> Path:
    """The ONNX file of the model at ``uri`` (``models:/resunet1d@fast``), downloaded into ``dest``.

    Raises
    ------
    RegistryError
        No such model, no ``.onnx`` file in it, or the store failed.
    """
    with store_errors(client, f"downloading {uri}"):
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    found = sorted(Path(local).rglob("*.onnx"))
    if not found:
        raise RegistryError(f"{uri} holds no .onnx file")
    return found[0]
