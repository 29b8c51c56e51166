"""``raman-baseline``: the DVC stages and the user commands, dispatched.

``raman-baseline [--params FILE] COMMAND ...``: a stage command runs ``main`` of its module in
:mod:`pipeline.stages` (every path given by ``dvc.yaml``); ``correct``, ``correct-map``,
``promote``, ``rollback``, ``ship`` and ``ship-denoiser`` are the user commands. Errors a user
can act on (bad params, a bad file, a registry problem) end in one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path

# how long promote and rollback wait for a registration that holds the store's lock
LOCK_WAIT_S = 60.0
# command -> module of pipeline.stages (dvc.yaml's stage names, with dashes)
STAGES = {
    "check-params": "check_params",
    "simulate": "simulate",
    "classical": "classical",
    "train": "train",
    "train-fast": "train_fast",
    "evaluate": "evaluate",
    "export": "export",
    "export-fast": "export_fast",
    "export-finetuned": "export_finetuned",
    "register": "register",
    "register-fast": "register_fast",
    "real": "real",
    "finetune": "finetune",
    "register-finetuned": "register_finetuned",
    "register-shipped": "register_shipped",
    "semireal": "semireal",
    "evaluate-real": "evaluate_real",
    "train-denoiser": "train_denoiser",
}
USER = ("correct", "correct-map", "promote", "rollback", "ship", "ship-denoiser")


def _summary(module: str) -> str:
    """First docstring line of a module, read without importing it (torch is slow to load)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    return (ast.get_docstring(tree) or "").splitlines()[0].replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--params`` and the command; the rest goes to the command."""
    parser = argparse.ArgumentParser(
        prog="raman-baseline", description=__doc__.splitlines()[0].replace("``", "")
    )
    parser.add_argument("--params", type=Path, default=None, help="default: params.yaml")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in USER:  # first: what users run; the pipeline's stages after
        handler = globals()[f"cmd_{command.replace('-', '_')}"]
        sub.add_parser(command, help=handler.__doc__, add_help=False)
    for command, module in STAGES.items():
        aliases = [module] if module != command else []  # register_fast as dvc.yaml names it
        help_ = _summary(f"pipeline.stages.{module}")
        sub.add_parser(command, aliases=aliases, help=help_, add_help=False)
    return parser


def cmd_correct(argv: list[str]) -> int:
    """Remove the baseline of spectra files: a CSV and a PNG per spectrum (npz for a batch)."""
    from functools import partial

    from pipeline.quiet import for_a_user_command

    for_a_user_command()  # before ONNX Runtime, MLflow, matplotlib: nothing under the home
    from pipeline import correct, correct_files
    from pipeline.config import load_params
    from pipeline.normalise import LENGTH_MODES

    parser = argparse.ArgumentParser(prog="raman-baseline correct", description=cmd_correct.__doc__)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="spectra files")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="OUTDIR",
        help="folder of the outputs (created if needed; inputs are never written over)",
    )
    parser.add_argument(
        "--method",
        choices=correct.METHODS,
        default=correct.DEFAULT_METHOD,
        help=f"default: {correct.DEFAULT_METHOD} (chosen by measurement, README)",
    )
    parser.add_argument(
        "--model",
        help=f"models:/ URI, .onnx path, {correct.PRODUCTION} or {correct.SHIPPED} (default: "
        "the registry's fast variant if within 5%% of production on every benchmark, else "
        "production; with no registry found, the shipped model)",
    )
    parser.add_argument(
        "--store",
        help="MLflow registry: URI or SQLite file (default: MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    parser.add_argument(
        "--length-mode",
        choices=LENGTH_MODES,
        default=LENGTH_MODES[0],
        help="resample onto the training grid and back, or run at the native length (padded); "
        f"default: {LENGTH_MODES[0]}",
    )
    parser.add_argument(
        "--classical-report", type=Path, help="default: reports/classical.json if it exists"
    )
    parser.add_argument(
        "--refined-report",
        type=Path,
        help="evaluate_real metrics (.json) whose refined choice to use (default: the shipped "
        "model's card)",
    )
    parser.add_argument("--no-plots", action="store_true", help="CSV only, no PNG")
    parser.add_argument(
        "--uncertainty",
        action="store_true",
        help="add baseline_std, the baseline's per-point standard deviation, and its ±2 sigma "
        "band: a model exported with MC dropout and --method resunet (docs/uncertainty.md)",
    )
    denoise_options(parser, "its column, array and PNG panel")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--params", type=Path, help="default: params.yaml if it exists (else not needed)"
    )
    args = parser.parse_args(argv)
    default = Path("params.yaml")
    named = args.params or (default if default.is_file() else None)
    params = load_params(named) if named is not None else None
    if args.uncertainty and args.method != "resunet":  # before any model is loaded
        correct.uncertainty_method(None, "", args.method, args.length_mode)
    denoiser, denoised_by = None, ""
    if args.denoise or args.denoiser:  # before the baseline's model: a bad file fails at once
        denoiser, which = correct.choose_denoiser(args.denoiser)
        denoised_by = f"; denoised by {which}"
    if args.method in correct.NETWORK_METHODS:
        model, which = correct.choose_network(args.model, args.store, params)
        estimate = partial(model.baselines, length_mode=args.length_mode)
        how = f"ResUNet-1D, {which}, length mode {args.length_mode}"
        if args.uncertainty:
            estimate = correct.uncertainty_method(model, which, args.method, args.length_mode)
            how = f"{how}, with {correct.STD}"
        if args.method == "refined":
            estimate, refined_how = correct.refined_method(estimate, params, args.refined_report)
            how = f"{how}; {refined_how}"
    else:
        report = args.classical_report or Path("reports/classical.json")
        if args.classical_report and not report.is_file():
            raise correct.CorrectionError(f"--classical-report {report}: no such file")
        estimate, how = correct.classical_method(args.method, params, report)
    print(f"correcting {counted(len(args.inputs), 'file')} with {how}{denoised_by}")
    report = correct_files.correct_files(
        args.inputs,
        estimate,
        args.out,
        plots=not args.no_plots,
        progress=not args.no_progress,
        denoise=None if denoiser is None else denoiser.denoise,
    )
    print(
        f"{counted(report.spectra, 'spectrum', 'spectra')} corrected: "
        f"{counted(len(report.written), 'file')} in {args.out}"
    )
    for path, note in report.notes:
        print(f"  note: {path}: {note}")
    for path, stem in report.renamed:  # decided before any work: pipeline.outputs
        print(f"  renamed: {path} -> {stem} (its outputs' names were another input's)")
    for _, message in report.failed:
        print(f"  failed: {message}", file=sys.stderr)
    if report.failed:
        raise correct.CorrectionError(f"{counted(len(report.failed), 'file')} failed")
    return 0


def denoise_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--denoise`` and ``--denoiser``, as ``correct`` and ``correct-map`` take them."""
    parser.add_argument(
        "--denoise",
        action="store_true",
        help=f"add denoised, the corrected spectra denoised by the second network ({what}; "
        "docs/correct.md)",
    )
    parser.add_argument(
        "--denoiser",
        type=Path,
        help="an ONNX denoiser (implies --denoise; default: the shipped one)",
    )


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun: ``1 file``, ``2 files``; ``many`` for irregular plurals."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _address(text: str) -> str:
    """An argparse type: a Dask scheduler address (else argparse's one-line usage error)."""
    from pipeline.cluster import SchedulerAddressError, check_address

    try:
        return check_address(text)
    except SchedulerAddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _at_least(low: int):
    """An argparse type: an integer >= ``low`` (else argparse's one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    return parse


def cmd_correct_map(argv: list[str]) -> int:
    """Remove the baseline of a map of spectra (Zarr, HDF5, .npy) on Dask, into a Zarr store."""
    from pipeline.quiet import for_a_user_command

    for_a_user_command()  # as correct: nothing under the user's home (pipeline/quiet.py)
    from pipeline import correct, map_io, maps, outputs
    from pipeline.cluster import cluster
    from pipeline.config import load_params
    from pipeline.normalise import LENGTH_MODES

    parser = argparse.ArgumentParser(
        prog="raman-baseline correct-map", description=cmd_correct_map.__doc__
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="Zarr store, HDF5 file, .npy")
    parser.add_argument(
        "-o", "--out", type=Path, required=True, metavar="OUTPUT.zarr", help="the output Zarr store"
    )
    parser.add_argument("--axis", type=Path, help="the axis (L,), .npy or text: needed for .npy")
    parser.add_argument("--dataset", default=map_io.INTENSITY, help="default: intensity")
    parser.add_argument("--axis-dataset", default=map_io.WAVENUMBER, help="default: wavenumber")
    parser.add_argument(
        "--method",
        choices=correct.METHODS,
        default=correct.DEFAULT_METHOD,
        help=f"default: {correct.DEFAULT_METHOD}, as correct",
    )
    parser.add_argument("--model", help="as correct's --model")
    parser.add_argument("--store", help="as correct's --store")
    parser.add_argument(
        "--length-mode",
        choices=LENGTH_MODES,
        default=LENGTH_MODES[0],
        help=f"as correct's (default: {LENGTH_MODES[0]})",
    )
    parser.add_argument("--classical-report", type=Path, help="as correct's")
    parser.add_argument("--refined-report", type=Path, help="as correct's")
    parser.add_argument(
        "--uncertainty", action="store_true", help="as correct's: a baseline_std array too"
    )
    denoise_options(parser, "an array")
    parser.add_argument(
        "--scheduler",
        type=_address,
        help="tcp://HOST:PORT of a Dask scheduler (default: a local cluster)",
    )
    parser.add_argument(
        "--workers", type=_at_least(0), default=0, help="local cluster: processes (0: one per core)"
    )
    parser.add_argument(
        "--chunk",
        type=_at_least(1),
        default=maps.SPECTRA_PER_CHUNK,
        help=f"spectra per chunk (default {maps.SPECTRA_PER_CHUNK})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace another map's output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--params", type=Path, help="default: params.yaml if it exists")
    args = parser.parse_args(argv)
    source, x = map_io.open_input(args.input, args.dataset, args.axis_dataset, args.axis)
    default = Path("params.yaml")
    named = args.params or (default if default.is_file() else None)
    params = load_params(named) if named is not None else None
    if args.classical_report and not args.classical_report.is_file():
        raise correct.CorrectionError(f"--classical-report {args.classical_report}: no such file")
    recipe, attrs, how = maps.plan(
        args.method,
        args.model,
        args.store,
        params,
        args.length_mode,
        args.classical_report,
        args.refined_report,
        args.uncertainty,
        args.denoiser,
        args.denoise,
    )
    chunks = map_io.spectra_chunks(source.shape, args.chunk)
    new = not args.out.exists()
    map_io.prepare_output(args.out, source, x, chunks, attrs, args.overwrite)  # before any work
    stop = outputs.terminate_cleanly("correct-map")  # SIGTERM: the local cluster is closed
    untouched = map_io.removed_if_untouched(args.out, new)  # a run that never started
    with stop, untouched, cluster(args.scheduler, args.workers) as (client, where):
        print(f"correcting {source.spectra} spectra of {args.input} {source.shape} with {how}")
        print(f"on {where}")
        report = maps.correct_map(
            source,
            x,
            args.out,
            recipe,
            attrs,
            client,
            args.chunk,
            progress=not args.no_progress,
        )
    print("\n".join(report.summary(args.out)))
    return 0


def cmd_promote(argv: list[str]) -> int:
    """Give a registered version the production alias, by hand, with a reason."""
    parser = argparse.ArgumentParser(prog="raman-baseline promote", description=cmd_promote.__doc__)
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--reason", required=True)
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)  # not read
    args = parser.parse_args(argv)
    from pipeline import registry  # mlflow: slow to import, so after the arguments

    client = registry.connect(write=True)
    with registry.registry_lock(timeout=LOCK_WAIT_S):
        registry.promote(client, str(args.version), args.reason, registry.command_line())
    print(f"{registry.MODEL_NAME} v{args.version} is production: {args.reason}")
    return 0


def cmd_rollback(argv: list[str]) -> int:
    """Move production back to the version that held it before."""
    parser = argparse.ArgumentParser(
        prog="raman-baseline rollback", description=cmd_rollback.__doc__
    )
    parser.add_argument("--reason", default="rollback")
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)  # not read
    args = parser.parse_args(argv)
    from pipeline import registry  # mlflow: slow to import, so after the arguments

    client = registry.connect(write=True)
    with registry.registry_lock(timeout=LOCK_WAIT_S):
        old, new = registry.rollback(client, args.reason, registry.command_line())
    print(f"{registry.MODEL_NAME} production rolled back from v{old} to v{new}")
    return 0


def cmd_ship(argv: list[str]) -> int:
    """Put a training run's model into the package (pipeline/shipped/) with its model card."""
    from pipeline import ship

    return ship.main(argv)


def cmd_ship_denoiser(argv: list[str]) -> int:
    """Put a trained denoiser (ONNX) into the package (pipeline/shipped/), on the model card."""
    from pipeline import ship_denoiser

    return ship_denoiser.main(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raman-baseline``."""
    from pipeline.errors import run
    from pipeline.lifeline import tie_to_dvc

    argv = sys.argv[1:] if argv is None else list(argv)
    top, rest = build_parser().parse_known_args(argv)
    if top.params is not None:
        rest = ["--params", str(top.params), *rest]
    given = argparse.ArgumentParser(add_help=False)
    given.add_argument("--params", action="append", default=[])
    params = given.parse_known_args(rest)[0].params[-1:] or ["params.yaml"]  # the last wins
    command = top.command.replace("_", "-")

    def call() -> int:
        if command in STAGES:
            tie_to_dvc()  # run by dvc repro: end with it, never as an orphan
            return importlib.import_module(f"pipeline.stages.{STAGES[command]}").main(rest)
        return globals()[f"cmd_{command.replace('-', '_')}"](rest)

    return run(command, call, params[0])


if __name__ == "__main__":
    sys.exit(main())
