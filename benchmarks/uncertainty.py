"""Calibration and cost of the baseline's standard deviation: MC dropout against a deep ensemble.

    python benchmarks/uncertainty.py --data data/simulated --semireal data/semireal
        --rruff data/rruff --checkpoints scratch/uncertainty [--dropout 0.1] [--samples 4 8 16]
        [--members 3 5] [--threads 1] [--json OUT]

Each network is trained by the pipeline's own recipe (``pipeline.stages.train.run``: the
seeded stream, ``train.samples`` of ``params.yaml``, AdamW, warm-up and cosine), once and
kept in ``--checkpoints`` (a rerun loads it):

- **MC dropout** (Gal & Ghahramani, ICML 2016): ``model.dropout`` = each ``--dropout``,
  ``train.seed`` 0, run with ``--samples`` fixed-mask passes
  (:class:`pipeline.uncertainty.MCDropout`);
- **deep ensemble** (Lakshminarayanan et al., NeurIPS 2017): ``--members`` networks without
  dropout, ``train.seed`` 0, 1, ...; the baseline is their mean, sigma their spread.

Every variant is exported to ONNX and run through ``correct``'s inference path
(:meth:`pipeline.inference.OnnxBaseline.baselines_and_std`). Its sigma scale is fitted on the
simulated validation set (:func:`pipeline.uncertainty.fit_scale`: ±2 sigma holds 95% there);
the table gives the fraction of the true baseline's points within ±1 and ±2 sigma, unscaled
and scaled, on the simulated test, the semi-real test and the RRUFF test pairs (whose
"true" baseline is raw minus RRUFF's processed spectrum), the baseline's RMSE (per spectrum, in
units of the spectrum's range, as the ``evaluate`` stage), the Gaussian-likelihood scale of
Laves et al. 2020 for comparison, and the cost: spectra/s on one thread (ONNX Runtime, a
batch of 1,024 simulated test spectra of 512 points, run in chunks of 64 as ``correct`` runs
them), beside the plain network's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

import numpy as np  # noqa: E402

from benchmarks.common import cpu_line, load_average  # noqa: E402


def train_or_load(params, val_set, path: Path, dropout: float, seed: int, threads: int):
    """The network of ``dropout`` and ``train.seed`` ``seed``: from ``path``, else trained."""
    from pipeline.checkpoint import load_checkpoint, save_checkpoint
    from pipeline.stages.train import run as train_run

    if not path.is_file():
        model = dataclasses.replace(params.model, dropout=dropout, mc_samples=0)
        train = dataclasses.replace(params.train, seed=seed, threads=threads, workers=0)
        start = time.perf_counter()
        state, history, model_params = train_run(
            dataclasses.replace(params, model=model, train=train), val_set, progress=False
        )
        save_checkpoint(path, state, model_params)
        seconds = time.perf_counter() - start
        best = min(row.val_mae for row in history)
        print(
            f"trained {path.name}: {seconds:.0f} s, best val MAE {best:.5f}, load {load_average()}"
        )
        path.with_suffix(".json").write_text(json.dumps({"seconds": seconds, "val_mae": best}))
    return load_checkpoint(path)[0]


def ensemble(members, scale: float = 1.0):
    """A torch module answering the members' mean and mean + sigma (for export)."""
    import torch
    from torch import nn

    from pipeline.inference import UPPER

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList(members)
            self.normalisation = members[0].normalisation
            self.length_multiple = members[0].length_multiple
            self.output_names = ("baseline", UPPER)

        def forward(self, x):
            passes = torch.stack([m(x) for m in self.members])  # (K, B, 1, L)
            mean = passes.mean(dim=0)
            return mean, mean + passes.std(dim=0) * scale

    return Ensemble().eval()


def blocks_of(network, blocks):
    """``(baseline, std, truth)`` per block, through ``correct``'s inference path."""
    out = []
    for x, y, truth in blocks:
        baseline, std = network.baselines_and_std(x, y)
        out.append((baseline, std, truth, np.ptp(y, axis=1, keepdims=True)))
    return out


