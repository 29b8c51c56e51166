"""The training-time contract: normalisation, and the one network path for any axis."""

import subprocess
import sys

import numpy as np
import pytest

from pipeline.normalise import (
    LENGTH_MODES,
    denormalise,
    network_baselines,
    normalise,
    padded,
    predict_baselines,
    resample,
    uniform,
)

from .conftest import ROOT


def test_normalise_is_exactly_inverted():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 64)) * 1e4 + 300
    z, low, span = normalise(y)
    assert z.dtype == np.float32
    assert np.allclose(z.min(axis=1), 0) and np.allclose(z.max(axis=1), 1)
    # exact up to the float32 rounding of the network's input, relative to each span
    back = denormalise(z.astype(np.float64), low, span)
    assert np.all(np.abs(back - y) <= 1e-6 * span)
    assert np.array_equal(denormalise(z, low, span), z * span + low)


def test_predict_baselines_returns_user_units():
    y = np.linspace(0, 1, 64)[None, :] * np.array([[10.0], [1000.0], [3.0]]) + 7
    # a "model" that answers half the normalised input: the baseline is half way in user units
    out = predict_baselines(lambda z: 0.5 * z, y, batch_size=2)
    assert np.allclose(out, 7 + (y - 7) / 2, rtol=1e-6)


def test_constant_spectrum_does_not_divide_by_zero():
    z, low, span = normalise(np.full((1, 32), 5.0))
    assert np.isfinite(z).all() and np.allclose(denormalise(z, low, span), 5.0)


def _smooth(z):
    """A stand-in network of any length: a moving average, so that every point matters."""
    kernel = np.ones(5) / 5
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), -1, z)


def _spectra(length, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(200.0, 3200.0, length))
    y = 5000 * np.exp(-x / 1500) + 800 + rng.normal(0, 5, (2, length))
    return x, y


def test_network_baselines_are_in_the_users_units():
    x, y = _spectra(777)
    for mode in LENGTH_MODES:
        b = network_baselines(_smooth, 512, x, y, length_mode=mode)
        scaled = network_baselines(_smooth, 512, x, 250 * y - 3e4, length_mode=mode)
        assert b.shape == y.shape and b.dtype == np.float64
        assert np.allclose(scaled, 250 * b - 3e4, rtol=0, atol=1e-5 * 250 * np.ptp(y))


def test_resample_runs_the_network_on_its_grid_and_native_at_the_multiple():
    seen = []

    def spy(z):
        seen.append(z.shape[-1])
        return _smooth(z)

    x, y = _spectra(300)
    network_baselines(spy, 512, x, y)
    network_baselines(spy, 512, x, y, length_mode="native", multiple=32)
    assert seen == [512, 320]
    uniform_x = np.linspace(100.0, 1900.0, 512)
    assert np.array_equal(  # on the grid already: nothing resampled
        network_baselines(_smooth, 512, uniform_x, y[:, :1].repeat(512, 1) + uniform_x),
        predict_baselines(_smooth, y[:, :1].repeat(512, 1) + uniform_x),
    )


def test_native_and_resample_agree_on_the_training_grid():
    x = np.linspace(100.0, 1900.0, 512)
    y = np.stack([_spectra(512, seed=s)[1][0] for s in range(3)])
    native = network_baselines(_smooth, 512, x, y, length_mode="native")
    assert np.array_equal(native, network_baselines(_smooth, 512, x, y, length_mode="resample"))


def test_one_spectrum_and_an_unknown_mode():
    x, y = _spectra(100)
    assert network_baselines(_smooth, 64, x, y[0]).shape == (1, 100)
    with pytest.raises(ValueError, match="unknown length mode 'stretch'"):
        network_baselines(_smooth, 64, x, y, length_mode="stretch")


@pytest.mark.parametrize(("length", "pad"), [(300, "edge"), (1015, "reflect"), (320, "edge")])
def test_padded_pads_to_the_multiple_and_crops(length, pad):
    seen = []

    def spy(z):
        seen.append(z)
        return _smooth(z)

    z = np.random.default_rng(length).random((2, 1, length)).astype(np.float32)
    out = padded(spy, 32, pad)(z)
    total = seen[-1].shape[-1]
    assert out.shape == z.shape and total % 32 == 0 and 0 <= total - length < 32
    left = (total - length) // 2
    assert np.array_equal(seen[-1], np.pad(z, ((0, 0), (0, 0), (left, total - length - left)), pad))
    assert np.array_equal(out, _smooth(seen[-1])[..., left : left + length])


def test_resample_and_uniform():
    x = np.sort(np.random.default_rng(1).uniform(100, 3000, 300))
    grid = np.linspace(x[0], x[-1], 50)
    assert np.allclose(resample(x, x[None, :], grid), grid)  # linear data is kept exactly
    assert uniform(grid) and not uniform(x)


def test_the_contract_imports_neither_torch_nor_onnxruntime():
    code = (
        "import sys, pipeline.normalise; print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_resample_in_blocks_gives_the_same_values():
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 10.0, 512)
    y = rng.normal(size=(3, 512))
    x = np.sort(rng.uniform(-1.0, 11.0, 100_003))
    assert np.array_equal(resample(grid, y, x, block=1000), resample(grid, y, x, block=10**9))
