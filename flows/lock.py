"""One pipeline run at a time per workspace: an exclusive ``fcntl`` lock on a file in it.

The lock file is ``.dvc/tmp/prefect-pipeline.lock`` (git-ignored by DVC). Its holder writes
who it is into the file, so a run that gives up can say who is in the way. The lock goes
with the process: a run that dies, even by SIGKILL, frees it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path


class WorkspaceBusy(RuntimeError):
    """Another run held the workspace for longer than this one was willing to wait."""


def lock_path(workspace: Path) -> Path:
    """The lock file of ``workspace``."""
    return Path(workspace) / ".dvc" / "tmp" / "prefect-pipeline.lock"


@contextlib.contextmanager
def workspace_lock(
    workspace: Path,
    timeout: float,
    holder: str,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.5,
) -> Iterator[None]:
    """Hold the workspace's pipeline lock, waiting up to ``timeout`` seconds for it.

    Parameters
    ----------
    workspace
        The DVC workspace (the directory with ``dvc.yaml``).
    timeout
        Seconds to wait for a run that holds the lock; 0 refuses at once.
    holder
        Who this is (a flow run's name), written into the lock file for others to read.
    on_wait
        Told once, with the current holder, when the lock is busy and waiting begins.
    poll
        Seconds between attempts while waiting.

    Raises
    ------
    WorkspaceBusy
        If the lock is still held when ``timeout`` runs out; the message names the holder.
    """
    path = lock_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkspaceBusy(
                        f"another pipeline run is using {Path(workspace)} "
                        f"({_holder(f)}); gave up after waiting {timeout:g} s. Try again "
                        "when it has finished, or give this run a longer lock_timeout_s."
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting up to {timeout:g} s for {path}, held by {_holder(f)}")
                    told = True
                time.sleep(min(poll, left))
        try:
            f.seek(0)
            f.truncate()
            f.write(
                f"{holder} (pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)"
            )
            f.flush()
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


def _holder(f) -> str:
    f.seek(0)
    return f.read().strip() or "holder unknown"