def figures(fits, scale: float) -> dict:
    """Coverage at ±1 and ±2 sigma (scaled by ``scale``) and RMSE over a benchmark's blocks."""
    from pipeline.uncertainty import coverage

    err = np.concatenate([np.abs(t - b).ravel() for b, s, t, r in fits])
    std = np.concatenate([s.ravel() for b, s, t, r in fits]) * scale
    zero = np.zeros_like(err)
    rmse = np.concatenate([np.sqrt(np.mean((t - b) ** 2, axis=1)) / r[:, 0] for b, s, t, r in fits])
    return {
        "in_1sigma": coverage(zero, err, std, 1.0),
        "in_2sigma": coverage(zero, err, std, 2.0),
        "rmse": float(rmse.mean()),
    }


def scales(fits) -> tuple[float, float]:
    """The quantile scale (:func:`fit_scale`) and the Gaussian-likelihood one, on ``fits``."""
    from pipeline.uncertainty import fit_scale, gaussian_nll_scale

    b = np.concatenate([b.ravel() for b, s, t, r in fits])
    s = np.concatenate([s.ravel() for b, s, t, r in fits])
    t = np.concatenate([t.ravel() for b, s, t, r in fits])
    s = np.maximum(s, 1e-12 * np.abs(b).max())
    return fit_scale(t, b, s), gaussian_nll_scale(t, b, s)


def rate(network, y: np.ndarray, repeats: int = 2) -> float:
    """Spectra/s of ``network.baselines_and_std`` (or ``baselines``) on ``y``, best of a few."""
    x = np.arange(y.shape[1], dtype=np.float64)
    call = getattr(network, "baselines_and_std", None) if network.has_uncertainty else None
    call = call or network.baselines
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        call(x, y)
        best = max(best, len(y) / (time.perf_counter() - start))
    return best


