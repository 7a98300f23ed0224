"""The boundary between Custody and boto3: the client, and the one translation of its errors.

Every request of the S3 modules runs inside `boundary(where, what)`, which turns a
botocore error into this project's exceptions, naming the object and the request:
`ObjectNotFound` (404 and its spellings), `StoreUnavailable` (credentials, a missing
bucket, the server down or throttling: nothing can be done here), `StoreError` for a
checksum the server refused, the `refused` class the caller names (`RetentionRefused`
for retention and holds) for a refusal, `StoreAccessDenied` for any other AccessDenied
(the role's keys may not do it), and `StoreError` for the rest. `CheckedBody`
reads a GET's body, checking its length always and its BLAKE3 when it is a whole object.

A store that cannot be used is told in the words an operator acts on: which store (its
endpoint and bucket, `store_label`) and what went wrong ("connection refused", "timed out
waiting for an answer", "no such bucket"), then the request and the object
(`plain_words`). botocore's own text names only the URL it tried, which for a part upload
ends in the object key and an upload id.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import blake3
import boto3
import botocore.config
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import SSLError as BotoSSLError

from pipeline.storage.base import ObjectNotFound, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from pipeline.storage.s3.config import S3Config

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
UNAVAILABLE = frozenset(
    {
        "NoSuchBucket",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "ServiceUnavailable",
        "SlowDown",
        "InternalError",
        "500",
        "503",
    }
)
CHECKSUM = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
)
REFUSED = frozenset({"AccessDenied", "InvalidRequest", "InvalidArgument", "403", "400"})
DENIED = frozenset({"AccessDenied", "403"})


class StoreAccessDenied(StoreError):
    """The server refused these credentials the request (AccessDenied): the role's keys may
    not do it (the analyst's read-only keys putting an audit seal). `access_denied` is what
    callers test, so they need not import this module."""

    access_denied = True



DEFAULT_RETRY_MODE = "standard"  # when neither the caller nor the profile says
DEFAULT_TOTAL_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class S3Access:
    """How a reader outside boto3 (DuckDB's httpfs) reaches the S3 a client reaches: the
    client's resolved region, endpoint and addressing, and its credentials now (resolved by
    boto3 from keys, a profile, SSO, a container or instance role). Secrets stay out of
    `repr`."""

    region: str
    endpoint_url: str | None  # None: AWS itself (the region's endpoint)
    addressing_style: str  # "path" or "virtual"
    key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def _sessions(config: S3Config) -> tuple[Any, Any]:
    """(botocore session, boto3 session) for `config`: what it says explicitly, the rest
    resolved by botocore from the profile and its files."""
    core = botocore.session.Session()
    for name, value in (("config_file", config.config_file),
                        ("credentials_file", config.credentials_file),
                        ("profile", config.profile)):
        if value:
            core.set_config_variable(name, value)
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        aws_session_token=config.session_token,
        region_name=config.region,
        botocore_session=core,
    )
    return core, session


def _s3_settings(scoped: dict[str, Any]) -> dict[str, Any]:
    """The profile's nested `s3 =` settings (addressing_style, endpoint_url, ...)."""
    s3 = scoped.get("s3")
    return s3 if isinstance(s3, dict) else {}


def _configured_endpoint(config: S3Config, scoped: dict[str, Any], full: dict[str, Any]) -> (
    str | None
):
    """The S3 endpoint the caller or the profile names (`services` section, the profile's
    `endpoint_url`, or `endpoint_url` in its `s3` settings); None for AWS itself."""
    if config.endpoint_url:
        return config.endpoint_url
    service = full.get("services", {}).get(scoped.get("services", ""), {}).get("s3", {})
    found = (service.get("endpoint_url") or scoped.get("endpoint_url")
             or _s3_settings(scoped).get("endpoint_url"))
    return str(found) if found else None


def session_client(config: S3Config) -> tuple[Any, Any]:
    """(boto3 session, S3 client) for `config`; StoreUnavailable if boto3 cannot build one
    (a profile that does not exist, an unreadable config file)."""
    try:
        core, session = _sessions(config)
        scoped = core.get_scoped_config()
        endpoint = _configured_endpoint(config, scoped, core.full_config)
        style = config.addressing_style or _s3_settings(scoped).get("addressing_style") or (
            "path" if endpoint else None)
        retries: dict[str, Any] = {}
        if config.retry_mode or "retry_mode" not in scoped:
            retries["mode"] = config.retry_mode or DEFAULT_RETRY_MODE
        if config.max_attempts or core.get_config_variable("max_attempts") is None:
            retries["total_max_attempts"] = config.max_attempts or DEFAULT_TOTAL_ATTEMPTS
        conf = botocore.config.Config(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            retries=retries or None,
            max_pool_connections=max(10, config.transfer.max_concurrency + 2),
            s3={"addressing_style": style} if style else None,
        )
        client = session.client("s3", endpoint_url=endpoint, config=conf)
    except BotoCoreError as exc:
        raise StoreUnavailable(f"S3 configuration unusable: {exc}") from exc
    return session, client


def make_client(config: S3Config) -> Any:
    """A boto3 S3 client for `config`; StoreUnavailable if boto3 cannot build one."""
    return session_client(config)[1]


def access(session: Any, client: Any, config: S3Config) -> S3Access:
    """What DuckDB needs to read what `client` reads, with the credentials as they are now
    (refreshed by boto3 when temporary ones near their expiry)."""
    try:
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except BotoCoreError as exc:
        raise StoreUnavailable(f"S3 credentials unusable: {exc}") from exc
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        where = f"profile {config.profile!r}" if config.profile else "the environment"
        raise StoreUnavailable(
            f"no AWS credentials found (keys, {where}, SSO, or an instance or container role)")
    style = (client.meta.config.s3 or {}).get("addressing_style")
    endpoint = client.meta.endpoint_url
    custom = endpoint if not _is_aws(endpoint) else None
    return S3Access(
        region=str(client.meta.region_name or "us-east-1"),  # S3's own default region
        endpoint_url=custom,
        addressing_style="path" if style == "path" else "virtual",
        key_id=frozen.access_key, secret=frozen.secret_key, token=frozen.token,
    )


def _is_aws(endpoint: str | None) -> bool:
    host = urlsplit(endpoint or "").hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn")) or not host


def error_code(exc: ClientError) -> str:
    """The S3 error code the server answered with ("NoSuchKey", "AccessDenied", ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


# What an S3 error code that leaves the store unusable means, for the operator.
_UNAVAILABLE_WORDS = {
    "NoSuchBucket": "no such bucket",
    "InvalidAccessKeyId": "credentials refused (the server knows no such access key)",
    "SignatureDoesNotMatch": "credentials refused (wrong secret key)",
    "ExpiredToken": "credentials expired",
    "InvalidToken": "credentials refused (invalid session token)",
    "TokenRefreshRequired": "credentials expired",
    "ServiceUnavailable": "the server is unavailable",
    "503": "the server is unavailable",
    "SlowDown": "the server is throttling requests",
    "InternalError": "the server failed (internal error)",
    "500": "the server failed (internal error)",
}


def store_label(client: Any, bucket: str) -> str:
    """The store as an operator finds it: "S3 store <endpoint> bucket <name>"."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "(AWS)"
    return f"S3 store {endpoint} bucket {bucket}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the error botocore wrapped (`kwargs['error']`) and their causes, once each."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = getattr(e, "kwargs", {}).get("error")
        reason = getattr(e, "reason", None)  # urllib3's MaxRetryError / ProtocolError
        todo += [x for x in (inner, reason, e.__cause__, e.__context__, *e.args)
                 if isinstance(x, BaseException)]


def plain_words(exc: BaseException) -> str:
    """What went wrong with the connection, in the words an operator acts on."""
    for e in _causes(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (the server is down or not listening)"
        if isinstance(e, socket.gaierror):
            return f"host name not found ({e.strerror or e})"
        if isinstance(e, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({e.verify_message})"
    if isinstance(exc, ConnectTimeoutError):
        return "timed out connecting (no answer to the connection request)"
    if isinstance(exc, ReadTimeoutError):
        return "timed out waiting for an answer (the server accepted but did not reply)"
    if isinstance(exc, ConnectionClosedError):
        return "connection closed by the server before it answered"
    if isinstance(exc, ProxyConnectionError):
        return f"cannot connect to the proxy {exc.kwargs.get('proxy_url', '')}".rstrip()
    if isinstance(exc, BotoSSLError):
        return f"TLS failed ({exc.kwargs.get('error', exc)})"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect ({exc.kwargs.get('error', exc)})"
    if isinstance(exc, ResponseStreamingError):
        return f"the answer broke off ({exc.kwargs.get('error', exc)})"
    if isinstance(exc, NoCredentialsError):
        return "no credentials found"
    if isinstance(exc, (PartialCredentialsError, CredentialRetrievalError)):
        return f"credentials unusable ({exc})"
    return str(exc)


def unavailable(
    store: str | None, where: str, what: str, words: str, code: str | None = None
) -> StoreUnavailable:
    """A StoreUnavailable naming the store, what went wrong, then the request and object."""
    said = f"{code}: {words}" if code else words
    if store is None:
        exc = StoreUnavailable(f"{where}: {what} failed: {said}")
    else:
        exc = StoreUnavailable(f"{store} unavailable: {said} ({what}, {where})")
    exc.words = said
    return exc


def translate(
    exc: ClientError,
    where: str,
    what: str,
    *,
    missing: str,
    refused: type[StoreError] | None = None,
    checksum: bool = True,
    store: str | None = None,
) -> StoreError:
    """The project's exception for a refused request. `missing` is the ObjectNotFound
    message; `checksum` False reports a checksum refusal like any other; `store` (a
    `store_label`) is named first when the store itself cannot be used."""
    err = exc.response.get("Error", {})
    code = error_code(exc)
    msg = err.get("Message") or code
    line = f"{where}: {what} refused by the server: {code} ({msg})"
    if code in NOT_FOUND:
        return ObjectNotFound(missing)
    if code in UNAVAILABLE:
        words = _UNAVAILABLE_WORDS.get(code, msg)
        return unavailable(store, where, what, f"{words} ({msg})" if msg != code else words,
                           code)
    if checksum and code in CHECKSUM:
        return StoreError(f"{where}: {what}: server got other bytes than sent ({code})")
    if refused is not None and code in REFUSED:
        return refused(line)
    if code in DENIED:
        return StoreAccessDenied(line)
    return StoreError(line)


@contextlib.contextmanager
def boundary(
    where: str,
    what: str,
    *,
    missing: str,
    refused: type[StoreError] | None = None,
    checksum: bool = True,
    store: str | None = None,
) -> Iterator[None]:
    """Run S3 requests; botocore errors leave as the project's (`translate`), a store that
    cannot be reached as StoreUnavailable in plain words (`plain_words`)."""
    try:
        yield
    except ClientError as exc:
        raise translate(exc, where, what, missing=missing, refused=refused,
                        checksum=checksum, store=store) from exc
    except BotoCoreError as exc:
        raise unavailable(store, where, what, plain_words(exc)) from exc


def b64_sha256(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")



class CheckedBody(io.RawIOBase):
    """The body of one GET; checks length always and BLAKE3 when it is the whole object."""

    def __init__(
        self, body: Any, *, where: str, expected_bytes: int, blake3_hex: str | None,
        store: str | None = None,
    ) -> None:
        super().__init__()
        self._body = body
        self._where = where
        self._store = store
        self._left = expected_bytes
        self._expected = expected_bytes
        self._hasher = blake3.blake3() if blake3_hex else None
        self._blake3_hex = blake3_hex
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._done:
            return 0
        view = memoryview(b).cast("B")
        try:
            data = self._body.read(len(view)) if len(view) else b""
        except FlexibleChecksumError as exc:  # botocore's own SHA-256 check of a whole object
            raise StoreError(f"{self._where}: stored bytes fail their checksum: {exc}") from exc
        except BotoCoreError as exc:
            raise unavailable(self._store, self._where, "read", plain_words(exc)) from exc
        n = len(data)
        if n == 0:
            self._done = True
            self._finish()
            return 0
        if n > self._left:
            raise StoreError(f"{self._where}: server sent more than {self._expected} bytes")
        view[:n] = data
        self._left -= n
        if self._hasher is not None:
            self._hasher.update(data)
        return n

    def _finish(self) -> None:
        if self._left:
            raise StoreError(
                f"{self._where}: read ended {self._left} bytes short of {self._expected}"
            )
        if self._hasher is not None:
            got = self._hasher.hexdigest()
            if got != self._blake3_hex:
                raise StoreError(
                    f"{self._where}: stored bytes do not match their key (BLAKE3 {got}); "
                    "the object is damaged"
                )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


