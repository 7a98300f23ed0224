"""Fixtures for the store contract suite: every test that takes `store` runs once per store.

The S3 store runs against the SeaweedFS session server of `tests.s3server` (fixture
`s3_server`), in a fresh Object Lock bucket per test provisioned by `infra.provision`, so
the provisioning is exercised by every S3 test. A small multipart threshold (16 MiB, 5 MiB
parts) keeps multipart tests at ~25 MB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.storage.base import WormStore
from pipeline.storage.local import LocalStore
from pipeline.storage.s3.store import S3Store
from tests.contract._support import fresh_bucket, s3_config


@pytest.fixture
def now() -> dt.datetime:
    """Whole seconds: S3 keeps retain-until to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def s3_admin(s3_server: Any) -> Any:
    """A raw boto3 client with the server's credentials: for provisioning and attacks."""
    return s3_config(s3_server).client()


@pytest.fixture
def s3_store(s3_server: Any, s3_admin: Any) -> S3Store:
    return S3Store(fresh_bucket(s3_admin), "evidence", config=s3_config(s3_server))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WormStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        yield request.getfixturevalue("s3_store")
