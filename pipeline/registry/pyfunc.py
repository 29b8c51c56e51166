"""The registered model: a pyfunc wrapping the ONNX network and the one normalisation step."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import numpy as np

from pipeline.errors import one_line
from pipeline.inference import OnnxBaseline
from pipeline.registry.store import RegistryError, store_name


class ResUNetBaseline(mlflow.pyfunc.PythonModel):
    """The registered model: ONNX Runtime inside, the one normalisation step around it.

    Input: ``wavenumber`` (L,) and ``intensity`` (N, L) in the user's units.
    Output: ``baseline`` and ``corrected`` (N, L), in the same units.
    """

    def __init__(self, grid: int = 512):
        self.grid = grid  # the length the network was trained on

    def load_context(self, context):  # noqa: D102
        self.model = OnnxBaseline(context.artifacts["onnx"], grid=self.grid)

    def predict(self, context, model_input, params=None):  # noqa: D102
        x, y = _unpack(model_input)
        baseline = self.model.baselines(x, y)
        return {"baseline": baseline, "corrected": y - baseline}


def _unpack(model_input) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(model_input, "to_dict"):  # a DataFrame from a JSON "dataframe_*" request
        model_input = {c: np.stack(model_input[c].to_numpy()) for c in model_input.columns}
    x = np.asarray(model_input["wavenumber"], dtype=np.float64).reshape(-1)
    y = np.atleast_2d(np.asarray(model_input["intensity"], dtype=np.float64))
    if y.shape[-1] != x.size:
        raise ValueError(f"intensity has {y.shape[-1]} points per spectrum, wavenumber {x.size}")
    order = np.argsort(x)
    return x[order], y[..., order]


def load_model(uri: str):
    """The pyfunc model at ``uri`` (``models:/resunet1d@production``, a run's model...).

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
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        store = store_name(mlflow.get_registry_uri())
        raise RegistryError(
            f"cannot load {uri} from the MLflow store {store}: {one_line(exc)}"
        ) from exc


def signature_and_example(length: int = 512):
    """The pyfunc's signature and a small input example (two spectra)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    f64 = np.dtype("float64")
    signature = ModelSignature(
        inputs=Schema(
            [TensorSpec(f64, (-1,), "wavenumber"), TensorSpec(f64, (-1, -1), "intensity")]
        ),
        outputs=Schema(
            [TensorSpec(f64, (-1, -1), "baseline"), TensorSpec(f64, (-1, -1), "corrected")]
        ),
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
