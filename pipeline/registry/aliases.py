"""Alias moves and registration: every move recorded on the versions it touches."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import numpy as np

from pipeline.registry.gate import Decision, gate
from pipeline.registry.store import (
    CHALLENGER,
    MODEL_NAME,
    PRODUCTION,
    RegistryError,
    production_version,
)
from pipeline.registry.tracking import command_line


def move_alias(client, alias: str, version: str, reason: str, command: str) -> None:
    """Point ``alias`` at ``version``; record the move on the versions involved."""
    previous = None
    with contextlib.suppress(Exception):
        previous = str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    _append_log(
        client,
        version,
        {
            "alias": alias,
            "action": "set",
            "at": at,
            "reason": reason,
            "command": command,
            "previous": previous,
        },
    )
    if previous is not None and previous != version:
        _append_log(
            client,
            previous,
            {
                "alias": alias,
                "action": "removed",
                "at": at,
                "reason": reason,
                "command": command,
                "next": version,
            },
        )
    if alias == PRODUCTION:
        history = _production_history(client)
        if not history or history[-1] != version:
            history.append(version)
        client.set_registered_model_tag(MODEL_NAME, "production_history", json.dumps(history))


def promote(client, version: str, reason: str, command: str) -> None:
    """Give ``version`` the ``production`` alias (a person's decision, recorded as such)."""
    client.get_model_version(MODEL_NAME, version)  # raises if there is no such version
    move_alias(client, PRODUCTION, str(version), reason, command)


def rollback(client, reason: str, command: str) -> tuple[str, str]:
    """Move ``production`` back to the version that held it before; return (from, to)."""
    current = production_version(client)
    if current is None:
        raise RegistryError(f"{MODEL_NAME} has no production version to roll back from")
    history = _production_history(client)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(
            f"production v{current} is the first production version: nothing to roll back to"
        )
    target = history[-1]
    client.set_registered_model_tag(MODEL_NAME, "production_history", json.dumps(history))
    move_alias(client, PRODUCTION, target, reason, command)
    return current, target


def _production_history(client) -> list[str]:
    model = client.get_registered_model(MODEL_NAME)
    return json.loads(model.tags.get("production_history", "[]"))


def _append_log(client, version: str, entry: dict) -> None:
    mv = client.get_model_version(MODEL_NAME, version)
    log = json.loads(mv.tags.get("alias_log", "[]"))
    log.append(entry)
    client.set_model_version_tag(MODEL_NAME, version, "alias_log", json.dumps(log))


def register_and_gate(
    client,
    *,
    run_id: str,
    model_uri: str,
    version_tags: dict[str, str],
    benchmark: dict[str, np.ndarray],
    classical: dict[str, dict[str, float]],
    command: str,
) -> Decision:
    """Register a new ``resunet1d`` version and let the gate decide on ``production``.

    The version gets ``challenger``. Call under :func:`registry_lock`. On any failure the
    new version is deleted again, so none is left half-registered.
    """
    with contextlib.suppress(Exception):
        client.create_registered_model(
            MODEL_NAME,
            description="ResUNet-1D baseline estimator for Raman spectra (ONNX, CPU)",
        )
    mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=version_tags)
    version = str(mv.version)
    try:
        _wait_ready(client, version)
        decision = gate(client, version, benchmark, classical)
        move_alias(client, CHALLENGER, version, "newly registered", command)
        client.set_model_version_tag(
            MODEL_NAME,
            version,
            "gate.decision",
            "promoted" if decision.promoted else "refused",
        )
        client.set_model_version_tag(MODEL_NAME, version, "gate.reason", decision.reason)
        if decision.promoted:
            move_alias(client, PRODUCTION, version, f"gate: {decision.reason}", command)
    except BaseException:
        # never leave a half-registered version behind
        with contextlib.suppress(Exception):
            client.delete_model_version(MODEL_NAME, version)
        raise
    for k, v in decision.challenger.items():
        client.log_metric(run_id, f"gate_{k}", v)
    client.set_tag(run_id, "gate.decision", "promoted" if decision.promoted else "refused")
    client.set_tag(run_id, "gate.reason", decision.reason)
    return decision


def _wait_ready(client, version: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while client.get_model_version(MODEL_NAME, version).status != "READY":
        if time.monotonic() > deadline:
            raise RegistryError(f"{MODEL_NAME} v{version} did not become READY")
        time.sleep(0.2)


def register_alias(
    client, *, run_id: str, model_uri: str, version_tags: dict[str, str], alias: str, why: str
) -> str:
    """Register a new version and give it ``alias`` (not ``production``); return the version."""
    with contextlib.suppress(Exception):
        client.create_registered_model(MODEL_NAME)
    mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=version_tags)
    version = str(mv.version)
    try:
        _wait_ready(client, version)
        move_alias(client, alias, version, why, command_line())
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_model_version(MODEL_NAME, version)
        raise
    return version
