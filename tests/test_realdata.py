"""The real-spectra folder: seeding, loading (raw and paired), the held-out split."""

import collections
import dataclasses
import re

import numpy as np
import pytest

from pipeline import realdata
from pipeline.correct_files import CSV_COLUMNS, write_outputs
from pipeline.realdata import RealDataError, RealSpectrum, load, seed, split
from pipeline.spectra_io import Spectra

from .conftest import EXPECTED, NOT_SPECTRA, REAL, needs_real

# byte-identical exports filed twice in the shared folder
DUPLICATES = [
    ("Horiba_MacroRAM/CC-124-TAP-2.txt", "Horiba_MacroRAM/chlamy_spectra/CC-124-TAP-2.txt"),
    ("extra/Horiba/MacroRAM/CC-125-TAP.txt", "Horiba_MacroRAM/chlamy_spectra/CC-125-TAP-1.txt"),
]
X = np.linspace(200.0, 1800.0, 64)
Y = 1000 + 50 * np.sin(X / 90) + 400 * np.exp(-(((X - 1000) / 8) ** 2))
BASE = 1000 + 50 * np.sin(X / 90)


# ------------------------------------------------------------------- the shared folder


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    dest = tmp_path_factory.mktemp("data") / "real"
    return dest, seed(REAL, dest)


@needs_real
def test_seed_copies_every_spectra_file_and_the_docs(seeded):
    dest, written = seeded
    copied = {p.relative_to(dest).as_posix() for p in written}
    assert copied == set(EXPECTED) | NOT_SPECTRA
    assert written == sorted(written)
    for name in copied:
        assert (dest / name).read_bytes() == (REAL / name).read_bytes()
    assert not [p for p in dest.rglob(".*")]  # no temporary files left


@needs_real
def test_load_reads_every_point_of_the_real_folder(seeded):
    records, problems = load(seeded[0])
    assert problems == []
    assert len(records) == sum(n for n, *_ in EXPECTED.values()) >= 90
    per_file = collections.Counter(r.file for r in records)
    assert per_file == {name: n for name, (n, *_) in EXPECTED.items()}
    for r in records:
        n, length, calibrated, _ = EXPECTED[r.file]
        assert r.x.shape == r.y.shape == (length,) and np.all(np.diff(r.x) > 0)
        assert r.calibrated is calibrated and r.baseline is None and not r.paired
        assert r.instrument == r.file.split("/")[0]
    assert len({(r.file, r.label) for r in records}) == len(records)


@needs_real
def test_real_split_keeps_files_and_duplicates_together(seeded):
    records, _ = load(seeded[0])
    for fraction, s in [(0.2, 0), (0.2, 1), (0.3, "x"), (0.5, 7)]:
        train, heldout = split(records, fraction, s)
        assert len(train) + len(heldout) == len(records) and train and heldout
        sides = {r.file for r in train}, {r.file for r in heldout}
        assert not sides[0] & sides[1]  # the points of a multi-point file on one side
        for instrument in {r.instrument for r in records}:  # every instrument has >= 2 files
            assert any(r.instrument == instrument for r in train)
            assert any(r.instrument == instrument for r in heldout)
        for a, b in DUPLICATES:
            assert (a in sides[1]) == (b in sides[1])
    first = split(records, 0.2, 3)
    again = split(load(seeded[0])[0], 0.2, 3)
    assert [[(r.file, r.label) for r in side] for side in first] == [
        [(r.file, r.label) for r in side] for side in again
    ]


# ------------------------------------------------------------------------------- seed


