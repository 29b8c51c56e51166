"""The files of ``correct-map``: the input map read lazily, the output Zarr store and its markers.

The input is a Zarr store or an HDF5 file holding ``wavenumber`` (L,) and ``intensity``
(..., L) (a map ``(rows, cols, L)`` or a stack ``(N, L)``), or a ``.npy`` file of intensities
(memory-mapped) with its axis in another file. :func:`open_input` checks names and shapes and
returns a :class:`MapInput`, which :meth:`MapInput.lazy` turns into a dask array chunked along
the spectra axes only (whole spectra per chunk): a worker reads its own chunk, nothing else.

The output (:func:`prepare_output`) is a Zarr (v3) group: ``wavenumber`` (L,), ``baseline`` and
``corrected`` of the input's shape and chunks (NaN where nothing was fitted), and ``done``, one
byte per chunk (its own Zarr chunk, so that workers never write the same object), set to 1 once
that chunk's ``baseline`` and ``corrected`` are written. A rerun skips the chunks marked done:
an interrupted run resumes. The group's attributes say what it was made from and with what
(:data:`ATTRS`); a store made from another input or by another method or model is refused, or
replaced with ``overwrite``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.spectra_io import SpectrumError, check_spectra

INTENSITY, WAVENUMBER = "intensity", "wavenumber"
OUTPUTS = ("baseline", "corrected")
STD = "baseline_std"  # with --uncertainty (settings["uncertainty"]): a third output
DENOISED = "denoised"  # with --denoise (settings["denoiser"]): the corrected map denoised
DONE = "done"
ATTRS = "raman_baseline"  # the group attribute holding what the store was made from and with
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


class MapInputError(RuntimeError):
    """A map that cannot be corrected, found before any work; the message names it and why."""


@dataclass(frozen=True)
class MapInput:
    """An input map, checked: where its intensities are and what they look like.

    Attributes
    ----------
    path
        The Zarr store, HDF5 file or ``.npy`` file (resolved).
    kind
        ``zarr``, ``hdf5`` or ``npy``.
    dataset
        The intensities' name inside ``path`` (``""`` for ``.npy``).
    shape
        ``(..., L)``: the spectra axes, then the points.
    dtype
        The intensities' dtype (a real number type).
    """

    path: Path
    kind: str
    dataset: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def spectra(self) -> int:
        """How many spectra the map holds."""
        return int(np.prod(self.shape[:-1]))

    def identity(self) -> dict[str, Any]:
        """What a resumed run must find unchanged in the output's attributes."""
        return {
            "path": str(self.path),
            "dataset": self.dataset,
            "shape": list(self.shape),
            "dtype": self.dtype,
        }

    def lazy(self, chunks: tuple[int, ...]):
        """The intensities as a dask array of ``chunks`` (nothing is read until computed)."""
        import dask.array as da

        name = f"{INTENSITY}-{abs(hash((str(self.path), self.dataset, chunks))):x}"
        return da.from_array(_Reader(self), chunks=chunks, lock=False, asarray=True, name=name)


class _Reader:
    """The intensities of a :class:`MapInput`, opened afresh for every read.

    What a dask task carries instead of an open file: it pickles to a path and a name (an
    h5py dataset does not pickle; a memory-map pickles with all its data).
    """

    def __init__(self, source: MapInput):
        self.source = source
        self.shape, self.dtype, self.ndim = source.shape, np.dtype(source.dtype), len(source.shape)

    def __getitem__(self, region):
        src = self.source
        if src.kind == "npy":
            return np.asarray(np.load(src.path, mmap_mode="r")[region])
        if src.kind == "hdf5":
            import h5py

            with h5py.File(src.path, "r") as file:
                return file[src.dataset][region]
        import zarr

        return zarr.open_array(src.path, path=src.dataset, mode="r")[region]


