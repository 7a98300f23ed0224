"""The nightly job's local executor: whole files on a process pool, committed by the driver.

`custody ingest` pipelines one file at a time in the driver (read and copy here, demux in
one worker a few files ahead). For the nightly run's many small files (photos, 5 s clips)
the per-file work that needs a CPU is the demux and, for video, the AV-9 voice decode;
done one file after another it keeps one core busy and the driver waiting. Here each
worker process runs the same per-file function a cluster worker runs
(`pipeline.ingest.entry.ingest_entry`: open, sniff, read once into the store, probe,
analyse), small files several to a task as on a cluster (`pipeline.jobs.groups`), `workers`
tasks at a time and a few more queued, and the driver only commits (the cross-file rules,
the catalog batches, the audit records), as with a cluster.

The workers fork from a server that has PyAV, numpy and pyarrow loaded, and die with the
run however it dies (`pipeline.ingest.lifeline`), as the probe pool's do. A worker that
crashes (FFmpeg on a hostile file) breaks the pool: the pool is rebuilt and the files that
were out are sent again, one file a task (a repeated put is harmless); a file out during
a second crash as well is `failed` ("the worker crashed ..."), never a lost file.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool

from pipeline.errors import CustodyError
from pipeline.ingest.entry import ingest_entries
from pipeline.ingest.file import FileJob, FileRecords, FileTools, failed_record, worker_tools
from pipeline.ingest.listing import Entry
from pipeline.jobs.forkserver import context
from pipeline.jobs.groups import groups

QUEUED_PER_WORKER = 2  # tasks waiting in the pool beside each one being worked on
MAX_ATTEMPTS = 2

_made: dict[tuple[str, bool], FileTools] = {}
_stack = contextlib.ExitStack()  # the worker process's tools, kept for its life


def _worker_tools(job: FileJob) -> FileTools:
    """This worker process's tools for the job's store (made once, kept for its life)."""
    key = (job.store_uri, job.full_demux)
    if key not in _made:
        _made[key] = _stack.enter_context(worker_tools(job.store_uri,
                                                       full_demux=job.full_demux))
    return _made[key]


def ingest_group_in_worker(pairs: Sequence[tuple[Entry, FileJob]]) -> list[FileRecords]:
    """The task: a group of files, in a pool worker (`ingest_entries`)."""
    return ingest_entries(pairs, _worker_tools)


class WorkerCrashed(CustodyError):
    """The pool's worker process died while this file was out, twice."""


def _adopt_env(env: Mapping[str, str]) -> None:
    """In a new worker: the driver's store settings (`Settings.store_env`: `[custody.s3]`
    of the config file under the AWS_* variables), which a worker's store reads from its
    own environment as a cluster worker's does."""
    os.environ.update(env)


def _new_pool(workers: int, env: Mapping[str, str]) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(workers, mp_context=context(), initializer=_adopt_env,
                                  initargs=(dict(env),))


class PoolRemote:
    """`Remote` on local worker processes (see the module docstring). `env`: the store
    settings the driver runs with, for the workers (same machine, same account)."""

    def __init__(self, workers: int, env: Mapping[str, str] | None = None) -> None:
        self.workers = max(1, workers)
        self.env = dict(env or {})

    def __call__(self, pairs: Sequence[tuple[Entry, FileJob]]) -> Iterator[FileRecords]:
        if not pairs:
            return
        # Small files go several to a task (`pipeline.jobs.groups`); a group lost with a
        # crashed worker is sent again one file a task, so only the file at fault fails.
        todo = [tuple(r) for r in groups([e.size_bytes for e, _ in pairs], self.workers)]
        todo.reverse()  # popped from the end: in listing order
        attempts: dict[int, int] = {}
        pool = _new_pool(self.workers, self.env)
        out: dict[cf.Future[list[FileRecords]], tuple[int, ...]] = {}
        window = self.workers * (1 + QUEUED_PER_WORKER)
        try:
            while todo or out:
                broken: list[int] = []
                while todo and len(out) < window and not broken:
                    group = todo.pop()
                    for i in group:
                        attempts[i] = attempts.get(i, 0) + 1
                    try:
                        out[pool.submit(ingest_group_in_worker,
                                        [pairs[i] for i in group])] = group
                    except BrokenProcessPool:  # a worker died since the last results
                        for i in group:
                            attempts[i] -= 1  # these were never out
                        broken += group
                if not broken:
                    finished, _ = cf.wait(out, return_when=cf.FIRST_COMPLETED)
                    for fut in finished:
                        group = out.pop(fut)
                        try:
                            yield from fut.result()
                        except BrokenProcessPool:
                            broken += group
                        except Exception as exc:  # not ingest_entry's own: pickling, ...
                            for i in group:
                                yield failed_record(pairs[i][1].path, exc)
                if broken:
                    for group in out.values():  # every file out was lost with the pool
                        broken += group
                    out.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _new_pool(self.workers, self.env)
                    for i in sorted(set(broken), reverse=True):
                        if attempts[i] >= MAX_ATTEMPTS:
                            job = pairs[i][1]
                            yield failed_record(job.path, WorkerCrashed(
                                f"{job.path}: the worker process crashed while this file "
                                f"was out ({attempts[i]} times); not ingested"))
                        else:
                            todo.append((i,))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Nothing held between runs (the pool lives for one call)."""
