"""`custody nightly --cluster` on a real Dask `LocalCluster` (2 worker processes) and a real
SeaweedFS: a worker killed mid-run, and every file is still archived exactly once."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

distributed = pytest.importorskip("distributed")

from pipeline.catalog.core import Catalog  # noqa: E402
from pipeline.cli.main import main  # noqa: E402
from pipeline.demo import synth  # noqa: E402
from tests.clusters import DASHBOARD, local_cluster  # noqa: E402
from tests.conftest import require_tool  # noqa: E402
from tests.contract._support import fresh_bucket, s3_config  # noqa: E402
from tests.mediagen import START  # noqa: E402

N_FILES = 24


def _cluster(**kw: Any) -> Any:
    return local_cluster(memory_limit="512MiB", **kw)


def _config(tmp: Path, dock: Path, store: str) -> Path:
    cfg = tmp / "custody.toml"
    cfg.write_text(f'[custody]\nstore = "{store}"\ncatalog = "{tmp / "catalog"}"\n'
                   f'[custody.nightly]\nsources = [{{ path = "{dock}", done = "{tmp / "done"}" '
                   '}]\n', encoding="utf-8")
    return cfg


def _versions(server: Any, uri: str) -> list[tuple[str, str]]:
    """(key, version id) of every object version under the store's prefix."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = s3_config(server).client()
    out = []
    for page in client.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=f"{prefix}/b3/"):
        out += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    return out


@pytest.fixture()
def dock(tmp_path: Path) -> Path:
    d = tmp_path / "dock"
    d.mkdir()
    for i in range(N_FILES):
        synth.write_clean(d / f"REC{i:04d}.mp4", 1.0, START.replace(minute=i))
    return d


@pytest.fixture()
def s3_uri(s3_server: Any) -> str:
    return f"s3://{fresh_bucket(s3_config(s3_server).client())}/evidence"


@pytest.fixture()
def cluster(s3_server: Any) -> Iterator[Any]:
    """Two worker processes whose environment holds the S3 credentials (as a worker
    machine's would); the driver is the test process."""
    with _cluster(env=s3_server.env()) as c:
        yield c


@pytest.mark.slow
def test_a_worker_killed_mid_run_and_every_file_is_archived_exactly_once(
    tmp_path: Path, dock: Path, s3_server: Any, s3_uri: str, cluster: Any
) -> None:
    digests = sorted(blake3.blake3(p.read_bytes()).hexdigest() for p in dock.iterdir())
    cfg = _config(tmp_path, dock, s3_uri)
    result: dict[str, Any] = {}

    def run() -> None:
        out, err = io.StringIO(), io.StringIO()
        result["code"] = main(["nightly", "--config", str(cfg), "--cluster",
                               cluster.scheduler_address, "--json", "--batch-files", "4"],
                              env=s3_server.env(), out=out, err=err)
        result["out"], result["err"] = out.getvalue(), err.getvalue()

    driver = threading.Thread(target=run)
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as watcher:
        pids = watcher.run(os.getpid)
        driver.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and driver.is_alive() and time.monotonic() < deadline:
            busy = [w for w, tasks in watcher.processing().items() if tasks]
            committed = (tmp_path / "catalog" / "commits.jsonl").exists() and len(
                (tmp_path / "catalog" / "commits.jsonl").read_text().splitlines()) >= 2
            if busy and committed:
                victim = busy[0]
            else:
                time.sleep(0.01)
        assert victim is not None, "the run ended before a worker could be killed mid-run"
        os.kill(pids[victim], signal.SIGKILL)
        driver.join(timeout=300)
        assert not driver.is_alive()
        # Every worker, the one the nanny started again included, runs under
        # infra/dask/custody.yaml: without Dask's MALLOC_TRIM_THRESHOLD_=65536.
        watcher.wait_for_workers(2, timeout=60)
        assert sorted(map(str, watcher.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values())
                      ) == ["None", "None"]
    with pytest.raises(ProcessLookupError):
        os.kill(pids[victim], 0)
    run_doc = json.loads(result["out"])["run"]
    assert result["code"] == 1, result["err"]  # AV-12 findings of footage from 2024
    assert (run_doc["files_seen"], run_doc["archived"], run_doc["already_archived"],
            run_doc["failed"], run_doc["verified"], run_doc["moved"]) == (
        N_FILES, N_FILES, 0, 0, N_FILES, N_FILES)
    assert run_doc["executor"] == f"cluster:{cluster.scheduler_address}"
    assert run_doc["executor_warnings"] == []
    rows = Catalog(tmp_path / "catalog").query(
        "SELECT blake3, count(*) AS n FROM recordings GROUP BY blake3").to_pylist()
    assert sorted(r["blake3"] for r in rows) == digests
    assert {r["n"] for r in rows} == {1}
    # One version of each file's object (the store self-test's canary aside): a retried
    # file's second put found its object and stored nothing.
    ours = [k.rsplit("/", 1)[-1] for k, _ in _versions(s3_server, s3_uri)
            if k.rsplit("/", 1)[-1] in set(digests)]
    assert sorted(ours) == digests
    files = Catalog(tmp_path / "catalog").query(
        "SELECT count(*) AS n FROM ingest_files").column("n")[0].as_py()
    assert files == N_FILES


