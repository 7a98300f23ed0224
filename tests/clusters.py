"""A `LocalCluster` for tests and benchmarks, with the Dask configuration that
infra/dask/custody.yaml gives a real cluster's machines (the nanny reads it when it starts
each worker process, and again when it restarts one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

DASK_CONFIG = Path(__file__).resolve().parent.parent / "infra" / "dask" / "custody.yaml"
# The scheduler's HTTP server (its /health and /metrics, the dashboard where bokeh is) on
# a free port of the loopback. Dask's dashboard_address=None still listens on 8787, which
# two clusters of two pytest-xdist processes then fight over (the loser's retry leaves an
# unclosed socket: a ResourceWarning, an error in this suite).
DASHBOARD = "127.0.0.1:0"


def dask_config() -> dict[str, Any]:
    """The file's settings as dotted keys (`dask.config.set` of a nested dict would replace
    the whole of `distributed`, not merge into it)."""
    def leaves(d: dict[str, Any], at: str) -> Iterator[tuple[str, Any]]:
        for k, v in d.items():
            if isinstance(v, dict):
                yield from leaves(v, f"{at}{k}.")
            else:
                yield f"{at}{k}", v

    return dict(leaves(yaml.safe_load(DASK_CONFIG.read_text(encoding="utf-8")), ""))


@contextlib.contextmanager
def local_cluster(**kw: Any) -> Iterator[Any]:
    """A LocalCluster of worker processes (2, one thread each, unless `kw` says otherwise)
    started under infra/dask/custody.yaml."""
    import dask.config
    import distributed

    opts: dict[str, Any] = {"n_workers": 2, "threads_per_worker": 1, "processes": True,
                            "dashboard_address": DASHBOARD, "silence_logs": 50, **kw}
    with (dask.config.set(dask_config()),
          distributed.LocalCluster(**opts) as cluster):  # type: ignore[no-untyped-call]
        yield cluster
