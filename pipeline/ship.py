"""``raman-baseline ship``: a training run's model into the package, with its model card.

The shipped folder (:mod:`pipeline.shipped`) must stay within :data:`MAX_BYTES` in git, so the
weights are stored in float16 and computed in float32:

- the ONNX network keeps each float initializer as float16 followed by a ``Cast`` to float32
  (:func:`half_onnx`); ONNX Runtime folds the casts when the session is made, so every
  operation runs in float32 on weights rounded to float16 (relative error at most 2**-11);
- the PyTorch checkpoint keeps its float tensors as float16 (:func:`half_checkpoint`);
  ``load_state_dict`` copies them into the float32 parameters of a freshly built network, so
  :func:`pipeline.checkpoint.load_checkpoint` reads it unchanged and fine-tuning trains in
  float32 from there.

The card records what each source file was (sha256, size) and what the rounding cost on the
simulated test set, measured here (:func:`measure`) when the test set is given. Everything else
on the card is read from the run's own records (params.yaml, checkpoint, reports, dvc.lock,
the registry version's tags); a benchmark not measured is left null, never filled in.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.files import atomic_path, write_json
from pipeline.shipped import CARD, FOLDER, load, sha256

MAX_BYTES = 10_000_000  # what the shipped files may take in git, all together
NAMES = {"onnx": "resunet1d.onnx", "checkpoint": "resunet1d.pt"}
BENCHMARKS = ("simulated_test", "semi_real", "rruff")
REAL_BENCHMARKS = ("semi_real", "rruff")  # measured elsewhere: evaluate_real's reports
CARD_METHODS = ("resunet", "refined", "arpls", "aspls")
# refined with one choice on every benchmark, as correct runs it (benchmarks/methods.py)
FIXED = "refined_fixed"


# ------------------------------------------------------------------------ the weights


def half_onnx(src: Path, dst: Path) -> int:
    """Write ``src`` with float16 initializers, each cast back to float32; return how many.

    An initializer that float16 cannot hold (a value beyond +-65504) stays float32. The graph,
    its inputs and outputs, and its metadata (``normalisation``) are otherwise unchanged.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inputs = {i.name for i in graph.input}
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in inputs:
            continue
        half = numpy_helper.to_array(init).astype(np.float16)
        if not np.isfinite(half).all():
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [init.name], [name], to=TensorProto.FLOAT))
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return len(casts)


def half_checkpoint(src: Path, dst: Path) -> int:
    """Write the checkpoint ``src`` with its float tensors as float16; return how many.

    A tensor float16 cannot hold stays float32; integer tensors (batch-norm counters) are kept.
    The checkpoint also says ``stored_as: float16``.
    """
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    state, halved = {}, 0
    for key, tensor in ckpt["model"].items():
        if tensor.is_floating_point() and torch.isfinite(tensor.half()).all():
            tensor, halved = tensor.half(), halved + 1
        state[key] = tensor
    ckpt["model"] = state
    ckpt["stored_as"] = "float16"
    buffer = io.BytesIO()  # not a file: its temporary name would be written into the archive
    torch.save(ckpt, buffer)
    with atomic_path(dst) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return halved


def measure(onnx_path: Path, grid: int, test: Path) -> dict[str, float]:
    """Mean RMSE and MAE of an ONNX network on a simulated set (``test.npz``), in range units."""
    from pipeline.inference import OnnxBaseline
    from pipeline.metrics import mean_errors
    from pipeline.simulate import SpectrumSet

    data = SpectrumSet.load(test)
    x = np.arange(data.observed.shape[1], dtype=np.float64)
    predicted = OnnxBaseline(onnx_path, grid=grid).baselines(x, data.observed)
    return mean_errors(predicted, data.baseline, data.observed)


def checkpoint_drift(full: Path, half: Path, test: Path, n: int = 256) -> float:
    """Largest difference of the two checkpoints' outputs on ``n`` test spectra (normalised)."""
    from pipeline.checkpoint import load_checkpoint, torch_run
    from pipeline.normalise import normalise
    from pipeline.simulate import SpectrumSet

    z = normalise(SpectrumSet.load(test).observed[:n])[0][:, None, :]
    a, b = (torch_run(load_checkpoint(p)[0])(z) for p in (full, half))
    return float(np.abs(a - b).max())


# ------------------------------------------------------------------------ the records


