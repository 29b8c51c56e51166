"""Classical fits of very long spectra on bin means: unchanged below the bound, sound above."""

import numpy as np

from pipeline.baselines import classical_baselines
from pipeline.config import ClassicalMethodParams
from pipeline.long_spectra import MAX_FIT_POINTS, bin_means, binned

ARPLS = ClassicalMethodParams((3.5,), 50, 1e-3)  # the shipped card's arPLS settings


def test_bin_means_keep_a_short_last_bin():
    assert np.array_equal(bin_means(np.arange(7.0), 3), [1.0, 4.0, 6.0])
    assert bin_means(np.ones((2, 10)), 4).shape == (2, 3)


def test_spectra_up_to_the_bound_go_to_the_method_unchanged():
    seen = []

    def method(x, y):
        seen.append(y.shape)
        return np.zeros_like(y)

    y = np.ones((2, 1000))
    assert np.array_equal(binned(method, max_points=1000)(np.arange(1000.0), y), y * 0)
    assert seen == [(2, 1000)]


def test_long_spectra_are_fitted_on_at_most_the_bound_of_bins_and_interpolated_back():
    seen = []

    def method(x, y):
        seen.append(y.shape)
        return y  # the bins' means themselves

    x = np.linspace(0.0, 1.0, 10_001)
    out = binned(method, max_points=1000)(x, 2.0 * x + 1.0)
    assert seen == [(1, 910)]  # bins of 11 points
    assert out.shape == (1, 10_001)
    inner = slice(6, -6)  # beyond the first and last bin centres: constant
    assert np.allclose(out[0, inner], 2.0 * x[inner] + 1.0, rtol=0, atol=1e-12)


def test_arpls_of_a_million_points_finds_the_background():
    """On main (b619fc2) arPLS at lam scaled to 1e6 points missed it by 1.2 times its range."""
    x = np.linspace(100.0, 3500.0, 1_000_000)
    background = 4000.0 * np.exp(-(((x - 1800.0) / 1400.0) ** 2)) + 0.3 * x + 800.0
    bands = sum(h / (1.0 + ((x - c) / 6.0) ** 2) for c, h in ((520, 3000), (1001, 2500)))
    y = background + bands + np.random.default_rng(0).normal(0.0, 30.0, x.size)
    assert x.size > MAX_FIT_POINTS
    baseline = classical_baselines("arpls", 3.5, ARPLS, 512)(x, y)[0]
    error = np.sqrt(np.mean((baseline - background) ** 2)) / np.ptp(background)
    assert error < 0.05
