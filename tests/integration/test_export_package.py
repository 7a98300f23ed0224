"""`custody export make` and `custody verify PACKAGE` end to end (issue 13 items 1-4).

A real case (labelled recordings, a request by the legal unit, approved by the section
chief) exported from the S3 Object Lock store (SeaweedFS) and from the local store; the
package checked by bagit-python, `python -m bagit --validate`, `sha256sum -c`/`sha512sum -c`
and `custody verify` on a moved copy; damage and edits named; refusals audited.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import bagit
import pytest

from pipeline.cli.main import main
from tests.acting import Acting
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated

CASE = "遂大综执罚〔2026〕7号"
CHUNK = 16384


Custody = Acting


def verify_package(path: Path) -> tuple[int, str]:
    """`custody verify PATH` with nothing else: no catalog, no store, no settings."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["verify", str(path)], env={}, out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def _setup(c: Custody, tmp_path: Path, media: list[Generated]) -> None:
    staff = [("A-1", "张三", "administrator", "办公室"), ("L-1", "赵六", "legal_unit", "法制办"),
             ("C-1", "孙科长", "section_chief", "综合执法队"),
             ("O-1", "李四", "officer", "综合执法队")]
    for n, (sid, name, role, section) in enumerate(staff, 1):
        assert c("staff", "add", sid, "--name", name, "--kind", "officer", "--section", section,
                 "--certificate", f"ZJ-000{n}", "--role", role, who="A-1") == 0, c.err
    assert c("staff", "add", "X-1", "--name", "王五", "--kind", "auxiliary", "--section",
             "综合执法队", "--post", "协管员", "--agency", "遂昌县人力资源公司", "--work-area",
             "大柘镇", "--contract-start", "2025-06-01", "--contract-end", "2027-05-31",
             "--first-hired", "2025-06-01", "--birth-date", "1995-05-01", "--screening",
             "passed", who="A-1") == 0, c.err
    src = tmp_path / "dock"
    src.mkdir()
    for g in media:
        shutil.copy(g.path, src / g.path.name)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,case_number,officer_ids\n" + "".join(
        f"{g.path.name},{CASE},O-1\n" for g in media), encoding="utf-8")
    assert c("ingest", str(src), "--labels", str(labels), "--chunk-size", str(CHUNK),
             "--quiet", who="O-1") in (0, 1), c.err


def _request(c: Custody, approver: str | None = "C-1") -> str:
    req = c.json("export", "request", "--case", CASE, "--recipient", "court", "--purpose",
                 "行政诉讼证据", who="L-1")
    export_id = str(req[0]["export_id"])
    if approver:
        assert c("export", "approve", export_id, who=approver) == 0, c.err
    return export_id


def _flip(path: Path, offset: int) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def s3_custody(s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               clean_recording: Generated, audio_recording: Generated) -> Custody:
    monkeypatch.chdir(tmp_path)
    uri = f"s3://{fresh_bucket(s3_config(s3_server).client())}/evidence"
    c = Custody(tmp_path, uri, s3_server.env())
    _setup(c, tmp_path, [clean_recording, audio_recording])
    return c


@pytest.fixture
def local_custody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  clean_recording: Generated, audio_recording: Generated) -> Custody:
    monkeypatch.chdir(tmp_path)
    c = Custody(tmp_path, str(tmp_path / "store"), {})
    _setup(c, tmp_path, [clean_recording, audio_recording])
    return c


