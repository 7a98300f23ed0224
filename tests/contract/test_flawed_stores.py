"""Flawed stores (issue 11): real S3 endpoints that break the WORM contract must fail the self-test.

Each store is the SeaweedFS session server behind `tests.flawed_s3`'s proxy with one flaw:
the store client really talks to the proxy, the proxy really forwards everything but its
flaw to SeaweedFS. For each flaw: `selftest()` fails and names exactly the checks that
fail (the others pass), `custody store selftest` exits 1 showing them as FAIL, and
`custody ingest` is refused unless `--allow-unverified-store`. A control proves the proxy
itself transparent: without a flaw the self-test passes through it.

Where a flaw makes the canary version disappear (an accepted delete), the later checks on
that version fail with it: the locked version is gone, so "overwrite left it unchanged"
and "its retention was not shortened" cannot hold either.

Flaws the self-test does not catch yet are `xfail(strict=True)`: the fix is proposed in
issue 11 (a stricter self-test); once it lands the xfail turns into a failure and the
mark goes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.storage.s3.store import S3Store
from pipeline.storage.selftest import SelftestReport, selftest
from tests.contract._support import MiB, fresh_bucket, s3_config
from tests.flawed_s3 import (
    DeleteAccepted,
    DeleteAnswersError,
    Flaw,
    FlawedS3,
    GovernanceForCompliance,
    MultipartLockDropped,
    RetentionAnswersError,
    ShortenAccepted,
    flawed_s3,
)
from tests.mediagen import Generated

MULTIPART = "multipart-canary-locked"  # the check the proposed fix adds (a multipart canary)
ALL_SINGLE_PART = (
    "bucket-object-lock",
    "canary-locked",
    "delete-version-refused",
    "overwrite-refused",
    "shorten-retention-refused",
)


@dataclass(frozen=True)
class Flawed:
    """A flaw and the self-test checks it must make fail (all the others must pass)."""

    make: Callable[[], Flaw]
    failing: frozenset[str]
    multipart_fails: bool = False  # also fails the multipart canary


GOVERNANCE = Flawed(
    GovernanceForCompliance,
    frozenset(ALL_SINGLE_PART) - {"bucket-object-lock"},  # delete with bypass succeeds
    multipart_fails=True,
)
GOVERNANCE_LYING = Flawed(  # HEAD says COMPLIANCE: only the bypass delete shows the downgrade
    lambda: GovernanceForCompliance(lie=True),
    frozenset({"delete-version-refused", "overwrite-refused", "shorten-retention-refused"}),
)
DELETE_500 = Flawed(lambda: DeleteAnswersError(500, "InternalError"),
                    frozenset({"delete-version-refused"}))  # fmt: skip
DELETE_503 = Flawed(lambda: DeleteAnswersError(503, "SlowDown"),
                    frozenset({"delete-version-refused"}))  # fmt: skip
DELETE_400 = Flawed(lambda: DeleteAnswersError(400, "InvalidRequest"),
                    frozenset({"delete-version-refused"}))  # fmt: skip
DELETE_501 = Flawed(lambda: DeleteAnswersError(501, "NotImplemented"),
                    frozenset({"delete-version-refused"}))  # fmt: skip
DELETE_ACCEPTED = Flawed(
    DeleteAccepted,
    frozenset({"delete-version-refused", "overwrite-refused", "shorten-retention-refused"}),
)
SHORTEN_ACCEPTED = Flawed(ShortenAccepted, frozenset({"shorten-retention-refused"}))
SHORTEN_ERROR = Flawed(RetentionAnswersError, frozenset({"shorten-retention-refused"}))
MULTIPART_DROPPED = Flawed(MultipartLockDropped, frozenset(), multipart_fails=True)


FLAWS = [
    pytest.param(GOVERNANCE, id="compliance-downgraded-to-governance"),
    pytest.param(GOVERNANCE_LYING, id="governance-reported-as-compliance"),
    pytest.param(DELETE_500, id="delete-answers-500-InternalError"),
    pytest.param(DELETE_503, id="delete-answers-503-SlowDown"),
    pytest.param(DELETE_400, id="delete-answers-400-InvalidRequest"),
    pytest.param(DELETE_501, id="delete-answers-501-NotImplemented"),
    pytest.param(DELETE_ACCEPTED, id="delete-accepted"),
    pytest.param(SHORTEN_ACCEPTED, id="retention-shortened"),
    pytest.param(SHORTEN_ERROR, id="shortening-answers-501"),
    pytest.param(MULTIPART_DROPPED, id="multipart-lock-headers-dropped"),
]
# Through the CLI: one flaw of each of issue 11's five (the library tests take the variants;
# the CLI's client makes 5 attempts, so a retried 5xx would only add backoff).
CLI_FLAWS = [p for p in FLAWS if p.id in (
    "compliance-downgraded-to-governance", "delete-answers-400-InvalidRequest",
    "delete-accepted", "retention-shortened", "multipart-lock-headers-dropped",
)]  # fmt: skip


def expected_failures(flawed: Flawed, names: set[str]) -> set[str]:
    """The checks `flawed` must fail, of the self-test's check `names`."""
    assert MULTIPART in names, "the self-test has no multipart canary"
    multipart = {MULTIPART} if flawed.multipart_fails else set()
    return set(flawed.failing) | multipart


