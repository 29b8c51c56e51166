"""``raman-baseline``: the DVC stage entry points and the user commands.

Every command validates ``params.yaml`` before any work. Each stage reads only its declared
inputs and replaces its outputs atomically.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.config import ConfigError, Params, load_params
from pipeline.files import atomic_path, write_json

SPLITS = ("train", "val", "test")
# Where each stage reads and writes by default (dvc.yaml passes the same paths explicitly).
PATHS = {
    name: Path(path)
    for name, path in {
        "data": "data/simulated",
        "classical": "data/classical/test_baselines.npz",
        "classical_report": "reports/classical.json",
        "model": "models/resunet.pt",
        "history": "reports/train_history.csv",
        "metrics": "reports/metrics.json",
        "figures": "reports/figures",
        "onnx": "models/resunet.onnx",
        "export_report": "reports/export.json",
        "registration": "reports/registration.json",
        "fast_model": "models/fast.pt",
        "fast_history": "reports/fast_history.csv",
        "fast_onnx": "models/fast.onnx",
        "fast_export_report": "reports/export_fast.json",
        "fast_registration": "reports/registration_fast.json",
        "real": "data/real",
        "finetuned": "models/finetuned.pt",
        "finetune_report": "reports/finetune.json",
        "finetune_history": "reports/finetune_history.csv",
        "finetune_figures": "reports/finetune_figures",
        "finetuned_onnx": "models/finetuned.onnx",
        "finetuned_export_report": "reports/export_finetuned.json",
        "finetuned_registration": "reports/registration_finetuned.json",
    }.items()
}


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
    """Train ResUNet-1D (or, with --student, the fast variant); write checkpoint and history."""
    from pipeline.checkpoint import save_checkpoint
    from pipeline.simulate import SpectrumSet
    from pipeline.train import to_tensors, train

    model_params, train_params = p.model, p.train
    if args.student:
        model_params = dataclasses.replace(p.model, channels=p.student.channels)
        train_params = dataclasses.replace(
            p.train, epochs=p.student.epochs, lr_step=p.student.lr_step
        )
    sets = {s: SpectrumSet.load(args.data / f"{s}.npz") for s in ("train", "val")}
    tensors = {s: to_tensors(v.observed, v.baseline) for s, v in sets.items()}
    state, history = train(
        model_params,
        train_params,
        tensors["train"],
        tensors["val"],
        resume_path=args.resume,
        progress=not args.no_progress,
    )
    save_checkpoint(args.out, state, model_params)
    write_history(args.history, history)
    args.resume.unlink(missing_ok=True)  # finished: nothing to resume
    best = min(history, key=lambda e: e.val_mae)
    print(f"best epoch {best.epoch}: val MAE {best.val_mae:.5f}, val RMSE {best.val_rmse:.5f}")


def write_history(path: Path, history: list) -> None:
    """The per-epoch training history as CSV."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(vars(history[0])))
        writer.writeheader()
        writer.writerows(vars(e) for e in history)


