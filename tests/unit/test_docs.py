"""The README documents every finding code exactly as `schemas/findings.py` defines it."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.findings import CODES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_findings_table_matches_the_code_registry() -> None:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([A-Z0-9_]+)` \| (\S+) \| (\w+) \| (\w+) \| (.+?) \| (.+?) \|$", line)
        if m:
            rows[m.group(1)] = m.groups()[1:]
    expected = {
        c.code: (c.rule, str(c.category), str(c.severity), c.title_en, c.title_zh)
        for c in CODES.values()
    }
    assert rows == expected


def test_every_finding_code_has_a_rule_from_rules_md_and_both_titles() -> None:
    for c in CODES.values():
        assert re.fullmatch(r"(AV|AUX)-\d+(/\d+)?", c.rule), c.code
        assert c.title_en and c.title_zh and c.proves, c.code
        assert re.search(r"[\u4e00-\u9fff]", c.title_zh), c.code
