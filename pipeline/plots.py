"""The project's figures: one way to make them, one look, written atomically.

:func:`figure` is a matplotlib :class:`~matplotlib.figure.Figure` on its own Agg canvas:
no pyplot, so no global state, no GUI backend and nothing to close, safe in threads and
workers. :func:`save` writes it atomically (:func:`pipeline.files.atomic_path`). Methods keep
one label, colour and line style in every figure (:data:`METHOD_STYLE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.files import atomic_path

DRAWN_BUCKETS = 4096  # runs of a long line drawn as min and max: ~5 per pixel column at 100 dpi

# method -> (label, colour, line style)
METHOD_STYLE = {
    "baseline": ("baseline", "tab:red", "-"),  # correct's, whichever method drew it
    "resunet": ("ResUNet-1D", "tab:red", "-"),
    "resunet_before": ("ResUNet before", "tab:red", "--"),
    "resunet_after": ("ResUNet after", "tab:red", "-"),
    "arpls": ("arPLS", "tab:blue", "-"),
    "aspls": ("asPLS", "tab:green", "-"),
}


def method_style(name: str) -> tuple[str, str | None, str]:
    """``(label, colour, line style)`` of a method; an unknown one is its own label."""
    return METHOD_STYLE.get(name, (name, None, "-"))


def axis_label(calibrated: bool) -> str:
    """The x label of a spectrum: Raman shift, or the pixel index of an uncalibrated axis."""
    return "Raman shift (cm$^{-1}$)" if calibrated else "pixel (uncalibrated axis)"


def figure(figsize: tuple[float, float] = (8, 5), **kw: Any) -> Figure:
    """A figure on an Agg canvas, laid out by matplotlib's constrained layout.

    Parameters
    ----------
    figsize
        Width and height in inches.
    **kw
        Further :class:`~matplotlib.figure.Figure` arguments (``layout`` among them).
    """
    fig = Figure(figsize=figsize, **{"layout": "constrained", **kw})
    FigureCanvasAgg(fig)
    return fig


SOFTWARE = "raman-baseline"  # the PNG's Software text chunk: pipeline.outputs knows ours by it


def save(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders created), atomically; return ``path``.

    The PNG's ``Software`` text chunk says :data:`SOFTWARE`.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": SOFTWARE})
    return path


def masked_spans(masked: np.ndarray | None) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in ``masked`` (L,); none for None."""
    if masked is None or not np.any(masked):
        return []
    flags = np.concatenate([[0], np.asarray(masked, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def band(
    x: np.ndarray, low: np.ndarray, high: np.ndarray, buckets: int = DRAWN_BUCKETS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, low, high)`` of a shaded band to draw: all points, or each bucket's extremes.

    As :func:`drawn`: a band of more than ``8 * buckets`` points is cut into ``buckets`` runs,
    each drawn from its lowest ``low`` to its highest ``high`` at its first point's ``x``;
    NaN (masked pixels) leave gaps.
    """
    n = len(x)
    if n <= 8 * buckets:
        return x, low, high
    k = n // buckets
    runs = slice(0, buckets * k)
    lows = low[runs].reshape(buckets, k).min(axis=1)  # NaN in a run: NaN, a gap
    highs = high[runs].reshape(buckets, k).max(axis=1)
    return x[runs][::k], lows, highs


def drawn(
    x: np.ndarray, y: np.ndarray, buckets: int = DRAWN_BUCKETS
) -> tuple[np.ndarray, np.ndarray]:
    """The points of a line to draw: all of them, or each bucket's lowest and highest.

    A line of more than ``8 * buckets`` points (a spectrum far longer than the figure is
    pixels wide) is cut into ``buckets`` runs of equal length (the remainder one more) and
    drawn through each run's minimum and maximum, in axis order: the same envelope on screen
    (min/max decimation, ``buckets`` several times the axes' pixel columns), without handing
    matplotlib millions of points (about 150 bytes each in its paths). A run holding NaN is
    drawn as a gap. Shorter lines are returned as they are.

    Parameters
    ----------
    x, y
        The axis (L,) and the values (L,).
    buckets
        Runs kept: ``2 * buckets`` points (two more with a remainder) are drawn.
    """
    n = len(y)
    if n <= 8 * buckets:
        return x, y
    k = n // buckets
    runs = y[: buckets * k].reshape(buckets, k)
    offsets = np.arange(buckets) * k
    keep = [runs.argmin(axis=1) + offsets, runs.argmax(axis=1) + offsets]
    if n > buckets * k:  # the remainder
        tail = y[buckets * k :]
        keep.append(buckets * k + np.array([tail.argmin(), tail.argmax()]))
    idx = np.unique(np.concatenate(keep))
    return x[idx], y[idx]


def correction(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    baselines: dict[str, np.ndarray],
    title: str,
    calibrated: bool,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
    masked: np.ndarray | None = None,
    std: np.ndarray | None = None,
    denoised: np.ndarray | None = None,
) -> Path:
    """PNG of a spectrum with each method's baseline (top) and corrected spectrum (middle).

    Parameters
    ----------
    path
        The PNG written.
    x, y
        The axis (L,) and the raw spectrum (L,).
    baselines
        Method name -> its baseline (L,) in ``y``'s units; styled by :func:`method_style`.
    title
        Above the top panel.
    calibrated
        Whether ``x`` is a Raman shift (else a pixel index).
    figsize
        Width and height in inches; None: 8 x 5.5, or 8 x 7.5 with a third panel.
    masked
        (L,) bool: pixels left out of the fit (:mod:`pipeline.masking`), shaded in both panels
        with the label "left out of the fit"; their NaN baselines leave gaps in the lines.
    std
        (L,) the standard deviation of the (first) baseline (``correct --uncertainty``): its
        ±2 sigma band is shaded around it in the top panel (:func:`band`).
    denoised
        (L,) the (first) corrected spectrum denoised (``correct --denoise``,
        :mod:`pipeline.denoise`): a third panel draws that corrected spectrum (light) and the
        denoised one (dark) over it; NaN (masked pixels) leave gaps.
    """
    rows = 2 if denoised is None else 3
    fig = figure(figsize or (8, 5.5 if rows == 2 else 7.5))
    top, bottom, *third = fig.subplots(rows, 1, sharex=True)
    top.plot(*drawn(x, y), color="0.45", lw=0.8, label="raw spectrum")
    for name, baseline in baselines.items():
        label, colour, style = method_style(name)
        top.plot(*drawn(x, baseline), color=colour, ls=style, lw=1.4, label=label)
        bottom.plot(*drawn(x, y - baseline), color=colour, ls=style, lw=0.8, label=label)
        if std is not None:
            top.fill_between(
                *band(x, baseline - 2 * std, baseline + 2 * std),
                color=colour,
                alpha=0.3,
                lw=0,
                label="±2σ (baseline_std)",
            )
            std = None  # the first baseline's
    if third:
        corrected = y - next(iter(baselines.values()))
        third[0].plot(*drawn(x, corrected), color="0.7", lw=0.8, label="corrected")
        third[0].plot(*drawn(x, denoised), color="0.1", lw=1.0, label="denoised")
        third[0].axhline(0, color="black", lw=0.5)
        third[0].legend(loc="upper right", frameon=False, fontsize=8)
        third[0].set_ylabel("denoised")
    for k, (start, stop) in enumerate(masked_spans(masked)):
        label = "left out of the fit" if k == 0 else None
        left = (x[max(start - 1, 0)] + x[start]) / 2  # half a step beyond: one pixel shows too
        right = (x[stop - 1] + x[min(stop, len(x) - 1)]) / 2
        for panel in (top, bottom, *third):
            panel.axvspan(left, right, color="0.88", lw=0, zorder=0, label=label)
            label = None
    bottom.axhline(0, color="black", lw=0.5)
    top.set_title(title, fontsize=9)
    top.legend(loc="upper right", frameon=False, fontsize=8)
    if len(baselines) > 1:  # one baseline: the top legend says whose
        bottom.legend(loc="upper right", frameon=False, fontsize=8)
    top.set_ylabel("intensity")
    bottom.set_ylabel("corrected")
    (third or [bottom])[0].set_xlabel(axis_label(calibrated))
    return save(fig, path, dpi)
