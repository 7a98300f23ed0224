"""The nightly job on a Dask distributed cluster: workers ingest files, the driver commits.

`ClusterRemote` is the `Remote` of `pipeline.ingest.run.ingest`: it sends the listed files
(each its `Entry` and `FileJob`, both frozen and picklable) to the scheduler, a few small
ones or one large one to a task of `ingest_group_on_worker` (`groups`), and yields each
file's `FileRecords` as its task comes back. A worker opens
and sniffs the file as the local run does, reads it once (BLAKE3 of the whole and each
chunk), puts it into the shared store (credentials from the worker's own environment),
probes and analyses it, and returns its records; the driver's one `Committer` runs the
cross-file rules and writes each catalog batch and its audit records.

A worker that dies mid-file (killed, out of memory) loses its task; the scheduler runs it
again on another worker (up to `distributed.scheduler.allowed-failures` deaths), and a
task that raised is retried `retries` times. Running a file twice is harmless: its key is
its BLAKE3, so the second put finds the object (`created=False`) and stores nothing new,
and the driver commits only the one result it receives per file. A file whose task still
fails is that file's `failed`, naming the worker error; the run goes on. The read-back of
every stored copy before its source is moved runs on the workers too (`verify`): the
driver alone would read the whole night again.

Memory per worker is bounded whatever the file's size: it is streamed in chunks (the S3
store keeps at most `max_concurrency + 1` parts in flight; the local store copies by the
kernel), and only the records (rows of packets and chunks) travel back.

Security: whoever can reach a scheduler can run any code on its workers, and the workers
hold S3 write credentials. `tls://` with certificates (`TlsFiles`, required there) is the
default the README documents; `tcp://` is accepted only because a `LocalCluster` on one
machine needs no more.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import distributed
import distributed.security

from pipeline.errors import CustodyError, InputError
from pipeline.ingest.entry import ingest_entries
from pipeline.ingest.file import FileJob, FileRecords, FileTools, failed_record, worker_tools
from pipeline.ingest.listing import Entry
from pipeline.ingest.outcome import ARCHIVED
from pipeline.jobs.groups import groups
from pipeline.jobs.settle import verify_copy

# distributed's API is untyped; its three entry points are used as such.
Client: Any = distributed.Client
Security: Any = distributed.security.Security
as_completed: Any = distributed.as_completed
CONNECT_TIMEOUT = "30s"
WINDOW_MIN, WINDOW_PER_THREAD = 4, 2  # tasks out on the cluster at once
RETRIES = 2  # a task that raised (not a worker's death: the scheduler reschedules that)
# Small files travel several to a task (`pipeline.jobs.groups`): a Dask task costs the
# driver, the scheduler and a worker a few ms each way, more than ingesting a photo (2,000
# small files on a 2-worker LocalCluster took 1.9x the local pool's time one file a task).
VERIFY_GROUP_FILES, VERIFY_GROUP_BYTES = 32, 256 << 20
# Dask's nannies start each worker with MALLOC_TRIM_THRESHOLD_=65536 unless the machine's
# Dask configuration says otherwise (infra/dask/custody.yaml): glibc then maps, zeroes and
# unmaps each file's buffers again (2,000 small files on a 2-worker LocalCluster: 10.9-11.9
# s without it, 12.4-13.1 s with it; benchmarks/README.md).
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
DASK_CONFIG_HINT = ("start them with DASK_CONFIG=/etc/custody/dask.yaml, a copy of "
                    "infra/dask/custody.yaml (README, \"Nightly job and cluster\")")


class ClusterUnavailable(CustodyError):
    """The scheduler cannot be reached, or refused this client."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


def security_for(address: str, tls: TlsFiles) -> Any:
    """The client's TLS settings for a `tls://` address (all three files required)."""
    if not address.startswith("tls://"):
        if address.startswith("tcp://") or "://" not in address:
            return None
        raise InputError(f"--cluster {address}: expected tls://HOST:PORT (or tcp://)")
    missing = [n for n, v in (("tls_ca", tls.ca), ("tls_cert", tls.cert),
                              ("tls_key", tls.key)) if not v]
    if missing:
        raise InputError(f"--cluster {address}: a tls:// scheduler needs "
                         f"{', '.join(missing)} (--tls-ca/--tls-cert/--tls-key or "
                         "[custody.nightly])")
    return Security(tls_ca_file=tls.ca, tls_client_cert=tls.cert, tls_client_key=tls.key,
                    require_encryption=True)


