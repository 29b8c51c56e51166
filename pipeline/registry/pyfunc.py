"""The registered model: a pyfunc wrapping the ONNX network and the one normalisation step.

Served by ``mlflow models serve``, every request is checked by
:func:`pipeline.spectra_io.check_spectra` first. A bad request (values that are not numbers,
NaN or Inf, an axis that is duplicated or not monotonic, lengths that do not match, too few
points, more than :data:`MAX_REQUEST_VALUES` values) is refused with HTTP 400 and one line
saying what is wrong: never a 500, a traceback or a path of the server. The answer follows the
request's own axis order: a decreasing axis (as Renishaw WiRE exports) comes back decreasing.
A model exported with MC dropout (:mod:`pipeline.uncertainty`) answers ``baseline_std`` too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from pipeline.errors import one_line
from pipeline.inference import OnnxBaseline
from pipeline.registry.store import RegistryError, store_name
from pipeline.spectra_io import SpectrumError, check_spectra

# The most values (axis and intensities together) one request may hold: 10 million float64
# values are 80 MB, e.g. 20,000 spectra of 500 points, or 1,000 of 10,000.
MAX_REQUEST_VALUES = 10_000_000
FIELDS = ("wavenumber", "intensity")


class RequestError(MlflowException):
    """A request the served model refuses: HTTP 400 (``INVALID_PARAMETER_VALUE``), one line.

    MLflow's scoring server (3.x, ``scoring_server.invocations``) rewrites the message of an
    ``MlflowException`` raised by ``predict`` to begin with the whole request
    (``Failed to predict data '...'``): several lines echoing up to millions of values. The
    message of this exception stays the one line it was made with.
    """

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:  # noqa: D102
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # set once, by MlflowException.__init__
            self._message = value


class ResUNetBaseline(mlflow.pyfunc.PythonModel):
    """The registered model: ONNX Runtime inside, the one normalisation step around it.

    Input: ``wavenumber`` (L,), strictly increasing or strictly decreasing, and ``intensity``
    (N, L) or (L,), in the user's units. Output: ``baseline`` and ``corrected`` (N, L), in the
    same units and the same axis order as the input; and ``baseline_std`` (N, L), the baseline's
    per-point standard deviation, from a model that has it
    (:attr:`pipeline.inference.OnnxBaseline.has_uncertainty`).
    """

    def __init__(self, grid: int = 512):
        self.grid = grid  # the length the network was trained on

    def load_context(self, context):  # noqa: D102
        self.model = OnnxBaseline(context.artifacts["onnx"], grid=self.grid)

    def predict(self, context, model_input, params=None):  # noqa: D102
        x, y, descending = request_spectra(model_input)
        uncertain = getattr(self.model, "has_uncertainty", False)  # older bundles: no such part
        try:
            if uncertain:
                baseline, std = self.model.baselines_and_std(x, y)
            else:
                baseline = self.model.baselines(x, y)
        except Exception as exc:  # a fault of the server, not of the request: no traceback
            raise MlflowException(
                f"the model failed on a valid request: {one_line(exc)}", error_code=INTERNAL_ERROR
            ) from exc
        if descending:  # answer on the request's own axis order
            y, baseline = y[:, ::-1], baseline[:, ::-1]
        answer = {"baseline": baseline, "corrected": y - baseline}
        if uncertain:
            answer["baseline_std"] = std[:, ::-1] if descending else std
        return answer


def request_spectra(model_input: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """The spectra of a request, checked.

    Parameters
    ----------
    model_input
        A mapping (or a DataFrame, from a ``dataframe_*`` JSON request) with ``wavenumber``
        (L,) and ``intensity`` (N, L) or (L,).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, bool)
        ``x`` (L,) increasing and ``y`` (N, L) float64 as :func:`check_spectra` returns them,
        and whether the request's axis was decreasing (``x`` and ``y`` are then reversed).

    Raises
    ------
    RequestError
        A missing field, more than :data:`MAX_REQUEST_VALUES` values, or anything
        :func:`check_spectra` refuses; the message says which, on one line.
    """
    if hasattr(model_input, "to_dict"):  # a DataFrame from a JSON "dataframe_*" request
        try:
            model_input = {c: np.stack(model_input[c].to_numpy()) for c in model_input.columns}
        except ValueError as exc:  # cells of different lengths
            raise RequestError(f"request: {one_line(exc)}") from None
    if not isinstance(model_input, Mapping) or any(f not in model_input for f in FIELDS):
        raise RequestError("request: expected the fields 'wavenumber' (L,) and 'intensity' (N, L)")
    x_in, y_in = model_input["wavenumber"], model_input["intensity"]
    try:
        values = np.size(x_in) + np.size(y_in)
    except ValueError:  # rows of different lengths
        values = 0  # check_spectra says what is wrong
    if values > MAX_REQUEST_VALUES:
        raise RequestError(
            f"request: {values:,} values, more than the {MAX_REQUEST_VALUES:,} allowed in one "
            "request; send the spectra in smaller batches"
        )
    try:
        x, y = check_spectra(x_in, y_in, "request")
    except SpectrumError as exc:
        raise RequestError(one_line(exc)) from None
    return x, y, bool(x.size > 1 and np.asarray(x_in, dtype=np.float64).reshape(-1)[0] > x[0])


def load_model(uri: str):
    """The pyfunc model at ``uri`` (``models:/resunet1d@production``, a run's model...).

    Its files are copied into a temporary folder and loaded from there: from a local store,
    MLflow would otherwise load them in place and write its ``registered_model_meta`` file
    into the store's ``mlruns/``, which fails on a read-only store (and changes it). The
    model is in memory once loaded (:meth:`ResUNetBaseline.load_context`), so the copy goes.

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        ``.unwrap_python_model().model`` is its :class:`~pipeline.inference.OnnxBaseline`.

    Raises
    ------
    RegistryError
        It cannot be loaded (no such model, version or alias, or the store failed).
    """
    try:
        with tempfile.TemporaryDirectory(prefix="raman-baseline-model-") as copy:
            return mlflow.pyfunc.load_model(uri, dst_path=copy)
    except Exception as exc:
        store = store_name(mlflow.get_registry_uri())
        raise RegistryError(
            f"cannot load {uri} from the MLflow store {store}: {one_line(exc)}"
        ) from exc


def signature_and_example(length: int = 512, uncertainty: bool = False):
    """The pyfunc's signature and a small input example (two spectra).

    ``uncertainty``: the model answers ``baseline_std`` too.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    f64 = np.dtype("float64")
    answers = (
        ("baseline", "corrected", "baseline_std") if uncertainty else ("baseline", "corrected")
    )
    signature = ModelSignature(
        inputs=Schema(
            [TensorSpec(f64, (-1,), "wavenumber"), TensorSpec(f64, (-1, -1), "intensity")]
        ),
        outputs=Schema([TensorSpec(f64, (-1, -1), name) for name in answers]),
    )
    x = np.linspace(200.0, 3200.0, length)
    t = (x - x[0]) / (x[-1] - x[0])
    background = 1000 + 800 * np.exp(-2 * t)
    bands = 300 * np.exp(-(((x - 1000) / 8) ** 2)) + 150 * np.exp(-(((x - 1600) / 12) ** 2))
    example = {
        "wavenumber": x,
        "intensity": np.stack([background + bands, 0.5 * background + bands]),
    }
    return signature, example


def pip_requirements() -> list[str]:
    """Explicit, CPU-only requirements of the pyfunc (no torch)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "pandas", "onnxruntime")]
