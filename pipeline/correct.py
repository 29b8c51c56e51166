"""Baseline correction of users' spectra files: what ``raman-baseline correct`` runs.

Every file is read by :mod:`pipeline.spectra_io`; each spectrum gets its baseline in its own
intensity units and the corrected spectrum ``intensity - baseline``. Outputs per input file:
a CSV ``wavenumber,intensity,baseline,corrected`` and a PNG per spectrum (``<stem>.csv``, or
``<stem>_point003.csv`` for the points of a multi-point file), or ``<stem>.npz`` with ``x``,
``y``, ``baseline`` and ``corrected`` for an ``.npz`` batch. With ``--uncertainty`` (a model
exported with MC dropout, ``--method resunet``: :func:`uncertainty_method`), a
``baseline_std`` column and array (the baseline's per-point standard deviation) and a shaded
±2 sigma band in the PNG (``docs/uncertainty.md``). Where they go is decided before
any work, and the outputs of one input file are written together or not at all
(:mod:`pipeline.outputs`).

The network runs under ONNX Runtime (:class:`pipeline.inference.OnnxBaseline`), its
``baselines`` method taking spectra of any length, resampled onto the training grid or at their
native length (:mod:`pipeline.normalise`). Which network (:func:`choose_network`): the one
``--model`` names; else, from the registry that ``--store``, ``MLFLOW_TRACKING_URI`` or a
``mlflow.db`` in the working folder names (:func:`find_store`), its fast variant when the gate
measured it within ``student.max_rmse_ratio`` of the current production version on every
benchmark, else ``production`` (:func:`registered_default`); else, with no registry found,
the model shipped inside the package (:mod:`pipeline.shipped`), verified against its card and
named in the summary. The default method, ``refined`` (:data:`DEFAULT_METHOD`, chosen by
measurement: ``benchmarks/methods.py``), adds to the network's baseline a classical fit of its
residual with the choice made on validation data (:func:`refined_method`:
``--refined-report``, else the shipped model's card). arPLS and asPLS use the ``lam`` chosen
on the validation set (``--classical-report``, else ``reports/classical.json``, else the value
the shipped model's card records), scaled to each spectrum's length
(:func:`pipeline.baselines.classical_baselines`). No ``params.yaml`` is needed: without one the
grid and the classical settings come from the shipped model's card. Padding at a spectrum's
ends and NaN pixels are left out of the fit and written back empty, with a note per file
(:mod:`pipeline.masking`). A file that fails is reported in one line
(:func:`pipeline.errors.one_line`) and the others go on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import shipped
from pipeline.baselines import BaselineFn, classical_baselines, refined_baselines
from pipeline.config import ClassicalMethodParams, Params
from pipeline.errors import one_line
from pipeline.files import atomic_path
from pipeline.inference import OnnxBaseline
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

DEFAULT_MODEL = "models:/resunet1d@production"
SHIPPED = "shipped"  # --model shipped: the model inside the package
PRODUCTION = "production"  # --model production: the registry's production, never a variant
LOCAL_STORE = Path("mlflow.db")  # the project's store, in the working folder
METHODS = ("resunet", "refined", "arpls", "aspls")
NETWORK_METHODS = ("resunet", "refined")  # the methods that run a network
# chosen by measurement (benchmarks/methods.py, README): best on the real references
DEFAULT_METHOD = "refined"
CSV_COLUMNS = ("wavenumber", "intensity", "baseline", "corrected")
UNCALIBRATED = "the axis is a detector pixel index (uncalibrated): the CSV's first column is pixel"
STD = "baseline_std"  # --uncertainty: the CSV's fifth column, the .npz's key


class ModelLoadError(RuntimeError):
    """The model file cannot be loaded; the message says which and why."""


class CorrectionError(RuntimeError):
    """Some input files could not be corrected (each one is listed before this is raised)."""


# ------------------------------------------------------------------------- the methods


def load_network(spec: str, grid: int, store: str | None = None) -> OnnxBaseline:
    """The network behind ``spec``: a path ending in ``.onnx``, a ``models:/`` URI, ``shipped``.

    ``grid`` is the length an ONNX file's network was trained on (a registered or the shipped
    model carries its own); ``store`` the registry of a ``models:/`` URI (None:
    :func:`pipeline.registry.tracking_uri`). A registry problem raises
    :class:`pipeline.registry.RegistryError`; an unreadable ONNX file raises
    :class:`ModelLoadError`; a shipped model whose files do not match its card raises
    :class:`pipeline.shipped.ShippedModelError`.
    """
    if spec == SHIPPED:
        model = shipped.load()
        return _onnx(model.onnx, model.grid)
    if spec.lower().endswith(".onnx"):
        path = Path(spec)
        if not path.is_file():
            raise ModelLoadError(f"no ONNX model at {path}")
        return _onnx(path, grid)
    if not spec.startswith(("models:/", "runs:/")):
        raise ModelLoadError(
            f"--model {spec}: expected a models:/ URI (models:/resunet1d@production), a path "
            f"ending in .onnx (export a checkpoint with raman-baseline export) or {SHIPPED}"
        )
    from pipeline import registry

    registry.connect(store)
    bundled = registry.load_model(spec).unwrap_python_model().model  # its own OnnxBaseline copy
    return OnnxBaseline.from_session(bundled.session, grid=bundled.grid)


def _onnx(path: Path, grid: int) -> OnnxBaseline:
    try:
        return OnnxBaseline(path, grid=grid)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"{path} is not a loadable ONNX model: {one_line(exc)}") from exc


def find_store(store: str | None = None) -> tuple[str | None, str]:
    """The model registry ``correct`` reads, and how it was found; None when there is none.

    In order: ``store`` (``--store``: a URI, or the path of a SQLite file), the environment's
    ``MLFLOW_TRACKING_URI``, a ``mlflow.db`` in the working folder (the project's store when
    run in the repository). Nothing is opened here: a registry found but unusable is an error
    later, never a reason to use another model.
    """
    if store:
        uri = store if "://" in store else f"sqlite:///{Path(store).resolve()}"
        return uri, "--store"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    if LOCAL_STORE.exists():
        return f"sqlite:///{LOCAL_STORE.resolve()}", f"./{LOCAL_STORE}"
    return None, f"no model registry found: no --store, no MLFLOW_TRACKING_URI, no ./{LOCAL_STORE}"


def choose_network(
    model: str | None, store: str | None, params: Params | None
) -> tuple[OnnxBaseline, str]:
    """The network ``correct`` runs, and one line saying which and why.

    :func:`network_spec` chooses it; :func:`load_network` loads it.

    Raises
    ------
    RegistryError, ModelLoadError, ShippedModelError
        As :func:`load_network`; never answered by falling back to another model.
    """
    spec, grid, uri, which = network_spec(model, store, params)
    return load_network(spec, grid, uri), which


def network_spec(
    model: str | None, store: str | None, params: Params | None
) -> tuple[str, int, str | None, str]:
    """Which network ``correct`` runs: ``(spec, grid, registry URI, one line saying why)``.

    ``model`` (``--model``) wins; a ``models:/`` URI is read from :func:`find_store`'s
    registry, and ``production`` means ``models:/resunet1d@production``. With no ``model``:
    the registry's fast variant when one is within ``student.max_rmse_ratio`` of production
    on every benchmark (:func:`registered_default`), else ``production``; with no registry
    found, the shipped model. ``params`` (None without a ``params.yaml``) gives an ONNX
    file's grid and the ratio, else the shipped model's card does. The answer is what
    :func:`load_network` takes (``correct-map``'s workers load it again from there).

    Raises
    ------
    RegistryError, ShippedModelError
        The registry failed, or the shipped model does not match its card.
    """
    uri, how = find_store(store)
    if model == PRODUCTION:
        model = DEFAULT_MODEL
    spec = model or (DEFAULT_MODEL if uri is not None else SHIPPED)
    if spec == SHIPPED:
        found = shipped.load()
        why = "" if model else f" ({how})"
        return SHIPPED, found.grid, None, f"the shipped model {found.label}{why}"
    chosen = ""
    if model is None:
        spec, chosen = registered_default(uri, params)
    grid = params.simulate.length if params is not None else None
    if spec.lower().endswith(".onnx") and grid is None:
        grid = shipped.read_card()["grid"]  # the grid every model so far was trained on
    registered = uri is not None and spec.startswith(("models:/", "runs:/"))
    where = f" in {uri} (from {how})" if registered else ""
    return spec, grid or 0, uri, f"{spec}{where}{chosen}"


def registered_default(uri: str, params: Params | None) -> tuple[str, str]:
    """What ``correct`` runs from the registry ``uri`` when no model is named, and why.

    The fast variant when :func:`pipeline.registry.fast_variant` finds one within
    ``student.max_rmse_ratio`` (``params``, else the shipped model's card) of the production
    version on every benchmark, by its version; else ``models:/resunet1d@production``.
    Returns ``(spec, why)``, ``why`` to follow the spec in the summary line.

    Raises
    ------
    RegistryError
        The store failed, or has no production version.
    """
    from pipeline import registry

    if params is not None:
        max_ratio = params.student.max_rmse_ratio
    else:
        max_ratio = float(shipped.read_card()["params"]["student"]["max_rmse_ratio"])
    current, variant, why = registry.fast_variant(registry.connect(uri), max_ratio)
    if current is None:
        return DEFAULT_MODEL, ""  # loading it says there is no production version
    if variant is None:
        return DEFAULT_MODEL, f", v{current} (no fast variant used: {why})"
    within = f"within {100 * (max_ratio - 1):.3g}% of production v{current} on every benchmark"
    return f"models:/{registry.MODEL_NAME}/{variant}", f": the fast variant v{variant} ({within})"


def _card() -> shipped.ShippedModel:
    """The shipped model's card, read for the settings recorded on it.

    Its files are not verified here: :func:`pipeline.shipped.load` does that when the model
    itself is run.
    """
    return shipped.ShippedModel(shipped.FOLDER, shipped.read_card())


def classical_method(
    name: str, params: Params | None, report: Path | None
) -> tuple[BaselineFn, str]:
    """The classical method ``name`` as ``correct`` runs it, and a line saying which ``lam``.

    ``log10(lam)``: from ``report`` (``--classical-report``, else ``reports/classical.json``)
    when it exists, else the value chosen on validation that the shipped model's card records.
    ``max_iter`` and ``tol`` come from ``params`` (None without a ``params.yaml``), else from
    the card; the length ``lam`` was chosen at from ``params``' ``simulate.length`` for a
    report, the card's ``reference_length`` for the card's value.
    """
    has_report = report is not None and report.is_file()
    card = None
    if params is None or not has_report:
        card = _card().classical(name)
    if params is not None:
        settings = getattr(params.classical, name)
    else:
        settings = ClassicalMethodParams((card["log10_lam"],), card["max_iter"], card["tol"])
    if has_report:
        log10_lam, source = chosen_log10_lam(name, settings, report)
        length = params.simulate.length if params is not None else card["reference_length"]
    else:
        log10_lam, length = float(card["log10_lam"]), int(card["reference_length"])
        source = f"chosen on validation, recorded in the shipped model's card; no {report}"
    estimate = classical_baselines(name, log10_lam, settings, length)
    how = f"{name}, log10(lam) = {log10_lam:g} at {length} points ({source}),"
    return estimate, how + f" scaled by (points / {length})^4"


def refined_method(
    network: BaselineFn, params: Params | None, report: Path | None
) -> tuple[BaselineFn, str]:
    """``refined`` as ``correct`` runs it: the network plus a classical fit of its residual.

    The classical part (``arpls``, ``aspls`` or ``none``, the network alone) and its
    ``log10(lam)``: from ``report`` (``--refined-report``: a metrics file of the
    ``evaluate_real`` stage, its ``lam.refined``) when given, else the choice made on
    validation that the shipped model's card records (``refined``). The choice belongs to
    the network it was made with: the card's to the shipped model. ``max_iter`` and ``tol``
    come from ``params`` (None without a ``params.yaml``), else from the card.

    Raises
    ------
    CorrectionError
        ``report`` is named but missing, or holds no refined choice.
    ShippedModelError
        No report and the card records no refined choice.
    """
    card = None
    if report is not None:
        if not report.is_file():
            raise CorrectionError(f"--refined-report {report}: no such file")
        choice = json.loads(report.read_text()).get("lam", {}).get("refined")
        if not choice:
            raise CorrectionError(f"--refined-report {report}: no lam.refined in it")
        length = params.simulate.length if params is not None else shipped.read_card()["grid"]
        source = f"chosen in {report}"
    else:
        choice = card = _card().refined()
        length = int(card["reference_length"])
        source = f"chosen on {card['chosen_on']}, recorded in the shipped model's card"
    method, log10_lam = choice["method"], choice.get("log10_lam")
    if method == "none":
        return network, f"refined: the network alone, no correction ({source})"
    if params is not None:
        settings = getattr(params.classical, method)
    else:
        found = card or _card().classical(method)
        settings = ClassicalMethodParams((float(log10_lam),), found["max_iter"], found["tol"])
    estimate = refined_baselines(network, method, float(log10_lam), settings, length)
    how = f"refined: {method} of the network's residual, log10(lam) = {log10_lam:g} at {length}"
    return estimate, how + f" points ({source}), scaled by (points / {length})^4"


def uncertainty_method(
    network: OnnxBaseline, which: str, method: str, length_mode: str
) -> BaselineFn:
    """``--uncertainty``: the network's baselines and standard deviations, ``(2, N, L)``.

    :meth:`pipeline.inference.OnnxBaseline.baselines_and_std` of a model exported with MC
    dropout (``model.mc_samples`` > 0, :mod:`pipeline.uncertainty`); ``which`` names the model
    in the error.

    Raises
    ------
    CorrectionError
        ``method`` is not ``resunet`` (the standard deviation is the network's own baseline's),
        or the model has no uncertainty output.
    """
    if method != "resunet":
        raise CorrectionError(
            f"--uncertainty: the standard deviation is the network's own baseline's; use it "
            f"with --method resunet, not {method}"
        )
    if not network.has_uncertainty:
        name = which if which.startswith("the ") else f"the model {which}"
        raise CorrectionError(
            f"--uncertainty: {name} has no uncertainty output ({STD}); use one "
            "trained with model.dropout > 0 and exported with model.mc_samples > 0 "
            "(docs/uncertainty.md), or leave out --uncertainty"
        )

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return network.baselines_and_std(x, y, length_mode=length_mode)

    return estimate


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


# ------------------------------------------------------------------------ the outputs


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
    deviations ``(2, N, L)`` (:func:`uncertainty_method`) gives them both, masked alike.

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
) -> list[Path]:
    """Write one input's outputs; all of them, or none (:func:`pipeline.outputs.staged`).

    ``done``: the outputs already written in this run, none of which may be written again;
    ``outdir``: the folder they must stay in (through no symbolic link out of it); ``std``:
    the baselines' standard deviations ``(N, L)`` (``--uncertainty``), else None.
    Returns the outputs' paths (``stem`` and a suffix, or ``stem_point003`` and a suffix).
    """
    with staged(stem, done, outdir) as (tmp, written):
        if spectra.kind == "npz":
            path = tmp.with_name(tmp.name + ".npz")
            arrays = {"x": spectra.x, "y": spectra.y, "baseline": baseline}
            arrays |= {STD: std} if std is not None else {}
            np.savez(path, **arrays, corrected=spectra.y - baseline)
            written.append(path)
            return written  # moved into place when the block ends
        for i in range(len(spectra)):
            point = numbered("point", i, len(spectra))
            name = tmp.name if len(spectra) == 1 else f"{tmp.name}_{point}"
            csv = tmp.with_name(name + ".csv")
            std_i = None if std is None else std[i]
            _write_csv(csv, spectra.x, spectra.y[i], baseline[i], std_i, spectra.calibrated)
            written.append(csv)
            if plots:
                png = csv.with_suffix(".png")
                title = f"{spectra.source.name}: {spectra.labels[i]}"
                plot_correction(png, spectra.x, spectra.y[i], baseline[i], title, spectra, std_i)
                written.append(png)
    return written


def _write_csv(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    baseline: np.ndarray,
    std: np.ndarray | None = None,
    calibrated: bool = True,
) -> None:
    """The CSV of one spectrum, written in blocks (:mod:`pipeline.table_csv`): NaN is empty.

    The first column is ``wavenumber`` (Raman shift, cm-1), or ``pixel`` for an uncalibrated
    axis (a detector pixel index). With ``std``, a fifth column ``baseline_std``.
    """
    axis = CSV_COLUMNS if calibrated else ("pixel", *CSV_COLUMNS[1:])
    columns, names = [x, y, baseline, y - baseline], axis
    if std is not None:
        columns, names = [*columns, std], (*axis, STD)
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
) -> None:
    """PNG of the raw spectrum with its baseline (top) and the corrected spectrum (bottom).

    With ``std``, the baseline's ±2 sigma band is shaded in the top panel.
    """
    masked = np.isnan(baseline)  # pipeline.masking: left out of the fit
    draw_correction(
        path, x, y, {"baseline": baseline}, title, spectra.calibrated, masked=masked, std=std
    )


def correct_files(
    paths: Sequence[str | Path],
    estimate: BaselineFn,
    outdir: Path,
    plots: bool = True,
    min_points: int = MIN_POINTS,
    progress: bool = True,
) -> Report:
    """Correct every file; a bad file is recorded in the report and the others go on.

    Where the outputs go is decided before any work (:func:`pipeline.outputs.plan_outputs`:
    collisions resolved by a suffix, recorded in ``Report.renamed``), and each input's
    outputs are written whole or not at all (:mod:`pipeline.outputs`).

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
            _correct_one(path, stem, estimate, outdir, plots, min_points, report, done)
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
) -> None:
    """Correct one file into ``report``; a failure is recorded there, not raised."""
    try:
        inside(stem, outdir)
        spectra = read_spectra(path, min_points, masked=True)
        baseline, note = correct_spectra(spectra, estimate, min_points)
        baseline, std = (baseline[0], baseline[1]) if baseline.ndim == 3 else (baseline, None)
        report.written += write_outputs(spectra, baseline, stem, plots, done, outdir, std)
        report.spectra += len(spectra)
        report.notes += [(path, text) for text in (*spectra.notes, note) if text]
        if not spectra.calibrated:
            report.notes.append((path, UNCALIBRATED))
    except Exception as exc:  # one bad file must not stop the batch
        named = isinstance(exc, SpectrumError | CorrectionError | OutputError)  # names the file
        report.failed.append((path, one_line(exc) if named else f"{path}: {one_line(exc)}"))
