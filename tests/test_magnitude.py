"""Numerics independent of magnitude (issue 13, item 5): a spectrum times 1e-18 or 1e+297 gets
the same corrected shape from every method ``correct`` runs, within 1e-6 of its range."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from pipeline import correct, correct_files
from pipeline.baselines import METHODS, classical
from pipeline.config import ClassicalMethodParams
from pipeline.spectra_io import Spectra

FACTORS = (1e-18, 1e297)


def _spectrum(length=900, seed=3):
    """A background of a few thousand counts with narrow bands, noisy: (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(150.0, 3200.0, length)
    y = 4000 * np.exp(-x / 1800) + 600 + 300 * np.sin(x / 700) + rng.normal(0, 6, length)
    for centre, height in ((520.0, 2500.0), (1001.0, 900.0), (1600.0, 1400.0), (2930.0, 600.0)):
        y += height * np.exp(-(((x - centre) / 8) ** 2))
    return x, y


@pytest.fixture(scope="module")
def estimates():
    """Every method as ``correct`` runs it with nothing named: the shipped model and card."""
    model, _ = correct.choose_network(correct.SHIPPED, None, None)
    network = partial(model.baselines, length_mode="resample")
    found = {"resunet": network, "refined": correct.refined_method(network, None, None)[0]}
    for name in METHODS:
        found[name] = correct.classical_method(name, None, None)[0]
    return found


def _corrected(spectra: Spectra, estimate) -> np.ndarray:
    baseline = correct_files.correct_spectra(spectra, estimate)[0]
    return spectra.y - baseline


def _relative_error(corrected: np.ndarray, base: np.ndarray) -> float:
    return float(np.max(np.abs(corrected - base)) / np.max(np.abs(base)))


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("method", ["resunet", "refined", *METHODS])
def test_every_method_corrects_the_same_shape_however_small_or_large(estimates, method, factor):
    """Within 1e-6 of the range, or of what one rounding of the input moves the method.

    ``y * 1e-18`` is ``y`` rounded once (1e-18 is no power of two), and asPLS's reweighting
    does not converge: it stops at ``tol`` on an oscillation, so changing every point of a
    spectrum by one unit in the last place moves its answer by up to 7e-4 of the range
    (``acetonitrile.txt``). That much is the method's, not the magnitude's: the bound is
    1e-6 or twice the method's own answer to a one-ulp change, whichever is larger.
    """
    x, y = _spectrum()
    spectra = Spectra(x, y[None, :], correct.Path("s.txt"), ("s",), True, "text")
    estimate = estimates[method]
    base = _corrected(spectra, estimate)
    ulp = max(
        _relative_error(_corrected(replace(spectra, y=spectra.y * k), estimate) / k, base)
        for k in (1 + 2.0**-52, 1 - 2.0**-53)
    )
    scaled = _corrected(replace(spectra, y=spectra.y * factor), estimate) / factor
    error = _relative_error(scaled, base)
    assert error <= max(1e-6, 2 * ulp), f"{method} x {factor:g}: {error:.3g} (one ulp {ulp:.3g})"


@pytest.mark.parametrize("name", METHODS)
def test_classical_fits_scale_exactly_with_the_spectrum(name):
    """Powers of two scale floats exactly: so must the fit, bit for bit."""
    x, y = _spectrum(400)
    fit = classical(name, 1e5, ClassicalMethodParams((5.0,), 50, 1e-3))
    base = fit(x, y)
    for factor in (2.0**-60, 2.0**986):
        assert np.array_equal(fit(x, y * factor) / factor, base)
