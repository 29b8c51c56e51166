"""Stage ``finetune``: the reference network fine-tuned on real spectra with simulated replay.

The parent is the version ``register`` recorded (``reference_version`` in its record, a
declared input), never the live ``production`` alias: a hand ``promote`` does not change what
``dvc repro`` produces. The real spectra are split by measurement; targets for raw spectra
are built as ``finetune.targets`` says (:mod:`pipeline.finetune`); the report scores the
parent and the fine-tuned network on the simulated test set and, with the truth-free
measures, on the held-out real spectra, beside arPLS and asPLS.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import torch

from pipeline import finetune as ft
from pipeline import realdata, registry
from pipeline.baselines import refined
from pipeline.checkpoint import from_state, load_checkpoint, save_checkpoint
from pipeline.config import ModelParams, Params
from pipeline.files import write_json
from pipeline.simulate import SpectrumSet, load_sets
from pipeline.stages._common import (
    arguments,
    params_of,
    script,
    write_history,
)
from pipeline.stages._registering import recorded_version
from pipeline.train import Evaluation, Recipe, to_tensors, train


@dataclasses.dataclass
class Outcome:
    """What :func:`run` returns: the weights, the history and the before/after report."""

    state: dict[str, torch.Tensor]
    history: list[Evaluation]
    report: dict
    heldout: list[realdata.RealSpectrum]
    baselines: dict[str, list]


def usable(records: list, problems: list) -> tuple[list, list[str]]:
    """The records fit for fine-tuning, and a line per file or spectrum left out (and why)."""
    clipped = [r for r in records if ft.saturated(r)]
    skipped = [f"{path}: {message}" for path, message in problems]
    skipped += [f"{r.file} {r.label}: saturated detector" for r in clipped]
    return [r for r in records if r not in clipped], skipped


def finetune_recipe(params: Params, n_train: int) -> Recipe:
    """Fine-tuning's own recipe on its fixed set of ``n_train`` spectra.

    ``finetune.epochs`` passes over the set, validated after each, Adam at ``finetune.lr``
    multiplied by ``finetune.lr_gamma`` every ``finetune.lr_step`` passes: the epoch loop
    of before the simulated stream, step for step. Batch size, weight decay, precision and
    threads are ``train``'s.
    """
    f, t = params.finetune, params.train
    return Recipe(
        samples=f.epochs * n_train,
        batch_size=t.batch_size,
        lr=f.lr,
        weight_decay=t.weight_decay,
        eval_every=n_train,
        seed=f.seed,
        precision=t.precision,
        threads=t.threads,
        decay="step",
        step_every=f.lr_step * n_train,
        gamma=f.lr_gamma,
        optimiser="adam",
    )


def run(
    params: Params,
    parent: torch.nn.Module,
    parent_params: ModelParams,
    records: list,
    sim: dict[str, SpectrumSet],
    best_classical: str,
    log10_lams: dict[str, float],
    progress: bool = True,
) -> Outcome:
    """Fine-tune ``parent`` on ``records`` with replay of ``sim``; score before and after."""
    f, grid = params.finetune, params.simulate.length
    train_records, heldout = realdata.split(records, f.holdout_fraction, f.seed)
    classical = ft.classical_methods(params.classical, log10_lams, grid)
    estimate = classical[best_classical]
    if f.targets == "refined":
        estimate = refined(ft.network_method(parent, grid), classical[best_classical])
    targets = ft.classical_targets(train_records, estimate)
    sets = {
        split: ft.training_set(
            train_records,
            targets,
            (sim[split].observed, sim[split].baseline),
            f,
            params.simulate,
            n_real,
            n_replay,
            seed,
        )
        for split, n_real, n_replay, seed in (
            ("train", f.real_samples, f.replay_samples, f.seed),
            ("val", max(1, f.real_samples // 8), f.replay_samples // 8, f.seed + 1),
        )
    }
    state, history = train(
        parent_params,
        finetune_recipe(params, len(sets["train"].observed)),
        to_tensors(sets["train"].observed, sets["train"].baseline, parent_params.normalisation),
        to_tensors(sets["val"].observed, sets["val"].baseline, parent_params.normalisation),
        progress=progress,
        init_state=parent.state_dict(),
        frozen_norm=True,
    )
    tuned = from_state(parent_params, state)
    test = sim["test"]
    before = ft.simulated_errors(parent, test.observed, test.baseline)
    after = ft.simulated_errors(tuned, test.observed, test.baseline)
    methods = {
        "resunet_before": ft.network_method(parent, grid),
        "resunet_after": ft.network_method(tuned, grid),
        **classical,
    }
    baselines = ft.real_baselines(heldout, methods)
    report = {
        "targets": f.targets,
        "pseudo_label_method": best_classical,
        "real": {
            "spectra": len(records),
            "train_spectra": len(train_records),
            "heldout_spectra": len(heldout),
            "heldout_files": sorted({r.file for r in heldout}),
            "training_windows": sets["train"].n_real,
            "replayed_simulated": sets["train"].n_replay,
        },
        "simulated_test": {
            "before": before,
            "after": after,
            "rmse_ratio": after["rmse"] / before["rmse"],
        },
        "heldout_quality": ft.real_quality(heldout, baselines),
    }
    return Outcome(state, history, report, heldout, baselines)


def write_figures(folder: Path, outcome: Outcome, count: int) -> None:
    """The measures (``quality.png``) and the first ``count`` held-out spectra, drawn anew."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    ft.plot_quality(folder / "quality.png", outcome.report["heldout_quality"])
    for i, r in enumerate(outcome.heldout[:count]):
        drawn = {m: b[i] for m, b in outcome.baselines.items()}
        ft.plot_real(folder / f"real_{i:02d}.png", r, drawn, f"{r.file} {r.label} (held out)")


