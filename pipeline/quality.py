"""Quality of a baseline without ground truth: how real spectra are judged.

Real spectra have no true baseline, so a method is judged by what its corrected spectrum
``y - baseline`` and its baseline look like. Each measure is computed per spectrum, on rows of
``(N, L)`` arrays, in the spectrum's own intensity units; :func:`quality` gathers them and
:func:`summarise` reduces those of one method to plain numbers for JSON and MLflow.

=====================  ===================================================  ===================
measure                what it is                                           a good baseline
=====================  ===================================================  ===================
``noise_sigma``        noise standard deviation, from the raw spectrum      (not a score)
``negative_fraction``  fraction of points with ``y - baseline < -k sigma``  about 0.00135
``median_offset``      median of ``y - baseline``, in noise sigmas          small, >= 0
``curvature``          RMS second derivative of the baseline over the       small
                       window, in units of the spectrum's range
=====================  ===================================================  ===================

Noise. With ``d = y[i-1] - 2 y[i] + y[i+1]``, white noise of standard deviation ``sigma`` gives
``var(d) = 6 sigma**2``, so ``sigma = 1.4826 * MAD(d) / sqrt(6)`` (1.4826 turns a median
absolute deviation into a Gaussian standard deviation). Second differences remove a linear
trend exactly and leave of a smooth baseline only ``b'' h**2``, negligible at hundreds of
points (first differences would keep its slope, which on a strong fluorescence background is
as large as the noise); the median ignores the minority of points on sharp bands and cosmic
rays. It is computed from the raw spectrum, so every method is judged against the same sigma.
Noise correlated between neighbouring points (smoothed or interpolated exports) makes it an
underestimate, and shot noise that grows with intensity makes it a typical value. On the shared
real spectra, first differences give a sigma 1.38 times larger on the Renishaw Qontor maps
(steep fluorescence over 1,015 points) and 1.03 to 1.08 times on the others; the correlation of
neighbouring second differences is -0.44 to -0.61 where white noise gives -0.67: the noise is
slightly correlated, so the sigma is somewhat low and the negative fraction somewhat high.

Why three measures. A baseline drawn too high cuts into the spectrum: many points fall below
``-k sigma`` (for Gaussian noise on the true baseline the fraction is the tail beyond ``k``,
0.135% at ``k = 3``). A baseline that follows the bands removes them: it is rough. Neither sees
a baseline drawn too low; the median does, because most points of a Raman spectrum are free of
bands, so the median of a well corrected spectrum is a fraction of a sigma above zero, and a
baseline ``c`` sigmas too low (high) moves it by ``+c`` (``-c``).

Curvature uses the point index, not the axis: the baselines compared (Whittaker penalties,
the network's convolutions) are functions of the index, uncalibrated spectra have no other
axis, and a spectrum's second difference times ``(L - 1)**2`` is the second derivative over
the window rescaled to ``[0, 1]``, the same for any number of points. Divided by the
spectrum's range (max - min) it is dimensionless: a parabolic baseline rising by the whole
range from the middle of the window to its ends scores 8, one that follows bands a few points
wide scores thousands.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its sigma
MEAN_AD_TO_SIGMA = float(np.sqrt(np.pi / 2))  # mean absolute deviation -> sigma
SECOND_DIFFERENCE_VAR = 6.0  # var(y[i-1] - 2 y[i] + y[i+1]) / sigma**2 for white noise
K_SIGMA = 3.0
CURVATURE_SCALE = 1 / 128  # lag of curvature's second difference, fraction of the axis
MEASURES = ("noise_sigma", "negative_fraction", "median_offset", "curvature")


def _rows(a: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    if a.ndim != 2 or a.shape[1] < 3:
        raise ValueError(f"expected spectra of shape (N, L) with L >= 3, got {a.shape}")
    return a


def _pair(y: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, baseline = _rows(y), _rows(baseline)
    if y.shape != baseline.shape:
        raise ValueError(f"spectra of shape {y.shape} but baselines of shape {baseline.shape}")
    return y, baseline


def noise_sigma(y: np.ndarray) -> np.ndarray:
    """Noise standard deviation of each spectrum, from its second differences.

    Parameters
    ----------
    y
        Spectra (N, L) or one spectrum (L,), L >= 3.

    Returns
    -------
    numpy.ndarray
        ``1.4826 * MAD(d) / sqrt(6)`` per spectrum (N,), ``d`` the second differences. Where
        more than half the differences are equal (quantised, flat data) the MAD is zero and the
        mean absolute deviation (times ``sqrt(pi / 2)``) is used; a spectrum that is exactly
        linear gets a floor of ``eps * max|y|``, never zero.
    """
    y = _rows(y)
    d = np.diff(y, n=2, axis=1)
    dev = np.abs(d - np.median(d, axis=1, keepdims=True))
    sigma = MAD_TO_SIGMA * np.median(dev, axis=1)
    sigma = np.where(sigma > 0, sigma, MEAN_AD_TO_SIGMA * dev.mean(axis=1))
    floor = np.maximum(np.finfo(np.float64).eps * np.abs(y).max(axis=1), np.finfo(np.float64).tiny)
    return np.maximum(sigma / np.sqrt(SECOND_DIFFERENCE_VAR), floor)


def negative_fraction(
    y: np.ndarray, baseline: np.ndarray, k: float = K_SIGMA, sigma: np.ndarray | None = None
) -> np.ndarray:
    """Fraction of points where ``y - baseline < -k sigma``: a baseline drawn too high.

    ``sigma`` defaults to :func:`noise_sigma` of ``y``. Returns one fraction per spectrum (N,);
    about 0.00135 for the true baseline under Gaussian noise at ``k = 3``.
    """
    y, baseline = _pair(y, baseline)
    sigma = noise_sigma(y) if sigma is None else np.asarray(sigma, dtype=np.float64)
    return np.mean(y - baseline < -k * sigma[:, None], axis=1)


def median_offset(
    y: np.ndarray, baseline: np.ndarray, sigma: np.ndarray | None = None
) -> np.ndarray:
    """Median of ``y - baseline`` in noise sigmas, per spectrum (N,).

    Positive: the baseline runs below the band-free points (drawn too low); negative: above
    them (too high). A fraction of a sigma above zero for a good baseline, as bands lift the
    median a little.
    """
    y, baseline = _pair(y, baseline)
    sigma = noise_sigma(y) if sigma is None else np.asarray(sigma, dtype=np.float64)
    return np.median(y - baseline, axis=1) / sigma


def curvature(baseline: np.ndarray, y: np.ndarray, scale: float = CURVATURE_SCALE) -> np.ndarray:
    """Bending of each baseline: RMS second derivative over the window, per spectrum (N,).

    The second difference is taken at a lag of ``h = max(1, round(scale * (L - 1)))`` points,
    ``RMS(b[i - h] - 2 b[i] + b[i + h]) * ((L - 1) / h)**2 / (max(y) - min(y))``: the second
    derivative with respect to the position in the window scaled to ``[0, 1]``, in units of
    the spectrum's intensity range (dimensionless, independent of the number of points and of
    the intensity scale). The lag makes it see bends as wide as bands (a baseline that follows
    bands) and not a ripple of a few points, which a point-to-point difference amplifies by
    ``(L - 1)**2`` and which a network's output, resampled back onto a long axis, always has.
    The axis values are not used (see the module notes).
    """
    y, baseline = _pair(y, baseline)
    n = y.shape[1]
    h = max(1, min(round(scale * (n - 1)), (n - 1) // 2))
    d2 = baseline[:, 2 * h :] - 2 * baseline[:, h:-h] + baseline[:, : -2 * h]
    span = np.maximum(np.ptp(y, axis=1), np.finfo(np.float64).tiny)
    return np.sqrt(np.mean(d2**2, axis=1)) * ((n - 1) / h) ** 2 / span


def quality(y: np.ndarray, baseline: np.ndarray, k: float = K_SIGMA) -> dict[str, np.ndarray]:
    """Every measure of :data:`MEASURES` for each spectrum and its baseline.

    Parameters
    ----------
    y
        Raw spectra (N, L) or one spectrum (L,).
    baseline
        Their baselines, the same shape.
    k
        Threshold of :func:`negative_fraction`, in noise sigmas.

    Returns
    -------
    dict of str to numpy.ndarray
        One array (N,) per measure, keyed as in :data:`MEASURES`.
    """
    y, baseline = _pair(y, baseline)
    sigma = noise_sigma(y)
    return {
        "noise_sigma": sigma,
        "negative_fraction": negative_fraction(y, baseline, k, sigma),
        "median_offset": median_offset(y, baseline, sigma),
        "curvature": curvature(baseline, y),
    }


def summarise(measures: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean and median of each measure over the spectra of one method, as plain floats.

    Parameters
    ----------
    measures
        :func:`quality` of one method's baselines (or those of several calls, concatenated).

    Returns
    -------
    dict of str to float
        ``{measure}_mean`` and ``{measure}_median`` for every measure but ``noise_sigma`` (a
        property of the spectra, the same for every method), and ``median_offset_abs_mean``:
        a method too high on some spectra and too low on others has a signed mean near zero.
        Ready for JSON and ``mlflow.log_metrics``.
    """
    out = {}
    for name, values in measures.items():
        if name == "noise_sigma":
            continue
        v = np.asarray(values, dtype=np.float64)
        out[f"{name}_mean"] = float(v.mean())
        out[f"{name}_median"] = float(np.median(v))
        if name == "median_offset":
            out[f"{name}_abs_mean"] = float(np.abs(v).mean())
    return out


