"""Issue 12's acceptance test, end to end through the CLI with S3 (a real SeaweedFS) as the
store: a 行政处罚 case whose recordings are labelled with its number and so linked at
ingest, with

- two sessions, each an interruption between two files: one explained by speech at the
  start of the next file (espeak-ng Mandarin), one silent (a steady tone only);
- a document (现场检查笔录) whose times are 10 minutes off its recordings';
- a late upload (recorded 30 h before it was stored);
- no 文书送达 recording, and an exemption for it the section chief has not acknowledged;
- an obstruction event (AV-13).

The findings are EXACTLY the expected ones (code, rule, subject), read from the pure checks
(`case show --json`), from the views (`custody query`) and in the compliance report
(`custody report --json`: per code, its rule, count and subjects), and every linked
recording ends
`permanent` on the S3 store, by a raw head-object: COMPLIANCE retention to the catalog's
date (rounded up to its second), and the legal hold ON.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.cli.main import main
from pipeline.demo import synth
from pipeline.demo.speech import speak
from tests.conftest import require_tool
from tests.contract._support import fresh_bucket, s3_config

pytestmark = pytest.mark.slow

CASE = "遂大综执罚〔2026〕7号"
SMALL = synth.Encoding(width=160, height=120)
RATE = SMALL.sample_rate
SECONDS = 6.0
END = 6.021333  # a 6 s file's span in the catalog: its AAC audio runs 6.021333 s
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T0 = NOW - dt.timedelta(hours=3)


def _speech_start(mandarin: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A file's sound: the officer explains at once (from 0.3 s), over a quiet tone."""
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    out = 0.02 * np.sin(2 * np.pi * 1000 * t)
    part = mandarin[: n - int(0.3 * RATE)]
    out[int(0.3 * RATE): int(0.3 * RATE) + part.size] += 0.5 * part
    return out.astype(np.float32)


