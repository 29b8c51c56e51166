"""The tall-band regime of the simulator: switched off it draws nothing (today's spectra stay)."""

import dataclasses

import numpy as np
import pytest

from pipeline.config import ConfigError
from pipeline.simulate import simulate

from .conftest import sim_arrays as _arrays
from .conftest import simulate_params as _params


def test_switched_off_it_draws_nothing_so_today_s_spectra_stay():
    off = {"peaks__tall_fraction": 0.0, "intensity__flat_fraction": 0.0}
    today = simulate(_params(**off), 500, seed=3)
    other = simulate(
        _params(**off, peaks__tall_ratio=[50.0, 60.0], intensity__flat_level=[9, 10]), 500, 3
    )
    assert all(np.array_equal(a, b) for a, b in zip(_arrays(today), _arrays(other), strict=True))


def test_tall_bands_reach_the_tall_ratio():
    s = simulate(_params(peaks__tall_fraction=1.0, peaks__tall_ratio=[100.0, 1000.0]), 400, 3)
    ratio = s.peaks.max(axis=1) / np.ptp(s.baseline, axis=1)
    assert ratio.min() > 99 and ratio.max() > 700


def test_a_flat_level_raises_the_offset_and_its_shot_noise():
    base = _params(noise__read=[0.0, 1e-9], noise__shot=[0.02, 0.03], intensity__flat_fraction=0.0)
    flat = dataclasses.replace(
        base, intensity=dataclasses.replace(base.intensity, flat_fraction=1.0)
    )
    a, b = simulate(base, 300, 5), simulate(flat, 300, 5)
    level = (b.baseline.min(axis=1) - a.baseline.min(axis=1)) / np.ptp(a.baseline, axis=1)
    assert np.all((level > 2.9) & (level < 301))
    noise = lambda s: np.std(np.diff(s.observed - s.baseline - s.peaks, axis=1), axis=1)  # noqa: E731
    # shot noise of a level of 3 to 300 ranges: sqrt(level) times that of a background of ~0.5
    assert np.median(noise(b) / noise(a)) > 2


@pytest.mark.parametrize(
    "key, value", [("peaks__tall_fraction", 1.5), ("intensity__flat_level", [10.0, 1.0])]
)
def test_out_of_range_values_stop_before_any_work(key, value):
    with pytest.raises(ConfigError, match=key.replace("__", ".")):
        _params(**{key: value})
