"""`make demo`: a night's docking-station folder, ingested into the embedded default store.

Generates body-camera-like recordings (H.264 + AAC, burned-in clock) for two officers:
a clean inspection, one with a 5-second interruption (AV-9), one spliced from two
recordings by stream copy (AV-9), a voice recorder file, a photo, and one recording docked
three days late (AV-12), with a labels file that leaves one file unlabelled. It then
ingests them (and the shared real-media corpus when it is present beside the project)
into `<out>/store` and `<out>/catalog`, and prints the summary and the findings.

The output folder is demo output only and is recreated on each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.main import main as cli_main
from pipeline.cli.settings import os_account
from pipeline.demo import synth
from pipeline.people.identity import OsAccount

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def generate(folder: Path, now: dt.datetime) -> Path:
    """Write the demo recordings and their labels file; returns the labels file."""
    cam = folder / "dock" / "BC-0007"
    cam.mkdir(parents=True)
    bc7 = synth.Camera(make="Custody", model="SYNTH-BC1", serial="BC-0007")
    bc9 = synth.Camera(make="Custody", model="SYNTH-BC1", serial="BC-0009")
    t0 = (now - dt.timedelta(hours=3)).replace(microsecond=0)
    synth.write_clean(cam / "BC0007_0001.mp4", 12.0, t0, camera=bc7)
    synth.write_with_interruption(
        cam / "BC0007_0002.mp4", 15.0, t0 + dt.timedelta(minutes=20), gap_at_s=6.0,
        gap_s=5.0, camera=bc7,
    )
    work = folder / "work"
    work.mkdir()
    a = synth.write_clean(work / "a.mp4", 6.0, t0 + dt.timedelta(minutes=40), camera=bc7)
    b = synth.write_clean(work / "b.mp4", 6.0, t0 + dt.timedelta(minutes=55), camera=bc7)
    synth.splice([a, b], cam / "BC0007_0003.mp4")
    shutil.rmtree(work)
    other = folder / "dock" / "BC-0009"
    other.mkdir(parents=True)
    late = (now - dt.timedelta(days=3)).replace(microsecond=0)
    synth.write_clean(other / "BC0009_0001.mp4", 8.0, late, camera=bc9)
    synth.write_clean(other / "BC0009_0002.mp4", 8.0, t0 + dt.timedelta(minutes=5), camera=bc9)
    recorder = folder / "dock" / "VR-0002"
    recorder.mkdir(parents=True)
    synth.write_audio_only(recorder / "VOICE0001.m4a", 6.0, t0)
    synth.write_still(recorder / "PHOTO0001.jpg", t0)
    (folder / "dock" / "README.txt").write_text("docking station notes, not footage\n")

    def local(t: dt.datetime) -> str:
        return t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds")

    rows = [
        ("BC-0007/BC0007_0001.mp4", "遂大综执检〔2026〕31号", "大柘镇某某餐馆", "ZF0101;FZ0201",
         "BC-0007", "现场检查", local(t0)),
        ("BC-0007/BC0007_0002.mp4", "遂大综执检〔2026〕31号", "大柘镇某某餐馆", "ZF0101",
         "BC-0007", "调查取证", local(t0 + dt.timedelta(minutes=20))),
        ("BC-0007/BC0007_0003.mp4", "遂大综执罚〔2026〕7号", "某某建材商行", "ZF0101;ZF0102",
         "BC-0007", "执法文书送达", local(t0 + dt.timedelta(minutes=40))),
        ("BC-0009/BC0009_0001.mp4", "遂大综执罚〔2026〕5号", "某某农资店", "ZF0103",
         "BC-0009", "random_inspection", local(late)),
        ("VR-0002/VOICE0001.m4a", "遂大综执检〔2026〕31号", "大柘镇某某餐馆", "ZF0101",
         "VR-0002", "investigation", local(t0)),
        ("VR-0002/PHOTO0001.jpg", "遂大综执检〔2026〕31号", "大柘镇某某餐馆", "ZF0101;FZ0201",
         "CAM-0001", "evidence_preservation", local(t0)),
    ]
    labels = folder / "labels.csv"
    with open(labels, "w", encoding="utf-8") as fh:
        fh.write("文件,案号,被检查单位,执法人员,设备编号,执法类别,开始时间\n")
        for row in rows:
            fh.write(",".join(row) + "\n")
    return labels


STAFF = [
    # staff number, name, kind-specific arguments
    ("ZF0001", "陈明", ["--kind", "officer", "--section", "办公室", "--certificate",
                        "33-0827-0001", "--role", "administrator"]),
    ("ZF0101", "张伟", ["--kind", "officer", "--section", "综合行政执法队", "--certificate",
                        "33-0827-0101", "--role", "officer", "--role", "analyst"]),
    ("ZF0102", "李娜", ["--kind", "officer", "--section", "综合行政执法队", "--certificate",
                        "33-0827-0102", "--role", "officer"]),
    ("ZF0103", "王强", ["--kind", "officer", "--section", "综合行政执法队", "--certificate",
                        "33-0827-0103", "--role", "officer"]),
    ("ZF0301", "赵敏", ["--kind", "officer", "--section", "法制办", "--certificate",
                        "33-0827-0301", "--role", "legal_unit"]),
    ("FZ0201", "刘洋", ["--kind", "auxiliary", "--section", "综合行政执法队", "--post", "协管员",
                        "--agency", "遂昌县人力资源服务公司", "--work-area", "大柘镇",
                        "--birth-date", "1998-04-12", "--first-hired", "2024-03-01",
                        "--contract-start", "2024-03-01", "--contract-end", "2027-02-28",
                        "--screening", "passed", "--id-number", "330827199804120000"]),
]


# Who logs in as whom in the demo. The account running the demo is the administrator; the
# other people get stand-in account names (with the runner's uid), as their own logins would
# be in a deployment, so each command is bound by the demo's identities file (issue 10).
DEMO_LOGINS = {"ZF0101": "demo-zf0101", "FZ0201": "demo-fz0201", "ZF0301": "demo-zf0301"}


def _identities(out: Path) -> tuple[Path, OsAccount]:
    """The demo's own identities file and config, under its data dir (owned by the runner):
    honoured only because the catalog there is the runner's own and the machine has no
    /etc/custody/identities.toml (pipeline.people.identity)."""
    me = os_account()
    lines = ["[accounts]", f'"{me.name}" = "ZF0001"',
             *(f'"{login}" = "{staff}"' for staff, login in DEMO_LOGINS.items())]
    ids = out / "identities.toml"
    ids.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(ids, 0o644)
    cfg = out / "custody.toml"
    cfg.write_text('[custody]\nidentities = "identities.toml"\n', encoding="utf-8")
    os.chmod(cfg, 0o644)
    return cfg, me


def _cli(argv: list[str], *, staff: str, me: OsAccount, **kw: Any) -> int:
    """`custody argv` as `staff` logs in: the runner for ZF0001, a stand-in login otherwise."""
    login = DEMO_LOGINS.get(staff)
    account = OsAccount(me.uid, login) if login else me
    return cli_main([*argv, "--as", staff], account=account, **kw)


def _register(common: list[str], me: OsAccount) -> None:
    """Personnel and devices, so every command below acts as a named person (issue 4)."""
    quiet = io.StringIO()
    print("$ custody staff add ... / custody device add ...  (6 people, 3 devices; "
          "BC-0009 is left unregistered)", flush=True)
    for staff_id, name, extra in STAFF:
        code = _cli(["staff", "add", staff_id, "--name", name, *extra, *common],
                    staff="ZF0001", me=me, out=quiet)
        assert code == 0, f"demo: could not register {staff_id}"
    for serial, kind in (("BC-0007", "body_camera"), ("VR-0002", "voice_recorder"),
                         ("CAM-0001", "camera")):
        code = _cli(["device", "add", serial, "--type", kind, "--section", "综合行政执法队",
                     "--custodian", "ZF0102", *common], staff="ZF0001", me=me, out=quiet)
        assert code == 0, f"demo: could not register {serial}"


def run(out: Path, *, with_shared: bool = True) -> int:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    print(f"Generating demo recordings in {out / 'dock'} ...", flush=True)
    labels = generate(out, now)
    sources = [str(out / "dock")]
    if with_shared and (SHARED_MEDIA / "MANIFEST.tsv").exists():
        sources.append(str(SHARED_MEDIA))
        print(f"Also ingesting the shared real-media corpus {SHARED_MEDIA}", flush=True)
    cfg, me = _identities(out)
    common = ["--store", str(out / "store"), "--catalog", str(out / "catalog"),
              "--config", str(cfg)]
    _register(common, me)
    print("\n$ custody ingest " + " ".join(sources) + f" --labels {labels} --as FZ0201 ...\n",
          flush=True)
    code = _cli(["ingest", *sources, "--labels", str(labels), *common], staff="FZ0201", me=me)
    print("\n$ custody query 'SELECT * FROM findings_summary'\n")
    _cli(["query", "SELECT code, rule, severity, title_zh, title_en, findings "
          "FROM findings_summary", *common], staff="ZF0101", me=me)
    buf = io.StringIO()
    _cli(["verify", *common], staff="ZF0101", me=me, out=buf)
    print("\n$ custody verify --as ZF0101\n" + buf.getvalue().splitlines()[-1])
    print("\n$ custody retention set --case 遂大综执罚〔2026〕7号 --tier permanent "
          "--trigger review_litigation --as FZ0201   (an auxiliary: refused, AUX-10)")
    refused = ["retention", "set", "--case", "遂大综执罚〔2026〕7号", "--tier", "permanent",
               "--trigger", "review_litigation", *common]
    _cli(refused, staff="FZ0201", me=me)
    print("$ custody retention set ... --as ZF0301   (legal unit)")
    _cli([*refused, "--reason", "行政复议申请"], staff="ZF0301", me=me)
    print("\n$ custody audit show --who FZ0201 --result refused --as ZF0301")
    _cli(["audit", "show", "--who", "FZ0201", "--result", "refused", *common],
         staff="ZF0301", me=me)
    print(f"\nDone (ingest exit code {code}: 0 clean, 1 findings, 2 errors). The catalog is "
          f"{out / 'catalog' / 'catalog.duckdb'}; try:\n"
          f"  .venv/bin/custody query --catalog {out / 'catalog'} --store {out / 'store'} "
          f"--config {cfg} 'SELECT * FROM recordings_by_entity'\n"
          f"(you act as ZF0001, the administrator: {cfg} maps your account in "
          f"{out / 'identities.toml'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.demo.run", description=__doc__)
    p.add_argument("--out", default="demo-data", help="output folder (recreated)")
    p.add_argument("--no-shared", action="store_true", help="skip the shared media corpus")
    args = p.parse_args(argv)
    return run(Path(args.out), with_shared=not args.no_shared)


if __name__ == "__main__":
    sys.exit(main())
