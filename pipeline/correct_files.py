"""What ``raman-baseline correct`` writes: every file read, corrected, its outputs written.

Every file is read by :mod:`pipeline.spectra_io`; each spectrum gets its baseline from the
estimate :mod:`pipeline.correct` chose (in its own intensity units) and the corrected spectrum
``intensity - baseline``. Outputs per input file: a CSV ``wavenumber,intensity,baseline,
corrected`` and a PNG per spectrum (``<stem>.csv``, or ``<stem>_point003.csv`` for the points
of a multi-point file), or ``<stem>.npz`` with ``x``, ``y``, ``baseline`` and ``corrected`` for
an ``.npz`` batch. With ``--uncertainty`` (:func:`pipeline.correct.uncertainty_method`), a
``baseline_std`` column and array (the baseline's per-point standard deviation) and a shaded
±2 sigma band in the PNG (``docs/uncertainty.md``). With ``--denoise``
(:func:`pipeline.correct.choose_denoiser`), the corrected spectra denoised by the second network
(:mod:`pipeline.denoise`): a ``denoised`` column (after ``corrected``) and array, and a third
PNG panel. Where they go is decided before any work,
and the outputs of one input file are written together or not at all
(:mod:`pipeline.outputs`). Padding at a spectrum's ends and NaN pixels are left out of the fit
and written back empty, with a note per file (:mod:`pipeline.masking`). A file that fails is
reported in one line (:func:`pipeline.errors.one_line`) and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.baselines import BaselineFn
from pipeline.correct import STD, CorrectionError
from pipeline.denoise import COLUMN as DENOISED
from pipeline.errors import one_line
from pipeline.files import atomic_path
from pipeline.masking import check_unmasked, find_masked, fit_unmasked
from pipeline.outputs import (
    OutputError,
    check_outdir,
    inside,
    plan_outputs,
    remove_if_empty,
    staged,
    terminate_cleanly,
)
from pipeline.plots import correction as draw_correction
from pipeline.spectra_io import MIN_POINTS, Spectra, SpectrumError, numbered, read_spectra
from pipeline.table_csv import write_columns

CSV_COLUMNS = ("wavenumber", "intensity", "baseline", "corrected")
# --denoise: the corrected spectra (N, L) in, denoised out (pipeline.denoise.OnnxDenoiser.denoise)
Denoise = Callable[[np.ndarray], np.ndarray]
UNCALIBRATED = "the axis is a detector pixel index (uncalibrated): the CSV's first column is pixel"


@dataclass
class Report:
    """What a run of :func:`correct_files` did."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    spectra: int = 0
    notes: list[tuple[Path, str]] = field(default_factory=list)  # (input, what was done)
    renamed: list[tuple[Path, Path]] = field(default_factory=list)  # (input, its outputs' stem)


def correct_spectra(
    spectra: Spectra, estimate: BaselineFn, min_points: int = MIN_POINTS
) -> tuple[np.ndarray, str]:
    """Baselines ``(N, L)`` of every spectrum read from one file, and a note ("" for none).

    Masked pixels (:mod:`pipeline.masking`: padding at the ends, NaN) are left out of the fit
    and get NaN; the note says which. An ``estimate`` that answers baselines and standard
    deviations ``(2, N, L)`` (:func:`pipeline.correct.uncertainty_method`) gives them both,
    masked alike.

    Raises
    ------
    SpectrumFileError
        A spectrum has fewer than ``min_points`` unmasked pixels.
    RuntimeError
        The method's answer has the wrong shape, or NaN or Inf at an unmasked pixel.
    """
    masked = find_masked(spectra.y, spectra.x, spectra.raw_counts)
    check_unmasked(masked, spectra.source, min_points)
    baseline = np.asarray(fit_unmasked(spectra.x, spectra.y, masked, estimate), dtype=np.float64)
    if baseline.shape[-2:] != spectra.y.shape or not np.isfinite(baseline[..., ~masked.mask]).all():
        raise RuntimeError(f"the method returned an unusable baseline for {spectra.source}")
    return baseline, masked.note


def write_outputs(
    spectra: Spectra,
    baseline: np.ndarray,
    stem: Path,
    plots: bool,
    done: set[Path] | None = None,
    outdir: Path | None = None,
    std: np.ndarray | None = None,
    denoised: np.ndarray | None = None,
) -> list[Path]:
    """Write one input's outputs; all of them, or none (:func:`pipeline.outputs.staged`).

    ``done``: the outputs already written in this run, none of which may be written again;
    ``outdir``: the folder they must stay in (through no symbolic link out of it); ``std``:
    the baselines' standard deviations ``(N, L)`` (``--uncertainty``), else None;
    ``denoised``: the corrected spectra denoised ``(N, L)`` (``--denoise``), else None.
    Returns the outputs' paths (``stem`` and a suffix, or ``stem_point003`` and a suffix).
    """
    extra = {name: a for name, a in ((DENOISED, denoised), (STD, std)) if a is not None}
    with staged(stem, done, outdir) as (tmp, written):
        if spectra.kind == "npz":
            path = tmp.with_name(tmp.name + ".npz")
            arrays = {"x": spectra.x, "y": spectra.y, "baseline": baseline}
            np.savez(path, **arrays, corrected=spectra.y - baseline, **extra)
            written.append(path)
            return written  # moved into place when the block ends
        for i in range(len(spectra)):
            point = numbered("point", i, len(spectra))
            name = tmp.name if len(spectra) == 1 else f"{tmp.name}_{point}"
            csv = tmp.with_name(name + ".csv")
            row = {key: a[i] for key, a in extra.items()}
            _write_csv(csv, spectra.x, spectra.y[i], baseline[i], row, spectra.calibrated)
            written.append(csv)
            if plots:
                png = csv.with_suffix(".png")
                title = f"{spectra.source.name}: {spectra.labels[i]}"
                std_i, denoised_i = row.get(STD), row.get(DENOISED)
                x, y = spectra.x, spectra.y[i]
                plot_correction(png, x, y, baseline[i], title, spectra, std_i, denoised_i)
                written.append(png)
    return written