def main(argv: list[str] | None = None) -> int:
    """Fine-tune; write the checkpoint, the history, the report and its figures."""
    parser = arguments(
        __doc__,
        "finetune",
        "real data metrics classical_report registration out history report figures",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    params = params_of(args)
    parent_version = recorded_version(args.registration)
    client = registry.connect()
    with tempfile.TemporaryDirectory() as tmp:
        parent_run, path = registry.checkpoint_of(client, parent_version, Path(tmp))
        parent, parent_params = load_checkpoint(path)
    records, skipped = usable(*realdata.load(args.real))
    for line in skipped:
        print(f"  skipped: {line}", file=sys.stderr)
    if not records:
        raise realdata.RealDataError(f"no usable real spectra in {args.real}")
    metrics = json.loads(args.metrics.read_text())
    best = min(("arpls", "aspls"), key=lambda m: metrics[m]["rmse"]["mean"])
    lams = {m: v["log10_lam"] for m, v in json.loads(args.classical_report.read_text()).items()}
    sim = load_sets(args.data, ("train", "val", "test"))
    outcome = run(params, parent, parent_params, records, sim, best, lams, not args.no_progress)
    report = {"parent_version": parent_version, "parent_run_id": parent_run, **outcome.report}
    report["real"]["skipped"] = skipped
    save_checkpoint(args.out, outcome.state, parent_params)
    write_history(args.history, outcome.history)
    write_figures(args.figures, outcome, params.finetune.figures)
    write_json(args.report, report)
    st = report["simulated_test"]
    print(
        f"fine-tuned from v{parent_version}: simulated-test RMSE {st['before']['rmse']:.5f} -> "
        f"{st['after']['rmse']:.5f} ({st['rmse_ratio']:.3f}x)"
    )
    for m, q in report["heldout_quality"].items():
        print(f"  held-out real, {m:15s} " + "  ".join(f"{k} {v:.4g}" for k, v in q.items()))
    return 0


if __name__ == "__main__":
    sys.exit(script(main, "finetune"))
