"""Denoising of baseline-corrected spectra: the second network, and Savitzky-Golay's reference.

The denoiser is a small residual convolutional network (:mod:`pipeline.denoiser`: DnCNN's
residual learning, Zhang et al., IEEE TIP 2017, with IRCNN's dilated convolutions, Zhang et
al., CVPR 2017) that takes a corrected spectrum (``intensity - baseline``) and returns the
Raman bands without the noise or cosmic-ray spikes. It is separate from the baseline network,
so it follows any method (``refined``, ``resunet``, arPLS, asPLS) and runs at each spectrum's
own length: a convolution has no grid.

**Scaling (this module, shared by training and inference).** A corrected spectrum ``c`` is
divided by its noise sigma ``s`` (:func:`pipeline.quality.noise_sigma`, from second
differences), so the network always sees noise of unit standard deviation whatever the
instrument's counts: the noise-level normalisation that FFDNet passes as an input map (Zhang
et al., IEEE TIP 2018), here applied to the input instead. Inside the graph the spectrum is
compressed, ``asinh(u / K)`` (:data:`KNEE`), so that bands thousands of sigmas tall and unit
noise share one input range; the network answers the residual in that domain and the graph
expands it back, so its output is the denoised spectrum in sigma units, times ``s`` here.

This module imports no torch: ``correct`` runs the exported graph under ONNX Runtime
(:class:`OnnxDenoiser`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.quality import noise_sigma

KNEE = 4.0  # asinh(u / KNEE): linear within about ±KNEE sigma, logarithmic beyond
ROLE_KEY = "role"  # ONNX metadata_props key; a denoiser's value is ROLE
ROLE = "denoiser"
INPUT, OUTPUT = "corrected_sigma", "denoised_sigma"  # the graph's names, sigma units
COLUMN = "denoised"  # correct's CSV column and .npz key


# the end of each message about a file that is not a denoiser: what to name instead
WHAT_TO_DO = "name an ONNX denoiser written by `raman-baseline train-denoiser` (docs/denoising.md)"


class DenoiserError(RuntimeError):
    """The file named is not a denoiser this version can run; the message names it."""


def to_sigma_units(corrected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corrected spectra in units of their noise sigma, and that sigma.

    Parameters
    ----------
    corrected
        ``(N, L)`` baseline-corrected spectra, any intensity units, L >= 3. NaN (masked
        pixels) is allowed: it is left out of the sigma, and filled in the output by linear
        interpolation between the nearest unmasked pixels (the end values beyond them), so
        the network sees no step at a masked run (0 where a spectrum has under 2 such pixels).

    Returns
    -------
    u : numpy.ndarray
        ``(N, L)`` float32, ``corrected / sigma``.
    sigma : numpy.ndarray
        ``(N,)`` float64, :func:`pipeline.quality.noise_sigma` of each spectrum's unmasked
        points (the robust MAD of second differences), in the input's units.
    """
    c = np.atleast_2d(np.asarray(corrected, dtype=np.float64))
    finite = np.isfinite(c)
    sigma = np.empty(len(c))
    for i, (row, ok) in enumerate(zip(c, finite, strict=True)):
        sigma[i] = noise_sigma(row[ok])[0] if ok.sum() >= 3 else 1.0
    u = np.where(finite, c, 0.0) / sigma[:, None]
    for i in np.flatnonzero(~finite.all(axis=1) & (finite.sum(axis=1) >= 2)):
        points = np.arange(c.shape[1])
        ok = finite[i]
        u[i, ~ok] = np.interp(points[~ok], points[ok], u[i, ok])
    return u.astype(np.float32), sigma


