"""Each case check's DuckDB view gives the same answer as its pure function, on a catalog
of generated recordings ingested for real (issue 12 item 3): AV-5 coverage, AV-6
exemptions, AV-13 preservation, AV-12 unlinked and late recordings, AV-8 documents and
AV-9 interruptions between a case's files, each firing and quiet."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.cases import service
from pipeline.cases.checks import check_catalog
from pipeline.catalog.core import Catalog
from pipeline.demo import synth
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import Authority, open_authority
from pipeline.storage.local import LocalStore
from schemas.media import Finding
from schemas.records import CaseEventRecord
from tests.ingesting import run_ingest
from tests.mediagen import Generated

REAL_NOW = dt.datetime.now(dt.UTC)
STORED = REAL_NOW - dt.timedelta(days=10)  # the AV-12 views count days to now()
P, K = "遂大综执罚〔2026〕7号", "遂大综执检〔2026〕31号"


@contextlib.contextmanager
def _ingested(root: Path, src: Path, labels: Path | None = None,
              ) -> Iterator[tuple[LocalStore, Catalog, Authority]]:
    """`src` ingested for real at STORED into a local store and catalog under `root`."""
    store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")
    run_ingest([src], store=store, catalog=catalog, settings=IngestSettings(
        now=lambda: STORED, labels_path=str(labels) if labels else None))
    with open_authority(catalog, store, lambda: STORED) as auth:
        auth.acting("ZF0101", os_user="tester")
        yield store, catalog, auth


@pytest.fixture()
def world(tmp_path: Path, clean_recording: Generated, short_recording: Generated,
          audio_recording: Generated) -> Iterator[tuple[LocalStore, Catalog, Authority]]:
    src = tmp_path / "in"
    src.mkdir()
    for name, g in (("BC0007_0001.mp4", clean_recording), ("BC0007_0002.mp4", short_recording),
                    ("REC0001.m4a", audio_recording)):
        shutil.copy(g.path, src / name)
    with _ingested(tmp_path, src) as w:
        yield w


def _at(hours: float) -> dt.datetime:
    return STORED + dt.timedelta(hours=hours)


def _pure(catalog: Catalog) -> dict[str, set[tuple[str | None, ...]]]:
    out: dict[str, set[tuple[str | None, ...]]] = {}
    for f in check_catalog(catalog, now_utc=dt.datetime.now(dt.UTC)):
        key: tuple[str | None, ...] = (f.subject.id,)
        if f.code == "STEP_NOT_RECORDED":
            key = (f.subject.id, f.detail.split("step ")[1].split(" ")[0])
        out.setdefault(f.code, set()).add(key)
    return out


# The codes the scenarios above compare (AV-8, AV-9 and AUX-3 have their own tests).
_FIRST = ("STEP_NOT_RECORDED", "EXEMPTION_INCOMPLETE", "EXEMPTION_UNACKNOWLEDGED",
          "EXEMPTION_ACK_LATE", "NOT_PERMANENT", "RECORDING_UNLINKED")


def _views(catalog: Catalog) -> dict[str, set[tuple[str, ...]]]:
    got = _view_keys(catalog)
    return {k: got[k] for k in _FIRST if got[k]}


def _b3(catalog: Catalog, name: str) -> str:
    (row,) = catalog.query("SELECT blake3 FROM recordings WHERE file_name = ?",
                           [name]).to_pylist()
    return str(row["blake3"])


def _open(catalog: Catalog, auth: Authority, n: str, case_type: str) -> None:
    service.open_case(catalog, auth=auth, actor="ZF0101", now=_at(1), case_number=n,
                      case_type=case_type, inspected_entity="大柘镇某某餐馆",
                      section="综合行政执法队", officer_ids=["ZF0101"])


def test_every_check_fires_and_each_view_agrees(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, P, "行政处罚")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=P, selectors=["BC0007_0001.mp4"], step="调查取证")
    service.add_exemption(catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=P,
                          step="文书送达", reason="emergency", basis="", author_id="ZF0101")
    # an AV-13 event whose retention did not follow (a store that refused): only the event
    batch = catalog.batch()
    batch.add(CaseEventRecord, [CaseEventRecord(case_number=P, event="trigger", at_utc=_at(4),
                                                actor_id="ZF0101", kind="obstruction")])
    batch.commit(_at(4).date())
    pure = _pure(catalog)
    b1, b2, b3 = (_b3(catalog, n) for n in ("BC0007_0001.mp4", "BC0007_0002.mp4",
                                             "REC0001.m4a"))
    assert pure == {
        "STEP_NOT_RECORDED": {(P, "文书送达")},
        "EXEMPTION_INCOMPLETE": {(P,)},
        "EXEMPTION_UNACKNOWLEDGED": {(P,)},
        "NOT_PERMANENT": {(b1,)},
        "RECORDING_UNLINKED": {(b2,), (b3,)},
    }
    assert _views(catalog) == pure


def test_every_check_is_quiet_on_a_complete_case_and_each_view_agrees(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, K, "行政检查")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K, selectors=["BC0007_0001.mp4", "BC0007_0002.mp4"],
                            step="调查取证")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K, selectors=["REC0001.m4a"], step="程序启动")
    service.add_event(store, catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=K,
                      trigger="objection", note="当事人投诉")
    assert _pure(catalog) == {} == _views(catalog)
    cov = catalog.query("SELECT step, covered_by FROM check_av5_coverage").to_pylist()
    assert cov == [{"step": "程序启动", "covered_by": "recording"},
                   {"step": "调查取证", "covered_by": "recording"}]


def test_an_exemption_acknowledged_late_fires_in_both(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, K, "行政检查")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K,
                            selectors=["BC0007_0001.mp4", "BC0007_0002.mp4", "REC0001.m4a"],
                            step="调查取证")
    service.add_exemption(catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=K,
                          step="程序启动", reason="objective", basis="热线录音系统故障",
                          author_id="ZF0102")
    service.acknowledge(catalog, auth=auth, actor="ZF0101", now=_at(3 + 24 * 5),
                        case_number=K, exemption_id="X1")
    assert _pure(catalog) == {"EXEMPTION_ACK_LATE": {(K,)}} == _views(catalog)


# --- AV-8: documents against recordings, with each device's clock ---------------------------
@pytest.fixture()
def timed(tmp_path: Path, clean_recording: Generated, short_recording: Generated,
          ) -> Iterator[tuple[LocalStore, Catalog, Authority]]:
    """Three recordings with labelled starts on two devices: BC-0007 (one file) and
    BC-0008 (two files, on two different days)."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0001.mp4")
    shutil.copy(short_recording.path, src / "BC0008_0001.mp4")
    (src / "BC0008_0002.mp4").write_bytes(clean_recording.path.read_bytes() + b"\0")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,device_id,activity_type,recorded_start\n"
        "BC0007_0001.mp4,BC-0007,investigation,2026-11-27T09:30:00+08:00\n"
        "BC0008_0001.mp4,BC-0008,investigation,2026-11-27T14:00:00+08:00\n"
        "BC0008_0002.mp4,BC-0008,investigation,2026-11-28T10:00:00+08:00\n",
        encoding="utf-8")
    with _ingested(tmp_path, src, labels) as w:
        yield w


