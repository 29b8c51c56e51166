"""Today's simulator against the real regimes switched on: the same network, budget and seed.

    python benchmarks/regimes.py [--samples 50000] [--threads 2] [--out DIR]
                                 [--only today regimes shapes] [--no-classical]

Networks (``params.yaml``'s ``model``, its ``train`` recipe: AdamW, warm-up + cosine, batch
128) each train on ``--samples`` spectra of the seeded simulated stream
(:class:`pipeline.stream.SimulatedStream`, seed ``train.seed``): (a) ``today``,
``params.yaml``'s simulator as it is; (b) ``regimes``, the same with every regime of
:mod:`pipeline.regimes` switched on at the fractions of :data:`REGIMES`; (c) ``shapes``, only
the regimes that change the spectra's shapes (:data:`SHAPES`: dense, broad, filter edge).
Each is scored (baseline RMSE in units of each spectrum's range, the pipeline's metric) on
the simulated test of (a) and of (b), on one test per regime alone (that regime at fraction
1, network only), on the semi-real and RRUFF test parts (as the ``semireal`` stage builds
them) beside arPLS and asPLS (``lam`` chosen on each benchmark's validation part over the
integer ``log10 lam`` of the ``classical`` grid), and on the ``../shared/cases`` that load,
by their rule (:func:`pipeline.quality.case_verdict`). A
checkpoint already in ``--out`` is loaded, not retrained.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline import rruff  # noqa: E402
from pipeline.baselines import classical_baselines  # noqa: E402
from pipeline.checkpoint import from_state, load_checkpoint, save_checkpoint, torch_run  # noqa: E402
from pipeline.config import overlay, parse_params  # noqa: E402
from pipeline.metrics import block_errors  # noqa: E402
from pipeline.normalise import network_baselines  # noqa: E402
from pipeline.semireal import blocks  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402
from pipeline.stages import semireal as semireal_stage  # noqa: E402
from pipeline.stream import SimulatedStream, to_tensors  # noqa: E402
from pipeline.train import recipe, train  # noqa: E402

# the fractions proposed (docs/simulation.md, "Real regimes")
REGIMES = {
    "peaks": {"dense_fraction": 0.15, "broad_fraction": 0.15},
    "baseline": {"edge_fraction": 0.15, "families": {"empirical": 0.15}},
    "noise": {"range_fraction": 0.3},
}
SHAPES = {  # the regimes that change the shape of spectra, without empirical and range noise
    "peaks": {"dense_fraction": 0.15, "broad_fraction": 0.15},
    "baseline": {"edge_fraction": 0.15},
}
VARIANTS = {"today": {}, "regimes": REGIMES, "shapes": SHAPES}
ALONE = {  # one test per regime, that regime on every spectrum
    "dense": {"peaks": {"dense_fraction": 1.0}},
    "broad": {"peaks": {"broad_fraction": 1.0}},
    "edge": {"baseline": {"edge_fraction": 1.0}},
    "empirical": {"baseline": {"families": {"empirical": 1.0}}},
    "noise": {"noise": {"range_fraction": 1.0}},
}
SEEDS = {"val": 102, "test": 103, "test_regimes": 104, "alone": 105}


def with_simulate(data: dict, over: dict, replace_families: bool = False) -> dict:
    """``params.yaml`` data with ``over`` laid on its ``simulate`` section."""
    data = yaml.safe_load(yaml.safe_dump(data))
    if replace_families:  # a family alone: the others' weights to 0
        data["simulate"]["baseline"]["families"] = {}
    data["simulate"] = overlay(data["simulate"], over)
    return data


def classical_reference(settings, grid: int, val, test) -> dict[str, float]:
    """Mean test RMSE of arPLS and asPLS, each at the integer ``log10 lam`` best on ``val``."""
    out = {}
    for name in ("arpls", "aspls"):
        s = getattr(settings, name)
        lams = [ll for ll in s.log10_lam if float(ll).is_integer()]
        score = {
            ll: block_errors(classical_baselines(name, ll, s, grid), val)["rmse"].mean()
            for ll in lams
        }
        best = min(lams, key=score.get)
        out[name] = float(
            block_errors(classical_baselines(name, best, s, grid), test)["rmse"].mean()
        )
        out[f"{name}_lam"] = best
    return out


def main(argv: list[str] | None = None) -> int:
    """Train both, score both, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=VARIANTS, default=["today", "regimes"])
    parser.add_argument("--no-classical", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "regimes")
    parser.add_argument("--cases", type=Path, default=ROOT.parent / "shared" / "cases")
    args = parser.parse_args(argv)

    data = yaml.safe_load(args.params.read_text())
    params = {n: parse_params(with_simulate(data, over)) for n, over in VARIANTS.items()}
    _, cpu = common.cpu_description()
    print(f"CPU: {cpu}\nload before: {common.load_average()}")
    base = params["today"]
    grid = base.simulate.length
    norm = base.model.normalisation
    plan = recipe(dataclasses.replace(base.train, threads=args.threads), samples=args.samples)

    models = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        path = args.out / f"{name}.pt"
        if path.exists():
            models[name] = load_checkpoint(path)[0]
            print(f"{name}: loaded {path}")
            continue
        sim = params[name].simulate
        val = simulate(sim, 1000, SEEDS["val"])
        stream = SimulatedStream(sim, base.train.seed, normalisation=norm)
        start = time.perf_counter()
        state, history = train(
            base.model, plan, stream, to_tensors(val.observed, val.baseline, norm), progress=False
        )
        wall = time.perf_counter() - start
        save_checkpoint(path, state, base.model)
        models[name] = from_state(base.model, state)
        print(
            f"{name}: {args.samples:,} spectra in {wall:.0f} s ({args.samples / wall:.0f}/s), "
            f"best val RMSE {min(e.val_rmse for e in history):.5f}; load {common.load_average()}"
        )

    nets = {
        n: (lambda run: lambda x, y: network_baselines(run, grid, x, y))(torch_run(m))
        for n, m in models.items()
    }
    pairs = semireal_stage.run(base, rruff.read_pairs(base.semireal.rruff_source))
    benchmarks = {}
    for name in ("today", "regimes"):
        sim = params[name].simulate
        val = blocks(simulate(sim, 100, SEEDS["val"]))
        seed = SEEDS["test" if name == "today" else "test_regimes"]
        benchmarks[f"sim {name}"] = (val, blocks(simulate(sim, 2000, seed)))
    for part, build in (
        ("semireal", lambda p: blocks(p[1])),
        ("rruff", lambda p: list(p[0].blocks())),
    ):
        benchmarks[part] = (build(pairs["val"]), build(pairs["test"]))
    for regime, over in ALONE.items():
        alone = with_simulate(data, over, replace_families=regime == "empirical")
        test = simulate(parse_params(alone).simulate, 500, SEEDS["alone"])
        benchmarks[f"alone {regime}"] = (None, blocks(test))

    rows = []
    for bench, (val, test) in benchmarks.items():
        row = {"benchmark": bench, "n": sum(len(y) for _, y, _ in test)}
        for n, net in nets.items():
            row[n] = float(block_errors(net, test)["rmse"].mean())
        if val is not None and not args.no_classical:
            row |= classical_reference(base.classical, grid, val, test)
        rows.append(row)
        print(row, flush=True)
    columns = [("benchmark", "benchmark", ""), ("n", "n", "{:d}")]
    columns += [(n, f"{n} RMSE", "{:.5f}") for n in nets]
    for n in nets:
        if n != "today" and "today" in nets:
            for r in rows:
                r[f"{n}/today"] = r[n] / r["today"]
            columns.append((f"{n}/today", f"{n}/today", "{:.3f}"))
    if not args.no_classical:
        columns += [("arpls", "arPLS", "{:.5f}"), ("aspls", "asPLS", "{:.5f}")]
    print("\nmean baseline RMSE, units of each spectrum's range")
    print(
        common.format_table(
            [{k: r.get(k, float("nan")) for k, *_ in columns} for r in rows], columns
        )
    )

    print("\nreal cases (rule: ../shared/cases/README.md)")
    print(common.case_table(nets, args.cases))
    print(f"load after: {common.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
