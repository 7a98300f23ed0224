"""Shared options before or after the subcommand; --json is JSON; formats do not mix."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest

from pipeline.cli.main import build_parser, main
from tests.cli.conftest import Custody


def test_shared_options_work_before_and_after_the_subcommand(archive: Custody) -> None:
    store, catalog = archive.loc[1], archive.loc[3]
    after = archive("staff", "list", "--json", "--as", "A-1", "--store", store,
                    "--catalog", catalog, loc=False)
    before = archive("--json", "--as", "A-1", "--store", store, "--catalog", catalog,
                     "staff", "list", loc=False)
    mixed = archive("--json", "--store", store, "staff", "list", "--catalog", catalog,
                    "--as", "A-1", loc=False)
    assert after.code == before.code == mixed.code == 0, (after.err, before.err, mixed.err)
    people = [p["staff_id"] for p in json.loads(after.out)]
    assert people == ["A-1", "X-1"]
    assert json.loads(before.out) == json.loads(after.out) == json.loads(mixed.out)


def test_an_option_after_the_subcommand_wins_over_one_before(archive: Custody) -> None:
    r = archive("--as", "nobody", "staff", "list", "--json", "--as", "A-1")
    assert r.code == 0, r.err


def test_staff_roster_json_is_json(archive: Custody) -> None:
    r = archive("staff", "roster", "--json", "--as", "X-1")
    assert r.code == 0, r.err
    assert json.loads(r.out) == [{"name": "王五", "staff_id": "X-1", "section": "综合执法队",
                                  "post": "协管员", "status": "在岗"}]


def test_staff_roster_without_json_is_csv(archive: Custody) -> None:
    r = archive("staff", "roster", "--as", "X-1")
    assert r.out.splitlines() == ["\ufeff姓名,人员编号,科室,工作岗位,状态"[1:],
                                  "王五,X-1,综合执法队,协管员,在岗"]


@pytest.mark.parametrize("fmt", ["--csv", "--table"])
def test_json_with_another_format_is_refused(custody: Custody, fmt: str) -> None:
    r = custody("query", "--json", fmt, "SELECT 1", loc=False)
    assert (r.code, r.err) == (
        2, f"custody query: error: --json and {fmt} are two output formats; give one\n")


def test_csv_with_table_is_refused_by_the_parser(custody: Custody) -> None:
    r = custody("query", "--csv", "--table", "SELECT 1", loc=False)
    assert r.code == 2
    assert r.err.splitlines()[-1] == (
        "custody query: error: argument --table: not allowed with argument --csv")


def _walk(p: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _walk(sub, f"{path} {name}")
        else:
            out.append((path, action))
    return out


def test_every_option_that_takes_a_value_has_a_metavar_or_choices() -> None:
    missing = sorted(
        f"{path} {a.option_strings[0]}" for path, a in _walk(build_parser(), "custody")
        if a.option_strings and a.nargs != 0 and a.metavar is None and a.choices is None
        and a.dest != "help")
    assert missing == []


def test_help_lists_commands_environment_config_locations_exit_codes_and_examples() -> None:
    out = io.StringIO()
    assert main(["--help"], env={}, out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    for command in ("ingest", "query", "verify", "retention", "export", "store", "staff",
                    "device", "audit", "config"):
        assert re.search(rf"^    {command} ", text, re.M), command
    for line in ("  CUSTODY_STORE", "  CUSTODY_CATALOG", "  CUSTODY_CONFIG",
                 "  --config FILE, CUSTODY_CONFIG, ./custody.toml,",
                 "  $XDG_CONFIG_HOME/custody/custody.toml (default ~/.config), "
                 "/etc/custody/custody.toml",
                 "  0  clean",
                 "  1  findings (a gap, a file not archived, a damaged object, a broken audit "
                 "chain)",
                 "  2  error: bad input, refused, or a crash (one line; --debug for the "
                 "traceback)",
                 "  custody ingest /mnt/dock/2026-11-27 --labels labels.csv --as FZ0201"):
        assert any(x.startswith(line) for x in text.splitlines()), line
