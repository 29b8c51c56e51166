"""The flows' markdown reports (flows/report.py): pure functions of the stages' records."""

import json

from flows.report import FINETUNE, TRAINING, PipelineRun, finetune_markdown, training_markdown

STAGES = {
    "simulate": "up to date",
    "real": "up to date",
    "classical": "up to date",
    "train": "ran",
    "evaluate": "ran",
    "register": "restored from run-cache",
}


def test_report_shows_every_method_production_and_decision():
    metrics = {
        m: {"rmse": {"mean": 0.1 + i}, "mae": {"mean": 0.2 + i}}
        for i, m in enumerate(("resunet", "arpls", "aspls"))
    }
    record = {
        "name": "resunet1d",
        "version": "4",
        "run_id": "abc123",
        "promoted": False,
        "reason": "RMSE 0.10000 >= production v3 0.09000",
        "challenger": {"rmse": 0.1, "mae": 0.2},
        "production": {"rmse": 0.09, "mae": 0.19},
        "production_version": "3",
    }
    run = PipelineRun(
        stages={**STAGES, "register": "ran"},
        overrides={"train": {"epochs": 2}},
        experiment="prefect-x",
    )
    text = training_markdown(metrics, record, run)
    assert "v4 refused" in text
    for row in (
        "| ResUNet-1D (this run) | 0.10000 | 0.20000 |",
        "| arPLS (this run) | 1.10000",
        "| asPLS (this run) | 2.10000",
        "production v3",
        "| 0.09000 | 0.19000 |",
    ):
        assert row in text
    assert "RMSE 0.10000 >= production v3" in text and "`abc123`" in text
    assert "`prefect-x`" in text and '`{"train": {"epochs": 2}}`' in text
    assert "| classical | up to date |" in text and "| train | ran |" in text


def _finetune_report() -> dict:
    quality = {"negative_fraction": 0.0123, "curvature": 4.5678}
    return {
        "parent_version": 3,
        "targets": "pseudo",
        "pseudo_label_method": "arpls",
        "real": {"train_spectra": 12, "heldout_spectra": 4},
        "simulated_test": {
            "before": {"rmse": 0.02, "mae": 0.01},
            "after": {"rmse": 0.025, "mae": 0.0125},
        },
        "heldout_quality": {
            m: quality for m in ("resunet_before", "resunet_after", "arpls", "aspls")
        },
    }


def test_finetune_report_shows_before_after_heldout_quality_and_each_verdict():
    run = PipelineRun(stages=STAGES, overrides={}, experiment=None)
    registered = {"registered": True, "version": "5", "promoted": True, "reason": "better"}
    text = finetune_markdown(_finetune_report(), registered, run)
    assert text.startswith(
        "# Fine-tuning of `resunet1d` v3: registered as v5, promoted to production: better\n"
    )
    assert "`pseudo` (arpls); 12 real spectra trained on, 4 held out." in text
    assert "| parent | 0.02000 | 0.01000 |" in text
    assert "| fine-tuned | 0.02500 | 0.01250 |" in text
    assert "| method | negative_fraction | curvature |" in text
    assert "| arpls | 0.0123 | 4.568 |" in text and "| resunet_after | 0.0123 |" in text
    assert "- `register`: restored from run-cache" in text and "- `train`: ran" in text

    challenger = {**registered, "promoted": False, "reason": "worse than v3"}
    assert "v5, stays challenger: worse than v3" in finetune_markdown(
        _finetune_report(), challenger, run
    )
    refused = {"registered": False, "reason": "simulated-test RMSE 0.1 is 5 x parent v3's"}
    assert "v3: not registered: simulated-test RMSE 0.1 is 5 x" in finetune_markdown(
        _finetune_report(), refused, run
    )
    again = {"already_registered": True, "version": "5"}
    assert "v3: already registered as v5\n" in finetune_markdown(_finetune_report(), again, run)


def test_each_flow_reports_from_its_own_records(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    training_record = {"version": "4", "promoted": True, "reason": "better", "run_id": "r4"}
    finetune_record = {"registered": True, "version": "5", "promoted": False, "reason": "worse"}
    for name, content in {
        "metrics.json": {"resunet": {"rmse": {"mean": 0.1}, "mae": {"mean": 0.2}}},
        "registration.json": training_record,
        "finetune.json": _finetune_report(),
        "registration_finetuned.json": finetune_record,
    }.items():
        (reports / name).write_text(json.dumps(content))
    run = PipelineRun(stages=STAGES, overrides={}, experiment=None)

    text, record = TRAINING.write(tmp_path, run)
    assert record == training_record
    assert text == training_markdown(
        json.loads((reports / "metrics.json").read_text()), record, run
    )
    text, record = FINETUNE.write(tmp_path, run)
    assert record == finetune_record
    assert text == finetune_markdown(_finetune_report(), record, run)
    assert (TRAINING.key, FINETUNE.key) == ("raman-training-report", "raman-finetune-report")


def test_a_run_names_the_stages_dvc_ran_in_order():
    run = PipelineRun(stages=STAGES, overrides={}, experiment=None)
    assert run.ran == ["train", "evaluate"]
