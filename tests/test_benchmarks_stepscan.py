"""benchmarks/stepscan.py's helpers: the simulated overlap and its noise measure."""

import numpy as np

from benchmarks.stepscan import noise, simulated


def test_noise_is_the_sigma_of_white_noise():
    rng = np.random.default_rng(0)
    assert abs(noise(rng.normal(0, 2.0, 20_000)) - 2.0) < 0.05


def test_the_mean_wins_where_windows_agree_and_keep_where_they_do_not():
    rng = np.random.default_rng(0)
    agree = [simulated(rng, 0.0, 0.5) for _ in range(40)]
    apart = [simulated(rng, 3.0, 0.5) for _ in range(40)]
    median = {
        h: (np.median([r[h] for r in agree]), np.median([r[h] for r in apart])) for h in agree[0]
    }
    assert median["mean"][0] < 0.8 < median["keep"][0]  # about 0.61 and 1.0 noise sigmas
    assert median["keep"][1] < 1.2 < median["mean"][1]  # about 1.0 and 1.6
    assert median["auto"][0] == median["mean"][0] and median["auto"][1] == median["keep"][1]
