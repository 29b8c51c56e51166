"""pipeline/semireal.py and the ``semireal`` stage: real bands on simulated backgrounds."""

import numpy as np
import pytest

from pipeline import rruff, semireal
from pipeline.simulate import SpectrumSet
from pipeline.stages import semireal as stage

from .conftest import RRUFF, tiny_params
from .test_rruff import needs_rruff


def _sources(n=3, points=300):
    """Hand-made processed spectra: one Gaussian band each, at different places."""
    x = np.linspace(150, 1450, points)
    bands = [100 * np.exp(-0.5 * ((x - 300 - 400 * k) / 8) ** 2) for k in range(n)]
    names = tuple(f"Made__R{k}-3__Raman" for k in range(n))
    return rruff.Pairs(names, (x,) * n, tuple(b + 50 for b in bands), tuple(bands))


def test_observed_is_the_true_baseline_plus_the_bands_plus_the_noise(tiny):
    params = tiny.semireal
    spectra, source = semireal.build(_sources(), params, tiny.simulate, 64, seed=3)
    assert spectra.observed.shape == (64, tiny.simulate.length)
    assert list(source[:6]) == [0, 1, 2, 0, 1, 2]  # sources in turn
    noise = spectra.observed.astype(np.float64) - spectra.baseline - spectra.peaks
    # what is left is Gaussian noise of each spectrum's own sigma
    ratio = noise.std(axis=1) / spectra.read_noise
    assert np.all((ratio > 0.7) & (ratio < 1.3)), ratio
    assert np.all(
        (spectra.read_noise >= params.read_noise[0]) & (spectra.read_noise <= params.read_noise[1])
    )
    assert np.allclose(np.ptp(spectra.baseline, axis=1), 1.0, atol=1e-5)  # backgrounds span [0, 1]
    tallest = spectra.peaks.max(axis=1)
    assert np.all((tallest >= params.ratio[0] * 0.999) & (tallest <= params.ratio[1] * 1.001))
    # the bands are the source's, where its axis puts them
    grid = np.linspace(150, 1450, tiny.simulate.length)
    for i in range(3):
        assert (
            abs(grid[np.argmax(spectra.peaks[i])] - (300 + 400 * i))
            < 1400 / tiny.simulate.length * 2
        )


def test_the_same_seed_gives_the_same_set(tiny):
    a, _ = semireal.build(_sources(), tiny.semireal, tiny.simulate, 16, seed=5)
    b, _ = semireal.build(_sources(), tiny.semireal, tiny.simulate, 16, seed=5)
    c, _ = semireal.build(_sources(), tiny.semireal, tiny.simulate, 16, seed=6)
    assert np.array_equal(a.observed, b.observed) and not np.array_equal(a.observed, c.observed)


def test_a_source_without_bands_is_refused(tiny):
    flat = _sources(1)
    flat = rruff.Pairs(flat.names, flat.x, flat.raw, (np.zeros_like(flat.x[0]),))
    with pytest.raises(ValueError, match="Made__R0-3__Raman: the processed spectrum has no band"):
        semireal.build(flat, tiny.semireal, tiny.simulate, 4, seed=0)


@needs_rruff
def test_the_stage_writes_both_benchmarks_with_disjoint_sources(tmp_path):
    import yaml

    from pipeline.config import parse_params

    params = parse_params(tiny_params(semireal={"rruff_source": str(RRUFF)}))
    parts = stage.run(params, rruff.read_pairs(RRUFF))
    val_sources, test_sources = set(parts["val"][2]), set(parts["test"][2])
    assert not val_sources & test_sources
    assert val_sources <= set(parts["val"][0].names) and len(val_sources) == 16  # in turn
    assert len(parts["test"][1]) == params.semireal.n_test

    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(tiny_params(semireal={"rruff_source": str(RRUFF)}))
    )
    argv = ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "s")]
    assert stage.main([*argv, "--rruff-out", str(tmp_path / "r")]) == 0
    written = SpectrumSet.load(tmp_path / "s" / "test.npz")
    assert np.array_equal(written.observed, parts["test"][1].observed)
    with np.load(tmp_path / "s" / "test.npz") as f:
        assert set(f["source"]) <= test_sources
    bench = semireal.real_benchmarks(tmp_path / "s", tmp_path / "r", "val")
    assert len(bench["rruff"]) == 27 and bench["semireal"][0][1].shape == (16, 128)
