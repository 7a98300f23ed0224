"""How old an open multipart upload must be before a run's start aborts it: one setting,
`[custody.s3] stale_upload_after_s`, under CUSTODY_S3_STALE_UPLOAD_AFTER_S, with one
default (`S3Config.stale_upload_after_s`, 6 hours); a real SeaweedFS for the nightly run."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.cli.settings import _s3_env, read_config
from pipeline.errors import InputError
from pipeline.storage.base import key_for
from pipeline.storage.s3.config import S3Config
from tests.contract._support import fresh_bucket, s3_config


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _age(cfg: Path, env: dict[str, str]) -> int:
    return S3Config.from_env(_s3_env(read_config(cfg), env)).stale_upload_after_s


def test_the_file_sets_it_the_variable_wins_and_the_default_is_six_hours(
    tmp_path: Path
) -> None:
    cfg = _write(tmp_path / "custody.toml", "[custody.s3]\nstale_upload_after_s = 900\n")
    assert _age(cfg, {}) == 900
    assert _age(cfg, {"CUSTODY_S3_STALE_UPLOAD_AFTER_S": "60"}) == 60
    plain = _write(tmp_path / "plain.toml", '[custody]\nstore = "s"\n')
    assert _age(plain, {}) == 6 * 3600 == S3Config().stale_upload_after_s
    assert _age(plain, {"CUSTODY_S3_STALE_UPLOAD_AFTER_S": "0"}) == 0


@pytest.mark.parametrize("value", ["-1", "true", '"six hours"', "1.5"])
def test_a_wrong_age_in_the_file_names_the_key_and_the_file(
    tmp_path: Path, value: str
) -> None:
    cfg = _write(tmp_path / "custody.toml", f"[custody.s3]\nstale_upload_after_s = {value}\n")
    with pytest.raises(InputError) as got:
        read_config(cfg)
    assert str(got.value).startswith(f"{cfg}: custody.s3.stale_upload_after_s = ")
    assert str(got.value).endswith(": expected a whole number of at least 0")


def _uploads(client: Any, bucket: str) -> list[str]:
    return sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)
                  .get("Uploads", []))


@pytest.mark.slow
def test_the_nightly_run_aborts_uploads_older_than_the_configured_age(
    tmp_path: Path, s3_server: Any
) -> None:
    """An upload a killed run left open is aborted at the next start when it is older than
    the file's `stale_upload_after_s`; with the default (6 h) it is left for later."""
    client = s3_config(s3_server).client()
    bucket = fresh_bucket(client)
    key = f"evidence/{key_for('e' * 64)}"
    client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    time.sleep(2.2)  # the server stamps uploads and its Date to the second
    dock = tmp_path / "dock"
    dock.mkdir()

    def night(s3_table: str) -> dict[str, Any]:
        cfg = _write(tmp_path / "custody.toml",
                     f'[custody]\nstore = "s3://{bucket}/evidence"\n'
                     f'catalog = "{tmp_path / "catalog"}"\n{s3_table}'
                     f'[custody.nightly]\nsources = ["{dock}"]\n')
        out, err = io.StringIO(), io.StringIO()
        code = main(["nightly", "--config", str(cfg), "--json", "--workers", "1"],
                    env=s3_server.env(), out=out, err=err)
        assert code == 0, err.getvalue()
        run: dict[str, Any] = json.loads(out.getvalue())["run"]
        return run

    assert night("")["stale_uploads_aborted"] == 0
    assert _uploads(client, bucket) == [key]
    assert night("[custody.s3]\nstale_upload_after_s = 1\n")["stale_uploads_aborted"] == 1
    assert _uploads(client, bucket) == []

