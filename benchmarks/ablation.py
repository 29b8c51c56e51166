"""SE attention and the smoothness prior: each variant trained at one budget and seeds, scored.

    python benchmarks/ablation.py --data data/simulated --semireal data/semireal
                                  --rruff data/rruff [--real ../shared/data/real]
                                  [--seeds 0 1] [--samples 24576] [--smoothness 10]
                                  [--variants none:0 se:0 none:W se:W] [--threads 1]
                                  [--out reports/ablation] [--json OUT]

Variants ``ATTENTION:SMOOTHNESS`` (``W`` is ``--smoothness``): ``model.attention`` (none, or
squeeze-and-excitation in every residual block, :mod:`pipeline.model`) by ``train.smoothness``
(0, or ``W``: the second-difference penalty of :mod:`pipeline.losses`). Every variant trains as
the ``train`` stage does (:func:`pipeline.stages.train.run`: params.yaml's model and recipe,
the seeded simulated stream, validation on ``--data``'s ``val.npz``) with only
``train.seed``, ``train.samples``, ``train.threads`` and the variant's two keys changed, so the
variants of one seed see the same spectra in the same order. The checkpoints go to ``--out``
(``<attention>_w<smoothness>_s<seed>.pt`` with its ONNX export); one already there is loaded,
not retrained, so a run can be continued.

Scores, each network through ONNX Runtime as ``correct`` runs it
(:class:`pipeline.inference.OnnxBaseline`):

- mean RMSE of the baseline on the test part of the simulated, semi-real and RRUFF benchmarks
  (:func:`pipeline.stages.evaluate_real.load_benchmarks`, :func:`pipeline.metrics.benchmark_errors`:
  units of each spectrum's range; the network alone, no classical refinement);
- trainable parameters; training spectra/s (this machine, ``--threads`` torch threads);
- inference spectra/s: one ONNX Runtime session, one thread, batch 1,024 of 512 points
  (best of 5 calls after a warm-up);
- on the real spectra of ``--real`` (:func:`pipeline.realdata.load`, saturated ones left out
  as fine-tuning does), none of which any variant trained on: the median and mean of
  :func:`pipeline.quality.curvature` of the baseline (how much it bends, in units of the
  spectrum's range over the window) and the mean percentage of points below -3 noise sigmas
  (:func:`pipeline.quality.negative_fraction`: a smoother baseline that cuts into bands shows
  here). arPLS at the ``lam`` ``correct`` uses is printed beside them for reference.

Seeds are printed row by row, then the mean over seeds per variant.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.metrics import benchmark_errors  # noqa: E402
from pipeline.quality import curvature, negative_fraction  # noqa: E402

SPEED_BATCH, SPEED_LENGTH, SPEED_REPEATS = 1024, 512, 5
COLUMNS = [
    ("variant", "variant", ""),
    ("seed", "seed", ""),
    ("params", "parameters", "{:,.0f}"),
    ("train_rate", "train spectra/s", "{:,.0f}"),
    ("simulated", "simulated RMSE", "{:.5f}"),
    ("semireal", "semi-real RMSE", "{:.5f}"),
    ("rruff", "RRUFF RMSE", "{:.5f}"),
    ("curvature_median", "real curv. median", "{:.2f}"),
    ("curvature_mean", "real curv. mean", "{:.2f}"),
    ("negative", "real % < -3 sigma", "{:.2f}"),
    ("onnx_rate", "ORT spectra/s", "{:,.0f}"),
]
SCORES = [key for key, _, _ in COLUMNS[2:]]


def parse_variant(text: str, smoothness: float) -> tuple[str, float]:
    """``"se:W"`` -> ``("se", smoothness)``; ``"none:0.5"`` -> ``("none", 0.5)``."""
    attention, _, weight = text.partition(":")
    return attention, smoothness if weight == "W" else float(weight or 0)


def variant_params(params: Params, attention: str, smoothness: float, seed: int, args) -> Params:
    """params.yaml with the variant's two keys and the run's seed, budget and threads."""
    model = dataclasses.replace(params.model, attention=attention)
    train = dataclasses.replace(
        params.train, seed=seed, samples=args.samples, threads=args.threads, smoothness=smoothness
    )
    return dataclasses.replace(params, model=model, train=train)


def trained(params: Params, path: Path, val_set) -> tuple[object, float | None]:
    """The variant's network (trained now, or loaded from ``path``) and its training rate.

    The rate (spectra/s, validation passes included) is kept beside the checkpoint
    (``.json``), so a loaded network reports the rate measured when it was trained.
    """
    from pipeline.checkpoint import from_state, load_checkpoint, save_checkpoint
    from pipeline.files import write_json
    from pipeline.stages.train import run

    note = path.with_name(path.stem + ".json")
    if path.exists():
        rate = json.loads(note.read_text())["train_rate"] if note.exists() else None
        return load_checkpoint(path)[0], rate
    start = time.perf_counter()
    state, history, model_params = run(params, val_set, progress=False)
    seconds = time.perf_counter() - start
    rate = history[-1].samples / seconds
    save_checkpoint(path, state, model_params)
    write_json(note, {"train_rate": rate, "seconds": seconds, "load": common.load_average()})
    return from_state(model_params, state), rate


def onnx_rate(onnx: Path) -> float:
    """Spectra/s of one single-threaded ONNX Runtime session, batch 1,024 of 512 points."""
    from pipeline.inference import onnx_session

    session = onnx_session(onnx, threads=1)
    name = session.get_inputs()[0].name
    z = np.random.default_rng(0).random((SPEED_BATCH, 1, SPEED_LENGTH), dtype=np.float32)
    session.run(None, {name: z})  # warm-up
    best = np.inf
    for _ in range(SPEED_REPEATS):
        start = time.perf_counter()
        session.run(None, {name: z})
        best = min(best, time.perf_counter() - start)
    return SPEED_BATCH / best


def real_scores(method, records) -> dict[str, float]:
    """Curvature (median, mean) and % of points below -3 sigma of ``method`` on ``records``."""
    bends, negative = [], []
    for r in records:
        y = r.y[None, :].astype(np.float64)
        baseline = np.asarray(method(r.x, y), dtype=np.float64)
        bends.append(curvature(baseline, y)[0])
        negative.append(negative_fraction(y, baseline)[0])
    return {
        "curvature_median": float(np.median(bends)),
        "curvature_mean": float(np.mean(bends)),
        "negative": 100 * float(np.mean(negative)),
    }


def score(network, onnx: Path, params: Params, benchmarks: dict, records) -> dict:
    """Every score of one trained network (module notes)."""
    from pipeline.export import export_onnx
    from pipeline.inference import OnnxBaseline
    from pipeline.model import count_parameters

    export_onnx(network, onnx, length=params.simulate.length)
    method = OnnxBaseline(onnx, grid=params.simulate.length, workers=1).baselines
    row = {"params": count_parameters(network)}
    for name, (_, test) in benchmarks.items():
        row[name] = benchmark_errors(method, test)["rmse"]
    row |= real_scores(method, records)
    row["onnx_rate"] = onnx_rate(onnx)
    return row


def mean_rows(rows: list[dict]) -> list[dict]:
    """One row per variant: the mean of each score over its seeds."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        mean = {"variant": variant, "seed": f"mean of {len(mine)}"}
        for key in SCORES:
            values = [r[key] for r in mine if r.get(key) is not None]
            mean[key] = float(np.mean(values)) if values else None
        out.append(mean)
    return out


