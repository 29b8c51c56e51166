"""Which baseline ``raman-baseline correct`` estimates: the method, the network, their settings.

The outputs (reading each file, masking, the CSV, PNG and ``.npz`` written) are
:mod:`pipeline.correct_files`; this module answers the estimate it runs, a
:data:`pipeline.baselines.BaselineFn` taking ``(x, y)`` and answering baselines ``(N, L)`` in
each spectrum's own intensity units (``(2, N, L)`` with their standard deviations for
``--uncertainty``, a model exported with MC dropout, ``--method resunet``:
:func:`uncertainty_method`, ``docs/uncertainty.md``).

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
grid and the classical settings come from the shipped model's card. With ``--denoise``, the
denoiser (the second network, :mod:`pipeline.denoise`) is the one ``--denoiser`` names, else
the shipped one (:func:`choose_denoiser`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pipeline import shipped
from pipeline.baselines import BaselineFn, classical_baselines, refined_baselines
from pipeline.config import ClassicalMethodParams, Params
from pipeline.denoise import DenoiserError, OnnxDenoiser
from pipeline.errors import one_line
from pipeline.inference import OnnxBaseline

DEFAULT_MODEL = "models:/resunet1d@production"
SHIPPED = "shipped"  # --model shipped: the model inside the package
PRODUCTION = "production"  # --model production: the registry's production, never a variant
LOCAL_STORE = Path("mlflow.db")  # the project's store, in the working folder
METHODS = ("resunet", "refined", "arpls", "aspls")
NETWORK_METHODS = ("resunet", "refined")  # the methods that run a network
# chosen by measurement (benchmarks/methods.py, README): best on the real references
DEFAULT_METHOD = "refined"
STD = "baseline_std"  # --uncertainty: the CSV's fifth column, the .npz's key


class ModelLoadError(RuntimeError):
    """The model file cannot be loaded; the message says which and why."""


class CorrectionError(RuntimeError):
    """Some input files could not be corrected (each one is listed before this is raised)."""


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


def choose_denoiser(path: Path | None) -> tuple[OnnxDenoiser, str]:
    """The denoiser ``correct --denoise`` runs, and how the summary names it.

    ``path`` (``--denoiser``): that ONNX file; None: the shipped one, the file of the role
    ``denoiser`` on the shipped model's card (:attr:`pipeline.shipped.ShippedModel.denoiser`),
    verified against the card.

    Raises
    ------
    DenoiserError
        The file is missing, not ONNX, or not a denoiser (a baseline model, say); or no path
        and the card names no denoiser. One line naming the file or the card.
    ShippedModelError
        The shipped files do not match their card.
    """
    if path is not None:
        try:
            return OnnxDenoiser(path), f"the denoiser {path}"
        except DenoiserError as exc:
            raise DenoiserError(f"--denoiser: {exc}") from None
    model = shipped.load()
    if model.denoiser is None:
        raise DenoiserError(
            f"--denoise: the shipped model's card {model.folder / shipped.CARD} names no "
            "denoiser; name one with --denoiser PATH (an ONNX denoiser, docs/denoising.md)"
        )
    entry = model.card["files"][model.denoiser.name]
    return OnnxDenoiser(model.denoiser), f"the shipped denoiser {entry['sha256'][:12]}"


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
