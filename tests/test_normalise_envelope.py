"""The normalisations a model may have: minmax unchanged, envelope exact and robust."""

import numpy as np
import pytest

from pipeline import config
from pipeline.normalise import (
    NORMALISATIONS,
    compress,
    denormalise,
    envelope_scale,
    network_baselines,
    normalise,
    predict_baselines,
)


def _spectra(n=4, length=512, tall=300.0, seed=0):
    """Backgrounds spanning 1 above an offset of 50, one band ``tall`` high, noise 0.01."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    background = 50 + np.exp(-t / rng.uniform(0.2, 1.0, (n, 1)))
    background = 50 + (background - background.min(1, keepdims=True)) / np.ptp(
        background, axis=1, keepdims=True
    )
    band = tall * np.exp(-0.5 * ((np.arange(length) - 200) / 3.0) ** 2)
    return background + band + rng.normal(0, 0.01, (n, length)), background


def _old_minmax(y):
    """The minmax normalisation before models said theirs (commit e9654d6)."""
    low = y.min(axis=-1, keepdims=True)
    span = np.maximum(y.max(axis=-1, keepdims=True) - low, 1e-12)
    return ((y - low) / span).astype(np.float32), low, span


def test_the_config_knows_the_same_normalisations():
    assert config.NORMALISATIONS == NORMALISATIONS and NORMALISATIONS[0] == "minmax"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minmax_is_bit_for_bit_what_it_was(dtype):
    y, _ = _spectra()
    y = (y * 37.5 - 1e3).astype(dtype)
    for new, old in zip(normalise(y), _old_minmax(y), strict=True):
        assert new.dtype == old.dtype and np.array_equal(new, old)
    named, default = normalise(y, "minmax"), normalise(y)
    assert all(np.array_equal(a, b) for a, b in zip(named, default, strict=True))


@pytest.mark.parametrize("name", NORMALISATIONS)
def test_the_baseline_round_trips_exactly(name):
    y, background = _spectra()
    z, low, span = normalise(y, name)
    target = (background - low) / span  # the network's target, in linear units
    assert np.allclose(denormalise(target, low, span), background, rtol=0, atol=1e-12 * 350)
    assert z.dtype == np.float32 and np.isfinite(z).all()


def test_envelope_keeps_the_background_at_full_resolution():
    y, background = _spectra(tall=1000.0)
    z, low, span = normalise(y, "envelope")
    assert np.all((span > 0.4) & (span < 1.3))  # about the background's range, not 1000
    assert np.all(np.abs(low - 50) < 0.1)
    assert z.max() < 1 + np.arcsinh(1001 / span.min())  # the band compressed
    zm, _, span_m = normalise(y, "minmax")
    assert np.all(span_m > 900)  # min-max leaves the background a thousandth of its input


def test_compress_is_smooth_monotone_and_identity_below_the_knee():
    u = np.linspace(-2, 1e4, 200001)
    z = compress(u)
    assert np.array_equal(z[u <= 1], u[u <= 1]) and np.all(np.diff(z) > 0)
    slope = np.gradient(z, u)
    assert np.allclose(slope[np.abs(u - 1) < 1e-3], 1, atol=1e-3)  # no kink at the knee


def test_envelope_scale_of_short_and_flat_spectra():
    low, span = envelope_scale(np.array([[3.0, 1.0]]))
    assert low[0, 0] == 1.0 and span[0, 0] == 2.0
    low, span = envelope_scale(np.array([[5.0]]))
    assert low[0, 0] == 5.0 and span[0, 0] == 0.0


@pytest.mark.parametrize("name", NORMALISATIONS)
@pytest.mark.parametrize("value", [0.0, 5.0, -3e7, 1e-300])
def test_constant_spectra_give_finite_inputs_and_their_own_value(name, value):
    y = np.full((2, 64), value)
    z, low, span = normalise(y, name)
    assert np.isfinite(z).all() and np.all(span > 0)
    assert np.allclose(predict_baselines(lambda z: z, y, normalisation=name), value, rtol=1e-6)


def _half(z):
    """A stand-in network: half its input, a baseline that scales with the spectrum."""
    return 0.5 * np.asarray(z, dtype=np.float32)


@pytest.mark.parametrize("name", NORMALISATIONS)
@pytest.mark.parametrize("factor", [1e-18, 1e-30, 1e12, 1e30, -1.0])
def test_baselines_scale_with_the_spectrum_however_small_or_large(name, factor):
    y, _ = _spectra(tall=100.0)
    y = y - 60.0  # negative values too
    base = predict_baselines(_half, y, normalisation=name)
    if factor < 0:  # a negative offset: shifting the spectrum shifts its baseline
        shifted = predict_baselines(_half, y - 1e5, normalisation=name)
        assert np.allclose(shifted, base - 1e5, rtol=0, atol=1e-4)
        return
    scaled = predict_baselines(_half, y * factor, normalisation=name)
    assert np.isfinite(scaled).all()
    assert np.allclose(scaled, base * factor, rtol=1e-6, atol=1e-6 * abs(factor) * np.ptp(y))


def test_the_run_s_own_normalisation_is_used_unless_told():
    y, _ = _spectra()
    x = np.linspace(100.0, 3000.0, y.shape[1])

    def run(z):
        return _half(z)

    run.normalisation = "envelope"
    told = predict_baselines(_half, y, normalisation="envelope")
    assert np.array_equal(predict_baselines(run, y), told)
    assert not np.allclose(predict_baselines(_half, y), told)  # no attribute: minmax
    for mode in ("resample", "native"):  # native wraps the run: the attribute must survive
        assert np.array_equal(
            network_baselines(run, 512, x, y, mode),
            network_baselines(_half, 512, x, y, mode, normalisation="envelope"),
        )


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="unknown normalisation 'zscore'"):
        normalise(np.ones((1, 8)), "zscore")
