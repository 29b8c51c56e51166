"""The shipped model: a ResUNet-1D inside the package, described by its model card.

The folder of this package holds the model's files (the ONNX network ``correct`` runs, the
PyTorch checkpoint that fine-tuning and distillation start from, and optionally the ONNX
denoiser ``correct --denoise`` runs, role ``denoiser``) and ``model_card.json``:
the params, git commit, data digests, device, wall time and benchmark metrics of the run that
produced it, how its weights are stored, and the sha256 and size of every file. ``raman-baseline
ship`` writes the folder (:mod:`pipeline.ship`), ``raman-baseline ship-denoiser`` adds the
denoiser to it (:mod:`pipeline.ship_denoiser`); the stage ``register_shipped`` registers it in
the local store; ``raman-baseline correct`` uses it when no registry is found.

:func:`load` checks every file against the card before anything uses it: a missing file or one
whose size or sha256 differs is a :class:`ShippedModelError` (one line), never a silent fall
back to another model. This module imports nothing heavy (no torch, onnx or mlflow).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent
CARD = "model_card.json"
ROLES = ("onnx", "checkpoint")  # the files a card must name, by role
OPTIONAL_ROLES = ("denoiser",)  # the files a card may name, one of each at most


class ShippedModelError(RuntimeError):
    """The shipped model is missing, incomplete or altered; the message says which file, how."""


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model whose files matched its card when it was loaded.

    Attributes
    ----------
    folder
        Where the card and the files are.
    card
        ``model_card.json``, parsed.
    """

    folder: Path
    card: dict[str, Any]

    def path(self, role: str) -> Path:
        """The file playing ``role`` (``onnx`` or ``checkpoint``)."""
        return self.folder / _file_of(self.card, role, self.folder)

    @property
    def denoiser(self) -> Path | None:
        """The ONNX denoiser (``correct --denoise``), or None when the card names none."""
        name = _file_of(self.card, "denoiser", self.folder, optional=True)
        return None if name is None else self.folder / name

    @property
    def onnx(self) -> Path:
        """The ONNX network (``correct`` runs it under ONNX Runtime)."""
        return self.path("onnx")

    @property
    def checkpoint(self) -> Path:
        """The PyTorch checkpoint (:func:`pipeline.checkpoint.load_checkpoint` reads it)."""
        return self.path("checkpoint")

    @property
    def grid(self) -> int:
        """Points per spectrum the network was trained on (``simulate.length``)."""
        return int(self.card["grid"])

    @property
    def label(self) -> str:
        """How messages name it: ``resunet1d shipped 342e978c2f2d (commit 573683bd8c7c)``."""
        commit = str(self.card.get("git_commit") or "unknown")[:12]
        return f"{self.card.get('name', 'resunet1d')} shipped {self.card['id']} (commit {commit})"

    def classical(self, method: str) -> dict[str, Any]:
        """A classical method's settings recorded with the model.

        ``log10_lam`` (chosen on validation), ``max_iter``, ``tol``, and ``reference_length``,
        the spectrum length ``lam`` was chosen at.

        Raises
        ------
        ShippedModelError
            The card records no settings for ``method``.
        """
        found = (self.card.get("classical") or {}).get(method)
        if not found:
            raise ShippedModelError(f"{self.folder / CARD} records no settings for {method}")
        return found

    def refined(self) -> dict[str, Any]:
        """``refined``'s classical part chosen on validation with this network.

        ``method`` (``arpls``, ``aspls`` or ``none``: the network alone), ``log10_lam`` (None
        for ``none``), ``max_iter``, ``tol``, ``reference_length`` and ``chosen_on`` (which
        validation set).

        Raises
        ------
        ShippedModelError
            The card records no refined choice.
        """
        found = self.card.get("refined")
        if not found:
            raise ShippedModelError(f"{self.folder / CARD} records no refined choice")
        return found


def sha256(path: Path) -> str:
    """sha256 of a file, hex."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_card(folder: Path | None = None) -> dict[str, Any]:
    """``model_card.json`` of ``folder`` (default :data:`FOLDER`), parsed and checked.

    Checked for the keys :func:`load` needs.

    Raises
    ------
    ShippedModelError
        No card, not JSON, or without ``id``, ``grid`` and a ``files`` entry per role of
        :data:`ROLES`, or with more than one of an optional role (:data:`OPTIONAL_ROLES`).
    """
    folder = Path(folder or FOLDER)
    path = folder / CARD
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShippedModelError(f"the shipped model's card {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ShippedModelError(f"the shipped model's card {path} is unreadable: {exc}") from None
    missing = [k for k in ("id", "grid", "files") if k not in card]
    if missing:
        raise ShippedModelError(f"{path} lacks {', '.join(missing)}: not a model card")
    for role in ROLES:
        _file_of(card, role, folder)
    for role in OPTIONAL_ROLES:
        _file_of(card, role, folder, optional=True)
    return card


def _file_of(card: dict[str, Any], role: str, folder: Path, optional: bool = False) -> str | None:
    """The name of the file playing ``role``; None for none of an ``optional`` role."""
    names = [name for name, entry in card["files"].items() if entry.get("role") == role]
    if optional and not names:
        return None
    if len(names) != 1:
        wanted = "0 or 1" if optional else "1"
        raise ShippedModelError(
            f"{Path(folder) / CARD} names {len(names)} {role} files, not {wanted}"
        )
    return names[0]


def verify(folder: Path, card: dict[str, Any]) -> None:
    """Check every file the card lists: present, of its size, of its sha256.

    Raises
    ------
    ShippedModelError
        The first file that is missing or differs, named, with what was expected.
    """
    for name, entry in card["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            raise ShippedModelError(
                f"the shipped model's file {path} is missing (listed in {CARD}); reinstall "
                "the package or name a model with --model/--store"
            )
        size = path.stat().st_size
        if size != entry["bytes"] or sha256(path) != entry["sha256"]:
            raise ShippedModelError(
                f"the shipped model's file {path} does not match {CARD} ({size:,} bytes, "
                f"expected {entry['bytes']:,} bytes with sha256 {entry['sha256'][:12]}...): "
                "altered or corrupt; reinstall the package"
            )


def load(folder: Path | None = None) -> ShippedModel:
    """The shipped model of ``folder`` (default: the one inside the package), verified.

    Raises
    ------
    ShippedModelError
        The card is missing or unreadable, or a file it lists is missing or differs from it
        (:func:`verify`).
    """
    folder = Path(folder or FOLDER)
    card = read_card(folder)
    verify(folder, card)
    return ShippedModel(folder, card)
