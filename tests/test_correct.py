"""``raman-baseline correct``: every real file, batches, classical methods, bad files, models."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pybaselines import Baseline

from pipeline import correct, correct_files, outputs, shipped
from pipeline.cli import main
from pipeline.export import export_onnx
from pipeline.model import ResUNet1D
from pipeline.normalise import LENGTH_MODES
from pipeline.spectra_io import read_spectra

from .conftest import (
    EXPECTED,
    REAL,
    ROOT,
    log_onnx_run,
    needs_real,
    real_files,
    register_production,
)

PARAMS = str(ROOT / "params.yaml")


def untrained_onnx(path: Path, channels: tuple[int, ...], seed: int) -> Path:
    """An untrained ResUNet-1D exported to ``path``, its weights drawn with ``seed``."""
    torch.manual_seed(seed)
    export_onnx(ResUNet1D(channels=channels), path, length=512)
    return path


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """An untrained tiny ResUNet-1D: fast, and any baseline it draws is a valid test."""
    return untrained_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", (4, 6, 8, 10, 12, 14), 0)


@pytest.fixture(scope="module")
def network(onnx_model):
    return correct.load_network(str(onnx_model), grid=512)


def run_correct(*args) -> tuple[int, str]:
    """``raman-baseline correct ...``: (exit status, the last line it wrote to stderr).

    What it wrote to stderr is written there again, for tests that read all of it.
    """
    argv = ["--params", PARAMS, "correct", *map(str, args), "--no-progress"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    sys.stderr.write(err.getvalue())
    lines = err.getvalue().strip().splitlines()
    return status, lines[-1] if status and lines else ""


def spectrum(length=700, seed=0, descending=False):
    """A smooth background with bands on a non-uniform axis (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(200.0, 3200.0, length))
    y = 5000 * np.exp(-x / 1500) + 800 + rng.normal(0, 5, length)
    for centre in (600.0, 1000.0, 1600.0, 2900.0):
        y += 700 * np.exp(-(((x - centre) / 9) ** 2))
    return (x[::-1], y[::-1]) if descending else (x, y)


def write_two_columns(path: Path, x, y, sep=",") -> Path:
    path.write_text("".join(f"{a}{sep}{b}\n" for a, b in zip(x, y, strict=True)))
    return path


def write_wire_map(path: Path, points=3, length=300) -> Path:
    x, y = spectrum(length, descending=True)
    lines = ["#X\t\t#Y\t\t#Wave\t\t#Intensity"]
    for k in range(points):
        lines += [f"{k}\t0\t{a}\t{b * (k + 1)}" for a, b in zip(x, y, strict=True)]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


COLUMNS = "intensity,baseline,corrected"  # after the axis column


def read_csv(path: Path) -> np.ndarray:
    header = path.read_text().splitlines()[0]  # pixel for an uncalibrated axis (OpenRAMAN)
    assert header.split(",", 1) in (["wavenumber", COLUMNS], ["pixel", COLUMNS])
    return np.genfromtxt(path, delimiter=",", skip_header=1)  # masked pixels' empty cells: NaN


def stray(outdir: Path) -> list[Path]:
    """Temporary files (``.name.tmp-PID.ext``) left behind."""
    return [p for p in outdir.rglob("*") if p.name.startswith(".") or ".tmp-" in p.name]


# ------------------------------------------------------------------------ every real file


@needs_real
def test_every_real_file(tmp_path, onnx_model, capsys):
    out = tmp_path / "out"
    files = real_files()
    status, message = run_correct(*files, "-o", out, "--model", onnx_model, "--no-plots")
    assert (status, message) == (0, "")
    expected_csvs = []
    for path in files:
        n = EXPECTED[path.relative_to(REAL).as_posix()][0]
        stem = out / path.relative_to(REAL).parent / path.stem
        names = [stem.name] if n == 1 else [f"{stem.name}_point{k:03d}" for k in range(1, n + 1)]
        spectra = read_spectra(path)
        for k, name in enumerate(names):
            csv = stem.with_name(name + ".csv")
            table = read_csv(csv)
            assert table.shape == (spectra.y.shape[1], 4)
            assert np.allclose(table[:, 0], spectra.x, rtol=1e-9)
            assert np.allclose(table[:, 1], spectra.y[k], rtol=1e-9)
            span = np.ptp(spectra.y[k])
            corrected = table[:, 1] - table[:, 2]
            assert np.allclose(table[:, 3], corrected, rtol=0, atol=1e-6 * span, equal_nan=True)
            expected_csvs.append(csv)
    assert {p for p in out.rglob("*") if p.is_file()} == set(expected_csvs)  # nothing else
    assert f"{len(expected_csvs)} spectra corrected" in capsys.readouterr().out


