"""Flawed S3 stores: a small HTTP proxy in front of the SeaweedFS test server, with one flaw.

The store under test talks to the proxy (127.0.0.1, an ephemeral port, one thread per
connection); the proxy forwards every request to the real SeaweedFS and every answer back,
byte for byte, except where its `Flaw` rewrites a request, an answer, or answers itself.
So everything but the flaw is real S3 Object Lock behaviour, and a flaw is a server that
breaks the WORM contract in one way.

Signatures: the client signs for the proxy's host:port and the proxy keeps the Host header,
so an unchanged request verifies at SeaweedFS as sent. A request the flaw rewrote is
signed again (botocore's `S3SigV4Auth`, the test credentials), as a server with that flaw
would have accepted it. With no flaw the proxy is transparent (a test proves it: the
self-test passes through it).

The flaws, each one of issue 11's "flawed stores":
- `GovernanceForCompliance`: COMPLIANCE becomes GOVERNANCE on the way in (lock headers of
  PutObject and CreateMultipartUpload, the retention XML); with `lie=True` the answers say
  COMPLIANCE again, so only behaviour shows the downgrade.
- `DeleteAnswersError`: a version delete is answered with an error that is no refusal
  (500 InternalError, 503 SlowDown, 400 InvalidRequest...); nothing is deleted.
- `RetentionAnswersError`: the same for PutObjectRetention (a shortening "refused" with 501).
- `DeleteAccepted`: a version delete is answered 204 and the version is gone from then on
  (GET/HEAD 404 NoSuchVersion, left out of ListObjectVersions): a server that does not
  enforce the lock.
- `ShortenAccepted`: a PutObjectRetention with an earlier date than the current one, which
  SeaweedFS refuses, is answered 200, and HEAD, GET and GetObjectRetention report the
  shortened date from then on.
- `MultipartLockDropped`: CreateMultipartUpload goes on without its `x-amz-object-lock-*`
  headers, so the object gets the bucket default (or no lock at all).

And one that breaks no WORM rule but fails mid-upload (issue 14, the store going away):
`PartAnswersError` answers part uploads from one part on with a 503.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import re
import socket
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UPSTREAM_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 5.0  # a keep-alive connection idle this long is closed (teardown does not wait)
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
_LOCK_HEADERS = (
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)
_SUBRESOURCES = frozenset(
    {"retention", "legal-hold", "uploads", "uploadId", "partNumber", "versions", "tagging",
     "acl", "object-lock", "versioning", "delete", "attributes", "lifecycle", "policy"}
)  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One client request as the proxy received it. `changed` marks one to sign again."""

    method: str
    target: str  # the raw request-target: /bucket/key?query, percent-encoded as signed
    headers: tuple[tuple[str, str], ...]
    body: bytes
    changed: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def bucket_key(self) -> tuple[str, str]:
        """(bucket, key) of a path-style request; key is "" for a bucket request."""
        bucket, _, key = self.path.lstrip("/").partition("/")
        return unquote(bucket), unquote(key)

    @property
    def version_id(self) -> str | None:
        return self.query.get("versionId", [None])[0]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def operation(self) -> str:
        """The S3 operation, as far as the flaws need to tell them apart."""
        q, (_, key), m = self.query, self.bucket_key, self.method
        if not key:
            return "ListObjectVersions" if m == "GET" and "versions" in q else f"Bucket{m}"
        if "retention" in q:
            return {"GET": "GetObjectRetention", "PUT": "PutObjectRetention"}.get(m, m)
        if m == "POST" and "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload"}.get(
                m, "AbortMultipartUpload" if m == "DELETE" else m
            )
        if _SUBRESOURCES & q.keys():
            return f"Object{m}:{sorted(_SUBRESOURCES & q.keys())[0]}"
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject",
                "DELETE": "DeleteObject"}.get(m, m)  # fmt: skip

    def with_header(self, name: str, value: str | None) -> Request:
        """A copy with `name` set to `value` (None: removed), to be signed again."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        added = ((name, value),) if value is not None else ()
        return replace(self, headers=kept + added, changed=True)

    def with_body(self, body: bytes) -> Request:
        """A copy with another body; its length and checksums follow, to be signed again."""
        new = replace(self, body=body, changed=True).with_header("Content-Length", str(len(body)))
        if new.header("Content-MD5") is not None:
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            new = new.with_header("Content-MD5", md5)
        for name, value in _checksums(body).items():
            if new.header(name) is not None:
                new = new.with_header(name, value)
        return new


def _checksums(body: bytes) -> dict[str, str]:
    return {
        "x-amz-checksum-crc32": base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode(),
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "x-amz-checksum-sha1": base64.b64encode(hashlib.sha1(body).digest()).decode(),
    }


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def with_header(self, name: str, value: str | None) -> Answer:
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=kept + (((name, value),) if value is not None else ()))

    def with_body(self, body: bytes) -> Answer:
        return replace(self, body=body).with_header("Content-Length", str(len(body)))


def s3_error(status: int, code: str, message: str, resource: str, *, head: bool = False) -> Answer:
    """An S3 error answer as a real server writes it (no body to a HEAD)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    ).encode()
    headers = (("Content-Type", "application/xml"), ("x-amz-request-id", uuid.uuid4().hex))
    if head:
        return Answer(status, (*headers, ("Content-Length", "0")))
    return Answer(status, (*headers, ("Content-Length", str(len(body)))), body)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


