"""The project's performance table: every section's script run on the same cores, one printout.

    python benchmarks/speed.py [--workspace DIR] [--params FILE] [--quick] [--onnx PATH ...]
                               [--no-registry] [--repro] [--no-mlflow] [--out reports/speed.csv]
                               [--eval-n 70000] [--repeats 3] [--sections abcde]

Runs each chosen section's script (benchmarks/README.md) as a child process in ``--workspace``
(default: the current directory; a built workspace: ``params.yaml``, ``reports/classical.json``
and ``mlflow.db`` holding ``models:/resunet1d@production``), with this checkout's ``pipeline``
and the same Python: (a) ``inference_speed.py``, (b) ``train_speed.py``, (c)
``simulate_speed.py``, (d) ``repro_time.py`` (``--repro`` only; 15-30 minutes), (e)
``classical_speed.py``. ``--quick`` runs each at its small sizes; ``--repeats`` goes to (a) and
(b), ``--eval-n`` to (e), ``--onnx``, ``--no-registry`` and ``--flops-per-cycle`` to (a).

Each script writes its rows (``--json``); this one prints them as one table with their notes,
then the must-show ratios with PASS/FAIL against their targets (figures, not assertions: the
exit status is 0 either way, unless a section failed), writes the table to ``--out`` (CSV) and
beside it as ``.txt`` (the printout), and logs it to MLflow (experiment ``raman-benchmarks`` in
the workspace's store, through ``pipeline.registry.log_benchmark``: every figure a metric, the
CSV and the printout as artifacts; ``--no-mlflow`` skips it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not the workspace's

from benchmarks import common  # noqa: E402

EXPERIMENT = "raman-benchmarks"
SCRIPTS = {  # letter: (script, the section its rows carry)
    "a": ("inference_speed.py", "inference"),
    "b": ("train_speed.py", "train"),
    "c": ("simulate_speed.py", "simulate"),
    "d": ("repro_time.py", "repro"),
    "e": ("classical_speed.py", "evaluate"),
}


def section_arguments(letter: str, args: argparse.Namespace, params: Path) -> list[str]:
    """The options this runner passes to the script of section ``letter``."""
    out = ["--quick"] if args.quick and letter != "d" else []
    out += ["--workspace", "."] if letter == "d" else ["--params", str(params)]
    if letter in "ab" and args.repeats:
        out += ["--repeats", str(args.repeats)]
    if letter == "e" and args.eval_n:
        out += ["--n", str(args.eval_n)]
    if letter == "a":
        out += [f"--onnx={p.resolve()}" for p in args.onnx]
        if args.no_registry:
            out += ["--no-registry"]
        if args.flops_per_cycle:
            out += ["--flops-per-cycle", str(args.flops_per_cycle)]
    return out


def run_section(letter: str, args: argparse.Namespace, params: Path) -> tuple | None:
    """Run one section's script (its output goes through): its rows and notes, None if it failed."""
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        out = Path(tmp) / "rows.json"
        script = ROOT / "benchmarks" / SCRIPTS[letter][0]
        command = [sys.executable, script, *section_arguments(letter, args, params), "--json", out]
        print(f"\n== {' '.join(map(str, command))}", flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return common.read_rows(out) if subprocess.run(command, env=env).returncode == 0 else None


def why_missing(letter: str, results: dict, sections: str) -> str:
    """Why a section has no rows."""
    if letter in results:
        return "FAILED (its output is above)"
    if letter == "d" and letter in sections:
        return "not measured (run with --repro; it takes 15-30 minutes)"
    return "not run (--sections)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--params", type=Path, default=None, help="default: WORKSPACE/params.yaml")
    parser.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    parser.add_argument("--onnx", type=Path, action="append", default=[], help="another network")
    parser.add_argument("--no-registry", action="store_true", help="(a): only the --onnx networks")
    parser.add_argument("--repro", action="store_true", help="also time `dvc repro` (15-30 min)")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("reports/speed.csv"), help="in WORKSPACE")
    parser.add_argument("--eval-n", type=int, default=None, help="section (e) spectra")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs, (a) and (b)")
    parser.add_argument("--flops-per-cycle", type=int, default=None)
    parser.add_argument("--sections", default="abcde", help="e.g. 'ab' (default: all)")
    return parser.parse_args(argv)


def log_to_mlflow(rows, figures, run_params: dict, files: list[Path], workspace: Path) -> str:
    """One run in the ``raman-benchmarks`` experiment of the workspace's store; its id."""
    from pipeline import registry

    tags = {"code_commit": registry.git_commit(ROOT)}
    tags["workspace_commit"] = registry.git_commit(workspace)
    return registry.log_benchmark(
        registry.connect(create=True),
        experiment=EXPERIMENT,
        run_name="speed",
        params=run_params,
        metrics=common.metrics_of(rows, figures),
        artifacts=files,
        tags=tags,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.config import load_params

    args = parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the children's idle threads sleep
    workspace = args.workspace.resolve()
    params_path = (args.params or workspace / "params.yaml").resolve()
    out = args.out if args.out.is_absolute() else workspace / args.out
    os.chdir(workspace)  # the store, reports/ and mlflow's relative paths are the workspace's
    say = common.Printout()
    say(f"speed benchmark: workspace {workspace}, params {params_path}, code {ROOT}")
    say(f"load average at start: {common.load_average()}")
    chosen = [c for c in "abcde" if c in args.sections and (c != "d" or args.repro)]
    results = {c: run_section(c, args, params_path) for c in chosen}
    rows = [row for found in results.values() if found for row in found[0]]
    for letter, (script, section) in SCRIPTS.items():
        say()
        if results.get(letter) is None:
            say(common.TITLES[section])
            say(f"  {script}: {why_missing(letter, results, args.sections)}")
            continue
        section_rows, notes = results[letter]
        fresh = [line for line in notes if line not in say.lines]  # each note once
        for line in [*fresh, ""] if fresh else []:
            say(line)
        say(common.section_table(section, section_rows))
    figures = common.must_show(rows, load_params(params_path).student.max_rmse_ratio)
    say()
    for line in [*common.must_show_lines(figures), f"load average at end: {common.load_average()}"]:
        say(line)
    text = out.with_suffix(".txt")
    common.write_csv(out, rows)
    text.write_text(say.text)
    print(f"wrote {out} and {text}")
    failed = any(found is None for found in results.values())
    if not args.no_mlflow:
        from pipeline.registry import RegistryError

        run_params = {"quick": args.quick, "sections": "".join(chosen), "seed": common.SEED}
        run_params.update(params=str(params_path), repeats=args.repeats, eval_n=args.eval_n)
        try:
            run_id = log_to_mlflow(rows, figures, run_params, [out, text], workspace)
            print(f"logged to MLflow: experiment {EXPERIMENT}, run {run_id}")
        except RegistryError as exc:
            print(f"not logged to MLflow: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