def file_entry(path: Path, role: str | None = None) -> dict[str, Any]:
    """sha256 and size of a file (and its role in the shipped folder)."""
    entry = {"sha256": sha256(path), "bytes": Path(path).stat().st_size}
    return entry | ({"role": role} if role else {})


def wall_times(histories: list[Path]) -> dict[str, float]:
    """Seconds of training per history (the ``seconds`` column summed), and their total."""
    times = {}
    for path in histories:
        with Path(path).open(newline="") as f:
            times[Path(path).stem] = round(sum(float(r["seconds"]) for r in csv.DictReader(f)), 1)
    return times | {"total": round(sum(times.values()), 1)} if times else {}


def dvc_data_digests(dvc_lock: Path) -> dict[str, str]:
    """DVC's hash of every ``data/`` output in ``dvc.lock`` (``md5:...``, ``.dir`` for folders)."""
    stages = yaml.safe_load(Path(dvc_lock).read_text()).get("stages", {})
    return {
        out["path"]: f"md5:{out['md5']}"
        for stage in stages.values()
        for out in stage.get("outs", [])
        if str(out["path"]).startswith("data/") and "md5" in out
    }


def classical_settings(report: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Each classical method's ``lam`` chosen on validation, with its fitting settings."""
    chosen = json.loads(Path(report).read_text())
    length = int(params["simulate"]["length"])
    return {
        m: {
            "log10_lam": float(chosen[m]["log10_lam"]),
            "max_iter": int(params["classical"][m]["max_iter"]),
            "tol": float(params["classical"][m]["tol"]),
            "reference_length": length,
        }
        for m in ("arpls", "aspls")
        if m in chosen
    }


def registry_lineage(uri: str, version: str) -> dict[str, Any]:
    """What the registry holds about ``version`` (and its parent): tags, run environment."""
    from pipeline import registry

    client = registry.connect(uri)
    mv = registry.model_version(client, version)
    run = client.get_run(mv.run_id)
    tags = {k: v for k, v in mv.tags.items() if k != "alias_log"}  # the moves: in the store
    found = {"version": str(version), "run_id": mv.run_id, "tags": tags}
    found["environment"] = {
        k.removeprefix("env."): v for k, v in run.data.tags.items() if k.startswith("env.")
    }
    found["run_tags"] = {k: v for k, v in run.data.tags.items() if k.startswith("data.")}
    parent = mv.tags.get("parent_version")
    if parent:
        parent_run = client.get_run(registry.model_version(client, parent).run_id)
        found["parent"] = {
            "version": parent,
            "run_id": parent_run.info.run_id,
            "run_tags": {k: v for k, v in parent_run.data.tags.items() if k.startswith("data.")},
        }
    return found


def simulated_digests(lineage: dict[str, Any]) -> dict[str, str]:
    """sha256 of the simulated train/val/test sets, from the run's tags or its parent's."""
    tags = lineage.get("parent", {}).get("run_tags", {}) | lineage.get("run_tags", {})
    return {k: v for k, v in tags.items() if k in ("data.train", "data.val", "data.test")}


def benchmark_entry(report: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's card entry from an ``evaluate_real`` report of the shipped network.

    Mean RMSE and MAE of each of :data:`CARD_METHODS` (and :data:`FIXED` when the report has
    it: refined with the card's one choice, what ``correct`` runs), the ratios to the better
    classical method, the choices made on validation (``lam``) and the number of spectra.
    """
    methods = [m for m in (*CARD_METHODS, FIXED) if m in report]
    entry: dict[str, Any] = {m: {k: report[m][k]["mean"] for k in ("rmse", "mae")} for m in methods}
    chosen = report.get("lam", {})
    entry["lam"] = {m: chosen[m] for m in methods if m in chosen}
    return entry | {
        "ratio": report.get("ratio", {}),
        "spectra": report.get("n_test"),
        "validation_spectra": report.get("n_val"),
    }


def refined_settings(
    report: dict[str, Any], params: dict[str, Any], chosen_on: str
) -> dict[str, Any]:
    """``refined``'s choice made on a benchmark's validation part, with its fitting settings.

    ``method`` ``none`` (the network alone) has no ``lam``, ``max_iter`` or ``tol``.
    """
    choice = report["lam"]["refined"]
    method = choice["method"]
    found = {"method": method, "log10_lam": choice["log10_lam"]}
    if method != "none":
        found["max_iter"] = int(params["classical"][method]["max_iter"])
        found["tol"] = float(params["classical"][method]["tol"])
    found["reference_length"] = int(params["simulate"]["length"])
    return found | {"chosen_on": f"the {chosen_on} validation part ({report['n_val']} spectra)"}


def named_path(assignment: str) -> tuple[str, Path]:
    """``NAME=PATH`` of ``--benchmark-metrics``, NAME one of :data:`REAL_BENCHMARKS`."""
    name, sep, path = assignment.partition("=")
    if not sep or name not in REAL_BENCHMARKS or not path:
        raise ValueError(
            f"--benchmark-metrics {assignment!r}: expected NAME=PATH, NAME one of "
            f"{', '.join(REAL_BENCHMARKS)}"
        )
    return name, Path(path)


def set_field(card: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=VALUE`` to the card; VALUE is JSON when it parses, else a string."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {assignment!r}: expected KEY=VALUE (KEY dotted: metrics.rruff)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    *path, last = key.split(".")
    node = card
    for part in path:
        if not isinstance(node.get(part), dict):  # absent, or null (a benchmark unmeasured)
            node[part] = {}
        node = node[part]
    node[last] = value


# -------------------------------------------------------------------------- the command


def arguments() -> argparse.ArgumentParser:
    """The options of ``raman-baseline ship``."""
    p = argparse.ArgumentParser(prog="raman-baseline ship", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="the run's .pt")
    p.add_argument("--onnx", type=Path, required=True, help="its export (.onnx)")
    p.add_argument("--params", type=Path, required=True, help="the run's params.yaml")
    p.add_argument("--out", type=Path, default=FOLDER, help="default: the package's folder")
    p.add_argument("--test", type=Path, help="simulated test set (test.npz): measured here")
    p.add_argument("--metrics", type=Path, help="evaluate's metrics.json (arPLS/asPLS)")
    p.add_argument("--classical-report", type=Path, help="classical.json: lam chosen")
    p.add_argument("--history", type=Path, action="append", default=[], help="repeatable")
    p.add_argument("--report", type=Path, action="append", default=[], help="recorded, repeatable")
    p.add_argument("--dvc-lock", type=Path, help="the run's dvc.lock: data digests")
    p.add_argument("--store", help="the run's MLflow store URI (with --version)")
    p.add_argument("--version", help="the registered version being shipped")
    p.add_argument("--commit", help="git commit (default: the version's git_commit tag)")
    p.add_argument("--device", help="device it trained on (default: the run's env.device)")
    p.add_argument(
        "--benchmark-metrics",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an evaluate_real report (.json) of the shipped network: semi_real=..., rruff=...",
    )
    p.add_argument(
        "--refined-from",
        choices=REAL_BENCHMARKS,
        help="record refined's choice made on this benchmark's validation part (its "
        "--benchmark-metrics report); correct --method refined uses it",
    )
    p.add_argument("--notes", default="", help="free text for the card")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="fields")
    return p


def build_card(args: argparse.Namespace, files: dict[str, Path]) -> dict[str, Any]:
    """The model card for ``files`` (role -> shipped file), from the run's records."""
    import torch

    params = yaml.safe_load(args.params.read_text())
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=True)["model_params"]
    params["model"] = saved  # exactly what rebuilds the network
    lineage = registry_lineage(args.store, args.version) if args.store and args.version else {}
    tags = lineage.get("tags", {})
    env = lineage.get("environment", {})
    onnx_entry = file_entry(files["onnx"], "onnx")
    card: dict[str, Any] = {
        "name": "resunet1d",
        "id": onnx_entry["sha256"][:12],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "grid": int(params["simulate"]["length"]),
        "normalisation": saved.get("normalisation", "minmax"),
        "files": {
            files["onnx"].name: onnx_entry,
            files["checkpoint"].name: file_entry(files["checkpoint"], "checkpoint"),
        },
        "params": params,
        "params_sha256": sha256(args.params),
        "git_commit": args.commit or tags.get("git_commit", "unknown"),
        "device": args.device or env.get("device", "unknown"),
        "environment": env,
        "wall_time_s": wall_times(args.history),
        "data": {
            "dvc_lock": dvc_data_digests(args.dvc_lock) if args.dvc_lock else {},
            "sha256": simulated_digests(lineage),
        },
        "metrics": {b: None for b in BENCHMARKS},
        "source": {
            "onnx": file_entry(args.onnx),
            "checkpoint": file_entry(args.checkpoint),
            "reports": {p.name: json.loads(p.read_text()) for p in args.report},
            "registry": {k: v for k, v in lineage.items() if k not in ("environment",)},
        },
        "notes": args.notes,
    }
    if args.classical_report:
        card["classical"] = classical_settings(args.classical_report, params)
    reports = {
        name: json.loads(path.read_text()) for name, path in map(named_path, args.benchmark_metrics)
    }
    for name, report in reports.items():
        card["metrics"][name] = benchmark_entry(report)
    if args.refined_from:
        if args.refined_from not in reports:
            raise ValueError(f"--refined-from {args.refined_from}: no --benchmark-metrics for it")
        card["refined"] = refined_settings(reports[args.refined_from], params, args.refined_from)
    return card


def storage(args: argparse.Namespace, files: dict[str, Path], counts: dict[str, int]) -> dict:
    """How the weights are stored, and what float16 cost when the test set is given."""
    found = {
        "weights": "float16",
        "compute": "float32",
        "onnx": f"{counts['onnx']} float initializers as float16, each Cast to float32",
        "checkpoint": f"{counts['checkpoint']} float tensors as float16, restored to float32 "
        "by load_state_dict",
    }
    if args.test:
        grid = yaml.safe_load(args.params.read_text())["simulate"]["length"]
        full, half = measure(args.onnx, grid, args.test), measure(files["onnx"], grid, args.test)
        found["simulated_test_fp32"] = full
        found["simulated_test_fp16"] = half
        found["rmse_change"] = half["rmse"] / full["rmse"] - 1.0
        found["checkpoint_max_abs_output_change"] = checkpoint_drift(
            args.checkpoint, files["checkpoint"], args.test
        )
    return found


def simulated_test(args: argparse.Namespace, shipped: dict[str, float]) -> dict[str, Any]:
    """The simulated-test entry: the shipped network's errors, the classical methods beside."""
    entry: dict[str, Any] = {"resunet": shipped, "set_sha256": sha256(args.test)}
    with np.load(args.test) as f:
        entry["spectra"] = len(f["observed"])
    if args.metrics:
        metrics = json.loads(args.metrics.read_text())
        for m in ("arpls", "aspls"):
            entry[m] = {k: metrics[m][k]["mean"] for k in ("rmse", "mae")}
    return entry


def ship(args: argparse.Namespace) -> dict[str, Any]:
    """Write the shipped folder ``args.out``: the float16 files and the card; return the card.

    Raises
    ------
    ValueError
        The files would take more than :data:`MAX_BYTES`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        files = {role: Path(tmp) / name for role, name in NAMES.items()}
        counts = {
            "onnx": half_onnx(args.onnx, files["onnx"]),
            "checkpoint": half_checkpoint(args.checkpoint, files["checkpoint"]),
        }
        total = sum(p.stat().st_size for p in files.values())
        if total > MAX_BYTES:
            raise ValueError(f"the shipped files take {total:,} bytes, over {MAX_BYTES:,}")
        card = build_card(args, files)
        card["storage"] = storage(args, files, counts)
        if args.test:
            card["metrics"]["simulated_test"] = simulated_test(
                args, card["storage"]["simulated_test_fp16"]
            )
        for field in args.fields:
            set_field(card, field)
        args.out.mkdir(parents=True, exist_ok=True)
        for path in files.values():
            with atomic_path(args.out / path.name) as dst:
                shutil.copyfile(path, dst)
    write_json(args.out / CARD, card)
    load(args.out)  # what was written verifies against its card
    return card


def main(argv: list[str] | None = None) -> int:
    """Ship a run's model: ``raman-baseline ship --checkpoint X.pt --onnx X.onnx ...``."""
    args = arguments().parse_args(argv)
    card = ship(args)
    sizes = ", ".join(f"{n} {e['bytes']:,} bytes" for n, e in card["files"].items())
    print(f"shipped {card['name']} {card['id']} into {args.out}: {sizes}")
    if "rmse_change" in card["storage"]:
        change = card["storage"]["rmse_change"]
        print(f"float16 storage changed the simulated-test RMSE by {change:+.3%}")
    return 0
