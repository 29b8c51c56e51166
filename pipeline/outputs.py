"""Where ``raman-baseline correct`` writes, decided before any work; each input's outputs whole.

Rules (docs/correct.md, "Outputs never touch inputs"):

- Names (:func:`plan_outputs`, from the paths alone, before any file is read): an input's
  outputs are ``OUTDIR/<folder relative to the inputs' common folder>/<stem>`` with ``.csv``
  and ``.png`` (``<stem>_point003`` for each point of a multi-point file) or ``.npz``
  (:func:`output_stems`). Since how many spectra a file holds is known only once it is read,
  two stems in one folder are taken to collide when they are equal or when one is the other
  followed by ``_point`` and digits (``m`` and ``m_point002``: the second point of a map
  ``m.csv`` and an input ``m_point002.csv``). The later input on the command line then gets
  the first free suffix ``_2``, ``_3``, ...; every such renaming is listed in the summary.
- An output folder may hold inputs, but no output may take an input's name: a plan where one
  could (``correct out/scan.csv -o out``) is refused, naming both, before any work.
- The output folder must be a folder, and writable: checked before any work
  (:func:`check_outdir`). An output whose folder leads out of it through a symbolic link is
  refused (:func:`inside`, before the input is read, and again on the open folder by
  :func:`staged`, so a folder swapped for a link meanwhile is not followed either); a symbolic
  link at an output's own name is replaced, not followed.
- Whole or nothing (:func:`staged`): an input's outputs are written into a private temporary
  folder (:func:`tempfile.mkdtemp`, mode 0700) in their target folder, then renamed into place
  together. An error, Ctrl-C or SIGTERM (:func:`terminate_cleanly`) removes them; a process
  killed outright (SIGKILL, a crash) leaves a hidden ``.raman-baseline-*.tmp`` folder and none
  of that input's outputs, unless it dies within the final renames (microseconds).

This module imports nothing from the project but :mod:`pipeline.errors`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import one_line

SUFFIXES = (".csv", ".png", ".npz")  # what an input's outputs end in
STAGING = ".raman-baseline-"  # the prefix of an input's private temporary folder


class OutputError(RuntimeError):
    """The output folder cannot take the outputs; the message says why and what to do."""


@dataclass
class Plan:
    """Where each input's outputs go, decided before any work.

    Attributes
    ----------
    stems
        One per input, in order: the output path without its suffix.
    renamed
        ``(input, stem)`` for each input whose stem took a suffix to avoid a collision.
    """

    stems: list[Path]
    renamed: list[tuple[Path, Path]] = field(default_factory=list)


def output_stems(paths: Sequence[Path], outdir: Path) -> list[Path]:
    """Where each input's outputs go, without the suffix, before collisions are resolved.

    ``outdir`` / the input's folder relative to the inputs' common folder / the input's stem,
    so files of the same name in different folders do not collide; files that do not exist
    (they will fail) do not count. Inputs that would still collide (``a.txt`` and ``a.csv``)
    keep their suffix in the name (``a_txt``).
    """
    parents = [Path(os.path.abspath(p)).parent for p in paths]
    existing = [parent for p, parent in zip(paths, parents, strict=True) if Path(p).exists()]
    common = Path(os.path.commonpath(existing or parents)) if parents else Path()
    stems = [
        outdir / (parent.relative_to(common) if parent.is_relative_to(common) else "") / p.stem
        for p, parent in zip(paths, parents, strict=True)
    ]
    taken = Counter(stems)
    return [
        s.with_name(f"{s.name}_{p.suffix.lstrip('.')}") if taken[s] > 1 else s
        for s, p in zip(stems, paths, strict=True)
    ]


_POINT = re.compile(r"(.*)_point\d+")  # a point's name: its file's stem, then _point and digits


def _owner(name: str) -> str | None:
    """The stem whose point ``name`` could be (``m`` for ``m_point002``), else None."""
    found = _POINT.fullmatch(name)
    return found.group(1) if found else None


class _Names:
    """Stems in one folder, indexed so a collision is found in constant time."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.owners: Counter[str] = Counter()

    def add(self, name: str, count: int = 1) -> None:
        self.names[name] += count
        owner = _owner(name)
        if owner is not None:
            self.owners[owner] += count

    def collides(self, name: str) -> bool:
        """Whether ``name``'s outputs could share a name with those of a stem held here."""
        owner = _owner(name)
        return bool(
            self.names[name] > 0
            or (owner is not None and self.names[owner] > 0)
            or self.owners[name] > 0
        )


