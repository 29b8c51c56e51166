"""Simulation throughput on one core: spectra per second at the default params.

    python benchmarks/simulate_speed.py [--n 20000] [--repeats 7] [--length 512]

Pins the process to one core and one BLAS/OpenMP thread, warms up (first-touch memory is
slow on a fresh VM), then prints the best, median and worst of the repeats.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pipeline.config import load_params  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--length", type=int, default=None)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sim = load_params(args.params).simulate
    if args.length:
        sim = dataclasses.replace(sim, length=args.length)
    simulate(sim, args.n, seed=0)  # warm-up
    rates = []
    for seed in range(1, args.repeats + 1):
        start = time.perf_counter()
        simulate(sim, args.n, seed=seed)
        rates.append(args.n / (time.perf_counter() - start))
    print(f"simulation, length {sim.length}, {args.n} spectra x {args.repeats} runs, 1 core")
    print(f"  best   {max(rates):>9,.0f} spectra/s")
    print(f"  median {statistics.median(rates):>9,.0f} spectra/s")
    print(f"  worst  {min(rates):>9,.0f} spectra/s")
    print(f"  target    50,000 spectra/s: median / target = {statistics.median(rates) / 5e4:.2f}")


if __name__ == "__main__":
    main()
