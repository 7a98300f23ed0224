"""Durability helpers shared by every module that commits files by rename or append."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(Path(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:  # the C library this process already has loaded
        call: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None  # not Linux (or no syncfs): `sync_filesystem` falls back to sync(2)
    return call


def sync_filesystem(path: str | os.PathLike[str]) -> None:
    """Make everything written so far to the filesystem holding `path` durable, by any
    process of this machine (Linux syncfs(2): one journal commit for all of it, where an
    fsync of each file and directory is one each). OSError when the filesystem reports a
    write error (Linux 5.8 and later report writeback errors here). Elsewhere: sync(2),
    which flushes every filesystem and reports nothing."""
    call = _syncfs()
    if call is None:
        os.sync()
        return
    fd = os.open(Path(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        if call(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.fspath(path))
    finally:
        os.close(fd)
