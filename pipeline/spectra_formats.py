"""Readers of the binary and interchange formats users have, each through a library.

==========  ===========================  ==================================================
suffix      format                       read by
==========  ===========================  ==================================================
``.wdf``    Renishaw WiRE binary         ``renishaw-wdf`` (Renishaw's own reader): every
                                         collected spectrum, map coordinates from the
                                         ``Spatial_X``/``_Y``/``_Z`` data origins
``.spc``    Galactic / Thermo SPC        ``spc-io``: every sub-file on the shared axis
``.jdx``,   JCAMP-DX (plain ``XY..XY``   ``jcamp``: one spectrum; a DOS end-of-file
``.dx``,    pairs and the compressed     character is dropped first; data whose X/Y
``.jcamp``  ``X++(Y..Y)`` forms)         checks fail, or of another length than NPOINTS,
                                         are refused; a file without ``##`` records is
                                         read as other text (its content), with a note
``.spe``    Princeton Instruments SPE    ``spexread``: every detector row of every frame;
            (WinSpec 2.x, LightField     the axis from the file's wavelength calibration
            3.0)                         (WinSpec's identity calibration is a pixel index)
==========  ===========================  ==================================================

Chosen by measurement (``tests/data/formats/SOURCE.md``): renishaw-wdf and renishawWiRE read
Renishaw's ``Si-map.wdf`` identically (88 spectra of 575 points, the values Renishaw's own
tests assert); renishaw-wdf is kept, maintained by the vendor and without dependencies.
spc-io and spc-spectra read the Raman ``.spc`` files of specio identically (and as specio's
CSV export of them), but spc-spectra reads the X axis of a multi-axis file (``-xy.spc``)
wrongly and its sdist does not build in a fresh environment; spc-io is kept. jcamp is the
one maintained JCAMP-DX reader on PyPI that reads the Raman test file exactly. spexread
(2026, MIT) reads WinSpec 2.x and LightField 3.0 ``.spe``; on speview's Raman ``.spe`` files
its intensities equal the data read at the offsets the SPE 2.x header documents (spe2py
reads 3.0 files only).

Each reader returns :class:`pipeline.spectra_text.RawSpectra` (unchecked; the shared checks
are :mod:`pipeline.spectra_io`'s); every failure of a library is one :class:`FormatProblem`
naming the format. The libraries are imported when a file of theirs is read. This module
imports from the project only :mod:`pipeline.spectra_text`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from pipeline.spectra_text import FormatProblem, RawSpectra, numbered, read_text

_RAMAN_SHIFT = {"wdf": "RamanShift", "spc": "XRAMANS"}
_JCAMP_RECORD = re.compile(r"^\s*##[^=\r\n]*=", re.MULTILINE)  # "##TITLE=", "##XYDATA=..."


def reader_for(path: Path) -> Callable[[Path], RawSpectra] | None:
    """The library reader of ``path``'s suffix, or None for the text and npz readers."""
    return READERS.get(path.suffix.lower())


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[io.StringIO]:
    """The library's prints and log records captured (they would break ``correct``'s output)."""
    out = io.StringIO()
    logger = logging.getLogger(name)
    propagate, logger.propagate = logger.propagate, False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        logger.propagate = propagate


def _problem(what: str, exc: BaseException) -> FormatProblem:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return FormatProblem(f"binary content that is not a readable {what} ({detail})")


