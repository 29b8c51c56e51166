"""Overrides of ``params.yaml`` for one run: validated first, applied, and always undone.

A run with overrides writes them into the workspace's ``params.yaml`` for its duration, so
that every stage, DVC's record (``dvc.lock``, the experiment the run saves) and the MLflow run
(the ``register`` stage logs every params value) see the same values; afterwards
``params.yaml`` and ``dvc.lock`` are put back byte for byte. The originals (and their git index
entries: DVC stages ``dvc.lock``) are kept on disk while the run lasts, so a run killed
half-way is undone by the next one.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import ConfigError, parse_params
from pipeline.params_check import read_yaml

PARAMS, LOCK = "params.yaml", "dvc.lock"


def nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Expand dotted keys, as DVC writes them: ``{"train.samples": 100000}`` -> nested mappings.

    Raises
    ------
    ConfigError
        If ``overrides`` is not a mapping with string keys.
    """
    if not isinstance(overrides, Mapping):
        raise ConfigError(
            f"overrides: expected a mapping such as {{'train': {{'samples': 100000}}}}, "
            f"got {type(overrides).__name__} {overrides!r}"
        )
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"overrides: expected string keys, got {key!r}")
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"overrides: {key}: conflicts with another override")
        node[leaf] = nest(value) if isinstance(value, Mapping) else value
    return nested


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it key by key; lists and scalars are replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve(workspace: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The workspace's ``params.yaml`` with ``overrides`` applied, checked by ``parse_params``.

    Raises
    ------
    ConfigError
        Naming the key, if an override (or params.yaml itself) holds a value the pipeline
        would reject: an unknown key, a wrong type, a value out of range.
    """
    base = read_yaml(Path(workspace) / PARAMS)  # a key given twice is refused, not merged away
    merged = merge(base, nest(overrides))
    try:
        parse_params(merged)
    except ConfigError as exc:
        raise ConfigError(f"params.yaml with these overrides is invalid: {exc}") from None
    return merged


def _backup(workspace: Path) -> Path:
    return Path(workspace) / ".dvc" / "tmp" / "prefect-overrides-backup"


def apply(workspace: Path, params: Mapping[str, Any]) -> None:
    """Keep ``params.yaml`` and ``dvc.lock`` aside, then write ``params`` to ``params.yaml``."""
    workspace = Path(workspace)
    backup = _backup(workspace)
    if backup.exists():
        raise RuntimeError(f"{backup} exists: undo the previous run first (overrides.undo)")
    staging = backup.with_name(backup.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (PARAMS, LOCK):
        if (workspace / name).exists():
            shutil.copy2(workspace / name, staging / name)
    # `dvc repro` stages dvc.lock (core.autostage): keep the git index entries too
    index = _git(workspace, "ls-files", "--stage", "--", PARAMS, LOCK)
    if index is not None:
        (staging / "git-index").write_text(index)
    staging.rename(backup)  # complete or absent, never half-made
    tmp = workspace / f".{PARAMS}.overrides.tmp"
    tmp.write_text(yaml.safe_dump(dict(params), sort_keys=False))
    tmp.replace(workspace / PARAMS)


def undo(workspace: Path) -> bool:
    """Put back the ``params.yaml`` and ``dvc.lock`` kept by :func:`apply`, if any.

    Returns
    -------
    bool
        Whether there was anything to put back.
    """
    workspace = Path(workspace)
    backup = _backup(workspace)
    if not backup.exists():
        return False
    for name in (PARAMS, LOCK):
        kept = backup / name
        if kept.exists():
            tmp = workspace / f".{name}.restore.tmp"
            shutil.copy2(kept, tmp)
            tmp.replace(workspace / name)
        else:
            (workspace / name).unlink(missing_ok=True)
    index = backup / "git-index"
    if index.exists():
        entries = index.read_text()
        listed = {line.split("\t", 1)[1] for line in entries.splitlines() if "\t" in line}
        unlisted = [name for name in (PARAMS, LOCK) if name not in listed]
        if unlisted:
            _git(workspace, "update-index", "--force-remove", "--", *unlisted)
        if entries:
            _git(workspace, "update-index", "--index-info", stdin=entries)
    shutil.rmtree(backup)
    return True


def _git(workspace: Path, *args: str, stdin: str | None = None) -> str | None:
    """Output of a git command in ``workspace``, or None where git fails (no repository)."""
    proc = subprocess.run(
        ["git", *args], cwd=workspace, input=stdin, capture_output=True, text=True
    )
    return proc.stdout if proc.returncode == 0 else None