def cost_only(folder: Path, data: Path, rounds: int = 3) -> int:
    """Spectra/s of every ONNX file in ``folder``: ``rounds`` interleaved rounds, the best of each.

    Interleaved, so that a load that changes during the run weighs on every variant alike.
    """
    from pipeline.inference import OnnxBaseline
    from pipeline.simulate import load_sets

    nets = {p.stem: OnnxBaseline(p, 512, workers=1) for p in sorted(folder.glob("*.onnx"))}
    y = load_sets(data, ("test",))["test"].observed[:1024].astype(np.float64)
    print(f"CPU: {cpu_line()}; load average at start {load_average()}")
    best = dict.fromkeys(nets, 0.0)
    for _ in range(rounds):
        for name, network in nets.items():
            best[name] = max(best[name], rate(network, y, repeats=1))
    plain = best.get("plain", 0.0)
    for name, value in best.items():
        times = f" ({plain / value:.1f}x the plain network's time)" if plain else ""
        print(f"{name}: {value:,.0f} spectra/s{times}")
    print(f"load average at the end {load_average()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/simulated"))
    parser.add_argument("--semireal", type=Path, default=Path("data/semireal"))
    parser.add_argument("--rruff", type=Path, default=Path("data/rruff"))
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.1])
    parser.add_argument("--samples", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--members", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="only time the ONNX files already in --checkpoints, in interleaved rounds",
    )
    args = parser.parse_args(argv)
    if args.cost_only:
        return cost_only(args.checkpoints, args.data)

    import torch

    torch.set_num_threads(args.threads)
    from pipeline.config import load_params
    from pipeline.export import export_onnx
    from pipeline.inference import OnnxBaseline
    from pipeline.semireal import blocks, real_benchmarks
    from pipeline.simulate import load_sets
    from pipeline.uncertainty import MCDropout

    print(f"CPU: {cpu_line()}; load average at start {load_average()}")
    params = load_params(args.params)
    sets = load_sets(args.data, ("val", "test"))
    real = real_benchmarks(args.semireal, args.rruff, "test")
    benchmarks = {
        "val": blocks(sets["val"]),
        "simulated": blocks(sets["test"]),
        "semireal": real["semireal"],
        "rruff": real["rruff"],
    }
    args.checkpoints.mkdir(parents=True, exist_ok=True)
    grid = params.simulate.length

    def trained(dropout: float, seed: int):
        name = f"dropout{dropout:g}_seed{seed}.pt"
        return train_or_load(
            params, sets["val"], args.checkpoints / name, dropout, seed, args.threads
        )

    variants = {}
    for p in args.dropout:
        for t in args.samples:
            variants[f"MC dropout p={p:g}, T={t}"] = lambda p=p, t=t: MCDropout(trained(p, 0), t)
    for k in args.members:
        variants[f"ensemble K={k}"] = lambda k=k: ensemble([trained(0.0, s) for s in range(k)])

    plain = trained(0.0, 0)
    export_onnx(plain, args.checkpoints / "plain.onnx", length=grid)
    speed_y = sets["test"].observed[:1024].astype(np.float64)
    plain_net = OnnxBaseline(args.checkpoints / "plain.onnx", grid, workers=1)
    plain_rate = rate(plain_net, speed_y)
    plain_rmse = {
        name: float(
            np.mean(
                np.concatenate(
                    [
                        np.sqrt(np.mean((t - plain_net.baselines(x, y)) ** 2, axis=1))
                        / np.ptp(y, axis=1)
                        for x, y, t in benchmarks[name]
                    ]
                )
            )
        )
        for name in ("simulated", "semireal", "rruff")
    }
    rows = []
    for label, build in variants.items():
        path = args.checkpoints / (
            label.replace(" ", "_").replace(",", "").replace("=", "") + ".onnx"
        )
        export_onnx(build(), path, length=grid)
        network = OnnxBaseline(path, grid, workers=1)  # chunks of 64, as correct runs them
        start = time.perf_counter()
        fits = {name: blocks_of(network, b) for name, b in benchmarks.items()}
        scale, nll = scales(fits["val"])
        row = {"variant": label, "scale": scale, "nll_scale": nll}
        for name in ("simulated", "semireal", "rruff"):
            raw, cal = figures(fits[name], 1.0), figures(fits[name], scale)
            row[name] = {
                "rmse": raw["rmse"],
                "raw_in_1sigma": raw["in_1sigma"],
                "raw_in_2sigma": raw["in_2sigma"],
                "in_1sigma": cal["in_1sigma"],
                "in_2sigma": cal["in_2sigma"],
                "nll_in_2sigma": figures(fits[name], nll)["in_2sigma"],
            }
        row["spectra_per_s"] = rate(network, speed_y)
        rows.append(row)
        print(f"{label}: scored in {time.perf_counter() - start:.0f} s, load {load_average()}")
        print(json.dumps(row), flush=True)  # each row as it comes: a long run's partial results
    print()
    print(
        f"plain network (no uncertainty, train.seed 0): {plain_rate:,.0f} spectra/s on one "
        "thread; RMSE " + ", ".join(f"{b} {v:.4f}" for b, v in plain_rmse.items())
    )
    head = "| variant | sigma scale (NLL scale) | spectra/s | " + " | ".join(
        f"{b}: RMSE, ±1σ, ±2σ (unscaled ±2σ; NLL-scaled ±2σ)"
        for b in ("simulated", "semireal", "rruff")
    )
    print(head + " |")
    print("|" + "---|" * (3 + 3))
    for row in rows:
        cells = [
            row["variant"],
            f"{row['scale']:.2f} ({row['nll_scale']:.2f})",
            f"{row['spectra_per_s']:,.0f}",
        ]
        for b in ("simulated", "semireal", "rruff"):
            f = row[b]
            cells.append(
                f"{f['rmse']:.4f}, {100 * f['in_1sigma']:.1f}%, **{100 * f['in_2sigma']:.1f}%** "
                f"({100 * f['raw_in_2sigma']:.1f}%; {100 * f['nll_in_2sigma']:.1f}%)"
            )
        print("| " + " | ".join(cells) + " |")
    print(f"\nload average at the end {load_average()}")
    if args.json:
        args.json.write_text(
            json.dumps({"plain_rate": plain_rate, "plain_rmse": plain_rmse, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
