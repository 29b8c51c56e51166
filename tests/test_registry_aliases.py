"""pipeline/registry/aliases.py: alias moves that succeed or fail with their log entries, and
registrations that leave nothing behind when the store fails, on real SQLite stores.

The versions here are registered with a stand-in source: no model is loaded, so these tests
need no training (the gate itself is checked in test_registry_gate.py).
"""

import json
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from pipeline import registry
from pipeline.registry import aliases

NAME = registry.MODEL_NAME


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A real store with versions 1, 2 and 3; version 1 is production. Returns (path, client)."""
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    client = registry.connect(create=True)
    run_id = client.create_run(registry.experiment_id(client)).info.run_id
    client.create_registered_model(NAME)
    for _ in range(3):
        client.create_model_version(NAME, "file:///nowhere/model", run_id=run_id)
    registry.promote(client, "1", "first", "test")
    return db, client


def state(client):
    """Everything an alias move may touch: aliases, model tags, each version's tags."""
    model = client.get_registered_model(NAME)
    versions = client.search_model_versions(f"name='{NAME}'")
    aliases_ = {a: str(v) for a, v in model.aliases.items()}
    return aliases_, dict(model.tags), {str(mv.version): dict(mv.tags) for mv in versions}


def fail_on_call(monkeypatch, client, method: str, n: int, undo_too: bool = False):
    """Make ``client.<method>`` fail on its ``n``-th call (and, if ``undo_too``, after)."""
    real = getattr(client, method)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == n or (undo_too and len(calls) > n):
            raise MlflowException(
                "(sqlite3.OperationalError) database is locked", error_code=TEMPORARILY_UNAVAILABLE
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(client, method, flaky)
    return calls


def one_line_naming(exc: BaseException, store: Path) -> bool:
    return "\n" not in str(exc) and str(store) in str(exc)


# ----------------------------------------------------------------------- the moves


def test_a_move_is_logged_on_both_versions_and_in_the_history(store):
    _, client = store
    registry.promote(client, "2", "better", "test promote")
    aliases_, tags, versions = state(client)
    assert aliases_ == {"production": "2"}
    assert json.loads(tags["production_history"]) == ["1", "2"]
    set_, removed = (
        json.loads(versions["2"]["alias_log"])[-1],
        json.loads(versions["1"]["alias_log"])[-1],
    )
    assert set_["action"] == "set" and set_["previous"] == "1" and set_["reason"] == "better"
    assert removed["action"] == "removed" and removed["next"] == "2"
    assert removed["command"] == "test promote"


@pytest.mark.parametrize(
    "method, n",
    [
        ("set_model_version_tag", 1),  # the new holder's log entry
        ("set_model_version_tag", 2),  # the old holder's log entry
        ("set_registered_model_tag", 1),  # the production history
    ],
)
def test_a_move_that_fails_halfway_is_put_back(store, monkeypatch, method, n):
    db, client = store
    before = state(client)
    fail_on_call(monkeypatch, client, method, n)
    with pytest.raises(registry.RegistryError, match="database is locked") as caught:
        registry.promote(client, "2", "better", "test")
    assert one_line_naming(caught.value, db)
    assert state(client) == before


def test_a_first_move_that_fails_leaves_the_alias_unset(store, monkeypatch):
    _, client = store
    before = state(client)
    fail_on_call(monkeypatch, client, "set_model_version_tag", 1)
    with pytest.raises(registry.RegistryError):
        registry.move_alias(client, registry.CHALLENGER, "3", "test", "test")
    assert state(client) == before and "challenger" not in before[0]


def test_a_move_that_cannot_be_put_back_says_so(store, monkeypatch):
    _, client = store
    fail_on_call(monkeypatch, client, "set_model_version_tag", 1, undo_too=True)
    with pytest.raises(registry.RegistryError, match="putting it back failed too") as caught:
        registry.promote(client, "2", "better", "test")
    assert "\n" not in str(caught.value) and "by hand" in str(caught.value)


def test_rollback_is_one_move(store, monkeypatch):
    _, client = store
    registry.promote(client, "2", "better", "test")
    before = state(client)
    fail_on_call(monkeypatch, client, "set_model_version_tag", 2)
    with pytest.raises(registry.RegistryError):
        registry.rollback(client, "worse after all", "test rollback")
    assert state(client) == before  # the history too: it is trimmed only with the move
    monkeypatch.undo()
    assert registry.rollback(client, "worse after all", "test rollback") == ("2", "1")
    assert json.loads(state(client)[1]["production_history"]) == ["1"]
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(client, "again", "test")


def test_promoting_a_missing_version_is_refused(store):
    db, client = store
    with pytest.raises(registry.RegistryError, match="has no version 9") as caught:
        registry.promote(client, "9", "typo", "test")
    assert one_line_naming(caught.value, db)


# -------------------------------------------------------------------- registration


def register(client, run_id):
    return registry.register_and_gate(
        client,
        run_id=run_id,
        model_uri="file:///nowhere/model",
        version_tags={"onnx_sha256": "new"},
        benchmark={},
        classical={},
        command="test register",
    )


@pytest.mark.parametrize("n", [1, 2])  # 1: before registering, 2: the gate's own lookup
def test_a_production_lookup_that_fails_once_registers_nothing(store, monkeypatch, n):
    db, client = store
    run_id = client.get_model_version(NAME, "1").run_id
    before = state(client)
    calls = fail_on_call(monkeypatch, client, "get_model_version_by_alias", n)
    with pytest.raises(registry.RegistryError, match="database is locked") as caught:
        register(client, run_id)
    assert len(calls) == n  # it stopped at the failure: no "no production version yet"
    assert one_line_naming(caught.value, db) and "@production" in str(caught.value)
    assert state(client) == before  # no version left registered, no alias moved


def test_a_failed_production_move_undoes_the_whole_registration(store, monkeypatch):
    db, client = store
    run_id = client.get_model_version(NAME, "1").run_id
    registry.move_alias(client, registry.CHALLENGER, "3", "earlier", "test")
    before = state(client)

    def promoting_gate(client, version, benchmark, classical, real=None):
        scores = {"rmse": 0.1, "mae": 0.1}
        return registry.Decision(version, True, "test", scores, scores, "1", {})

    monkeypatch.setattr(aliases, "gate", promoting_gate)
    fail_on_call(monkeypatch, client, "set_registered_model_tag", 1)  # production's history
    with pytest.raises(registry.RegistryError, match="database is locked"):
        register(client, run_id)
    assert state(client) == before  # challenger back on v3, production on v1, v4 deleted


def test_register_alias_never_gives_production(store):
    _, client = store
    with pytest.raises(registry.RegistryError, match="never gives production"):
        registry.register_alias(
            client, run_id="x", model_uri="x", version_tags={}, alias="production", why="x"
        )


# ------------------------------------------------------------- the reference version


@pytest.mark.parametrize(
    "record, reference",
    [
        ({"version": "4", "promoted": True, "production_version": "2"}, "4"),
        ({"version": "4", "promoted": False, "production_version": "2"}, "2"),
        ({"version": "4", "promoted": False, "production_version": None}, "4"),
        ({"version": "3", "already_registered": True, "promoted": True}, "3"),
        ({"version": "3", "already_registered": True, "production_version": "1"}, "1"),
        ({"version": "4", "promoted": True, "reference_version": "2"}, "2"),  # as recorded
    ],
)
def test_the_reference_is_production_as_the_register_stage_left_it(record, reference):
    assert registry.reference_of(record) == reference


def test_a_record_without_a_version_is_refused():
    with pytest.raises(registry.RegistryError, match="names no registered version"):
        registry.reference_of({"registered": False})