def open_input(
    path: Path,
    dataset: str = INTENSITY,
    axis_dataset: str = WAVENUMBER,
    axis_file: Path | None = None,
) -> tuple[MapInput, np.ndarray]:
    """Open and check a map: ``(its MapInput, the axis (L,) as stored, float64)``.

    Reads the axis and the intensities' shape and dtype, not the intensities. A ``.npy`` needs
    ``axis_file`` (``.npy``, or text of one number per line); a Zarr store or an HDF5 file has
    its axis in ``axis_dataset``, unless ``axis_file`` is given.

    Raises
    ------
    MapInputError
        No such file; not a Zarr store, HDF5 file or ``.npy``; a ``.npy`` without
        ``axis_file``; a dataset missing (the names found are listed); intensities not of real
        numbers, or with fewer than 2 dimensions, or whose last dimension differs from the
        axis length; no spectra; an axis that :func:`pipeline.spectra_io.check_spectra` refuses.
    """
    path = Path(path)
    if not path.exists():
        raise MapInputError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npy":
        if axis_file is None:
            raise MapInputError(f"{path}: a .npy holds no axis; give it with --axis FILE")
        intensity, kind, dataset = np.load(path, mmap_mode="r"), "npy", ""
    elif path.is_dir():
        intensity, kind = _zarr_dataset(path, dataset), "zarr"
    elif path.suffix.lower() in HDF5_SUFFIXES or _is_hdf5(path):
        intensity, kind = _hdf5_dataset(path, dataset), "hdf5"
    else:
        raise MapInputError(f"{path}: not a Zarr store, an HDF5 file or a .npy (with --axis)")
    if axis_file is not None:
        x = _axis_file(Path(axis_file))
    elif kind == "zarr":
        x = np.asarray(_zarr_dataset(path, axis_dataset, "--axis-dataset")[...])
    else:
        x = _hdf5_axis(path, axis_dataset)
    return _checked(path, kind, dataset, intensity.shape, intensity.dtype, x)


def _checked(path, kind, dataset, shape, dtype, x) -> tuple[MapInput, np.ndarray]:
    where = f"{path}" + (f" '{dataset}'" if dataset else "")
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiu":
        raise MapInputError(f"{where}: intensities of type {dtype}, not real numbers")
    x = np.asarray(x)
    if x.ndim != 1 or len(shape) < 2 or shape[-1] != x.size:
        raise MapInputError(
            f"{where}: intensities of shape {tuple(shape)} do not fit an axis of shape "
            f"{x.shape}; expected (..., L) with L the axis length, the spectra along the last "
            "dimension"
        )
    if 0 in shape[:-1]:
        raise MapInputError(f"{where}: no spectra (shape {tuple(shape)})")
    try:
        check_spectra(x, np.zeros((1, x.size)), where)  # the axis: sorted, finite, long enough
    except SpectrumError as exc:
        raise MapInputError(str(exc)) from None
    source = MapInput(path.resolve(), kind, dataset, tuple(int(n) for n in shape), dtype.str)
    return source, x.astype(np.float64)