# --- flaws ----------------------------------------------------------------------------------
class Flaw:
    """Forwards everything unchanged; a subclass rewrites what its flaw is about.

    `on_request` returns the request to forward (maybe rewritten) or an `Answer` given in
    place of the server's; `on_answer` may rewrite the server's answer. `hits` counts the
    requests or answers the flaw changed, so a test can show the flaw was exercised."""

    name = "none"

    def __init__(self) -> None:
        self.hits = 0
        self._lock = threading.Lock()

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        return req

    def on_answer(self, req: Request, ans: Answer, proxy: FlawedS3) -> Answer:
        return ans

    def __repr__(self) -> str:
        return self.name


class GovernanceForCompliance(Flaw):
    """COMPLIANCE is stored as GOVERNANCE; with `lie`, the answers still say COMPLIANCE."""

    def __init__(self, *, lie: bool = False) -> None:
        super().__init__()
        self.lie = lie
        self.name = "governance-for-compliance" + ("-lying" if lie else "")

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        op = req.operation()
        if op in ("PutObject", "CreateMultipartUpload") and (
            req.header("x-amz-object-lock-mode") == "COMPLIANCE"
        ):
            self.hit()
            return req.with_header("x-amz-object-lock-mode", "GOVERNANCE")
        if op == "PutObjectRetention" and b"<Mode>COMPLIANCE</Mode>" in req.body:
            self.hit()
            return req.with_body(
                req.body.replace(b"<Mode>COMPLIANCE</Mode>", b"<Mode>GOVERNANCE</Mode>")
            )
        return req

    def on_answer(self, req: Request, ans: Answer, proxy: FlawedS3) -> Answer:
        if not self.lie:
            return ans
        if ans.header("x-amz-object-lock-mode") == "GOVERNANCE":
            self.hit()
            ans = ans.with_header("x-amz-object-lock-mode", "COMPLIANCE")
        if req.operation() == "GetObjectRetention" and b"<Mode>GOVERNANCE</Mode>" in ans.body:
            self.hit()
            ans = ans.with_body(
                ans.body.replace(b"<Mode>GOVERNANCE</Mode>", b"<Mode>COMPLIANCE</Mode>")
            )
        return ans


class DeleteAnswersError(Flaw):
    """A version delete gets an error that is not a refusal; the server did nothing."""

    def __init__(self, status: int = 500, code: str = "InternalError") -> None:
        super().__init__()
        self.status, self.code = status, code
        self.name = f"delete-answers-{status}-{code}"

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        if req.operation() == "DeleteObject" and req.version_id:
            self.hit()
            return s3_error(self.status, self.code, f"{self.code} (flawed store)", req.path)
        return req


class RetentionAnswersError(Flaw):
    """A PutObjectRetention gets an error that is not a refusal; the server did nothing."""

    def __init__(self, status: int = 501, code: str = "NotImplemented") -> None:
        super().__init__()
        self.status, self.code = status, code
        self.name = f"retention-answers-{status}-{code}"

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        if req.operation() == "PutObjectRetention":
            self.hit()
            return s3_error(self.status, self.code, f"{self.code} (flawed store)", req.path)
        return req