def _write(path, text="1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _rows(x=X, y=Y):
    return "".join(f"{a},{b}\n" for a, b in zip(x, y, strict=True))


def test_seed_picks_spectra_and_docs_only(tmp_path):
    src = tmp_path / "src"
    for name in ["A/a.txt", "A/sub/b.CSV", "c.npz", "README.md", "A/LICENSE.x", "d.tsv"]:
        _write(src / name, _rows())
    for name in [".hidden.txt", ".git/e.txt", "A/.DS_Store", "A/plot.png", "A/data.tar", "f"]:
        _write(src / name)
    written = seed(src, tmp_path / "dest")
    assert [p.relative_to(tmp_path / "dest").as_posix() for p in written] == sorted(
        ["A/LICENSE.x", "A/a.txt", "A/sub/b.CSV", "README.md", "c.npz", "d.tsv"]
    )


def test_seed_rewrites_only_what_changed_and_keeps_added_files(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    _write(src / "A/a.txt", _rows())
    _write(src / "A/b.txt", _rows())
    assert len(seed(src, dest)) == 2
    stamp = (dest / "A/a.txt").stat().st_mtime_ns
    assert seed(src, dest) == []  # identical files are not rewritten
    assert (dest / "A/a.txt").stat().st_mtime_ns == stamp
    _write(dest / "A/b.txt", "edited")
    _write(dest / "B/mine.txt", _rows())
    assert seed(src, dest) == [dest / "A/b.txt"]
    assert (dest / "A/b.txt").read_text() == _rows() and (dest / "B/mine.txt").exists()


def test_seed_refuses_a_missing_or_empty_source(tmp_path):
    with pytest.raises(RealDataError, match="no folder of real spectra"):
        seed(tmp_path / "nowhere", tmp_path / "dest")
    _write(tmp_path / "docs" / "README.md", "only a readme")
    _write(tmp_path / "docs" / "picture.png")
    with pytest.raises(RealDataError, match="holds no spectra files"):
        seed(tmp_path / "docs", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    _write(tmp_path / "src" / "a.txt", _rows())
    with pytest.raises(RealDataError, match="inside"):
        seed(tmp_path / "src", tmp_path / "src" / "copy")


# ------------------------------------------------------------------------------- load


def test_load_lists_unreadable_files_and_goes_on(tmp_path):
    _write(tmp_path / "A" / "good.txt", _rows())
    _write(tmp_path / "A" / "bad.txt", "shift,counts\nnot numbers\n")
    _write(tmp_path / "README.md", "text")
    _write(tmp_path / "loose.csv", _rows())
    records, problems = load(tmp_path)
    assert [(r.file, r.instrument) for r in records] == [
        ("A/good.txt", "A"),
        ("loose.csv", realdata.NO_INSTRUMENT),
    ]
    assert [(p.name, "bad.txt" in m) for p, m in problems] == [("bad.txt", True)]
    with pytest.raises(RealDataError, match="no folder"):
        load(tmp_path / "nowhere")


def test_paired_round_trip_through_corrects_csv(tmp_path):
    # exactly what `raman-baseline correct` writes: one CSV per point of a multi-point file
    y = np.stack([Y, 2 * Y, Y + 7])
    baseline = np.stack([BASE, 2 * BASE, BASE + 3])
    spectra = Spectra(X, y, tmp_path / "map.txt", ("p1", "p2", "p3"), True, "wire")
    written = write_outputs(spectra, baseline, tmp_path / "real/paired/Inst/map", plots=False)
    assert written[0].read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    _write(tmp_path / "real/Inst/map.txt", "#X\t#Y\t#Wave\t#Intensity\n" + "".join(
        f"{k}\t0\t{a}\t{b}\n" for k in range(3) for a, b in zip(X[::-1], Y[::-1], strict=True)
    ))  # fmt: skip
    records, problems = load(tmp_path / "real")
    assert problems == []
    paired = [r for r in records if r.paired]
    assert [r.file for r in paired] == [f"paired/Inst/map_point00{k}.csv" for k in (1, 2, 3)]
    for r, yy, bb in zip(paired, y, baseline, strict=True):
        assert r.instrument == "Inst" and r.label == r.file.split("/")[-1][:-4]
        assert np.allclose(r.x, X, rtol=1e-9) and np.allclose(r.y, yy, rtol=1e-9)
        assert np.allclose(r.baseline, bb, rtol=1e-9)
    # the per-point CSVs and the raw map they came from: one measurement, one side
    assert {r.measurement for r in records} == {"Inst/map"}
    for s in range(5):
        train, heldout = split(records + _others("Inst", 9), 0.3, s)
        sides = [{r.file for r in side if "map" in r.file} for side in (train, heldout)]
        assert min(len(sides[0]), len(sides[1])) == 0


def test_paired_with_corrected_only_and_decreasing_axis(tmp_path):
    text = "Wavenumber, Intensity, Corrected\n" + "".join(
        f"{a},{b},{b - c}\n" for a, b, c in zip(X[::-1], Y[::-1], BASE[::-1], strict=True)
    )
    _write(tmp_path / "paired" / "I" / "s.csv", text)
    (r,), problems = load(tmp_path)
    assert problems == [] and r.paired and r.calibrated
    assert np.array_equal(r.x, X) and np.allclose(r.y, Y) and np.allclose(r.baseline, BASE)


def _paired(**columns):
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    return ",".join(names) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)


BAD_PAIRED = {
    "no_baseline.csv": (_paired(wavenumber=X, intensity=Y), "no column 'baseline or corrected'"),
    "no_axis.csv": (_paired(shift=X, intensity=Y, baseline=BASE), "no column 'wavenumber'"),
    "nan.csv": (
        _paired(wavenumber=X, intensity=Y, baseline=np.where(np.arange(64) == 5, np.nan, BASE)),
        "column 'baseline' holds NaN or Inf \\(first at line 7\\)",
    ),
    "inf.csv": (
        _paired(wavenumber=X, intensity=np.where(np.arange(64) == 0, np.inf, Y), baseline=BASE),
        "column 'intensity' holds NaN or Inf",
    ),
    "unsorted.csv": (
        _paired(wavenumber=np.r_[X[:30], X[30:][::-1]], intensity=Y, baseline=BASE),
        "not monotonic",
    ),
    "duplicated.csv": (
        _paired(wavenumber=np.r_[X[:10], X[9:63]], intensity=Y, baseline=BASE),
        "duplicated axis value",
    ),
    "no_header.csv": (
        _paired(wavenumber=X, intensity=Y, baseline=BASE).split("\n", 1)[1],
        "no header",
    ),
    "word.csv": (_paired(wavenumber=X, intensity=Y, baseline=BASE) + "1,x,2\n", "'x' is not"),
    "ragged.csv": (_paired(wavenumber=X, intensity=Y, baseline=BASE) + "1,2\n", "line 66"),
    "mismatch.csv": (
        _paired(wavenumber=X, intensity=Y, baseline=BASE, corrected=Y - BASE + 1),
        "'corrected' is not intensity - baseline",
    ),
    "short.csv": (_paired(wavenumber=X[:8], intensity=Y[:8], baseline=BASE[:8]), "minimum"),
    "empty.csv": ("\n", "empty file"),
    "twice.csv": (
        _paired(wavenumber=X, intensity=Y, baseline=BASE).replace("intensity", "baseline", 1),
        "column 'baseline' appears twice",
    ),
    "not_csv.txt": (_rows(), "must be a CSV"),
}


def test_bad_paired_files_are_problems_naming_the_file(tmp_path):
    for name, (text, _) in BAD_PAIRED.items():
        _write(tmp_path / "paired" / "I" / name, text)
    records, problems = load(tmp_path)
    assert records == []
    found = {path.name: message for path, message in problems}
    assert set(found) == set(BAD_PAIRED)
    for name, (_, problem) in BAD_PAIRED.items():
        assert str(tmp_path / "paired" / "I" / name) in found[name]
        assert re.search(problem, found[name]), (name, found[name])


def test_records_are_plain_values():
    r = RealSpectrum("A/a.txt", "a", X, Y, "A", True)
    assert not r.paired and r.measurement == "A/a"
    assert realdata.measurement("paired/A/map_point012.csv") == "A/map"
    assert realdata.measurement("A/map_point012.txt") == "A/map"
    assert realdata.measurement("A/pointless.txt") == "A/pointless"


# ------------------------------------------------------------------------------ split


def _others(instrument, n, start=0):
    """``n`` one-point files of an instrument, each spectrum different from all others."""
    offset = 1e4 * sum(map(ord, instrument))
    return [
        RealSpectrum(f"{instrument}/f{k:03d}.txt", "p", X, Y + k + offset, instrument, True)
        for k in range(start, start + n)
    ]


def _side_of(records, fraction=0.3, s=0):
    train, heldout = split(records, fraction, s)
    return {r.file: "train" for r in train} | {r.file: "heldout" for r in heldout}


def test_split_is_deterministic_seeded_and_near_the_fraction():
    records = _others("A", 40) + _others("B", 20) + _others("C", 10)
    assert _side_of(records) == _side_of(list(reversed(records)))
    assert _side_of(records) != _side_of(records, s=1)
    heldout = [f for f, side in _side_of(records).items() if side == "heldout"]
    per = collections.Counter(f.split("/")[0] for f in heldout)
    assert per == {"A": 12, "B": 6, "C": 3}


def test_split_is_stable_when_files_are_added():
    old = _others("A", 30) + _others("B", 12)
    before = _side_of(old)
    after = _side_of(old + _others("A", 1, start=30))
    moved = [f for f in before if before[f] != after[f]]
    assert len(moved) <= 1 and all(f.startswith("A/") for f in moved)
    after = _side_of(old + _others("C", 3))  # another instrument: nothing moves
    assert all(before[f] == after[f] for f in before)


def test_every_instrument_of_two_files_is_on_both_sides():
    records = _others("A", 2) + _others("B", 3) + _others("C", 25)
    for s in range(20):
        for fraction in (0.05, 0.2, 0.9):
            sides = _side_of(records, fraction, s)
            for instrument in "ABC":
                mine = {side for f, side in sides.items() if f.startswith(instrument)}
                assert mine == {"train", "heldout"}


def test_identical_spectra_in_different_files_split_together():
    records = _others("A", 12) + _others("B", 12)
    copy = dataclasses.replace(records[3], file="B/copy_of_a3.txt", instrument="B")
    records.append(copy)
    groups = realdata.groups(records)
    assert groups["B/copy_of_a3"] == groups["A/f003"] == "A/f003"
    for s in range(10):
        sides = _side_of(records, 0.5, s)
        assert sides["B/copy_of_a3.txt"] == sides["A/f003.txt"]


def test_split_rejects_a_bad_fraction():
    for bad in (0.0, 1.0, -0.1, 2):
        with pytest.raises(ValueError, match="holdout_fraction"):
            split(_others("A", 3), bad)
