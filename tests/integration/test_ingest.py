"""End-to-end ingest on generated media: archive, findings, labels, idempotence, bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import blake3
import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.demo import synth
from pipeline.ingest.run import IngestSettings
from pipeline.progress import Tick
from pipeline.storage.local import LocalStore
from tests.ingesting import run_ingest
from tests.mediagen import START, Generated

NOW = START + dt.timedelta(hours=2)


def _settings(**kw: Any) -> IngestSettings:
    return IngestSettings(now=lambda: NOW, **kw)


def _run(src: Path | list[Path], tmp: Path, progress: Any = None, **kw: Any) -> Any:
    sources = src if isinstance(src, list) else [src]
    return run_ingest(sources, store=LocalStore(tmp / "store"), catalog=Catalog(tmp / "catalog"),
                      settings=_settings(**kw), progress=progress)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def inbox(tmp_path: Path, clean_recording: Generated, interrupted_recording: Generated,
          audio_recording: Generated, still_photo: Generated) -> Path:
    box = tmp_path / "inbox" / "cam1"
    box.mkdir(parents=True)
    for g in (clean_recording, interrupted_recording, audio_recording, still_photo):
        shutil.copy(g.path, box / g.path.name)
    (box / "notes.txt").write_text("not footage\n")
    (box / "empty.mp4").write_bytes(b"")
    return tmp_path / "inbox"


def test_ingest_archives_media_and_skips_the_rest_with_reasons(inbox: Path, tmp_path: Path) -> None:
    res = _run(inbox, tmp_path)
    by_name = {Path(o.path).name: o for o in res.files}
    assert {n for n, o in by_name.items() if o.status == "archived"} == {
        "clean.mp4", "interrupted.mp4", "voice.m4a", "photo.jpg"}
    assert by_name["notes.txt"].status == "skipped"
    assert "notes.txt: not a media file" in (by_name["notes.txt"].reason or "")
    assert by_name["empty.mp4"].status == "skipped"
    assert "empty file" in (by_name["empty.mp4"].reason or "")


def test_av9_interruption_is_a_finding_in_the_catalog(inbox: Path, tmp_path: Path) -> None:
    _run(inbox, tmp_path)
    rows = Catalog(tmp_path / "catalog").query(
        "SELECT file_name, stream_index, at_seconds FROM findings_detail "
        "WHERE code = 'GAP_IN_STREAM' ORDER BY stream_index"
    ).to_pylist()
    assert [(r["file_name"], r["stream_index"]) for r in rows] == [
        ("interrupted.mp4", 0), ("interrupted.mp4", 1)]  # video and audio, once each
    # The camera stopped at 3.5 s: each stream's last packet before it, within a frame.
    assert all(0 < 3.5 - r["at_seconds"] <= 1 / 30 for r in rows), rows


def test_each_archived_object_is_read_only_and_matches_its_blake3(
    inbox: Path, tmp_path: Path
) -> None:
    import blake3

    res = _run(inbox, tmp_path)
    store = LocalStore(tmp_path / "store")
    for o in res.files:
        if o.status == "archived":
            key = f"b3/{o.blake3}"
            assert store.is_read_only(key)
            with store.open(key) as fh:
                assert blake3.blake3(fh.read()).hexdigest() == o.blake3


def test_catalog_records_media_kinds_streams_chunks_and_packets(
    inbox: Path, tmp_path: Path
) -> None:
    _run(inbox, tmp_path)
    cat = Catalog(tmp_path / "catalog")
    kinds = {r["file_name"]: r["media_kind"]
             for r in cat.query("SELECT file_name, media_kind FROM recordings").to_pylist()}
    assert kinds == {"clean.mp4": "video", "interrupted.mp4": "video", "voice.m4a": "audio",
                     "photo.jpg": "image"}
    n = cat.query("""SELECT count(*) AS n FROM packets p JOIN recordings r
                     ON r.blake3 = p.recording_blake3 WHERE r.file_name = 'clean.mp4'""")
    s = cat.query("""SELECT sum(packet_count) AS n FROM streams s JOIN recordings r
                     ON r.blake3 = s.recording_blake3 WHERE r.file_name = 'clean.mp4'""")
    assert n.column("n")[0].as_py() == s.column("n")[0].as_py() > 100
    c = cat.query("SELECT chunk_count, size_bytes, chunk_size_bytes FROM recordings "
                  "WHERE file_name = 'clean.mp4'").to_pylist()[0]
    assert c["chunk_count"] == -(-c["size_bytes"] // c["chunk_size_bytes"])


def test_reingesting_the_same_bytes_adds_nothing(inbox: Path, tmp_path: Path) -> None:
    _run(inbox, tmp_path)
    again = _run(inbox, tmp_path)
    assert {o.status for o in again.files if o.path.endswith((".mp4", ".m4a", ".jpg"))
            and not o.path.endswith("empty.mp4")} == {"already_archived"}
    cat = Catalog(tmp_path / "catalog")
    assert cat.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py() == 4
    assert cat.query("SELECT count(*) AS n FROM findings WHERE run_id = ?",
                     [again.run_id]).column("n")[0].as_py() == 0


def test_same_name_with_different_bytes_is_a_new_object_and_a_finding(
    tmp_path: Path, clean_recording: Generated, short_recording: Generated
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy(clean_recording.path, first / "REC0001.mp4")
    shutil.copy(short_recording.path, second / "REC0001.mp4")
    _run(first, tmp_path)
    res = _run(second, tmp_path)
    (o,) = res.files
    assert o.status == "archived"
    assert [f.code for f in o.findings] == ["LABEL_MISSING", "NAME_REUSED"]
    first_b3 = blake3.blake3(clean_recording.path.read_bytes()).hexdigest()
    assert o.findings[1].detail == (
        f"REC0001.mp4 was archived before with other content (BLAKE3 {first_b3[:16]}…); "
        "both are kept")
    assert Catalog(tmp_path / "catalog").query(
        "SELECT count(DISTINCT blake3) AS n FROM recordings WHERE file_name = 'REC0001.mp4'"
    ).column("n")[0].as_py() == 2


def test_av12_labels_are_applied_and_an_unlabelled_file_is_still_archived(
    inbox: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,case_number,inspected_entity,officer_ids,device_id,activity_type,recorded_start\n"
        "cam1/clean.mp4,遂大综执罚〔2026〕12号,某某餐馆,ZF001;ZF002,BC-7,现场检查,"
        "2024-05-01T16:00:00+08:00\n", encoding="utf-8")
    res = _run(inbox, tmp_path, labels_path=str(labels))
    by_name = {Path(o.path).name: o for o in res.files}
    assert [f.code for f in by_name["clean.mp4"].findings] == []
    assert [f.code for f in by_name["interrupted.mp4"].findings] == [
        "GAP_IN_STREAM", "GAP_IN_STREAM", "LABEL_MISSING"]
    row = Catalog(tmp_path / "catalog").query(
        "SELECT * FROM recordings_by_officer WHERE file_name = 'clean.mp4' ORDER BY officer_id"
    ).to_pylist()
    assert [r["officer_id"] for r in row] == ["ZF001", "ZF002"]
    assert row[0]["case_number"] == "遂大综执罚〔2026〕12号"
    assert row[0]["activity_type"] == "onsite_inspection"
    assert row[0]["recorded_time_source"] == "label"


def test_av12_late_ingest_is_flagged_and_prompt_ingest_is_not(
    tmp_path: Path, clean_recording: Generated
) -> None:
    on_time = _run(clean_recording.path, tmp_path / "x")
    assert "INGEST_LATE" not in {f.code for f in on_time.files[0].findings}
    late = run_ingest([clean_recording.path], store=LocalStore(tmp_path / "s"),
                  catalog=Catalog(tmp_path / "c"),
                  settings=IngestSettings(now=lambda: START + dt.timedelta(hours=30)))
    (f,) = [f for f in late.files[0].findings if f.code == "INGEST_LATE"]
    assert f.rule == "AV-12" and f.category == "deadline"


def test_retention_counts_from_recording_time_with_minimum_lock(
    tmp_path: Path, clean_recording: Generated
) -> None:
    _run(clean_recording.path, tmp_path)
    (r,) = Catalog(tmp_path / "catalog").query(
        "SELECT retain_until_utc, store_key FROM recordings").to_pylist()
    assert r["retain_until_utc"] == START.replace(year=START.year + 1)
    assert LocalStore(tmp_path / "store").head(r["store_key"]).retain_until_utc == \
        START.replace(year=START.year + 1)


def test_unreadable_source_fails_with_reason_and_batch_goes_on(
    tmp_path: Path, clean_recording: Generated
) -> None:
    if os.geteuid() == 0:
        missing = tmp_path / "gone.mp4"  # root reads everything: use a missing file instead
    else:
        missing = tmp_path / "locked.mp4"
        shutil.copy(clean_recording.path, missing)
        missing.chmod(0)
    res = _run([missing, clean_recording.path], tmp_path)
    assert [o.status for o in res.files] == ["failed", "archived"]
    assert str(missing) in (res.files[0].reason or "")
    assert res.exit_code() == 1  # the run did its job and names the file (issue 9)


def test_truncated_copy_is_archived_with_a_damage_finding(
    tmp_path: Path, clean_recording: Generated
) -> None:
    data = clean_recording.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    res = _run(cut, tmp_path)
    (o,) = res.files
    assert o.status == "archived"
    assert {f.category for f in o.findings} & {"damage"}


def test_cli_json_document_has_the_stable_shape(inbox: Path, tmp_path: Path) -> None:
    code, out, _ = _cli("ingest", str(inbox), "--store", str(tmp_path / "s"),
                        "--catalog", str(tmp_path / "c"), "--json")
    doc = json.loads(out)
    assert code == 1
    assert set(doc) == {"run", "files"}
    assert {"path", "status", "reason", "blake3", "findings"} <= set(doc["files"][0])
    findings = [f for x in doc["files"] for f in x["findings"]]
    assert findings
    for f in findings:
        assert {"code", "rule", "category", "severity", "stream", "at_seconds", "title_en",
                "title_zh", "detail"} <= set(f)
        assert f["category"] in {"interruption", "edit", "damage", "timing", "provenance",
                                 "labelling", "deadline"}
    assert {x["status"] for x in doc["files"]} <= {"archived", "already_archived", "skipped",
                                                    "failed"}


def test_cli_labels_file_that_cannot_be_parsed_is_an_error_before_anything_is_stored(
    inbox: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("name,case\n", encoding="utf-8")
    code, _out, err = _cli("ingest", str(inbox), "--store", str(tmp_path / "s"),
                          "--catalog", str(tmp_path / "c"), "--labels", str(bad))
    assert code == 2
    assert "labels.csv" in err and "'file'" in err
    assert not [p for p in (tmp_path / "s").rglob("*") if p.is_file() and "objects" in p.parts]


def test_cli_query_prints_csv(inbox: Path, tmp_path: Path) -> None:
    _cli("ingest", str(inbox), "--store", str(tmp_path / "s"), "--catalog", str(tmp_path / "c"))
    code, out, _ = _cli("query", "--catalog", str(tmp_path / "c"), "--store", str(tmp_path / "s"),
                        "--csv",
                        "SELECT file_name FROM recordings ORDER BY file_name")
    assert code == 0
    assert out.splitlines() == ["file_name", "clean.mp4", "interrupted.mp4", "photo.jpg",
                                "voice.m4a"]


def test_cli_bad_sql_is_one_line_error(tmp_path: Path) -> None:
    Catalog(tmp_path / "c")  # a catalog that exists (a missing one is another error)
    LocalStore(tmp_path / "s")  # and its store (a read creates neither)
    code, _, err = _cli("query", "--catalog", str(tmp_path / "c"), "--store", str(tmp_path / "s"),
                        "SELEC nonsense")
    assert code == 2
    assert err.startswith("custody query: error: query failed") and err.count("\n") == 1


def test_every_command_and_argument_has_help() -> None:
    import argparse

    from pipeline.cli.main import build_parser

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert sub.description, f"{path} {name} has no description"
                    walk(sub, f"{path} {name}")
            elif action.dest != "help":
                assert action.help, f"{path} {action.option_strings or action.dest} has no help"

    walk(build_parser(), "custody")


def test_make_demo_generator_makes_media_with_device_tags(tmp_path: Path) -> None:
    path = synth.write_clean(tmp_path / "x.mp4", 1.0, START)
    from pipeline.media.probe import probe

    r = probe(path)
    assert r.make and r.model and r.creation_time_utc == START


def test_av9_gap_between_consecutive_files_of_one_camera(tmp_path: Path) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    cam = synth.Camera(serial="BC-0007")
    synth.write_clean(src / "BC0007_0001.mp4", 3.0, START, camera=cam)
    synth.write_clean(src / "BC0007_0002.mp4", 3.0, START + dt.timedelta(seconds=3), camera=cam)
    synth.write_clean(src / "BC0007_0003.mp4", 3.0, START + dt.timedelta(seconds=40), camera=cam)
    res = _run(src, tmp_path)
    codes = {Path(o.path).name: [f.code for f in o.findings] for o in res.files}
    assert codes == {
        "BC0007_0001.mp4": ["LABEL_MISSING"],
        "BC0007_0002.mp4": ["LABEL_MISSING"],  # starts as the first one ends
        "BC0007_0003.mp4": ["LABEL_MISSING", "GAP_BETWEEN_FILES"],
    }
    (gap,) = [f for o in res.files for f in o.findings if f.code == "GAP_BETWEEN_FILES"]
    assert gap.detail.startswith(
        "Device BC-0007: BC0007_0003.mp4 starts 34.0 s after BC0007_0002.mp4 ended")


def test_av9_interruption_explained_by_voice_is_not_unexplained(
    tmp_path: Path, interrupted_recording: Generated
) -> None:
    res = _run(interrupted_recording.path, tmp_path)
    assert [(f.code, f.stream_index) for f in res.files[0].findings] == [
        ("GAP_IN_STREAM", 0), ("GAP_IN_STREAM", 1), ("LABEL_MISSING", None)]


def test_av9_interruption_followed_by_no_speech_is_unexplained(tmp_path: Path) -> None:
    path = synth.write_with_interruption(tmp_path / "silent.mp4", 10.0, START, gap_at_s=3.0,
                                         gap_s=5.0, silent_after_resume=True)
    res = _run(path, tmp_path)
    (f,) = [f for f in res.files[0].findings if f.code == "UNEXPLAINED_INTERRUPTION"]
    assert f.rule == "AV-9" and f.title_zh == "中断后未作语音说明"
    assert f.at_seconds is not None and abs(f.at_seconds - 8.0) < 0.05
    assert "steady" in f.detail


def test_av10_recording_from_an_unregistered_device_is_flagged(tmp_path: Path) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    synth.write_clean(src / "A.mp4", 2.0, START, camera=synth.Camera(serial="BC-0007"))
    synth.write_clean(src / "B.mp4", 2.0, START, camera=synth.Camera(serial="BC-9999"))
    common = ["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")]
    assert _cli("staff", "add", "A-1", "--name", "张三", "--kind", "officer", "--section",
                "综合执法队", "--certificate", "ZJ-1", "--role", "administrator",
                "--role", "officer", "--as", "A-1", *common)[0] == 0
    code, _, err = _cli("device", "add", "BC-0007", "--type", "body_camera", "--section",
                        "综合执法队", "--custodian", "A-1", "--as", "A-1", *common)
    assert code == 0, err
    code, out, err = _cli("ingest", str(src), "--json", "--as", "A-1", *common)
    assert code == 1, err
    codes = {Path(f["path"]).name: [x["code"] for x in f["findings"]]
             for f in json.loads(out)["files"]}
    assert codes == {  # recorded in 2024, ingested now: late too
        "A.mp4": ["LABEL_MISSING", "INGEST_LATE"],
        "B.mp4": ["LABEL_MISSING", "INGEST_LATE", "DEVICE_UNKNOWN"],
    }


def test_ingest_of_the_shared_corpus_exits_1_and_accounts_for_every_file(
    shared_media: Path, tmp_path: Path
) -> None:
    code, out, err = _cli("ingest", str(shared_media), "--store", str(tmp_path / "s"),
                          "--catalog", str(tmp_path / "c"), "--json")
    assert code == 1, err
    files = {Path(f["path"]).name: f for f in json.loads(out)["files"]}
    on_disk = {p.name for p in shared_media.iterdir() if p.is_file()}
    assert set(files) == on_disk
    for name, f in files.items():
        assert f["status"] in ("archived", "skipped"), name
        if f["status"] == "skipped":
            assert f["reason"], name
    assert files["MANIFEST.tsv"]["status"] == "skipped"
    damage = {n: {x["code"] for x in f["findings"] if x["category"] == "damage"}
              for n, f in files.items()}
    assert damage["sample_malformed_free_box.mp4"] == {"MEDIA_UNREADABLE"}
    assert "MEDIA_TRUNCATED" in damage["sample_mdat_too_long.mp4"]
    assert "MEDIA_TRUNCATED" in damage["mp4parse_invalid_userdata.mp4"]
    assert damage["mp4parse_zero_empty_stsc.mp4"]


def test_full_demux_option_gives_the_same_catalog_packets(
    tmp_path: Path, interrupted_recording: Generated
) -> None:
    a = run_ingest([interrupted_recording.path], store=LocalStore(tmp_path / "s1"),
               catalog=Catalog(tmp_path / "c1"), settings=_settings())
    b = run_ingest([interrupted_recording.path], store=LocalStore(tmp_path / "s2"),
               catalog=Catalog(tmp_path / "c2"), settings=_settings(full_demux=True))
    assert [f.code for f in a.files[0].findings] == [f.code for f in b.files[0].findings]
    q = "SELECT * EXCLUDE (batch, date) FROM packets ORDER BY stream_index, packet_index"
    first, second = Catalog(tmp_path / "c1").query(q), Catalog(tmp_path / "c2").query(q)
    assert first.num_rows > 100 and first.to_pylist() == second.to_pylist()


def test_progress_is_weighted_by_bytes(inbox: Path, tmp_path: Path) -> None:
    """One Tick before each file and one at the end; bytes are the files' sizes, in order."""
    ticks: list[Tick] = []
    res = _run(inbox, tmp_path, progress=ticks.append)
    sizes = [os.stat(o.path).st_size for o in res.files]
    assert len(ticks) == len(res.files) + 1 == 7
    assert [t.done_bytes for t in ticks] == [sum(sizes[:i]) for i in range(7)]
    assert {t.total_bytes for t in ticks} == {sum(sizes)}
    assert [t.done_items for t in ticks] == list(range(7))
    assert [t.current for t in ticks[:-1]] == [o.path for o in res.files]
