"""Serve the training flow on a cron schedule (nightly by default), fine-tuning and map flows.

Needs a running Prefect server (``PREFECT_API_URL``); the ephemeral server does not schedule::

    prefect server start --host 127.0.0.1 --port 4200
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve --workspace .
    prefect deployment run raman-training/nightly --param overrides='{"train": {"samples": 100000}}'
    prefect deployment run raman-finetune/on-demand   # after adding real spectra
    prefect deployment run raman-map-correction/on-demand \
        --param input_path=map.zarr --param output=map-corrected.zarr

The process polls the server for the deployment's runs (scheduled or triggered) and runs each
in a subprocess, until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from prefect import serve
from prefect.schedules import Cron

from flows.finetune import finetune_flow
from flows.maps import map_flow
from flows.training import training_flow

DEPLOYMENT = "nightly"
FINETUNE_DEPLOYMENT = "on-demand"  # raman-finetune/on-demand: no schedule, run when data changes
MAP_DEPLOYMENT = "on-demand"  # raman-map-correction/on-demand: a map corrected when asked
CRON = "0 2 * * *"  # 02:00 every night


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m flows.serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--name", default=DEPLOYMENT, help=f"deployment name (default {DEPLOYMENT})"
    )
    parser.add_argument(
        "--cron",
        default=os.environ.get("RAMAN_TRAINING_CRON", CRON),
        help=f"cron schedule (default $RAMAN_TRAINING_CRON or {CRON!r})",
    )
    parser.add_argument(
        "--timezone",
        default=os.environ.get("RAMAN_TRAINING_TIMEZONE", "UTC"),
        help="IANA time zone of the schedule (default $RAMAN_TRAINING_TIMEZONE or UTC)",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path("."),
        help="the DVC workspace the runs use (default: the current directory)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=3600.0,
        help="seconds a run waits for another run in the workspace (default 3600)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Create (or update) the deployment and serve it until stopped."""
    args = build_parser().parse_args(argv)
    workspace = args.workspace.resolve()
    if not (workspace / "dvc.yaml").is_file():
        raise SystemExit(f"flows.serve: no dvc.yaml in {workspace}; pass --workspace")
    common = {"workspace": str(workspace), "lock_timeout_s": args.lock_timeout}
    serve(
        training_flow.to_deployment(
            name=args.name,
            schedules=[Cron(args.cron, timezone=args.timezone)],
            parameters=common,
            tags=["raman-baseline"],
            description=f"ResUNet-1D pipeline (dvc.yaml) in {workspace}",
        ),
        finetune_flow.to_deployment(
            name=FINETUNE_DEPLOYMENT,
            parameters=common,
            tags=["raman-baseline"],
            description=f"fine-tuning of the production network on {workspace}/data/real",
        ),
        map_flow.to_deployment(
            name=MAP_DEPLOYMENT,
            parameters={"workspace": str(workspace)},
            tags=["raman-baseline"],
            description=f"a map corrected chunk by chunk on Dask (paths relative to {workspace})",
        ),
    )


if __name__ == "__main__":
    main()
