"""The folder of real spectra for fine-tuning and domain-shift checks (``data/real/``).

Layout. ``<folder>/<instrument>/...`` holds raw instrument files, read by
:func:`pipeline.spectra_io.read_spectra`; the first folder under ``<folder>`` names the
instrument (``Horiba_MacroRAM``; files directly in ``<folder>`` get :data:`NO_INSTRUMENT`).
``<folder>/paired/<instrument>/...`` holds paired data: CSVs of a spectrum and its reference
baseline (:mod:`pipeline.paired_csv`). Hidden files and folders, ``README*`` and ``LICENSE*``
are not spectra, nor is any file whose suffix is not in :data:`SPECTRA_SUFFIXES` (the PNGs
beside ``correct``'s CSVs, archives).

Seeding (:func:`seed`) copies the spectra and their README and licences from the shared
folder, keeping the folder structure: files in sorted order, each one written to a temporary
name and renamed, an identical file left untouched, a different one replaced, files that only
the destination has (added data) kept.

Held-out split (:func:`split`), by measurement, never by spectrum: all points of a multi-point
file, the per-point CSVs ``<stem>_point003.csv`` that ``correct`` writes for one, and a paired
file laid out beside its raw file (``paired/X/a.csv`` for ``X/a.txt``) share one key (the
relative path without ``paired/``, suffix and ``_pointNNN``, :func:`measurement`). Keys whose
files hold a bit-identical spectrum are joined into one group (:func:`groups`), which counts
for the instrument of its smallest key: the shared folder files two exports twice
(``Horiba_MacroRAM/CC-124-TAP-2.txt`` is also in ``chlamy_spectra/``,
``extra/Horiba/MacroRAM/CC-125-TAP.txt`` is ``Horiba_MacroRAM/chlamy_spectra/CC-125-TAP-1.txt``).

Per instrument, groups are ranked by ``sha256(f"{seed}:{key}")`` of their smallest key, and
the first ``round(fraction * n)`` are held out, at least one and at most ``n - 1`` when the
instrument has two groups or more (an instrument of one group is held out with probability
``fraction``). So every instrument is on both sides where it can be, the share held out is
close to the fraction for each (all of it counted in groups; multi-point files make the share
of spectra differ), and the split is stable: a file's rank depends on its own path only, and
adding a file to an instrument moves at most one other file of it across.
"""

from __future__ import annotations

import filecmp
import hashlib
import math
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.files import atomic_path
from pipeline.paired_csv import read_paired
from pipeline.spectra_io import MIN_POINTS, SpectrumFileError, read_spectra

SPECTRA_SUFFIXES = (".txt", ".csv", ".tsv", ".dat", ".asc", ".npz")
DOC_PREFIXES = ("README", "LICENSE", "LICENCE")
PAIRED = "paired"
NO_INSTRUMENT = "other"
_POINT = re.compile(r"_point\d{3,}$")  # correct's name for one point of a multi-point file

Problem = tuple[Path, str]  # a file that could not be read, and why


class RealDataError(ValueError):
    """The real-spectra folder cannot be seeded or read; the message says why."""


@dataclass(frozen=True, eq=False)  # arrays: records compare by identity
class RealSpectrum:
    """One real spectrum: a single point of one file.

    Attributes
    ----------
    file
        The file, relative to the real-spectra folder, with ``/`` separators.
    label
        The point within the file (``point003 (X=1.5, Y=-2)``), else the file's stem.
    x
        The axis (L,), increasing: Raman shift in cm-1, or the pixel index when not
        ``calibrated``.
    y
        The raw intensities (L,), in the instrument's units.
    instrument
        The first folder of the file's path (after ``paired/``).
    calibrated
        False when the axis is a detector pixel index.
    baseline
        The reference baseline (L,) of paired data, else None.
    """

    file: str
    label: str
    x: np.ndarray
    y: np.ndarray
    instrument: str
    calibrated: bool
    baseline: np.ndarray | None = None

    @property
    def paired(self) -> bool:
        """Whether a reference baseline comes with the spectrum."""
        return self.baseline is not None

    @property
    def measurement(self) -> str:
        """The key :func:`split` keeps together: see the module notes."""
        return measurement(self.file)


# ------------------------------------------------------------------------------ files


def _is_doc(path: Path) -> bool:
    return path.name.upper().startswith(DOC_PREFIXES)


def _visible_files(folder: Path) -> list[Path]:
    """Regular files under ``folder``, sorted, none hidden or inside a hidden folder."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def spectra_files(folder: str | Path) -> list[Path]:
    """The spectra files under ``folder``, sorted: suffix in :data:`SPECTRA_SUFFIXES`, not docs."""
    return [
        p
        for p in _visible_files(Path(folder))
        if p.suffix.lower() in SPECTRA_SUFFIXES and not _is_doc(p)
    ]


def seed(source: str | Path, dest: str | Path) -> list[Path]:
    """Copy the spectra files, README and licences of ``source`` into ``dest``.

    Parameters
    ----------
    source
        The shared folder of real spectra (``../shared/data/real``).
    dest
        The project's folder (``data/real``); created if missing.

    Returns
    -------
    list of pathlib.Path
        The files written in ``dest``, sorted; identical files already there are not rewritten
        and not listed, so a second seed returns an empty list.

    Raises
    ------
    RealDataError
        When ``source`` is not a folder, holds no spectra files, or contains ``dest``.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise RealDataError(f"no folder of real spectra at {source}")
    if dest.resolve().is_relative_to(source.resolve()):
        raise RealDataError(f"cannot seed {dest} from {source}: it lies inside it")
    spectra = spectra_files(source)
    if not spectra:
        raise RealDataError(
            f"{source} holds no spectra files (suffixes {', '.join(SPECTRA_SUFFIXES)})"
        )
    docs = [p for p in _visible_files(source) if _is_doc(p)]
    written = []
    for path in sorted(spectra + docs):
        target = dest / path.relative_to(source)
        if target.is_file() and filecmp.cmp(path, target, shallow=False):
            continue
        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)
        written.append(target)
    return written