def read_wdf(path: Path) -> RawSpectra:
    """Every collected spectrum of a Renishaw WiRE ``.wdf`` file, with map coordinates."""
    try:
        from wdf import Wdf, WdfDataType

        with _quiet("wdf"), Wdf(str(path)) as wdf:
            n = wdf.hdr.ncollected
            xlist = wdf.xlist()
            x = np.asarray(xlist, dtype=np.float64)
            y = np.array([np.asarray(wdf[i], dtype=np.float64) for i in range(n)])
            coords = {
                axis: [float(wdf.origins[kind][i]) for i in range(n)]
                for axis, kind in (
                    ("X", WdfDataType.Spatial_X),
                    ("Y", WdfDataType.Spatial_Y),
                    ("Z", WdfDataType.Spatial_Z),
                )
                if kind in wdf.origins
            }
            units = xlist.units.name
            metadata = {
                "title": wdf.hdr.title,
                "application": f"{wdf.hdr.appname} {wdf.hdr.appversion}",
                "x_units": units,
            }
    except Exception as exc:  # noqa: BLE001 - any failure of the library is a bad file
        raise _problem("Renishaw .wdf file", exc) from None
    if n == 0:
        raise FormatProblem("a Renishaw .wdf file without collected spectra")
    labels = ()
    if n > 1 and coords:
        labels = tuple(
            f"{numbered('point', i, n)} ("
            + ", ".join(f"{axis}={values[i]:g}" for axis, values in coords.items())
            + ")"
            for i in range(n)
        )
    notes = () if units == _RAMAN_SHIFT["wdf"] else (f"the axis is in {units}, not Raman shift",)
    return RawSpectra(x, y, "wdf", labels, metadata, notes)


def read_spc(path: Path) -> RawSpectra:
    """Every sub-file of a Galactic ``.spc`` file; they must share one axis."""
    try:
        from spc_io import SPC

        with _quiet("spc_io"), path.open("rb") as f:
            spc = SPC.from_bytes_io(f)
            subs = [(np.asarray(s.xarray, float), np.asarray(s.yarray, float)) for s in spc]
            xtype, ytype = str(spc.xtype), str(spc.ytype)
    except Exception as exc:  # noqa: BLE001 - any failure of the library is a bad file
        raise _problem("Galactic .spc file", exc) from None
    if not subs:
        raise FormatProblem("a Galactic .spc file without spectra")
    x = subs[0][0]
    for k, (sx, _) in enumerate(subs[1:], start=2):
        if sx.shape != x.shape or not np.allclose(sx, x, rtol=0, atol=1e-9):
            raise FormatProblem(
                f"sub-spectrum {k} of the .spc file has its own axis ({sx.size} points, the "
                f"first {x.size}): export the sub-spectra separately"
            )
    notes = () if xtype == _RAMAN_SHIFT["spc"] else (f"the axis is {xtype}, not Raman shift",)
    metadata = {"x_type": xtype, "y_type": ytype}
    return RawSpectra(x, np.array([s[1] for s in subs]), "spc", (), metadata, notes)


def read_jcamp(path: Path) -> RawSpectra:
    """The spectrum of a JCAMP-DX file (``XYDATA`` in any of its encodings).

    A file named like one but holding no ``##LABEL=`` record (a ``LICENSE.jcamp``, a table
    saved as ``.dx``) is read by its content as other text, with a note.

    Raises
    ------
    FormatProblem
        Data the library cannot read or that fail its checks; neither JCAMP-DX nor text
        spectra.
    """
    text = path.read_bytes().decode("latin-1").replace("\x1a", "")  # DOS end-of-file mark
    if not _JCAMP_RECORD.search(text):
        return _not_jcamp(path)
    try:
        import jcamp

        with _quiet("jcamp") as printed:
            found = jcamp.read(io.StringIO(text))
    except Exception as exc:  # noqa: BLE001 - any failure of the library is a bad file
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FormatProblem(f"not a readable JCAMP-DX file ({detail})") from None
    complaints = [line for line in printed.getvalue().splitlines() if "failed" in line]
    if complaints:
        raise FormatProblem(f"JCAMP-DX data that do not decode consistently ({complaints[0]})")
    if "x" not in found or "y" not in found or not len(found["x"]):
        raise FormatProblem(
            "a JCAMP-DX file without XYDATA (peak tables, compound and NMR files are not read)"
        )
    x, y = np.asarray(found["x"], float), np.asarray(found["y"], float)
    if x.shape != y.shape:
        raise FormatProblem(f"JCAMP-DX data of {x.size} abscissas and {y.size} ordinates")
    declared = found.get("npoints")
    if isinstance(declared, int | float) and declared != x.size:
        raise FormatProblem(f"JCAMP-DX data of {x.size} points where NPOINTS says {declared:g}")
    keys = ("title", "datatype", "origin", "owner", "xunits", "yunits", "date")
    metadata = {k: str(found[k]) for k in keys if k in found}
    datatype = metadata.get("datatype", "")
    notes = () if "RAMAN" in datatype.upper() else (f"JCAMP-DX data type {datatype!r}",)
    return RawSpectra(x, y, "jcamp", (), metadata, notes)


