"""Where the S3 service is and how objects go up: `S3Config` (explicit, or from the AWS
environment variables) and `TransferSettings` (the multipart tunables).

Configuration is explicit: `S3Config.from_env` reads the mapping it is given (the CLI
passes its environment; `S3Store.from_uri` falls back to `os.environ` when it gets none).
Nothing here is a default that overrides the user's AWS configuration: what the mapping
does not say (region, endpoint, addressing style, retries, credentials) is left to boto3's
own resolution from the profile (`AWS_PROFILE`, `~/.aws/config` or `AWS_CONFIG_FILE`,
`~/.aws/credentials` or `AWS_SHARED_CREDENTIALS_FILE`, the profile's `services` section and
`s3` settings), SSO, container and instance roles. The boto3 client itself is built at the
boundary, `client.make_client`, which also says what the project chooses when nobody
said anything (path-style addressing for a custom endpoint, standard retries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.storage.base import StoreUnavailable

MiB = 1 << 20
S3_MIN_PART = 5 * MiB  # every part but the last must be at least this (AWS)
S3_MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """Multipart tunables, named as boto3's managed-transfer `TransferConfig` names them."""

    multipart_threshold_bytes: int = 64 * MiB
    multipart_chunk_bytes: int = 16 * MiB
    max_concurrency: int = 8

    def __post_init__(self) -> None:
        if self.multipart_chunk_bytes < S3_MIN_PART:
            raise ValueError(f"multipart_chunk_bytes must be at least {S3_MIN_PART} (S3 minimum)")
        if self.multipart_threshold_bytes < 1 or self.max_concurrency < 1:
            raise ValueError("multipart_threshold_bytes and max_concurrency must be positive")

    def part_bytes(self, size_bytes: int) -> int:
        """The part size for an object of `size_bytes`: grown, in whole MiB, to fit 10,000 parts."""
        need = math.ceil(size_bytes / S3_MAX_PARTS)
        return max(self.multipart_chunk_bytes, math.ceil(need / MiB) * MiB)

    def transfer_config(self) -> Any:
        """The same settings as a boto3 `TransferConfig` (for benchmarks against `upload_file`)."""
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold_bytes,
            multipart_chunksize=self.multipart_chunk_bytes,
            max_concurrency=self.max_concurrency,
        )


LOCK_EXPLICIT = "explicit"
LOCK_BUCKET_DEFAULT = "bucket_default"
LOCK_HEADERS = (LOCK_EXPLICIT, LOCK_BUCKET_DEFAULT)
LOCK_HEADERS_VAR = "CUSTODY_S3_LOCK_HEADERS"  # `[custody.s3] lock_headers`
LOCK_MIN_DAYS_VAR = "CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS"
STALE_UPLOAD_VAR = "CUSTODY_S3_STALE_UPLOAD_AFTER_S"


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where the S3 service is and who we are there. Secrets are kept out of `repr`."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    # None: the profile's `s3 = addressing_style`, else "path" with a custom endpoint
    addressing_style: str | None = None
    transfer: TransferSettings = field(default_factory=TransferSettings)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int | None = None  # total attempts; None: the profile's, else 6
    retry_mode: str | None = None  # None: the profile's, else "standard"
    config_file: str | None = None  # None: ~/.aws/config
    credentials_file: str | None = None  # None: ~/.aws/credentials
    # "explicit": every put sends its lock (mode and retain-until). "bucket_default": puts
    # send no lock headers (put-only keys such as the auxiliary's may not) and rely on the
    # bucket's default COMPLIANCE retention, read back and checked after each put.
    lock_headers: str = LOCK_EXPLICIT
    # With "bucket_default": the least retention (days after the object's LastModified) the
    # bucket's default must give, or the put fails.
    bucket_default_min_days: int = 1
    # A run's start aborts the store's multipart uploads older than this (a killed run's;
    # `S3Store.clear_staging`). No single file's upload lasts 6 hours, and last night's
    # leftovers are older: a concurrent run's live upload is never touched.
    stale_upload_after_s: int = 6 * 3600
    # After a request found the store unusable (retries spent), the requests of the next
    # this-many seconds fail at once with the same words (0: every request tries).
    unavailable_hold_s: float = 30.0

    def __post_init__(self) -> None:
        if self.lock_headers not in LOCK_HEADERS:
            raise StoreUnavailable(f"lock_headers = {self.lock_headers!r}: expected one of "
                                   f"{', '.join(LOCK_HEADERS)}")
        if self.bucket_default_min_days < 1:
            raise StoreUnavailable(f"bucket_default_min_days = {self.bucket_default_min_days}: "
                                   "expected a positive number of days")
        if self.stale_upload_after_s < 0 or self.unavailable_hold_s < 0:
            raise StoreUnavailable("stale_upload_after_s and unavailable_hold_s must not be "
                                   "negative")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, transfer: TransferSettings | None = None
    ) -> S3Config:
        """The usual AWS variables: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_REGION
        (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
        AWS_PROFILE, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_CONFIG_FILE,
        AWS_SHARED_CREDENTIALS_FILE, and Custody's CUSTODY_S3_LOCK_HEADERS,
        CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS, CUSTODY_S3_STALE_UPLOAD_AFTER_S. A variable not
        set is left to the profile (or the default here)."""

        def get(*names: str) -> str | None:
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        return cls(
            endpoint_url=get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            region=get("AWS_REGION", "AWS_DEFAULT_REGION"),
            access_key_id=get("AWS_ACCESS_KEY_ID"),
            secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            session_token=get("AWS_SESSION_TOKEN"),
            profile=get("AWS_PROFILE"),
            transfer=transfer or TransferSettings(),
            max_attempts=_attempts(get("AWS_MAX_ATTEMPTS")),
            retry_mode=get("AWS_RETRY_MODE"),
            config_file=get("AWS_CONFIG_FILE"),
            credentials_file=get("AWS_SHARED_CREDENTIALS_FILE"),
            lock_headers=get(LOCK_HEADERS_VAR) or LOCK_EXPLICIT,
            bucket_default_min_days=_days(get(LOCK_MIN_DAYS_VAR)),
            stale_upload_after_s=_seconds(STALE_UPLOAD_VAR, get(STALE_UPLOAD_VAR), 6 * 3600),
        )

    def client(self) -> Any:
        """A boto3 S3 client for this configuration (infra tooling uses it too)."""
        from pipeline.storage.s3.client import make_client

        return make_client(self)


def _attempts(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise StoreUnavailable(f"AWS_MAX_ATTEMPTS must be a positive integer, not {text!r}")
    return n


def _days(text: str | None) -> int:
    if text is None:
        return 1
    try:
        return int(text)  # __post_init__ refuses < 1
    except ValueError:
        raise StoreUnavailable(f"{LOCK_MIN_DAYS_VAR} must be a positive integer, "
                               f"not {text!r}") from None


def _seconds(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise StoreUnavailable(f"{name} must be a whole number of seconds, not {text!r}")
    return n
