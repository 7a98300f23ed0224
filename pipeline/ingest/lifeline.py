"""Helper processes die with the run that started them, however it dies (SIGKILL too).

The probe pool's processes outlive a killed run on their own: each worker holds the write
end of its own task queue (so it never reads end-of-file) and of the forkserver's "alive"
pipe (so the forkserver never sees every client gone), and all of them hold the resource
tracker's pipe. So the kernel ends them instead, with `prctl(PR_SET_PDEATHSIG, SIGKILL)`:

- the forkserver imports this module first of its preloads (`pipeline.ingest.prober`) and
  arms it against its parent, the run's process (strictly: the thread that started it,
  the run's own, which lives as long as the pool);
- every process the forkserver forks (the workers) arms it against the forkserver, at
  once after the fork (`os.register_at_fork`).

A parent that died before the child armed is caught by comparing `os.getppid()` with the
parent it should have, after arming. With the workers and the forkserver gone, the
resource tracker reads end-of-file and exits by itself. Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_SERVER_PID: int | None = None  # in the forkserver and its children: the forkserver's pid


def die_with_parent(expected_parent: int | None) -> bool:
    """Ask the kernel to SIGKILL this process when its parent (thread) exits; if the parent
    is already not `expected_parent`, it died first: exit now. False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)
    return True


def _in_forkserver() -> bool:
    """Whether this import runs in a multiprocessing forkserver's preload."""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "main"
                and frame.f_globals.get("__name__") == "multiprocessing.forkserver"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _arm_child() -> None:
    die_with_parent(_SERVER_PID)


def _arm_forkserver() -> None:
    global _SERVER_PID
    _SERVER_PID = os.getpid()
    # Its parent is the run's process. If that is gone already, the "alive" pipe ends the
    # server before it forks anything (it holds no worker yet).
    die_with_parent(None)
    os.register_at_fork(after_in_child=_arm_child)


if _in_forkserver():
    _arm_forkserver()