class DeleteAccepted(Flaw):
    """A version delete is accepted (204) and the version is gone from then on."""

    name = "delete-accepted"

    def __init__(self) -> None:
        super().__init__()
        self.deleted: set[tuple[str, str]] = set()  # (path, version id)

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        op, version = req.operation(), req.version_id
        if op == "DeleteObject" and version:
            self.hit()
            with self._lock:
                self.deleted.add((req.path, version))
            return Answer(204, (("x-amz-version-id", version), ("Content-Length", "0")))
        if version and (req.path, version) in self.deleted:
            self.hit()
            return s3_error(404, "NoSuchVersion", "The specified version does not exist.",
                            req.path, head=req.method == "HEAD")  # fmt: skip
        return req

    def on_answer(self, req: Request, ans: Answer, proxy: FlawedS3) -> Answer:
        op = req.operation()
        if op == "ListObjectVersions" and self.deleted:
            bucket, _ = req.bucket_key
            body = ans.body.decode()

            def gone(m: re.Match[str]) -> str:
                key = re.search(r"<Key>(.*?)</Key>", m.group(0))
                vid = re.search(r"<VersionId>(.*?)</VersionId>", m.group(0))
                if key and vid and (f"/{bucket}/{key.group(1)}", vid.group(1)) in self.deleted:
                    self.hit()
                    return ""
                return m.group(0)

            return ans.with_body(re.sub(r"<Version>.*?</Version>", gone, body, flags=re.S).encode())
        vid = ans.header("x-amz-version-id")
        if op in ("GetObject", "HeadObject") and vid and (req.path, vid) in self.deleted:
            self.hit()
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", req.path,
                            head=req.method == "HEAD")  # fmt: skip
        return ans


class ShortenAccepted(Flaw):
    """An earlier retain-until (same mode), refused by SeaweedFS, is answered 200 and shown."""

    name = "shorten-accepted"

    def __init__(self) -> None:
        super().__init__()
        self.shortened: dict[tuple[str, str], dt.datetime] = {}  # (path, version) -> until

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        if req.operation() != "PutObjectRetention" or not req.version_id:
            return req
        mode = re.search(rb"<Mode>(\w+)</Mode>", req.body)
        until = re.search(rb"<RetainUntilDate>(.*?)</RetainUntilDate>", req.body)
        if not (mode and until):
            return req
        current = proxy.upstream_retention(req.path, req.version_id)
        wanted = _parse_iso(until.group(1).decode())
        if current is None or mode.group(1).decode() != current[0] or wanted >= current[1]:
            return req  # not a shortening: the server decides
        self.hit()
        with self._lock:
            self.shortened[(req.path, req.version_id)] = wanted.replace(microsecond=0)
        return Answer(200, (("Content-Length", "0"),))

    def on_answer(self, req: Request, ans: Answer, proxy: FlawedS3) -> Answer:
        vid = req.version_id or ans.header("x-amz-version-id")
        short = self.shortened.get((req.path, vid)) if vid else None
        if short is None or ans.status != 200:
            return ans
        if ans.header("x-amz-object-lock-retain-until-date") is not None:
            self.hit()
            ans = ans.with_header("x-amz-object-lock-retain-until-date", _iso(short))
        if req.operation() == "GetObjectRetention":
            self.hit()
            ans = ans.with_body(
                re.sub(
                    rb"<RetainUntilDate>.*?</RetainUntilDate>",
                    f"<RetainUntilDate>{_iso(short)}</RetainUntilDate>".encode(),
                    ans.body,
                )
            )
        return ans


class MultipartLockDropped(Flaw):
    """CreateMultipartUpload goes on without its Object Lock headers."""

    name = "multipart-lock-dropped"

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        if req.operation() != "CreateMultipartUpload":
            return req
        if not any(req.header(h) is not None for h in _LOCK_HEADERS):
            return req
        self.hit()
        for h in _LOCK_HEADERS:
            req = req.with_header(h, None)
        return req


class PartAnswersError(Flaw):
    """UploadPart from part `from_part` on gets an error that is no refusal (503: the server
    cannot take it now); everything else, AbortMultipartUpload too, goes through."""

    def __init__(self, status: int = 503, code: str = "ServiceUnavailable",
                 from_part: int = 2) -> None:
        super().__init__()
        self.status, self.code, self.from_part = status, code, from_part
        self.name = f"part-answers-{status}-{code}"

    def on_request(self, req: Request, proxy: FlawedS3) -> Request | Answer:
        number = req.query.get("partNumber", ["0"])[0]
        if req.operation() == "UploadPart" and int(number) >= self.from_part:
            self.hit()
            return s3_error(self.status, self.code, f"{self.code} (flawed store)", req.path)
        return req


