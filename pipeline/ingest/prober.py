"""The local run's probe: PyAV demux in worker processes, a few files ahead of the reader.

The demuxer takes and releases the GIL per packet, so it gets its own processes and never
competes with this process's hashing and copying threads.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from fractions import Fraction

from pipeline.ingest.file import unreadable
from pipeline.media.probe import AudioLevels, audio_levels, probe
from schemas.media import ProbeResult


class Prober:
    """Probes files in worker processes, a few files ahead of the reader.

    A worker that dies (FFmpeg crashing on a hostile file) breaks the pool: the file it was
    probing is retried once in a fresh pool, the pool is rebuilt for the files after it,
    and a second crash makes that file unreadable media, never a lost file.
    """

    def __init__(self, workers: int, full_demux: bool = False) -> None:
        self.workers = workers
        self.probe = functools.partial(probe, full_demux=full_demux)
        self.pool = self._new_pool()
        self.futures: dict[str, cf.Future[ProbeResult]] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # forkserver: this process runs hashing threads; forking it could copy held locks.
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has PyAV and numpy loaded already (0.01 s per
        # worker instead of 0.15 s of imports).
        # Each worker also re-runs the main module before its first task (Python 3.11's
        # forkserver never preloads `__main__`: it looks for a key its caller does not
        # set). The `custody` script's main imports `pipeline.cli.main`, and with it pyarrow:
        # 0.07 s of CPU per worker unless the server has imported it (then 0.01 s).
        # `lifeline` first: the server and every worker die with this process, even when
        # it is SIGKILLed (PR_SET_PDEATHSIG; see pipeline.ingest.lifeline).
        ctx.set_forkserver_preload(
            ["pipeline.ingest.lifeline", "pipeline.media.probe", "pipeline.cli.main"])
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx)

    def submit(self, path: str) -> None:
        try:
            self.futures[path] = self.pool.submit(self.probe, path)
        except BrokenProcessPool:
            self._rebuild()
            self.futures[path] = self.pool.submit(self.probe, path)

    def _rebuild(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()
        for path, fut in list(self.futures.items()):
            if fut.done() and not isinstance(fut.exception(), BrokenProcessPool):
                continue
            self.futures[path] = self.pool.submit(self.probe, path)

    def forget(self, path: str) -> None:
        """The file is done (or will not be ingested): drop its probe, if any is pending."""
        fut = self.futures.pop(path, None)
        if fut is not None:
            fut.cancel()

    def result(self, path: str) -> ProbeResult:
        fut = self.futures.pop(path, None) or self.pool.submit(self.probe, path)
        try:
            return fut.result()
        except BrokenProcessPool:
            self._rebuild()
            try:
                return self.pool.submit(self.probe, path).result()
            except BrokenProcessPool:
                self._rebuild()
                return unreadable(path, "the demuxer crashed on this file (twice)")
        except Exception as exc:
            return unreadable(path, f"probe failed: {type(exc).__name__}: {exc}")

    def levels(self, path: str, start: Fraction, seconds: float, *,
               enough_speech: tuple[float, float] | None = None) -> AudioLevels | None:
        """Audio levels after a resume, decoded in a worker; None if that failed."""
        try:
            return self.pool.submit(audio_levels, path, start, seconds,
                                    enough_speech=enough_speech).result()
        except BrokenProcessPool:
            self._rebuild()
            return None
        except Exception:
            return None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
