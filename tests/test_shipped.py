"""The shipped model (``pipeline.shipped``) and ``raman-baseline ship`` (``pipeline.ship``)."""

import fnmatch
import json
import shutil
import tomllib

import numpy as np
import onnx
import pytest
import torch
import yaml

from pipeline import ship, shipped
from pipeline.checkpoint import load_checkpoint, save_checkpoint, torch_run
from pipeline.config import parse_params
from pipeline.export import export_onnx
from pipeline.inference import OnnxBaseline
from pipeline.model import ResUNet1D
from pipeline.normalise import normalise
from pipeline.simulate import simulate

from .conftest import ROOT, tiny_params


@pytest.fixture
def copy(tmp_path):
    """A copy of the shipped folder, free to break."""
    folder = tmp_path / "shipped"
    shutil.copytree(shipped.FOLDER, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def test_the_shipped_model_matches_its_card():
    model = shipped.load()
    card = model.card
    assert model.onnx.is_file() and model.checkpoint.is_file() and model.grid == 512
    assert sum(e["bytes"] for e in card["files"].values()) <= ship.MAX_BYTES
    for key in ("params", "git_commit", "data", "device", "wall_time_s", "notes", "storage"):
        assert card[key], key
    assert card["normalisation"] == card["params"]["model"].get("normalisation", "minmax")
    assert set(card["metrics"]) >= set(ship.BENCHMARKS)
    assert card["metrics"]["simulated_test"]["resunet"]["rmse"] > 0
    assert {"arpls", "aspls"} <= set(card["classical"])
    for benchmark in ship.REAL_BENCHMARKS:  # measured on the shipped network, every method
        assert {"resunet", "refined", "arpls", "aspls"} <= set(card["metrics"][benchmark])
    refined = model.refined()  # what correct --method refined runs
    assert refined["method"] in ("none", "arpls", "aspls") and refined["chosen_on"]


def test_installing_the_package_installs_every_shipped_file():
    """pyproject's package data holds the card and every file it lists (pip install .)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["pipeline.shipped"]
    for name in [shipped.CARD, *shipped.read_card()["files"]]:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
    assert "pipeline*" in setuptools["packages"]["find"]["include"]  # subpackages too


def test_the_shipped_checkpoint_loads_as_float32_and_agrees_with_the_onnx_network():
    model = shipped.load()
    network, model_params = load_checkpoint(model.checkpoint)
    assert all(p.dtype == torch.float32 for p in network.parameters())
    assert list(model_params.channels) == model.card["params"]["model"]["channels"]
    y = simulate(parse_params(tiny_params(simulate={"length": 512})).simulate, 8, seed=3).observed
    z = normalise(y)[0][:, None, :]
    onnx_out = OnnxBaseline(model.onnx, grid=512).run(z)
    # both hold float16-rounded weights (the ONNX file's with batch norm folded in)
    assert np.abs(torch_run(network)(z) - onnx_out).max() < 5e-3


def test_a_missing_file_is_one_line_naming_it(copy):
    (copy / "resunet1d.onnx").unlink()
    with pytest.raises(shipped.ShippedModelError, match="resunet1d.onnx is missing") as info:
        shipped.load(copy)
    assert "\n" not in str(info.value)


def test_a_file_that_differs_from_its_card_is_one_line_naming_it(copy):
    path = copy / "resunet1d.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # same size, one bit off
    path.write_bytes(bytes(data))
    with pytest.raises(shipped.ShippedModelError, match="resunet1d.pt does not match") as info:
        shipped.load(copy)
    assert "\n" not in str(info.value)


def test_a_missing_or_broken_card_is_one_line(copy):
    (copy / shipped.CARD).write_text("{")
    with pytest.raises(shipped.ShippedModelError, match="unreadable"):
        shipped.load(copy)
    (copy / shipped.CARD).unlink()
    with pytest.raises(shipped.ShippedModelError, match="card .* is missing"):
        shipped.load(copy)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny training run's outputs: checkpoint, ONNX export, params, a test set."""
    folder = tmp_path_factory.mktemp("run")
    data = tiny_params()
    params = parse_params(data)
    (folder / "params.yaml").write_text(yaml.safe_dump(data))
    torch.manual_seed(0)
    net = ResUNet1D(channels=params.model.channels).eval()
    save_checkpoint(folder / "model.pt", net.state_dict(), params.model)
    export_onnx(net, folder / "model.onnx", length=params.simulate.length)
    graph = onnx.load(str(folder / "model.onnx"))
    # as export writes it: the model's own normalisation
    onnx.helper.set_model_props(graph, {"normalisation": params.model.normalisation})
    onnx.save(graph, str(folder / "model.onnx"))
    simulate(params.simulate, 32, seed=5).save(folder / "test.npz")
    report = {m: {"log10_lam": 4.0} for m in ("arpls", "aspls")}
    (folder / "classical.json").write_text(json.dumps(report))
    (folder / "history.csv").write_text("epoch,seconds\n1,2.5\n2,3.0\n")
    return folder


def test_ship_writes_a_float16_folder_that_verifies_and_records_its_cost(run, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "--checkpoint", run / "model.pt", "--onnx", run / "model.onnx",
        "--params", run / "params.yaml", "--out", out, "--test", run / "test.npz",
        "--classical-report", run / "classical.json", "--history", run / "history.csv",
        "--notes", "a test", "--set", "metrics.rruff.resunet={\"rmse\": 0.5}",
    ]  # fmt: skip
    assert ship.main([str(a) for a in argv]) == 0
    model = shipped.load(out)
    card = model.card
    graph = onnx.load(str(model.onnx))
    normalisation = yaml.safe_load((run / "params.yaml").read_text())["model"]["normalisation"]
    assert {p.key: p.value for p in graph.metadata_props} == {"normalisation": normalisation}
    initializers = graph.graph.initializer
    assert {i.data_type for i in initializers} == {onnx.TensorProto.FLOAT16}
    saved = torch.load(model.checkpoint, weights_only=True)["model"]
    assert {t.dtype for t in saved.values()} == {torch.float16, torch.int64}
    assert card["storage"]["weights"] == "float16"
    assert abs(card["storage"]["rmse_change"]) < 0.01
    assert (
        card["metrics"]["semi_real"] is None and card["metrics"]["rruff"]["resunet"]["rmse"] == 0.5
    )
    assert card["metrics"]["simulated_test"]["spectra"] == 32
    assert card["classical"]["arpls"] == {
        "log10_lam": 4.0, "max_iter": 50, "tol": 0.001, "reference_length": 128
    }  # fmt: skip
    assert card["wall_time_s"] == {"history": 5.5, "total": 5.5}
    assert card["normalisation"] == normalisation and card["notes"] == "a test"
    assert card["grid"] == 128 and card["id"] == card["files"]["resunet1d.onnx"]["sha256"][:12]
    assert "float16 storage changed" in capsys.readouterr().out
    # shipping the same run again gives the same bytes
    again = tmp_path / "again"
    assert ship.main([str(a) for a in [*argv[:7], again]]) == 0
    for name in ship.NAMES.values():
        assert (again / name).read_bytes() == (out / name).read_bytes()


def test_set_field_refuses_a_value_without_a_key():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        ship.set_field({}, "metrics.rruff")


def real_report(method, log10_lam, n_val=27):
    """An evaluate_real report, as score_benchmark writes it (the parts ship reads)."""
    summary = lambda v: {"rmse": {"mean": v, "n": 30}, "mae": {"mean": v / 2, "n": 30}}  # noqa: E731
    means = (0.02, 0.018, 0.025, 0.026)
    return {
        **{m: summary(v) for m, v in zip(ship.CARD_METHODS, means, strict=True)},
        "ratio": {"rmse_resunet_over_best_classical": 0.8},
        "lam": {"arpls": 4.5, "aspls": 5.5, "refined": {"method": method, "log10_lam": log10_lam}},
        "val_grid": {},
        "n_val": n_val,
        "n_test": 30,
    }


def test_ship_records_the_real_benchmarks_and_the_refined_choice(run, tmp_path):
    (tmp_path / "rruff.json").write_text(json.dumps(real_report("aspls", 7.0)))
    (tmp_path / "semi.json").write_text(json.dumps(real_report("none", None, 200)))
    argv = [
        "--checkpoint", run / "model.pt", "--onnx", run / "model.onnx",
        "--params", run / "params.yaml", "--out", tmp_path / "out",
        "--benchmark-metrics", f"rruff={tmp_path / 'rruff.json'}",
        "--benchmark-metrics", f"semi_real={tmp_path / 'semi.json'}", "--refined-from", "rruff",
    ]  # fmt: skip
    assert ship.main([str(a) for a in argv]) == 0
    model = shipped.load(tmp_path / "out")
    rruff = model.card["metrics"]["rruff"]
    assert rruff["refined"] == {"rmse": 0.018, "mae": 0.009} and rruff["spectra"] == 30
    assert rruff["lam"]["refined"] == {"method": "aspls", "log10_lam": 7.0}
    assert model.card["metrics"]["semi_real"]["validation_spectra"] == 200
    assert model.refined() == {
        "method": "aspls", "log10_lam": 7.0, "max_iter": 100, "tol": 0.001,
        "reference_length": 128, "chosen_on": "the rruff validation part (27 spectra)",
    }  # fmt: skip
    with pytest.raises(ValueError, match="NAME=PATH"):
        ship.main([str(a) for a in [*argv[:8], "--benchmark-metrics", "rruf=x.json"]])
    with pytest.raises(ValueError, match="no --benchmark-metrics for it"):
        ship.main([str(a) for a in [*argv[:8], "--refined-from", "semi_real"]])
