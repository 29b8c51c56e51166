"""Prefect orchestration (flows/): task bodies, the flow on the tiny pipeline, a real server.

The slow tests share one scratch git + DVC workspace holding the tiny configuration of
test_pipeline.py, and run in file order: the deployment served on a real `prefect server` runs
the whole pipeline first; then in-process runs inject a transient failure, override params,
repeat the overrides (served by DVC's run-cache), find nothing to do, reject a bad override,
find the workspace busy, and fail a stage while overrides are applied.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.logging import disable_run_logger
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from flows import dvc, overrides, repro
from flows.finetune import TARGET as FINETUNE_TARGET
from flows.lock import WorkspaceBusy, lock_path, workspace_lock
from flows.report import FINETUNE, TRAINING
from flows.repro import pipeline_stages, restore_params, validate_overrides
from flows.training import training_flow
from pipeline.config import ConfigError

from .conftest import ROOT, TINY, git

PIPELINE = [
    "check_params",
    "simulate",
    "semireal",
    "register_shipped",
    "real",
    "classical",
    "train",
    "train_denoiser",
    "train_fast",
    "evaluate",
    "export",
    "export_fast",
    "evaluate_real",
    "register",
    "register_fast",
    "finetune",
    "export_finetuned",
    "register_finetuned",
]
# an override of the tiny config's budget, and what it reruns: the params check (params.yaml
# changed), training and everything after it
SAMPLES = TINY["train"]["samples"] + 64
AFTER_TRAIN_SAMPLES = [
    "check_params",
    "train",
    "evaluate",
    "export",
    "evaluate_real",
    "register",
    "register_fast",
    "finetune",  # reruns (registration.json changed) from the same production parent, with
    "register_finetuned",  # the same params and data: the same model, so export_finetuned
]  # is up to date (DVC skips it; fine-tuning is seeded)
BIN = Path(sys.executable).parent
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A temporary Prefect API (SQLite in a temp dir) for every flow run of this session."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**QUIET, "PREFECT_HOME": str(home)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with temporary_settings(
            updates={
                PREFECT_HOME: str(home),
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120,
            }
        ):
            with prefect_test_harness(server_startup_timeout=None):
                yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(autouse=True)
def _workspace_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # each workspace's own mlflow.db


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, make_workspace):
    """The tiny pipeline in a scratch workspace, shared by the slow tests in file order."""
    return make_workspace(tmp_path_factory.mktemp("flow-ws"))


def _run_flow(**parameters):
    """Run the flow in this process; return (final state, flow run id)."""
    state = training_flow(**parameters, return_state=True)
    return state, state.state_details.flow_run_id


def _task_runs(flow_run_id) -> dict[str, object]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name: run for run in runs}


def _artifacts(client, flow_run_id) -> list:
    return client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )


def _mlflow(ws: Path):
    """A client of the workspace's own store, tracking and registry both (another test may
    have pointed mlflow's process-wide registry URI elsewhere)."""
    import mlflow

    uri = f"sqlite:///{ws / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _hold_lock(ws: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the workspace lock for ``seconds``; returns once it holds it."""
    code = (
        "import sys, time; from pathlib import Path; from flows.lock import workspace_lock\n"
        "with workspace_lock(Path(sys.argv[1]), 0, 'nightly run in another process'):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ws), str(seconds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


# -------------------------------------------------------------------- task bodies, fast


def test_flows_import_neither_the_model_nor_torch_nor_mlflow():
    code = (
        "import sys, flows.serve, flows.training, flows.finetune, flows.repro, flows.report\n"
        "heavy = {'torch', 'mlflow', 'onnxruntime', 'pipeline.model', 'pipeline.registry'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_stage_order_is_the_committed_pipeline_from_dvc_dag():
    with disable_run_logger():
        assert pipeline_stages.fn(ROOT) == PIPELINE


def test_finetune_stages_are_its_target_and_what_it_depends_on_in_pipeline_order():
    with disable_run_logger():
        stages = pipeline_stages.fn(ROOT, FINETUNE_TARGET)
    assert stages == [
        s
        for s in PIPELINE
        if s not in ("train_denoiser", "train_fast", "export_fast", "register_fast")
    ]
    assert stages[-1] == FINETUNE_TARGET == "register_finetuned"


def test_stage_order_follows_dependencies_not_the_order_of_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "report": {"cmd": "cat b.txt > c.txt", "deps": ["b.txt"], "outs": ["c.txt"]},
                    "second": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
                    "first": {"cmd": "echo 1 > a.txt", "outs": ["a.txt"]},
                }
            }
        )
    )
    git(tmp_path, "init", "-q")
    dvc.dvc(tmp_path, "init", "-q")
    with disable_run_logger():
        assert pipeline_stages.fn(tmp_path) == ["first", "second", "report"]


