"""An S3 inbox with `custody nightly --cluster`: the driver fetches the inbox into its spool
and the workers read the files there, so every worker must see the spool at the same
path. A worker that cannot (here: a real dask worker process in its own mount namespace,
a tmpfs over the spool) makes the run refuse at its start, exit 2, naming `spool`; on a
LocalCluster, whose workers share the driver's filesystem, the inbox is archived."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from pipeline.catalog.core import Catalog  # noqa: E402
from pipeline.cli.main import main  # noqa: E402
from tests.clusters import DASHBOARD, local_cluster  # noqa: E402
from tests.contract._support import inbox_with_clips  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, inbox: str) -> Path:
    cfg = tmp / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "{tmp / "store"}"\ncatalog = "{tmp / "catalog"}"\n'
        f'[custody.nightly]\nspool = "{tmp / "spool"}"\nsources = ["{inbox}"]\n',
        encoding="utf-8")
    return cfg


def _nightly(cfg: Path, address: str, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["nightly", "--config", str(cfg), "--cluster", address, "--json"],
                env=env, out=out, err=err)
    assert out.getvalue(), err.getvalue()
    return code, json.loads(out.getvalue())["run"], err.getvalue()


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture()
def blind_worker(tmp_path: Path) -> Iterator[str]:
    """A scheduler with one worker process that sees an empty tmpfs where the driver's
    spool is (as a worker machine without the shared mount would); its address."""
    if not _can_unshare():
        pytest.skip("needs unshare -m and mount (root, CAP_SYS_ADMIN) for a worker that "
                    "does not see the driver's folder")
    spool = tmp_path / "spool"
    spool.mkdir()
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=DASHBOARD,
                                  silence_logs=50) as cluster:
        worker = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", f'mount -t tmpfs blind "{spool}" && exec '
             f'"{sys.executable}" -m distributed.cli.dask_worker '
             f'{cluster.scheduler_address} --nthreads 1 --no-nanny --no-dashboard'],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            with distributed.Client(cluster.scheduler_address,
                                    set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)
            yield str(cluster.scheduler_address)
        finally:
            worker.kill()
            worker.wait()


@pytest.mark.slow
def test_a_worker_that_cannot_see_the_spool_makes_the_run_refuse_at_its_start(
    tmp_path: Path, blind_worker: str
) -> None:
    inbox = "s3://inbox-never-listed/station-3/"
    code, run, _ = _nightly(_config(tmp_path, inbox), blind_worker, {})
    assert code == 2
    assert (run["files_seen"], run["archived"], run["exit_code"]) == (0, 0, 2)
    spool = tmp_path / "spool"
    assert run["error"].startswith(
        f"the S3 inbox {inbox} is fetched into the spool {spool}, which 1 cluster worker(s) "
        "cannot see (tcp://")
    assert f": cannot read {spool}/.custody-spool-check-" in run["error"]
    assert run["error"].endswith(
        ": No such file or directory); set `spool` in [custody.nightly] to a folder every "
        "worker mounts at the same path (NFS, CephFS), or ingest the inbox without "
        "--cluster")
    assert run["compaction"]["state"] == "skipped"
    assert os.listdir(spool) == []  # nothing fetched (the inbox was never asked), no probe
    (rec,) = Catalog(tmp_path / "catalog").query(
        "SELECT exit_code, error FROM nightly_runs").to_pylist()
    assert rec == {"exit_code": 2, "error": run["error"]}


@pytest.mark.slow
def test_on_workers_that_share_the_spool_the_inbox_is_archived(
    tmp_path: Path, s3_server: Any
) -> None:
    _, bucket, by_key = inbox_with_clips(s3_server, tmp_path, "station-3/")
    digests = set(by_key.values())
    with local_cluster() as cluster:
        code, run, err = _nightly(_config(tmp_path, f"s3://{bucket}/station-3/"),
                                  cluster.scheduler_address, s3_server.env())
    assert code == 1, err  # AV-12 findings of footage from 2024
    assert (run["files_seen"], run["archived"], run["verified"], run["moved"],
            run["error"]) == (2, 2, 2, 2, None)
    assert run["executor"] == f"cluster:{cluster.scheduler_address}"
    rows = Catalog(tmp_path / "catalog").query("SELECT blake3 FROM recordings").to_pylist()
    assert {r["blake3"] for r in rows} == digests
    assert not list((tmp_path / "spool").glob(".custody-spool-check-*"))
