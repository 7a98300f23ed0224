"""Damage findings from the probe's error fields."""

from __future__ import annotations

from pipeline.analysis.timing import analyse
from tests.timelines import result


def test_damage_codes_come_from_probe_fields() -> None:
    r = result(error="moov atom not found", truncated="mdat runs past EOF",
               demux_errors=("partial file",))  # fmt: skip
    assert [x.code for x in analyse(r)] == ["MEDIA_UNREADABLE", "MEDIA_TRUNCATED", "MEDIA_CORRUPT"]