def _span(catalog: Catalog, name: str) -> tuple[dt.datetime, dt.datetime]:
    (r,) = catalog.query("SELECT recorded_start_utc AS s, recorded_end_utc AS e "
                         "FROM recordings WHERE file_name = ?", [name]).to_pylist()
    return r["s"], r["e"]


def _document_for(world: tuple[LocalStore, Catalog, Authority], case: str, name: str,
                  shift: dt.timedelta, hour: float) -> None:
    """A case of its own linking `name` at 调查取证, with a document whose times are the
    recording's own minus `shift` (the device clock runs `shift` ahead)."""
    store, catalog, auth = world
    _open(catalog, auth, case, "行政处罚")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(hour),
                            case_number=case, selectors=[name], step="调查取证")
    s, e = _span(catalog, name)
    service.add_document(store, catalog, auth=auth, actor="ZF0101", now=_at(hour + 0.5),
                         case_number=case, kind="现场检查笔录", step="调查取证",
                         start_utc=s - shift, end_utc=e - shift)


def _av8(catalog: Catalog) -> tuple[list[tuple[str, str | None]], set[tuple[str, str]],
                                    set[str]]:
    pure = [(f.code, f.subject.id) for f in check_catalog(catalog, now_utc=STORED)
            if f.rule == "AV-8"]
    mism = {(r["case_number"], r["document_id"]) for r in catalog.query(
        "SELECT case_number, document_id FROM check_av8_documents WHERE mismatch").to_pylist()}
    clocks = {r["device"] for r in catalog.query(
        "SELECT device FROM check_av8_clock_offsets").to_pylist()}
    return pure, mism, clocks