CASE_MEDIAN_SIGMAS = 3.0  # ../shared/cases/README.md: the median within about 3 sigma of zero
CASE_NEGATIVE_FRACTION = 0.05  # ... and under about 5% of points below -3 sigma


def case_verdict(y: np.ndarray, baseline: np.ndarray) -> dict[str, np.ndarray]:
    """The rule by which a corrected real spectrum is judged without a ground truth.

    From ``../shared/cases/README.md``: with sigma the raw spectrum's noise
    (:func:`noise_sigma`), the median of ``y - baseline`` should be within
    :data:`CASE_MEDIAN_SIGMAS` sigmas of zero and fewer than :data:`CASE_NEGATIVE_FRACTION`
    of the points below ``-3`` sigmas.

    Parameters
    ----------
    y, baseline
        Raw spectra and their baselines, (N, L) or (L,), in the same units.

    Returns
    -------
    dict of str to numpy.ndarray
        ``median_offset`` (sigmas) and ``negative_fraction`` per spectrum (N,), and ``passes``
        (N,) bool.
    """
    y, baseline = _pair(y, baseline)
    sigma = noise_sigma(y)
    median = median_offset(y, baseline, sigma)
    negative = negative_fraction(y, baseline, K_SIGMA, sigma)
    passes = (np.abs(median) <= CASE_MEDIAN_SIGMAS) & (negative < CASE_NEGATIVE_FRACTION)
    return {"median_offset": median, "negative_fraction": negative, "passes": passes}
