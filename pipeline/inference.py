"""The exported network under ONNX Runtime: the only module of the project importing it.

:class:`OnnxBaseline` runs the ONNX file that ``export`` writes on the CPU, behind the one
normalisation contract and inference path of :mod:`pipeline.normalise`; ``correct``, the
served model, the promotion gate and the benchmarks all use it. :func:`onnx_session` is the
one way a session is made (``export``'s parity check uses it too). ONNX Runtime's telemetry is
off, set before its import (:func:`pipeline.quiet.no_telemetry`).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from pipeline.quiet import no_telemetry

no_telemetry()  # ONNX Runtime reads it at its import: offline, nothing under the home folder

import onnxruntime as ort  # noqa: E402

from pipeline.normalise import (  # noqa: E402
    LENGTH_MODES,
    NORMALISATIONS,
    PAD_MODE,
    network_baselines,
)

ort.disable_telemetry_events()  # and no events, by the library's own switch

DEFAULT_MULTIPLE = 32  # the default network's: five poolings by two
NORMALISATION_KEY = "normalisation"  # the ONNX metadata_props key export writes
UPPER = "baseline_upper"  # an uncertainty model's second output, baseline + sigma


def session_normalisation(session: ort.InferenceSession) -> str:
    """The normalisation written in a session's model metadata; ``minmax`` when absent.

    Raises
    ------
    ValueError
        For a value not in :data:`pipeline.normalise.NORMALISATIONS` (a model newer than this
        code).
    """
    meta = session.get_modelmeta().custom_metadata_map
    value = meta.get(NORMALISATION_KEY, NORMALISATIONS[0])
    if value not in NORMALISATIONS:
        raise ValueError(
            f"the model's normalisation {value!r} is not one this version knows "
            f"({', '.join(NORMALISATIONS)}); update raman-baseline"
        )
    return value


def onnx_session(path: str | Path, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU execution provider.

    ``threads``: intra-op threads (0: ONNX Runtime's choice, one per core); operators run
    one after another (one inter-op thread).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBaseline:
    """The exported network under ONNX Runtime (CPU): the inference path used everywhere.

    :meth:`baselines` takes spectra on any sorted axis and returns their baselines in the
    spectra's units (:func:`pipeline.normalise.network_baselines`), normalised as the file's
    metadata says (:attr:`normalisation`, :func:`session_normalisation`).

    Speed (``benchmarks/README.md``): a batch is cut into chunks of ``chunk`` spectra run by
    ``workers`` threads (0: one per core), each chunk on one core. On 2 cores that beat one
    session using 2 intra-op threads by 1.1x (seed network) to 1.6x (small students): convolutions
    this small do not split well across cores, chunks of 64 spectra stay in cache.

    Parameters
    ----------
    onnx_path
        The ONNX file (input ``(batch, 1, length)`` float32, output alike).
    grid
        The number of points the network was trained on (``simulate.length``).
    workers, chunk
        Threads running chunks of ``chunk`` spectra (0: one per core).
    """

    def __init__(self, onnx_path, grid: int = 512, workers: int = 0, chunk: int = 64):
        self._open(onnx_session(onnx_path, threads=1), grid, workers, chunk)

    @classmethod
    def from_session(
        cls, session: ort.InferenceSession, grid: int = 512, workers: int = 0, chunk: int = 64
    ) -> OnnxBaseline:
        """Around a session already open: that of a registered model, say.

        A registered model loads its own bundled copy of this module, of the version it was
        registered with; this gives its network this version's methods.
        """
        self = cls.__new__(cls)
        self._open(session, grid, workers, chunk)
        return self

    def _open(self, session: ort.InferenceSession, grid: int, workers: int, chunk: int) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name
        self.outputs = [o.name for o in session.get_outputs()]
        self.normalisation = session_normalisation(session)
        self.grid = grid
        self.workers = workers or os.cpu_count() or 1
        self.chunk = chunk
        self._pool: ThreadPoolExecutor | None = None

    @property
    def length_multiple(self) -> int:
        """The multiple of points the network needs, read from the graph's symbolic length.

        ``export`` declares the length axis as ``32*blocks`` for the default network; a fixed
        length is its own multiple; anything else unreadable gives 32.
        """
        dim = self.session.get_inputs()[0].shape[-1]
        if isinstance(dim, int):
            return dim
        found = re.fullmatch(r"\s*(\d+)\s*\*\s*\w+\s*", str(dim))
        return int(found.group(1)) if found else DEFAULT_MULTIPLE

    @property
    def has_uncertainty(self) -> bool:
        """Whether the graph answers ``baseline + sigma`` too (:mod:`pipeline.uncertainty`)."""
        return UPPER in self.outputs

    def run(self, z: np.ndarray, both: bool = False) -> np.ndarray:
        """Normalised ``(B, 1, L)`` float32 in, normalised baselines ``(B, 1, L)`` out.

        ``both``: an uncertainty model's baseline and baseline + sigma, ``(B, 2, L)``.
        """
        z = np.ascontiguousarray(z, np.float32)
        starts = range(0, len(z), self.chunk)
        if len(starts) <= 1 or self.workers == 1:
            return np.concatenate([self._run_chunk(z[i : i + self.chunk], both) for i in starts])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)  # ORT releases the GIL while it runs
        return np.concatenate(
            list(self._pool.map(lambda i: self._run_chunk(z[i : i + self.chunk], both), starts))
        )

    def _run_chunk(self, z: np.ndarray, both: bool = False) -> np.ndarray:
        if both:
            return np.concatenate(self.session.run(["baseline", UPPER], {self.input: z}), axis=1)
        return self.session.run(self.outputs[:1], {self.input: z})[0]

    def baselines(
        self,
        x: np.ndarray,
        y: np.ndarray,
        length_mode: str = LENGTH_MODES[0],
        batch_size: int = 1024,
        both: bool = False,
    ) -> np.ndarray:
        """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x``.

        In ``y``'s units; ``length_mode`` as in :func:`pipeline.normalise.network_baselines`
        (``native`` pads with :data:`pipeline.normalise.PAD_MODE`). ``both``: an uncertainty
        model's baselines and baselines + sigma, ``(N, 2, L)``.
        """
        return network_baselines(
            partial(self.run, both=True) if both else self.run,
            self.grid,
            x,
            y,
            length_mode,
            self.length_multiple,
            PAD_MODE,
            batch_size,
            self.normalisation,
            channels=both,
        )

    def baselines_and_std(
        self,
        x: np.ndarray,
        y: np.ndarray,
        length_mode: str = LENGTH_MODES[0],
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Baselines and their standard deviations ``(2, N, L)``, in ``y``'s units.

        ``[0]`` is what :meth:`baselines` answers, ``[1]`` the per-point standard deviation
        (``baseline_std``) of an uncertainty model (:attr:`has_uncertainty`): its second
        output, baseline + sigma, goes through the same inversion and resampling, and sigma
        is the difference.

        Raises
        ------
        ValueError
            The model has no uncertainty output.
        """
        if not self.has_uncertainty:
            raise ValueError("the model has no uncertainty output (baseline_std)")
        out = self.baselines(x, y, length_mode, batch_size, both=True)
        return np.stack([out[:, 0], out[:, 1] - out[:, 0]])
