"""``raman-baseline correct``'s outputs never touch inputs nor each other, whole or not at all."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from pipeline import correct_files, outputs

from .conftest import ROOT
from .test_correct import PARAMS, read_csv, run_correct, spectrum, stray, write_two_columns


def write_matrix(path, spectra=3, length=300):
    """A CSV matrix: the axis in the first row, a spectrum in each further row."""
    x, y = spectrum(length)
    rows = [x] + [y * (k + 1) for k in range(spectra)]
    np.savetxt(path, np.array(rows), delimiter=",")
    return path


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_point_of_a_map_and_an_input_of_its_name_both_survive(tmp_path, capsys):
    matrix = write_matrix(tmp_path / "m.csv")
    single = write_two_columns(tmp_path / "m_point002.csv", *spectrum(300, seed=5))
    out = tmp_path / "out"
    status, _ = run_correct(matrix, single, "-o", out, "--method", "arpls")
    assert status == 0
    stems = ["m_point001", "m_point002", "m_point003", "m_point002_2"]
    assert names(out) == sorted(f"{s}.{e}" for s in stems for e in ("csv", "png"))
    said = capsys.readouterr().out
    assert "4 spectra corrected: 8 files in" in said  # the count is what is there
    assert f"renamed: {single} -> {out / 'm_point002_2'}" in said
    assert np.allclose(read_csv(out / "m_point002.csv")[:, 1], 2 * spectrum(300)[1])
    assert np.allclose(read_csv(out / "m_point002_2.csv")[:, 1], spectrum(300, seed=5)[1])


def test_collisions_are_resolved_before_any_file_is_read(tmp_path):
    paths = [tmp_path / n for n in ("m.csv", "m_point002.csv", "m_point002_2.txt", "m.npz")]
    plan = outputs.plan_outputs(paths, tmp_path / "out")
    out = tmp_path / "out"
    # nothing exists: names are decided from the names alone, the same on every run
    assert plan.stems == [out / "m_csv", out / "m_point002", out / "m_point002_2", out / "m_npz"]
    paths = [tmp_path / n for n in ("m.csv", "m_point002.csv", "m_point002_2.txt")]
    plan = outputs.plan_outputs(paths, out)
    assert plan.stems == [out / "m", out / "m_point002_3", out / "m_point002_2"]
    assert plan.renamed == [(paths[1], out / "m_point002_3")]


def test_planning_many_inputs_takes_linear_time(tmp_path):
    import time

    paths = [tmp_path / f"scan_{i:05d}.txt" for i in range(10_000)] + [tmp_path / "scan.csv"]
    start = time.perf_counter()
    plan = outputs.plan_outputs(paths, tmp_path / "out")
    assert time.perf_counter() - start < 10  # 0.4 s here; the first version took 30 s per 1,000
    assert plan.renamed == [] and len(set(plan.stems)) == len(paths)


def test_an_outdir_holding_inputs_is_used_when_no_output_takes_an_input_name(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    x, y = spectrum(300)
    inside = out / "scan.txt"
    inside.write_text("".join(f"{a}\t{b}\n" for a, b in zip(x, y, strict=True)))
    before = inside.read_bytes()
    status, _ = run_correct(inside, "-o", out, "--method", "arpls")
    assert status == 0
    assert inside.read_bytes() == before
    assert names(out) == ["scan.csv", "scan.png", "scan.txt"]


def test_an_output_that_would_overwrite_an_input_is_refused_naming_both(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    inside = write_two_columns(out / "m_point002.csv", *spectrum(300))
    matrix = write_matrix(out / "m.txt")
    before = inside.read_bytes()
    status, message = run_correct(matrix, inside, "-o", out, "--method", "arpls")
    assert status == 1 and f"holds the input {inside}" in message and str(matrix) in message
    assert inside.read_bytes() == before and names(out) == ["m.txt", "m_point002.csv"]


def test_an_output_name_that_is_a_symlink_is_replaced_not_followed(tmp_path):
    victim = write_two_columns(tmp_path / "victim.csv", *spectrum(300, seed=1))
    before = victim.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / "scan.csv").symlink_to(victim)
    scan = write_two_columns(tmp_path / "scan.csv", *spectrum(300))
    status, _ = run_correct(scan, "-o", out, "--method", "arpls", "--no-plots")
    assert status == 0 and victim.read_bytes() == before
    assert not (out / "scan.csv").is_symlink()


# a map whose second point's PNG is where the run stops: by a signal, or the process killed
STOP = """
import os, signal, sys
from pipeline import correct_files, outputs
from pipeline.cli import main
how, calls, real = sys.argv[1], [], correct_files.plot_correction
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when run in background
def plot(path, *args):
    calls.append(path)
    if len(calls) == 3:  # the second point of the map, after the first file
        os.kill(os.getpid(), getattr(signal, how))
    real(path, *args)
