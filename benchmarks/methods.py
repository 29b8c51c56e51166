"""Every method of ``raman-baseline correct`` on every benchmark, with one network.

    python benchmarks/methods.py --data data/simulated --semireal data/semireal
                                 --rruff data/rruff [--model shipped] [--cases ../shared/cases]
                                 [--json OUT] [--metrics-dir DIR]

The network is the one ``correct`` uses when no model is named outside a registry (``--model
shipped``, the default), or any ``--model`` ``correct`` takes. The benchmarks are those of the
``evaluate_real`` stage (:func:`pipeline.stages.evaluate_real.load_benchmarks`: the simulated
test, the semi-real test and the RRUFF test pairs, each with its validation part), scored by
its :func:`pipeline.evaluate.score_benchmark`: arPLS's and asPLS's ``lam`` and ``refined``'s
classical part (arPLS, asPLS or none) chosen on that benchmark's validation part. Beside it,
``refined`` as it was before "none" was a candidate (a correction always applied: the best
validation point of the arPLS and asPLS grids only), and ``refined_fixed``: one benchmark's
choice (``--fixed-from``, default the RRUFF pairs') on every benchmark, as ``correct
--method refined`` runs it with the choice recorded on the shipped card. Then the real cases
of ``--cases`` that load (:data:`benchmarks.common.CASES`) by their README's rule
(:func:`pipeline.quality.case_verdict`), with each benchmark's refined choice and arPLS/asPLS
at the ``lam`` ``correct`` uses (the shipped model's card).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy


from benchmarks import common  # noqa: E402
from pipeline import correct  # noqa: E402
from pipeline.baselines import METHODS as CLASSICAL  # noqa: E402
from pipeline.baselines import refined_baselines  # noqa: E402
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.evaluate import score_benchmark  # noqa: E402
from pipeline.files import write_json  # noqa: E402
from pipeline.metrics import benchmark_errors  # noqa: E402
from pipeline.stages.evaluate_real import load_benchmarks  # noqa: E402

METHODS = ("resunet", "refined", "refined_forced", "refined_fixed", "arpls", "aspls")


def forced_choice(report: dict) -> dict:
    """``refined``'s choice among corrections only (arPLS and asPLS grids, no "none")."""
    grids = report["val_grid"]
    rmse, method, log10_lam = min(
        (rmse, m, float(ll)) for m in CLASSICAL for ll, rmse in grids[f"refined_{m}"].items()
    )
    return {"method": method, "log10_lam": log10_lam, "val_rmse": rmse}


def refined_with(network, choice: dict, params: Params):
    """``refined`` with a given choice (``{"method", "log10_lam"}``), as ``correct`` runs it."""
    method = choice["method"]
    settings = getattr(params.classical, method, None)
    return refined_baselines(network, method, choice["log10_lam"], settings, params.simulate.length)


def score_all(network, params: Params, benchmarks: dict) -> dict[str, dict]:
    """``score_benchmark`` of every benchmark, plus the forced refined (``refined_forced``)."""
    reports = {}
    for name, (val, test) in benchmarks.items():
        start = time.perf_counter()
        report = score_benchmark(network, params.classical, params.simulate.length, val, test)
        forced = forced_choice(report)
        errors = benchmark_errors(refined_with(network, forced, params), test)
        report["refined_forced"] = {k: {"mean": v} for k, v in errors.items()}
        report["lam"]["refined_forced"] = forced
        report["val_rmse"] = {
            "resunet": report["val_grid"]["refined_none"]["none"],
            "refined_forced": forced["val_rmse"],
        }
        report["seconds"] = round(time.perf_counter() - start, 1)
        reports[name] = report
        print(f"{name}: {report['seconds']} s", flush=True)
    return reports


def score_fixed(network, params: Params, benchmarks: dict, reports: dict, source: str) -> None:
    """Add ``refined_fixed`` to every report: refined with ``source``'s choice everywhere.

    What ``correct --method refined`` runs: one choice (the shipped card records the one made
    on ``source``'s validation part) for every spectrum, whatever it is.
    """
    choice = reports[source]["lam"]["refined"]
    for name, (_, test) in benchmarks.items():
        errors = benchmark_errors(refined_with(network, choice, params), test)
        reports[name]["refined_fixed"] = {k: {"mean": v} for k, v in errors.items()}
        reports[name]["lam"]["refined_fixed"] = choice | {"chosen_on": source}


