"""The shipped denoiser: the card's optional role ``denoiser``, ``raman-baseline ship-denoiser``."""

import json
import shutil

import pytest
import torch

from pipeline import ship, shipped
from pipeline.cli import main
from pipeline.denoise import DenoiserError
from pipeline.denoiser import Denoiser, export_denoiser
from pipeline.files import write_json
from pipeline.ship_denoiser import NAME, ShipDenoiserError, ship_denoiser

from .conftest import ROOT

PARAMS = ROOT / "params.yaml"
BASELINE_MODEL = shipped.FOLDER / "resunet1d.onnx"  # a network, not a denoiser


def tiny_denoiser(path):
    """An untrained tiny denoiser at ``path``: any answer it gives tests the plumbing."""
    torch.manual_seed(0)
    export_denoiser(Denoiser(width=4, dilations=(1, 2)), path)
    return path


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    return tiny_denoiser(tmp_path_factory.mktemp("denoiser") / "tiny_denoiser.onnx")


def shipped_copy(folder, denoiser=None):
    """A copy of the shipped folder, with no denoiser, or with ``denoiser`` shipped into it."""
    shutil.copytree(shipped.FOLDER, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    card = shipped.read_card(folder)
    for name in [n for n, e in card["files"].items() if e["role"] == "denoiser"]:
        (folder / name).unlink()  # the real folder may hold one: these tests choose their own
        del card["files"][name]
    card.pop("denoiser", None)
    write_json(folder / shipped.CARD, card)
    if denoiser is not None:
        ship_denoiser(denoiser, folder, PARAMS)
    return folder


def test_a_card_without_a_denoiser_has_none(tmp_path):
    model = shipped.load(shipped_copy(tmp_path / "shipped"))
    assert model.denoiser is None and model.onnx.is_file()


def test_ship_denoiser_copies_it_and_records_it_on_the_card(tmp_path, denoiser):
    folder = shipped_copy(tmp_path / "shipped")
    before = shipped.read_card(folder)
    report = tmp_path / "denoise.json"
    report.write_text(json.dumps({"rmse_ratio_to_savgol": 0.5, "band_height_error": 0.02}))
    card = ship_denoiser(denoiser, folder, PARAMS, report)
    model = shipped.load(folder)  # verified: size and sha256 of every file, the denoiser's too
    assert model.denoiser == folder / NAME
    assert model.denoiser.read_bytes() == denoiser.read_bytes()
    entry = card["files"][NAME]
    assert entry["role"] == "denoiser" and entry["sha256"] == shipped.sha256(denoiser)
    assert entry["bytes"] == denoiser.stat().st_size
    section = card["denoiser"]
    assert section["params"]["dilations"] == [1, 2, 4, 8, 16, 8, 4, 2, 1]  # params.yaml's
    assert section["report"]["figures"]["rmse_ratio_to_savgol"] == 0.5
    assert section["source"]["sha256"] == entry["sha256"]
    assert section["onnx_metadata"]["role"] == "denoiser"
    unchanged = {k: v for k, v in card.items() if k not in ("files", "denoiser")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("files", "denoiser")}
    assert shipped.read_card(folder) == card


def test_a_denoiser_that_differs_from_the_card_is_one_line_naming_it(tmp_path, denoiser):
    folder = shipped_copy(tmp_path / "shipped", denoiser)
    data = bytearray((folder / NAME).read_bytes())
    data[len(data) // 2] ^= 1
    (folder / NAME).write_bytes(bytes(data))
    with pytest.raises(shipped.ShippedModelError, match=f"{NAME} does not match") as info:
        shipped.load(folder)
    assert "\n" not in str(info.value)
    (folder / NAME).unlink()
    with pytest.raises(shipped.ShippedModelError, match=f"{NAME} is missing"):
        shipped.load(folder)


def test_a_card_with_two_denoisers_is_refused(tmp_path, denoiser):
    folder = shipped_copy(tmp_path / "shipped", denoiser)
    card = shipped.read_card(folder)
    card["files"]["other.onnx"] = card["files"][NAME]
    (folder / shipped.CARD).write_text(json.dumps(card))
    with pytest.raises(shipped.ShippedModelError, match="names 2 denoiser files, not 0 or 1"):
        shipped.read_card(folder)


def test_a_baseline_model_is_not_shipped_as_the_denoiser(tmp_path):
    folder = shipped_copy(tmp_path / "shipped")
    before = (folder / shipped.CARD).read_bytes()
    with pytest.raises(DenoiserError, match="has no denoising output"):
        ship_denoiser(BASELINE_MODEL, folder, PARAMS)
    assert (folder / shipped.CARD).read_bytes() == before and not (folder / NAME).exists()


def test_a_denoiser_over_the_size_limit_is_refused(tmp_path, denoiser, monkeypatch):
    folder = shipped_copy(tmp_path / "shipped")
    before = (folder / shipped.CARD).read_bytes()
    monkeypatch.setattr(ship, "MAX_BYTES", sum(p.stat().st_size for p in folder.glob("*.onnx")))
    with pytest.raises(ShipDenoiserError, match="over"):
        ship_denoiser(denoiser, folder, PARAMS)
    assert (folder / shipped.CARD).read_bytes() == before and not (folder / NAME).exists()


def test_a_missing_report_is_one_line_and_writes_nothing(tmp_path, denoiser):
    folder = shipped_copy(tmp_path / "shipped")
    with pytest.raises(ShipDenoiserError, match="--report .*no such file"):
        ship_denoiser(denoiser, folder, PARAMS, tmp_path / "none.json")
    assert not (folder / NAME).exists()


def test_the_command_ships_it_and_a_second_one_replaces_it(tmp_path, denoiser, capsys):
    folder = shipped_copy(tmp_path / "shipped")
    argv = ["--params", str(PARAMS), "ship-denoiser", str(denoiser), "--out", str(folder)]
    assert main(argv) == 0
    assert f"shipped the denoiser {denoiser} into {folder / NAME}" in capsys.readouterr().out
    other = tmp_path / "other.onnx"
    other.write_bytes(denoiser.read_bytes())
    assert main([*argv[:3], str(other), *argv[4:]]) == 0
    card = shipped.load(folder).card
    assert card["denoiser"]["source"]["path"] == str(other)
    assert [e["role"] for e in card["files"].values()].count("denoiser") == 1


def test_the_command_refuses_a_baseline_model_in_one_line(tmp_path, capsys):
    folder = shipped_copy(tmp_path / "shipped")
    argv = ["ship-denoiser", str(BASELINE_MODEL), "--out", str(folder), "--params", str(PARAMS)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{BASELINE_MODEL} has no denoising output" in err[0]


def test_the_card_records_the_params_of_the_profile_it_was_trained_with(tmp_path, denoiser):
    folder = shipped_copy(tmp_path / "shipped")
    card = ship_denoiser(denoiser, folder, PARAMS, None, profile="cpu_long")
    assert card["denoiser"]["profile"] == "cpu_long"
    assert card["denoiser"]["params"]["samples"] == 131072  # not params.yaml's 8,192


def test_a_report_of_another_profile_than_the_one_given_is_refused(tmp_path, denoiser, capsys):
    """``--profile`` is easy to forget (docs/denoising.md's recipe had none): a report of a
    cpu_long run (131,072 spectra) shipped without it would be recorded with 8,192."""
    folder = shipped_copy(tmp_path / "shipped")
    report = tmp_path / "denoiser.json"
    report.write_text(json.dumps({"samples": 131072, "denoiser_rmse": 0.004}))
    with pytest.raises(ShipDenoiserError, match="trained on 131,072 spectra.*is 8,192") as info:
        ship_denoiser(denoiser, folder, PARAMS, report)
    assert "--profile cpu_long" in str(info.value) and "\n" not in str(info.value)
    assert not (folder / NAME).exists()
    argv = ["ship-denoiser", str(denoiser), "--out", str(folder), "--params", str(PARAMS)]
    assert main([*argv, "--report", str(report)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name the params file and --profile" in err[0]
    assert main([*argv, "--report", str(report), "--profile", "cpu_long"]) == 0
    assert shipped.load(folder).card["denoiser"]["params"]["samples"] == 131072