def main(argv: list[str] | None = None) -> int:
    """Train (or load) every variant for every seed, score, print the tables."""
    parser = common.benchmark_parser(__doc__, ROOT)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--samples", type=int, help="training spectra (default: train.samples)")
    parser.add_argument("--smoothness", type=float, default=10.0, help="W of the variants")
    parser.add_argument("--variants", nargs="+", default=["none:0", "se:0", "none:W", "se:W"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "ablation")
    parser.add_argument("--json", type=Path, help="write the rows and printed notes here")
    args = parser.parse_args(argv)

    from pipeline import realdata
    from pipeline.correct import classical_method
    from pipeline.finetune import saturated
    from pipeline.simulate import load_sets
    from pipeline.stages.evaluate_real import load_benchmarks

    params = load_params(args.params)
    args.samples = args.samples or params.train.samples
    say = common.Printout()
    say(f"CPU: {common.cpu_line()}; load {common.load_average()}")
    say(
        f"budget {args.samples:,} spectra per run, batch {params.train.batch_size}, "
        f"{args.threads} torch thread(s), seeds {args.seeds}, W = {args.smoothness:g}"
    )
    benchmarks = load_benchmarks(params, args.data, args.semireal, args.rruff)
    records, _ = realdata.load(args.real)
    records = [r for r in records if not saturated(r)]
    say(f"real spectra: {len(records)} (saturated ones left out) under {args.real}")
    val_set = load_sets(args.data, ("val",))["val"]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for text in args.variants:
            attention, weight = parse_variant(text, args.smoothness)
            variant = f"{attention}, smoothness {weight:g}"
            stem = f"{attention}_w{weight:g}_s{seed}"  # "none_w0.1_s0": no Path suffixes
            run_params = variant_params(params, attention, weight, seed, args)
            network, rate = trained(run_params, args.out / f"{stem}.pt", val_set)
            row = {"variant": variant, "seed": str(seed), "train_rate": rate}
            row |= score(network, args.out / f"{stem}.onnx", params, benchmarks, records)
            rows.append(row)
            say(f"{variant}, seed {seed}: {row}; load {common.load_average()}")
    arpls, how = classical_method("arpls", params, ROOT / "reports" / "classical.json")
    reference = {"variant": "arPLS (reference)", "seed": "-"} | real_scores(arpls, records)
    say("\nper seed (RMSE: units of each spectrum's range; curvature: quality.curvature)")
    say(common.format_table(rows, COLUMNS))
    say("\nmean over seeds")
    say(common.format_table([*mean_rows(rows), reference], COLUMNS))
    say(f"arPLS: {how}")
    say(f"load {common.load_average()}")
    if args.json:
        from pipeline.files import write_json

        write_json(args.json, {"rows": rows, "means": mean_rows(rows), "notes": say.text})
    return 0


if __name__ == "__main__":
    sys.exit(main())
