"""Alias moves and registration: every move recorded on the versions it touches.

An alias move sets the alias, appends an entry to the ``alias_log`` tag of the version that
gets it and of the one that loses it, and (for ``production``) appends to the model's
``production_history`` tag. These succeed or fail together: when a step after the alias moved
fails, the alias is moved back and the tags are restored before the error is raised.
Call every function here under :func:`pipeline.registry.store.registry_lock`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from mlflow.exceptions import MlflowException

from pipeline.errors import one_line
from pipeline.registry.gate import Decision, RealBenchmarks, gate
from pipeline.registry.store import (
    CHALLENGER,
    MODEL_NAME,
    PRODUCTION,
    RegistryError,
    alias_version,
    command_line,
    is_missing,
    model_version,
    production_version,
    store_error,
    store_errors,
)

DESCRIPTION = "ResUNet-1D baseline estimator for Raman spectra (ONNX, CPU)"


# ------------------------------------------------------------------------- alias moves


@dataclass(frozen=True)
class _Before:
    """What an alias move changes, as it was before: enough to put it back."""

    alias: str
    holder: str | None  # the version behind the alias, None when it was not set
    logs: dict[str, str | None]  # the alias_log tag of each version touched (None: absent)
    history: str | None  # the model's production_history tag (None: absent)


def move_alias(client, alias: str, version: str, reason: str, command: str) -> None:
    """Point ``alias`` at ``version``; record the move on the versions involved.

    Raises
    ------
    RegistryError
        The store failed; the alias and every tag are as they were (or, when putting them back
        failed too, the message says so).
    """
    _move(client, alias, str(version), reason, command)


def _move(
    client, alias: str, version: str, reason: str, command: str, history: list[str] | None = None
) -> _Before:
    """:func:`move_alias`; ``history`` replaces the production history before ``version``.

    Returns what was there before, for :func:`_undo` by a caller whose later step fails.
    """
    doing = f"moving {MODEL_NAME}@{alias} to v{version}"
    with store_errors(client, doing):
        before = _snapshot(client, alias, version)
        client.set_registered_model_alias(MODEL_NAME, alias, version)
        try:
            _record(client, before, version, reason, command, history)
        except BaseException as exc:
            _undo(client, before, doing, exc)
            raise
    return before


def _snapshot(client, alias: str, version: str) -> _Before:
    holder = alias_version(client, alias)
    touched = {version} | ({holder} if holder is not None else set())
    logs = {v: model_version(client, v).tags.get("alias_log") for v in sorted(touched)}
    history = _model_tags(client).get("production_history") if alias == PRODUCTION else None
    return _Before(alias, holder, logs, history)


def _record(
    client, before: _Before, version: str, reason: str, command: str, history: list[str] | None
) -> None:
    """Append the move to the versions' ``alias_log`` and, for production, to its history."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entry = {"alias": before.alias, "at": at, "reason": reason, "command": command}
    _append_log(client, before, version, entry | {"action": "set", "previous": before.holder})
    if before.holder is not None and before.holder != version:
        _append_log(client, before, before.holder, entry | {"action": "removed", "next": version})
    if before.alias == PRODUCTION:
        if history is None:
            history = json.loads(before.history or "[]")
        if not history or history[-1] != version:
            history = [*history, version]
        client.set_registered_model_tag(MODEL_NAME, "production_history", json.dumps(history))


def _append_log(client, before: _Before, version: str, entry: dict) -> None:
    log = json.loads(before.logs[version] or "[]")
    client.set_model_version_tag(MODEL_NAME, version, "alias_log", json.dumps([*log, entry]))


def _restore(client, before: _Before) -> None:
    """Put the alias and the tags a move touched back as they were."""
    if before.holder is None:
        client.delete_registered_model_alias(MODEL_NAME, before.alias)
    else:
        client.set_registered_model_alias(MODEL_NAME, before.alias, before.holder)
    for v, log in before.logs.items():
        if log is None:
            client.delete_model_version_tag(MODEL_NAME, v, "alias_log")
        else:
            client.set_model_version_tag(MODEL_NAME, v, "alias_log", log)
    if before.alias == PRODUCTION:
        if before.history is None:
            client.delete_registered_model_tag(MODEL_NAME, "production_history")
        else:
            client.set_registered_model_tag(MODEL_NAME, "production_history", before.history)


def _undo(client, before: _Before, doing: str, exc: BaseException) -> None:
    """:func:`_restore` after ``exc``; raise a RegistryError naming both if that fails too."""
    try:
        _restore(client, before)
    except Exception as undo:
        raise RegistryError(
            f"{doing} failed ({one_line(exc)}) and putting it back failed too "
            f"({one_line(undo)}): check {MODEL_NAME}@{before.alias} and the alias_log tags of "
            f"v{', v'.join(before.logs)} by hand"
        ) from exc


def _model_tags(client) -> dict[str, str]:
    with store_errors(client, f"reading {MODEL_NAME}'s tags"):
        return dict(client.get_registered_model(MODEL_NAME).tags)


def promote(client, version: str, reason: str, command: str) -> None:
    """Give ``version`` the ``production`` alias (a person's decision, recorded as such).

    Raises
    ------
    RegistryError
        No such version, or the store failed.
    """
    model_version(client, version)
    move_alias(client, PRODUCTION, str(version), reason, command)


