"""One frozen `Settings` per command: flags, then the environment, then a config file.

This module is the only reader of the environment and the clock in `pipeline/` (the rest
gets them as arguments). The config file is the first found of `--config FILE`,
`CUSTODY_CONFIG`, `./custody.toml`, `$XDG_CONFIG_HOME/custody/custody.toml` (default
`~/.config`) and `/etc/custody/custody.toml`. Every key is checked against `KEYS`: an
unknown key or a value of the wrong type is an `InputError` naming the key and the file,
because a mistyped `stor = ...` silently ignored would archive evidence in the wrong place.
Each value remembers where it came from, so `custody config show` and the "no catalog"
error can say so.

Identity (issue 10): the real uid (`os.getuid()`) and its account name are read here, never
`$USER`, which the caller sets. Config files pass ssh's StrictModes check
(`pipeline.people.identity.check_secure`): the system config (and the identities file)
owned by root, a user's config by root or the user, none of them or their directories
group/other-writable. The system directory is `/etc/custody`; `CUSTODY_SYSTEM_DIR` moves it
only on a machine where `/etc/custody` does not exist (tests, a machine with no deployment),
and whatever it names is held to the same root-ownership checks, so it cannot loosen a
deployment. The system config is always read for its `identities` key, even when a user's
config wins for the other keys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pwd
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import InputError
from pipeline.jobs.config import NightlyConfig, parse_nightly
from pipeline.people.identity import (
    DEFAULT_SYSTEM_DIR,
    IDENTITIES_NAME,
    OsAccount,
    check_secure,
)

DEFAULT_HOME = "custody-data"
DEFAULT_TIMEZONE = "Asia/Shanghai"
SYSTEM_CONFIG = DEFAULT_SYSTEM_DIR / "custody.toml"
SYSTEM_DIR_VAR = "CUSTODY_SYSTEM_DIR"
ENVIRONMENT = {
    "CUSTODY_STORE": "the WORM store (DIR or s3://BUCKET/PREFIX), below --store",
    "CUSTODY_CATALOG": "the catalog (DIR or s3://BUCKET/PREFIX), below --catalog",
    "CUSTODY_CONFIG": "the config file, below --config",
    "CUSTODY_CATALOG_CACHE": "local state of an s3:// catalog",
    SYSTEM_DIR_VAR: "system config dir, only where /etc/custody does not exist (tests)",
    "XDG_CONFIG_HOME": "where the user's custody/custody.toml is (default ~/.config)",
    "AWS_*": "S3 endpoint, region and credentials (over [custody.s3])",
    "NO_COLOR, TERM=dumb": "plain progress: no colour, no cursor movement",
}
# What the terminal renderer (rich) may see of the environment, and nothing else.
_TERMINAL_VARS = ("TERM", "COLUMNS", "LINES", "NO_COLOR", "COLORTERM")


@dataclass(frozen=True, slots=True)
class Key:
    """One config-file key: its type, and what it means (for `config show` and errors)."""

    kind: type
    help: str


KEYS: dict[str, Key] = {
    "store": Key(str, "WORM store: DIR or s3://BUCKET/PREFIX"),
    "catalog": Key(str, "catalog: DIR or s3://BUCKET/PREFIX"),
    "catalog_cache": Key(str, "local state of an s3:// catalog"),
    "labels": Key(str, "labels file for ingest"),
    "utc_offset": Key(str, "offset of label times without one, e.g. +08:00"),
    "timezone": Key(str, "zone of times shown to people (IANA name)"),
    "min_lock_days": Key(int, "shortest retention after ingest, days"),
    "chunk_size": Key(int, "fixity chunk size, bytes"),
    "workers": Key(int, "demux worker processes"),
    "batch_files": Key(int, "files per atomic catalog commit"),
    "as": Key(str, "who acts when --as is not given (STAFF_ID)"),
    "identities": Key(str, "identities file: system config, or your own catalog's config"),
    "s3": Key(dict, "S3 endpoint and credentials (a table)"),
    "nightly": Key(dict, "the nightly job's sources and cluster (a table)"),
}
S3_KEYS = {
    "endpoint_url": "AWS_ENDPOINT_URL_S3",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "profile": "AWS_PROFILE",
    # Put-only credentials (an auxiliary's): no lock headers, the bucket default locks.
    "lock_headers": "CUSTODY_S3_LOCK_HEADERS",
    "bucket_default_min_days": "CUSTODY_S3_BUCKET_DEFAULT_MIN_DAYS",
    # A run's start aborts the store's multipart uploads older than this (killed runs');
    # the one default is S3Config.stale_upload_after_s (6 h); the variable wins.
    "stale_upload_after_s": "CUSTODY_S3_STALE_UPLOAD_AFTER_S",
}
# [custody.s3] keys that are whole numbers, each with its least value.
_S3_INTS = {"bucket_default_min_days": 1, "stale_upload_after_s": 0}
_TYPE_NAMES = {str: "a string", int: "an integer", dict: "a table"}


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The config file in use (or none), the places searched in order, and its keys."""

    path: Path | None
    found_by: str  # "--config", "CUSTODY_CONFIG", "./custody.toml", ..., or "none"
    searched: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    store: str
    catalog: str
    labels: str | None
    json: bool
    quiet: bool
    debug: bool
    utc_offset: dt.timezone  # for parsing label and audit times given without an offset
    timezone: ZoneInfo  # for showing times to people; stored values stay UTC
    min_lock_days: int
    chunk_size: int
    probe_workers: int
    batch_files: int
    actor: str | None = None  # --as STAFF_ID or `as` in the config: who acts (issue 4)
    # AWS_* variables (endpoint, region, credentials) for an s3:// store, read here once.
    store_env: Mapping[str, str] = field(default_factory=dict)
    os_user: str = "unknown"  # the account name of the real uid (not $USER)
    # The real uid and its name (os.getuid()): who the operating system says runs this.
    os_account: OsAccount = field(default_factory=lambda: OsAccount(-1, "unknown"))
    # The identities file of the machine (`identities` in the system config, or
    # <system dir>/identities.toml; it may not exist), and one named by a user's config.
    system_identities: Path = DEFAULT_SYSTEM_DIR / IDENTITIES_NAME
    config_identities: Path | None = None
    # Local state of an s3:// catalog (catalog.duckdb, ingest lock, manifest cache).
    catalog_cache: str = f"{DEFAULT_HOME}/catalog-cache"
    nightly: NightlyConfig = field(default_factory=NightlyConfig)  # [custody.nightly]
    config: ConfigFile = field(
        default_factory=lambda: ConfigFile(None, "none", ()))
    # Where each setting came from: "--store", "CUSTODY_STORE", "<file>: store", "default".
    origins: Mapping[str, str] = field(default_factory=dict)
    terminal_env: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def plain(self) -> bool:
        """No colour and no cursor movement: NO_COLOR (no-color.org) or TERM=dumb."""
        env = self.terminal_env
        return bool(env.get("NO_COLOR")) or env.get("TERM", "").lower() in ("dumb", "unknown")

    def shown(self) -> dict[str, Any]:
        """The effective settings as `custody config show` prints them (secrets hidden)."""
        s3 = {k: ("***" if "SECRET" in k else v) for k, v in self.store_env.items()}
        return {
            "store": self.store, "catalog": self.catalog, "catalog_cache": self.catalog_cache,
            "labels": self.labels, "utc_offset": _format_offset(self.utc_offset),
            "timezone": self.timezone.key, "min_lock_days": self.min_lock_days,
            "chunk_size": self.chunk_size, "workers": self.probe_workers,
            "batch_files": self.batch_files, "as": self.actor, "s3": s3,
        }


