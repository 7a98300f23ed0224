"""One nightly run at a time per catalog: an exclusive `flock` on `<catalog>/nightly.lock`.

The kernel drops a flock when its holder dies however it dies (SIGKILL, a reboot), so a
crashed run never leaves a stale lock to clear by hand; the next start takes it and
resumes. The holder writes its pid, host and start time into the file, so a second start
can say who holds it. It exits at once (a timer that fires twice must not queue runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import CustodyError


class NightlyLocked(CustodyError):
    """Another nightly run holds the lock of this catalog."""


@contextlib.contextmanager
def nightly_lock(path: Path, now: dt.datetime) -> Iterator[None]:
    """Hold the nightly lock at `path` for the block; NightlyLocked at once if held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            raise NightlyLocked(
                f"{path}: another custody nightly is running on this catalog "
                f"({holder or 'holder unknown'}); this start exits without doing anything"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"pid {os.getpid()} on {socket.gethostname()} since "
                       f"{now.isoformat(timespec='seconds')}\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
