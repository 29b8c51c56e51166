"""The deployments of flows/serve.py, built without a server (test_flows.py serves them)."""

import pytest

import flows.serve

from .conftest import ROOT


@pytest.fixture
def served(monkeypatch):
    """The deployments ``flows.serve.main`` would serve; nothing is served."""
    got = []
    monkeypatch.setattr(flows.serve, "serve", lambda *deployments: got.extend(deployments))
    monkeypatch.delenv("RAMAN_TRAINING_CRON", raising=False)
    monkeypatch.delenv("RAMAN_TRAINING_TIMEZONE", raising=False)
    return got


def test_nightly_training_and_on_demand_finetuning_are_served_together(served):
    flows.serve.main(["--workspace", str(ROOT), "--lock-timeout", "60"])
    nightly, on_demand, _ = served  # the third: raman-map-correction (test_flows_maps.py)
    assert (nightly.flow_name, nightly.name) == ("raman-training", "nightly")
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        ("0 2 * * *", "UTC")
    ]
    assert (on_demand.flow_name, on_demand.name) == ("raman-finetune", "on-demand")
    assert on_demand.schedules == []  # run by hand, when real data changes
    for deployment in (nightly, on_demand):
        assert deployment.parameters == {"workspace": str(ROOT), "lock_timeout_s": 60.0}
        assert deployment.tags == ["raman-baseline"]


def test_schedule_and_name_come_from_the_command_line_or_the_environment(served, monkeypatch):
    monkeypatch.setenv("RAMAN_TRAINING_TIMEZONE", "Europe/Berlin")
    flows.serve.main(["--workspace", str(ROOT), "--name", "weekdays", "--cron", "30 3 * * 1-5"])
    nightly, on_demand, _ = served
    assert nightly.name == "weekdays" and on_demand.name == "on-demand"
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        ("30 3 * * 1-5", "Europe/Berlin")
    ]


def test_serve_refuses_a_directory_without_dvc_yaml(served, tmp_path):
    with pytest.raises(SystemExit, match="no dvc.yaml in"):
        flows.serve.main(["--workspace", str(tmp_path)])
    assert served == []
