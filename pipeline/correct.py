"""Baseline correction of users' spectra files: what ``raman-baseline correct`` runs.

Every file is read by :mod:`pipeline.spectra_io`; each spectrum gets its baseline in its own
intensity units and the corrected spectrum ``intensity - baseline``. Outputs per input file:
a CSV ``wavenumber,intensity,baseline,corrected`` and a PNG per spectrum (``<stem>.csv``, or
``<stem>_point003.csv`` for the points of a multi-point file), or ``<stem>.npz`` with ``x``,
``y``, ``baseline`` and ``corrected`` for an ``.npz`` batch. The outputs of one input file are
written together (temporary file, then rename) or not at all.

Lengths. The network was trained on spectra of ``simulate.length`` points (512) and is fully
convolutional, so a spectrum of another length can either be resampled onto a uniform grid of
512 points and its baseline resampled back (``resample``), or run at its own number of points,
padded to the next multiple of 32 and cropped (``native``). ``benchmarks/length_handling.py``
measures both on simulated spectra of 300 to 4,000 points: ``resample`` is the better one
overall (native is 1.45 times worse at 300 points, about 5% better above 1,500 points at two
to five times the cost, and far worse when bands widen with L), so it is the default, first in
:data:`LENGTH_MODES`; it is also what the registered model does when served.

Classical methods. arPLS and asPLS use the ``lam`` chosen on the validation set
(``reports/classical.json``), else the middle of ``params.yaml``'s grid. That ``lam`` was chosen
on spectra of ``simulate.length`` points; a Whittaker smoother with a second-order difference
penalty smooths over about ``lam ** (1/4)`` points, so for a spectrum of ``L`` points ``lam``
is scaled by ``(L / simulate.length) ** 4``: the same smoothness relative to the spectrum's
window.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config import ClassicalMethodParams
from pipeline.errors import one_line
from pipeline.files import atomic_path
from pipeline.inference import OnnxBaseline, predict_baselines, resample, uniform
from pipeline.spectra_io import MIN_POINTS, Spectra, SpectrumError, read_spectra

DEFAULT_MODEL = "models:/resunet1d@production"
METHODS = ("resunet", "arpls", "aspls")
LENGTH_MODES = ("resample", "native")  # the default first: see benchmarks/length_handling.py
PAD_MODE = "edge"  # native mode's padding, measured against "reflect" by the same benchmark
CSV_COLUMNS = ("wavenumber", "intensity", "baseline", "corrected")

BaselineFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # x (L,), y (N, L) -> (N, L)


class ModelLoadError(RuntimeError):
    """The model file cannot be loaded; the message says which and why."""


# ------------------------------------------------------------------------- the network


def load_network(spec: str, grid: int) -> OnnxBaseline:
    """The network behind ``spec``: a path ending in ``.onnx``, or a ``models:/`` URI.

    ``grid`` is the length the network was trained on (a registered model carries its own).
    A registry problem raises :class:`pipeline.registry.RegistryError`; an unreadable ONNX
    file raises :class:`ModelLoadError`.
    """
    if spec.lower().endswith(".onnx"):
        path = Path(spec)
        if not path.is_file():
            raise ModelLoadError(f"no ONNX model at {path}")
        try:
            return OnnxBaseline(path, grid=grid)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{path} is not a loadable ONNX model: {exc}") from exc
    from pipeline import registry

    registry.connect()
    return registry.load_model(spec).unwrap_python_model().model


def length_multiple(model: OnnxBaseline, default: int = 32) -> int:
    """The multiple of points the exported network needs, read from its symbolic length.

    ``export`` declares the length axis as ``32*blocks`` for the default network.
    """
    dim = model.session.get_inputs()[0].shape[-1]
    if isinstance(dim, int):
        return dim
    found = re.fullmatch(r"\s*(\d+)\s*\*\s*\w+\s*", str(dim))
    return int(found.group(1)) if found else default


def padded(
    run: Callable[[np.ndarray], np.ndarray], multiple: int, pad: str = PAD_MODE
) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a ``(B, 1, L)`` network so that it takes any ``L``.

    The input is padded on both ends (``numpy.pad`` mode ``pad``) to the next multiple of
    ``multiple``, and the output cropped back to ``L`` points.
    """

    def run_padded(z: np.ndarray) -> np.ndarray:
        length = z.shape[-1]
        extra = -length % multiple
        left = extra // 2
        z = np.pad(z, ((0, 0), (0, 0), (left, extra - left)), mode=pad)
        return run(z)[..., left : left + length]

    return run_padded


