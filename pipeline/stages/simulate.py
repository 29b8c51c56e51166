"""Stage ``simulate``: the train, validation and test sets of simulated spectra.

Each split has its own seed, ``simulate.seed * 1000 + 0, 1, 2``, so the sets never share a
spectrum and any one of them can be regenerated alone.
"""

from __future__ import annotations

import sys
import time

from pipeline.config import SimulateParams
from pipeline.files import atomic_path
from pipeline.simulate import SpectrumSet, simulate
from pipeline.stages._common import arguments, params_of, script

SPLITS = ("train", "val", "test")


def split_seed(params: SimulateParams, split: str) -> int:
    """The seed of one split: ``seed * 1000 + its index`` in :data:`SPLITS`."""
    return params.seed * 1000 + SPLITS.index(split)


def run(params: SimulateParams, split: str) -> SpectrumSet:
    """The simulated spectra of one split (``n_train``, ``n_val`` or ``n_test`` of them)."""
    size = {"train": params.n_train, "val": params.n_val, "test": params.n_test}[split]
    return simulate(params, size, seed=split_seed(params, split))


def main(argv: list[str] | None = None) -> int:
    """Write ``<out>/{train,val,test}.npz``."""
    parser = arguments(__doc__, "simulate", "out")
    args = parser.parse_args(argv)
    params = params_of(args).simulate
    for split in SPLITS:
        start = time.perf_counter()
        spectra = run(params, split)
        with atomic_path(args.out / f"{split}.npz") as tmp:
            spectra.save(tmp)
        print(f"{split}: {len(spectra)} spectra in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "simulate"))
