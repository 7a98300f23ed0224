"""What `export make` does behind the copy, so the package costs little more than the write.

- `Files`: each file of the package written at once and fsynced in a background thread
  (the originals' copies too): the disk's write-back overlaps the work still to do, and
  `wait()` before the package's directories are synced and it is renamed into place.
- `CoverRenderer`: cover.pdf rendered by WeasyPrint in a worker process. WeasyPrint is
  pure Python (a thread would hold the GIL the packet hashing needs) and takes about a
  second to import and set up its CJK fonts, so one worker is started when the first
  package is begun (its import overlaps the copy) and kept for the next; the cover is
  handed to it as soon as the digests are known, and the PDF collected last.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pipeline.export import contents


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Files:
    """The package's files under `root`, each fsynced behind the writer (module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pool = ThreadPoolExecutor(1, "export-fsync")
        self._pending: list[Future[None]] = []

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as fh:
            fh.write(data)
        self.sync(path)

    def sync(self, path: Path) -> None:
        self._pending.append(self._pool.submit(_fsync, path))

    def wait(self) -> None:
        """Every file written so far is on disk (an fsync error raised here)."""
        while self._pending:
            self._pending.pop(0).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _warm() -> None:
    contents.cover_pdf("<html lang='zh-CN'><body><p>电子数据 PDF</p></body></html>".encode())


_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _worker() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # forkserver: a clean child, not a fork of this threaded process
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"),
                                        initializer=_warm)
        return _pool


class CoverRenderer:
    """cover.pdf from cover.html in the kept worker process (module doc)."""

    def __init__(self) -> None:
        self._pool = _worker()
        self._started = self._pool.submit(os.getpid)  # starts (and warms) the worker now

    def render(self, html: bytes) -> Future[bytes]:
        return self._pool.submit(contents.cover_pdf, html)

    def result(self, fut: Future[bytes], html: bytes) -> bytes:
        """The PDF; rendered here instead if the worker died (the next package starts a
        new one)."""
        global _pool
        try:
            return fut.result()
        except BrokenProcessPool:
            with _lock:
                if _pool is self._pool:
                    _pool = None
            return contents.cover_pdf(html)
