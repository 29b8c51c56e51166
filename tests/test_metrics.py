import numpy as np

from pipeline.metrics import baseline_errors, mean_errors, summarise


def test_errors_are_in_units_of_the_observed_range():
    observed = np.array([[0.0, 10.0, 0.0, 10.0]])
    true = np.zeros((1, 4))
    pred = np.array([[1.0, -1.0, 1.0, -1.0]])
    e = baseline_errors(pred, true, observed)
    assert np.allclose(e["rmse"], 0.1) and np.allclose(e["mae"], 0.1)
    s = summarise(np.array([1.0, 2.0, 3.0]))
    assert s["mean"] == 2.0 and s["median"] == 2.0 and s["n"] == 3


def test_mean_errors_are_plain_floats_averaged_over_spectra():
    observed = np.array([[0.0, 10.0, 0.0, 10.0], [0.0, 1.0, 0.0, 1.0]])
    true = np.zeros((2, 4))
    pred = np.array([[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.4]])
    e = mean_errors(pred, true, observed)
    assert set(e) == {"rmse", "mae"} and all(type(v) is float for v in e.values())
    assert np.isclose(e["rmse"], (0.1 + 0.2) / 2) and np.isclose(e["mae"], (0.1 + 0.1) / 2)