def test_overrides_are_validated_with_the_key_named_before_anything_is_written(
    tmp_path, make_workspace
):
    ws = make_workspace(tmp_path)
    before = (ws / "params.yaml").read_bytes()
    with disable_run_logger():
        with pytest.raises(ConfigError, match=r"train\.samples: expected a value >= 1, got -3"):
            validate_overrides.fn(ws, {"train": {"samples": -3}})
        with pytest.raises(ConfigError, match=r"train\.epoch: unknown key"):
            validate_overrides.fn(ws, {"train.epoch": 2})
        with pytest.raises(ConfigError, match=r"simulate\.peaks\.width: empty or inverted"):
            validate_overrides.fn(ws, {"simulate": {"peaks": {"width": [30.0, 2.0]}}})
        with pytest.raises(ConfigError, match="overrides: expected a mapping"):
            validate_overrides.fn(ws, ["train.samples=2"])
        nested = validate_overrides.fn(ws, {"train": {"samples": 3}})
        dotted = validate_overrides.fn(ws, {"train.samples": 3, "model.arch": "unet"})
    assert nested["train"]["samples"] == dotted["train"]["samples"] == 3
    assert dotted["model"]["arch"] == "unet"
    assert nested["train"]["batch_size"] == TINY["train"]["batch_size"]  # the rest untouched
    assert (ws / "params.yaml").read_bytes() == before


def test_overrides_need_a_commit_to_be_recorded(tmp_path):
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    with disable_run_logger():
        none = validate_overrides.fn(tmp_path, {})  # no overrides: no commit needed
        assert none["train"]["samples"] >= 1
        with pytest.raises(RuntimeError, match="needs a git commit"):
            validate_overrides.fn(tmp_path, {"train": {"samples": 2}})