_here = threading.local()


def _tools(store_uri: str, full_demux: bool) -> FileTools:
    """This worker thread's tools, made once per store (opening an S3 store per file
    would cost more than ingesting a photo)."""
    made: dict[tuple[str, bool], FileTools] | None = getattr(_here, "tools", None)
    if made is None:
        made = _here.tools = {}
        _here.stack = contextlib.ExitStack()  # lives as long as the worker's thread
    key = (store_uri, full_demux)
    if key not in made:
        made[key] = _here.stack.enter_context(worker_tools(store_uri, full_demux=full_demux))
    return made[key]


def ingest_group_on_worker(pairs: Sequence[tuple[Entry, FileJob]]) -> list[FileRecords]:
    """The task: a group of files one after another (`GROUP_FILES`); an exception in one
    file's work is that file's `failed`, never the group's. The store is synced once
    before the records go back (`FileJob.durable`: the worker's own writes, on its own
    machine); if it cannot be, the group's archived files are `failed` (the next run
    stores them again)."""
    out = ingest_entries(pairs, lambda job: _tools(job.store_uri, job.full_demux))
    written = {job.store_uri for (_, job), rec in zip(pairs, out, strict=True)
               if rec.status == ARCHIVED and not job.durable}
    for uri in written:
        try:
            _tools(uri, False).store.sync()
        except Exception as exc:
            out = [failed_record(rec.path, exc, blake3=rec.blake3, size_bytes=rec.size_bytes)
                   if rec.status == ARCHIVED and job.store_uri == uri else rec
                   for (_, job), rec in zip(pairs, out, strict=True)]
    return out


