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


class DenoiserError(RuntimeError):
    """The file named is not a denoiser this version can run; the message names it."""


def to_sigma_units(corrected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corrected spectra in units of their noise sigma, and that sigma.

    Parameters
    ----------
    corrected
        ``(N, L)`` baseline-corrected spectra, any intensity units, L >= 3. NaN (masked
        pixels) is allowed: it is left out of the sigma and set to 0 in the output.

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
        from pipeline.inference import onnx_session

        self.path = Path(path)
        if not self.path.is_file():
            raise DenoiserError(f"--denoise: no denoiser file {self.path}")
        try:
            session = onnx_session(self.path, threads=threads)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise DenoiserError(f"--denoise: {self.path} is not an ONNX model: {exc}") from exc
        meta = session.get_modelmeta().custom_metadata_map
        outputs = [o.name for o in session.get_outputs()]
        if meta.get(ROLE_KEY) != ROLE or OUTPUT not in outputs:
            raise DenoiserError(
                f"--denoise: the model {self.path} has no denoising output ({OUTPUT}): it is "
                "not a denoiser; name one written by `raman-baseline train-denoiser`, or "
                "leave out --denoiser for the shipped one"
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
