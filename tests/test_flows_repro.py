"""The one body of both flows (flows/repro.py), and the two thin flows over it.

The tasks and the workspace lock of ``run_pipeline`` are replaced by recorders, so these
tests see the order of a run without Prefect's API, DVC or the pipeline; tests/test_flows.py
runs the real thing.
"""

import contextlib
import inspect
from types import SimpleNamespace

import pytest
from prefect.logging import disable_run_logger

import flows.finetune
import flows.training
from flows import dvc, repro
from flows.finetune import TARGET, finetune_flow
from flows.report import FINETUNE, TRAINING, PipelineRun
from flows.training import training_flow

STAGES = {None: ["simulate", "train", "register"], TARGET: ["simulate", "finetune", TARGET]}
RECORD = {"version": "7", "promoted": True, "reason": "better than v6", "run_id": "r7"}


@pytest.fixture
def events(monkeypatch):
    """What ``run_pipeline`` did: ``log``, each task (less the workspace) and the lock, in order;
    ``workspaces``, the workspaces they were given. A stage named in ``fail`` raises.
    """
    seen = SimpleNamespace(log=[], workspaces=set(), fail=set())

    def recorder(name, result):
        def task(workspace, *args):
            seen.workspaces.add(workspace)
            seen.log.append((name, *args))
            return result(*args) if callable(result) else result

        return task

    def stage(stage):
        if stage in seen.fail:
            raise dvc.DvcError(f"`dvc repro --single-item {stage}` failed")
        return dvc.RAN

    @contextlib.contextmanager
    def lock(workspace, timeout, holder, on_wait=None):
        seen.workspaces.add(workspace)
        seen.log.append(("lock", timeout))
        try:
            yield
        finally:
            seen.log.append(("unlock",))

    monkeypatch.setattr(repro, "workspace_lock", lock)
    monkeypatch.setattr(repro, "validate_overrides", recorder("validate", {}))
    monkeypatch.setattr(repro, "pipeline_stages", recorder("stages", STAGES.__getitem__))
    monkeypatch.setattr(repro, "restore_params", recorder("restore", False))
    monkeypatch.setattr(repro, "apply_overrides", recorder("apply", None))
    monkeypatch.setattr(repro, "run_stage", recorder("stage", stage))
    monkeypatch.setattr(repro, "save_experiment", recorder("save", "prefect-exp"))
    monkeypatch.setattr(
        repro, "publish_report", recorder("report", lambda report, run: dict(RECORD))
    )
    with disable_run_logger():
        yield seen


def test_whole_pipeline_with_overrides_in_order_under_the_lock(events, tmp_path):
    changes = {"train.epochs": 2}
    run, record = repro.run_pipeline(str(tmp_path), None, TRAINING, changes, 5.0)
    ran = PipelineRun(dict.fromkeys(STAGES[None], dvc.RAN), changes, "prefect-exp")
    assert events.log == [
        ("validate", changes),
        ("stages", None),
        ("lock", 5.0),
        ("restore",),  # what a killed run left behind, first
        ("apply", changes),
        ("stage", "simulate"),
        ("stage", "train"),
        ("stage", "register"),
        ("save", changes),
        ("report", TRAINING, ran),  # while the workspace holds this run's outputs
        ("restore",),
        ("unlock",),
    ]
    assert (run, record) == (ran, RECORD)
    assert events.workspaces == {tmp_path.resolve()}


def test_a_target_without_overrides_runs_its_stages_and_saves_no_experiment(events, tmp_path):
    run, record = repro.run_pipeline(str(tmp_path), TARGET, FINETUNE, lock_timeout_s=9.0)
    ran = PipelineRun(dict.fromkeys(STAGES[TARGET], dvc.RAN), {}, None)
    assert events.log == [
        ("validate", {}),
        ("stages", TARGET),
        ("lock", 9.0),
        ("restore",),
        ("stage", "simulate"),
        ("stage", "finetune"),
        ("stage", TARGET),
        ("report", FINETUNE, ran),
        ("unlock",),
    ]
    assert (run, record) == (ran, RECORD)