def _tone() -> npt.NDArray[np.float32]:
    t = np.arange(int(SECONDS * RATE)) / RATE
    return (0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


# name -> device, start, activity (its step), what is heard at its start
FILES: dict[str, tuple[str, dt.datetime, str, str]] = {
    # session 1 (BC-0007, 调查取证): the second file starts 95 s after the first ended and
    # the officer says why at once
    "BC0007_0001.mp4": ("BC-0007", T0, "investigation", "speech"),
    "BC0007_0002.mp4": ("BC-0007", T0 + dt.timedelta(seconds=END + 95), "investigation",
                        "speech"),
    # session 2 (BC-0008, the hearing 听证): 47.25 s later, and nobody speaks
    "BC0008_0001.mp4": ("BC-0008", T0 + dt.timedelta(hours=1), "hearing", "speech"),
    "BC0008_0002.mp4": ("BC-0008", T0 + dt.timedelta(hours=1, seconds=END + 47.25),
                        "hearing", "tone"),
    # the late upload: recorded 30 h before this run stores it
    "BC0009_0001.mp4": ("BC-0009", NOW - dt.timedelta(hours=30), "hearing", "speech"),
}


class Cli:
    """`custody ...` in-process against the S3 store and a local catalog."""

    def __init__(self, env: dict[str, str], store: str, catalog: Path) -> None:
        self.env, self.loc = env, ["--store", store, "--catalog", str(catalog)]
        self.out = self.err = ""

    def __call__(self, *argv: str, who: str, ok: tuple[int, ...] = (0,)) -> str:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, *self.loc, "--as", who], env=self.env, out=out, err=err)
        self.out, self.err = out.getvalue(), err.getvalue()
        assert code in ok, f"custody {' '.join(argv)} -> {code}: {self.err}"
        return self.out

    def json(self, *argv: str, who: str, ok: tuple[int, ...] = (0,)) -> Any:
        return json.loads(self(*argv, "--json", who=who, ok=ok))

    def query(self, sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.json("query", sql, who="Z-1")
        return rows


# Every finding the views hold, as (code, rule, subject kind, subject): what ingest stored,
# and each check view's rows that are findings.
FINDINGS_SQL = """
SELECT code, rule, subject_kind, coalesce(subject_id, recording_blake3) AS subject
FROM findings
UNION ALL SELECT 'STEP_NOT_RECORDED', 'AV-5', 'case', case_number
  FROM check_av5_coverage WHERE covered_by IS NULL
UNION ALL SELECT 'EXEMPTION_INCOMPLETE', 'AV-6', 'case', case_number
  FROM check_av6_exemptions WHERE incomplete
UNION ALL SELECT 'EXEMPTION_UNACKNOWLEDGED', 'AV-6', 'case', case_number
  FROM check_av6_exemptions WHERE unacknowledged
UNION ALL SELECT 'EXEMPTION_ACK_LATE', 'AV-6', 'case', case_number
  FROM check_av6_exemptions WHERE ack_late
UNION ALL SELECT 'DOCUMENT_TIME_MISMATCH', 'AV-8', 'case', case_number
  FROM check_av8_documents WHERE mismatch
UNION ALL SELECT 'DEVICE_CLOCK_OFFSET', 'AV-8', 'device', device FROM check_av8_clock_offsets
UNION ALL SELECT code, rule, subject_kind, subject_id FROM check_av9_sessions
UNION ALL SELECT 'RECORDING_UNLINKED', 'AV-12', 'recording', blake3
  FROM check_av12_unlinked WHERE days_since_ingest > 7
UNION ALL SELECT 'NOT_PERMANENT', 'AV-13', 'recording', recording_blake3
  FROM check_av13_permanent
UNION ALL SELECT 'AUXILIARY_ONLY', 'AUX-2/3', 'case', case_number FROM check_aux3_steps
"""


@pytest.fixture(scope="module")
def mandarin() -> npt.NDArray[np.float32]:
    require_tool("espeak-ng")
    return speak(rate=RATE)


def _officer(c: Cli, sid: str, role: str, cert: str) -> None:
    c("staff", "add", sid, "--name", f"员工{sid}", "--kind", "officer", "--section",
      "综合行政执法队", "--certificate", cert, "--role", role, who="A-1")


def test_a_penalty_case_end_to_end_on_s3(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mandarin: npt.NDArray[np.float32],
) -> None:
    monkeypatch.chdir(tmp_path)
    client = s3_config(s3_server).client()
    bucket = fresh_bucket(client)
    c = Cli(s3_server.env(), f"s3://{bucket}/evidence", tmp_path / "catalog")
    c("staff", "add", "A-1", "--name", "张三", "--kind", "officer", "--section", "综合行政执法队",
      "--certificate", "ZJ-0001", "--role", "administrator", who="A-1")
    _officer(c, "Z-1", "officer", "ZJ-0011")
    _officer(c, "Z-2", "officer", "ZJ-0012")
    _officer(c, "C-1", "section_chief", "ZJ-0031")  # reports; acknowledges nothing here
    c("case", "open", CASE, "--type", "行政处罚", "--entity", "大柘镇某某餐馆",
      "--section", "综合行政执法队", "--officer", "Z-1", "--officer", "Z-2", who="Z-1")

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = ["file,case_number,inspected_entity,officer_ids,device_id,activity_type,"
            "recorded_start"]
    for name, (device, start, activity, heard) in FILES.items():
        synth.write_with_interruption(
            inbox / name, SECONDS, start, gap_at_s=0.0, gap_s=0.0,
            after_resume=_speech_start(mandarin) if heard == "speech" else _tone(),
            camera=synth.Camera(serial=device), encoding=SMALL)
        rows.append(f"{name},{CASE},大柘镇某某餐馆,Z-1;Z-2,{device},{activity},"
                    f"{start.isoformat()}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ran = c.json("ingest", str(inbox), "--labels", str(labels), "--quiet", who="Z-1",
                 ok=(1,))
    assert [f["status"] for f in ran["files"]] == ["archived"] * 5

    recs = {r["file_name"]: r for r in c.query(
        "SELECT file_name, blake3, store_key, store_version, recorded_start_utc, "
        "recorded_end_utc FROM recordings")}
    b3 = {n: r["blake3"] for n, r in recs.items()}
    first, second = recs["BC0007_0001.mp4"], recs["BC0007_0002.mp4"]
    ten = dt.timedelta(minutes=10)
    start = dt.datetime.fromisoformat(first["recorded_start_utc"]) + ten
    end = dt.datetime.fromisoformat(second["recorded_end_utc"]) + ten
    c("case", "document", CASE, "--kind", "现场检查笔录", "--step", "调查取证",
      "--start", start.isoformat(), "--end", end.isoformat(), who="Z-1")
    c("case", "exempt", CASE, "--step", "文书送达", "--reason", "objective", "--basis",
      "留置送达时执法记录仪电量耗尽", "--author", "Z-1", who="Z-1")
    c("case", "event", CASE, "--kind", "obstruction", "--note", "当事人阻碍执法", who="Z-1")

    # --- the findings, exactly -------------------------------------------------------------
    on_case = [("STEP_NOT_RECORDED", "AV-5"), ("EXEMPTION_UNACKNOWLEDGED", "AV-6"),
               ("UNEXPLAINED_INTERRUPTION", "AV-9"), ("DOCUMENT_TIME_MISMATCH", "AV-8")]
    expected = sorted(
        [(code, rule, "case", CASE) for code, rule in on_case]
        + [("GAP_BETWEEN_FILES", "AV-9", "recording", b3["BC0007_0002.mp4"]),
           ("GAP_BETWEEN_FILES", "AV-9", "recording", b3["BC0008_0002.mp4"]),
           ("NO_SPEECH_AT_START", "AV-9", "recording", b3["BC0008_0002.mp4"]),
           ("INGEST_LATE", "AV-12", "recording", b3["BC0009_0001.mp4"])])
    assert sorted(tuple(r.values()) for r in c.query(FINDINGS_SQL)) == expected
    shown = c.json("case", "show", CASE, who="Z-1", ok=(1,))
    assert sorted((f["code"], f["rule"]) for f in shown["findings"]) == sorted(on_case)
    detail = {f["code"]: f["detail"] for f in shown["findings"]}
    assert detail["UNEXPLAINED_INTERRUPTION"].startswith(
        f"case {CASE}, device BC-0008: BC0008_0002.mp4 (b3/{b3['BC0008_0002.mp4']}) starts "
        f"47.250 s after BC0008_0001.mp4 (b3/{b3['BC0008_0001.mp4']}) ended")
    assert "not acknowledged" in detail["STEP_NOT_RECORDED"]
    assert "文书送达" in detail["STEP_NOT_RECORDED"]
    assert "start -10 min 0 s, end -10 min 0 s" in detail["DOCUMENT_TIME_MISMATCH"]
    gaps = c.query("SELECT device_id, before_file, after_file, gap_seconds, explained "
                   "FROM case_session_gaps ORDER BY device_id")
    assert [tuple(g.values()) for g in gaps] == [
        ("BC-0007", "BC0007_0001.mp4", "BC0007_0002.mp4", 95.0, True),
        ("BC-0008", "BC0008_0001.mp4", "BC0008_0002.mp4", 47.25, False)]
    late = c.query("SELECT officer_id, file_name FROM case_late_ingests ORDER BY officer_id")
    assert late == [{"officer_id": o, "file_name": "BC0009_0001.mp4"} for o in ("Z-1", "Z-2")]
    coverage = {r["step"]: r["covered_by"] for r in shown["coverage"]}
    assert coverage == {"调查取证": "recording", "听证": "recording", "文书送达": None}

    # --- the compliance report lists exactly these --------------------------------------------
    days = f"{(NOW - dt.timedelta(days=3)).date()}..{(NOW + dt.timedelta(days=1)).date()}"
    report = c.json("report", "--period", days, "--case", CASE, who="C-1", ok=(1,))
    counted = sorted((r["code"], r["rule"], r["findings"], r["subjects"])
                     for r in report["by_rule"])
    per_code: dict[tuple[str, str], set[str]] = {}
    for code, rule, _, subject in expected:
        per_code.setdefault((code, rule), set()).add(subject)
    assert counted == sorted((code, rule, sum(e[:2] == (code, rule) for e in expected),
                              len(subjects)) for (code, rule), subjects in per_code.items())
    assert report["total_findings"] == len(expected) == 8
    assert report["unread_checks"] == []
    assert {r["step"]: r["covered_by"] for r in report["coverage"]} == coverage

    # --- every linked recording permanent on the S3 store ------------------------------------
    linked = c.query("SELECT r.file_name, r.tier, r.legal_hold, r.retain_until_utc "
                     "FROM case_links_current l JOIN retention_current r "
                     "ON r.blake3 = l.recording_blake3 ORDER BY r.file_name")
    assert [(r["file_name"], r["tier"], r["legal_hold"]) for r in linked] == [
        (n, "permanent", True) for n in sorted(FILES)]
    for r in linked:
        rec = recs[r["file_name"]]
        head = client.head_object(Bucket=bucket, Key=f"evidence/{rec['store_key']}",
                                  VersionId=rec["store_version"])
        until = dt.datetime.fromisoformat(r["retain_until_utc"])
        assert head["ObjectLockMode"] == "COMPLIANCE", r["file_name"]
        assert head["ObjectLockLegalHoldStatus"] == "ON", r["file_name"]
        # the store keeps whole seconds and rounds up: never shorter than the catalog says
        assert until <= head["ObjectLockRetainUntilDate"] < until + dt.timedelta(seconds=1)
        assert until >= NOW + dt.timedelta(days=36499)  # the longest retention (AV-13)
