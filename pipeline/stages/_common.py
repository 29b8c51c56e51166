"""What the stages' ``main`` functions share: arguments, the params, training histories."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.files import atomic_path


def arguments(doc: str | None, prog: str) -> argparse.ArgumentParser:
    """A stage's argument parser, with ``--params`` (the one configuration file)."""
    parser = argparse.ArgumentParser(
        prog=f"raman-baseline {prog}", description=(doc or "").strip().splitlines()[0]
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


def params_of(args: argparse.Namespace) -> Params:
    """``params.yaml`` validated (:class:`pipeline.config.ConfigError` names a bad key)."""
    return load_params(args.params)


def write_history(path: Path, history: Iterable) -> None:
    """A training history (dataclass rows, one per epoch) as CSV, atomically."""
    rows = [vars(row) for row in history]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict[str, str]]:
    """A history written by :func:`write_history`, as rows of strings."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def path_arguments(parser: argparse.ArgumentParser, **paths: str) -> None:
    """Required path options, ``--name-with-dashes``, each with its help text."""
    for name, what in paths.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=what)