def failed(report: SelftestReport) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[Callable[[Flaw | None], FlawedS3]]:
    """Start proxies to the session SeaweedFS; each stops at teardown."""
    import contextlib

    with contextlib.ExitStack() as stack:
        yield lambda flaw: stack.enter_context(flawed_s3(s3_server, flaw))


def store_through(proxy: FlawedS3, s3_server: Any, s3_admin: Any) -> S3Store:
    """An S3 store in a fresh provisioned bucket, its client pointed at the proxy."""
    config = dataclasses.replace(s3_config(s3_server), endpoint_url=proxy.endpoint_url)
    return S3Store(fresh_bucket(s3_admin), "evidence", config=config)


def cli(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- the control: the proxy alone changes nothing -----------------------------------------
def test_selftest_passes_through_the_proxy_without_a_flaw(
    proxy: Callable[[Flaw | None], FlawedS3], s3_server: Any, s3_admin: Any
) -> None:
    px = proxy(None)
    report = selftest(store_through(px, s3_server, s3_admin))
    assert report.passed and report.tamper_proof, report.summary()
    assert {"PutObject", "HeadObject", "DeleteObject", "PutObjectRetention"} <= set(px.seen)


def test_cli_selftest_passes_through_the_proxy_without_a_flaw(
    proxy: Callable[[Flaw | None], FlawedS3], s3_server: Any, s3_admin: Any, tmp_path: Path
) -> None:
    px = proxy(None)
    uri = f"s3://{fresh_bucket(s3_admin)}/evidence"
    code, out, err = cli(px.env(), "store", "selftest", "--store", uri,
                         "--catalog", str(tmp_path / "catalog"))  # fmt: skip
    assert code == 0, out + err
    assert "store self-test PASSED" in out


# --- each flaw fails the self-test -----------------------------------------------------------
@pytest.mark.parametrize("flawed", FLAWS)
def test_selftest_fails_the_flawed_store_naming_the_broken_check(
    flawed: Flawed, proxy: Callable[[Flaw | None], FlawedS3], s3_server: Any, s3_admin: Any
) -> None:
    px = proxy(flawed.make())
    report = selftest(store_through(px, s3_server, s3_admin))
    assert px.flaw.hits > 0, f"the flaw {px.flaw} was never exercised"
    assert report.passed is False, report.summary()
    names = {c.name for c in report.checks}
    assert failed(report) == expected_failures(flawed, names), report.summary()
    assert set(ALL_SINGLE_PART) <= {c.name for c in report.checks}


@pytest.mark.parametrize("flawed", CLI_FLAWS)
def test_cli_selftest_exits_1_showing_the_broken_check(
    flawed: Flawed,
    proxy: Callable[[Flaw | None], FlawedS3],
    s3_admin: Any,
    tmp_path: Path,
) -> None:
    px = proxy(flawed.make())
    uri = f"s3://{fresh_bucket(s3_admin)}/evidence"
    code, out, err = cli(px.env(), "store", "selftest", "--store", uri,
                         "--catalog", str(tmp_path / "catalog"))  # fmt: skip
    assert code == 1, out + err
    assert "store self-test FAILED" in out
    shown = {
        line.split()[1].rstrip(":"): line.split()[0]
        for line in out.splitlines()
        if line.startswith(("FAIL ", "PASS "))
    }
    fails = {name for name, verdict in shown.items() if verdict == "FAIL"}
    assert fails == expected_failures(flawed, set(shown)), out


@pytest.mark.parametrize("flawed", CLI_FLAWS)
def test_ingest_into_the_flawed_store_is_refused_naming_the_selftest(
    flawed: Flawed,
    proxy: Callable[[Flaw | None], FlawedS3],
    s3_admin: Any,
    tmp_path: Path,
    clean_recording: Generated,
) -> None:
    px = proxy(flawed.make())
    uri = f"s3://{fresh_bucket(s3_admin)}/evidence"
    code, _, err = cli(px.env(), "ingest", str(clean_recording.path), "--store", uri,
                       "--catalog", str(tmp_path / "catalog"))  # fmt: skip
    assert code == 2, err
    assert "self-test failed" in err and "--allow-unverified-store" in err
    recordings = Catalog(tmp_path / "catalog").query("SELECT count(*) AS n FROM recordings")
    assert recordings.column("n")[0].as_py() == 0


def test_ingest_into_a_flawed_store_goes_on_when_knowingly_overridden(
    proxy: Callable[[Flaw | None], FlawedS3],
    s3_admin: Any,
    tmp_path: Path,
    clean_recording: Generated,
) -> None:
    px = proxy(DeleteAccepted())
    uri, cat = f"s3://{fresh_bucket(s3_admin)}/evidence", tmp_path / "catalog"
    code, _, err = cli(px.env(), "ingest", str(clean_recording.path), "--store", uri,
                       "--catalog", str(cat), "--allow-unverified-store")  # fmt: skip
    assert code in (0, 1), err
    assert "store self-test FAILED and was overridden" in err
    runs = Catalog(cat).query("SELECT store_selftest FROM ingest_runs WHERE event = 'finished'")
    assert runs.to_pylist() == [{"store_selftest": "failed_overridden"}]


# --- the multipart flaw is real on the wire --------------------------------------------------
def test_multipart_flaw_really_stores_the_object_without_its_lock(
    proxy: Callable[[Flaw | None], FlawedS3], s3_server: Any, s3_admin: Any, now: dt.datetime
) -> None:
    """Through the proxy, CreateMultipartUpload's COMPLIANCE date is lost; SeaweedFS applies
    the bucket default (1 day) instead, as it does for an upload sent without lock headers."""
    import base64
    import hashlib

    px = proxy(MultipartLockDropped())
    client = dataclasses.replace(s3_config(s3_server), endpoint_url=px.endpoint_url).client()
    bucket, asked = fresh_bucket(s3_admin), now + dt.timedelta(hours=1)
    part = b"m" * (5 * MiB)
    sha = base64.b64encode(hashlib.sha256(part).digest()).decode()
    upload = client.create_multipart_upload(
        Bucket=bucket, Key="mpu", ChecksumAlgorithm="SHA256",
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=asked,
    )["UploadId"]  # fmt: skip
    etag = client.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=part,
                              ChecksumAlgorithm="SHA256", ChecksumSHA256=sha)["ETag"]  # fmt: skip
    version = client.complete_multipart_upload(
        Bucket=bucket, Key="mpu", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag, "ChecksumSHA256": sha}]},
    )["VersionId"]  # fmt: skip
    head = s3_admin.head_object(Bucket=bucket, Key="mpu", VersionId=version)  # SeaweedFS itself
    assert px.flaw.hits == 1
    assert head["ObjectLockRetainUntilDate"] != asked
    assert head["ObjectLockRetainUntilDate"] >= now + dt.timedelta(hours=23)  # the default