def network_baselines(
    model: OnnxBaseline,
    x: np.ndarray,
    y: np.ndarray,
    length_mode: str = LENGTH_MODES[0],
    pad: str = PAD_MODE,
    batch_size: int = 1024,
) -> np.ndarray:
    """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x``.

    ``resample``: onto the model's uniform grid and back (:meth:`OnnxBaseline.baselines`).
    ``native``: at the spectrum's own number of points, padded to the multiple the network
    needs; an axis that is not uniform is first resampled onto a uniform one of as many points.
    Either way normalisation is inverted exactly: the baselines are in the units of ``y``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if length_mode == "resample":
        return model.baselines(x, y, batch_size)
    if length_mode != "native":
        raise ValueError(f"unknown length mode {length_mode!r}; expected one of {LENGTH_MODES}")
    run = padded(model.run, length_multiple(model), pad)
    if uniform(x):
        return predict_baselines(run, y, batch_size)
    grid = np.linspace(x[0], x[-1], x.size)
    return resample(grid, predict_baselines(run, resample(x, y, grid), batch_size), x)


# ----------------------------------------------------------------- classical methods


def scaled_lam(lam: float, length: int, reference_length: int) -> float:
    """``lam`` chosen at ``reference_length`` points, for a spectrum of ``length`` points.

    A second-order Whittaker penalty smooths over about ``lam ** (1/4)`` points: keeping the
    same smoothness relative to the window scales ``lam`` by ``(length / reference) ** 4``.
    """
    return lam * (length / reference_length) ** 4


def chosen_log10_lam(
    name: str, settings: ClassicalMethodParams, report: Path | None
) -> tuple[float, str]:
    """``log10(lam)`` of a classical method, and where it comes from.

    The value chosen on the validation set (``report``, ``reports/classical.json``) when that
    file exists, else the middle of the method's ``log10_lam`` grid in ``params.yaml``.
    """
    if report is not None and report.is_file():
        return float(json.loads(report.read_text())[name]["log10_lam"]), f"chosen in {report}"
    middle = float(np.median(settings.log10_lam))
    return middle, f"middle of params.yaml's classical.{name}.log10_lam grid (no {report})"


def classical_baselines(
    name: str, log10_lam: float, settings: ClassicalMethodParams, reference_length: int
) -> BaselineFn:
    """The classical method ``name`` as a :data:`BaselineFn`, ``lam`` scaled to each length."""
    from pipeline.baselines import classical  # pybaselines: only when a classical method runs

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = np.atleast_2d(y)
        lam = scaled_lam(10**log10_lam, y.shape[1], reference_length)
        method = classical(name, lam, settings)
        return np.stack([method(x, row) for row in y])

    return estimate


# ------------------------------------------------------------------------ the outputs


@dataclass
class Report:
    """What a run of :func:`correct_files` did."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    spectra: int = 0


def output_stems(paths: Sequence[Path], outdir: Path) -> list[Path]:
    """Where each input's outputs go, without the suffix.

    ``outdir`` / the input's folder relative to the inputs' common folder / the input's stem,
    so files of the same name in different folders do not collide; files that do not exist
    (they will fail) do not count. Inputs that would still collide (``a.txt`` and ``a.csv``)
    keep their suffix in the name (``a_txt``).
    """
    parents = [Path(os.path.abspath(p)).parent for p in paths]
    existing = [parent for p, parent in zip(paths, parents, strict=True) if Path(p).exists()]
    common = Path(os.path.commonpath(existing or parents)) if parents else Path()
    stems = [
        outdir / (parent.relative_to(common) if parent.is_relative_to(common) else "") / p.stem
        for p, parent in zip(paths, parents, strict=True)
    ]
    taken = [str(s) for s in stems]
    return [
        s.with_name(f"{s.name}_{p.suffix.lstrip('.')}") if taken.count(str(s)) > 1 else s
        for s, p in zip(stems, paths, strict=True)
    ]