def _write_csv(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    baseline: np.ndarray,
    extra: dict[str, np.ndarray] | None = None,
    calibrated: bool = True,
) -> None:
    """The CSV of one spectrum, written in blocks (:mod:`pipeline.table_csv`): NaN is empty.

    The first column is ``wavenumber`` (Raman shift, cm-1), or ``pixel`` for an uncalibrated
    axis (a detector pixel index); then ``intensity``, ``baseline``, ``corrected``, and a
    column per entry of ``extra`` (L,), in its order: ``denoised`` (``--denoise``) and
    ``baseline_std`` (``--uncertainty``).
    """
    axis = CSV_COLUMNS if calibrated else ("pixel", *CSV_COLUMNS[1:])
    extra = extra or {}
    columns, names = [x, y, baseline, y - baseline, *extra.values()], (*axis, *extra)
    with atomic_path(path) as tmp:
        write_columns(tmp, columns, names, fmt="%.10g")


def plot_correction(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    baseline: np.ndarray,
    title: str,
    spectra: Spectra,
    std: np.ndarray | None = None,
    denoised: np.ndarray | None = None,
) -> None:
    """PNG of the raw spectrum with its baseline (top) and the corrected spectrum (bottom).

    With ``std``, the baseline's ±2 sigma band is shaded in the top panel; with ``denoised``,
    a third panel draws the corrected spectrum (light) and the denoised one (dark).
    """
    masked = np.isnan(baseline)  # pipeline.masking: left out of the fit
    calibrated = spectra.calibrated
    baselines = {"baseline": baseline}
    draw_correction(
        path, x, y, baselines, title, calibrated, masked=masked, std=std, denoised=denoised
    )


def correct_files(
    paths: Sequence[str | Path],
    estimate: BaselineFn,
    outdir: Path,
    plots: bool = True,
    min_points: int = MIN_POINTS,
    progress: bool = True,
    denoise: Denoise | None = None,
) -> Report:
    """Correct every file; a bad file is recorded in the report and the others go on.

    Where the outputs go is decided before any work (:func:`pipeline.outputs.plan_outputs`:
    collisions resolved by a suffix, recorded in ``Report.renamed``), and each input's
    outputs are written whole or not at all (:mod:`pipeline.outputs`). ``denoise``
    (``--denoise``: :meth:`pipeline.denoise.OnnxDenoiser.denoise`), when given, takes each
    file's corrected spectra ``(N, L)``, NaN at masked pixels, and answers them denoised, the
    same shape, NaN kept: a ``denoised`` column, array and PNG panel.

    Raises
    ------
    OutputError
        Before any work: ``outdir`` is an existing file or cannot be written to, or an output
        could be written over one of the inputs.
    SystemExit
        Status 143 on SIGTERM, once the outputs of the file being written are removed.
    """
    from tqdm import tqdm

    paths = list(dict.fromkeys(Path(p) for p in paths))  # each file once, in order
    plan = plan_outputs(paths, outdir)
    created = check_outdir(outdir)
    report = Report(renamed=plan.renamed)
    done: set[Path] = set()
    with terminate_cleanly():
        for path, stem in tqdm(
            list(zip(paths, plan.stems, strict=True)),
            desc="correct",
            unit="file",
            disable=not progress,
        ):
            _correct_one(path, stem, estimate, outdir, plots, min_points, report, done, denoise)
    if created and not report.written:
        remove_if_empty(outdir)  # every input failed: leave no empty folder behind
    return report


def _correct_one(
    path: Path,
    stem: Path,
    estimate: BaselineFn,
    outdir: Path,
    plots: bool,
    min_points: int,
    report: Report,
    done: set[Path],
    denoise: Denoise | None = None,
) -> None:
    """Correct one file into ``report``; a failure is recorded there, not raised."""
    try:
        inside(stem, outdir)
        spectra = read_spectra(path, min_points, masked=True)
        baseline, note = correct_spectra(spectra, estimate, min_points)
        baseline, std = (baseline[0], baseline[1]) if baseline.ndim == 3 else (baseline, None)
        denoised = None if denoise is None else denoise(spectra.y - baseline)
        report.written += write_outputs(spectra, baseline, stem, plots, done, outdir, std, denoised)
        report.spectra += int(np.isfinite(baseline).any(axis=-1).sum())  # not a NaN-only one
        report.notes += [(path, text) for text in (*spectra.notes, note) if text]
        if not spectra.calibrated:
            report.notes.append((path, UNCALIBRATED))
    except Exception as exc:  # one bad file must not stop the batch
        named = isinstance(exc, SpectrumError | CorrectionError | OutputError)  # names the file
        report.failed.append((path, one_line(exc) if named else f"{path}: {one_line(exc)}"))
