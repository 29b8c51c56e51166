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

    def run(self, z: np.ndarray) -> np.ndarray:
        """Normalised ``(B, 1, L)`` float32 in, normalised baselines ``(B, 1, L)`` out."""
        z = np.ascontiguousarray(z, np.float32)
        starts = range(0, len(z), self.chunk)
        if len(starts) <= 1 or self.workers == 1:
            return np.concatenate([self._run_chunk(z[i : i + self.chunk]) for i in starts])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)  # ORT releases the GIL while it runs
        return np.concatenate(
            list(self._pool.map(lambda i: self._run_chunk(z[i : i + self.chunk]), starts))
        )

    def _run_chunk(self, z: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: z})[0]

    def baselines(
        self,
        x: np.ndarray,
        y: np.ndarray,
        length_mode: str = LENGTH_MODES[0],
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Baselines ``(N, L)`` of spectra ``y`` ``(N, L)`` on the increasing axis ``x``.

        In ``y``'s units; ``length_mode`` as in :func:`pipeline.normalise.network_baselines`
        (``native`` pads with :data:`pipeline.normalise.PAD_MODE`).
        """
        return network_baselines(
            self.run,
            self.grid,
            x,
            y,
            length_mode,
            self.length_multiple,
            PAD_MODE,
            batch_size,
            self.normalisation,
        )