def test_a_package_from_s3_validates_everywhere_and_names_damage(
    s3_custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    c = s3_custody
    export_id = _request(c)
    pkg = tmp_path / "out" / "package"
    pkg.parent.mkdir()
    made = c.json("export", "make", export_id, "--out", str(pkg), "--digest",
                  "sha512,sha256,sm3", who="L-1")
    assert made["items"] == 2 and len(made["bag_sha512"]) == 128
    assert sorted(p.name for p in pkg.parent.iterdir()) == ["package"]  # no partial left
    clip = pkg / "data" / clean_recording.path.name
    assert clip.read_bytes() == clean_recording.path.read_bytes()

    # the layout
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha512.txt", "manifest-sha256.txt",
                 "tagmanifest-sha512.txt", "sm3-manifest.txt", "电子数据清单.csv", "复制说明.txt",
                 "cover.html", "custody/chain-of-custody.jsonl", "integrity/001/chunks.csv",
                 "integrity/001/packets.csv", "integrity/001/findings.json"):
        assert (pkg / name).is_file(), name
    info = (pkg / "bag-info.txt").read_text("utf-8")
    assert "Source-Organization: 大柘镇人民政府" in info
    assert f"External-Identifier: {export_id}" in info and "Payload-Oxum: " in info
    inventory = list(csv.reader(io.StringIO((pkg / "电子数据清单.csv").read_text("utf-8-sig"))))
    assert inventory[0][:3] == ["序号", "文件名", "类别"] and len(inventory) == 3
    assert {r[1] for r in inventory[1:]} == {clean_recording.path.name, "voice.m4a"}
    assert all(len(r[10]) == 128 and len(r[11]) == 64 for r in inventory[1:])  # SHA-512, SM3
    making = (pkg / "复制说明.txt").read_text("utf-8")
    assert "批准人：C-1" in making and "申请人：L-1" in making and "VersionId" in making
    assert "（本地存储，无版本号）" not in making  # S3 versions named
    assert "电子数据清单" in (pkg / "cover.html").read_text("utf-8")
    packets = (pkg / "integrity/001/packets.csv").read_text().splitlines()
    assert packets[0].startswith("stream,packet,pts,dts,size,pos,blake3") and len(packets) > 50

    # validators that know nothing of Custody
    bagit.Bag(str(pkg)).validate()
    assert _run(sys.executable, "-m", "bagit", "--validate", str(pkg)).returncode == 0
    for tool, manifest in (("sha256sum", "manifest-sha256.txt"),
                           ("sha512sum", "manifest-sha512.txt"),
                           ("sha512sum", "tagmanifest-sha512.txt")):
        done = _run(tool, "-c", manifest, cwd=pkg)
        assert done.returncode == 0, done.stdout + done.stderr

    # the kept copy (AV-14) and the list
    listed = c.json("export", "list", who="L-1")
    assert listed[0]["status"] == "made" and listed[0]["packages"] == [made["bag_sha512"]]
    assert c("export", "list", who="L-1") == 0 and f"{made['bag_sha512'][:16]}…" in c.out
    from pipeline.storage import open_store

    store = open_store(c.store, env=c.env)
    kept = store.head(made["kept_copy"])
    assert kept.legal_hold and kept.retain_until_utc is not None
    assert kept.retain_until_utc.year >= 2126  # permanent: the longest retention
    with store.open(made["kept_copy"]) as fh:
        index = json.loads(fh.read())
    assert index["export_id"] == export_id and index["case_number"] == CASE
    assert index["bag_sha512"] == made["bag_sha512"]
    assert set(index["tag_files"]) >= {"tagmanifest-sha512.txt", "cover.html", "电子数据清单.csv",
                                       "custody/chain-of-custody.jsonl"}
    with store.open(index["tag_files"]["tagmanifest-sha512.txt"]) as fh:
        assert fh.read() == (pkg / "tagmanifest-sha512.txt").read_bytes()
    assert store.head(index["tag_files"]["cover.html"]).legal_hold

    # a copy moved elsewhere, no catalog, no store
    moved = tmp_path / "elsewhere" / "收到的包"
    moved.parent.mkdir()
    shutil.move(pkg, moved)
    code, out = verify_package(moved)
    assert code == 0, out
    assert out.startswith("OK   package")

    # one byte flipped in data/: everyone fails; custody names the file and the chunk
    moved_clip = moved / "data" / clean_recording.path.name
    offset = 2 * CHUNK + 100
    _flip(moved_clip, offset)
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(moved)).validate()
    assert _run(sys.executable, "-m", "bagit", "--validate", str(moved)).returncode != 0
    assert _run("sha256sum", "-c", "manifest-sha256.txt", cwd=moved).returncode != 0
    assert _run("sha512sum", "-c", "manifest-sha512.txt", cwd=moved).returncode != 0
    code, out = verify_package(moved)
    assert code == 1
    name = f"data/{clean_recording.path.name}"
    assert f"{name}: chunk 2 at byte offset {2 * CHUNK}, length {CHUNK}" in out
    assert f"{name}: SHA-256 " in out and f"{name}: SM3 " in out
    assert f"{name}: packet " in out  # the packet holding the byte
    assert "voice.m4a" not in out
    _flip(moved_clip, offset)  # back
    assert verify_package(moved)[0] == 0


