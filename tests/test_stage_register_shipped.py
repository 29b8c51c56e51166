"""Stage ``register_shipped``: the shipped model registered with its lineage, once."""

import json

import pytest
import torch

from pipeline import registry, shipped
from pipeline.checkpoint import load_checkpoint
from pipeline.export import export_onnx
from pipeline.model import ResUNet1D
from pipeline.stages import register_shipped

from .conftest import register_production


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty workspace with its own store (``mlflow.db``), the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_on_a_new_store_it_becomes_production_with_its_lineage_and_only_once(store, capsys):
    out = store / "reports" / "registration_shipped.json"
    assert register_shipped.main(["--out", str(out)]) == 0
    record = json.loads(out.read_text())
    card = shipped.read_card()
    assert record["promoted"] and record["version"] == record["reference_version"] == "1"
    client = registry.connect()
    assert registry.production_version(client) == "1"
    assert registry.alias_version(client, register_shipped.ALIAS) == "1"
    tags = registry.model_version(client, "1").tags
    assert tags["source"] == "shipped" and tags["shipped_id"] == card["id"]
    assert tags["git_commit"] == card["git_commit"] and tags["device"] == card["device"]
    assert tags["params_sha256"] == card["params_sha256"]
    # every data digest the card records (sha256 from the registry, md5 from dvc.lock) is a tag
    digests = {f"data.{k.removeprefix('data.')}": v for k, v in card["data"]["sha256"].items()}
    digests |= {f"dvc.{k}": v for k, v in card["data"]["dvc_lock"].items()}
    assert digests and all(tags[k] == v for k, v in digests.items())
    rmse = card["metrics"]["simulated_test"]["resunet"]["rmse"]
    assert float(tags["test_resunet_rmse"]) == pytest.approx(rmse, rel=1e-5)
    # fine-tuning starts from the run's checkpoint: the float16 file, read as float32
    _, path = registry.checkpoint_of(client, "1", store / "dl")
    network, _ = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in network.parameters())
    # a second run registers nothing
    capsys.readouterr()
    assert register_shipped.main(["--out", str(out)]) == 0
    assert "already registered as resunet1d v1" in capsys.readouterr().out
    assert json.loads(out.read_text())["already_registered"]
    assert len(client.search_model_versions(f"name='{registry.MODEL_NAME}'")) == 1


def test_an_existing_production_version_keeps_production(store, tmp_path):
    torch.manual_seed(0)
    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(ResUNet1D(channels=(4, 6, 8, 10, 12, 14)), onnx_path, length=512)
    client = registry.connect(create=True)
    register_production(client, onnx_path)
    out = store / "registration_shipped.json"
    assert register_shipped.main(["--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert not record["promoted"] and record["version"] == "2"
    assert record["production_version"] == record["reference_version"] == "1"
    assert registry.production_version(client) == "1"
    assert registry.alias_version(client, register_shipped.ALIAS) == "2"


def test_a_shipped_file_that_differs_from_its_card_registers_nothing(store, tmp_path, monkeypatch):
    folder = tmp_path / "copy"
    folder.mkdir()
    files = [n for n in shipped.read_card()["files"] if n != "resunet1d.pt"]  # the denoiser too
    for name in (shipped.CARD, *files):
        (folder / name).write_bytes((shipped.FOLDER / name).read_bytes())
    monkeypatch.setattr(shipped, "FOLDER", folder)  # resunet1d.pt missing
    with pytest.raises(shipped.ShippedModelError, match="resunet1d.pt is missing"):
        register_shipped.main(["--out", str(store / "r.json")])
    assert not (store / "r.json").exists() and not (store / "mlflow.db").exists()
