"""Classical fits of very long spectra on thinned points: unchanged below the bound, sound above."""

import numpy as np
import pytest

from pipeline.baselines import classical_baselines
from pipeline.config import ClassicalMethodParams
from pipeline.long_spectra import MAX_FIT_POINTS, sample_indices, thinned

CARD = {  # the shipped card's settings
    "arpls": (3.5, ClassicalMethodParams((3.5,), 50, 1e-3)),
    "aspls": (4.5, ClassicalMethodParams((4.5,), 100, 1e-3)),
}


def test_sample_indices_are_even_and_keep_both_ends():
    keep = sample_indices(10_001, 1000)
    assert len(keep) == 1000 and keep[0] == 0 and keep[-1] == 10_000
    assert set(np.diff(keep)) <= {10, 11}


def test_spectra_up_to_the_bound_go_to_the_method_unchanged():
    seen = []

    def method(x, y):
        seen.append(y.shape)
        return np.zeros_like(y)

    y = np.ones((2, 1000))
    assert np.array_equal(thinned(method, max_points=1000)(np.arange(1000.0), y), y * 0)
    assert seen == [(2, 1000)]


def test_long_spectra_are_fitted_on_the_bound_of_points_and_interpolated_back():
    seen = []

    def method(x, y):
        seen.append(y.shape)
        return y  # the kept points themselves

    x = np.linspace(0.0, 1.0, 10_001)
    out = thinned(method, max_points=1000)(x, 2.0 * x + 1.0)
    assert seen == [(1, 1000)]
    assert out.shape == (1, 10_001)
    assert np.allclose(out[0], 2.0 * x + 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["arpls", "aspls"])
@pytest.mark.parametrize("length", [1_000_000, 4_000_000])
def test_a_very_long_spectrum_gets_its_background(name, length):
    """Main (b619fc2), fitting every point at lam beyond float64, missed it by 1.23 (arPLS)
    and 1.16 (asPLS) times its range at 1e6 points (measured with this spectrum)."""
    x = np.linspace(100.0, 3500.0, length)
    background = 4000.0 * np.exp(-(((x - 1800.0) / 1400.0) ** 2)) + 0.3 * x + 800.0
    bands = sum(h / (1.0 + ((x - c) / 6.0) ** 2) for c, h in ((520, 3000), (1001, 2500)))
    signal = background + bands
    y = signal + np.random.default_rng(0).standard_normal(length) * np.sqrt(signal)
    assert length > MAX_FIT_POINTS
    log10_lam, settings = CARD[name]
    baseline = classical_baselines(name, log10_lam, settings, 512)(x, y)[0]
    error = np.sqrt(np.mean((baseline - background) ** 2)) / np.ptp(background)
    assert error < 0.02