def test_av8_a_document_10_minutes_off_its_recording_is_a_mismatch_in_both(
    timed: tuple[LocalStore, Catalog, Authority],
) -> None:
    _document_for(timed, P, "BC0007_0001.mp4", dt.timedelta(minutes=10), 1)
    pure, mism, clocks = _av8(timed[1])
    assert pure == [("DOCUMENT_TIME_MISMATCH", P)]
    assert mism == {(P, "D1")} and clocks == set()
    (f,) = [f for f in check_catalog(timed[1], now_utc=STORED) if f.rule == "AV-8"]
    assert "start +10 min 0 s, end +10 min 0 s" in f.detail


def test_av8_within_the_tolerance_is_quiet_in_both(
    timed: tuple[LocalStore, Catalog, Authority],
) -> None:
    _document_for(timed, P, "BC0007_0001.mp4", dt.timedelta(seconds=90), 1)
    assert _av8(timed[1]) == ([], set(), set())


def test_av8_a_constant_device_offset_is_one_clock_finding_not_many_mismatches(
    timed: tuple[LocalStore, Catalog, Authority],
) -> None:
    five = dt.timedelta(minutes=5)
    _document_for(timed, P, "BC0008_0001.mp4", five, 1)
    _document_for(timed, "遂大综执罚〔2026〕9号", "BC0008_0002.mp4", five, 2)
    _document_for(timed, "遂大综执罚〔2026〕8号", "BC0007_0001.mp4", dt.timedelta(0), 3)
    pure, mism, clocks = _av8(timed[1])
    assert pure == [("DEVICE_CLOCK_OFFSET", "BC-0008")]
    assert mism == set() and clocks == {"BC-0008"}


def test_av8_a_document_off_beyond_its_devices_offset_is_still_a_mismatch(
    timed: tuple[LocalStore, Catalog, Authority],
) -> None:
    _document_for(timed, P, "BC0008_0001.mp4", dt.timedelta(minutes=5), 1)
    _document_for(timed, "遂大综执罚〔2026〕9号", "BC0008_0002.mp4", dt.timedelta(minutes=5), 2)
    _document_for(timed, "遂大综执罚〔2026〕8号", "BC0008_0001.mp4", dt.timedelta(minutes=25), 3)
    pure, mism, clocks = _av8(timed[1])
    assert pure == [("DEVICE_CLOCK_OFFSET", "BC-0008"),
                    ("DOCUMENT_TIME_MISMATCH", "遂大综执罚〔2026〕8号")]
    assert mism == {("遂大综执罚〔2026〕8号", "D1")} and clocks == {"BC-0008"}


# --- AV-9 across files: a case's sessions, on recordings heard at ingest --------------------
SMALL = synth.Encoding(width=160, height=120)
T0 = (STORED - dt.timedelta(hours=3)).replace(microsecond=0)  # 3 h before storage
RATE = SMALL.sample_rate