def cmd_evaluate(p: Params, args: argparse.Namespace) -> None:
    """Score ResUNet-1D, arPLS and asPLS on the test set; write metrics and figures."""
    from pipeline.checkpoint import load_checkpoint, torch_run
    from pipeline.evaluate import plot_bars, plot_examples, score
    from pipeline.normalise import predict_baselines
    from pipeline.simulate import SpectrumSet

    test = SpectrumSet.load(args.data / "test.npz")
    with np.load(args.classical) as f:
        predictions = {k: f[k] for k in f.files}
    model, _ = load_checkpoint(args.model)
    predictions["resunet"] = predict_baselines(
        torch_run(model), test.observed, p.evaluate.batch_size
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


def cmd_export(p: Params, args: argparse.Namespace) -> None:
    """Export the best checkpoint to ONNX; fail when ONNX Runtime disagrees with PyTorch."""
    from pipeline.checkpoint import load_checkpoint
    from pipeline.export import export_onnx, parity

    model, _ = load_checkpoint(args.model)
    opset = export_onnx(model, args.out, length=p.simulate.length)
    error = parity(model, args.out)
    report = {
        "opset": opset,
        "max_abs_error": error,
        "tolerance": args.tolerance,
        "dynamic_axes": {"batch": "any", "length": f"multiple of {model.length_multiple}"},
    }
    if not error <= args.tolerance:
        args.out.unlink(missing_ok=True)
        raise SystemExit(
            f"export: ONNX output differs from PyTorch by {error:.2e} "
            f"(> {args.tolerance:g}); no model written"
        )
    write_json(args.report, report)
    print(f"ONNX opset {opset}, max |ONNX - PyTorch| = {error:.2e} on fresh random spectra")


def cmd_register(p: Params, args: argparse.Namespace) -> None:
    """Log this pipeline execution to MLflow, register the model, run the promotion gate."""
    from pipeline import registry
    from pipeline.config import to_dict
    from pipeline.simulate import SpectrumSet

    client = registry.connect(create=True)
    files = {
        "train": args.data / "train.npz",
        "val": args.data / "val.npz",
        "test": args.data / "test.npz",
        "onnx": args.onnx,
        "checkpoint": args.checkpoint,
        "params": args.params,
    }
    digests = {name: registry.file_digest(path) for name, path in files.items()}
    metrics = json.loads(args.metrics.read_text())
    test_metrics = {
        f"test_{m}_{k}": metrics[m][k]["mean"]
        for m in ("resunet", "arpls", "aspls")
        for k in ("rmse", "mae")
    }
    with args.history.open() as f:
        history = list(csv.DictReader(f))
    # the gate's benchmark: the test set, every method re-evaluated on it now
    test = SpectrumSet.load(args.data / "test.npz")
    with np.load(args.classical) as f:
        classical = {m: baseline_errors_mean(f[m], test) for m in f.files}

    with registry.registry_lock():  # one registration at a time on this store
        if already_registered(client, digests["onnx"], args.out):
            return
        run_id, model_uri = registry.log_pipeline_run(
            client,
            params=to_dict(p),
            history=history,
            test_metrics=test_metrics,
            figures=args.figures,
            checkpoint=args.checkpoint,
            onnx_path=args.onnx,
            digests=digests,
            extra_files=[Path("dvc.lock"), args.params, args.export_report],
            run_name=f"pipeline {registry.git_commit()[:12]}",
            grid=p.simulate.length,
        )
        tags = {
            "onnx_sha256": digests["onnx"],
            "params_sha256": digests["params"],
            "data.train_sha256": digests["train"],
            "data.test_sha256": digests["test"],
            "git_commit": registry.git_commit(),
            **{k: f"{v:.6g}" for k, v in test_metrics.items()},
        }
        decision = registry.register_and_gate(
            client,
            run_id=run_id,
            model_uri=model_uri,
            version_tags=tags,
            benchmark={"observed": test.observed, "baseline": test.baseline},
            classical=classical,
            command=registry.command_line(),
        )
    out = {"name": registry.MODEL_NAME, "run_id": run_id, **dataclasses.asdict(decision)}
    write_json(args.out, out)
    verdict = "promoted to production" if decision.promoted else "stays challenger"
    print(f"{registry.MODEL_NAME} v{decision.version} {verdict}: {decision.reason}")


def already_registered(client, onnx_digest: str, out: Path) -> bool:
    """Whether this ONNX file is a registered version already; if so, record that in ``out``.

    Every registering stage checks this first, so re-running one registers nothing twice.
    """
    from pipeline import registry

    existing = registry.find_version_by_tag(client, "onnx_sha256", onnx_digest)
    if existing is None:
        return False
    print(f"this model is already registered as {registry.MODEL_NAME} v{existing}")
    write_json(out, {"name": registry.MODEL_NAME, "version": existing, "already_registered": True})
    return True


def cmd_promote(p: Params, args: argparse.Namespace) -> None:
    """Give a registered version the production alias, by hand, with a reason."""
    from pipeline import registry

    client = registry.connect()
    with registry.registry_lock():
        registry.promote(client, str(args.version), args.reason, registry.command_line())
    print(f"{registry.MODEL_NAME} v{args.version} is production: {args.reason}")


def cmd_rollback(p: Params, args: argparse.Namespace) -> None:
    """Move production back to the version that held it before."""
    from pipeline import registry

    client = registry.connect()
    with registry.registry_lock():
        old, new = registry.rollback(client, args.reason, registry.command_line())
    print(f"{registry.MODEL_NAME} production rolled back from v{old} to v{new}")


def cmd_correct(p: Params, args: argparse.Namespace) -> None:
    """Remove the baseline of spectra files: CSV and PNG per spectrum (npz for a batch)."""
    from functools import partial

    from pipeline import correct
    from pipeline.baselines import classical_baselines

    if args.method == "resunet":
        try:
            model = correct.load_network(args.model, grid=p.simulate.length)
        except correct.ModelLoadError as exc:
            raise SystemExit(f"raman-baseline correct: {exc}") from exc
        estimate = partial(model.baselines, length_mode=args.length_mode)
        how = f"ResUNet-1D from {args.model}, length mode {args.length_mode}"
    else:
        settings = getattr(p.classical, args.method)
        log10_lam, source = correct.chosen_log10_lam(args.method, settings, args.classical_report)
        estimate = classical_baselines(args.method, log10_lam, settings, p.simulate.length)
        how = (
            f"{args.method}, log10(lam) = {log10_lam:g} at {p.simulate.length} points ({source}),"
            f" scaled by (points / {p.simulate.length})^4"
        )
    print(f"correcting {len(args.inputs)} file(s) with {how}")
    report = correct.correct_files(
        args.inputs, estimate, args.out, plots=not args.no_plots, progress=not args.no_progress
    )
    print(f"{report.spectra} spectra corrected: {len(report.written)} files in {args.out}")
    if report.failed:
        for _, message in report.failed:
            print(f"  failed: {message}", file=sys.stderr)
        raise SystemExit(f"raman-baseline correct: {len(report.failed)} file(s) failed")


def cmd_register_fast(p: Params, args: argparse.Namespace) -> None:
    """Register the fast variant (alias ``fast``) if its RMSE is within reach of production's."""
    from pipeline import registry
    from pipeline.simulate import SpectrumSet

    client = registry.connect()
    test = SpectrumSet.load(args.data / "test.npz")
    benchmark = {"observed": test.observed, "baseline": test.baseline}
    digests = {"onnx": registry.file_digest(args.onnx), "params": registry.file_digest(args.params)}
    with registry.registry_lock():
        if already_registered(client, digests["onnx"], args.out):
            return
        decision = registry.fast_gate(
            client,
            args.onnx,
            p.simulate.length,
            benchmark,
            p.student.max_rmse_ratio,
            reference=registered_version(args.registration),
        )
        record = {"registered": decision.promoted, "reason": decision.reason}
        record |= {"variant": decision.challenger, "production": decision.production}
        record["production_version"] = decision.production_version
        if decision.promoted:
            with args.history.open() as f:
                history = list(csv.DictReader(f))
            run_id, model_uri = registry.log_pipeline_run(
                client,
                params={"model": {**dataclasses.asdict(p.model), **dataclasses.asdict(p.student)}},
                history=history,
                test_metrics={f"test_{k}": v for k, v in decision.challenger.items()},
                figures=None,
                checkpoint=args.checkpoint,
                onnx_path=args.onnx,
                digests=digests,
                extra_files=[args.export_report],
                run_name=f"fast variant {registry.git_commit()[:12]}",
                grid=p.simulate.length,
            )
            tags = {
                "onnx_sha256": digests["onnx"],
                "variant": "fast",
                "reference_version": str(decision.production_version),
                "gate.decision": "registered",
                "gate.reason": decision.reason,
            }
            record["version"] = registry.register_alias(
                client,
                run_id=run_id,
                model_uri=model_uri,
                version_tags=tags,
                alias=registry.FAST,
                why=f"fast gate: {decision.reason}",
            )
            record["run_id"] = run_id
    write_json(args.out, record)
    if decision.promoted:
        print(f"{registry.MODEL_NAME} v{record['version']} is @fast: {decision.reason}")
    else:
        print(f"fast variant not registered: {decision.reason}")


def registered_version(path: Path) -> str:
    """The reference version the ``register`` stage recorded in ``registration.json``."""
    from pipeline import registry

    return registry.reference_of(json.loads(path.read_text()))


def cmd_seed_real(p: Params, args: argparse.Namespace) -> None:
    """Copy the real spectra (``finetune.real_source``) into the DVC-tracked ``data/real``."""
    from pipeline import realdata

    source = args.source or Path(p.finetune.real_source)
    copied = realdata.seed(source, args.out)
    print(f"{len(copied)} files from {source} in {args.out}")


def cmd_finetune(p: Params, args: argparse.Namespace) -> None:
    """Fine-tune the production network on data/real with simulated replay; report before/after."""
    import tempfile

    from pipeline import finetune as ft
    from pipeline import realdata, registry
    from pipeline.baselines import refined
    from pipeline.checkpoint import load_checkpoint, save_checkpoint
    from pipeline.simulate import SpectrumSet
    from pipeline.train import to_tensors, train

    f = p.finetune
    client = registry.connect()
    with tempfile.TemporaryDirectory() as tmp:
        parent = registered_version(args.registration)
        parent_run, path = registry.checkpoint_of(client, parent, Path(tmp))
        parent_model, model_params = load_checkpoint(path)
    grid = p.simulate.length

    records, problems = realdata.load(args.real)
    clipped = [r for r in records if ft.saturated(r)]
    records = [r for r in records if r not in clipped]
    skipped = [f"{path}: {message}" for path, message in problems]
    skipped += [f"{r.file} {r.label}: saturated detector" for r in clipped]
    for line in skipped:
        print(f"  skipped: {line}", file=sys.stderr)
    if not records:
        raise SystemExit(f"finetune: no usable real spectra in {args.real}")
    train_records, heldout = realdata.split(records, f.holdout_fraction, f.seed)
    metrics = json.loads(args.metrics.read_text())
    best = min(("arpls", "aspls"), key=lambda m: metrics[m]["rmse"]["mean"])
    lams = {m: v["log10_lam"] for m, v in json.loads(args.classical_report.read_text()).items()}
    classical = ft.classical_methods(p.classical, lams, grid)
    estimate = classical[best]
    if f.targets == "refined":
        estimate = refined(ft.network_method(parent_model, grid), classical[best])
    targets = ft.classical_targets(train_records, estimate)

    sim = {s: SpectrumSet.load(args.data / f"{s}.npz") for s in ("train", "val", "test")}
    data = ft.training_set(
        train_records,
        targets,
        (sim["train"].observed, sim["train"].baseline),
        f,
        p.simulate,
        f.real_samples,
        f.replay_samples,
        f.seed,
    )
    val = ft.training_set(
        train_records,
        targets,
        (sim["val"].observed, sim["val"].baseline),
        f,
        p.simulate,
        max(1, f.real_samples // 8),
        f.replay_samples // 8,
        f.seed + 1,
    )
    settings = dataclasses.replace(
        p.train, epochs=f.epochs, lr=f.lr, lr_step=f.lr_step, lr_gamma=f.lr_gamma, seed=f.seed
    )
    state, history = train(
        model_params,
        settings,
        to_tensors(data.observed, data.baseline),
        to_tensors(val.observed, val.baseline),
        progress=not args.no_progress,
        init_state=parent_model.state_dict(),
        frozen_norm=True,
    )
    save_checkpoint(args.out, state, model_params)
    write_history(args.history, history)
    tuned, _ = load_checkpoint(args.out)

    before = ft.simulated_errors(parent_model, sim["test"].observed, sim["test"].baseline)
    after = ft.simulated_errors(tuned, sim["test"].observed, sim["test"].baseline)
    methods = {
        "resunet_before": ft.network_method(parent_model, grid),
        "resunet_after": ft.network_method(tuned, grid),
        **classical,
    }
    baselines = ft.real_baselines(heldout, methods)
    quality = ft.real_quality(heldout, baselines)
    args.figures.mkdir(parents=True, exist_ok=True)
    for old in args.figures.glob("*.png"):
        old.unlink()
    ft.plot_quality(args.figures / "quality.png", quality)
    for i, r in enumerate(heldout[: f.figures]):
        title = f"{r.file} {r.label} (held out)"
        ft.plot_real(
            args.figures / f"real_{i:02d}.png", r, {m: b[i] for m, b in baselines.items()}, title
        )
    report = {
        "parent_version": parent,
        "parent_run_id": parent_run,
        "targets": f.targets,
        "pseudo_label_method": best,
        "real": {
            "spectra": len(records),
            "train_spectra": len(train_records),
            "heldout_spectra": len(heldout),
            "heldout_files": sorted({r.file for r in heldout}),
            "skipped": skipped,
            "training_windows": data.n_real,
            "replayed_simulated": data.n_replay,
        },
        "simulated_test": {
            "before": before,
            "after": after,
            "rmse_ratio": after["rmse"] / before["rmse"],
        },
        "heldout_quality": quality,
    }
    write_json(args.report, report)
    print(
        f"fine-tuned from v{parent}: simulated-test RMSE {before['rmse']:.5f} -> "
        f"{after['rmse']:.5f} ({report['simulated_test']['rmse_ratio']:.3f}x)"
    )
    for m, q in quality.items():
        print(f"  held-out real, {m:15s} " + "  ".join(f"{k} {v:.4g}" for k, v in q.items()))


def cmd_register_finetuned(p: Params, args: argparse.Namespace) -> None:
    """Register the fine-tuned network (tagged with its parent) through the same gate."""
    from pipeline import registry
    from pipeline.simulate import SpectrumSet

    client = registry.connect()
    report = json.loads(args.report.read_text())
    parent = str(report["parent_version"])
    test = SpectrumSet.load(args.data / "test.npz")
    benchmark = {"observed": test.observed, "baseline": test.baseline}
    with np.load(args.classical) as f:
        classical = {m: baseline_errors_mean(f[m], test) for m in f.files}
    digests = {
        "onnx": registry.file_digest(args.onnx),
        "checkpoint": registry.file_digest(args.checkpoint),
        "params": registry.file_digest(args.params),
    }
    with registry.registry_lock():
        if already_registered(client, digests["onnx"], args.out):
            return
        x = np.arange(test.observed.shape[1], dtype=np.float64)
        parent_scores = registry.score_version(parent, x, test.observed, test.baseline)
        tuned = registry.score_onnx(args.onnx, p.simulate.length, benchmark)
        ratio = tuned["rmse"] / parent_scores["rmse"]
        record = {"parent_version": parent, "simulated_test": tuned, "parent": parent_scores}
        record["rmse_ratio"] = ratio
        if ratio > p.finetune.max_sim_rmse_ratio:
            record |= {
                "registered": False,
                "reason": (
                    f"simulated-test RMSE {tuned['rmse']:.5f} is {ratio:.3f} x parent "
                    f"v{parent}'s {parent_scores['rmse']:.5f} (> {p.finetune.max_sim_rmse_ratio:g})"
                ),
            }
            write_json(args.out, record)
            print(f"fine-tuned model not registered: {record['reason']}")
            return
        with args.history.open() as f:
            history = list(csv.DictReader(f))
        quality = {
            f"real_{method}_{k}": v
            for method, q in report["heldout_quality"].items()
            for k, v in q.items()
        }
        metrics = {f"test_{k}": v for k, v in tuned.items()}
        metrics |= {f"parent_test_{k}": v for k, v in parent_scores.items()}
        metrics["test_rmse_ratio_to_parent"] = ratio
        run_id, model_uri = registry.log_pipeline_run(
            client,
            params={"finetune": dataclasses.asdict(p.finetune), "parent_version": parent},
            history=history,
            test_metrics=metrics | quality,
            figures=args.figures,
            checkpoint=args.checkpoint,
            onnx_path=args.onnx,
            digests=digests,
            extra_files=[args.report, args.export_report],
            run_name=f"finetune of v{parent} {registry.git_commit()[:12]}",
            grid=p.simulate.length,
        )
        tags = {
            "onnx_sha256": digests["onnx"],
            "parent_version": parent,
            "parent_run_id": str(report["parent_run_id"]),
            "finetuned": "true",
            "finetune.targets": str(report["targets"]),
            "git_commit": registry.git_commit(),
        }
        decision = registry.register_and_gate(
            client,
            run_id=run_id,
            model_uri=model_uri,
            version_tags=tags,
            benchmark=benchmark,
            classical=classical,
            command=registry.command_line(),
        )
    record |= {"registered": True, "run_id": run_id, **dataclasses.asdict(decision)}
    write_json(args.out, record)
    verdict = "promoted to production" if decision.promoted else "stays challenger"
    print(
        f"{registry.MODEL_NAME} v{decision.version} (fine-tuned from v{parent}, simulated-test "
        f"RMSE {ratio:.3f} x parent's) {verdict}: {decision.reason}"
    )


def baseline_errors_mean(predicted: np.ndarray, test) -> dict[str, float]:
    """Mean RMSE and MAE of baselines on a simulated set."""
    from pipeline.metrics import baseline_errors

    e = baseline_errors(predicted, test.baseline, test.observed)
    return {"rmse": float(e["rmse"].mean()), "mae": float(e["mae"].mean())}


def build_parser() -> argparse.ArgumentParser:
    """The ``raman-baseline`` argument parser."""
    parser = argparse.ArgumentParser(prog="raman-baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help=cmd_simulate.__doc__)
    s.add_argument("--out", type=Path, default=PATHS["data"])
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("classical", help=cmd_classical.__doc__)
    _paths(s, data="data", out="classical", report="classical_report")
    s.set_defaults(func=cmd_classical)

    s = sub.add_parser("train", help=cmd_train.__doc__)
    _paths(s, data="data", out="model", history="history")
    s.add_argument("--student", action="store_true", help="the fast variant (params: student)")
    s.add_argument(
        "--resume",
        type=Path,
        default=Path(".resume/train.pt"),
        help="resume checkpoint, written every epoch, removed when training ends",
    )
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help=cmd_evaluate.__doc__)
    _paths(s, "data", "model", "classical", "classical_report", "metrics", "figures")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("export", help=cmd_export.__doc__)
    _paths(s, model="model", out="onnx", report="export_report")
    s.add_argument("--tolerance", type=float, default=1e-4)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("register", help=cmd_register.__doc__)
    _paths(s, "data", "onnx", "classical", "metrics", "history", "figures", "export_report")
    _paths(s, checkpoint="model", out="registration")
    s.set_defaults(func=cmd_register)

    s = sub.add_parser("register-fast", help=cmd_register_fast.__doc__)
    _paths(s, "data", onnx="fast_onnx", checkpoint="fast_model", history="fast_history")
    _paths(s, "registration", export_report="fast_export_report", out="fast_registration")
    s.set_defaults(func=cmd_register_fast)

    s = sub.add_parser("seed-real", help=cmd_seed_real.__doc__)
    s.add_argument("--source", type=Path, default=None, help="default: finetune.real_source")
    _paths(s, out="real")
    s.set_defaults(func=cmd_seed_real)

    s = sub.add_parser("finetune", help=cmd_finetune.__doc__)
    _paths(s, "real", "data", "metrics", "classical_report", "registration")
    _paths(s, out="finetuned", history="finetune_history", report="finetune_report")
    _paths(s, figures="finetune_figures")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser("register-finetuned", help=cmd_register_finetuned.__doc__)
    _paths(s, "data", "classical", onnx="finetuned_onnx", checkpoint="finetuned")
    _paths(s, history="finetune_history", report="finetune_report", figures="finetune_figures")
    _paths(s, export_report="finetuned_export_report", out="finetuned_registration")
    s.set_defaults(func=cmd_register_finetuned)

    s = sub.add_parser("promote", help=cmd_promote.__doc__)
    s.add_argument("--version", type=int, required=True)
    s.add_argument("--reason", required=True)
    s.set_defaults(func=cmd_promote)

    s = sub.add_parser("rollback", help=cmd_rollback.__doc__)
    s.add_argument("--reason", default="rollback")
    s.set_defaults(func=cmd_rollback)

    from pipeline.correct import DEFAULT_MODEL, METHODS
    from pipeline.normalise import LENGTH_MODES

    s = sub.add_parser("correct", help=cmd_correct.__doc__)
    s.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="spectra files")
    s.add_argument("-o", "--out", type=Path, required=True, metavar="OUTDIR")
    s.add_argument("--method", choices=METHODS, default=METHODS[0])
    s.add_argument("--model", default=DEFAULT_MODEL, help="a models:/ URI or a path.onnx")
    s.add_argument(
        "--length-mode",
        choices=LENGTH_MODES,
        default=LENGTH_MODES[0],
        help="resample onto the training grid and back, or run at the native length (padded)",
    )
    _paths(s, classical_report="classical_report")
    s.add_argument("--no-plots", action="store_true", help="CSV only, no PNG")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_correct)
    return parser


def _paths(parser: argparse.ArgumentParser, *same: str, **renamed: str) -> None:
    """Add ``--<option>`` path arguments defaulting to ``PATHS`` entries."""
    for option, key in [*((k, k) for k in same), *renamed.items()]:
        flag = "--" + option.replace("_", "-")
        parser.add_argument(flag, type=Path, default=PATHS[key])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raman-baseline``."""
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print(f"raman-baseline: invalid {args.params}: {exc}", file=sys.stderr)
        return 2
    try:
        args.func(params, args)
    except Exception as exc:
        from pipeline.registry import RegistryError

        if isinstance(exc, RegistryError):
            print(f"raman-baseline {args.command}: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
