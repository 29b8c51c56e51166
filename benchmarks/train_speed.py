"""Training speed on this machine's device (CUDA when present, else CPU), and its stream.

    python benchmarks/train_speed.py [--batches 128 1024] [--quick] [--full] [--json OUT]
                                     [--params params.yaml] [--profile full]
                                     [--variants plain|project] [--workers 0 1 2]

Samples/s of a plain fp32 eager loop (AdamW, RMSE loss, no autocast) against the project's own
step, ``pipeline.train.train_step`` under ``step_autocast(device, train.precision)`` (``auto``:
bf16 on a CPU with bf16 arithmetic, else fp32) and ``tuned_kernels`` (cuDNN autotuning on
CUDA), as ``train()`` runs it, on the same model, simulated batches and number of steps,
interleaved so both see the same machine: after ``--warmup`` steps each, the best of
``--repeats`` rounds of ``--steps`` timed steps. This is section (b) of ``benchmarks/speed.py``,
at ``train.batch_size`` (the default of ``--batches``) and length 512.

Then the stream that feeds training (:class:`pipeline.stream.SimulatedStream`): spectra/s of
simulation alone (normalised tensors, as training receives them) for each ``--workers``
count (default: 0, 1 and ``train.workers``), after one block per worker to start them. The
device never waits when the stream's rate is above the project step's.

``--full`` also trains the ``params.yaml`` network with ``pipeline.train.train`` on the
stream for ``train.samples`` spectra (validation: the ``simulate`` stage's val set) and prints
the wall time and the test set's mean RMSE/MAE as the ``evaluate`` stage computes them.
``--profile NAME`` applies ``profiles.NAME`` of params.yaml first.

Only torch, numpy, scipy, yaml and tqdm are imported (and ``benchmarks/common.py``, which
imports numpy), so the script runs on a GPU machine that lacks the rest of the project's
dependencies.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline, not an installed copy

import torch  # noqa: E402

from benchmarks import common  # noqa: E402
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.device import (  # noqa: E402
    native_bf16,
    pick_device,
    resolve_precision,
    step_autocast,
    tuned_kernels,
)
from pipeline.model import build_model  # noqa: E402
from pipeline.simulate import simulate  # noqa: E402
from pipeline.stream import SimulatedStream  # noqa: E402
from pipeline.train import to_tensors, train, train_step  # noqa: E402

VARIANTS = ("plain", "project")
FULL = {"warmup": 5, "steps": 20, "repeats": 3}
QUICK = {"warmup": 2, "steps": 5, "repeats": 2}


def plain_fp32_step(model, optimiser, xb, yb):
    """The reference: a textbook fp32 eager step (AdamW, RMSE loss, no autocast)."""
    loss = torch.sqrt(torch.mean((model(xb) - yb) ** 2))
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss


def fresh_model(params: Params, device: torch.device):
    """The ``params.yaml`` network, seeded as ``train()`` seeds it, with its AdamW optimiser."""
    torch.manual_seed(params.train.seed)
    m = params.model
    model = build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel).to(device).train()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=params.train.lr, weight_decay=params.train.weight_decay
    )
    return model, optimiser


def step_rates(
    params: Params,
    batch: int,
    length: int = 512,
    warmup: int = 3,
    steps: int = 20,
    repeats: int = 3,
    variants: tuple[str, ...] = VARIANTS,
) -> list[tuple[str, float, float]]:
    """``(label, samples/s, seconds)`` of the plain fp32 loop, then of the project's step.

    Each variant's best of ``repeats`` rounds of ``steps`` steps after ``warmup`` steps; the
    rounds alternate between the variants. Every step ends in ``loss.item()``, as in
    ``train()``, which also waits for a GPU to finish. On CUDA time one variant per process
    (``variants``): cuDNN caches the kernel it picks for a shape, so the variant run first
    would choose the other's kernels.
    """
    if params.train.threads:  # as train() does
        torch.set_num_threads(params.train.threads)
    device = pick_device()
    spectra = simulate(dataclasses.replace(params.simulate, length=length), 4 * batch, common.SEED)
    x, y = (t.to(device) for t in to_tensors(spectra.observed, spectra.baseline))
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, 4 * batch, batch)]
    autocast = step_autocast(device, params.train.precision)

    def project_step(model, optimiser, xb, yb):
        with tuned_kernels(device):  # as train() runs its steps
            return train_step(model, optimiser, xb, yb, autocast)

    precision = resolve_precision(device, params.train.precision)
    known = {
        "plain": ("plain fp32 eager", plain_fp32_step),
        "project": (f"project step ({params.train.precision}: {precision})", project_step),
    }
    steps_by_label = dict(known[v] for v in VARIANTS if v in variants)
    states = {label: fresh_model(params, device) for label in steps_by_label}
    for label, step in steps_by_label.items():
        for i in range(warmup):
            step(*states[label], *batches[i % len(batches)]).item()
    best = dict.fromkeys(steps_by_label, math.inf)
    for _ in range(repeats):
        for label, step in steps_by_label.items():
            start = time.perf_counter()
            for i in range(steps):
                step(*states[label], *batches[i % len(batches)]).item()
            best[label] = min(best[label], time.perf_counter() - start)
    return [(label, steps * batch / s, s) for label, s in best.items()]


def stream_rate(params: Params, workers: int, blocks: int) -> tuple[float, float]:
    """``(spectra/s, seconds)`` of the training stream with ``workers`` processes.

    The first block of each worker is taken untimed (process start, imports); then
    ``blocks`` blocks are timed as the training loop would receive them.
    """
    stream = SimulatedStream(params.simulate, params.train.seed, workers)
    feed = stream.blocks(0)
    for _ in range(max(workers, 1)):
        next(feed)
    start = time.perf_counter()
    spectra = sum(len(next(feed)[0]) for _ in range(blocks))
    seconds = time.perf_counter() - start
    del feed  # stops the workers
    return spectra / seconds, seconds


def stream_rows(
    params: Params, workers: Sequence[int], blocks: int, step_rate: float | None
) -> list[common.Row]:
    """:func:`stream_rate` per worker count, as rows; the note compares with the step."""
    rows = []
    for w in workers:
        rate, seconds = stream_rate(params, w, blocks)
        cores = "in-process" if w == 0 else f"{w} worker{'s' * (w > 1)}"
        note = f"{blocks} blocks of {SimulatedStream(params.simulate, 0).block}"
        if step_rate:
            note += f"; {rate / step_rate:,.1f}x the project step"
        rows.append(
            common.Row(
                "train",
                "stream: simulation alone",
                params.simulate.length,
                None,
                cores,
                rate,
                seconds,
                note=note,
            )
        )
    return rows


def full_training(params: Params) -> dict[str, float]:
    """Train the ``params.yaml`` network as the ``train`` stage does; time it and score it."""
    from pipeline.checkpoint import torch_run
    from pipeline.metrics import mean_errors
    from pipeline.normalise import predict_baselines

    s = params.simulate
    sets = {
        split: simulate(s, n, seed=s.seed * 1000 + offset)
        for offset, (split, n) in ((1, ("val", s.n_val)), (2, ("test", s.n_test)))
    }
    norm = params.model.normalisation
    stream = SimulatedStream(s, params.train.seed, params.train.workers, normalisation=norm)
    val = to_tensors(sets["val"].observed, sets["val"].baseline, norm)
    start = time.perf_counter()
    state, history = train(params.model, params.train, stream, val, progress=False)
    seconds = time.perf_counter() - start
    m = params.model
    model = build_model(m.arch, m.channels, m.enc_kernel, m.dec_kernel)
    model.load_state_dict(state)
    model.eval()
    test = sets["test"]
    predicted = predict_baselines(torch_run(model), test.observed, 1024)
    errors = mean_errors(predicted, test.baseline, test.observed)
    best = min(history, key=lambda e: e.val_mae)
    return {
        "seconds": seconds,
        "samples": history[-1].samples,
        "samples_per_s": history[-1].samples / seconds,
        "best_samples": best.samples,
        "test_rmse": errors["rmse"],
        "test_mae": errors["mae"],
    }


def describe_device() -> str:
    """The device ``train()`` uses, and whether it has bf16 arithmetic."""
    device = pick_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    return (
        f"{name} ({device}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"native bf16: {native_bf16(device)}, CPU capability: "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )


def training_rows(
    params: Params,
    batch: int,
    length: int,
    sizes: dict[str, int],
    variants: tuple[str, ...] = VARIANTS,
) -> list[common.Row]:
    """:func:`step_rates` as rows of the table; ``ratio`` is against the plain loop, if run."""
    rates = step_rates(
        params, batch, length, sizes["warmup"], sizes["steps"], sizes["repeats"], variants
    )
    device = pick_device()
    cores = f"{torch.get_num_threads()} (torch threads)" if device.type == "cpu" else str(device)
    note = f"{sizes['warmup']} warm-up + {sizes['steps']} timed steps, best of {sizes['repeats']}"
    rows = [
        common.Row("train", label, length, batch, cores, rate, s, note=note)
        for label, rate, s in rates
    ]
    if "plain" in variants:
        for r in rows:
            r.ratio = r.rate / rows[0].rate
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.parser_for(__doc__, FULL, QUICK)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--batches", type=int, nargs="*", help="default: train.batch_size")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="train.precision")
    parser.add_argument("--full", action="store_true", help="also a whole training run")
    parser.add_argument("--profile", help="apply profiles.PROFILE of params.yaml")
    parser.add_argument("--workers", type=int, nargs="*", help="stream: simulation processes")
    parser.add_argument("--stream-blocks", type=int, default=16, help="stream: blocks timed")
    args = parser.parse_args(argv)
    params = load_params(args.params, args.profile)
    if args.precision:
        params = dataclasses.replace(
            params, train=dataclasses.replace(params.train, precision=args.precision)
        )
    say = common.Printout()
    say(describe_device())
    sizes = common.chosen_sizes(args, FULL, QUICK)
    rows = []
    for batch in [params.train.batch_size] if args.batches is None else args.batches:
        rows += training_rows(params, batch, args.length, sizes, tuple(args.variants))
    step = max((r.rate for r in rows if r.name.startswith("project")), default=None)
    workers = args.workers if args.workers is not None else sorted({0, 1, params.train.workers})
    rows += stream_rows(params, workers, args.stream_blocks, step)
    common.finish(say, rows, args.json)
    if args.full:
        result = full_training(params)
        precision = resolve_precision(pick_device(), params.train.precision)
        print(
            f"full training, {params.train.precision}: {precision} "
            f"({result['samples']:,} streamed spectra, batch {params.train.batch_size}, "
            f"{params.train.workers} workers): {result['seconds']:.1f} s, "
            f"{result['samples_per_s']:,.0f} samples/s; best at {result['best_samples']:,}; "
            f"test RMSE {result['test_rmse']:.5f}, MAE {result['test_mae']:.5f} "
            f"({params.simulate.n_test:,} test spectra)"
        )


if __name__ == "__main__":
    main()
