"""`custody ...` run in-process as a named person (`--as`), in one data directory, keeping
what it printed: the runner of the end-to-end CLI tests (cases, reports, people, export)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pipeline.cli.main import main


def auxiliary(section: str) -> tuple[str, ...]:
    """`staff add` options of an auxiliary (协管员) of `section` with a whole record (AUX-3)."""
    return ("--kind", "auxiliary", "--section", section, "--post", "协管员", "--agency",
            "遂昌县人力资源公司", "--work-area", "大柘镇", "--contract-start", "2025-06-01",
            "--contract-end", "2027-05-31", "--first-hired", "2025-06-01",
            "--birth-date", "1995-05-01", "--screening", "passed")


class Acting:
    """`custody ARGV --store S --catalog ROOT/catalog [--as WHO]` with the environment
    `env` (default: none); `out` and `err` keep the last run's output."""

    def __init__(self, root: Path, store: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.store = store or str(root / "store")
        self.env = env or {}
        self.out = self.err = ""

    def __call__(self, *argv: str, who: str | None = None) -> int:
        out, err = io.StringIO(), io.StringIO()
        args = [*argv, "--store", self.store, "--catalog", str(self.root / "catalog")]
        if who:
            args += ["--as", who]
        code = main(args, env=self.env, out=out, err=err)
        self.out, self.err = out.getvalue(), err.getvalue()
        return code

    def json(self, *argv: str, who: str, ok: tuple[int, ...] = (0,)) -> Any:
        """The run's JSON (`--json`), its exit code one of `ok`."""
        assert self(*argv, "--json", who=who) in ok, self.err
        return json.loads(self.out)
