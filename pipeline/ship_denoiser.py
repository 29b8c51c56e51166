"""``raman-baseline ship-denoiser``: a trained denoiser into the shipped folder, on its card.

The denoiser (:mod:`pipeline.denoise`, the second network that ``correct --denoise`` runs) is
copied into the shipped folder (:mod:`pipeline.shipped`) as :data:`NAME`, byte for byte (its
weights stay float32: it is small), and the model card gets its file entry (sha256, size, role
``denoiser``) and a ``denoiser`` section: where it came from (the source file's path and
sha256, the ONNX metadata written at export), the ``denoise`` section of the params file it was
trained with, and, when ``--report`` names one, the figures of its benchmark report (a JSON
file, kept as it is). The folder is verified against the card afterwards
(:func:`pipeline.shipped.load`). The rest of the card and the other files are left as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import shipped
from pipeline.files import atomic_path, write_json

NAME = "denoiser.onnx"  # the file in the shipped folder
ROLE = "denoiser"  # its role on the card (pipeline.shipped.OPTIONAL_ROLES)


class ShipDenoiserError(RuntimeError):
    """The denoiser cannot be shipped; the message names the file and what to do."""


def ship_denoiser(
    onnx: Path,
    folder: Path | None = None,
    params: Path | None = None,
    report: Path | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Copy the denoiser ``onnx`` into ``folder`` and record it on the card; return the card.

    Parameters
    ----------
    onnx
        An ONNX denoiser (:func:`pipeline.denoiser.export_denoiser`), checked by
        :class:`pipeline.denoise.OnnxDenoiser` before anything is written.
    folder
        The shipped folder (default: the package's, :data:`pipeline.shipped.FOLDER`).
    params
        The params file it was trained with (default ``params.yaml``): its ``denoise`` section
        goes on the card.
    report
        A JSON benchmark report of the denoiser, recorded on the card as it is; None: none.
        When it holds ``samples`` (``train-denoiser`` writes it), that must be the
        ``denoise.samples`` of ``params`` with ``profile``: a ``--profile cpu_long`` denoiser
        shipped without the profile would be recorded with another run's params.
    profile
        The ``profiles`` entry of ``params`` it was trained with (``cpu_long`` for the shipped
        one), laid over the file before its ``denoise`` section is read.

    Raises
    ------
    DenoiserError
        ``onnx`` is missing or not a denoiser.
    ShipDenoiserError
        ``params`` or ``report`` is missing or unreadable, the report's ``samples`` is not the
        params' ``denoise.samples``, or the shipped files would take more than
        :data:`pipeline.ship.MAX_BYTES`.
    ShippedModelError
        The folder's card is missing or broken, or one of its other files does not match it.
    """
    from pipeline.denoise import OnnxDenoiser
    from pipeline.ship import MAX_BYTES, file_entry

    folder = Path(folder or shipped.FOLDER)
    card = shipped.read_card(folder)
    others = {n: e for n, e in card["files"].items() if e.get("role") != ROLE}
    shipped.verify(folder, card | {"files": others})  # build on a folder that is whole
    metadata = OnnxDenoiser(onnx).metadata
    params = Path(params or "params.yaml")
    denoise = _denoise_params(params, profile)
    figures = _report(report) if report is not None else None
    got = figures["figures"] if figures else None
    trained = got.get("samples") if isinstance(got, dict) else None  # train-denoiser's
    if trained is not None and trained != denoise["samples"]:
        given = f"{params} with --profile {profile}" if profile else str(params)
        raise ShipDenoiserError(
            f"--report {report} is of a denoiser trained on {trained:,} spectra, but "
            f"denoise.samples of {given} is {denoise['samples']:,}: name the params file "
            "and --profile it was trained with (the shipped denoiser: --profile cpu_long)"
        )
    section = {
        "file": NAME,
        "source": {"path": str(onnx), **file_entry(onnx)},
        "onnx_metadata": metadata,
        "params": denoise,
        "profile": profile,
        "report": figures,
        "shipped": datetime.now(UTC).isoformat(timespec="seconds"),
        "storage": "float32, as exported",
    }
    total = sum(e["bytes"] for e in others.values()) + Path(onnx).stat().st_size
    if total > MAX_BYTES:
        raise ShipDenoiserError(
            f"with {onnx} the shipped files would take {total:,} bytes, over {MAX_BYTES:,}: "
            "ship a smaller denoiser (denoise.width, denoise.dilations)"
        )
    with atomic_path(folder / NAME) as tmp:
        shutil.copyfile(onnx, tmp)
    for name in set(card["files"]) - set(others) - {NAME}:  # an earlier one of another name
        (folder / name).unlink(missing_ok=True)
    card["files"] = others | {NAME: file_entry(folder / NAME, ROLE)}
    card[ROLE] = section
    write_json(folder / shipped.CARD, card)
    shipped.load(folder)  # what was written verifies against its card
    return card


def _denoise_params(path: Path, profile: str | None = None) -> dict[str, Any]:
    """The ``denoise`` section of the params file ``path`` (with ``profile``), as plain values."""
    from pipeline.config import load_params

    if not path.is_file():
        raise ShipDenoiserError(
            f"no params file {path}: name the one the denoiser was trained with (--params)"
        )
    denoise = dataclasses.asdict(load_params(path, profile).denoise)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in denoise.items()}


def _report(path: Path) -> dict[str, Any]:
    """The benchmark report ``path`` as the card records it: its name, sha256 and figures."""
    from pipeline.ship import file_entry

    try:
        figures = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ShipDenoiserError(f"--report {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ShipDenoiserError(f"--report {path}: not a readable JSON file ({exc})") from None
    return {"path": str(path), **file_entry(path), "figures": figures}


def main(argv: list[str] | None = None) -> int:
    """``raman-baseline ship-denoiser PATH [--report JSON] [--out FOLDER] [--params FILE]``.

    And ``--profile NAME``, the params profile the denoiser was trained with.
    """
    parser = argparse.ArgumentParser(
        prog="raman-baseline ship-denoiser",
        description="Put a trained denoiser (ONNX) into the shipped folder, on its model card.",
    )
    parser.add_argument("onnx", type=Path, metavar="PATH", help="the ONNX denoiser")
    parser.add_argument("--report", type=Path, help="its benchmark report (JSON), recorded")
    parser.add_argument(
        "--out", type=Path, default=None, help="the shipped folder (default: the package's)"
    )
    parser.add_argument("--params", type=Path, help="default: params.yaml")
    parser.add_argument("--profile", help="the params profile it was trained with (cpu_long)")
    args = parser.parse_args(argv)
    card = ship_denoiser(args.onnx, args.out, args.params, args.report, args.profile)
    entry = card["files"][NAME]
    where = args.out or shipped.FOLDER
    print(
        f"shipped the denoiser {args.onnx} into {where / NAME}: {entry['bytes']:,} bytes, "
        f"sha256 {entry['sha256'][:12]}; recorded in {where / shipped.CARD}"
    )
    return 0
