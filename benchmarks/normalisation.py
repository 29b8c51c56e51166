"""Min-max against envelope normalisation: the same network, budget and seed, trained with each.

    python benchmarks/normalisation.py [--n-train 20000] [--epochs 5] [--threads 1]
                                       [--channels 32 48 72 108 162 243] [--out DIR]
                                       [--train-on tall|today] [--cases ../shared/cases]
                                       [--classical-report FILE]

Both networks train with ``pipeline.train.train`` (``train.*`` of ``params.yaml``, but
``--epochs`` and ``--threads``) on the same spectra: ``params.yaml``'s simulator with the
tall-band regime switched on (:data:`TALL`: a third of the spectra with the tallest band 3 to
1,000 background ranges, 15% on a flat fluorescence level of 3 to 300 ranges), or, with
``--train-on today``, as it is. Both are scored
on two test sets, today's distribution (``params.yaml`` as it is) and the tall one, by the
tallest band's ratio to the background's range (``< 3``, ``3-30``, ``30-300``, ``>= 300``):
the RMSE of the baseline in units of the true background's range (what tall bands make
large) and in units of the spectrum's range (the pipeline's metric). Then on the real cases of
``--cases`` that load (:data:`CASES`), beside arPLS, by the cases' own rule
(:func:`pipeline.quality.case_verdict`). The checkpoints are written to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline.baselines import classical_baselines  # noqa: E402
from pipeline.checkpoint import from_state, save_checkpoint, torch_run  # noqa: E402
from pipeline.config import NORMALISATIONS, parse_params  # noqa: E402
from pipeline.normalise import network_baselines, predict_baselines  # noqa: E402
from pipeline.quality import case_verdict  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402
from pipeline.spectra_io import read_spectra  # noqa: E402
from pipeline.train import recipe, to_tensors, train  # noqa: E402

TALL = {
    "peaks": {"tall_fraction": 0.33, "tall_ratio": [3.0, 1000.0]},
    "intensity": {"flat_fraction": 0.15, "flat_level": [3.0, 300.0]},
}
CASES = ("si-wafer-labspec", "rruff-anatase-raw", "hdpe-horiba-csv")
BINS = ((0, 3), (3, 30), (30, 300), (300, np.inf))
SEEDS = {"train": 101, "val": 102, "test": 103, "test_tall": 104}


def tall_params(data: dict) -> dict:
    """``params.yaml`` data with the tall-band regime of :data:`TALL` laid on ``simulate``."""
    data = yaml.safe_load(yaml.safe_dump(data))
    for section, keys in TALL.items():
        data["simulate"][section].update(keys)
    return data


def background_errors(predicted, spectra) -> dict[str, np.ndarray]:
    """Per-spectrum RMSE in units of the true background's range and of the spectrum's range,
    and the tallest band's ratio to the background's range."""
    true = spectra.baseline.astype(np.float64)
    err = np.sqrt(np.mean((predicted - true) ** 2, axis=1))
    bg = np.ptp(true, axis=1)
    return {
        "rmse_bg": err / bg,
        "rmse_range": err / np.ptp(spectra.observed.astype(np.float64), axis=1),
        "ratio": spectra.peaks.max(axis=1) / bg,
    }


def case_spectra(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{case: (x, y)}`` of each of :data:`CASES` whose file loads (``*_min*`` cuts skipped)."""
    out = {}
    for case in CASES:
        files = sorted(
            f for f in (folder / case).glob("*") if f.name != "SOURCE.txt" and "_min" not in f.name
        )
        for f in files:
            try:
                s = read_spectra(f)
            except Exception as exc:  # noqa: BLE001 - a case that does not load is reported
                print(f"{case}: {f.name} does not load: {exc}")
                continue
            out[case] = (s.x, np.atleast_2d(s.y))
            break
    return out


