"""Invariants shared by every baseline method, classical or neural (as pybaselines tests)."""

import numpy as np
import pytest
import torch

from pipeline.baselines import METHODS, classical, fit_many
from pipeline.model import ResUNet1D
from pipeline.normalise import predict_baselines


def _neural(x, y):
    torch.manual_seed(0)
    model = ResUNet1D(channels=(4, 6, 8, 10, 12, 14)).eval()
    with torch.no_grad():
        return predict_baselines(lambda z: model(torch.from_numpy(z)).numpy(), np.atleast_2d(y))[0]


@pytest.fixture(scope="module")
def methods(params):
    found = {m: classical(m, 1e5, getattr(params.classical, m)) for m in METHODS}
    found["resunet"] = _neural
    return found


@pytest.fixture
def spectrum():
    x = np.arange(256, dtype=float)
    baseline = 50 + 0.1 * x + 20 * np.exp(-(((x - 120) / 90) ** 2))
    peaks = 30 * np.exp(-(((x - 60) / 3) ** 2)) + 15 * np.exp(-(((x - 190) / 4) ** 2))
    noise = np.random.default_rng(0).normal(0, 0.2, x.size)
    return x, baseline + peaks + noise, baseline


@pytest.mark.parametrize("name", ["arpls", "aspls", "resunet"])
def test_shared_invariants(methods, spectrum, name):
    method = methods[name]
    x, y, _ = spectrum
    y_before = y.copy()
    out = method(x, y)
    assert out.shape == y.shape and np.isfinite(out).all()
    assert np.array_equal(y, y_before)  # input not modified
    assert np.allclose(method(x, list(y)), out)  # list input
    assert np.allclose(method(x, y), out)  # repeated fits agree


@pytest.mark.parametrize("name", METHODS)
def test_classical_methods_find_a_smooth_baseline_under_sparse_peaks(methods, spectrum, name):
    x, y, baseline = spectrum
    out = methods[name](x, y)
    assert np.sqrt(np.mean((out - baseline) ** 2)) < 0.1 * np.ptp(y)


def test_fit_many_in_parallel_matches_serial(params):
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(size=(40, 128)), axis=1) + rng.normal(size=(40, 128))
    settings = params.classical.arpls
    serial = fit_many("arpls", [1e3, 1e5], settings, y, n_jobs=1, chunk=16)
    parallel = fit_many("arpls", [1e3, 1e5], settings, y, n_jobs=2, chunk=16)
    assert len(parallel) == 2 and parallel[0].shape == y.shape
    assert np.allclose(serial, parallel)
    assert not np.allclose(parallel[0], parallel[1])  # one answer per lam


def test_unknown_method(params):
    with pytest.raises(ValueError, match="unknown classical method"):
        classical("airpls", 1e5, params.classical.arpls)
