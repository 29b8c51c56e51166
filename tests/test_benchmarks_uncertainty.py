"""benchmarks/uncertainty.py's helpers: coverage over a benchmark's blocks, the fitted scales."""

import numpy as np
import pytest

from benchmarks.uncertainty import figures, scales


def fits(rng, sigma_ratio: float, n: int = 300, length: int = 64):
    """Two blocks of ``(baseline, std, truth, range)`` whose errors are ``sigma_ratio`` x std."""
    out = []
    for _ in range(2):
        std = rng.uniform(0.5, 2.0, (n, length))
        truth = rng.normal(0.0, sigma_ratio * std)
        out.append((np.zeros_like(truth), std, truth, np.full((n, 1), 10.0)))
    return out


def test_a_scale_fitted_on_one_set_calibrates_another_of_the_same_errors():
    rng = np.random.default_rng(0)
    val, test = fits(rng, 3.0), fits(rng, 3.0)
    scale, nll = scales(val)
    assert scale == pytest.approx(3.0, rel=0.05) and nll == pytest.approx(3.0, rel=0.05)
    scaled, raw = figures(test, scale), figures(test, 1.0)
    assert scaled["in_2sigma"] == pytest.approx(0.95, abs=0.01)
    assert scaled["in_1sigma"] == pytest.approx(0.683, abs=0.02)
    assert raw["in_2sigma"] == pytest.approx(0.497, abs=0.02)  # P(|z| < 2/3)
    expected_rmse = np.mean([np.sqrt(np.mean(t**2, axis=1)) / 10 for _, _, t, _ in test])
    assert scaled["rmse"] == pytest.approx(expected_rmse)