def rollback(client, reason: str, command: str) -> tuple[str, str]:
    """Move ``production`` back to the version that held it before; return (from, to).

    Raises
    ------
    RegistryError
        No production version, none before it, or the store failed.
    """
    current = production_version(client)
    if current is None:
        raise RegistryError(f"{MODEL_NAME} has no production version to roll back from")
    history = json.loads(_model_tags(client).get("production_history", "[]"))
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(
            f"production v{current} is the first production version: nothing to roll back to"
        )
    target = history[-1]
    _move(client, PRODUCTION, target, reason, command, history=history)
    return current, target


# ------------------------------------------------------------------------ registration


def register_and_gate(
    client,
    *,
    run_id: str,
    model_uri: str,
    version_tags: dict[str, str],
    benchmark: dict[str, np.ndarray],
    classical: dict[str, dict[str, float]],
    command: str,
    real: RealBenchmarks | None = None,
) -> Decision:
    """Register a new ``resunet1d`` version and let the gate decide on ``production``.

    The version gets ``challenger``; ``production`` too when :func:`gate` promotes it
    (``real``: the real-reference benchmarks it scores besides ``benchmark``). Every figure
    the gate measured is logged on the run (``gate_<benchmark>_<rmse|mae>``, and
    ``gate_<benchmark>_production_<rmse|mae>``) and tagged on the version.

    Raises
    ------
    RegistryError
        The store failed at any step. Production is read before anything is registered; after
        that, the new version is deleted again and the challenger alias put back, so no version
        is left half-registered and no alias has moved.
    """
    production_version(client)  # a store that cannot answer this is refused before anything
    version = _new_version(client, run_id, model_uri, version_tags)
    challenger = None
    try:
        _wait_ready(client, version)
        decision = gate(client, version, benchmark, classical, real)
        challenger = _move(client, CHALLENGER, version, "newly registered", command)
        verdict = "promoted" if decision.promoted else "refused"
        with store_errors(client, f"tagging {MODEL_NAME} v{version} with the gate's decision"):
            client.set_model_version_tag(MODEL_NAME, version, "gate.decision", verdict)
            client.set_model_version_tag(MODEL_NAME, version, "gate.reason", decision.reason)
        if decision.promoted:
            move_alias(client, PRODUCTION, version, f"gate: {decision.reason}", command)
    except BaseException as exc:
        try:
            if challenger is not None:
                _undo(client, challenger, f"registering {MODEL_NAME} v{version}", exc)
        finally:
            _delete_version(client, version, exc)
        raise
    with store_errors(client, f"logging the gate's decision on run {run_id}"):
        for k, v in decision.challenger.items():
            client.log_metric(run_id, f"gate_{k}", v)
        for key, value in gate_figures(decision).items():
            client.log_metric(run_id, key, value)
            client.set_model_version_tag(MODEL_NAME, version, key, f"{value:.6g}")
        client.set_tag(run_id, "gate.decision", verdict)
        client.set_tag(run_id, "gate.reason", decision.reason)
    return decision


def gate_figures(decision: Decision) -> dict[str, float]:
    """Every figure of a gate's decision, by name: ``gate_<benchmark>[_production]_<k>``."""
    out = {}
    for name, sides in decision.benchmarks.items():
        for side, scores in sides.items():
            middle = "_production" if side == "production" else ""
            out |= {f"gate_{name}{middle}_{k}": v for k, v in (scores or {}).items()}
    return out


def register_alias(
    client, *, run_id: str, model_uri: str, version_tags: dict[str, str], alias: str, why: str
) -> str:
    """Register a new version and give it ``alias`` (not ``production``); return the version.

    Raises
    ------
    RegistryError
        The store failed; the new version is deleted again and the alias has not moved.
    """
    if alias == PRODUCTION:
        raise RegistryError("register_alias never gives production: use register_and_gate")
    alias_version(client, alias)  # a store that cannot answer this is refused before anything
    version = _new_version(client, run_id, model_uri, version_tags)
    try:
        _wait_ready(client, version)
        move_alias(client, alias, version, why, command_line())
    except BaseException as exc:
        _delete_version(client, version, exc)
        raise
    return version


def _new_version(client, run_id: str, model_uri: str, tags: dict[str, str]) -> str:
    """Create the registered model when it does not exist yet, then a new version of it."""
    try:
        client.get_registered_model(MODEL_NAME)
    except Exception as exc:
        if not is_missing(exc):
            raise store_error(client, f"reading {MODEL_NAME}", exc) from exc
        try:
            client.create_registered_model(MODEL_NAME, description=DESCRIPTION)
        except MlflowException as made:
            if made.error_code != "RESOURCE_ALREADY_EXISTS":  # made meanwhile: fine
                raise store_error(client, f"creating {MODEL_NAME}", made) from made
        except Exception as made:
            raise store_error(client, f"creating {MODEL_NAME}", made) from made
    with store_errors(client, f"registering a new version of {MODEL_NAME} from run {run_id}"):
        return str(
            client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=tags).version
        )


def _delete_version(client, version: str, exc: BaseException) -> None:
    """Delete a version whose registration failed with ``exc``; say so if that fails too."""
    try:
        client.delete_model_version(MODEL_NAME, version)
    except Exception as undo:
        raise RegistryError(
            f"registering {MODEL_NAME} v{version} failed ({one_line(exc)}) and deleting it "
            f"again failed too ({one_line(undo)}): delete v{version} by hand"
        ) from exc


def _wait_ready(client, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while model_version(client, version).status != "READY":
        if time.monotonic() > deadline:
            raise RegistryError(f"{MODEL_NAME} v{version} did not become READY in {timeout:g} s")
        time.sleep(0.2)