correct_files.plot_correction = plot
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("how", "status"), [("SIGTERM", 143), ("SIGINT", 130), ("SIGKILL", -signal.SIGKILL)]
)
def test_a_map_stopped_half_way_leaves_none_of_its_outputs(tmp_path, how, status):
    good = write_two_columns(tmp_path / "a_good.csv", *spectrum(400))
    matrix = write_matrix(tmp_path / "map.csv")
    out = tmp_path / "out"
    argv = ["--params", PARAMS, "correct", str(good), str(matrix), "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", STOP, how, *argv, "--method", "arpls", "--no-progress"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == status, done.stderr
    visible = [n for n in names(out) if not n.startswith(".")]
    assert visible == ["a_good.csv", "a_good.png"]
    if how != "SIGKILL":  # a killed process cannot clean up: its hidden folder stays
        assert not stray(out)


def test_the_plan_is_made_before_any_work(tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr(correct_files, "read_spectra", lambda *a: read.append(a) or 1 / 0)
    out = tmp_path / "out"
    out.write_text("a file")
    with pytest.raises(outputs.OutputError, match="a file, not a folder"):
        correct_files.correct_files([tmp_path / "x.csv"], None, out, progress=False)
    assert read == []


def two_folders(tmp_path):
    """Inputs ``in/sub/x.csv`` and ``in/other/y.csv``; an empty folder ``elsewhere``."""
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "other").mkdir()
    x = write_two_columns(tmp_path / "in" / "sub" / "x.csv", *spectrum(300))
    y = write_two_columns(tmp_path / "in" / "other" / "y.csv", *spectrum(300))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return x, y, elsewhere


def test_a_symlink_inside_the_outdir_is_not_followed_out_of_it(tmp_path):
    x, y, elsewhere = two_folders(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    status, _ = run_correct(x, y, "-o", out, "--method", "arpls", "--no-plots")
    assert status == 1
    assert list(elsewhere.iterdir()) == []  # nothing written through the link
    assert (out / "other" / "y.csv").is_file()


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(
    tmp_path, monkeypatch, capsys
):
    x, y, elsewhere = two_folders(tmp_path)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    real_read = correct_files.read_spectra

    def read_then_swap(path, *args, **kwargs):  # checked, then swapped while x is read
        if path == x:
            (out / "sub").rmdir()
            (out / "sub").symlink_to(elsewhere)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(correct_files, "read_spectra", read_then_swap)
    status, _ = run_correct(x, y, "-o", out, "--method", "arpls")
    err = capsys.readouterr().err
    assert status == 1 and f"{out / 'sub'} leads out of the output folder" in err
    assert list(elsewhere.iterdir()) == []  # nothing written through the link, not even for a while
    assert names(out / "other") == ["y.csv", "y.png"]


def test_an_outdir_named_like_a_file_is_refused_and_not_made(tmp_path):
    path = write_two_columns(tmp_path / "scan.csv", *spectrum(300))
    status, message = run_correct(path, "-o", tmp_path / "result.csv", "--method", "arpls")
    assert status == 1 and "result.csv: names a file" in message and "folder" in message
    assert not (tmp_path / "result.csv").exists()  # it used to become a folder


def test_no_empty_outdir_is_left_when_every_input_fails(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,spectrum\n")
    status, message = run_correct(bad, "-o", tmp_path / "new", "--method", "arpls")
    assert status == 1 and message.endswith("1 file failed")
    assert not (tmp_path / "new").exists()  # made for the run, empty: removed
    kept = tmp_path / "kept"
    kept.mkdir()
    assert run_correct(bad, "-o", kept, "--method", "arpls")[0] == 1
    assert kept.is_dir()  # the user's own folder stays


def test_counts_are_said_in_the_singular_for_one(tmp_path, capsys):
    path = write_two_columns(tmp_path / "scan.csv", *spectrum(300))
    assert run_correct(path, "-o", tmp_path / "out", "--method", "arpls")[0] == 0
    said = capsys.readouterr().out
    assert "correcting 1 file with" in said and "1 spectrum corrected: 2 files in" in said


def test_an_uncalibrated_axis_is_named_pixel_with_a_note(tmp_path, capsys):
    y = spectrum(300)[1]
    path = write_two_columns(tmp_path / "pixels.csv", np.arange(300), y)  # 0, 1, 2, ...
    assert run_correct(path, "-o", tmp_path / "out", "--method", "arpls")[0] == 0
    header = (tmp_path / "out" / "pixels.csv").read_text().splitlines()[0]
    assert header == "pixel,intensity,baseline,corrected"  # was wavenumber, with no note
    assert f"note: {path}: {correct_files.UNCALIBRATED}" in capsys.readouterr().out
    calibrated = write_two_columns(tmp_path / "shift.csv", *spectrum(300))
    assert run_correct(calibrated, "-o", tmp_path / "out", "--method", "arpls")[0] == 0
    assert (tmp_path / "out" / "shift.csv").read_text().startswith("wavenumber,")


def test_a_users_own_file_of_an_outputs_name_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    path = write_two_columns(tmp_path / "in" / "scan.csv", *spectrum(300))
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "scan.csv"
    mine.write_text("my own notes\n")  # not an output of raman-baseline
    assert run_correct(path, "-o", out, "--method", "arpls")[0] == 1
    assert "is not an output of raman-baseline" in capsys.readouterr().err
    assert mine.read_text() == "my own notes\n" and names(out) == ["scan.csv"]  # no PNG either
    mine.unlink()
    assert run_correct(path, "-o", out, "--method", "arpls")[0] == 0
    assert run_correct(path, "-o", out, "--method", "arpls")[0] == 0  # a rerun replaces its own
    assert names(out) == ["scan.csv", "scan.png"]


def test_an_earlier_runs_outputs_are_known_as_ours(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    old = tmp_path / "old.png"
    Figure().savefig(old)  # matplotlib's own Software chunk: an output of an earlier version
    parent = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        np.savez(tmp_path / "b.npz", x=[1.0], y=[[1.0]], baseline=[[1.0]], corrected=[[0.0]])
        np.savez(tmp_path / "other.npz", a=[1.0])
        (tmp_path / "c.csv").write_text("wavenumber,intensity,baseline,corrected\n1,2,3,4\n")
        known = {n: outputs._replaceable(parent, n) for n in ("old.png", "b.npz", "c.csv")}
        assert all(known.values()), known
        assert not outputs._replaceable(parent, "other.npz")
        assert outputs._replaceable(parent, "absent.csv")
    finally:
        os.close(parent)