# ------------------------------------------------------------------------------ load


def _instrument(relative: Path) -> str:
    parts = relative.parts[1:] if relative.parts[0] == PAIRED else relative.parts
    return parts[0] if len(parts) > 1 else NO_INSTRUMENT


def measurement(file: str) -> str:
    """The key of the measurement a file comes from: what :func:`split` keeps together.

    ``file`` relative to the folder, without a leading ``paired/``, its suffix, and a
    ``_pointNNN`` ending: ``paired/X/map_point002.csv`` -> ``X/map``.
    """
    parts = Path(file).parts
    relative = Path(*parts[1:]) if parts[0] == PAIRED and len(parts) > 1 else Path(file)
    return _POINT.sub("", relative.with_suffix("").as_posix())


def _read_records(folder: Path, path: Path, min_points: int) -> list[RealSpectrum]:
    relative = path.relative_to(folder)
    if relative.parts[0] == PAIRED:
        spectra, baselines = read_paired(path, min_points)
    else:
        spectra = read_spectra(path, min_points)
        baselines = [None] * len(spectra)
    return [
        RealSpectrum(
            file=relative.as_posix(),
            label=label,
            x=spectra.x,
            y=y,
            instrument=_instrument(relative),
            calibrated=spectra.calibrated,
            baseline=baseline,
        )
        for label, y, baseline in zip(spectra.labels, spectra.y, baselines, strict=True)
    ]


def load(
    folder: str | Path, min_points: int = MIN_POINTS
) -> tuple[list[RealSpectrum], list[Problem]]:
    """Every spectrum under ``folder``, one record per point, and the files that failed.

    Parameters
    ----------
    folder
        The real-spectra folder (see the module notes for its layout).
    min_points
        Fewest points per spectrum accepted.

    Returns
    -------
    (list of RealSpectrum, list of (pathlib.Path, str))
        The records in file order, then point order; each unreadable file with the error
        message (which names it). A bad file never stops the others.

    Raises
    ------
    RealDataError
        When ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RealDataError(f"no folder of real spectra at {folder}")
    records: list[RealSpectrum] = []
    problems: list[Problem] = []
    for path in spectra_files(folder):
        try:
            records += _read_records(folder, path, min_points)
        except SpectrumFileError as exc:
            problems.append((path, str(exc)))
        except OSError as exc:
            problems.append((path, f"{path}: {exc.strerror or exc}"))
    return records, problems


# ----------------------------------------------------------------------------- split


def _unit_hash(text: str) -> float:
    """A number in ``[0, 1)`` from ``text``, the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def groups(records: Iterable[RealSpectrum]) -> dict[str, str]:
    """Measurement key -> the key of its group, the smallest key it is joined with.

    Two measurements are joined when they share a spectrum identical to the last bit: the same
    export filed twice (the shared folder holds two such pairs) must not sit on both sides.
    """
    parent: dict[str, str] = {}
    owner: dict[bytes, str] = {}  # a spectrum's content -> the first key holding it

    def root(key: str) -> str:
        while parent[key] != key:
            key = parent[key]
        return key

    for r in records:
        key = r.measurement
        parent.setdefault(key, key)
        digest = hashlib.sha256(np.ascontiguousarray(r.y, dtype=np.float64).tobytes()).digest()
        a, b = root(key), root(owner.setdefault(digest, key))
        parent[max(a, b)] = min(a, b)
    return {key: root(key) for key in parent}


def _held_out(instrument_of: dict[str, str], fraction: float, seed: int | str) -> set[str]:
    """Per instrument, the groups of lowest hash: ``round(fraction * n)``, within 1 and n - 1."""
    held: set[str] = set()
    for instrument in sorted(set(instrument_of.values())):
        mine = sorted(
            (_unit_hash(f"{seed}:{group}"), group)
            for group, owner in instrument_of.items()
            if owner == instrument
        )
        if len(mine) == 1:
            count = int(mine[0][0] < fraction)
        else:
            count = min(max(math.floor(fraction * len(mine) + 0.5), 1), len(mine) - 1)
        held.update(group for _, group in mine[:count])
    return held


def split(
    records: Sequence[RealSpectrum], holdout_fraction: float = 0.2, seed: int | str = 0
) -> tuple[list[RealSpectrum], list[RealSpectrum]]:
    """Split records into training and held-out sets by measurement (see the module notes).

    Parameters
    ----------
    records
        From :func:`load`.
    holdout_fraction
        Expected share of measurements held out, strictly between 0 and 1.
    seed
        Another seed gives another split; the same seed, always the same one.

    Returns
    -------
    (list of RealSpectrum, list of RealSpectrum)
        Training and held-out records, each in the order given.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must lie strictly between 0 and 1: {holdout_fraction}")
    group = groups(records)
    instrument_of = {r.measurement: r.instrument for r in records}
    instrument_of = {g: instrument_of[g] for g in set(group.values())}  # of its smallest key
    held = _held_out(instrument_of, holdout_fraction, seed)
    train = [r for r in records if group[r.measurement] not in held]
    heldout = [r for r in records if group[r.measurement] in held]
    return train, heldout