def _git_status(cwd) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def test_applied_overrides_are_undone_byte_for_byte_even_after_a_crash(tmp_path):
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    original = "# comments survive\ntrain:\n  epochs: 5   # five\n"
    (tmp_path / "params.yaml").write_text(original)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / ".gitignore").write_text(".dvc/\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "params.yaml", "dvc.lock", ".gitignore")
    git(tmp_path, "commit", "-q", "-m", "committed")
    overrides.apply(tmp_path, {"train": {"epochs": 2}})
    assert yaml.safe_load((tmp_path / "params.yaml").read_text()) == {"train": {"epochs": 2}}
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {train: {}}\n")  # a stage ran
    git(tmp_path, "add", "dvc.lock")  # and DVC staged its lock file (core.autostage)
    # the process dies here; the next run finds the originals and puts them back
    with disable_run_logger():
        assert restore_params.fn(tmp_path) is True
        assert restore_params.fn(tmp_path) is False  # nothing left to undo
    assert (tmp_path / "params.yaml").read_text() == original
    assert (tmp_path / "dvc.lock").read_text() == "schema: '2.0'\n"
    assert _git_status(tmp_path) == ""  # nothing left staged either
    # a workspace without dvc.lock gets none back, in the work tree or in the index
    git(tmp_path, "rm", "-q", "dvc.lock")
    git(tmp_path, "commit", "-q", "-m", "no lock")
    overrides.apply(tmp_path, {"train": {"epochs": 2}})
    (tmp_path / "dvc.lock").write_text("written by the run\n")
    git(tmp_path, "add", "dvc.lock")
    assert overrides.undo(tmp_path)
    assert not (tmp_path / "dvc.lock").exists()
    assert _git_status(tmp_path) == ""


def test_lock_refuses_a_second_run_naming_the_first(tmp_path):
    holder = _hold_lock(tmp_path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(WorkspaceBusy, match="nightly run in another process") as exc:
            with workspace_lock(tmp_path, 1.0, "second run"):
                pytest.fail("the lock was granted twice")
        assert 1.0 <= time.monotonic() - start < 10
        assert "gave up after waiting 1 s" in str(exc.value)
    finally:
        holder.kill()
        holder.wait()
    with workspace_lock(tmp_path, 0, "after the holder died"):  # freed with its process
        assert "after the holder died" in lock_path(tmp_path).read_text()
    assert lock_path(tmp_path).read_text() == ""


def test_lock_waits_for_the_first_run_to_finish(tmp_path):
    holder = _hold_lock(tmp_path, 2)
    told = []
    try:
        start = time.monotonic()
        with workspace_lock(tmp_path, 60, "second run", on_wait=told.append):
            waited = time.monotonic() - start
        assert holder.wait(10) == 0  # the first ran to its end, untroubled
    finally:
        holder.kill()
        holder.wait()
    assert 1.5 < waited < 30
    assert len(told) == 1 and "nightly run in another process" in told[0]


# --------------------------------------------------------------- a real Prefect server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if found := check():
                return found
        except Exception:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what}: not ready after {timeout:g} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_served_deployment_runs_on_a_real_prefect_server(workspace, tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(QUIET)
    env["PATH"] = os.pathsep.join([str(BIN), env["PATH"]])
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    with server_log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={
                **env,
                "PREFECT_HOME": str(tmp_path / "server-home"),
                "PREFECT_SERVER_UI_ENABLED": "false",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    serve = None
    try:
        _wait_for(
            "prefect server",
            lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200,
            120,
            server,
            server_log,
        )
        with serve_log.open("w") as out:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flows.serve",
                    "--workspace",
                    str(workspace),
                    "--name",
                    "test-nightly",
                    "--cron",
                    "30 1 * * *",
                ],
                cwd=ROOT,
                env={
                    **env,
                    "PREFECT_API_URL": api,
                    "PREFECT_HOME": str(tmp_path / "serve-home"),
                    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
                    "TMPDIR": str(tmp_path),  # the runner's scratch dirs
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        with temporary_settings(updates={PREFECT_API_URL: api}):
            with get_client(sync_client=True) as client:
                deployment = _wait_for(
                    "deployment",
                    lambda: client.read_deployment_by_name("raman-training/test-nightly"),
                    120,
                    serve,
                    serve_log,
                )
                assert [s.schedule.cron for s in deployment.schedules] == ["30 1 * * *"]
                assert deployment.parameters["workspace"] == str(workspace)
                finetune = _wait_for(  # served beside it, registered a moment later
                    "fine-tuning deployment",
                    lambda: client.read_deployment_by_name("raman-finetune/on-demand"),
                    60,
                    serve,
                    serve_log,
                )
                assert finetune.schedules == []  # run by hand, when real data changes
                assert finetune.parameters["workspace"] == str(workspace)
                run = client.create_flow_run_from_deployment(
                    deployment.id, parameters={"lock_timeout_s": 60}
                )
                run = _wait_for(
                    "flow run",
                    lambda: (r := client.read_flow_run(run.id)).state.is_final() and r,
                    600,
                    serve,
                    serve_log,
                )
                assert run.state.is_completed(), f"{run.state}\n{serve_log.read_text()[-3000:]}"
                assert run.parameters["workspace"] == str(workspace)
                (artifact,) = _artifacts(client, run.id)
    finally:
        if serve is not None:
            _stop(serve)  # first the serve process, while the server can still hear it
        _stop(server)
    assert serve.returncode is not None and server.returncode is not None
    # the run registered the model it trained, with the params it used, and reported it
    record = json.loads((workspace / "reports/registration.json").read_text())
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    store = _mlflow(workspace)
    registered = store.get_model_version("resunet1d", record["version"])
    assert registered.run_id == record["run_id"]
    logged = store.get_run(record["run_id"]).data.params
    assert logged["train.samples"] == str(params["train"]["samples"])
    assert logged["simulate.n_train"] == str(TINY["simulate"]["n_train"])
    assert artifact.key == TRAINING.key == "raman-training-report"
    assert artifact.type == "markdown"
    decision = "promoted" if record["promoted"] else "refused"
    assert f"`resunet1d` v{record['version']} {decision}" in artifact.data
    for row in ("ResUNet-1D (this run)", "arPLS (this run)", "asPLS (this run)"):
        assert row in artifact.data
    assert record["run_id"] in artifact.data and record["reason"] in artifact.data


# ---------------------------------------------------------------- flows, tiny pipeline


@pytest.mark.slow
def test_transient_stage_failure_is_retried_and_the_run_completes(
    prefect_harness, workspace, tmp_path, monkeypatch
):
    # a stage command that fails once, as a lost NFS mount or a locked store would
    marker = tmp_path / "failed-once"
    inject = tmp_path / "bin"
    inject.mkdir()
    wrapper = inject / "raman-baseline"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = evaluate ] && [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"; echo "injected transient failure" >&2; exit 75\n'
        "fi\n"
        f'exec "{BIN / "raman-baseline"}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(inject), str(BIN), os.environ["PATH"]]))

    # an override that makes DVC run evaluate (and register) again
    state, flow_run_id = _run_flow(
        workspace=str(workspace), overrides={"evaluate": {"batch_size": 16}}
    )

    assert state.is_completed(), state.message
    assert marker.exists()  # the failure did happen
    runs = _task_runs(flow_run_id)
    assert runs["evaluate"].run_count == 2 and runs["evaluate"].state.is_completed()
    assert all(runs[s].run_count == 1 for s in PIPELINE if s != "evaluate")
    result = state.result()
    assert {"evaluate", "register"} <= set(result["stages_run"])
    with get_client(sync_client=True) as client:
        (artifact,) = _artifacts(client, flow_run_id)
    assert f"`resunet1d` v{result['version']} {result['decision']}" in artifact.data


@pytest.mark.slow
def test_overrides_reach_dvc_and_mlflow_and_params_yaml_is_left_as_committed(
    prefect_harness, workspace
):
    before = {n: (workspace / n).read_bytes() for n in ("params.yaml", "dvc.lock")}
    registration_before = (workspace / "reports/registration.json").read_bytes()

    state, flow_run_id = _run_flow(
        workspace=str(workspace), overrides={"train": {"samples": SAMPLES}}
    )

    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages_run"] == AFTER_TRAIN_SAMPLES
    assert result["registered_now"] and result["experiment"]
    # MLflow: the run logged the overridden value; the new version is that run's model
    client = _mlflow(workspace)
    run = client.get_run(result["run_id"])
    assert run.data.params["train.samples"] == str(SAMPLES)
    assert run.data.params["train.batch_size"] == str(TINY["train"]["batch_size"])
    assert client.get_model_version("resunet1d", result["version"]).run_id == result["run_id"]
    # DVC: the experiment holds the overridden params and the run's registration record
    shown = json.loads(dvc.dvc(workspace, "exp", "show", "--json").output)
    exps = {
        exp["name"]: exp["data"]
        for baseline in shown
        for exp in (baseline.get("experiments") or [])
        for exp in exp["revs"]
    }
    data = exps[result["experiment"]]
    assert data["params"]["params.yaml"]["data"]["train"]["samples"] == SAMPLES
    saved = subprocess.run(
        ["git", "show", f"{data['rev']}:dvc.lock"], cwd=workspace, capture_output=True, text=True
    ).stdout
    assert f"samples: {SAMPLES}" in saved
    # the workspace is as it was: committed params.yaml, its dvc.lock and outputs
    for name, content in before.items():
        assert (workspace / name).read_bytes() == content, name
    assert (workspace / "reports/registration.json").read_bytes() == registration_before
    assert (
        subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "params.yaml"], cwd=workspace
        ).returncode
        == 0
    )
    assert "up to date" in dvc.dvc(workspace, "status").output
    assert not (workspace / ".dvc/tmp/prefect-overrides-backup").exists()


@pytest.mark.slow
def test_repeated_overrides_come_from_the_run_cache_and_register_nothing(
    prefect_harness, workspace
):
    store = _mlflow(workspace)
    versions = len(store.search_model_versions("name='resunet1d'"))
    state, flow_run_id = _run_flow(workspace=str(workspace), overrides={"train.samples": SAMPLES})
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages"] == {
        s: "restored from run-cache" if s in AFTER_TRAIN_SAMPLES else "up to date" for s in PIPELINE
    }
    assert not result["registered_now"]
    assert len(store.search_model_versions("name='resunet1d'")) == versions
    with get_client(sync_client=True) as client:
        (artifact,) = _artifacts(client, flow_run_id)
    assert "The register stage was restored from run-cache" in artifact.data