def plan_outputs(paths: Sequence[Path], outdir: Path) -> Plan:
    """The stem of every input's outputs, collisions resolved, from the paths alone.

    Deterministic: the same paths in the same order give the same plan. Two stems in one
    folder collide when they are equal or one is the other followed by ``_point`` and digits
    (a point of a multi-point file); the later input gets the first suffix ``_2``, ``_3``, ...
    that collides neither with a stem kept so far nor with a later input's own stem. Linear
    in the number of inputs (10,000 inputs: well under a second).

    Raises
    ------
    OutputError
        An output could take the name of an input (it would be written over it).
    """
    paths = [Path(p) for p in paths]
    natural = output_stems(paths, Path(outdir))
    kept: defaultdict[Path, _Names] = defaultdict(_Names)
    later: defaultdict[Path, _Names] = defaultdict(_Names)
    for stem in natural:
        later[stem.parent].add(stem.name)
    stems: list[Path] = []
    renamed: list[tuple[Path, Path]] = []
    for path, stem in zip(paths, natural, strict=True):
        here, ahead = kept[stem.parent], later[stem.parent]
        ahead.add(stem.name, -1)  # this input's own stem is no longer ahead
        chosen, k = stem, 1
        while here.collides(chosen.name) or (chosen != stem and ahead.collides(chosen.name)):
            k += 1
            chosen = stem.with_name(f"{stem.name}_{k}")
        here.add(chosen.name)
        stems.append(chosen)
        if chosen != stem:
            renamed.append((path, chosen))
    _refuse_outputs_onto_inputs(paths, stems, outdir)
    return Plan(stems, renamed)


def _refuse_outputs_onto_inputs(paths: list[Path], stems: list[Path], outdir: Path) -> None:
    """Raise :class:`OutputError` when an output could be named as one of the inputs.

    Compared as written (absolute) and with symbolic links resolved, so neither an input nor
    a link to it that was named on the command line is replaced.
    """
    inputs: dict[tuple[Path, str], Path] = {}  # (folder, stem or owner of a point) -> input
    for path in paths:
        for where in {Path(os.path.abspath(path)), Path(os.path.realpath(path))}:
            base, suffix = os.path.splitext(where.name)
            if suffix in SUFFIXES:
                inputs.setdefault((where.parent, base), path)
                if _owner(base) is not None:
                    inputs.setdefault((where.parent, _owner(base)), path)
    if not inputs:
        return
    real = functools.lru_cache(maxsize=None)(os.path.realpath)
    for stem, source in zip(stems, paths, strict=True):
        for folder in {Path(os.path.abspath(stem.parent)), Path(real(stem.parent))}:
            path = inputs.get((folder, stem.name))
            if path is not None:
                raise OutputError(
                    f"-o {outdir} holds the input {path}, which an output of {source} "
                    f"(in {stem.parent}) would be written over: choose another output folder"
                )


# a new -o with one of these suffixes was meant as a file name, not the folder of the outputs
FILE_SUFFIXES = frozenset({".csv", ".png", ".npz", ".txt", ".tsv", ".json", ".dat", ".xy"})


