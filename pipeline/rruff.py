"""The RRUFF raw/processed pairs: real spectra with an expert's reference baseline.

``<source>/raw/<name>.txt`` is a spectrum as measured, ``<source>/processed/<name>.txt`` the
same measurement with the background removed by the RRUFF curators, clipped at 0, on the same
axis (``../shared/data/rruff/README.md``). The reference baseline is ``raw - processed``.
Both files are read by :func:`pipeline.spectra_io.read_spectra` (the RRUFF export is a
two-column text table after ``##KEY=value`` header lines, which it reads as comments).

Clipping: where ``processed`` was clipped at 0 the reference is only an upper bound. On the
57 pairs here that is 2 points per spectrum (of 1,038 to 1,255), 0.2%, so every point is kept
in the error: excluding them would change no figure at the precision reported.

Split (:func:`split`): by crystal mount, the RRUFF id with its suffix (``R040130-3``), so the
orientations of one mount are never on both sides; within each mineral the mounts, sorted,
alternate test / validation (the first to test). The specimen (RRUFF id without the suffix)
can be on both sides: there are only five specimens, one of them the only Aenigmatite.

References
----------
Lafuente, B., Downs, R. T., Yang, H., Stone, N. (2015). The power of databases: the RRUFF
project. In Highlights in Mineralogical Crystallography, pp. 1-30.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.spectra_io import SpectrumFileError, read_spectra

PARTS = ("val", "test")


class PairError(ValueError):
    """A pair that cannot be used: one line naming the file and the problem."""


@dataclass(frozen=True)
class Pairs:
    """RRUFF pairs, each on its own axis: ``x[i]``, ``raw[i]``, ``processed[i]`` are (L_i,).

    ``names`` are the file names (without ``.txt``); ``sample`` the crystal mount of each.
    """

    names: tuple[str, ...]
    x: tuple[np.ndarray, ...]
    raw: tuple[np.ndarray, ...]
    processed: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def reference(self) -> tuple[np.ndarray, ...]:
        """The reference baselines ``raw - processed``, (L_i,) each."""
        return tuple(r - p for r, p in zip(self.raw, self.processed, strict=True))

    @property
    def sample(self) -> tuple[str, ...]:
        """The crystal mount of each pair (:func:`sample_of`)."""
        return tuple(sample_of(n) for n in self.names)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(x (L,), raw (1, L), reference (1, L))`` per pair: a benchmark's blocks."""
        for x, r, p in zip(self.x, self.raw, self.processed, strict=True):
            yield x, r[None, :], (r - p)[None, :]

    def subset(self, keep: list[int]) -> Pairs:
        """The pairs at the indices ``keep``, in that order."""
        pick = lambda seq: tuple(seq[i] for i in keep)  # noqa: E731
        return Pairs(pick(self.names), pick(self.x), pick(self.raw), pick(self.processed))

    def save(self, path: str | Path) -> None:
        """Write to ``.npz``: the arrays concatenated, with each pair's length."""
        np.savez(
            path,
            names=np.array(self.names),
            lengths=np.array([len(x) for x in self.x], dtype=np.int64),
            x=np.concatenate(self.x),
            raw=np.concatenate(self.raw),
            processed=np.concatenate(self.processed),
        )

    @classmethod
    def load(cls, path: str | Path) -> Pairs:
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            cuts = np.cumsum(f["lengths"])[:-1]
            parts = {k: tuple(np.split(f[k], cuts)) for k in ("x", "raw", "processed")}
            return cls(tuple(str(n) for n in f["names"]), **parts)


def sample_of(name: str) -> str:
    """The crystal mount of a RRUFF file name: ``Adamite__R040130-3__Raman__...`` -> ``R040130-3``.

    A name without ``__`` fields is its own sample.
    """
    fields = name.split("__")
    return fields[1] if len(fields) > 1 else name


def mineral_of(name: str) -> str:
    """The mineral of a RRUFF file name (its first ``__`` field)."""
    return name.split("__")[0]


def read_pairs(source: str | Path) -> Pairs:
    """Every pair of ``<source>/raw/*.txt`` and ``<source>/processed/*.txt``, sorted by name.

    Raises
    ------
    PairError
        One line naming the file: the folder has no raw spectra, a raw file has no processed
        partner, a file is unreadable (:class:`pipeline.spectra_io.SpectrumFileError`), holds
        more than one spectrum, or the two axes differ.
    """
    source = Path(source)
    files = sorted((source / "raw").glob("*.txt"))
    if not files:
        raise PairError(f"{source / 'raw'}: no RRUFF spectra (*.txt) found")
    names, xs, raws, processed = [], [], [], []
    for raw_path in files:
        other = source / "processed" / raw_path.name
        x, raw = _one_spectrum(raw_path)
        x_p, proc = _one_spectrum(other)
        if x.shape != x_p.shape or not np.allclose(x, x_p, rtol=0, atol=1e-6):
            raise PairError(
                f"{other}: axis differs from {raw_path.name}'s in raw/ "
                f"({x_p.size} points from {x_p[0]:g}, raw {x.size} from {x[0]:g})"
            )
        names.append(raw_path.stem)
        xs.append(x)
        raws.append(raw)
        processed.append(proc)
    return Pairs(tuple(names), tuple(xs), tuple(raws), tuple(processed))


def _one_spectrum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        spectra = read_spectra(path)
    except SpectrumFileError as exc:
        raise PairError(str(exc)) from None
    if len(spectra.y) != 1:
        raise PairError(f"{path}: {len(spectra.y)} spectra, expected one")
    return spectra.x, spectra.y[0]


def split(pairs: Pairs) -> dict[str, Pairs]:
    """``{"val", "test"}``: by crystal mount, alternating within each mineral (module doc).

    Deterministic: depends on the file names only.
    """
    by_mineral: dict[str, list[str]] = {}
    for name in pairs.names:
        mounts = by_mineral.setdefault(mineral_of(name), [])
        if sample_of(name) not in mounts:
            mounts.append(sample_of(name))
    part_of = {
        mount: PARTS[(i + 1) % 2]
        for mounts in by_mineral.values()
        for i, mount in enumerate(sorted(mounts))
    }
    return {
        part: pairs.subset([i for i, s in enumerate(pairs.sample) if part_of[s] == part])
        for part in PARTS
    }
