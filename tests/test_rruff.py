"""pipeline/rruff.py: the RRUFF pairs read from the shared files, their split, bad pairs."""

import os
import shutil

import numpy as np
import pytest

from pipeline import rruff
from pipeline.cli import main

from .conftest import RRUFF, tiny_params

needs_rruff = pytest.mark.skipif(
    not RRUFF.is_dir() and not os.environ.get("CI"), reason=f"no RRUFF pairs at {RRUFF}"
)


@pytest.fixture(scope="module")
def pairs():
    return rruff.read_pairs(RRUFF)


@needs_rruff
def test_the_57_pairs_read_on_equal_axes_with_the_reference_baseline(pairs):
    assert len(pairs) == 57
    assert len(set(pairs.sample)) == 19  # crystal mounts, three orientations each
    assert {rruff.mineral_of(n) for n in pairs.names} == {"Adamite", "Aegirine", "Aenigmatite"}
    for x, raw, processed, ref in zip(
        pairs.x, pairs.raw, pairs.processed, pairs.reference, strict=True
    ):
        assert 1000 <= x.size <= 1300 and np.all(np.diff(x) > 0)
        assert 40 < x[0] < 200 and 1400 < x[-1] < 1600  # Raman shift, cm-1
        assert raw.shape == processed.shape == x.shape
        assert processed.min() == 0.0  # clipped at 0 by the curators
        assert np.array_equal(ref, raw - processed)
        assert (processed == 0).sum() <= 2  # the clipped points the module doc counts


@needs_rruff
def test_split_by_mount_is_deterministic_disjoint_and_covers_every_mineral(pairs):
    parts = rruff.split(pairs)
    again = rruff.split(rruff.read_pairs(RRUFF))
    assert {p: v.names for p, v in parts.items()} == {p: v.names for p, v in again.items()}
    val, test = parts["val"], parts["test"]
    assert (len(val), len(test)) == (27, 30)
    assert not set(val.sample) & set(test.sample)
    assert sorted(val.names + test.names) == sorted(pairs.names)
    for part in parts.values():
        assert {rruff.mineral_of(n) for n in part.names} == {
            "Adamite",
            "Aegirine",
            "Aenigmatite",
        }


@needs_rruff
def test_pairs_round_trip_through_npz(pairs, tmp_path):
    some = pairs.subset([0, 20, 56])
    some.save(tmp_path / "p.npz")
    back = rruff.Pairs.load(tmp_path / "p.npz")
    assert back.names == some.names
    for a, b in zip(
        back.raw + back.x + back.processed, some.raw + some.x + some.processed, strict=True
    ):
        assert np.array_equal(a, b)
    (x, y, ref), *_ = back.blocks()
    assert y.shape == ref.shape == (1, x.size)


def test_split_of_names_alone():
    names = [
        f"Min{m}__R{s}-{k}__Raman__514__{o}"
        for m in (1, 2)
        for s in (1, 2)
        for k in (3, 4)
        for o in (0, 45)
    ]
    blank = np.zeros(3)
    pairs = rruff.Pairs(tuple(names), (blank,) * 8 * 2, (blank,) * 16, (blank,) * 16)
    parts = rruff.split(pairs)
    assert set(parts["test"].sample) == {"R1-3", "R2-3"}  # sorted mounts: test, val, test, ...
    assert set(parts["val"].sample) == {"R1-4", "R2-4"}


def _write(path, rows, header="##NAMES=Test\n##FILETYPE=Raman RAW\n\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{x:.3f}, {y:.3f}\n" for x, y in rows))


def _pair(folder, name="Test__R1-3__Raman__514__0", shift=0.0):
    x = np.linspace(100, 1500, 200)
    _write(folder / "raw" / f"{name}.txt", zip(x, 1000 + x, strict=True))
    _write(
        folder / "processed" / f"{name}.txt", zip(x + shift, np.maximum(x - 800, 0), strict=True)
    )


def test_a_hand_made_pair_reads(tmp_path):
    _pair(tmp_path)
    pairs = rruff.read_pairs(tmp_path)
    assert pairs.names == ("Test__R1-3__Raman__514__0",)
    assert np.allclose(pairs.reference[0], 1000 + pairs.x[0] - np.maximum(pairs.x[0] - 800, 0))


@pytest.mark.parametrize(
    "spoil, words",
    [
        (
            lambda d: (d / "processed/Test__R1-3__Raman__514__0.txt").unlink(),
            ["processed", "no such file"],
        ),
        (
            lambda d: (d / "raw/Test__R1-3__Raman__514__0.txt").write_text(
                "##NAMES=x\n\n1, 2\nab, 3\n"
            ),
            ["raw", "line 4"],
        ),
        (lambda d: _pair(d, shift=0.5), ["processed", "axis differs"]),
        (lambda d: shutil.rmtree(d / "raw"), ["raw", "no RRUFF spectra"]),
    ],
    ids=["missing", "garbled", "unequal-axis", "empty"],
)
def test_a_bad_pair_is_one_line_naming_the_file(tmp_path, spoil, words):
    _pair(tmp_path)
    spoil(tmp_path)
    with pytest.raises(rruff.PairError) as info:
        rruff.read_pairs(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_the_semireal_stage_stops_on_a_bad_pair_with_one_line(tmp_path, capsys):
    import yaml

    _pair(tmp_path / "rruff", shift=0.5)
    params = tiny_params(semireal={"rruff_source": str(tmp_path / "rruff")})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--params", str(tmp_path / "params.yaml"), "semireal", "--out", str(tmp_path / "s")]
    code = main([*argv, "--rruff-out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("raman-baseline semireal: ") and "axis differs" in err[0]
    assert not (tmp_path / "s").exists()