# --- the proxy ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        req = Request(self.command, self.path, tuple(self.headers.items()), self._read_body())
        ans = self.server.proxy.handle(req)
        reason = self.responses.get(ans.status, ("",))[0]
        head = [f"HTTP/1.1 {ans.status} {reason}"]
        head += [f"{k}: {v}" for k, v in ans.headers if k.lower() not in _HOP_BY_HOP]
        if self.command != "HEAD" and ans.header("Content-Length") is None:
            head.append(f"Content-Length: {len(ans.body)}")
        with_body = self.command != "HEAD" and ans.status not in (204, 304)
        # One write for head and body: no Nagle / delayed-ACK stall per request.
        self.wfile.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n"
                         + (ans.body if with_body else b""))  # fmt: skip
        self.log_request(ans.status)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: FlawedS3) -> None:
        self.proxy = proxy
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._open_lock:
            (self._open.add if add else self._open.discard)(conn)

    def close_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@dataclass
class FlawedS3:
    """A proxy to `upstream` (an `S3Server`) with one `flaw`; use it as a context manager."""

    upstream: Any
    flaw: Flaw = field(default_factory=Flaw)
    seen: list[str] = field(default_factory=list, init=False)  # operations, in arrival order
    _server: _Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "the proxy is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The AWS variables a CLI run through the proxy sees."""
        return {**self.upstream.env(), "AWS_ENDPOINT_URL_S3": self.endpoint_url}

    def __enter__(self) -> FlawedS3:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"flawed-s3-{self.flaw.name}", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=2)

    # --- forwarding -------------------------------------------------------------------------
    def handle(self, req: Request) -> Answer:
        self.seen.append(req.operation())
        try:
            got = self.flaw.on_request(req, self)
            if isinstance(got, Answer):
                return got
            return self.flaw.on_answer(req, self.forward(got), self)
        except Exception as exc:  # a bug in a flaw must show, not hang the client
            return s3_error(500, "ProxyError", f"flawed-s3 proxy: {exc!r}", req.path,
                            head=req.method == "HEAD")  # fmt: skip

    def forward(self, req: Request) -> Answer:
        """Send `req` to SeaweedFS (signed again if it was changed) and read the whole answer."""
        if req.changed:
            req = self._sign(req)
        parts = urlsplit(self.upstream.endpoint_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
            for k, v in req.headers:
                if k.lower() not in _HOP_BY_HOP:
                    conn.putheader(k, v)
            if req.body and req.header("Content-Length") is None:  # it came chunked
                conn.putheader("Content-Length", str(len(req.body)))
            conn.endheaders(req.body or None)
            resp = conn.getresponse()
            body = resp.read()
            return Answer(resp.status, tuple(resp.getheaders()), body)
        finally:
            conn.close()

    def _sign(self, req: Request) -> Request:
        """Sign `req` again with the test credentials, for the Host the client signed."""
        host = req.header("Host") or urlsplit(self.upstream.endpoint_url).netloc
        drop = {"authorization", "x-amz-date", "x-amz-content-sha256", "host", "expect"}
        headers = {k: v for k, v in req.headers if k.lower() not in drop}
        aws = AWSRequest(method=req.method, url=f"http://{host}{req.target}", data=req.body,
                         headers=headers)  # fmt: skip
        creds = Credentials(self.upstream.access_key_id, self.upstream.secret_access_key)
        S3SigV4Auth(creds, "s3", self.upstream.region).add_auth(aws)
        signed = (*aws.headers.items(), ("Host", host))
        return replace(req, headers=signed, changed=False)

    def upstream_retention(self, path: str, version: str) -> tuple[str, dt.datetime] | None:
        """(mode, retain-until) of a version as SeaweedFS itself has it, or None."""
        req = Request("GET", f"{path}?retention&versionId={version}", (), b"", changed=True)
        ans = self.forward(req)
        mode = re.search(rb"<Mode>(\w+)</Mode>", ans.body)
        until = re.search(rb"<RetainUntilDate>(.*?)</RetainUntilDate>", ans.body)
        if ans.status != 200 or not (mode and until):
            return None
        return mode.group(1).decode(), _parse_iso(until.group(1).decode())


@contextlib.contextmanager
def flawed_s3(upstream: Any, flaw: Flaw | None = None) -> Iterator[FlawedS3]:
    """A running proxy to `upstream` with `flaw` (None: a transparent one)."""
    with FlawedS3(upstream, flaw or Flaw()) as proxy:
        yield proxy