@pytest.mark.slow
def test_workers_started_with_dasks_malloc_trim_threshold_are_named_in_a_warning(
    tmp_path: Path
) -> None:
    """Workers started without infra/dask/custody.yaml (Dask's own defaults) ingest as well,
    a little slower: the run says which, in its summary and its log, and still archives."""
    dock = tmp_path / "dock"
    dock.mkdir()
    for i in range(2):
        synth.write_clean(dock / f"REC{i:04d}.mp4", 1.0, START.replace(minute=i))
    cfg = _config(tmp_path, dock, str(tmp_path / "store"))
    import dask.config

    # Dask's own default, set here so that no Dask configuration of this machine decides.
    trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 65536}
    with dask.config.set(trim), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=DASHBOARD,
            silence_logs=50) as c:
        workers = ", ".join(sorted(c.scheduler_info["workers"]))
        out, err = io.StringIO(), io.StringIO()
        code = main(["nightly", "--config", str(cfg), "--cluster", c.scheduler_address,
                     "--json"], env={}, out=out, err=err)
    run = json.loads(out.getvalue())["run"]
    assert (code, run["archived"], run["failed"], run["moved"]) == (1, 2, 0, 2)
    expected = (
        "2 of 2 cluster worker(s) run with MALLOC_TRIM_THRESHOLD_=65536, Dask's default, "
        "which makes each file's memory be mapped, zeroed and unmapped again (about 10 % "
        f"of a night of small files): {workers}; start them with "
        "DASK_CONFIG=/etc/custody/dask.yaml, a copy of infra/dask/custody.yaml (README, "
        '"Nightly job and cluster")')
    assert run["executor_warnings"] == [expected]
    logged = [json.loads(line) for line in err.getvalue().splitlines()]
    assert [(e["level"], e["warning"]) for e in logged if e["event"] == "nightly.warning"
            ] == [("warning", expected)]


