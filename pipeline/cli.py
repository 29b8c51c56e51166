"""``raman-baseline``: the DVC stage entry points and the user commands.

Every command validates ``params.yaml`` before any work. Each stage reads only its declared
inputs and replaces its outputs atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.config import ConfigError, Params, load_params
from pipeline.files import atomic_path, write_json

SPLITS = ("train", "val", "test")


def cmd_simulate(p: Params, args: argparse.Namespace) -> None:
    """Simulate the train/val/test sets (``data/simulated/<split>.npz``)."""
    from pipeline.simulate import simulate

    sizes = {"train": p.simulate.n_train, "val": p.simulate.n_val, "test": p.simulate.n_test}
    for offset, split in enumerate(SPLITS):  # one seed per split: sets never overlap
        start = time.perf_counter()
        spectra = simulate(p.simulate, sizes[split], seed=p.simulate.seed * 1000 + offset)
        with atomic_path(args.out / f"{split}.npz") as tmp:
            spectra.save(tmp)
        print(f"{split}: {len(spectra)} spectra in {time.perf_counter() - start:.1f} s")


def cmd_classical(p: Params, args: argparse.Namespace) -> None:
    """Choose arPLS/asPLS ``lam`` on the validation set; fit the test set at that ``lam``."""
    from pipeline.baselines import METHODS, fit_many
    from pipeline.metrics import baseline_errors
    from pipeline.simulate import SpectrumSet

    val = SpectrumSet.load(args.data / "val.npz")
    test = SpectrumSet.load(args.data / "test.npz")
    n = min(p.classical.n_val_grid, len(val))
    report, fits = {}, {}
    for name in METHODS:
        settings = getattr(p.classical, name)
        lams = [10**ll for ll in settings.log10_lam]
        fitted = fit_many(name, lams, settings, val.observed[:n], n_jobs=p.classical.n_jobs)
        grid = {}
        for log_lam, b in zip(settings.log10_lam, fitted, strict=True):
            e = baseline_errors(b, val.baseline[:n], val.observed[:n])
            grid[f"{log_lam:g}"] = {"rmse": float(e["rmse"].mean()), "mae": float(e["mae"].mean())}
        chosen = min(settings.log10_lam, key=lambda ll: grid[f"{ll:g}"]["rmse"])
        start = time.perf_counter()
        fits[name] = fit_many(
            name, [10**chosen], settings, test.observed, n_jobs=p.classical.n_jobs
        )[0]
        seconds = time.perf_counter() - start
        report[name] = {
            "log10_lam": chosen,
            "val_spectra": n,
            "grid": grid,
            "test_fit_seconds": round(seconds, 2),
        }
        print(
            f"{name}: log10(lam) = {chosen:g} (val RMSE {grid[f'{chosen:g}']['rmse']:.4f}), "
            f"{len(test)} test fits in {seconds:.1f} s"
        )
    with atomic_path(args.out) as tmp:
        np.savez(tmp, **{k: v.astype(np.float32) for k, v in fits.items()})
    write_json(args.report, report)


def cmd_train(p: Params, args: argparse.Namespace) -> None:
    """Train ResUNet-1D; write the best checkpoint and the per-epoch history."""
    from pipeline.simulate import SpectrumSet
    from pipeline.train import save_checkpoint, to_tensors, train

    sets = {s: SpectrumSet.load(args.data / f"{s}.npz") for s in ("train", "val")}
    tensors = {s: to_tensors(v.observed, v.baseline) for s, v in sets.items()}
    state, history = train(
        p.model,
        p.train,
        tensors["train"],
        tensors["val"],
        resume_path=args.resume,
        progress=not args.no_progress,
    )
    save_checkpoint(args.out, state, p.model)
    with atomic_path(args.history) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(vars(history[0])))
        writer.writeheader()
        writer.writerows(vars(e) for e in history)
    args.resume.unlink(missing_ok=True)  # finished: nothing to resume
    best = min(history, key=lambda e: e.val_mae)
    print(f"best epoch {best.epoch}: val MAE {best.val_mae:.5f}, val RMSE {best.val_rmse:.5f}")


def cmd_evaluate(p: Params, args: argparse.Namespace) -> None:
    """Score ResUNet-1D, arPLS and asPLS on the test set; write metrics and figures."""
    import torch

    from pipeline.evaluate import plot_bars, plot_examples, score
    from pipeline.inference import predict_baselines
    from pipeline.simulate import SpectrumSet
    from pipeline.train import load_checkpoint

    test = SpectrumSet.load(args.data / "test.npz")
    with np.load(args.classical) as f:
        predictions = {k: f[k] for k in f.files}
    model = load_checkpoint(args.model)
    with torch.no_grad():
        predictions["resunet"] = predict_baselines(
            lambda z: model(torch.from_numpy(z)).numpy(), test.observed, p.evaluate.batch_size
        )
    report = score(test, predictions, p.evaluate.noise_bins)
    report["classical_lam"] = {
        m: v["log10_lam"] for m, v in json.loads(args.classical_report.read_text()).items()
    }
    write_json(args.metrics, report)
    plot_examples(test, predictions, [0, 1], args.figures)
    plot_bars(report, args.figures)
    for m in ("resunet", "arpls", "aspls"):
        print(f"{m:8s} RMSE {report[m]['rmse']['mean']:.5f}  MAE {report[m]['mae']['mean']:.5f}")
    print("ResUNet / best classical:", json.dumps(report["ratio"]))


def build_parser() -> argparse.ArgumentParser:
    """The ``raman-baseline`` argument parser."""
    parser = argparse.ArgumentParser(prog="raman-baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help=cmd_simulate.__doc__)
    s.add_argument("--out", type=Path, default=Path("data/simulated"))
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("classical", help=cmd_classical.__doc__)
    s.add_argument("--data", type=Path, default=Path("data/simulated"))
    s.add_argument("--out", type=Path, default=Path("data/classical/test_baselines.npz"))
    s.add_argument("--report", type=Path, default=Path("reports/classical.json"))
    s.set_defaults(func=cmd_classical)

    s = sub.add_parser("train", help=cmd_train.__doc__)
    s.add_argument("--data", type=Path, default=Path("data/simulated"))
    s.add_argument("--out", type=Path, default=Path("models/resunet.pt"))
    s.add_argument("--history", type=Path, default=Path("reports/train_history.csv"))
    s.add_argument(
        "--resume",
        type=Path,
        default=Path(".resume/train.pt"),
        help="resume checkpoint, written every epoch, removed when training ends",
    )
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help=cmd_evaluate.__doc__)
    s.add_argument("--data", type=Path, default=Path("data/simulated"))
    s.add_argument("--model", type=Path, default=Path("models/resunet.pt"))
    s.add_argument("--classical", type=Path, default=Path("data/classical/test_baselines.npz"))
    s.add_argument("--classical-report", type=Path, default=Path("reports/classical.json"))
    s.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    s.add_argument("--figures", type=Path, default=Path("reports/figures"))
    s.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raman-baseline``."""
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print(f"raman-baseline: invalid {args.params}: {exc}", file=sys.stderr)
        return 2
    args.func(params, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
