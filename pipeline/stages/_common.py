"""What the stages' ``main`` functions share: arguments, the params, training histories."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.errors import run
from pipeline.files import atomic_path

# what each path option of the stages is; dvc.yaml's cmd gives every one of them
PATH_HELP = {
    "data": "folder of the simulated sets (train/val/test.npz)",
    "real": "folder of the real spectra (data/real)",
    "model": "a checkpoint (.pt)",
    "checkpoint": "the checkpoint (.pt) of the ONNX model",
    "onnx": "the ONNX model",
    "classical": "the classical stage's test-set baselines (.npz)",
    "classical_report": "the classical stage's report: each method's lam (.json)",
    "metrics": "the evaluate stage's metrics (.json)",
    "history": "the training history (.csv)",
    "figures": "folder of figures",
    "export_report": "the export stage's report (.json)",
    "registration": "the register stage's record: names the reference version (.json)",
    "report": "this stage's report (.json)",
    "resume": "resume checkpoint, written every epoch, removed at the end",
    "dvc_lock": "DVC's lock file, logged with the run",
    "out": "this stage's output",
}


def arguments(doc: str | None, prog: str, paths: str = "") -> argparse.ArgumentParser:
    """A stage's argument parser: ``--params`` and the required path options ``paths``.

    ``paths`` names them, separated by spaces (keys of :data:`PATH_HELP`); each becomes
    ``--name-with-dashes``.
    """
    parser = argparse.ArgumentParser(
        prog=f"raman-baseline {prog}", description=(doc or "").strip().splitlines()[0]
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in paths.split():
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, type=Path, required=True, help=PATH_HELP[name])
    return parser


def script(main: Callable[[], int], module: str) -> int:
    """``python -m pipeline.stages.<module>``: ``main`` with the errors of ``raman-baseline``.

    A bad params file or an error a user can act on is one line on stderr and exit status 2
    or 1 (:func:`pipeline.errors.run`), as the command line gives them, never a traceback.
    """
    given = argparse.ArgumentParser(add_help=False)
    given.add_argument("--params", default="params.yaml")
    params = given.parse_known_args(sys.argv[1:])[0].params
    return run(module.replace("_", "-"), main, params)


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
