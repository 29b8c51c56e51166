"""``raman-baseline correct`` as a user runs it: the model it picks itself against arPLS.

    python benchmarks/correct_speed.py --store PATH [--n 1024] [--length 512] [--repeats 3]
                                       [--params params.yaml] [--json OUT]

One ``.npz`` batch of ``--n`` simulated spectra of ``--length`` points
(:func:`benchmarks.common.spectra_at`) is corrected by the CLI, each time in a fresh process
in an empty working folder (no ``mlflow.db``, no ``reports/``), ``--no-plots``:

- with no model named: what ``--store``'s registry resolves to (the fast variant when it is
  within ``student.max_rmse_ratio`` of production on every benchmark, else production);
- ``--model production``: production, whatever variant qualifies;
- ``--method arpls``: arPLS as ``correct`` runs it (``lam`` from the shipped model's card).

Two rates per row, best of ``--repeats``: the whole process (start-up, imports, registry,
model load, reading, correcting, writing the ``.npz``) and the correction alone
(:func:`pipeline.correct_files.correct_files` in this process, with the network or method the CLI
chooses, after one warm-up call). Each is also given relative to arPLS's. ``correct`` runs
arPLS on one core; one more row times arPLS at the same ``lam`` on all cores (a warm process
pool, one chunk per core, as ``inference_speed.py`` does; not something the CLI does), for the
issue's "arPLS on all cores". The CPU and the load average are printed: the cores may be shared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not the workspace's

import numpy as np  # noqa: E402

from benchmarks import common, inference_speed  # noqa: E402
from pipeline import correct, correct_files, shipped  # noqa: E402
from pipeline.baselines import fit_block, scaled_lam  # noqa: E402
from pipeline.config import load_params  # noqa: E402

CLI = "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
RUNS = {  # row name -> extra arguments of raman-baseline correct
    "no model named": (),
    "--model production": ("--model", "production"),
    "--method arpls": ("--method", "arpls"),
}


def write_batch(folder: Path, params, n: int, length: int) -> Path:
    """An ``.npz`` batch of ``n`` simulated spectra: ``x`` (L,), ``y`` (N, L)."""
    spectra = common.spectra_at(params, length, n, common.SEED)
    path = folder / "batch.npz"
    np.savez(path, x=np.linspace(200.0, 3200.0, length), y=spectra.observed)
    return path


def process_seconds(batch: Path, extra: Sequence[str], common_args: Sequence[str]) -> tuple:
    """Wall seconds of one ``raman-baseline correct`` process, and the model line it printed."""
    with tempfile.TemporaryDirectory() as work:
        argv = ["correct", str(batch), "-o", "out", "--no-plots", "--no-progress"]
        cmd = [sys.executable, "-c", CLI, *argv, *common_args, *extra]
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        env.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-2000:]}")
    return seconds, done.stdout.splitlines()[0]


def correction_seconds(batch: Path, extra: Sequence[str], store: str, params) -> float:
    """Seconds of :func:`correct_files` alone, with what the CLI would run (after a warm-up)."""
    if "--method" in extra:
        estimate, _ = correct.classical_method(extra[-1], params, None)
    else:
        model = extra[-1] if "--model" in extra else None
        network, _ = correct.choose_network(model, store, params)
        estimate = partial(network.baselines, length_mode="resample")
    with tempfile.TemporaryDirectory() as work:
        correct_files.correct_files(
            [batch], estimate, Path(work) / "warm", plots=False, progress=False
        )
        start = time.perf_counter()
        correct_files.correct_files(
            [batch], estimate, Path(work) / "out", plots=False, progress=False
        )
        return time.perf_counter() - start


def pooled_arpls_seconds(batch: Path, params) -> float:
    """Seconds of arPLS over the batch on all cores, at the ``lam`` ``correct`` uses here."""
    card = shipped.ShippedModel(shipped.FOLDER, shipped.read_card()).classical("arpls")
    with np.load(batch) as f:
        x, y = f["x"], f["y"]
    lam = scaled_lam(10 ** float(card["log10_lam"]), x.size, int(card["reference_length"]))
    settings = params.classical.arpls
    workers = len(os.sched_getaffinity(0))
    fit = partial(fit_block, "arpls", lam, settings.max_iter, settings.tol, x)
    with inference_speed.classical_pool(workers) as pool:
        estimate = inference_speed.pooled(pool, workers, fit)
        estimate(y)
        start = time.perf_counter()
        estimate(y)
        return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--store", required=True, help="the registry (URI or SQLite file)")
    parser.add_argument("--n", type=int, default=1024, help="spectra in the batch")
    parser.add_argument("--length", type=int, default=512, help="points per spectrum")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    say = common.Printout()
    say(common.cpu_description()[1])
    say(f"cores usable: {len(os.sched_getaffinity(0))}; pentapy: {common.pentapy_in_use()}")
    say(f"load average before: {common.load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        batch = write_batch(Path(folder), params, args.n, args.length)
        shared = ["--store", args.store, "--params", str(args.params)]
        for name, extra in RUNS.items():
            timed = [process_seconds(batch, extra, shared) for _ in range(args.repeats)]
            alone = [
                correction_seconds(batch, extra, args.store, params) for _ in range(args.repeats)
            ]
            best = min(s for s, _ in timed)
            rows.append((name, timed[0][1], args.n / best, args.n / min(alone)))
        pooled = min(pooled_arpls_seconds(batch, params) for _ in range(args.repeats))
    arpls = next(r for r in rows if r[0] == "--method arpls")
    say(f"\n{args.n:,} spectra of {args.length} points in one .npz, best of {args.repeats}")
    say("| run | process spectra/s | x arPLS | correction-only spectra/s | x arPLS |")
    say("|---|---|---|---|---|")
    for name, _, process, alone in rows:
        say(
            f"| {name} | {process:,.0f} | {process / arpls[2]:.2f} | {alone:,.0f} | "
            f"{alone / arpls[3]:.2f} |"
        )
    say(
        f"| arPLS, all cores (warm pool; not the CLI) | - | - | {args.n / pooled:,.0f} | "
        f"{args.n / pooled / arpls[3]:.2f} |"
    )
    fast = next(r for r in rows if r[0] == "no model named")
    say(f"no model named, correction only, x arPLS on all cores: {fast[3] * pooled / args.n:.2f}")
    say("\nwhat each run printed first:")
    for name, line, *_ in rows:
        say(f"  {name}: {line}")
    say(f"load average after: {common.load_average()}")


if __name__ == "__main__":
    main()
