import copy

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import ConfigError, load_params, parse_params, to_dict

from .conftest import ROOT


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_params_yaml_loads_and_round_trips(params):
    assert params.simulate.length == 512
    assert parse_params(to_dict(params)) == params


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "samples"), "ten", "train.samples: expected int, got str 'ten'"),
        (("train", "lr"), "fast", "train.lr: expected float"),
        (("simulate", "n_train"), -5, "simulate.n_train: expected a value >= 1, got -5"),
        (("simulate", "peaks", "count"), [-1, 3], "simulate.peaks.count[0]: expected a value >= 0"),
        (("simulate", "peaks", "width"), [30.0, 2.0], "simulate.peaks.width: empty or inverted"),
        (("simulate", "noise", "read"), [0.01, 0.01], "simulate.noise.read: empty or inverted"),
        (("simulate", "baseline", "anchors"), [12, 4], "simulate.baseline.anchors: empty or"),
        (("simulate", "peaks", "ratio"), [0.1], "simulate.peaks.ratio: expected [low, high]"),
        (("model", "arch"), "transformer", "model.arch: expected one of resunet, unet"),
        (("train", "precision"), "fp8", "train.precision: expected one of auto, fp32, bf16"),
        (("simulate", "baseline", "families"), {"spline": 0}, "at least one positive weight"),
        (("simulate", "baseline", "families"), {"fractal": 1}, "families.fractal: unknown key"),
        (("train", "shuffle"), True, None),  # unknown key: set below
        (("train", "batch_size"), True, "train.batch_size: expected int, got bool"),
        (("train", "warmup"), 1.5, "train.warmup: expected a value <= 1.0"),
        (("simulate", "noise", "shot"), [0.0, float("nan")], "expected a finite number"),
        (("model", "enc_kernel"), 6, "model.enc_kernel: expected an odd number, got 6"),
        (("model", "dec_kernel"), 4, "model.dec_kernel: expected an odd number, got 4"),
        (("simulate", "length"), 500, "simulate.length: 500 is not a multiple of 32"),
    ],
)
def test_bad_values_name_the_key(raw, path, value, message):
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    expected = message or f"{'.'.join(path)}: unknown key"
    assert expected in str(err.value)


def test_missing_key_and_unknown_section(raw):
    data = copy.deepcopy(raw)
    del data["train"]["seed"]
    with pytest.raises(ConfigError, match=r"train\.seed: missing"):
        parse_params(data)
    data = copy.deepcopy(raw)
    data["serve"] = {}
    with pytest.raises(ConfigError, match="serve: unknown key"):
        parse_params(data)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_cli_stops_before_any_work(raw, tmp_path, capsys):
    raw["simulate"]["n_test"] = -1
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    out = tmp_path / "sim"
    code = main(["--params", str(bad), "simulate", "--out", str(out)])
    assert code == 2
    assert "simulate.n_test: expected a value >= 1, got -1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ([0.03, 0.02, 0.01, 0.0], "evaluate.noise_bins: expected strictly increasing values"),
        ([0.0, 0.01, 0.01, 0.03], "(evaluate.noise_bins[1] = 0.01 is not below"),
        ([0.01], "evaluate.noise_bins: expected at least 2 values"),
    ],
)
def test_noise_bins_out_of_order_are_refused(raw, bins, message):
    raw["evaluate"]["noise_bins"] = bins
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_key_given_twice_is_refused_naming_it_and_its_lines(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    line = text.splitlines().index("  enc_kernel: 7") + 1
    twice = tmp_path / "params.yaml"
    twice.write_text(text.replace("  enc_kernel: 7\n", "  enc_kernel: 7\n  enc_kernel: 9\n"))
    with pytest.raises(ConfigError) as err:
        load_params(twice)
    assert str(err.value) == (
        f"{twice}: line {line + 1}: model.enc_kernel given twice (first on line {line}); "
        "YAML would keep the last silently: keep one"
    )
    twice.write_text(text.replace("\nmodel:\n", "\nmodel:\n  arch: unet\n", 1))  # nested too
    with pytest.raises(ConfigError, match=r"model\.arch given twice"):
        load_params(twice)
    twice.write_text(text + "\nevaluate:\n  batch_size: 8\n")  # a whole section
    with pytest.raises(ConfigError, match=r"line \d+: evaluate given twice"):
        load_params(twice)


def test_a_key_given_twice_stops_the_cli_in_one_line(tmp_path, capsys):
    text = (ROOT / "params.yaml").read_text()
    twice = tmp_path / "params.yaml"
    twice.write_text(text.replace("  seed: 0 ", "  seed: 0\n  seed: 1 ", 1))
    code = main(["--params", str(twice), "simulate", "--out", str(tmp_path / "sim")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "train.seed given twice" in err
    assert not (tmp_path / "sim").exists()
