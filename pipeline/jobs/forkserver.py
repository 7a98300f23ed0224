"""The local pool's forkserver, kept apart from the pool so that starting it imports nothing
heavy: `custody nightly` starts it before its own imports (the ingest, the catalog, PyAV,
numpy and pyarrow; about 0.35 s of CPU), so the server's imports of the same run on the
other core at the same time, not after them."""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

# The workers' modules, imported once in the server, not again in each worker when its
# first task is unpickled (`pipeline.jobs.pool` imports the ingest, catalog and rules).
PRELOAD = ["pipeline.ingest.lifeline", "pipeline.media.probe", "pipeline.cli.main",
           "pipeline.jobs.pool"]


def context() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm() -> None:
    """Start the forkserver now (it dies with this process, as its workers do)."""
    context()
    multiprocessing.forkserver.ensure_running()
