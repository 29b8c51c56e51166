"""The DVC command line as the flows use it: the stage order, and one stage at a time.

Nothing here re-describes the pipeline: ``dvc dag`` gives the stages of ``dvc.yaml`` and their
edges, and each stage runs through ``dvc repro --single-item``, so DVC decides what is up to
date exactly as ``dvc repro`` does.
"""

from __future__ import annotations

import graphlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# one line of `dvc dag --dot`: a node `"train";` or an edge `"simulate" -> "train";`
_DOT_LINE = re.compile(r'^"(?P<a>[^"]+)"(?:\s*->\s*"(?P<b>[^"]+)")?\s*;?$')


class DvcError(RuntimeError):
    """A DVC command failed; the message holds the command and the end of its output."""


@dataclass(frozen=True)
class DvcResult:
    """A finished DVC command: its arguments, exit status and output (stdout + stderr)."""

    args: tuple[str, ...]
    returncode: int
    output: str


def environment(workspace: Path) -> dict[str, str]:
    """The environment of DVC commands: this interpreter's ``bin/`` on ``PATH``, offline.

    The stage commands (``raman-baseline ...``) live beside the interpreter, which may not be
    on ``PATH`` when a flow runs from a served deployment. A ``PATH`` that already holds that
    directory is left as it is, so an earlier entry keeps precedence.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("DVC_SITE_CACHE_DIR", str(workspace / ".dvc" / "tmp" / "site-cache"))
    return env


def dvc(
    workspace: Path,
    *args: str,
    log: Callable[[str], None] | None = None,
    check: bool = True,
) -> DvcResult:
    """Run ``dvc <args>`` in ``workspace``, passing each output line to ``log`` as it comes.

    Raises
    ------
    DvcError
        If ``check`` and the command exits with a non-zero status.
    """
    exe = Path(sys.executable).parent / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", *args]
    lines: list[str] = []
    with subprocess.Popen(
        cmd,
        cwd=workspace,
        env=environment(workspace),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            # a progress bar redraws itself with \r: keep its last frame only
            line = raw.decode(errors="replace").rstrip().rsplit("\r", 1)[-1]
            lines.append(line)
            if log is not None and line.strip():
                log(line)
    result = DvcResult(tuple(args), proc.returncode, "\n".join(lines))
    if check and proc.returncode != 0:
        tail = "\n".join(lines[-25:])
        raise DvcError(
            f"`dvc {' '.join(args)}` failed in {workspace} (exit {proc.returncode}):\n{tail}"
        )
    return result


def stage_order(workspace: Path, target: str | None = None) -> list[str]:
    """The stages of the workspace's pipeline in an order that respects every dependency.

    Read from ``dvc dag --dot``, so ``dvc.yaml`` stays the one description of the pipeline;
    stages that could run in either order keep the order in which DVC lists them. With
    ``target``, only that stage and the stages it depends on.

    Raises
    ------
    DvcError
        If DVC cannot read the pipeline, or it has no stage.
    """
    dot = dvc(workspace, "dag", "--dot", *([target] if target else [])).output
    return topological_order(dot)


def topological_order(dot: str) -> list[str]:
    """Stage names from ``dvc dag --dot`` output, dependencies first, ties in listed order."""
    nodes: dict[str, None] = {}
    upstream: dict[str, set[str]] = {}
    for line in dot.splitlines():
        match = _DOT_LINE.match(line.strip())
        if match is None:
            continue
        a, b = match["a"], match["b"]
        nodes.setdefault(a)
        upstream.setdefault(a, set())
        if b is not None:
            nodes.setdefault(b)
            upstream.setdefault(b, set()).add(a)
    if not nodes:
        raise DvcError("`dvc dag` lists no stage: is there a dvc.yaml with stages?")
    rank = {name: i for i, name in enumerate(nodes)}
    sorter = graphlib.TopologicalSorter(upstream)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


def git_head(workspace: Path) -> str | None:
    """The commit checked out in ``workspace``, or None (no git repository, or no commit)."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


RAN, CACHED, UP_TO_DATE = "ran", "restored from run-cache", "up to date"


def outcome(result: DvcResult, stage: str) -> str:
    """What ``dvc repro`` did with ``stage``: :data:`RAN`, :data:`CACHED` or :data:`UP_TO_DATE`.

    :data:`CACHED`: DVC had run the stage with the same deps, params and command before and
    restored its outputs from the run-cache instead of running it again.
    """
    if f"Running stage '{stage}'" in result.output:
        return RAN
    if f"Stage '{stage}' is cached" in result.output:
        return CACHED
    return UP_TO_DATE