def _format_offset(tz: dt.timezone) -> str:
    delta = tz.utcoffset(None)
    sign = "-" if delta < dt.timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_offset(text: str, what: str = "--utc-offset") -> dt.timezone:
    sign = -1 if text.startswith("-") else 1
    hh, _, mm = text.lstrip("+-").partition(":")
    try:
        return dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm or 0)))
    except ValueError:
        raise InputError(f"{what} {text!r}: expected e.g. +08:00") from None


def _zone(text: str, what: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{what} {text!r}: not a time zone name like Asia/Shanghai") from None


def config_candidates(
    explicit: str | None, env: Mapping[str, str], cwd: Path, system: Path = SYSTEM_CONFIG
) -> list[tuple[str, Path, bool]]:
    """(how found, path, must exist) in the order they are tried."""
    out: list[tuple[str, Path, bool]] = []
    if explicit:
        out.append(("--config", Path(explicit), True))
    if env.get("CUSTODY_CONFIG"):
        out.append(("CUSTODY_CONFIG", Path(env["CUSTODY_CONFIG"]), True))
    out.append(("./custody.toml", cwd / "custody.toml", False))
    xdg = env.get("XDG_CONFIG_HOME") or (
        str(Path(env["HOME"]) / ".config") if env.get("HOME") else "")
    if xdg:
        out.append(("$XDG_CONFIG_HOME/custody/custody.toml",
                    Path(xdg) / "custody" / "custody.toml", False))
    out.append((str(system), system, False))
    return out


def find_config(
    explicit: str | None, env: Mapping[str, str], cwd: Path, system: Path = SYSTEM_CONFIG,
    *, uid: int | None = None,
) -> ConfigFile:
    """The first config file found, read and checked. A named file (--config,
    CUSTODY_CONFIG) that does not exist is an error, not a fall-through. With `uid`, the
    file and its directories must pass StrictModes: the system config owned by root, any
    other by root or `uid`."""
    searched: list[str] = []
    for how, path, required in config_candidates(explicit, env, cwd, system):
        searched.append(str(path))
        if path.is_file():
            if uid is not None:
                owners = frozenset({0}) if path == system else frozenset({0, uid})
                check_secure(path, owners=owners, what="config file")
            return ConfigFile(path, how, tuple(searched), read_config(path))
        if required:
            raise InputError(f"{path}: config file not found (named by {how})")
    return ConfigFile(None, "none", tuple(searched))


def read_config(path: Path) -> dict[str, Any]:
    """The `[custody]` table of a TOML file (or its top level), every key checked."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    if "custody" in data:
        extra = sorted(set(data) - {"custody"})
        if extra:
            raise InputError(f"{path}: unknown key {extra[0]!r} beside [custody]")
        section = data["custody"]
        prefix = "custody."
        if not isinstance(section, dict):
            raise InputError(f"{path}: custody must be a table ([custody])")
    else:
        section, prefix = data, ""
    for key, value in section.items():
        spec = KEYS.get(key)
        if spec is None:
            raise InputError(f"{path}: unknown key '{prefix}{key}'; expected one of "
                             f"{', '.join(sorted(KEYS))}")
        # TOML booleans are Python ints: `workers = true` is still the wrong type.
        if not isinstance(value, spec.kind) or isinstance(value, bool):
            raise InputError(f"{path}: {prefix}{key} = {value!r}: expected "
                             f"{_TYPE_NAMES[spec.kind]} ({spec.help})")
    if "nightly" in section:
        parse_nightly(section["nightly"], str(path))  # every key checked as it is read
    s3 = section.get("s3", {})
    for key, value in s3.items():
        if key not in S3_KEYS:
            raise InputError(f"{path}: unknown key '{prefix}s3.{key}'; expected one of "
                             f"{', '.join(sorted(S3_KEYS))}")
        if key in _S3_INTS:
            whole = str(value) if isinstance(value, int | str) and not isinstance(
                value, bool) else ""
            if not whole.isdigit() or int(whole) < _S3_INTS[key]:
                raise InputError(f"{path}: {prefix}s3.{key} = {value!r}: expected a whole "
                                 f"number of at least {_S3_INTS[key]}")
        elif not isinstance(value, str):
            raise InputError(f"{path}: {prefix}s3.{key} = {value!r}: expected a string")
    return dict(section)


def _s3_env(cfg: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """S3 endpoint and credentials: `[custody.s3]`, overridden by the AWS_* variables."""
    out = {S3_KEYS[k]: str(v) for k, v in cfg.get("s3", {}).items()}
    out.update({k: v for k, v in env.items()
                if k.startswith("AWS_") or k.startswith("CUSTODY_S3_")})
    return out


def _positive(name: str, value: int, origin: str) -> int:
    if value < 1:
        raise InputError(f"{origin}: {name} = {value}: expected a positive integer")
    return value


def os_account() -> OsAccount:
    """The real uid of this process and its account name (the password database, not
    $USER, which whoever starts the process sets)."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return OsAccount(uid, name)


def system_dir(env: Mapping[str, str], default: Path = DEFAULT_SYSTEM_DIR) -> Path:
    """The system config directory: `default`, or `CUSTODY_SYSTEM_DIR` where `default` does
    not exist (what it names is still held to root ownership where it is read)."""
    named = env.get(SYSTEM_DIR_VAR)
    if not named:
        return default
    if default.exists():
        raise InputError(f"{SYSTEM_DIR_VAR}={named} is refused: this machine has {default}, "
                         "the only system config directory that counts")
    return Path(named)


def _identities_paths(
    conf: ConfigFile, system_config: Path, system_identities: Path
) -> tuple[Path, Path | None]:
    """(the system identities file, an identities file named by a user's config)."""
    named = conf.values.get("identities")
    if conf.path is not None and conf.path == system_config:
        return (Path(named) if named else system_identities), None
    if system_config.is_file():  # already checked if it was the config found
        check_secure(system_config, owners=frozenset({0}), what="config file")
        named_by_system = read_config(system_config).get("identities")
        if named_by_system:
            system_identities = Path(named_by_system)
    if named and conf.path is not None:
        path = Path(named)
        return system_identities, path if path.is_absolute() else conf.path.parent / path
    return system_identities, None


def build_settings(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    cpu_count: int | None = None,
    system_config: Path | None = None,
    system_dir_path: Path | None = None,
    account: OsAccount | None = None,
) -> Settings:
    """Flags win over the environment, which wins over the config file, then defaults.

    `system_dir_path` (tests: a root-owned temporary directory) replaces /etc/custody; the
    files there are checked as the real ones are. `account` replaces `os.getuid()`."""
    here = cwd or Path.cwd()
    who = account or os_account()
    sysdir = system_dir_path or system_dir(env)
    system_config = system_config or sysdir / "custody.toml"
    conf = find_config(getattr(args, "config", None), env, here, system_config, uid=who.uid)
    system_identities, config_identities = _identities_paths(
        conf, system_config, sysdir / IDENTITIES_NAME)
    cfg = conf.values
    origins: dict[str, str] = {}

    def pick(name: str, flag: str, env_name: str, key: str, default: Any) -> Any:
        value = getattr(args, flag, None) if flag else None
        if value is not None:
            origins[name] = "--" + (key if flag == "as_staff" else flag).replace("_", "-")
            return value
        if env_name and env.get(env_name):
            origins[name] = env_name
            return env[env_name]
        if key in cfg:
            origins[name] = f"{conf.path}: {key}"
            return cfg[key]
        origins[name] = "default"
        return default

    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 2)
    xdg_cache = env.get("XDG_CACHE_HOME") or (
        str(Path(env["HOME"]) / ".cache") if env.get("HOME") else "")
    default_cache = (str(Path(xdg_cache) / "custody" / "catalog-cache") if xdg_cache
                     else f"{DEFAULT_HOME}/catalog-cache")
    offset_text = str(pick("utc_offset", "utc_offset", "", "utc_offset", "+08:00"))
    zone_text = str(pick("timezone", "", "", "timezone", DEFAULT_TIMEZONE))
    ints = {
        name: _positive(name, int(pick(name, flag, "", name, default)), origins.get(name, name))
        for name, flag, default in (
            ("min_lock_days", "min_lock_days", 90), ("chunk_size", "chunk_size", 1 << 20),
            ("workers", "workers", max(1, cores - 1)), ("batch_files", "batch_files", 16),
        )
    }
    return Settings(
        store=str(pick("store", "store", "CUSTODY_STORE", "store", f"{DEFAULT_HOME}/store")),
        catalog=str(pick("catalog", "catalog", "CUSTODY_CATALOG", "catalog",
                         f"{DEFAULT_HOME}/catalog")),
        labels=pick("labels", "labels", "", "labels", None),
        json=bool(getattr(args, "json", False)),
        quiet=bool(getattr(args, "quiet", False)),
        debug=bool(getattr(args, "debug", False)),
        utc_offset=parse_offset(offset_text, origins["utc_offset"]),
        timezone=_zone(zone_text, origins["timezone"]),
        min_lock_days=ints["min_lock_days"],
        chunk_size=ints["chunk_size"],
        probe_workers=ints["workers"],
        batch_files=ints["batch_files"],
        actor=pick("as", "as_staff", "", "as", None),
        store_env=_s3_env(cfg, env),
        os_user=who.name,
        os_account=who,
        system_identities=system_identities,
        config_identities=config_identities,
        catalog_cache=str(pick("catalog_cache", "", "CUSTODY_CATALOG_CACHE", "catalog_cache",
                               default_cache)),
        nightly=parse_nightly(cfg.get("nightly", {}), str(conf.path)),
        config=conf,
        origins=origins,
        terminal_env={k: env[k] for k in _TERMINAL_VARS if k in env},
        clock=clock or (lambda: dt.datetime.now(dt.UTC)),
    )


def describe_origin(s: Settings, name: str) -> str:
    """Where a setting came from, in words, for errors ("the default ./custody-data/...")."""
    origin = s.origins.get(name, "default")
    if origin == "default":
        return f"the default; set --{name}, CUSTODY_{name.upper()} or `{name}` in custody.toml"
    return f"from {origin}"