def _is_hdf5(path: Path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _zarr_dataset(path: Path, name: str, option: str = "--dataset"):
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
    except Exception as exc:  # zarr raises its own types for a folder that is not a store
        raise MapInputError(f"{path}: not a Zarr store ({type(exc).__name__})") from None
    try:
        item = group[name]  # a path ("data/spectra") reaches into subgroups
    except KeyError:
        item = None
    if not isinstance(item, zarr.Array):
        arrays = [key for key, v in group.members(max_depth=None) if isinstance(v, zarr.Array)]
        found = ", ".join(sorted(arrays)) or "none"  # at any depth: instrument files nest them
        raise MapInputError(f"{path}: no array '{name}' (arrays: {found}); name it with {option}")
    return item


def _hdf5_dataset(path: Path, name: str, option: str = "--dataset"):
    import h5py

    with h5py.File(path, "r") as file:
        found: list[str] = []  # every dataset, at any depth: instrument files nest them
        file.visititems(
            lambda key, item: found.append(key) if isinstance(item, h5py.Dataset) else None
        )
        if not isinstance(file.get(name), h5py.Dataset):
            names = ", ".join(sorted(found)) or "none"
            raise MapInputError(
                f"{path}: no dataset '{name}' (datasets: {names}); name it with {option}"
            )
        data = file[name]
        return _Shape(data.shape, data.dtype)  # the file closes: only what it looks like


def _add_dataset(found: list[str], key: str, item) -> None:
    import h5py

    if isinstance(item, h5py.Dataset):
        found.append(key)


def _hdf5_axis(path: Path, name: str) -> np.ndarray:
    import h5py

    _hdf5_dataset(path, name, "--axis-dataset")
    with h5py.File(path, "r") as file:
        return np.asarray(file[name][...])


@dataclass(frozen=True)
class _Shape:
    shape: tuple[int, ...]
    dtype: np.dtype


def _axis_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MapInputError(f"--axis {path}: no such file")
    try:
        return np.load(path) if path.suffix.lower() == ".npy" else np.loadtxt(path, ndmin=1)
    except ValueError as exc:
        raise MapInputError(f"--axis {path}: not an axis of numbers ({exc})") from None


# ---------------------------------------------------------------------------- the output


def spectra_chunks(shape: tuple[int, ...], per_chunk: int) -> tuple[int, ...]:
    """Chunks of about ``per_chunk`` whole spectra: the last spectra axes filled first.

    ``(1000, 1000, 512)`` at 4096 gives ``(4, 1000, 512)``; ``(10**6, 512)`` gives
    ``(4096, 512)``; the points axis is never cut.
    """
    chunks, left = [shape[-1]], max(1, int(per_chunk))
    for n in reversed(shape[:-1]):
        size = min(n, left)
        chunks.insert(0, size)
        left = max(1, left // size)
    return tuple(chunks)


@contextlib.contextmanager
def removed_if_untouched(out: Path, new: bool) -> Iterator[None]:
    """Remove ``out`` again when the block fails before any chunk is done, if it was ``new``.

    A run that never started (an unreachable scheduler, Ctrl-C during start-up) leaves no
    store behind to refuse the next run's other settings.
    """
    try:
        yield
    except BaseException:
        if new and _chunks_done(out) == 0:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _chunks_done(out: Path) -> int:
    import zarr

    try:
        return int(np.asarray(zarr.open_group(out, mode="r")[DONE][...]).sum())
    except Exception:  # no store, or not ours: nothing of it is done
        return 0


def prepare_output(
    out: Path,
    source: MapInput,
    x: np.ndarray,
    chunks: tuple[int, ...],
    settings: dict[str, Any],
    overwrite: bool = False,
):
    """The output group, created or reopened to resume: ``(group, chunks already done)``.

    ``settings`` (method, model, its version, package version...) go into the attributes
    with the input's :meth:`MapInput.identity` and ``chunks``.

    Raises
    ------
    MapInputError
        ``out`` is the input or inside it; ``out`` exists and is not a ``correct-map``
        output (never removed, even with ``overwrite``); or it was made from another input,
        with other chunks, method or model and ``overwrite`` is not set.
    """
    import zarr

    out = Path(out)
    if out.resolve() == source.path or out.resolve().is_relative_to(source.path):
        raise MapInputError(f"-o {out}: that is the input; choose another output")
    made = {"input": source.identity(), "chunks": list(chunks), **settings}
    if out.exists():
        found = _our_attrs(out)
        if found is None:
            raise MapInputError(
                f"-o {out} exists and is not a correct-map output: not touched; choose another"
            )
        same = all(found.get(k) == v for k, v in made.items() if k in RESUME_KEYS)
        if same and not overwrite:
            group = zarr.open_group(out, mode="r+")
            return group, int(np.asarray(group[DONE][...]).sum())
        if not overwrite:
            differs = [k for k in RESUME_KEYS if found.get(k) != made.get(k)]
            raise MapInputError(
                f"-o {out} was made from {found['input']['path']} with other "
                f"{', '.join(differs)}; give --overwrite to replace it, or another -o"
            )
        shutil.rmtree(out)
    return _create(out, source, x, chunks, made), 0


# what a store must have been made from and with to be resumed; options added later are None in
# stores made before them
RESUME_KEYS = ("input", "chunks", "method", "model", "model_version", "length_mode")
RESUME_KEYS += ("uncertainty", "denoiser")


def _our_attrs(out: Path) -> dict[str, Any] | None:
    import zarr

    try:
        return dict(zarr.open_group(out, mode="r").attrs).get(ATTRS)
    except Exception:  # not a Zarr group at all
        return None


def _create(out: Path, source: MapInput, x: np.ndarray, chunks, made: dict[str, Any]):
    import zarr

    dtype = np.result_type(np.dtype(source.dtype), np.float32)
    group = zarr.open_group(out, mode="w-")
    axis = group.create_array(WAVENUMBER, shape=x.shape, dtype=np.float64)
    axis[...] = x
    extra = {STD: made.get("uncertainty"), DENOISED: made.get("denoiser")}  # with the options
    for name in OUTPUTS + tuple(name for name, made_with in extra.items() if made_with):
        group.create_array(name, shape=source.shape, chunks=chunks, dtype=dtype, fill_value=np.nan)
    grid = tuple(-(-n // c) for n, c in zip(source.shape[:-1], chunks[:-1], strict=True))
    group.create_array(DONE, shape=grid, chunks=(1,) * len(grid), dtype=np.uint8, fill_value=0)
    group.attrs[ATTRS] = made  # last: a store without it was never complete
    return group
