"""(c) Simulation throughput on one core: spectra per second at the default params.

    python benchmarks/simulate_speed.py [--n 20000] [--repeats 5] [--length 512] [--quick]
                                        [--params params.yaml] [--json OUT]

Pins the process to one core and one BLAS/OpenMP thread, warms up (first-touch memory is
slow on a fresh VM), then prints the best, median and worst of the repeats. The median is the
figure of ``benchmarks/speed.py``'s table and must-show line (target 50,000 spectra/s).
"""

import os

if __name__ == "__main__":  # one thread, before numpy loads its BLAS (not when imported)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

from benchmarks import common  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402

FULL = {"n": 20_000, "repeats": 5}
QUICK = {"n": 5_000, "repeats": 3}


def main() -> None:
    parser = common.parser_for(__doc__, FULL, QUICK)
    parser.add_argument("--length", type=int, default=None, help="default: simulate.length")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    sizes = common.chosen_sizes(args, FULL, QUICK)
    n, repeats = sizes["n"], sizes["repeats"]

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sim = load_params(args.params).simulate
    if args.length:
        sim = dataclasses.replace(sim, length=args.length)
    simulate(sim, n, seed=0)  # warm-up
    rates = []
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        simulate(sim, n, seed=seed)
        rates.append(n / (time.perf_counter() - start))
    median = statistics.median(rates)
    say = common.Printout()
    say(f"simulation, length {sim.length}, {n} spectra x {repeats} runs, 1 core")
    say(f"  best   {max(rates):>9,.0f} spectra/s")
    say(f"  median {median:>9,.0f} spectra/s")
    say(f"  worst  {min(rates):>9,.0f} spectra/s")
    target = common.SIM_TARGET
    say(f"  target {target:>9,.0f} spectra/s: median / target = {median / target:.2f}")
    note = f"simulate_speed.py --n {n} --repeats {repeats}: median, pinned"
    row = common.Row(
        "simulate", "simulation per core", sim.length, n, "1 (pinned)", median, note=note
    )
    common.finish(say, [row], args.json)


if __name__ == "__main__":
    main()