def _not_jcamp(path: Path) -> RawSpectra:
    """A file named ``.jdx``, ``.dx`` or ``.jcamp`` without JCAMP-DX records, read as text."""
    try:
        raw = read_text(path)
    except FormatProblem as exc:
        raise FormatProblem(
            f"not JCAMP-DX (no ##TITLE= or ##XYDATA= records), nor text spectra ({exc})"
        ) from None
    note = f"named {path.suffix} but not JCAMP-DX (no ## records): read as {raw.kind}"
    return dataclasses.replace(raw, notes=(*raw.notes, note))


def read_spe(path: Path) -> RawSpectra:
    """Every detector row of every frame of a Princeton Instruments ``.spe`` file.

    The axis is the file's wavelength calibration: an identity calibration (``1, 2, 3, ...``,
    WinSpec's default) is the pixel index, flagged uncalibrated by the shared checks; a
    calibration in nanometres is kept as it is, with a note (the file holds no laser
    wavelength to turn it into a Raman shift).
    """
    try:
        with warnings.catch_warnings():  # numpydantic deprecates the shape syntax spexread uses
            warnings.simplefilter("ignore", DeprecationWarning)
            import spexread

        with _quiet("spexread"):
            dataset = spexread.read_spe_file(path)
            rois = [dataset[name] for name in dataset.data_vars]
            axes = [np.asarray(roi.coords["wavelength"].values, float) for roi in rois]
            blocks = [np.asarray(roi.transpose("frame", "y", "x").values, float) for roi in rois]
            notes_text = str(dataset.attrs.get("GeneralInfo", {}).get("notes", "")).strip()
    except Exception as exc:  # noqa: BLE001 - any failure of the library is a bad file
        raise _problem("Princeton .spe file", exc) from None
    if not rois:
        raise FormatProblem("a Princeton .spe file without data")
    if any(a.shape != axes[0].shape or not np.array_equal(a, axes[0]) for a in axes[1:]):
        raise FormatProblem("regions of interest on different axes: export them separately")
    y = np.concatenate([b.reshape(-1, b.shape[-1]) for b in blocks])
    x = axes[0]
    step = np.diff(x)
    notes = []
    if len(y) > 1:
        frames, rows = blocks[0].shape[:2]
        notes.append(f"{len(y)} spectra: {frames} frame(s) x {rows} detector row(s) per region")
    if not (x[0] in (0.0, 1.0) and np.all(step == 1.0)):
        notes.append("the axis is the file's wavelength calibration (nm), not Raman shift")
    metadata = {"notes": notes_text} if notes_text else {}
    labels = tuple(numbered("spectrum", i, len(y)) for i in range(len(y))) if len(y) > 1 else ()
    return RawSpectra(x, y, "spe", labels, metadata, tuple(notes))


READERS: dict[str, Callable[[Path], RawSpectra]] = {
    ".wdf": read_wdf,
    ".spc": read_spc,
    ".jdx": read_jcamp,
    ".dx": read_jcamp,
    ".jcamp": read_jcamp,
    ".spe": read_spe,
}
