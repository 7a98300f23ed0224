"""AWS conventions (issue 10 item 3): the S3 store and the S3 catalog take region, endpoint,
addressing style, retries and credentials from the profile or the environment, and
nothing is hard-coded. Against SeaweedFS, with a temporary ~/.aws in a region other than
us-east-1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.core import Catalog
from pipeline.catalog.s3parts import S3Parts
from pipeline.storage.s3.store import S3Config, S3Store
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated

ROOT = Path(__file__).resolve().parents[2]
REGION = "cn-north-1"


def _home(tmp_path: Path, server: Any, *, retries: str = "") -> Path:
    """A home directory whose ~/.aws has profile `cn`: its region, its endpoint in a
    `services` section, path-style addressing, its keys in the credentials file."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        f"[profile cn]\nregion = {REGION}\nservices = seaweed\n{retries}"
        "s3 =\n  addressing_style = path\n"
        f"[services seaweed]\ns3 =\n  endpoint_url = {server.endpoint_url}\n")
    (home / ".aws" / "credentials").write_text(
        f"[cn]\naws_access_key_id = {server.access_key_id}\n"
        f"aws_secret_access_key = {server.secret_access_key}\n")
    return home


def _profile_env(home: Path, **more: str) -> dict[str, str]:
    """The mapping the CLI hands the library: the profile and where its files are."""
    return {"AWS_PROFILE": "cn", "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"), **more}


def test_the_store_and_the_catalog_take_region_endpoint_and_keys_from_the_profile(
    s3_server: Any, tmp_path: Path
) -> None:
    home = _home(tmp_path, s3_server)
    bucket = fresh_bucket(s3_config(s3_server).client())
    env = _profile_env(home)
    store = S3Store.from_uri(f"s3://{bucket}/evidence", env=env)
    assert store._client.meta.region_name == REGION
    assert store._client.meta.endpoint_url == s3_server.endpoint_url
    cat = Catalog.open(f"s3://{bucket}/catalog", env=env, cache_dir=tmp_path / "cache")
    assert isinstance(cat.parts, S3Parts)
    access = cat.parts.objects.access()
    assert (access.region, access.endpoint_url, access.addressing_style) == (
        REGION, s3_server.endpoint_url, "path")
    assert access.key_id == s3_server.access_key_id
    assert cat.query("SELECT count(*) AS n FROM recordings").to_pylist() == [{"n": 0}]


def test_the_environment_wins_over_the_profile(s3_server: Any, tmp_path: Path) -> None:
    home = _home(tmp_path, s3_server, retries="max_attempts = 3\nretry_mode = adaptive\n")
    from_profile = S3Config.from_env(_profile_env(home)).client()
    assert from_profile.meta.region_name == REGION
    assert from_profile.meta.config.retries == {"total_max_attempts": 3, "mode": "adaptive"}
    client = S3Config.from_env(_profile_env(
        home, AWS_REGION="eu-central-1", AWS_MAX_ATTEMPTS="7", AWS_RETRY_MODE="standard",
    )).client()
    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}


def test_without_a_profile_s3_defaults_are_botocores_not_ours(tmp_path: Path) -> None:
    """No region anywhere: S3's own default; retries standard, 6 attempts; no endpoint."""
    empty = tmp_path / "empty"
    empty.write_text("")
    client = S3Config.from_env({"AWS_CONFIG_FILE": str(empty),
                                "AWS_SHARED_CREDENTIALS_FILE": str(empty)}).client()
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert client.meta.endpoint_url.endswith(".amazonaws.com")


def test_a_profile_that_does_not_exist_is_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "config"
    empty.write_text("")
    r = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "query", "SELECT 1", "--catalog",
         "s3://bucket/catalog"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_PROFILE": "nobody",
             "AWS_CONFIG_FILE": str(empty)},
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == ("custody query: error: S3 configuration unusable: The config profile "
                        "(nobody) could not be found\n")


def test_ingest_query_and_verify_end_to_end_with_only_aws_profile_set(
    s3_server: Any, tmp_path: Path, clean_recording: Generated,
    interrupted_recording: Generated,
) -> None:
    """The CLI as a user runs it: HOME with ~/.aws, AWS_PROFILE, and no other AWS_*."""
    home = _home(tmp_path, s3_server)
    bucket = fresh_bucket(s3_config(s3_server).client())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for g in (clean_recording, interrupted_recording):
        shutil.copy(g.path, inbox / g.path.name)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_PROFILE": "cn",
           "PYTHONPATH": str(ROOT)}
    loc = ["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"]

    def custody(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", *argv, *loc], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    r = custody("ingest", str(inbox), "--quiet", "--workers", "1", "--json")
    assert r.returncode == 1, r.stderr  # the interrupted recording has findings
    assert [f["status"] for f in json.loads(r.stdout)["files"]] == ["archived", "archived"]
    r = custody("query", "SELECT count(*) AS n FROM recordings", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"n": 2}]
    r = custody("verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "2 objects checked, 0 failed"
    assert f"OK   catalog s3://{bucket}/catalog: " in r.stdout
    # The objects really are in the bucket the profile's endpoint serves.
    listed = s3_config(s3_server).client().list_objects_v2(Bucket=bucket, Prefix="evidence/")
    assert listed["KeyCount"] >= 2


@pytest.mark.parametrize("name", ["AWS_MAX_ATTEMPTS"])
def test_a_malformed_attempt_count_is_refused(name: str) -> None:
    from pipeline.storage.base import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=f"{name} must be a positive integer"):
        S3Config.from_env({name: "many"})