def test_editing_one_line_of_the_chain_of_custody_excerpt_is_named(
    local_custody: Custody, tmp_path: Path
) -> None:
    c = local_custody
    export_id = _request(c)
    pkg = tmp_path / "pkg"
    assert c("export", "make", export_id, "--out", str(pkg), who="L-1") == 0, c.err
    excerpt = pkg / "custody" / "chain-of-custody.jsonl"
    lines = excerpt.read_bytes().splitlines()
    records = [i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "record"]
    assert len(records) >= 3  # the ingests, the request, the approval, the make
    doc = json.loads(lines[records[1]])
    rec = json.loads(doc["line"])
    rec["actor_id"] = "Z-9"
    doc["line"] = json.dumps(rec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    lines[records[1]] = json.dumps(doc, ensure_ascii=False).encode()
    excerpt.write_bytes(b"\n".join(lines) + b"\n")
    code, out = verify_package(pkg)
    assert code == 1
    assert (f"custody/chain-of-custody.jsonl: line {records[1] + 1}: audit record "
            f"#{rec['seq']}") in out and "the record was edited" in out
    # the tag manifest also says the file changed; nothing else is named
    assert "custody/chain-of-custody.jsonl: SHA-512 " in out
    assert "data/" not in out
    doc_out = io.StringIO()
    assert main(["verify", str(pkg), "--json"], env={}, out=doc_out, err=io.StringIO()) == 1
    v = json.loads(doc_out.getvalue())["verification"]
    assert v["kind"] == "package" and not v["ok"]
    assert [(f["code"], f["subject"]["id"]) for f in v["findings"]] == [
        ("FIXITY_MISMATCH", "custody/chain-of-custody.jsonl"),
        ("AUDIT_CHAIN_BROKEN", "custody/chain-of-custody.jsonl")]


def test_the_cover_pdf_renders_with_its_chinese_text(local_custody: Custody,
                                                      tmp_path: Path) -> None:
    for tool in ("pdftoppm", "pdftotext", "pdffonts"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (poppler-utils, make sysdeps) is not installed")
    c = local_custody
    export_id = _request(c)
    pkg = tmp_path / "pkg"
    assert c("export", "make", export_id, "--out", str(pkg), who="L-1") == 0, c.err
    pdf = pkg / "cover.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert "cover.pdf" in (pkg / "tagmanifest-sha512.txt").read_text("utf-8")
    done = _run("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                str(tmp_path / "page"))
    assert done.returncode == 0, done.stderr
    (png,) = tmp_path.glob("page*.png")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    text = _run("pdftotext", "-layout", str(pdf), "-").stdout
    for words in ("大柘镇人民政府", "电子数据移交说明", export_id, CASE, "sha256sum -c",
                  "如何仅用通用工具核验", "clean.mp4"):
        assert words in text, words
    fonts = _run("pdffonts", str(pdf)).stdout
    assert "CJK" in fonts  # the Chinese is drawn in an embedded Noto CJK font


def test_export_without_approval_or_approved_by_its_requester_is_refused_and_audited(
    local_custody: Custody, tmp_path: Path
) -> None:
    import datetime as dt

    from pipeline.catalog.core import Catalog
    from schemas.records import ExportEventRecord

    c = local_custody
    export_id = _request(c, approver=None)
    assert c("export", "make", export_id, "--out", str(tmp_path / "p1"), who="L-1") == 2
    assert "AV-15" in c.err and "not approved" in c.err
    # an approval by the requester cannot be given through the tool; put one in by hand
    state = c.json("export", "list", who="L-1")[0]
    cat = Catalog(tmp_path / "catalog")
    rows = cat.query("SELECT * FROM export_events WHERE export_id = ?", [export_id]).to_pylist()
    batch = cat.batch()
    batch.add(ExportEventRecord, [ExportEventRecord(
        export_id, "approved", list(rows[0]["recording_blake3s"]), CASE, "court",
        state["purpose"], "L-1", dt.datetime.now(dt.UTC))])
    batch.commit(dt.date.today())
    cat.close()
    assert c("export", "make", export_id, "--out", str(tmp_path / "p2"), who="L-1") == 2
    assert "approved by its own requester L-1" in c.err
    refused = c.json("audit", "show", "--who", "L-1", "--action", "export.request",
                     "--result", "refused", who="L-1")
    assert len(refused) == 2
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p2").exists()


def test_aux10_an_auxiliary_cannot_make_a_package(local_custody: Custody, tmp_path: Path) -> None:
    c = local_custody
    export_id = _request(c)
    assert c("export", "make", export_id, "--out", str(tmp_path / "p"), who="X-1") == 2
    assert "AUX-10" in c.err
    refused = c.json("audit", "show", "--who", "X-1", "--action", "export.request",
                     "--result", "refused", who="L-1")
    assert refused and refused[0]["object"] == export_id
    assert not (tmp_path / "p").exists()


def test_a_corrupted_stored_object_stops_the_export_naming_the_chunk(
    local_custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    import blake3

    c = local_custody
    export_id = _request(c)
    b3 = blake3.blake3(clean_recording.path.read_bytes()).hexdigest()
    obj = tmp_path / "store" / "objects" / "b3" / b3[:2] / b3
    assert obj.is_file()
    _flip(obj, 3 * CHUNK + 7)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    code = c("export", "make", export_id, "--out", str(out_dir / "pkg"), who="L-1")
    assert code == 2
    assert f"chunk 3 at byte offset {3 * CHUNK}, length {CHUNK}" in c.err
    assert clean_recording.path.name in c.err
    assert list(out_dir.iterdir()) == []  # nothing that looks like a package, nor a partial
    stopped = c.json("audit", "show", "--who", "L-1", "--action", "export.request",
                     "--result", "refused", who="L-1")
    assert "export make stopped" in stopped[-1]["reason"]


def test_made_events_written_before_their_fields_existed_are_still_read(tmp_path: Path) -> None:
    """A catalog part written the old way (the made record as JSON in `purpose`, no package
    columns) reads beside a made event with its own fields."""
    import datetime as dt

    import pyarrow as pa

    from pipeline.catalog.core import Catalog
    from pipeline.export.requests import export_state, list_exports, record_made

    at = [dt.datetime(2026, 5, 1, h, tzinfo=dt.UTC) for h in (8, 9, 10, 11)]
    old_schema = pa.schema([
        ("export_id", pa.string()), ("event", pa.string()),
        ("recording_blake3s", pa.list_(pa.string())), ("case_number", pa.string()),
        ("recipient", pa.string()), ("purpose", pa.string()), ("actor", pa.string()),
        ("at_utc", pa.timestamp("us", tz="UTC"))])
    old_made = json.dumps({"bag_sha512": "ab" * 64, "kept_key": "b3/" + "cd" * 32,
                           "out": "/exports/pkg"}, ensure_ascii=False, sort_keys=True)
    old = pa.Table.from_pylist([
        {"export_id": "EXP-1", "event": e, "recording_blake3s": ["ef" * 32],
         "case_number": CASE, "recipient": "court", "purpose": p, "actor": a, "at_utc": t}
        for e, p, a, t in (("requested", "行政诉讼证据", "L-1", at[0]),
                           ("approved", "行政诉讼证据", "C-1", at[1]),
                           ("made", old_made, "L-1", at[2]))], schema=old_schema)
    cat = Catalog(tmp_path / "catalog")
    cat.parts.write("old-batch", at[0].date(), {"export_events": old})
    (state,) = list_exports(cat)
    assert state.status == "made" and state.purpose == "行政诉讼证据"
    assert state.packages == ({"bag_sha512": "ab" * 64, "kept_key": "b3/" + "cd" * 32,
                               "out": "/exports/pkg", "clips": 0, "by": "L-1",
                               "at_utc": at[2]},)
    record_made(cat, state, "L-1", now=at[3], bag_digest="12" * 64, kept_key="b3/" + "34" * 32,
                out="/exports/pkg2", clips=2)
    again = export_state(cat, "EXP-1")
    assert [p["bag_sha512"] for p in again.packages] == ["ab" * 64, "12" * 64]
    assert again.packages[1]["clips"] == 2 and again.packages[1]["out"] == "/exports/pkg2"
    rows = cat.query("SELECT purpose, bag_sha512, clip_count FROM export_events "
                     "WHERE event = 'made' ORDER BY at_utc").to_pylist()
    assert rows == [{"purpose": old_made, "bag_sha512": None, "clip_count": None},
                    {"purpose": "行政诉讼证据", "bag_sha512": "12" * 64, "clip_count": 2}]
    cat.close()
