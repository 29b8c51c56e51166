"""The real regimes (pipeline.regimes): switched off they draw nothing; switched on, each does
what docs/simulation.md says."""

import numpy as np
import pytest
import yaml

from pipeline import regimes
from pipeline.config import BASELINE_FAMILIES, ConfigError
from pipeline.simulate import simulate

from .conftest import ROOT, simulate_params
from .conftest import sim_arrays as _arrays

OFF = {
    "peaks__dense_fraction": 0.0,
    "peaks__broad_fraction": 0.0,
    "baseline__edge_fraction": 0.0,
    "noise__range_fraction": 0.0,
}


def _params(**over):
    """params.yaml's simulator, the empirical family off unless ``baseline__families`` says."""
    families = yaml.safe_load((ROOT / "params.yaml").read_text())["simulate"]["baseline"]
    families = families["families"] | {"empirical": 0.0}
    return simulate_params(**({"baseline__families": families} | over))


def test_switched_off_their_other_keys_change_nothing():
    today = simulate(_params(**OFF), 300, seed=5)
    other = simulate(
        _params(
            **OFF,
            peaks__dense_count=[100, 120],
            peaks__broad_width=[150.0, 200.0],
            baseline__edge_width=[0.3, 0.4],
            baseline__warp=[0.2, 0.3],
            noise__range_sigma=[0.1, 0.2],
        ),
        300,
        seed=5,
    )
    for a, b in zip(_arrays(today), _arrays(other), strict=True):
        assert np.array_equal(a, b)


def test_dense_spectra_have_many_clustered_bands():
    params = _params(**(OFF | {"peaks__dense_fraction": 1.0}))
    rng = np.random.default_rng(0)
    counts, dense = regimes.dense_counts(rng, params, np.ones(200, dtype=int))
    low, high = params.peaks.dense_count
    assert dense.all() and counts.min() >= low and counts.max() <= high
    owner = np.repeat(np.arange(200), counts)
    centre = regimes.clustered_centres(rng, params, np.zeros(owner.size, np.float32), owner, dense)
    assert centre.min() >= 0 and centre.max() <= params.length - 1
    # clustered: the bands of a spectrum fill far fewer 16-point bins than uniform ones would
    filled = [np.unique(centre[owner == i] // 16).size for i in range(200)]
    assert np.median(filled) < 0.6 * min(np.median(counts), params.length / 16)
    s = simulate(params, 100, seed=1)
    assert np.isfinite(s.observed).all()


def test_broad_bands_widen_the_bands():
    narrow = {"peaks__count": [1, 1], "peaks__width": [2.0, 3.0], "peaks__shapes": {"hann": 1}}
    off = simulate(_params(**OFF, **narrow), 200, seed=2).peaks
    on = simulate(_params(**(OFF | {"peaks__broad_fraction": 1.0}), **narrow), 200, seed=2).peaks

    def wide(p):
        return np.mean(p > 0.05 * p.max(axis=1, keepdims=True))

    assert wide(off) < 0.02 and wide(on) > 0.1


@pytest.mark.parametrize("cutoff", [0.0, 1.0])
def test_filter_edge_cuts_off_or_rises_at_the_low_shift_end(cutoff):
    params = _params(**(OFF | {"baseline__edge_fraction": 1.0, "baseline__edge_cutoff": cutoff}))
    baseline = np.ones((50, params.length), np.float32)
    peaks = np.ones((50, params.length), np.float32)
    regimes.filter_edge(np.random.default_rng(0), params, baseline, peaks)
    past = int(params.baseline.edge_width[1] * params.length) + 1
    if cutoff:
        assert baseline[:, 0].max() < 0.01 and peaks[:, 0].max() < 0.01
        assert np.allclose(baseline[:, past:], 1, atol=0.01)
    else:
        assert baseline[:, 0].min() >= 1 + params.baseline.edge_rise[0] * 0.99
        assert (peaks == 1).all()
        assert np.allclose(baseline[:, 2 * past :], 1, atol=0.01)


def test_empirical_backgrounds_are_real_fits_warped():
    table = regimes.fitted_backgrounds()
    assert table.ndim == 2 and len(table) >= 10
    assert np.allclose(table.min(axis=1), 0) and np.allclose(table.max(axis=1), 1)
    params = _params(**OFF, baseline__families={"empirical": 1.0})
    s = simulate(params, 200, seed=4)
    assert (s.family == BASELINE_FAMILIES.index("empirical")).all()
    b = (s.baseline - s.baseline.min(1, keepdims=True)) / np.ptp(s.baseline, axis=1)[:, None]
    assert len(np.unique(b.round(3), axis=0)) == 200  # warped: no two alike


def test_empirical_backgrounds_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        regimes.fitted_backgrounds(tmp_path / "nothing.npz")


def test_range_noise_is_its_share_of_the_spectrum_s_range():
    params = _params(
        **(OFF | {"noise__range_fraction": 1.0, "noise__cosmic_ray_prob": 0.0}),
        intensity__flat_fraction=0.0,
    )
    s = simulate(params, 400, seed=6)
    clean = s.baseline + s.peaks
    share = (s.observed - clean).std(axis=1) / np.ptp(clean, axis=1)
    low, high = params.noise.range_sigma
    assert share.min() > low * 0.8 and share.max() < high * 1.2
    assert np.log(share).std() > 0.8  # log-uniform over a factor 33: std of log 1.0


@pytest.mark.parametrize(
    "key, value",
    [
        ("peaks__dense_fraction", 1.5),
        ("peaks__dense_count", [120, 40]),
        ("peaks__broad_width", [90.0, 30.0]),
        ("baseline__edge_width", [0.1, 0.9]),
        ("baseline__edge_cutoff", -0.1),
        ("baseline__crop", [0.5, 1.5]),
        ("noise__range_fraction", 2.0),
        ("noise__range_sigma", [0.0, 0.001]),
    ],
)
def test_out_of_range_regime_keys_stop_before_any_work(key, value):
    with pytest.raises(ConfigError, match=key.split("__")[1]):
        _params(**{key: value})