def _tone(seconds: float) -> npt.NDArray[np.float32]:
    """A steady 1 kHz tone and nothing said: a start without an explanation."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


# A 6 s file lasts 6.021333 s in the catalog (its AAC audio: the encoder's priming and the
# last frame), to the microsecond the catalog keeps.
END = 6.021333
# name -> device, start (s after T0), seconds, spoken at its start
SESSION_FILES = {
    "BC0007_0001.mp4": ("BC-0007", 0.0, 6.0, True),
    "BC0007_0002.mp4": ("BC-0007", END + 95, 6.0, True),  # 95 s after, explained
    "BC0008_0001.mp4": ("BC-0008", 0.0, 6.0, True),
    "BC0008_0002.mp4": ("BC-0008", END + 47.25, 6.0, False),  # 47.25 s after, silent
    "BC0008_0003.mp4": ("BC-0008", 2 * END + 47.25 + 660, 6.0, False),  # 11 min later: new session
    "BC0010_0001.mp4": ("BC-0010", 0.0, 6.0, True),
    "BC0010_0002.mp4": ("BC-0010", END + 1.5, 6.0, False),  # 1.5 s after: within the allowance
    "BC0009_0001.mp4": ("BC-0009", -30 * 3600.0, 6.0, True),  # stored 33 h later: late
}


SIX_S = "only 0.0 s of speech from 6.0 s after it (1 s needed) in"


def _at_s(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[LocalStore, Catalog, Authority]]:
    """The files above, generated with their device and start in the container tags and
    the same in their labels, ingested for real (and heard at their starts)."""
    root = tmp_path_factory.mktemp("sessions")
    src = root / "in"
    src.mkdir()
    rows = ["file,case_number,inspected_entity,officer_ids,device_id,activity_type,"
            "recorded_start"]
    for name, (device, start_s, seconds, spoken) in SESSION_FILES.items():
        cam, start = synth.Camera(serial=device), _at_s(start_s)
        if spoken:
            synth.write_clean(src / name, seconds, start, camera=cam, encoding=SMALL)
        else:
            synth.write_with_interruption(src / name, seconds, start, gap_at_s=0.0, gap_s=0.0,
                                          after_resume=_tone(seconds), camera=cam,
                                          encoding=SMALL)
        rows.append(f"{name},{P},大柘镇某某餐馆,ZF0101;ZF0102,{device},investigation,"
                    f"{start.isoformat()}")
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with _ingested(root, src, labels) as w:
        yield w


def _case_linking(world: tuple[LocalStore, Catalog, Authority], case: str,
                  names: list[str]) -> None:
    store, catalog, auth = world
    _open(catalog, auth, case, "行政处罚")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(1),
                            case_number=case, selectors=names)


def _av9(catalog: Catalog, case: str) -> tuple[list[str], list[tuple[str, str, float]]]:
    pure = [f.detail for f in check_catalog(catalog, now_utc=STORED, case_number=case)
            if f.rule == "AV-9"]
    view = [(r["before_file"], r["after_file"], r["gap_seconds"]) for r in catalog.query(
        "SELECT before_file, after_file, gap_seconds FROM check_av9_sessions "
        "WHERE subject_id = ? ORDER BY at_utc", [case]).to_pylist()]
    return pure, view


@pytest.mark.slow  # the module's eight files are generated and ingested once: 20 s
def test_ingest_hears_each_start_and_records_the_silent_ones(
    sessions: tuple[LocalStore, Catalog, Authority],
) -> None:
    rows = sessions[1].query(
        "SELECT file_name, detail, at_seconds FROM findings_detail "
        "WHERE code = 'NO_SPEECH_AT_START' ORDER BY file_name").to_pylist()
    # The detector's last 32 ms chunk of a 6 s file (the decoder's flush) scores as speech.
    assert rows == [
        {"file_name": n, "detail": f"No spoken explanation at the start: in its first 10 s {h} "
         f"{s} s of a steady tone (1000 Hz) at -29 dBFS.", "at_seconds": 0.0}
        for n, h, s in (("BC0008_0002.mp4", SIX_S, 6), ("BC0008_0003.mp4", SIX_S, 6),
                        ("BC0010_0002.mp4", SIX_S, 6))]


@pytest.mark.slow
def test_av9_an_unexplained_interruption_between_a_cases_files_fires_in_both(
    sessions: tuple[LocalStore, Catalog, Authority],
) -> None:
    case = "遂大综执罚〔2026〕21号"
    _case_linking(sessions, case, [n for n in SESSION_FILES if not n.startswith("BC0009")])
    catalog = sessions[1]
    b1, b2 = _b3(catalog, "BC0008_0001.mp4"), _b3(catalog, "BC0008_0002.mp4")
    pure, view = _av9(catalog, case)
    assert pure == [
        f"case {case}, device BC-0008: BC0008_0002.mp4 (b3/{b2}) starts 47.250 s after "
        f"BC0008_0001.mp4 (b3/{b1}) ended ({_at_s(END).isoformat()} -> "
        f"{_at_s(END + 47.25).isoformat()}), and at its start: No spoken explanation at the "
        f"start: in its first 10 s {SIX_S} 6 s of a steady tone (1000 Hz) at -29 dBFS."]
    assert view == [("BC0008_0001.mp4", "BC0008_0002.mp4", 47.25)]
    gaps = catalog.query("SELECT device_id, before_file, after_file, gap_seconds, explained "
                         "FROM case_session_gaps WHERE case_number = ? ORDER BY device_id",
                         [case]).to_pylist()
    assert [tuple(g.values()) for g in gaps] == [
        ("BC-0007", "BC0007_0001.mp4", "BC0007_0002.mp4", 95.0, True),
        ("BC-0008", "BC0008_0001.mp4", "BC0008_0002.mp4", 47.25, False)]


@pytest.mark.slow
def test_av9_quiet_when_the_cases_interruption_is_explained_by_speech(
    sessions: tuple[LocalStore, Catalog, Authority],
) -> None:
    case = "遂大综执罚〔2026〕22号"
    _case_linking(sessions, case, ["BC0007_0001.mp4", "BC0007_0002.mp4"])
    assert _av9(sessions[1], case) == ([], [])


@pytest.mark.slow
def test_av9_quiet_when_the_files_either_side_belong_to_different_cases(
    sessions: tuple[LocalStore, Catalog, Authority],
) -> None:
    _case_linking(sessions, "遂大综执罚〔2026〕23号", ["BC0008_0001.mp4"])
    _case_linking(sessions, "遂大综执罚〔2026〕24号", ["BC0008_0002.mp4", "BC0008_0003.mp4"])
    for case in ("遂大综执罚〔2026〕23号", "遂大综执罚〔2026〕24号"):
        assert _av9(sessions[1], case) == ([], [])


@pytest.mark.slow
def test_av12_a_late_upload_is_listed_per_case_and_officer_and_timely_ones_are_not(
    sessions: tuple[LocalStore, Catalog, Authority],
) -> None:
    case = "遂大综执罚〔2026〕25号"
    _case_linking(sessions, case, ["BC0009_0001.mp4", "BC0007_0001.mp4"])
    catalog = sessions[1]
    late = catalog.query("SELECT officer_id, file_name, hours_late FROM case_late_ingests "
                         "WHERE case_number = ? ORDER BY officer_id", [case]).to_pylist()
    hours = (33 * 3600 - 6) / 3600  # ended 6.02 s into the 33 hours before storage (whole s)
    assert late == [{"officer_id": o, "file_name": "BC0009_0001.mp4", "hours_late": hours}
                    for o in ("ZF0101", "ZF0102")]
    codes = catalog.query("SELECT file_name, code, section, officer_ids FROM case_findings "
                          "WHERE case_number = ? AND rule = 'AV-12'", [case]).to_pylist()
    assert codes == [{"file_name": "BC0009_0001.mp4", "code": "INGEST_LATE",
                      "section": "综合行政执法队", "officer_ids": ["ZF0101", "ZF0102"]}]


# --- every rewritten view against its pure function, on a generated catalog -------------
def _generated(root: Path, seed: int) -> Catalog:
    """A catalog committed through Catalog.batch (no media): 40 cases of both types, 600
    recordings on 8 devices (some without a device or a time), in runs with gaps of 0 to
    15 min, 70% linked (some with a step, some unlinked again, some to two cases),
    documents (one device's clock 5 min off), exemptions of every kind, AV-13 triggers
    with some recordings not held, NO_SPEECH_AT_START on a third, and auxiliary staff
    alone on some recordings."""
    import random

    from schemas.people import StaffEventRecord
    from schemas.records import FindingRecord, RecordingRecord, RetentionEventRecord

    rnd = random.Random(seed)
    base = REAL_NOW - dt.timedelta(days=30)
    catalog = Catalog(root)
    staff = [StaffEventRecord(
        sid, 1, "registered", base, "ZF0001", "", kind, sid, "综合行政执法队", "执法队员",
        [kind], "active", f"ZJ-{sid}" if kind == "officer" else None, None, None, None,
        None, None, None, None, "not_applicable" if kind == "officer" else "passed")
        for sid, kind in [(f"ZF{i:04d}", "officer") for i in range(1, 7)]
        + [(f"FZ{i:04d}", "auxiliary") for i in range(1, 4)]]
    cases = [f"遂大综执{'罚' if i % 2 else '检'}〔2026〕{i}号" for i in range(40)]
    events = [CaseEventRecord(n, "opened", base, "ZF0001", case_type="行政处罚" if i % 2
                              else "行政检查", section="综合行政执法队",
                              officer_ids=["ZF0001"]) for i, n in enumerate(cases)]
    steps = {"行政处罚": ["调查取证", "听证", "文书送达"], "行政检查": ["程序启动", "调查取证"]}
    activities = ["investigation", "onsite_inspection", "complaint_handling",
                  "document_service", "hearing", None]
    devices = [f"D{i}" for i in range(8)] + [None, ""]
    recs, finds, rets = [], [], []
    clock = {d: base + dt.timedelta(hours=rnd.randrange(48)) for d in devices}
    for k in range(600):
        dev = rnd.choice(devices)
        start = clock[dev] + dt.timedelta(seconds=rnd.choice(
            [0, 1, 2, 3, 30, 299, 600, 601, 900]) + rnd.random() * (k % 3))
        end = start + dt.timedelta(seconds=rnd.randrange(20, 900))
        clock[dev] = end
        timed = rnd.random() > 0.05
        b3 = f"{seed:04x}{k:060x}"
        who = rnd.choice([["ZF0002"], ["FZ0001"], ["FZ0002", "FZ0003"], ["ZF0003", "FZ0001"],
                          []])
        recs.append(RecordingRecord(
            blake3=b3, size_bytes=1, source_path=f"/in/{k}.mp4", file_name=f"R{k:04d}.mp4",
            media_kind="video", container="mp4", duration_seconds=1.0, creation_time_utc=start,
            make=None, model=None, serial=None, gps_iso6709=None, case_number=None,
            inspected_entity=None, officer_ids=who, device_id=dev,
            activity_type=rnd.choice(activities), recorded_start_utc=start if timed else None,
            recorded_end_utc=end if timed else None, recorded_time_source="label",
            ingested_at_utc=REAL_NOW - dt.timedelta(days=rnd.choice([2, 20])), run_id="r",
            store_uri="file:///s", store_key=f"b3/{b3}", store_version=None,
            retain_until_utc=start, chunk_size_bytes=1, chunk_count=1, tags_json="{}"))
        if rnd.random() < 0.33:
            finds.append(FindingRecord(b3, f"/in/{k}.mp4", "r", "NO_SPEECH_AT_START", "AV-9",
                                       "interruption", "info", None, None, 0.0, "t", "t",
                                       f"silence 0-{k % 7} s", base))
        if rnd.random() < 0.7:
            # mostly a device's run of files to one case (its sessions), else any case
            n = cases[(devices.index(dev) * 7 + k // 60) % 40] if rnd.random() < 0.85 \
                else rnd.choice(cases)
            ctype = "行政处罚" if cases.index(n) % 2 else "行政检查"
            step = rnd.choice([None, None, *steps[ctype]])
            at = start + dt.timedelta(hours=1)
            events.append(CaseEventRecord(n, "linked", at, "ZF0001", recording_blake3=b3,
                                          step=step))
            rets.append(RetentionEventRecord(b3, rnd.choice(["case", "permanent"]), end,
                                             rnd.random() < 0.8, n, None, None, "ZF0001", at,
                                             "file:///s"))
            if rnd.random() < 0.05:
                events.append(CaseEventRecord(n, "unlinked", at + dt.timedelta(hours=1),
                                              "ZF0001", recording_blake3=b3))
            if rnd.random() < 0.05:
                events.append(CaseEventRecord(rnd.choice(cases), "linked",
                                              at + dt.timedelta(hours=2), "ZF0001",
                                              recording_blake3=b3))
            if rnd.random() < 0.15 and timed:
                off = dt.timedelta(seconds=300 if dev == "D3" else rnd.choice([0, 30, 700]))
                events.append(CaseEventRecord(
                    n, "document", at, "ZF0001", item_id=f"D{k}", kind="现场检查笔录",
                    step=step or rnd.choice(steps[ctype]), start_utc=start - off,
                    end_utc=end - off))
    for i, n in enumerate(cases):
        ctype = "行政处罚" if i % 2 else "行政检查"
        if i % 3 == 0:
            ex = CaseEventRecord(n, "exempted", base + dt.timedelta(days=1), "ZF0001",
                                 item_id="X1", step=rnd.choice(steps[ctype]),
                                 kind="emergency", text="" if i % 9 == 0 else "现场紧急",
                                 author_id="ZF0002")
            events.append(ex)
            if i % 4:
                events.append(CaseEventRecord(n, "acknowledged", ex.at_utc + dt.timedelta(
                    days=rnd.choice([1, 5])), "ZF0005", item_id="X1"))
        if i % 5 == 2:
            events.append(CaseEventRecord(n, "trigger", base + dt.timedelta(days=2),
                                          "ZF0001", kind="objection", text="异议"))
    batch = catalog.batch()
    batch.add(RecordingRecord, recs)
    batch.add(FindingRecord, finds)
    batch.add(CaseEventRecord, events)
    batch.add(RetentionEventRecord, rets)
    batch.add(StaffEventRecord, staff)
    batch.commit(base.date())
    return catalog


def _keyed(findings: list[Finding]) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = {}
    for f in findings:
        key: tuple[str, ...] = (f.subject.id,)
        if f.code == "STEP_NOT_RECORDED":
            key = (f.subject.id, f.detail.split("step ")[1].split(" ")[0])
        elif f.code == "UNEXPLAINED_INTERRUPTION":
            key = (f.subject.id, f.detail.split("(b3/")[1].split(")")[0])
        elif f.code == "AUXILIARY_ONLY":
            key = (f.subject.id, f.detail.split("step ")[1].split(":")[0])
        out.setdefault(f.code, set()).add(key)
    return out


def _view_keys(catalog: Catalog) -> dict[str, set[tuple[str, ...]]]:
    def rows(sql: str) -> set[tuple[str, ...]]:
        return {tuple(str(v) for v in r.values()) for r in catalog.query(sql).to_pylist()}

    return {
        "STEP_NOT_RECORDED": rows("SELECT case_number, step FROM check_av5_coverage "
                                  "WHERE covered_by IS NULL"),
        "EXEMPTION_INCOMPLETE": rows("SELECT case_number FROM check_av6_exemptions "
                                     "WHERE incomplete"),
        "EXEMPTION_UNACKNOWLEDGED": rows("SELECT case_number FROM check_av6_exemptions "
                                         "WHERE unacknowledged"),
        "EXEMPTION_ACK_LATE": rows("SELECT case_number FROM check_av6_exemptions "
                                   "WHERE ack_late"),
        "NOT_PERMANENT": rows("SELECT recording_blake3 FROM check_av13_permanent"),
        "RECORDING_UNLINKED": rows("SELECT blake3 FROM check_av12_unlinked "
                                   "WHERE days_since_ingest > 7"),
        "DOCUMENT_TIME_MISMATCH": rows("SELECT case_number FROM check_av8_documents "
                                       "WHERE mismatch"),
        "DEVICE_CLOCK_OFFSET": rows("SELECT device FROM check_av8_clock_offsets"),
        "UNEXPLAINED_INTERRUPTION": rows("SELECT case_number, recording_blake3 "
                                         "FROM check_av9_sessions"),
        "AUXILIARY_ONLY": rows("SELECT case_number, step FROM check_aux3_steps"),
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_each_check_view_agrees_with_its_pure_function_on_a_generated_catalog(
    tmp_path: Path, seed: int,
) -> None:
    from pipeline.cases.checks import recording_facts
    from pipeline.rules.cases import case_session_gaps, fold_cases

    catalog = _generated(tmp_path / "catalog", seed)
    pure = _keyed(check_catalog(catalog, now_utc=dt.datetime.now(dt.UTC)))
    views = _view_keys(catalog)
    assert {k for k, v in pure.items() if v} == set(views), "every check fires"
    assert all(len(v) >= 1 for v in views.values())
    for code, keys in views.items():
        assert pure.get(code, set()) == keys, code
    # every interruption, explained or not, with its exact gap and the files either side
    recs = recording_facts(catalog)
    want = {(g.case_number, g.device_id, g.before.blake3, g.before.file_name,
             g.after.blake3, g.after.file_name, g.gap.total_seconds(), g.explained)
            for c in fold_cases(service.read_events(catalog)).values()
            for g in case_session_gaps(c, recs)}
    got = {tuple(r.values()) for r in catalog.query(
        "SELECT case_number, device_id, before_blake3, before_file, after_blake3, "
        "after_file, gap_seconds, explained FROM case_session_gaps").to_pylist()}
    assert len(want) > 20 and {w[-1] for w in want} == {True, False}
    assert got == want