def case_table(methods: dict, folder: Path) -> str:
    """Each method's verdict on each case of ``folder`` that loads, as a text table.

    ``methods``: ``{name: BaselineFn}``; the rule is :func:`pipeline.quality.case_verdict`'s
    (median of the corrected spectrum in noise sigmas, share of points below -3 sigma).
    """
    rows = []
    for case, (x, y) in case_spectra(folder).items():
        for method, baseline in methods.items():
            v = case_verdict(y, baseline(x, y))
            rows.append(
                {
                    "case": case,
                    "method": method,
                    "median": float(v["median_offset"][0]),
                    "negative": 100 * float(v["negative_fraction"][0]),
                    "passes": "yes" if v["passes"][0] else "no",
                }
            )
    return common.format_table(
        rows,
        [
            ("case", "case", ""),
            ("method", "method", ""),
            ("median", "median (sigma)", "{:+.2f}"),
            ("negative", "% below -3 sigma", "{:.2f}"),
            ("passes", "passes", ""),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """Train both, score both, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels", type=int, nargs="+", default=None)
    parser.add_argument("--normalisations", nargs="+", default=list(NORMALISATIONS))
    parser.add_argument(
        "--train-on", choices=("tall", "today"), default="tall", help="the training distribution"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "normalisation")
    parser.add_argument("--cases", type=Path, default=ROOT.parent / "shared" / "cases")
    parser.add_argument("--classical-report", type=Path, default=ROOT / "reports/classical.json")
    args = parser.parse_args(argv)

    data = yaml.safe_load(args.params.read_text())
    today, tall = parse_params(data), parse_params(tall_params(data))
    _, cpu = common.cpu_description()
    print(f"CPU: {cpu}\nload before: {common.load_average()}")
    source = tall if args.train_on == "tall" else today
    print(f"training on the {args.train_on} distribution")
    sets = {
        "train": simulate(source.simulate, args.n_train, SEEDS["train"]),
        "val": simulate(source.simulate, 1000, SEEDS["val"]),
        "test": simulate(today.simulate, 2000, SEEDS["test"]),
        "test_tall": simulate(tall.simulate, 3000, SEEDS["test_tall"]),
    }
    # the training recipe (AdamW, warm-up + cosine) over args.epochs passes of the fixed set
    plan = recipe(
        dataclasses.replace(today.train, threads=args.threads), samples=args.n_train * args.epochs
    )
    models = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.normalisations:
        model_params = dataclasses.replace(today.model, normalisation=name)
        if args.channels:
            model_params = dataclasses.replace(model_params, channels=tuple(args.channels))
        path = args.out / f"{name}.pt"
        if path.exists():
            from pipeline.checkpoint import load_checkpoint

            models[name] = load_checkpoint(path)[0]
            print(f"{name}: loaded {path}")
            continue
        start = time.perf_counter()
        state, history = train(
            model_params,
            plan,
            to_tensors(sets["train"].observed, sets["train"].baseline, name),
            to_tensors(sets["val"].observed, sets["val"].baseline, name),
            progress=False,
        )
        wall = time.perf_counter() - start
        save_checkpoint(path, state, model_params)
        models[name] = from_state(model_params, state)
        print(
            f"{name}: {args.n_train * args.epochs:,} spectra in {wall:.0f} s "
            f"({args.n_train * args.epochs / wall:.0f}/s), best val RMSE (own units) "
            f"{min(e.val_rmse for e in history):.5f}; load {common.load_average()}"
        )

    rows = []
    for test in ("test", "test_tall"):
        spectra = sets[test]
        for name, model in models.items():
            e = background_errors(predict_baselines(torch_run(model), spectra.observed), spectra)
            for lo, hi in BINS:
                sel = (e["ratio"] >= lo) & (e["ratio"] < hi)
                if sel.any():
                    rows.append(
                        {
                            "test": test,
                            "bin": f"{lo}-{hi}",
                            "n": int(sel.sum()),
                            "norm": name,
                            "bg_median": float(np.median(e["rmse_bg"][sel])),
                            "bg_mean": float(np.mean(e["rmse_bg"][sel])),
                            "range_mean": float(np.mean(e["rmse_range"][sel])),
                        }
                    )
            rows.append(
                {
                    "test": test,
                    "bin": "all",
                    "n": len(spectra),
                    "norm": name,
                    "bg_median": float(np.median(e["rmse_bg"])),
                    "bg_mean": float(np.mean(e["rmse_bg"])),
                    "range_mean": float(np.mean(e["rmse_range"])),
                }
            )
    print("\nbaseline RMSE on simulated tests, in background ranges and in spectrum ranges")
    print(
        common.format_table(
            rows,
            [
                ("test", "test", ""),
                ("bin", "band/bg", ""),
                ("n", "n", "{:d}"),
                ("norm", "normalisation", ""),
                ("bg_median", "median /bg", "{:.4f}"),
                ("bg_mean", "mean /bg", "{:.4f}"),
                ("range_mean", "mean /range", "{:.5f}"),
            ],
        )
    )

    from pipeline.correct import chosen_log10_lam

    log10_lam, where = chosen_log10_lam("arpls", today.classical.arpls, args.classical_report)
    arpls = classical_baselines("arpls", log10_lam, today.classical.arpls, today.simulate.length)
    grid = today.simulate.length
    methods = {
        f"resunet {n}": (lambda run: lambda x, y: network_baselines(run, grid, x, y))(torch_run(m))
        for n, m in models.items()
    }
    print(f"\nreal cases (rule: ../shared/cases/README.md); arPLS log10 lam {log10_lam} ({where})")
    print(case_table(methods | {"arpls": arpls}, args.cases))
    print(f"load after: {common.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
