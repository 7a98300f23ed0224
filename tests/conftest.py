"""Shared test fixtures. Media generators, the S3 server and the session check that the
working tree is unchanged (`tests.treecheck`) live in their own plugins."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# Every run draws the same examples, so CI cannot fail on a new random one: a failure found
# by Hypothesis becomes a pinned test (`--hypothesis-seed` still picks other examples).
settings.register_profile("custody", derandomize=True)
settings.load_profile("custody")

pytest_plugins = ["tests.mediagen", "tests.s3server", "tests.treecheck", "pytester"]

SHARED_MEDIA = Path(
    os.environ.get("CUSTODY_SHARED_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media")
)


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The shared real-media corpus; skips where it is absent (it is not on users' machines)."""
    if not (SHARED_MEDIA / "MANIFEST.tsv").exists():
        pytest.skip(f"shared media corpus not found at {SHARED_MEDIA}")
    return SHARED_MEDIA


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not on PATH (Debian package; `make test` installs it as root)")
    return path

