"""Stage ``real``: the real spectra copied into the DVC-tracked folder ``data/real``.

The source is ``finetune.real_source`` (``../shared/data/real`` by default: raw spectra of
five instruments); put your own instrument's files there, or pass ``--source``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import realdata
from pipeline.stages._common import arguments, params_of, script


def run(source: Path, dest: Path) -> list[Path]:
    """Copy the spectra files of ``source`` into ``dest``; return the copies."""
    return realdata.seed(source, dest)


def main(argv: list[str] | None = None) -> int:
    """Fill ``--out`` from ``--source`` (default: ``finetune.real_source``)."""
    parser = arguments(__doc__, "real", "out")
    parser.add_argument("--source", type=Path, default=None, help="default: finetune.real_source")
    args = parser.parse_args(argv)
    source = args.source or Path(params_of(args).finetune.real_source)
    copied = run(source, args.out)
    print(f"{len(copied)} files from {source} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "real"))
