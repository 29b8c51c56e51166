"""Files that stages and users can trust: atomic writes, and the one cross-process file lock.

A stage that fails or is interrupted leaves no half-written output (:func:`atomic_path`), and
two processes that must not work at once (two pipeline runs on one workspace, two
registrations on one store) take an exclusive ``fcntl`` lock on a file (:func:`file_lock`).
This module imports nothing from the project.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the suffix, so writers that append one (``np.savez``) agree.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, pretty-printed."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class LockTimeout(TimeoutError):
    """A :func:`file_lock` still held by another process when the wait ran out.

    Attributes
    ----------
    path
        The lock file.
    holder
        What the holder recorded in the lock file, or None when it recorded nothing.
    timeout
        The seconds waited.
    """

    def __init__(self, path: Path, holder: str | None, timeout: float):
        by = f", held by {holder}" if holder else ""
        super().__init__(f"{path} is locked{by}; gave up after waiting {timeout:g} s")
        self.path = path
        self.holder = holder
        self.timeout = timeout


@contextlib.contextmanager
def file_lock(
    path: str | Path,
    timeout: float | None = None,
    holder: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.5,
) -> Iterator[Path]:
    """Hold an exclusive ``fcntl`` lock on the file ``path`` (created if missing).

    The lock goes with the process: one that dies, even by SIGKILL, frees it. While held, the
    file records who holds it (``holder``, the process id and since when), so a process that
    waits or gives up can say who is in the way; the record is cleared on release.

    Parameters
    ----------
    path
        The lock file; its folder is created if missing.
    timeout
        Seconds to wait for another holder; None waits as long as it takes, 0 refuses at once.
    holder
        Who this is (a flow run's name, a command), written into the lock file.
    on_wait
        Told once, with a line naming the lock file and its holder, when the lock is busy
        and waiting begins.
    poll
        Seconds between attempts while waiting with a ``timeout``.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    LockTimeout
        A :class:`TimeoutError`, when the lock is still held after ``timeout`` seconds; the
        message names the lock file and, if it recorded one, its holder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        if not _try_lock(f):
            if on_wait is not None and timeout != 0:
                limit = "as long as it takes" if timeout is None else f"up to {timeout:g} s"
                on_wait(f"waiting {limit} for {path}, held by {_holder(f) or 'holder unknown'}")
            _wait_for_lock(f, path, timeout, poll)
        try:
            f.seek(0)
            f.truncate()
            since = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
            f.write(f"{holder or 'a process'} (pid {os.getpid()}, since {since})")
            f.flush()
            yield path
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


def _try_lock(f: IO[str]) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for_lock(f: IO[str], path: Path, timeout: float | None, poll: float) -> None:
    if timeout is None:
        fcntl.flock(f, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while not _try_lock(f):
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeout(path, _holder(f), timeout)
        time.sleep(min(poll, left))


def _holder(f: IO[str]) -> str | None:
    """What the holder of the lock wrote into the file, if anything."""
    f.seek(0)
    return f.read().strip() or None
