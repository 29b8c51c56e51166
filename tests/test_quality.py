"""Truth-free quality measures on synthetic spectra whose baseline and noise are known."""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from pipeline import quality as q

SIGMA = 5.0
N, L = 40, 2048


def _spectra(n=N, length=L, sigma=SIGMA, bands=10, seed=0):
    """Smooth fluorescence-like baselines + narrow Gaussian bands + Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    baseline = 1000 * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t + phase)) + 300 * t**2
    idx = np.arange(length)
    peaks = np.zeros((n, length))
    for row in peaks:
        for _ in range(bands):
            centre, width = rng.uniform(50, length - 50), rng.uniform(2, 5)
            row += rng.uniform(20, 200) * sigma * np.exp(-0.5 * ((idx - centre) / width) ** 2)
    return baseline + peaks + rng.normal(0, sigma, (n, length)), baseline


Y, BASE = _spectra()


def test_noise_sigma_recovers_the_known_sigma():
    s = q.noise_sigma(Y)
    assert s.shape == (N,)
    assert abs(np.median(s) / SIGMA - 1) < 0.10
    assert np.all(np.abs(s / SIGMA - 1) < 0.15)  # bands bias it up by a few percent
    noise_only, _ = _spectra(bands=0)
    assert np.all(np.abs(q.noise_sigma(noise_only) / SIGMA - 1) < 0.07)


def test_noise_sigma_ignores_offsets_slopes_and_scales_with_the_data():
    line = 3e4 + 50 * np.arange(L)
    s = q.noise_sigma(Y)
    assert np.allclose(q.noise_sigma(7 * Y + line), 7 * s, rtol=1e-6)


def test_noise_sigma_is_never_zero():
    flat = np.stack([np.zeros(64), np.full(64, 5.0), np.arange(64.0)])
    quantised = np.zeros((1, 64))
    quantised[0, ::16] = 1.0  # most second differences 0: MAD 0, mean deviation not
    assert np.all(q.noise_sigma(flat) > 0) and np.all(q.noise_sigma(flat) < 1e-12)
    assert q.noise_sigma(quantised)[0] > 0.05


def test_negative_fraction_of_the_true_baseline_is_the_gaussian_tail():
    noise = np.random.default_rng(1).normal(0, SIGMA, (N, L))
    tail = q.negative_fraction(noise, np.zeros_like(noise), sigma=np.full(N, SIGMA)).mean()
    assert tail == pytest.approx(0.00135, abs=0.0004)
    assert 0.0002 < q.negative_fraction(Y, BASE).mean() < 0.0025


def test_a_baseline_drawn_too_high_cuts_into_the_spectrum():
    true = q.negative_fraction(Y, BASE)
    high = q.negative_fraction(Y, BASE + 5 * SIGMA)
    assert np.all(high > 0.5) and high.mean() > 100 * true.mean()
    assert np.all(q.negative_fraction(Y, BASE + 5 * SIGMA, k=10) < 0.01)


def test_median_offset_sees_a_baseline_drawn_too_low():
    assert np.all(np.abs(q.median_offset(Y, BASE)) < 0.5)
    low = q.median_offset(Y, BASE - 5 * SIGMA)
    assert np.median(low) == pytest.approx(5, abs=0.5)
    assert np.median(q.median_offset(Y, BASE + 5 * SIGMA)) == pytest.approx(-5, abs=0.5)
    # the negative fraction is blind to it
    assert q.negative_fraction(Y, BASE - 5 * SIGMA).mean() < q.negative_fraction(Y, BASE).mean()


def test_a_baseline_that_follows_the_bands_is_rough():
    follows = gaussian_filter1d(Y, 2.0, axis=1)
    assert np.all(q.curvature(follows, Y) > 100 * q.curvature(BASE, Y))


def test_curvature_is_independent_of_length_and_scale():
    def value(length, scale=1.0):
        t = np.linspace(0, 1, length)
        f = scale * (np.sin(3 * t) + t**2)
        return q.curvature(f, f)[0]

    assert value(512) == pytest.approx(value(2048), rel=0.01)
    assert value(2048, scale=1e4) == pytest.approx(value(2048), rel=1e-9)
    t = np.linspace(0, 1, 301)
    parabola = 4 * (t - 0.5) ** 2  # rises by the whole range from the middle to the ends
    assert q.curvature(parabola, parabola)[0] == pytest.approx(8, rel=1e-6)


def test_quality_shapes_and_keys():
    out = q.quality(Y[:3], BASE[:3])
    assert set(out) == set(q.MEASURES)
    assert all(v.shape == (3,) and v.dtype == np.float64 for v in out.values())
    one = q.quality(Y[0], BASE[0])
    assert all(v.shape == (1,) for v in one.values())
    assert one["curvature"][0] == pytest.approx(out["curvature"][0])
    with pytest.raises(ValueError, match="shape"):
        q.quality(Y[:3], BASE[:2])
    with pytest.raises(ValueError, match="L >= 3"):
        q.noise_sigma(np.ones((2, 2)))


def test_summarise_gives_plain_numbers_per_method():
    true, high = q.summarise(q.quality(Y, BASE)), q.summarise(q.quality(Y, BASE + 5 * SIGMA))
    expected = {f"{m}_{s}" for m in q.MEASURES[1:] for s in ("mean", "median")}
    assert set(high) == expected | {"median_offset_abs_mean"}
    assert all(type(v) is float for v in high.values())
    assert high["negative_fraction_mean"] > 100 * true["negative_fraction_mean"]
    assert high["median_offset_median"] == pytest.approx(-5, abs=0.5)
    # too high on half the spectra, too low on the others: the absolute mean sees it
    mixed = BASE + np.where(np.arange(N) % 2, 5, -5)[:, None] * SIGMA
    both = q.summarise(q.quality(Y, mixed))
    assert abs(both["median_offset_mean"]) < 1 < 4 < both["median_offset_abs_mean"]
    json.dumps(both)


def test_case_verdict_passes_the_true_baseline_and_fails_a_high_or_low_one():
    ok = q.case_verdict(Y, BASE)
    assert ok["passes"].all() and set(ok) == {"median_offset", "negative_fraction", "passes"}
    high = q.case_verdict(Y, BASE + 5 * SIGMA)  # 88% of points below -3 sigma
    low = q.case_verdict(Y, BASE - 5 * SIGMA)  # the median 5 sigma above zero
    assert not high["passes"].any() and (high["negative_fraction"] > 0.05).all()
    assert not low["passes"].any() and (low["median_offset"] > 3).all()
    assert q.case_verdict(Y[0], BASE[0])["passes"].shape == (1,)