# --- TLS --------------------------------------------------------------------------------
def _tls_files(d: Path) -> dict[str, Path]:
    """A CA and certificates for the scheduler, the workers and the client, made here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("custody-test-ca"))
          .issuer_name(name("custody-test-ca")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out = {"ca": d / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who in ("scheduler", "worker", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(who)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        out[f"{who}.pem"] = d / f"{who}.pem"
        out[f"{who}.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{who}.key"] = d / f"{who}.key"
        write_key(key, out[f"{who}.key"])
    return out


@pytest.mark.slow
def test_nightly_runs_through_a_cluster_started_with_tls(tmp_path: Path) -> None:
    from distributed.security import Security

    tls = _tls_files(tmp_path)
    security = Security(
        tls_ca_file=str(tls["ca"]), require_encryption=True,
        tls_scheduler_cert=str(tls["scheduler.pem"]), tls_scheduler_key=str(tls["scheduler.key"]),
        tls_worker_cert=str(tls["worker.pem"]), tls_worker_key=str(tls["worker.key"]),
        tls_client_cert=str(tls["client.pem"]), tls_client_key=str(tls["client.key"]))
    dock = tmp_path / "dock"
    dock.mkdir()
    for i in range(3):
        synth.write_clean(dock / f"REC{i:04d}.mp4", 1.0, START.replace(minute=i))
    cfg = _config(tmp_path, dock, str(tmp_path / "store"))
    with _cluster(security=security, protocol="tls://") as c:
        address = c.scheduler_address
        assert address.startswith("tls://")
        out, err = io.StringIO(), io.StringIO()
        code = main(["nightly", "--config", str(cfg), "--cluster", address, "--json",
                     "--tls-ca", str(tls["ca"]), "--tls-cert", str(tls["client.pem"]),
                     "--tls-key", str(tls["client.key"])], env={}, out=out, err=err)
        run = json.loads(out.getvalue())["run"]
        assert code == 1, err.getvalue()
        assert (run["executor"], run["archived"], run["failed"], run["moved"]) == (
            f"cluster:{address}", 3, 0, 3)
        # Without the client's certificate and key the driver does not even try.
        err = io.StringIO()
        code = main(["nightly", "--config", str(cfg), "--cluster", address,
                     "--tls-ca", str(tls["ca"])], env={}, out=io.StringIO(), err=err)
        assert code == 2
        assert err.getvalue() == (
            f"custody nightly: error: --cluster {address}: a tls:// scheduler needs "
            "tls_cert, tls_key (--tls-ca/--tls-cert/--tls-key or [custody.nightly])\n")


# --- a 2 GB file on a worker limited to 512 MiB -------------------------------------------
def _peak_rss_bytes() -> int:
    """This process's own peak RSS: VmHWM, the high-water mark of its address space. Not
    getrusage's ru_maxrss, which Linux keeps across execve: a worker spawned from a pytest
    that has grown to 700 MB would report the pytest's peak, not its own."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    raise AssertionError("no VmHWM in /proc/self/status")


@pytest.mark.slow
def test_a_2_gb_file_is_ingested_by_a_worker_limited_to_512_mib(
    tmp_path: Path, s3_server: Any, s3_uri: str, cluster: Any
) -> None:
    ffmpeg = require_tool("ffmpeg")
    dock = tmp_path / "dock"
    dock.mkdir()
    big = dock / "REC-2GB.mov"
    # 520 frames of 1080p 4:2:2 uncompressed video (QuickTime '2vuy'): 2,156,546,858 bytes
    # of valid media in seconds, where an encoder would take minutes.
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=25", "-frames:v", "520", "-c:v", "rawvideo",
                    "-pix_fmt", "uyvy422", str(big)], check=True)
    size = big.stat().st_size
    assert size > 2_000_000_000
    digest = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(big, "rb") as fh:
        while block := fh.read(8 << 20):
            digest.update(block)
    cfg = _config(tmp_path, dock, s3_uri)
    try:
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as watcher:
            limits = {w: info["memory_limit"] for w, info in
                      watcher.scheduler_info()["workers"].items()}
            pids = watcher.run(os.getpid)
            out, err = io.StringIO(), io.StringIO()
            code = main(["nightly", "--config", str(cfg), "--cluster",
                         cluster.scheduler_address, "--json"], env=s3_server.env(), out=out,
                        err=err)
            peaks = watcher.run(_peak_rss_bytes)
            assert watcher.run(os.getpid) == pids  # no worker was restarted
        run = json.loads(out.getvalue())["run"]
        assert code == 1, err.getvalue()  # RECORDING_TIME_UNKNOWN: no recording time in it
        assert (run["archived"], run["failed"], run["bytes_read"], run["verified"],
                run["moved"]) == (1, 0, size, 1, 1)
        assert set(limits.values()) == {512 * 1024 * 1024}
        assert max(peaks.values()) < 512 * 1024 * 1024
        (row,) = Catalog(tmp_path / "catalog").query(
            "SELECT blake3, size_bytes, chunk_count FROM recordings").to_pylist()
        assert (row["blake3"], row["size_bytes"], row["chunk_count"]) == (
            digest.hexdigest(), size, -(-size // (1 << 20)))
    finally:
        for p in (big, tmp_path / "done" / big.name):
            p.unlink(missing_ok=True)
