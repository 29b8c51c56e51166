"""``correct-map``: baselines of maps of millions of spectra, chunk by chunk on a Dask cluster.

The map is read lazily (:mod:`pipeline.map_io`: a dask array chunked along the spectra axes
only) and every chunk is corrected by the same method ``correct`` runs, built the same way
(:func:`build_method`: :func:`pipeline.correct.network_spec` and
:func:`pipeline.correct.load_network` for the network, :func:`pipeline.correct.refined_method`
and :func:`pipeline.correct.classical_method` for the rest; the default method
:data:`pipeline.correct.DEFAULT_METHOD`), with masked pixels left out of the fit as
:mod:`pipeline.masking` does for ``correct``. A worker process builds the method once
(:func:`worker_method`), with one ONNX Runtime stream (one thread): the cluster, one
single-threaded worker process per core, gives the parallelism. Each chunk's task reads its
spectra, fits them, writes ``baseline`` and ``corrected`` (and ``baseline_std`` with
``--uncertainty``, :func:`pipeline.correct.uncertainty_method`; ``denoised`` with ``--denoise``,
the corrected spectra through the denoiser of :func:`pipeline.correct.choose_denoiser`) into
the output Zarr store, then marks the chunk done (:func:`correct_block`); a rerun skips the
chunks marked done. Memory is bounded by the chunk size: a worker holds a few chunks at a time,
never the map.

Bad pixels: Inf is taken as NaN (a saturated or dead pixel), and NaN pixels are masked as in
``correct``; a spectrum left with fewer than :data:`pipeline.spectra_io.MIN_POINTS` pixels (a
dead pixel of the map: NaN or zeros only) gets NaN everywhere and is counted, never an error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import correct, map_io, shipped
from pipeline.baselines import BaselineFn
from pipeline.config import Params
from pipeline.errors import one_line
from pipeline.masking import Masked, find_masked, fit_unmasked
from pipeline.normalise import LENGTH_MODES
from pipeline.spectra_io import MIN_POINTS

SPECTRA_PER_CHUNK = 4096  # whole spectra per chunk: 16 MB of float64 at 512 points


class MapError(RuntimeError):
    """A map run that failed; the message says which chunk and why (chunks done stay done)."""


@dataclass(frozen=True)
class Recipe:
    """How every chunk is corrected: what a worker needs to build the method itself.

    Attributes
    ----------
    method
        One of :data:`pipeline.correct.METHODS`.
    spec, grid, uri
        The network, as :func:`pipeline.correct.load_network` takes it (network methods
        only); a registry alias is pinned to its version, so every worker runs the same one.
    length_mode, params, classical_report, refined_report, uncertainty
        As ``correct``'s options.
    denoiser
        The ONNX denoiser's absolute path (``--denoise``), or "" for none.
    """

    method: str = correct.DEFAULT_METHOD
    spec: str = ""
    grid: int = 0
    uri: str | None = None
    length_mode: str = LENGTH_MODES[0]
    params: Params | None = None
    classical_report: Path | None = None
    refined_report: Path | None = None
    uncertainty: bool = False
    denoiser: str = ""


@dataclass
class MapReport:
    """What a run of :func:`correct_map` did."""

    chunks: int = 0
    skipped: int = 0  # chunks found done by an earlier run
    ran: int = 0
    spectra: int = 0  # spectra corrected by this run
    dead: int = 0  # spectra with too few usable pixels: NaN in the outputs
    masked_pixels: int = 0  # pixels left out of the fit in the other spectra
    seconds: float = 0.0
    first_dead: list[tuple[int, ...]] = field(default_factory=list)  # up to 5, map indices

    def summary(self, out: Path) -> list[str]:
        """What ``correct-map`` prints at the end: the run, then a note on bad pixels if any."""
        rate = self.spectra / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.ran} of {self.chunks} chunks run ({self.skipped} done before): "
            f"{self.spectra} spectra in {self.seconds:.1f} s ({rate:.0f} spectra/s) into {out}"
        ]
        if self.dead or self.masked_pixels:
            where = ", ".join(str(i) for i in self.first_dead)
            lines.append(
                f"  note: {self.dead} spectra with too few usable pixels left empty (NaN)"
                + (f", first at {where}" if where else "")
                + f"; {self.masked_pixels} NaN, Inf or padding pixels left out of the fit"
            )
        return lines


def plan(
    method: str,
    model: str | None = None,
    store: str | None = None,
    params: Params | None = None,
    length_mode: str = LENGTH_MODES[0],
    classical_report: Path | None = None,
    refined_report: Path | None = None,
    uncertainty: bool = False,
    denoiser: Path | None = None,
    denoise: bool = False,
) -> tuple[Recipe, dict[str, Any], str]:
    """Resolve the method as ``correct`` would: ``(recipe, attributes, one line saying how)``.

    The method is built once here (the model loaded), so that a bad model or report is an
    error before any work; so is the denoiser (``denoise``, or a ``denoiser`` path, as
    ``correct``'s ``--denoise`` and ``--denoiser``). ``attributes`` name the model URI, its
    version, the method, the denoiser's sha256 and the package version, for the output store.

    Raises
    ------
    RegistryError, ModelLoadError, ShippedModelError, CorrectionError, DenoiserError
        As ``correct``'s.
    """
    spec, grid, uri, which, version = "", 0, None, "", ""
    if uncertainty and method != "resunet":  # before any model is loaded
        correct.uncertainty_method(None, "", method, length_mode)
    denoiser_path, denoised_by, digest = "", "", None
    if denoise or denoiser is not None:
        found, denoised_by = correct.choose_denoiser(denoiser)
        denoiser_path = str(found.path.resolve())  # read by the workers: the same for all
        digest = f"sha256 {shipped.sha256(found.path)[:12]}"
    if method in correct.NETWORK_METHODS:
        spec, grid, uri, which = correct.network_spec(model, store, params)
        spec, version = _pinned(spec, uri)
    else:  # read by the workers: an absolute path, the same for all of them
        classical_report = Path(classical_report or "reports/classical.json").resolve()
    refined_report = refined_report.resolve() if refined_report is not None else None
    recipe = Recipe(
        *(method, spec, grid, uri, length_mode, params, classical_report, refined_report),
        *(uncertainty, denoiser_path),
    )
    _, how = build_method(recipe)
    if which:
        how = f"ResUNet-1D, {which}, length mode {length_mode}; {how}"
    how += f"; denoised by {denoised_by}" if denoised_by else ""
    attrs = {
        "method": method,
        "model": spec or None,
        "model_version": version or None,
        "length_mode": length_mode if spec else None,
        "how": how,
        "package_version": package_version(),
        "uncertainty": True if uncertainty else None,  # None: as outputs made before the option
        "denoiser": digest,  # None: no denoised array, as outputs made before the option
    }
    return recipe, attrs, how


def _pinned(spec: str, uri: str | None) -> tuple[str, str]:
    """``spec`` with a registry alias replaced by its version, and that version."""
    if spec == correct.SHIPPED:
        return spec, shipped.ShippedModel(shipped.FOLDER, shipped.read_card()).label
    if spec.lower().endswith(".onnx"):
        digest = hashlib.sha256(Path(spec).read_bytes()).hexdigest()[:12]
        return str(Path(spec).resolve()), f"sha256 {digest}"
    head, _, tail = spec.rpartition("@")
    if spec.startswith("models:/") and head:
        from pipeline import registry

        found = registry.alias_version(registry.connect(uri), tail)
        if found is not None:
            return f"{head}/{found}", found
    return spec, spec.rstrip("/").rsplit("/", 1)[-1]


def package_version() -> str:
    """The version of raman-baseline: installed metadata, else the source tree's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("raman-baseline")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        if pyproject.is_file():
            return tomllib.loads(pyproject.read_text())["project"]["version"] + " (source)"
        return "unknown"


def build_method(recipe: Recipe) -> tuple[BaselineFn, str]:
    """The method of ``recipe``, built by ``correct``'s functions; one ONNX stream for a network.

    Returns ``(method(x, y) -> baseline, one line saying how)``.
    """
    if recipe.method not in correct.NETWORK_METHODS:
        return correct.classical_method(recipe.method, recipe.params, recipe.classical_report)
    network = correct.load_network(recipe.spec, recipe.grid, recipe.uri)
    network.workers = 1  # one stream per worker process; the cluster runs one per core
    estimate = partial(network.baselines, length_mode=recipe.length_mode)
    if recipe.uncertainty:
        which = recipe.spec
        estimate = correct.uncertainty_method(network, which, recipe.method, recipe.length_mode)
        return estimate, f"the network alone, with {correct.STD}"
    if recipe.method == "resunet":
        return estimate, "the network alone"
    return correct.refined_method(estimate, recipe.params, recipe.refined_report)


_BUILT: dict[str, Callable] = {}  # per worker process: the methods and denoisers built, by key


def worker_method(recipe: Recipe) -> BaselineFn:
    """The method of ``recipe``, built once per process and kept."""
    key = repr(recipe)
    if key not in _BUILT:
        _BUILT[key] = build_method(recipe)[0]
    return _BUILT[key]


def worker_denoiser(path: str) -> Callable[[np.ndarray], np.ndarray]:
    """The denoiser at ``path`` (one ONNX Runtime thread), loaded once per process and kept."""
    key = f"denoiser {path}"
    if key not in _BUILT:
        from pipeline.denoise import OnnxDenoiser

        _BUILT[key] = OnnxDenoiser(path, threads=1).denoise
    return _BUILT[key]


def fit_spectra(
    x: np.ndarray, y: np.ndarray, estimate: BaselineFn
) -> tuple[np.ndarray, np.ndarray, int]:
    """Baselines of spectra ``y`` ``(N, L)`` as ``correct`` fits them, dead spectra allowed.

    Inf is taken as NaN; pixels are masked by :func:`pipeline.masking.find_masked` and left
    out of the fit (:func:`pipeline.masking.fit_unmasked`). Returns ``(baseline (N, L) with
    NaN at masked pixels, dead (N,) bool: spectra with fewer than MIN_POINTS usable pixels,
    all NaN, masked pixels of the others)``; an ``estimate`` answering baselines and standard
    deviations (``--uncertainty``) gives ``(2, N, L)`` for the first once any spectrum lives.

    Raises
    ------
    RuntimeError
        The method answered NaN or Inf at an unmasked pixel.
    """
    y = np.where(np.isfinite(y), y, np.nan)
    masked = find_masked(y)
    dead = (~masked.mask).sum(axis=1) < MIN_POINTS
    baseline = np.full(y.shape, np.nan)
    live = ~dead
    if live.any():
        what = tuple(w for w, keep in zip(masked.what, live, strict=True) if keep)
        part = Masked(masked.mask[live], masked.start[live], masked.stop[live], what)
        fitted = fit_unmasked(x, y[live], part, estimate)
        baseline = np.full((*fitted.shape[:-2], *y.shape), np.nan)
        baseline[..., live, :] = fitted
        if not np.isfinite(fitted[..., ~part.mask]).all():
            raise RuntimeError("the method returned NaN or Inf at an unmasked pixel")
    return baseline, dead, int(masked.mask[live].sum())


def correct_block(
    block: np.ndarray, index: tuple[int, ...], x: np.ndarray, recipe: Recipe, out: str
) -> tuple[tuple[int, ...], int, list[tuple[int, ...]], int, int]:
    """Correct one chunk and write it into ``out``, then mark it done (runs on a worker).

    ``block`` is the chunk's spectra ``(..., L)`` on the stored axis ``x``; ``index`` its
    place in the chunk grid. Returns ``(index, spectra, map indices of its first 5 dead
    spectra, masked pixels of the others, dead spectra)``.
    """
    import zarr

    shape = block.shape
    y = np.asarray(block, dtype=np.float64).reshape(-1, shape[-1])
    flip = x[0] > x[-1]  # the method takes an increasing axis; the output keeps the stored one
    if flip:
        x, y = x[::-1], y[:, ::-1]
    baseline, dead, masked = fit_spectra(x, y, worker_method(recipe))
    baseline, std = (baseline[0], baseline[1]) if baseline.ndim == 3 else (baseline, None)
    corrected = y - baseline
    denoised = worker_denoiser(recipe.denoiser)(corrected) if recipe.denoiser else None
    group = zarr.open_group(out, mode="r+")
    chunks = group[map_io.OUTPUTS[0]].chunks
    spans = zip(index, chunks[:-1], shape[:-1], strict=True)
    region = tuple(slice(i * c, i * c + n) for i, c, n in spans) + (slice(None),)
    found = {"baseline": baseline, "corrected": corrected, map_io.STD: std}
    for name, values in (found | {map_io.DENOISED: denoised}).items():
        if values is not None:  # no std when every spectrum of the chunk is dead: the fill, NaN
            group[name][region] = (values[:, ::-1] if flip else values).reshape(shape)
    first = [s.start for s in region[:-1]]
    dead_at = [
        tuple(int(a + b) for a, b in zip(first, np.unravel_index(i, shape[:-1]), strict=True))
        for i in np.flatnonzero(dead)[:5]
    ]
    group[map_io.DONE][index] = 1  # last, after the data: a chunk marked done is whole
    return index, len(y), dead_at, masked, int(dead.sum())


def correct_map(
    source: map_io.MapInput,
    x: np.ndarray,
    out: Path,
    recipe: Recipe,
    attrs: dict[str, Any],
    client,
    chunk_spectra: int = SPECTRA_PER_CHUNK,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> MapReport:
    """Correct the map ``source`` into the Zarr store ``out`` on ``client``'s cluster.

    Chunks already marked done in ``out`` (an earlier, interrupted run) are skipped.
    ``stop_after``: stop once that many chunks are written (tests and benchmarks of resume).

    Raises
    ------
    MapInputError
        ``out`` cannot take this map (:func:`pipeline.map_io.prepare_output`).
    MapError
        A chunk failed: named, with the reason; the chunks written stay done.
    """
    from distributed import as_completed
    from tqdm import tqdm

    started = time.perf_counter()
    chunks = map_io.spectra_chunks(source.shape, chunk_spectra)
    group = map_io.prepare_output(out, source, x, chunks, attrs, overwrite)[0]
    done = np.asarray(group[map_io.DONE][...])
    report = MapReport(chunks=done.size, skipped=int(done.sum()))
    todo = [index for index in np.ndindex(done.shape) if not done[index]]
    if stop_after is not None:
        todo = todo[:stop_after]
    futures = _submit(client, source.lazy(chunks), todo, x, recipe, Path(out).resolve())
    total = sum(_spectra_in(index, chunks, source.shape) for index in todo)
    with tqdm(total=total, unit="spectra", desc="correct-map", disable=not progress) as bar:
        try:
            for future in as_completed(futures):
                index, n, dead_at, masked, dead = _result(future, futures)
                report.ran += 1
                report.spectra += n
                report.dead += dead
                report.masked_pixels += masked
                report.first_dead = (report.first_dead + dead_at)[:5]
                bar.update(n)
        except KeyboardInterrupt:
            done = report.skipped + report.ran
            raise KeyboardInterrupt(
                f"{done} of {report.chunks} chunks done in {out}; the same command does the rest"
            ) from None
        finally:
            client.cancel(list(futures))
    report.seconds = time.perf_counter() - started
    return report


def _submit(client, data, todo, x, recipe, out):
    import dask

    blocks = data.to_delayed()
    task = dask.delayed(correct_block, pure=False)
    tasks = [task(blocks[index + (0,)], index, x, recipe, str(out)) for index in todo]
    futures = client.compute(tasks)
    return dict(zip(futures, todo, strict=True))


def _result(future, futures: dict) -> tuple:
    try:
        return future.result()
    except Exception as exc:
        index = futures[future]
        raise MapError(f"chunk {index} failed: {one_line(exc)}") from exc


def _spectra_in(index: tuple[int, ...], chunks: tuple[int, ...], shape: tuple[int, ...]) -> int:
    sizes = [min(c, n - i * c) for i, c, n in zip(index, chunks, shape, strict=False)]
    return int(np.prod(sizes))