def check_outdir(outdir: Path) -> bool:
    """Make sure ``outdir`` can take the outputs, before any work: create it, write in it.

    Returns
    -------
    bool
        Whether ``outdir`` was created here (:func:`remove_if_empty` takes it away again when
        nothing was written).

    Raises
    ------
    OutputError
        ``outdir`` is a file, or a new one named like a file (``result.csv``: the outputs are
        a CSV and a PNG per spectrum, in a folder), or cannot be created or written to.
    """
    out = Path(outdir).resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {outdir}: a file, not a folder")
    if not out.exists() and out.suffix.lower() in FILE_SUFFIXES:
        raise OutputError(
            f"-o {outdir}: names a file, but -o is the folder the outputs go into (a CSV and a "
            "PNG per spectrum): give a folder name"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OutputError(f"-o {outdir}: cannot write there ({one_line(exc)})") from exc
    return created


def remove_if_empty(outdir: Path) -> None:
    """Remove the folder ``outdir`` if nothing is in it (every input failed)."""
    with contextlib.suppress(OSError):  # not empty, or gone: leave it
        Path(outdir).rmdir()


def inside(stem: Path, outdir: Path) -> None:
    """Refuse an output whose folder leads out of ``outdir`` (a symbolic link inside it).

    Raises
    ------
    OutputError
        Naming the folder.
    """
    if not stem.parent.resolve().is_relative_to(Path(outdir).resolve()):
        raise OutputError(
            f"{stem.parent} leads out of the output folder {outdir} (a symbolic link): not followed"
        )


@contextlib.contextmanager
def staged(
    stem: Path, done: set[Path] | None = None, outdir: Path | None = None
) -> Iterator[tuple[Path, list[Path]]]:
    """Write one input's outputs in a private folder, then move them into place together.

    Yields ``(tmp_stem, written)``: write each output under ``tmp_stem``'s folder (its name
    is ``stem``'s) and append its path to ``written``. On leaving without error every file in
    ``written`` is renamed to ``stem``'s folder, in order, and ``written`` then holds the
    final paths; on any exception (Ctrl-C, SIGTERM through :func:`terminate_cleanly`) nothing
    is moved, what was already moved is removed, and the private folder goes.

    The target folder is opened once, checked to be inside ``outdir`` (its real path), and
    every step after goes through that open folder (``/proc/self/fd``, ``dir_fd``): the
    private folder (:func:`tempfile.mkdtemp`, mode 0700) is made in it, written through it and
    renamed from it, so a symbolic link swapped in on the way (a folder of ``stem``'s path
    replaced after the check) cannot lead the writes or the renames out of ``outdir``.

    Parameters
    ----------
    stem
        The output path without suffix (:class:`Plan`); its folder is created.
    done
        The outputs written so far in this run: an output already there is an error (a
        collision the plan missed), never overwritten. Updated with the new outputs.
    outdir
        The output folder the outputs must stay in (None: not checked).

    Raises
    ------
    OutputError
        The target folder leads out of ``outdir``, or an output was already written in this
        run.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(stem.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if outdir is not None:
            _fd_inside(parent, stem, outdir)
        folder = Path(tempfile.mkdtemp(prefix=STAGING, suffix=".tmp", dir=_fd_path(parent)))
        private = os.open(folder.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        try:
            with _commit(stem, parent, private, done) as written:
                yield _fd_path(private) / stem.name, written
        finally:
            os.close(private)
            shutil.rmtree(folder.name, dir_fd=parent, ignore_errors=True)
    finally:
        os.close(parent)


@contextlib.contextmanager
def _commit(stem: Path, parent: int, private: int, done: set[Path] | None) -> Iterator[list[Path]]:
    """Rename what the block wrote from the folder ``private`` into ``parent``, or none of it."""
    written: list[Path] = []
    moved: list[str] = []
    try:
        yield written
        again = [p.name for p in written if done is not None and stem.parent / p.name in done]
        if again:
            raise OutputError(
                f"{stem.parent / again[0]} was already written in this run: not overwritten"
            )
        foreign = [p.name for p in written if not _replaceable(parent, p.name)]
        if foreign:
            raise OutputError(
                f"{stem.parent / foreign[0]} is already there and is not an output of "
                "raman-baseline: not overwritten (move it, or choose another -o)"
            )
        for path in written:
            os.replace(path.name, path.name, src_dir_fd=private, dst_dir_fd=parent)
            moved.append(path.name)
    except BaseException:
        for name in moved:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=parent)
        raise
    written[:] = [stem.parent / name for name in moved]
    if done is not None:
        done.update(written)


# how an earlier run's outputs are known: the CSV's header, the PNG's Software text chunk (ours,
# or matplotlib's default before ours was set), the .npz batch's baseline member
_CSV_HEADERS = (b"wavenumber,intensity,baseline,corrected", b"pixel,intensity,baseline,corrected")
_PNG_MARKS = (b"Software\x00raman-baseline", b"Software\x00Matplotlib")


def _replaceable(parent: int, name: str) -> bool:
    """Whether ``name`` in the open folder ``parent`` is absent or an earlier run's output.

    A file of an output's name that is not one of ours (a user's own ``scan.csv`` in the
    output folder) is never overwritten. A symbolic link is: the link itself is replaced,
    what it leads to is never opened nor written.
    """
    import stat

    try:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return True
    if stat.S_ISLNK(mode):
        return True
    if not stat.S_ISREG(mode):  # a folder in the way
        return False
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent)
    with os.fdopen(fd, "rb") as f:
        head = f.read(4096)
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return head.startswith(_CSV_HEADERS)
    if suffix == ".png":
        return any(mark in head for mark in _PNG_MARKS)
    return suffix == ".npz" and "baseline.npy" in _npz_members(parent, name)


def _npz_members(parent: int, name: str) -> list[str]:
    """The member names of the zip ``name`` in ``parent`` (none if it is no zip)."""
    import zipfile

    try:
        with zipfile.ZipFile(_fd_path(parent) / name) as z:
            return z.namelist()
    except (OSError, zipfile.BadZipFile):
        return []


def _fd_path(fd: int) -> Path:
    """A path that names the open folder ``fd`` itself, whatever its path now leads to."""
    return Path(f"/proc/self/fd/{fd}")


def _fd_inside(fd: int, stem: Path, outdir: Path) -> None:
    """Raise :class:`OutputError` when the open folder ``fd`` is not inside ``outdir``."""
    real = Path(os.path.realpath(_fd_path(fd)))
    if not real.is_relative_to(Path(outdir).resolve()):
        raise OutputError(
            f"{stem.parent} leads out of the output folder {outdir} (a symbolic link): not followed"
        )


@contextlib.contextmanager
def terminate_cleanly(command: str = "correct") -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: the input being written loses all its outputs.

    The handler raises :class:`SystemExit` (status 143) in the main thread, so :func:`staged`
    removes what it wrote for the current input (``correct-map``: its local cluster is
    closed); elsewhere (a thread) nothing is installed. ``command`` is named in the message.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        print(f"raman-baseline {command}: terminated (SIGTERM)", file=sys.stderr)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
