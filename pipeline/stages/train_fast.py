"""Stage ``train_fast``: the fast variant, trained as ``train`` trains the seed network.

The student has ``student.channels`` (16x fewer multiply-adds) and trains on the same
simulated stream for ``student.samples`` spectra; everything else is
:mod:`pipeline.stages.train` with ``--student``.
"""

from __future__ import annotations

import sys

from pipeline.stages import train
from pipeline.stages._common import script


def run(params, val_set, resume=None, progress: bool = True):
    """:func:`pipeline.stages.train.run` for the student."""
    return train.run(params, val_set, True, resume, progress)


def main(argv: list[str] | None = None) -> int:
    """Write the student's checkpoint and history (the ``train`` stage's options)."""
    return train.main([*(sys.argv[1:] if argv is None else argv), "--student"])


if __name__ == "__main__":
    sys.exit(script(main, "train_fast"))