def savitzky_golay(corrected: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing (Savitzky & Golay, Anal. Chem. 1964; ``scipy.signal``).

    Parameters
    ----------
    corrected
        ``(N, L)`` or ``(L,)`` spectra.
    window, order
        The window in points (odd, > ``order``) and the polynomial order; ``mode="interp"``
        (scipy's default) fits the ends with the last window's polynomial.

    Returns
    -------
    numpy.ndarray
        The smoothed spectra, the input's shape, float64.
    """
    from scipy.signal import savgol_filter

    return savgol_filter(np.asarray(corrected, dtype=np.float64), window, order, axis=-1)


class OnnxDenoiser:
    """The exported denoiser under ONNX Runtime (CPU), on spectra of any length.

    Parameters
    ----------
    path
        An ONNX file written by :func:`pipeline.denoiser.export_denoiser`.
    threads
        ONNX Runtime intra-op threads (0: one per core).

    Raises
    ------
    DenoiserError
        The file is missing or not ONNX, or is an ONNX model without the denoiser's role in
        its metadata (a baseline model, say); the message names the file.
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        from pipeline.errors import one_line
        from pipeline.inference import onnx_session

        self.path = Path(path)
        if self.path.is_dir():
            raise DenoiserError(f"{self.path} is a folder, not a denoiser file; {WHAT_TO_DO}")
        if not self.path.is_file():
            raise DenoiserError(f"no denoiser file {self.path}; {WHAT_TO_DO}")
        try:
            session = onnx_session(self.path, threads=threads)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise DenoiserError(
                f"{self.path} is not an ONNX model ({one_line(exc)}); {WHAT_TO_DO}"
            ) from exc
        meta = session.get_modelmeta().custom_metadata_map
        outputs = [o.name for o in session.get_outputs()]
        inputs = [i.name for i in session.get_inputs()]
        if meta.get(ROLE_KEY) != ROLE or OUTPUT not in outputs or inputs != [INPUT]:
            raise DenoiserError(
                f"the model {self.path} has no denoising output ({OUTPUT} of {INPUT}): it is "
                "not a denoiser; one is written by `raman-baseline train-denoiser` "
                "(docs/denoising.md)"
            )
        self.session = session
        self.metadata = dict(meta)

    def denoise(self, corrected: np.ndarray, chunk: int = 256) -> np.ndarray:
        """The denoised spectra, in the input's units.

        Parameters
        ----------
        corrected
            ``(N, L)`` or ``(L,)`` baseline-corrected spectra, L >= 3, on their own axis
            (no resampling: the network is a convolution). NaN pixels stay NaN.
        chunk
            Spectra per ONNX Runtime call.

        Returns
        -------
        numpy.ndarray
            The denoised spectra, the input's shape, float64.
        """
        c = np.asarray(corrected, dtype=np.float64)
        rows = np.atleast_2d(c)
        u, sigma = to_sigma_units(rows)
        out = np.empty(rows.shape)
        for start in range(0, len(u), chunk):
            block = u[start : start + chunk, None, :]
            (d,) = self.session.run([OUTPUT], {INPUT: block})
            out[start : start + chunk] = d[:, 0, :] * sigma[start : start + chunk, None]
        out[~np.isfinite(rows)] = np.nan
        return out.reshape(c.shape)


# ----------------------------------------------------------------- how a denoiser is judged


def band_height_errors(
    clean: np.ndarray, denoised: np.ndarray, sigma: np.ndarray, snr: float = 5.0
):
    """Relative height errors of the true bands that stand out of the noise.

    Parameters
    ----------
    clean, denoised
        ``(N, L)`` the true bands and their estimate, same units.
    sigma
        ``(N,)`` each spectrum's noise sigma, same units.
    snr
        A band counts where the clean spectrum has a local maximum of prominence at least
        ``snr * sigma`` (:func:`scipy.signal.find_peaks`).

    Returns
    -------
    numpy.ndarray
        ``(K,)`` ``(denoised - clean) / clean`` at the K counted maxima, all spectra together.
    """
    from scipy.signal import find_peaks

    out = []
    for c, d, s in zip(clean, denoised, sigma, strict=True):
        top = find_peaks(c, prominence=snr * s)[0]
        out.append((d[top] - c[top]) / c[top])
    return np.concatenate(out) if out else np.empty(0)


def spurious_bands(
    clean: np.ndarray,
    estimate: np.ndarray,
    sigma: np.ndarray,
    k: float = 4.0,
    reach: int = 3,
    empty: float | None = None,
) -> np.ndarray:
    """Bands of an estimate where the truth has none, per spectrum.

    A spurious band is a local maximum of ``estimate`` of prominence at least ``k * sigma``
    with no local maximum of ``clean`` within ``reach`` points (a shoulder of overlapping
    true bands that becomes a maximum counts too, so the count errs high). With ``empty``,
    only those where the clean bands are also below ``empty * sigma`` count: maxima where the
    truth has no band at all (not shoulders, not the flanks of a band).

    Parameters
    ----------
    clean, estimate
        ``(N, L)`` the true bands and a denoised (or raw) corrected spectrum, same units.
    sigma
        ``(N,)`` each spectrum's noise sigma, same units.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` int, the spurious bands of each spectrum.
    """
    from scipy.signal import find_peaks

    count = np.zeros(len(clean), dtype=int)
    for i, (c, e, s) in enumerate(zip(clean, estimate, sigma, strict=True)):
        found = find_peaks(e, prominence=k * s)[0]
        true = find_peaks(c)[0]
        if len(true):
            found = found[~(np.abs(found[:, None] - true[None, :]) <= reach).any(axis=1)]
        if empty is not None:
            found = found[c[found] < empty * s]
        count[i] = len(found)
    return count


SG_WINDOWS = tuple(range(5, 82, 2))  # Savitzky-Golay windows tried on validation, points
SG_ORDERS = (2, 3, 4)


def band_rmse(estimate: np.ndarray, bands: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-spectrum RMSE ``(N,)`` of ``estimate`` against the clean ``bands``, both ``(N, L)``.

    In units of each observed spectrum's range, as the baselines' errors
    (:func:`pipeline.metrics.baseline_errors`).
    """
    from pipeline.metrics import baseline_errors

    return baseline_errors(estimate, bands, observed)["rmse"]


def best_savitzky_golay(
    corrected: np.ndarray, bands: np.ndarray, observed: np.ndarray
) -> tuple[int, int, float]:
    """The Savitzky-Golay (window, order) of least mean :func:`band_rmse`, and that RMSE.

    Every window of :data:`SG_WINDOWS` with every order of :data:`SG_ORDERS` below it is
    tried on ``corrected`` ``(N, L)``, scored against ``bands`` (validation spectra).
    """
    scores = {
        (w, o): float(band_rmse(savitzky_golay(corrected, w, o), bands, observed).mean())
        for o in SG_ORDERS
        for w in SG_WINDOWS
        if w > o + 1
    }
    (window, order), score = min(scores.items(), key=lambda kv: kv[1])
    return window, order, score


def judge(estimate: np.ndarray, bands: np.ndarray, observed: np.ndarray, sigma: np.ndarray):
    """The figures of one estimate ``(N, L)`` of the clean ``bands``.

    Returns
    -------
    dict
        ``rmse`` (mean :func:`band_rmse`); ``height_median_abs``, ``height_median`` and
        ``height_within_5pct`` of :func:`band_height_errors` (fractions), ``bands`` judged,
        ``height_within_5pct_20sigma`` (the same, for bands of at least 20 sigma);
        ``spurious_per_100`` spectra (:func:`spurious_bands`), and ``empty_per_100``: those
        where the clean bands are below 1 sigma (no band there at all).
    """
    heights = band_height_errors(bands, estimate, sigma)
    tall = band_height_errors(bands, estimate, sigma, snr=20.0)
    return {
        "rmse": float(band_rmse(estimate, bands, observed).mean()),
        "height_median_abs": float(np.median(np.abs(heights))) if heights.size else 0.0,
        "height_median": float(np.median(heights)) if heights.size else 0.0,
        "height_within_5pct": float(np.mean(np.abs(heights) <= 0.05)) if heights.size else 1.0,
        "bands": int(heights.size),
        "height_within_5pct_20sigma": float(np.mean(np.abs(tall) <= 0.05)) if tall.size else 1.0,
        "spurious_per_100": float(100 * spurious_bands(bands, estimate, sigma).mean()),
        "empty_per_100": float(100 * spurious_bands(bands, estimate, sigma, empty=1.0).mean()),
    }


def compare(denoise, validation, test, fits=None) -> dict:
    """The denoiser against the best Savitzky-Golay window, on simulated spectra.

    Parameters
    ----------
    denoise
        ``(N, L) -> (N, L)``, e.g. :meth:`OnnxDenoiser.denoise`.
    validation, test
        :class:`pipeline.simulate.SpectrumSet` (observed, baseline, clean bands ``peaks``).
    fits
        The baselines ``(validation, test)`` subtracted; None: the true ones.

    Returns
    -------
    dict
        ``savitzky_golay`` (window, order) chosen on ``validation``; ``raw``, ``sg`` and
        ``denoiser``: :func:`judge` of each on ``test``; ``ratio``: the denoiser's RMSE over
        Savitzky-Golay's.
    """
    fit_val, fit_test = fits if fits is not None else (validation.baseline, test.baseline)
    val_corrected = validation.observed - fit_val
    corrected = test.observed - fit_test
    window, order, _ = best_savitzky_golay(val_corrected, validation.peaks, validation.observed)
    _, sigma = to_sigma_units(corrected)
    args = (test.peaks, test.observed, sigma)
    out = {
        "savitzky_golay": [window, order],
        "raw": judge(corrected, *args),
        "sg": judge(savitzky_golay(corrected, window, order), *args),
        "denoiser": judge(denoise(corrected), *args),
        # a perfect denoiser: the clean bands plus the baseline's error, which it cannot remove
        "bound": judge(test.peaks + test.baseline - fit_test, *args),
    }
    out["ratio"] = out["denoiser"]["rmse"] / out["sg"]["rmse"]
    return out
