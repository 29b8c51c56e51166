"""Invariants shared by every baseline method, classical or neural (as pybaselines tests)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.baselines import (
    METHODS,
    classical,
    classical_baselines,
    fit_many,
    refined,
    refined_baselines,
    scaled_lam,
)
from pipeline.checkpoint import torch_run
from pipeline.model import ResUNet1D
from pipeline.normalise import network_baselines

from .conftest import ROOT


def _neural(x, y):
    torch.manual_seed(0)
    model = ResUNet1D(channels=(4, 6, 8, 10, 12, 14)).eval()
    return network_baselines(torch_run(model), 256, x, y)


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
    """Every BaselineFn: x (L,), y (N, L) -> (N, L) in y's units."""
    method = methods[name]
    x, y, _ = spectrum
    y = np.stack([y, 3 * y + 100])
    y_before = y.copy()
    out = method(x, y)
    assert out.shape == y.shape and out.dtype == np.float64 and np.isfinite(out).all()
    assert np.array_equal(y, y_before)  # input not modified
    assert np.allclose(method(x, y.tolist()), out)  # list input
    assert np.allclose(method(x, y), out)  # repeated fits agree
    assert np.allclose(method(x, y[1:]), out[1:])  # each spectrum on its own
    assert np.allclose(out[1], 3 * out[0] + 100, rtol=1e-6, atol=1e-6 * np.ptp(y[1]))  # units


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


def test_classical_methods_take_one_spectrum_too(methods, spectrum):
    x, y, _ = spectrum
    assert methods["arpls"](x, y).shape == y.shape


def test_scaled_lam():
    assert scaled_lam(1e3, 1024, 512) == pytest.approx(16e3)
    assert scaled_lam(5.0, 512, 512) == 5.0


def test_classical_baselines_scale_lam_to_each_length(params, spectrum):
    x, y, _ = spectrum
    settings = params.classical.arpls
    estimate = classical_baselines("arpls", 3.0, settings, reference_length=128)
    expected = classical("arpls", 1e3 * (256 / 128) ** 4, settings)(x, y)
    assert np.allclose(estimate(x, y), expected[None, :])  # one spectrum gives (1, L)


def test_refined_adds_the_classical_fit_of_the_residual(spectrum):
    x, y, _ = spectrum
    network = lambda x, y: np.full_like(np.atleast_2d(y), 10.0)  # noqa: E731
    residual_mean = lambda x, y: np.atleast_2d(y).mean(axis=1, keepdims=True) + 0 * y  # noqa: E731
    out = refined(network, residual_mean)(x, y[None, :])
    assert np.allclose(out, y.mean())


def test_refined_baselines_none_is_the_network_and_a_method_refines(params, spectrum):
    x, y, _ = spectrum
    network = lambda x, y: np.full_like(np.atleast_2d(y), 10.0)  # noqa: E731
    assert refined_baselines(network, "none", None, None, 128) is network
    settings = params.classical.arpls
    out = refined_baselines(network, "arpls", 3.0, settings, 128)(x, y[None, :])
    fit = classical_baselines("arpls", 3.0, settings, 128)(x, y[None, :] - 10.0)
    assert np.allclose(out, 10.0 + fit)
    with pytest.raises(ValueError, match="unknown refined method"):
        refined_baselines(network, "pls", 3.0, settings, 128)
    with pytest.raises(ValueError, match="needs its log10_lam"):
        refined_baselines(network, "arpls", None, settings, 128)


def test_importing_baselines_does_not_import_pybaselines():
    code = "import sys, pipeline.baselines; print('pybaselines' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