@pytest.mark.slow
def test_second_run_with_nothing_changed_runs_no_stage(prefect_harness, workspace):
    record = json.loads((workspace / "reports/registration.json").read_text())
    state, flow_run_id = _run_flow(workspace=str(workspace))
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages"] == dict.fromkeys(PIPELINE, "up to date")
    assert result["stages_run"] == [] and not result["registered_now"]
    assert result["version"] == record["version"]
    assert set(_task_runs(flow_run_id)) >= set(PIPELINE)  # every stage asked DVC, each skipped


@pytest.mark.slow
def test_bad_override_fails_the_flow_before_any_stage(prefect_harness, workspace):
    before = (workspace / "params.yaml").read_bytes()
    state, flow_run_id = _run_flow(workspace=str(workspace), overrides={"train": {"lr": "fast"}})
    assert state.is_failed()
    with pytest.raises(ConfigError, match=r"train\.lr: expected float, got str 'fast'"):
        state.result()
    assert not set(_task_runs(flow_run_id)) & set(PIPELINE)
    assert (workspace / "params.yaml").read_bytes() == before


@pytest.mark.slow
def test_a_run_is_refused_while_another_holds_the_workspace(prefect_harness, workspace):
    holder = _hold_lock(workspace, 60)
    try:
        state, flow_run_id = _run_flow(workspace=str(workspace), lock_timeout_s=1.0)
    finally:
        holder.kill()
        holder.wait()
    assert state.is_failed()
    with pytest.raises(WorkspaceBusy, match="another pipeline run is using .*nightly run"):
        state.result()
    assert not set(_task_runs(flow_run_id)) & set(PIPELINE)