def sees_file(path: str, token: str) -> str | None:
    """On a worker: None when `path` holds `token` (the driver's file is visible here at
    the same path), else what this worker finds there."""
    try:
        with open(path, encoding="utf-8") as fh:
            found = fh.read(len(token) + 1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None if found == token else f"{path} holds another file"


def verify_on_worker(
    store_uri: str, items: Sequence[tuple[str, int | None]]
) -> list[str | None]:
    """The read-back of a group of stored copies (BLAKE3, size), on whichever worker runs
    it: None for each that verifies, else why not."""
    store = _tools(store_uri, False).store
    return [verify_copy(store, b3, size) for b3, size in items]


class ClusterRemote:
    """Files to a Dask scheduler, records back (see the module docstring)."""

    def __init__(self, address: str, tls: TlsFiles, *, retries: int = RETRIES) -> None:
        self.address = address
        self.security = security_for(address, tls)
        self.retries = retries
        self._client: Any = None
        # Read-backs sent as their files' tasks came back, collected by `verify`.
        self._read_backs: list[tuple[Any, list[tuple[str, int | None]]]] = []
        self._reading: set[tuple[str, int | None]] = set()

    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = Client(self.address, security=self.security,
                                      timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterUnavailable(
                    f"cluster {self.address}: cannot connect: {type(exc).__name__}: "
                    f"{exc}") from exc
        return self._client

    def __call__(self, pairs: Sequence[tuple[Entry, FileJob]]) -> Iterator[FileRecords]:
        """Each pair's records, a task's files at a time (`groups`), as tasks complete. At
        most `window` tasks are out at once (a few per worker thread): records wait for
        the committer in bounded numbers. A task of several files that fails (its worker
        died too often, or it raised after its retries) is sent again one file a task, so
        only the file at fault is `failed`."""
        if not pairs:
            return
        client = self.client()
        run = pairs[0][1].run_id
        threads = sum(client.nthreads().values()) or 1
        window = max(WINDOW_MIN, WINDOW_PER_THREAD * threads)
        todo = collections.deque(groups([e.size_bytes for e, _ in pairs], threads))
        out: dict[Any, range] = {}
        done = as_completed(loop=client.loop)

        def submit_next() -> None:
            if todo:
                part = todo.popleft()
                fut = client.submit(ingest_group_on_worker, [pairs[i] for i in part],
                                    key=f"ingest-{run}-{part.start}-{part.stop}",
                                    retries=self.retries, pure=False)
                out[fut.key] = part
                done.add(fut)

        for _ in range(window):
            submit_next()
        for fut in done:
            part = out.pop(fut.key)
            try:
                recs: list[FileRecords] = fut.result()
            except Exception as exc:  # KilledWorker, or the task raised after its retries
                if len(part) > 1:
                    todo.extendleft(range(i, i + 1) for i in reversed(part))
                    recs = []
                else:
                    job = pairs[part.start][1]
                    recs = [failed_record(job.path, ClusterTaskFailed(
                        f"{job.path}: not ingested on the cluster {self.address}: "
                        f"{type(exc).__name__}: {exc}"))]
            fut.release()
            while len(out) < window and todo:
                submit_next()
            # The copies are read back on the workers now, beside the files after them.
            self._read_back(pairs[part.start][1].store_uri, [
                (r.blake3, r.size_bytes) for r in recs if r.status == ARCHIVED and r.blake3])
            yield from recs

    def unseen(self, path: str, token: str) -> dict[str, str]:
        """The workers connected now that do not see the driver's file `path` (holding
        `token`) at the same path, each with what it found."""
        got = self.client().run(sees_file, path, token)
        return {str(w): str(why) for w, why in sorted(got.items()) if why is not None}

    def worker_warnings(self) -> list[str]:
        """What the workers connected now are started with that costs the night: Dask's
        MALLOC_TRIM_THRESHOLD_ (`MALLOC_TRIM`), one line naming those workers. A worker
        that joins later is not asked."""
        client = self.client()  # ClusterUnavailable: the run's own error
        try:
            got = client.run(os.environ.get, MALLOC_TRIM)
        except Exception as exc:  # a worker did not answer: the run goes on without
            return [f"cluster {self.address}: the workers' environment could not be read: "
                    f"{type(exc).__name__}: {exc}"]
        trimmed = {str(w): str(v) for w, v in sorted(got.items()) if v is not None}
        if not trimmed:
            return []
        values = ", ".join(sorted(set(trimmed.values())))
        return [f"{len(trimmed)} of {len(got)} cluster worker(s) run with {MALLOC_TRIM}="
                f"{values}, Dask's default, which makes each file's memory be mapped, "
                f"zeroed and unmapped again (about 10 % of a night of small files): "
                f"{', '.join(trimmed)}; {DASK_CONFIG_HINT}"]

    def verify(
        self, store_uri: str, items: Sequence[tuple[str, int | None]]
    ) -> list[str | None]:
        """Each stored copy read back on the workers: None, or why it did not verify. The
        read-backs `__call__` started as each task came back are collected, not made again;
        the others are sent now."""
        if not items:
            return []
        client = self.client()
        threads = sum(client.nthreads().values()) or 1
        rest = [it for it in dict.fromkeys(items) if it not in self._reading]
        parts = groups([n or 0 for _, n in rest], threads, most_files=VERIFY_GROUP_FILES,
                       most_bytes=VERIFY_GROUP_BYTES)
        for part in parts:
            self._read_back(store_uri, [rest[i] for i in part])
        found: dict[tuple[str, int | None], str | None] = {}
        for fut, keys in self._read_backs:
            try:
                found.update(zip(keys, fut.result(), strict=True))
            except Exception as exc:  # the worker could not run it: not verified
                found.update((k, f"b3/{k[0]}: not read back on the cluster {self.address}: "
                                 f"{type(exc).__name__}: {exc}") for k in keys)
            fut.release()
        self._read_backs.clear()
        self._reading.clear()
        return [found[it] for it in items]

    def _read_back(self, store_uri: str, keys: list[tuple[str, int | None]]) -> None:
        """Send the read-back of these stored copies (BLAKE3, size) to the workers, but
        not again for one already sent."""
        keys = [k for k in keys if k not in self._reading]
        if keys:
            fut = self.client().submit(verify_on_worker, store_uri, keys,
                                       retries=self.retries, pure=False)
            self._read_backs.append((fut, keys))
            self._reading.update(keys)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


class ClusterTaskFailed(CustodyError):
    """A file's task failed on the cluster after its retries."""