def correct_spectra(spectra: Spectra, estimate: BaselineFn) -> np.ndarray:
    """Baselines ``(N, L)`` of every spectrum read from one file."""
    baseline = np.asarray(estimate(spectra.x, spectra.y), dtype=np.float64)
    if baseline.shape != spectra.y.shape or not np.isfinite(baseline).all():
        raise RuntimeError(f"the method returned an unusable baseline for {spectra.source}")
    return baseline


def write_outputs(spectra: Spectra, baseline: np.ndarray, stem: Path, plots: bool) -> list[Path]:
    """Write one input's outputs; all of them, or none (what was written is removed)."""
    written: list[Path] = []
    try:
        if spectra.kind == "npz":
            path = stem.with_name(stem.name + ".npz")
            arrays = {"x": spectra.x, "y": spectra.y, "baseline": baseline}
            with atomic_path(path) as tmp:
                np.savez(tmp, **arrays, corrected=spectra.y - baseline)
            return [path]
        for i in range(len(spectra)):
            name = stem.name if len(spectra) == 1 else f"{stem.name}_{_point(i, len(spectra))}"
            csv = stem.with_name(name + ".csv")
            _write_csv(csv, spectra.x, spectra.y[i], baseline[i])
            written.append(csv)
            if plots:
                png = csv.with_suffix(".png")
                title = f"{spectra.source.name}: {spectra.labels[i]}"
                plot_correction(png, spectra.x, spectra.y[i], baseline[i], title, spectra)
                written.append(png)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def _point(i: int, n: int) -> str:
    return f"point{i + 1:0{max(3, len(str(n)))}d}"


def _write_csv(path: Path, x: np.ndarray, y: np.ndarray, baseline: np.ndarray) -> None:
    table = np.column_stack([x, y, baseline, y - baseline])
    with atomic_path(path) as tmp:
        np.savetxt(
            tmp, table, fmt="%.10g", delimiter=",", header=",".join(CSV_COLUMNS), comments=""
        )


def plot_correction(
    path: Path, x: np.ndarray, y: np.ndarray, baseline: np.ndarray, title: str, spectra: Spectra
) -> None:
    """PNG of the raw spectrum with its baseline (top) and the corrected spectrum (bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, y, color="0.45", lw=0.8, label="raw spectrum")
    top.plot(x, baseline, color="tab:red", lw=1.4, label="baseline")
    top.legend(loc="upper right", frameon=False)
    top.set_title(title, fontsize=9)
    bottom.plot(x, y - baseline, color="black", lw=0.8, label="corrected")
    bottom.axhline(0, color="tab:red", lw=0.6)
    bottom.legend(loc="upper right", frameon=False)
    axis = "Raman shift (cm$^{-1}$)" if spectra.calibrated else "pixel (uncalibrated axis)"
    bottom.set_xlabel(axis)
    for ax in (top, bottom):
        ax.set_ylabel("intensity")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def correct_files(
    paths: Sequence[str | Path],
    estimate: BaselineFn,
    outdir: Path,
    plots: bool = True,
    min_points: int = MIN_POINTS,
    progress: bool = True,
) -> Report:
    """Correct every file; a bad file is recorded in the report and the others go on."""
    from tqdm import tqdm

    paths = list(dict.fromkeys(Path(p) for p in paths))  # each file once, in order
    report = Report()
    for path, stem in tqdm(
        list(zip(paths, output_stems(paths, outdir), strict=True)),
        desc="correct",
        unit="file",
        disable=not progress,
    ):
        try:
            spectra = read_spectra(path, min_points)
            baseline = correct_spectra(spectra, estimate)
            report.written += write_outputs(spectra, baseline, stem, plots)
            report.spectra += len(spectra)
        except Exception as exc:  # one bad file must not stop the batch
            named = isinstance(exc, SpectrumError)  # its message names the file already
            report.failed.append((path, one_line(exc) if named else f"{path}: {one_line(exc)}"))
    return report