def benchmark_rows(reports: dict[str, dict]) -> list[dict]:
    """One row per benchmark: mean RMSE of each method and its ratio to the better classical."""
    rows = []
    for name, r in reports.items():
        best = min(r[m]["rmse"]["mean"] for m in CLASSICAL)
        row: dict = {"benchmark": name, "n": r["n_test"]}
        for m in METHODS:
            row[m] = r[m]["rmse"]["mean"]
            row[f"{m}_ratio"] = r[m]["rmse"]["mean"] / best
        choice = r["lam"]["refined"]
        row["choice"] = (
            "none" if choice["method"] == "none" else f"{choice['method']} {choice['log10_lam']:g}"
        )
        forced = r["lam"]["refined_forced"]
        row["forced"] = f"{forced['method']} {forced['log10_lam']:g}"
        rows.append(row)
    return rows


def case_rows(network, params: Params, reports: dict[str, dict], cases: Path) -> list[dict]:
    """The cases' rule for every method; refined with each benchmark's choice."""
    methods = {}
    for name in CLASSICAL:
        methods[name] = correct.classical_method(name, None, None)[0]  # the card's lam
    rows = []
    for case, (x, y) in common.case_spectra(cases).items():
        first = network(x, y)
        fixed = lambda x_, y_, first=first: first  # noqa: E731 - the network run once
        found = {"resunet": first}
        for bench, r in reports.items():
            for key in ("refined", "refined_forced"):
                choice = r["lam"][key]
                label = f"{key} ({bench}: {_choice_text(choice)})"
                found[label] = refined_with(fixed, choice, params)(x, y)
        found |= {name: method(x, y) for name, method in methods.items()}
        rows += [common.case_row(case, m, y, b) for m, b in found.items()]
    return rows


def _choice_text(choice: dict) -> str:
    if choice["method"] == "none":
        return "none"
    return f"{choice['method']} {choice['log10_lam']:g}"


def main(argv: list[str] | None = None) -> int:
    """Score, print both tables, write ``--json``."""
    parser = common.benchmark_parser(__doc__, ROOT)
    parser.add_argument("--model", default=correct.SHIPPED, help="as correct's --model")
    parser.add_argument("--cases", type=Path, default=ROOT.parent / "shared" / "cases")
    parser.add_argument(
        "--fixed-from",
        default="rruff",
        help="the benchmark whose refined choice refined_fixed applies everywhere",
    )
    parser.add_argument("--json", type=Path, help="write the reports and rows here")
    parser.add_argument(
        "--metrics-dir",
        type=Path,
        help="write each benchmark's report as evaluate_real does (metrics_<benchmark>.json)",
    )
    args = parser.parse_args(argv)
    params = load_params(args.params)
    say = common.Printout()
    model, which = correct.choose_network(args.model, None, params)
    network = model.baselines
    say(f"network: {which}; CPU: {common.cpu_description()[1]}; load {common.load_average()}")
    benchmarks = load_benchmarks(params, args.data, args.semireal, args.rruff)
    reports = score_all(network, params, benchmarks)
    score_fixed(network, params, benchmarks, reports, args.fixed_from)
    rows = benchmark_rows(reports)
    columns = [("benchmark", "benchmark", ""), ("n", "n", "{:,}")]
    for m in METHODS:
        columns += [(m, m, "{:.5f}"), (f"{m}_ratio", "/best", "{:.3f}")]
    columns += [("choice", "refined choice", ""), ("forced", "forced choice", "")]
    say("\nmean RMSE on each test part (units of the spectrum's range); /best = over the better")
    say("of arPLS/asPLS; every lam chosen on that benchmark's validation part")
    say(common.format_table(rows, columns))
    fixed = reports[args.fixed_from]["lam"]["refined"]
    say(
        "refined: its choice on each benchmark's validation part, none included; refined_forced:"
        "\na correction always applied (the choice among arPLS/asPLS only); refined_fixed: "
        f"the {args.fixed_from}\nchoice ({_choice_text(fixed)}) on every benchmark, as "
        "`correct --method refined` runs it"
    )
    cases = case_rows(network, params, reports, args.cases)
    say(f"\nthe cases (rule: {args.cases}/README.md: |median| <= 3 sigma, < 5% below -3 sigma)")
    say(common.format_table(cases, common.CASE_COLUMNS))
    say(f"load {common.load_average()}")
    for name, report in reports.items() if args.metrics_dir else ():
        write_json(args.metrics_dir / f"metrics_{name}.json", report)
    if args.json:
        write_json(args.json, {"reports": reports, "rows": rows, "cases": cases, "notes": say.text})
    return 0


if __name__ == "__main__":
    sys.exit(main())
