"""Config discovery (first found wins) and checking (unknown key, wrong type: exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.settings import find_config
from tests.cli.conftest import Custody


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_key_is_exit_2_naming_the_key_and_the_file(
    custody: Custody, tmp_path: Path
) -> None:
    cfg = _write(tmp_path / "custody.toml", '[custody]\nstor = "/srv/custody/store"\n')
    r = custody("config", "show", loc=False)
    assert r.code == 2
    assert r.err == (
        f"custody config: error: {cfg}: unknown key 'custody.stor'; expected one of as, "
        "batch_files, catalog, catalog_cache, chunk_size, identities, labels, min_lock_days, "
        "nightly, s3, store, timezone, utc_offset, workers\n")


def test_a_wrong_type_is_exit_2_naming_the_key_and_the_file(
    custody: Custody, tmp_path: Path
) -> None:
    cfg = _write(tmp_path / "custody.toml", '[custody]\nworkers = "two"\n')
    r = custody("verify", loc=False)
    assert r.code == 2
    assert r.err == (f"custody verify: error: {cfg}: custody.workers = 'two': expected an "
                     "integer (demux worker processes)\n")


def test_a_boolean_is_not_an_integer(custody: Custody, tmp_path: Path) -> None:
    cfg = _write(tmp_path / "custody.toml", "min_lock_days = true\n")
    r = custody("config", "show", loc=False)
    assert r.err == (f"custody config: error: {cfg}: min_lock_days = True: expected an "
                     "integer (shortest retention after ingest, days)\n")


def test_an_unknown_s3_key_is_exit_2(custody: Custody, tmp_path: Path) -> None:
    cfg = _write(tmp_path / "custody.toml", '[custody.s3]\nendpoint = "http://x"\n')
    r = custody("config", "show", loc=False)
    assert r.err == (f"custody config: error: {cfg}: unknown key 'custody.s3.endpoint'; "
                     "expected one of access_key_id, bucket_default_min_days, endpoint_url, "
                     "lock_headers, profile, region, "
                     "secret_access_key, stale_upload_after_s\n")


def test_a_bad_time_zone_is_exit_2(custody: Custody, tmp_path: Path) -> None:
    cfg = _write(tmp_path / "custody.toml", 'timezone = "Mars/Olympus"\n')
    r = custody("config", "show", loc=False)
    assert r.err == (f"custody config: error: {cfg}: timezone 'Mars/Olympus': not a time "
                     "zone name like Asia/Shanghai\n")


def test_discovery_order_first_found_wins(tmp_path: Path) -> None:
    """--config, CUSTODY_CONFIG, ./custody.toml, $XDG_CONFIG_HOME, /etc: each in turn."""
    explicit = _write(tmp_path / "a.toml", "")
    named = _write(tmp_path / "b.toml", "")
    cwd = tmp_path / "cwd"
    local = _write(cwd / "custody.toml", "")
    xdg = _write(tmp_path / "xdg" / "custody" / "custody.toml", "")
    system = _write(tmp_path / "etc" / "custody.toml", "")
    env = {"CUSTODY_CONFIG": str(named), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    found = []
    found.append(find_config(str(explicit), env, cwd, system))
    found.append(find_config(None, env, cwd, system))
    found.append(find_config(None, {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]}, cwd, system))
    local.unlink()
    found.append(find_config(None, {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]}, cwd, system))
    found.append(find_config(None, {}, cwd, system))
    system.unlink()
    found.append(find_config(None, {}, cwd, system))
    assert [(c.found_by, c.path) for c in found] == [
        ("--config", explicit), ("CUSTODY_CONFIG", named), ("./custody.toml", local),
        ("$XDG_CONFIG_HOME/custody/custody.toml", xdg), (str(system), system),
        ("none", None)]
    assert found[-1].searched == (str(local), str(system))


def test_xdg_defaults_to_home_dot_config(tmp_path: Path) -> None:
    home_cfg = _write(tmp_path / "home" / ".config" / "custody" / "custody.toml", "")
    got = find_config(None, {"HOME": str(tmp_path / "home")}, tmp_path, tmp_path / "none")
    assert (got.found_by, got.path) == ("$XDG_CONFIG_HOME/custody/custody.toml", home_cfg)


@pytest.mark.parametrize("how", ["--config", "CUSTODY_CONFIG"])
def test_a_named_config_file_that_is_missing_is_exit_2(
    custody: Custody, tmp_path: Path, how: str
) -> None:
    missing = tmp_path / "nope.toml"
    argv = ["config", "show", *(["--config", str(missing)] if how == "--config" else [])]
    env = {"CUSTODY_CONFIG": str(missing)} if how == "CUSTODY_CONFIG" else {}
    r = custody(*argv, env=env, loc=False)
    assert (r.code, r.err) == (
        2, f"custody config: error: {missing}: config file not found (named by {how})\n")


def test_config_show_says_which_file_and_where_each_value_came_from(
    custody: Custody, tmp_path: Path
) -> None:
    xdg = _write(tmp_path / "xdg" / "custody" / "custody.toml",
                 '[custody]\nstore = "/srv/store"\nworkers = 3\ntimezone = "UTC"\n'
                 '[custody.s3]\nsecret_access_key = "hunter2"\nregion = "r1"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CUSTODY_CATALOG": "/srv/catalog"}
    r = custody("config", "show", "--json", "--as", "ZF0101", env=env, loc=False)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert (doc["config_file"], doc["found_by"]) == (
        str(xdg), "$XDG_CONFIG_HOME/custody/custody.toml")
    assert doc["settings"]["store"] == "/srv/store"
    assert doc["settings"]["catalog"] == "/srv/catalog"
    assert doc["settings"]["workers"] == 3
    assert doc["settings"]["as"] == "ZF0101"
    assert doc["settings"]["s3"] == {"AWS_SECRET_ACCESS_KEY": "***", "AWS_REGION": "r1"}
    assert doc["origins"]["store"] == f"{xdg}: store"
    assert doc["origins"]["catalog"] == "CUSTODY_CATALOG"
    assert doc["origins"]["as"] == "--as"
    assert doc["origins"]["batch_files"] == "default"
    r = custody("config", "show", env=env, loc=False)
    assert r.out.splitlines()[0] == (
        f"config file: {xdg} (found by $XDG_CONFIG_HOME/custody/custody.toml)")
    assert "hunter2" not in r.out


def test_every_existing_key_still_works(custody: Custody, tmp_path: Path) -> None:
    _write(tmp_path / "custody.toml",
           '[custody]\nstore = "s"\ncatalog = "c"\nutc_offset = "+07:00"\nmin_lock_days = 30\n'
           'workers = 1\nas = "ZF0101"\nchunk_size = 4096\nbatch_files = 4\nlabels = "l.csv"\n'
           'catalog_cache = "cc"\n')
    r = custody("config", "show", "--json", loc=False)
    assert json.loads(r.out)["settings"] == {
        "store": "s", "catalog": "c", "catalog_cache": "cc", "labels": "l.csv",
        "utc_offset": "+07:00", "timezone": "Asia/Shanghai", "min_lock_days": 30,
        "chunk_size": 4096, "workers": 1, "batch_files": 4, "as": "ZF0101", "s3": {}}


def test_put_only_s3_settings_reach_the_store_env(tmp_path: Path) -> None:
    """`[custody.s3] lock_headers` and `bucket_default_min_days` (a whole number) are passed
    to the store as CUSTODY_S3_* settings; the environment's own CUSTODY_S3_* win."""
    from pipeline.cli.settings import _s3_env, read_config

    cfg = _write(tmp_path / "custody.toml",
                 '[custody.s3]\nlock_headers = "bucket_default"\nbucket_default_min_days = 2\n')
    section = read_config(cfg)
    assert _s3_env(section, {}) == {"CUSTODY_S3_LOCK_HEADERS": "bucket_default",
                                    "CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS": "2"}
    assert _s3_env(section, {"CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS": "5", "HOME": "/x"}) == {
        "CUSTODY_S3_LOCK_HEADERS": "bucket_default", "CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS": "5"}
