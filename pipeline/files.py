"""Files that stages and users can trust: atomic writes, and the one cross-process file lock.

A stage that fails or is interrupted (Ctrl-C, SIGTERM) leaves no half-written output and no
temporary file (:func:`atomic_path`: private, unpredictable temporary names), and two
processes that must not work at once (two pipeline runs on one workspace, two registrations
on one store) take an exclusive ``fcntl`` lock on a file (:func:`file_lock`).
This module imports nothing from the project.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file is ``<folder>/.<name>.<random>.tmp/<name>``: a folder made by
    :func:`tempfile.mkdtemp` in the target's folder (an unpredictable name, created
    exclusively, mode 0700, so nobody else can plant a file or a symbolic link in it), and in
    it a file of the target's own name created exclusively (``O_EXCL | O_NOFOLLOW``, mode
    0666 less the umask, as the target would get). Writers reopen it by name (``np.savez``,
    ``torch.save``, ``savefig``); the private folder is what makes that safe, where a file
    made by :func:`tempfile.mkstemp` in a shared folder could be swapped for a symbolic link
    between its creation and the writer's open. The name keeps the suffix, so writers that
    append one (``np.savez``) agree; the rename (:func:`os.replace`) stays within one file
    system and replaces a symbolic link at ``path`` rather than following it.

    On failure, Ctrl-C or SIGTERM the temporary folder is removed and ``path`` is untouched:
    while the path is held, SIGTERM (when it would kill the process outright: the default
    action, in the main thread) raises :class:`SystemExit` with status 143 instead, so the
    removal runs. SIGKILL leaves the hidden ``.<name>.*.tmp`` folder behind.

    Raises
    ------
    OSError
        The folder cannot be created or written to.
    SystemExit
        Status 143 on SIGTERM while the path is held (default SIGTERM action only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp = folder / path.name
    try:
        with _sigterm_exits():
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
            yield tmp
            os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(143)`` inside the block, so ``finally`` clauses run.

    Only where SIGTERM would otherwise kill the process on the spot (its default action) and
    only in the main thread (where Python runs signal handlers); a handler already installed
    (``correct``'s, an outer :func:`atomic_path`'s) is left as it is.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