@pytest.mark.slow
def test_failed_run_still_puts_params_and_dvc_lock_back(
    prefect_harness, workspace, tmp_path, monkeypatch
):
    before = {n: (workspace / n).read_bytes() for n in ("params.yaml", "dvc.lock")}
    status = _git_status(workspace)
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "raman-baseline").write_text("#!/bin/sh\necho 'disk full' >&2\nexit 1\n")
    (broken / "raman-baseline").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(broken), str(BIN), os.environ["PATH"]]))
    no_retry = repro.run_stage.with_options(retries=0)
    monkeypatch.setattr(repro, "run_stage", no_retry)

    state, _ = _run_flow(workspace=str(workspace), overrides={"evaluate.batch_size": 8})

    # the first stage to run fails: check_params (params.yaml changed), the DAG's root
    assert state.is_failed() and "check_params" in state.message
    for name, content in before.items():
        assert (workspace / name).read_bytes() == content, name
    assert _git_status(workspace) == status
    assert "up to date" in dvc.dvc(workspace, "status").output
    assert not (workspace / ".dvc/tmp/prefect-overrides-backup").exists()


@pytest.mark.slow
def test_finetune_flow_runs_the_real_data_stages_only_and_reports(prefect_harness, workspace):
    from flows.finetune import finetune_flow

    params_path = workspace / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["finetune"]["seed"] = 7  # another fine-tuning of the same parent
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        state = finetune_flow(workspace=str(workspace), return_state=True)
        assert state.is_completed(), state.message
        result = state.result()
        flow_run_id = state.state_details.flow_run_id
    finally:
        params_path.write_text(original)
    ran = [s for s, what in result["stages"].items() if what == dvc.RAN]
    assert ran == ["check_params", "finetune", "export_finetuned", "register_finetuned"]
    assert "train_fast" not in result["stages"]  # not a dependency of fine-tuning
    report = json.loads((workspace / "reports/finetune.json").read_text())
    assert result["parent_version"] == str(report["parent_version"])
    if result["registered"]:
        version = _mlflow(workspace).get_model_version("resunet1d", result["version"])
        assert version.tags["parent_version"] == result["parent_version"]
        assert version.tags["finetuned"] == "true"
    else:
        assert "simulated-test RMSE" in result["reason"]
    with get_client(sync_client=True) as client:
        (artifact,) = _artifacts(client, flow_run_id)
    assert artifact.key == FINETUNE.key == "raman-finetune-report"
    assert f"Fine-tuning of `resunet1d` v{report['parent_version']}" in artifact.data
    assert "| arpls |" in artifact.data
