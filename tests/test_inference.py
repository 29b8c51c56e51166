import numpy as np

from pipeline.inference import denormalise, normalise, predict_baselines
from pipeline.metrics import baseline_errors, summarise


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


def test_errors_are_in_units_of_the_observed_range():
    observed = np.array([[0.0, 10.0, 0.0, 10.0]])
    true = np.zeros((1, 4))
    pred = np.array([[1.0, -1.0, 1.0, -1.0]])
    e = baseline_errors(pred, true, observed)
    assert np.allclose(e["rmse"], 0.1) and np.allclose(e["mae"], 0.1)
    s = summarise(np.array([1.0, 2.0, 3.0]))
    assert s["mean"] == 2.0 and s["median"] == 2.0 and s["n"] == 3
