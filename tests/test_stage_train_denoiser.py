"""Stage ``train_denoiser``: trains, exports, judges; its report and history."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from pipeline.config import parse_params
from pipeline.denoise import OnnxDenoiser
from pipeline.simulate import simulate
from tests.conftest import tiny_params

pytest.importorskip("torch")


def test_the_stage_writes_a_denoiser_its_report_and_its_history(tmp_path):
    data = tiny_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    params = parse_params(data)
    folder = tmp_path / "data"
    folder.mkdir()
    for split, seed in (("val", 1), ("test", 2)):
        simulate(params.simulate, 48, seed).save(folder / f"{split}.npz")
    from pipeline.stages.train_denoiser import main

    out, report, history = tmp_path / "d.onnx", tmp_path / "r.json", tmp_path / "h.csv"
    args = ["--params", str(tmp_path / "params.yaml"), "--data", str(folder)]
    assert main([*args, "--out", str(out), "--report", str(report), "--history", str(history)]) == 0
    found = json.loads(report.read_text())
    assert found["samples"] == params.denoise.samples
    assert found["parity_max_of_tolerance"] <= 1 and found["parity_max_abs"] < 1e-2
    assert found["ratio_to_savitzky_golay"] == pytest.approx(
        found["denoiser_rmse"] / found["sg_rmse"]
    )
    assert found["raw_bands"] == found["denoiser_bands"] > 0
    rows = list(csv.DictReader(history.open()))
    assert [int(r["seen"]) for r in rows] == [params.denoise.samples]
    OnnxDenoiser(out)  # a denoiser, by its metadata