def test_a_failed_stage_stops_the_run_and_still_undoes_the_overrides(events, tmp_path):
    events.fail.add("train")
    with pytest.raises(dvc.DvcError, match="train"):
        repro.run_pipeline(str(tmp_path), None, TRAINING, {"train.epochs": 2}, 5.0)
    assert [e[0] for e in events.log] == [
        *("validate", "stages", "lock", "restore", "apply", "stage", "stage"),
        *("restore", "unlock"),
    ]


def test_the_default_workspace_is_the_current_directory(events, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repro.run_pipeline(None, TARGET, FINETUNE)
    assert ("lock", 3600.0) in events.log
    assert events.workspaces == {tmp_path.resolve()}


# ------------------------------------------------------------------- the two flows


def _calls(monkeypatch, module, record) -> list[dict]:
    """Replace ``module.run_pipeline`` by a recorder of its bound arguments."""
    calls = []
    signature = inspect.signature(repro.run_pipeline)

    def run_pipeline(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append(dict(bound.arguments))
        run = PipelineRun(
            {"train": dvc.RAN, "register": dvc.RAN, "finetune": "up to date"},
            bound.arguments["overrides"] or {},
            "prefect-exp" if bound.arguments["overrides"] else None,
        )
        return run, dict(record)

    monkeypatch.setattr(module, "run_pipeline", run_pipeline)
    return calls


def test_training_is_the_whole_pipeline_with_the_training_report(monkeypatch):
    calls = _calls(monkeypatch, flows.training, RECORD)
    result = training_flow.fn(overrides={"train.epochs": 2}, workspace="/ws", lock_timeout_s=5.0)
    assert calls == [
        {
            "workspace": "/ws",
            "target": None,
            "report": TRAINING,
            "overrides": {"train.epochs": 2},
            "lock_timeout_s": 5.0,
        }
    ]
    assert result == {
        "version": "7",
        "decision": "promoted",
        "reason": "better than v6",
        "run_id": "r7",
        "registered_now": True,
        "stages_run": ["train", "register"],
        "stages": {"train": dvc.RAN, "register": dvc.RAN, "finetune": "up to date"},
        "experiment": "prefect-exp",
    }


def test_training_registered_nothing_new_when_the_model_was_already_there(monkeypatch):
    _calls(monkeypatch, flows.training, {"version": "7", "already_registered": True})
    result = training_flow.fn()
    assert result["decision"] == "already registered" and not result["registered_now"]
    assert result["experiment"] is None


def test_finetune_is_its_target_with_the_finetune_report(monkeypatch):
    calls = _calls(monkeypatch, flows.finetune, {**RECORD, "parent_version": "6"})
    result = finetune_flow.fn(workspace="/ws", lock_timeout_s=9.0)
    assert TARGET == "register_finetuned"
    assert calls == [
        {
            "workspace": "/ws",
            "target": TARGET,
            "report": FINETUNE,
            "overrides": None,
            "lock_timeout_s": 9.0,
        }
    ]
    assert result == {
        **RECORD,
        "parent_version": "6",
        "stages": {"train": dvc.RAN, "register": dvc.RAN, "finetune": "up to date"},
    }


def test_flows_keep_their_names_parameters_and_stage_retries():
    assert (training_flow.name, finetune_flow.name) == ("raman-training", "raman-finetune")
    defaults = {
        name: {k: v.get("default") for k, v in f.parameters.properties.items()}
        for name, f in (("training", training_flow), ("finetune", finetune_flow))
    }
    assert defaults == {
        "training": {"overrides": None, "workspace": None, "lock_timeout_s": 3600.0},
        "finetune": {"workspace": None, "lock_timeout_s": 3600.0},
    }
    assert repro.run_stage.retries == repro.STAGE_RETRIES == 2
    assert repro.run_stage.retry_delay_seconds == [5.0, 10.0]
    assert repro.run_stage.retry_jitter_factor == 0.2