@needs_real
def test_a_png_per_spectrum_of_a_real_map(tmp_path, onnx_model):
    path = REAL / "Renishaw_Qontor/CC-124_TAP_plate_5x_3_points.txt"
    status, _ = run_correct(path, "-o", tmp_path, "--model", onnx_model)
    assert status == 0
    stems = [f"CC-124_TAP_plate_5x_3_points_point00{k}" for k in (1, 2, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{s}.{e}" for s in stems for e in ("csv", "png")
    )
    for s in stems:
        assert (tmp_path / f"{s}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- batches


@pytest.mark.parametrize("mode", LENGTH_MODES)
def test_npz_batch(tmp_path, onnx_model, mode):
    x, y0 = spectrum(300)
    y = np.stack([y0, 2 * y0 + 40, y0[::-1]])
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    out = tmp_path / "out"
    status, _ = run_correct(
        tmp_path / "batch.npz", "-o", out, "--model", onnx_model, "--length-mode", mode
    )
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["batch.npz"]
    with np.load(out / "batch.npz") as f:
        assert np.array_equal(f["x"], x) and np.array_equal(f["y"], y)
        assert f["baseline"].shape == f["corrected"].shape == (3, 300)
        assert np.allclose(f["corrected"], y - f["baseline"])
        assert np.isfinite(f["baseline"]).all()


def test_mixed_batch_keeps_good_files_and_lists_bad_ones(tmp_path, onnx_model, capsys):
    good = write_two_columns(tmp_path / "good.csv", *spectrum(500))
    wire = write_wire_map(tmp_path / "map 1.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    words = write_two_columns(tmp_path / "words.csv", *spectrum(100))
    words.write_text(words.read_text() + "12.5,oops\n")
    missing = tmp_path / "missing.txt"
    out = tmp_path / "out"
    status, message = run_correct(
        good, empty, wire, words, missing, "-o", out, "--model", onnx_model
    )
    assert status == 1 and "3 files failed" in message
    err = capsys.readouterr().err
    assert f"{empty}: empty file" in err
    assert f"{words}: line 101: 'oops' is not a number" in err
    assert f"{missing}: no such file" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(  # flat: the missing file does not move the common folder
        ["good.csv", "good.png"]
        + [f"map 1_point00{k}.{e}" for k in (1, 2, 3) for e in ("csv", "png")]
    )
    assert not stray(out)


def test_a_file_failing_half_way_leaves_none_of_its_outputs(
    tmp_path, onnx_model, monkeypatch, capsys
):
    calls = []
    real_plot = correct_files.plot_correction

    def plot_then_fail(path, *args):
        calls.append(path)
        if len(calls) == 2:  # the second point of the map
            raise OSError("disk full")
        real_plot(path, *args)

    monkeypatch.setattr(correct_files, "plot_correction", plot_then_fail)
    wire = write_wire_map(tmp_path / "map.txt")
    good = write_two_columns(tmp_path / "z_good.csv", *spectrum(400))
    out = tmp_path / "out"
    status, _ = run_correct(wire, good, "-o", out, "--model", onnx_model)
    assert status == 1 and "disk full" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["z_good.csv", "z_good.png"]


def test_outputs_of_same_named_files_do_not_collide(tmp_path):
    paths = [tmp_path / "a" / "s.txt", tmp_path / "b" / "s.txt", tmp_path / "b" / "s.csv"]
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        path.touch()
    stems = outputs.output_stems(paths, tmp_path / "out")
    assert stems == [
        tmp_path / "out" / "a" / "s",
        tmp_path / "out" / "b" / "s_txt",
        tmp_path / "out" / "b" / "s_csv",
    ]
    assert outputs.output_stems([Path("x/one.txt")], Path("o")) == [Path("o/one")]
    # a missing file (it will fail) does not pull the common folder up to /
    stems = outputs.output_stems([paths[0], Path("/missing.txt")], tmp_path / "out")
    assert stems == [tmp_path / "out" / "s", tmp_path / "out" / "missing"]


# -------------------------------------------------------------------- classical methods


@pytest.mark.parametrize("method", ["arpls", "aspls"])
def test_classical_methods_use_the_validated_lam_scaled_to_the_length(tmp_path, params, method):
    x, y = spectrum(700)
    path = write_two_columns(tmp_path / "s.txt", x[::-1], y[::-1], sep="\t")
    report = tmp_path / "classical.json"
    report.write_text(json.dumps({m: {"log10_lam": 3.0} for m in ("arpls", "aspls")}))
    out = tmp_path / "out"
    status, _ = run_correct(
        path, "-o", out, "--method", method, "--classical-report", report, "--no-plots"
    )
    assert status == 0 and sorted(p.name for p in out.iterdir()) == ["s.csv"]
    table = read_csv(out / "s.csv")
    settings = getattr(params.classical, method)
    lam = 1e3 * (700 / params.simulate.length) ** 4
    fit = getattr(Baseline(x), method)(y, lam=lam, max_iter=settings.max_iter, tol=settings.tol)
    assert np.allclose(table[:, 2], fit[0], rtol=1e-8, atol=1e-6)


def test_classical_lam_without_a_report_is_the_shipped_cards(tmp_path, capsys, monkeypatch):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    monkeypatch.chdir(tmp_path)  # no reports/classical.json here
    status, _ = run_correct(path, "-o", tmp_path / "out", "--method", "arpls")
    assert status == 0
    chosen = shipped.read_card()["classical"]["arpls"]
    assert (
        f"log10(lam) = {chosen['log10_lam']:g} at {chosen['reference_length']} points (chosen on "
        "validation, recorded in the shipped model's card" in capsys.readouterr().out
    )


def write_refined_report(path: Path, method: str, log10_lam: float | None) -> Path:
    path.write_text(json.dumps({"lam": {"refined": {"method": method, "log10_lam": log10_lam}}}))
    return path


def test_refined_is_the_network_plus_the_classical_fit_of_its_residual(
    tmp_path, params, onnx_model, network, capsys
):
    x, y = spectrum(700)
    path = write_two_columns(tmp_path / "s.txt", x, y, sep="\t")
    report = write_refined_report(tmp_path / "metrics_rruff.json", "arpls", 3.0)
    out = tmp_path / "out"
    args = ("--model", onnx_model, "--method", "refined", "--no-plots")
    status, _ = run_correct(path, "-o", out, *args, "--refined-report", report)
    assert status == 0
    assert "refined: arpls of the network's residual, log10(lam) = 3 at 512" in (
        capsys.readouterr().out
    )
    first = network.baselines(x, y)[0]
    settings = params.classical.arpls
    lam = 1e3 * (700 / params.simulate.length) ** 4
    fit = Baseline(x).arpls(y - first, lam=lam, max_iter=settings.max_iter, tol=settings.tol)
    assert np.allclose(read_csv(out / "s.csv")[:, 2], first + fit[0], rtol=1e-6, atol=1e-6)
    # "none" chosen on validation: the network alone
    report = write_refined_report(tmp_path / "none.json", "none", None)
    status, _ = run_correct(path, "-o", tmp_path / "none", *args, "--refined-report", report)
    assert status == 0
    assert np.allclose(read_csv(tmp_path / "none" / "s.csv")[:, 2], first, rtol=1e-8)


def test_refined_without_a_report_uses_the_shipped_cards_choice(tmp_path, onnx_model, capsys):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    status, _ = run_correct(path, "-o", tmp_path / "out", "--model", onnx_model, "--no-plots")
    assert status == 0  # refined is the default method
    chosen = shipped.load().refined()
    expected = (
        f"refined: {chosen['method']} of the network's residual"
        if chosen["method"] != "none"
        else "refined: the network alone"
    )
    assert expected in capsys.readouterr().out


def test_a_refined_report_named_but_missing_or_without_a_choice_is_an_error(tmp_path, capsys):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(100))
    status, message = run_correct(
        path, "-o", tmp_path / "out", "--refined-report", tmp_path / "no.json"
    )
    assert status == 1 and "--refined-report" in message and "no such file" in message
    (tmp_path / "empty.json").write_text("{}")
    status, message = run_correct(
        path, "-o", tmp_path / "out", "--refined-report", tmp_path / "empty.json"
    )
    assert status == 1 and "no lam.refined in it" in message
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ models


def test_missing_onnx_file(tmp_path):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(100))
    status, message = run_correct(path, "-o", tmp_path / "out", "--model", tmp_path / "nope.onnx")
    assert status == 1 and "no ONNX model at" in message
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    status, message = run_correct(path, "-o", tmp_path / "out", "--model", tmp_path / "bad.onnx")
    assert status == 1 and "not a loadable ONNX model" in message
    assert not (tmp_path / "out").exists()


def test_registry_problem_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    path = write_two_columns(tmp_path / "s.csv", *spectrum(100))
    status, _ = run_correct(path, "-o", tmp_path / "out")
    assert status == 1
    assert "raman-baseline correct: no MLflow store at" in capsys.readouterr().err


def test_production_model_from_a_real_store(tmp_path, monkeypatch, onnx_model, network):
    from pipeline import registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = registry.connect(create=True)
    register_production(client, onnx_model, run_name="correct test")

    x, y = spectrum(600)
    path = write_two_columns(tmp_path / "s.csv", x, y)
    status, _ = run_correct(path, "-o", tmp_path / "out", "--no-plots", "--method", "resunet")
    assert status == 0
    table = read_csv(tmp_path / "out" / "s.csv")
    assert np.allclose(table[:, 2], network.baselines(x, y)[0], rtol=1e-8)


def test_a_model_that_is_neither_a_uri_nor_onnx_is_named(tmp_path):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    status, message = run_correct(path, "-o", tmp_path / "out", "--model", "models/resunet.pt")
    assert status == 1
    assert message.startswith("raman-baseline correct: --model models/resunet.pt: expected a")


def test_a_classical_report_named_but_missing_is_an_error(tmp_path):
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    missing = tmp_path / "nope.json"
    args = ["-o", tmp_path / "out", "--method", "arpls", "--classical-report", missing]
    status, message = run_correct(path, *args)
    assert (
        status == 1
        and message == f"raman-baseline correct: --classical-report {missing}: no such file"
    )
    assert not (tmp_path / "out").exists()


def test_an_outdir_holding_an_input_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    inside = write_two_columns(out / "scan.csv", *spectrum(300))
    before = inside.read_bytes()
    status, message = run_correct(inside, "-o", out, "--method", "arpls")
    assert status == 1 and "holds the input" in message and str(inside) in message
    assert inside.read_bytes() == before and sorted(out.iterdir()) == [inside]


def test_an_outdir_that_is_a_file_is_refused_before_any_work(tmp_path):
    path = write_two_columns(tmp_path / "scan.csv", *spectrum(300))
    afile = tmp_path / "afile"
    afile.write_text("x")
    status, message = run_correct(path, "-o", afile, "--method", "arpls")
    assert status == 1 and message == f"raman-baseline correct: -o {afile}: a file, not a folder"


def test_sigterm_half_way_through_a_map_leaves_none_of_its_outputs(
    tmp_path, onnx_model, monkeypatch
):
    import os
    import signal

    calls = []
    real_plot = correct_files.plot_correction

    def plot_then_terminated(path, *args):
        calls.append(path)
        if len(calls) == 3:  # the second point of the map, after the first file
            os.kill(os.getpid(), signal.SIGTERM)
        real_plot(path, *args)

    monkeypatch.setattr(correct_files, "plot_correction", plot_then_terminated)
    good = write_two_columns(tmp_path / "a_good.csv", *spectrum(400))
    wire = write_wire_map(tmp_path / "map.txt")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        run_correct(good, wire, "-o", out, "--model", onnx_model)
    assert exc.value.code == 143
    assert sorted(p.name for p in out.iterdir()) == ["a_good.csv", "a_good.png"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was


def test_an_outdir_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    path = write_two_columns(tmp_path / "scan.csv", *spectrum(300))
    status, message = run_correct(path, "-o", "/proc/raman-baseline-out", "--method", "arpls")
    assert status == 1 and "-o /proc/raman-baseline-out: cannot write there" in message


# ------------------------------------------------------------- which model, from anywhere


def test_correct_from_a_users_folder_uses_the_shipped_model_and_says_so(tmp_path):
    """No params.yaml, no store, no MLFLOW_TRACKING_URI: the shipped model, named."""
    folder = tmp_path / "my data"
    folder.mkdir()
    write_two_columns(folder / "scan.txt", *spectrum(700), sep="\t")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipeline.cli", "correct", "scan.txt", "-o", "out"]
    done = subprocess.run(
        [*cmd, "--no-progress"], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["scan.csv", "scan.png"]
    card = shipped.read_card()
    assert f"the shipped model resunet1d shipped {card['id']}" in done.stdout
    assert "no model registry found" in done.stdout
    assert "refined: " in done.stdout and "recorded in the shipped model's card" in done.stdout
    table = read_csv(folder / "out" / "scan.csv")
    x, y = spectrum(700)
    network = correct.load_network("shipped", 0).baselines
    expected = correct.refined_method(network, None, None)[0](x, y)[0]  # the default method
    assert np.allclose(table[:, 2], expected, rtol=1e-6, atol=1e-6)


def test_a_shipped_file_that_differs_from_its_card_stops_correct(tmp_path, monkeypatch, capsys):
    """One line, exit 1, nothing written, and no other model used instead."""
    folder = tmp_path / "shipped"
    shutil.copytree(shipped.FOLDER, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    onnx_file = folder / "resunet1d.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(shipped, "FOLDER", folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    status, message = run_correct(path, "-o", tmp_path / "out")
    assert status == 1
    assert message.startswith("raman-baseline correct: the shipped model's file ")
    assert "resunet1d.onnx does not match model_card.json" in message
    assert not (tmp_path / "out").exists()
    onnx_file.unlink()
    status, message = run_correct(path, "-o", tmp_path / "out", "--model", "shipped")
    assert status == 1 and "resunet1d.onnx is missing" in message


@pytest.mark.parametrize("as_uri", [True, False])
def test_store_names_the_registry(tmp_path, monkeypatch, onnx_model, network, capsys, as_uri):
    """--store (a URI or a SQLite file) picks the registry; its production model is used."""
    from pipeline import registry

    db = tmp_path / "elsewhere" / "mlflow.db"
    client = registry.connect(f"sqlite:///{db}", create=True)
    register_production(client, onnx_model, run_name="store test")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no mlflow.db here
    x, y = spectrum(600)
    path = write_two_columns(work / "s.csv", x, y)
    store = f"sqlite:///{db}" if as_uri else str(db)
    status, _ = run_correct(
        path, "-o", work / "out", "--no-plots", "--store", store, "--method", "resunet"
    )
    assert status == 0
    assert (
        f"models:/resunet1d@production in sqlite:///{db} (from --store)" in capsys.readouterr().out
    )
    table = read_csv(work / "out" / "s.csv")
    assert np.allclose(table[:, 2], network.baselines(x, y)[0], rtol=1e-8)


def test_a_local_store_is_used_and_never_passed_over(tmp_path, monkeypatch, capsys):
    """A mlflow.db in the working folder is the registry: if it fails, correct fails."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlflow.db").write_bytes(b"not a database, but here")
    path = write_two_columns(tmp_path / "s.csv", *spectrum(300))
    status, message = run_correct(path, "-o", tmp_path / "out")
    assert status == 1 and "mlflow.db is not an SQLite database" in message


# ------------------------------------------------------------- the fast variant by default


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory):
    """A narrower untrained network than :func:`onnx_model`: its baselines differ."""
    return untrained_onnx(tmp_path_factory.mktemp("fast") / "fast.onnx", (4, 4, 6, 6, 8, 8), 1)


def gate_figures(ratios: dict[str, float]) -> dict[str, float]:
    """The figures ``register_fast`` logs: the variant's RMSE ``ratio`` x production's 0.01."""
    out = {}
    for name, ratio in ratios.items():
        out |= {f"gate_{name}_rmse": 0.01 * ratio, f"gate_{name}_production_rmse": 0.01}
    return out


def register_variant(client, onnx_path: Path, reference: str, ratios: dict[str, float]) -> str:
    """Register ``onnx_path`` as ``register_fast`` does: ``fast``, figures against ``reference``."""
    from pipeline import registry

    run_id, uri = log_onnx_run(client, onnx_path, test_metrics=gate_figures(ratios))
    tags = {"variant": "fast", "reference_version": reference}
    version = client.create_model_version(registry.MODEL_NAME, uri, run_id=run_id, tags=tags)
    client.set_registered_model_alias(registry.MODEL_NAME, registry.FAST, version.version)
    return str(version.version)


WITHIN = {"simulated": 1.02, "semireal": 1.05, "rruff": 0.97}  # 1.05 x is still within


@pytest.fixture
def two_models(tmp_path, monkeypatch, onnx_model):
    """A store in ``tmp_path`` with production v1 (``onnx_model``) and a spectrum file."""
    from pipeline import registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = registry.connect(create=True)
    register_production(client, onnx_model, run_name="production")
    x, y = spectrum(600)
    return client, write_two_columns(tmp_path / "s.csv", x, y), x, y


def corrected_by(tmp_path, path, *args) -> np.ndarray:
    """The network's baseline ``correct`` wrote (``--method resunet``: the network alone)."""
    status, _ = run_correct(
        path, "-o", tmp_path / "out", "--no-plots", "--method", "resunet", *args
    )
    assert status == 0
    return read_csv(tmp_path / "out" / "s.csv")[:, 2]


def test_the_fast_variant_is_used_when_within_the_ratio_of_production(
    tmp_path, two_models, fast_model, capsys
):
    client, path, x, y = two_models
    version = register_variant(client, fast_model, "1", WITHIN)
    baseline = corrected_by(tmp_path, path)
    summary = capsys.readouterr().out.splitlines()[0]
    assert f"models:/resunet1d/{version} in sqlite:///" in summary
    assert f"the fast variant v{version} (within 5% of production v1 on every benchmark)" in summary
    fast = correct.load_network(str(fast_model), grid=512)
    assert np.allclose(baseline, fast.baselines(x, y)[0], rtol=1e-8)


@pytest.mark.parametrize(
    "case, why",
    [
        ("over on rruff", "has rruff RMSE 1.060 x production v1's (over 1.05 x)"),
        ("no semireal figures", "has no semireal RMSE recorded against production v1"),
        ("against another production", "was measured against v3, not production v1"),
        ("production moved since", "was measured against v1, not production v3"),
    ],
)
def test_production_is_used_when_the_fast_variant_does_not_qualify(
    tmp_path, two_models, fast_model, network, capsys, case, why
):
    from pipeline import registry

    client, path, x, y = two_models
    ratios = dict(WITHIN)
    if case == "over on rruff":
        ratios["rruff"] = 1.06
    if case == "no semireal figures":
        del ratios["semireal"]
    reference = "3" if case == "against another production" else "1"
    version = register_variant(client, fast_model, reference, ratios)  # v2
    if case in ("against another production", "production moved since"):
        source = client.get_model_version(registry.MODEL_NAME, "1").source
        v3 = client.create_model_version(registry.MODEL_NAME, source).version  # v1's network
        assert str(v3) == "3"
        if case == "production moved since":
            client.set_registered_model_alias(registry.MODEL_NAME, registry.PRODUCTION, "3")
    baseline = corrected_by(tmp_path, path)
    summary = capsys.readouterr().out.splitlines()[0]
    assert "models:/resunet1d@production in sqlite:///" in summary
    assert f"(no fast variant used: v{version} {why})" in summary
    assert np.allclose(baseline, network.baselines(x, y)[0], rtol=1e-8)


@pytest.mark.parametrize("named", ["production", "models:/resunet1d@production"])
def test_a_model_named_wins_over_a_qualifying_fast_variant(
    tmp_path, two_models, fast_model, network, capsys, named
):
    client, path, x, y = two_models
    register_variant(client, fast_model, "1", WITHIN)
    baseline = corrected_by(tmp_path, path, "--model", named)
    summary = capsys.readouterr().out.splitlines()[0]
    assert "models:/resunet1d@production in sqlite:///" in summary and "fast" not in summary
    assert np.allclose(baseline, network.baselines(x, y)[0], rtol=1e-8)


@pytest.mark.parametrize(
    "options",
    [[], ["--method", "arpls"], ["--method", "resunet", "--length-mode", "native"]],
    ids=["default", "arpls", "native"],
)
def test_a_short_spectrum_of_the_minimum_length_is_corrected(tmp_path, options):
    """16 points (``MIN_POINTS``; was 32, which refused the 25-point step-scan case cut)."""
    x = np.linspace(2580.0, 2600.0, 16)
    y = 100.0 + 0.2 * x + 50.0 * np.exp(-(((x - 2590.0) / 1.5) ** 2))
    path = tmp_path / "short.txt"
    np.savetxt(path, np.column_stack([x, y]))
    args = ["correct", str(path), "-o", str(tmp_path / "out"), "--no-progress", "--no-plots"]
    assert main(args + options) == 0
    table = np.genfromtxt(tmp_path / "out" / "short.csv", delimiter=",", names=True)
    assert len(table) == 16 and np.isfinite(table["corrected"]).all()
