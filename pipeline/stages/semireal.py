"""Stage ``semireal``: the RRUFF pairs split for evaluation, and the semi-real set built on them.

Writes ``<rruff-out>/{val,test}.npz`` (the RRUFF pairs of each part, :mod:`pipeline.rruff`:
split by crystal mount) and ``<out>/{val,test}.npz`` (:mod:`pipeline.semireal`: the processed
bands of that part's pairs on simulated backgrounds, seeds ``semireal.seed * 1000 + 0, 1``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import rruff, semireal
from pipeline.config import Params
from pipeline.files import atomic_path
from pipeline.simulate import SpectrumSet
from pipeline.stages._common import arguments, params_of, script


def run(params: Params, pairs: rruff.Pairs) -> dict[str, tuple[rruff.Pairs, SpectrumSet, list]]:
    """Per part (``val``, ``test``): its pairs, its semi-real set and each spectrum's source."""
    sizes = {"val": params.semireal.n_val, "test": params.semireal.n_test}
    out = {}
    for i, (part, sources) in enumerate(rruff.split(pairs).items()):
        seed = params.semireal.seed * 1000 + i
        spectra, source = semireal.build(
            sources, params.semireal, params.simulate, sizes[part], seed
        )
        out[part] = (sources, spectra, [sources.names[k] for k in source])
    return out


def main(argv: list[str] | None = None) -> int:
    """Read the pairs (``semireal.rruff_source``), write both parts of both benchmarks."""
    parser = arguments(__doc__, "semireal", "out")
    parser.add_argument("--rruff-out", type=Path, required=True, help="folder of the RRUFF parts")
    args = parser.parse_args(argv)
    params = params_of(args)
    pairs = rruff.read_pairs(params.semireal.rruff_source)
    for part, (sources, spectra, names) in run(params, pairs).items():
        with atomic_path(args.rruff_out / f"{part}.npz") as tmp:
            sources.save(tmp)
        with atomic_path(args.out / f"{part}.npz") as tmp:
            semireal.save(tmp, spectra, names)
        mounts = sorted(set(sources.sample))
        print(f"{part}: {len(sources)} RRUFF pairs ({len(mounts)} mounts: {', '.join(mounts)}),")
        print(f"  {len(spectra)} semi-real spectra")
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "semireal"))
