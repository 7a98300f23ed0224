"""infra/systemd/ and infra/cron.example: the units systemd itself accepts, the schedule it
computes, and the keys that make the job safe to leave unattended (issue 14)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
UNITS = INFRA / "systemd"
UNIT_NAMES = ("custody-nightly.service", "custody-nightly.timer",
              "custody-audit-seal.service", "custody-audit-seal.timer")
CUSTODY = "/opt/custody/.venv/bin/custody"
HOST_UNITS = Path("/usr/lib/systemd/system")


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections -> key -> values (a key may repeat), comments dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{name}: {line!r} before any section"
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze not on PATH (Debian package systemd)")
    return path


def _verify_root(tmp_path: Path) -> tuple[str, Path]:
    """(systemd-analyze, a root for `verify --root`): the host's own units, an empty
    /etc/systemd/system, and an executable where ExecStart points (verify refuses a
    missing command)."""
    analyze = _analyze()
    if not (HOST_UNITS / "sysinit.target").exists():
        pytest.skip(f"no systemd units at {HOST_UNITS} to verify against")
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / HOST_UNITS.relative_to("/"), symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    exe = root / CUSTODY.lstrip("/")
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return analyze, root


def test_the_directory_holds_exactly_the_four_units() -> None:
    assert sorted(p.name for p in UNITS.iterdir()) == sorted(UNIT_NAMES)


def test_systemd_accepts_every_unit_without_a_warning(tmp_path: Path) -> None:
    """`systemd-analyze verify --root` with the host's units and ours."""
    analyze, root = _verify_root(tmp_path)
    for name in UNIT_NAMES:
        shutil.copy(UNITS / name, root / "etc/systemd/system" / name)
    got = subprocess.run([analyze, "verify", f"--root={root}", *UNIT_NAMES],
                         capture_output=True, text=True, env={**os.environ, "TZ": "UTC"})
    assert (got.returncode, got.stdout + got.stderr) == (0, "")


def test_verify_would_report_a_mistyped_key(tmp_path: Path) -> None:
    """The control: the check above can fail (an unknown key is a warning on stderr)."""
    analyze, root = _verify_root(tmp_path)
    text = (UNITS / "custody-nightly.service").read_text()
    (root / "etc/systemd/system/custody-nightly.service").write_text(
        text.replace("SuccessExitStatus=1", "SucessExitStatus=1"))
    got = subprocess.run([analyze, "verify", f"--root={root}", "custody-nightly.service"],
                         capture_output=True, text=True)
    assert "Unknown key 'SucessExitStatus' in section [Service]" in got.stderr


def test_the_nightly_timer_fires_at_two_in_the_morning_china_time() -> None:
    timer = _unit("custody-nightly.timer")["Timer"]
    assert timer == {"OnCalendar": ["*-*-* 02:00:00 Asia/Shanghai"], "Persistent": ["true"],
                     "AccuracySec": ["1min"], "Unit": ["custody-nightly.service"]}
    got = subprocess.run(
        [_analyze(), "calendar", "--base-time=2026-06-01 12:00:00 UTC", "--iterations=2",
         timer["OnCalendar"][0]], capture_output=True, text=True, check=True,
        env={**os.environ, "TZ": "UTC"})
    elapses = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", got.stdout)
    assert elapses == ["2026-06-01 18:00:00", "2026-06-02 18:00:00"]  # 02:00 +08:00


def test_the_audit_seal_timer_fires_every_hour() -> None:
    timer = _unit("custody-audit-seal.timer")["Timer"]
    assert timer["OnCalendar"] == ["hourly"] and timer["Persistent"] == ["true"]
    assert timer["Unit"] == ["custody-audit-seal.service"]
    got = subprocess.run(
        [_analyze(), "calendar", "--base-time=2026-06-01 12:00:00 UTC", "--iterations=3",
         "hourly"], capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"})
    elapses = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", got.stdout)
    assert elapses == ["2026-06-01 13:00:00", "2026-06-01 14:00:00", "2026-06-01 15:00:00"]


@pytest.mark.parametrize("name", ["custody-nightly.service", "custody-audit-seal.service"])
def test_each_service_runs_sandboxed_as_the_service_account(name: str) -> None:
    svc = _unit(name)["Service"]
    one = {k: v[0] for k, v in svc.items() if len(v) == 1}
    assert one["Type"] == "oneshot"
    assert one["User"] == "custody-nightly" and one["Group"] == "custody"
    assert (one["NoNewPrivileges"], one["ProtectSystem"], one["PrivateTmp"]) == (
        "yes", "strict", "yes")
    assert one["ProtectHome"] == "read-only"
    assert one["CapabilityBoundingSet"] == "" and one["AmbientCapabilities"] == ""
    assert "/var/lib/custody" in one["ReadWritePaths"].split()


def test_the_nightly_service_runs_custody_nightly_and_findings_are_success() -> None:
    svc = _unit("custody-nightly.service")["Service"]
    assert svc["ExecStart"] == [f"{CUSTODY} nightly"]
    assert svc["SuccessExitStatus"] == ["1"]  # 1 = findings; 2 (the run failed) fails it
    assert svc["ReadWritePaths"] == ["/var/lib/custody /srv/dock /srv/dock-done"]
    assert svc["TimeoutStartSec"] == ["20h"]


def test_the_seal_service_runs_custody_audit_seal() -> None:
    svc = _unit("custody-audit-seal.service")["Service"]
    assert svc["ExecStart"] == [f"{CUSTODY} audit seal --quiet"]
    assert "SuccessExitStatus" not in svc  # any findings of a seal are a failure


def test_audit_seal_is_a_real_command() -> None:
    from pipeline.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["audit", "seal", "--quiet"])
    assert args.func.__name__ == "cmd_audit_seal"
    args = parser.parse_args(["nightly"])
    assert args.func.__name__ == "cmd_nightly"


# --- cron ---------------------------------------------------------------------------------
def _cron_jobs() -> list[tuple[str, str, str]]:
    """(schedule, user, command) of each job line of cron.example."""
    jobs = []
    for line in (INFRA / "cron.example").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        jobs.append((" ".join(fields[:5]), fields[5], fields[6]))
    return jobs


def test_cron_runs_the_nightly_job_at_two_and_the_seal_hourly() -> None:
    jobs = _cron_jobs()
    assert [(s, u) for s, u, _ in jobs] == [("0 2 * * *", "custody-nightly"),
                                            ("5 * * * *", "custody-nightly")]
    assert f"{CUSTODY} nightly >>" in jobs[0][2]
    assert f"{CUSTODY} audit seal --quiet >>" in jobs[1][2]
    text = (INFRA / "cron.example").read_text()
    assert "CRON_TZ=Asia/Shanghai" in text.splitlines()


def test_cron_commands_are_valid_sh_and_mail_only_a_failed_run(tmp_path: Path) -> None:
    """Each command parses (`sh -n`, no unescaped %), and run against a stand-in `custody`
    exiting 0, 1 and 2 it prints nothing for 0 and 1 (cron mails output) and the failure
    for 2."""
    sh = shutil.which("sh") or pytest.skip("no sh")
    for _, _, command in _cron_jobs():
        assert "%" not in command
        subprocess.run([sh, "-n", "-c", command], check=True)
    nightly = _cron_jobs()[0][2]
    work, logs = tmp_path / "lib", tmp_path / "log"
    work.mkdir()
    logs.mkdir()
    fake = tmp_path / "custody"
    outputs = {}
    for code in (0, 1, 2):
        fake.write_text(f"#!/bin/sh\necho line-of-run-{code} >&2\nexit {code}\n")
        fake.chmod(0o755)
        cmd = (nightly.replace(CUSTODY, str(fake)).replace("/var/lib/custody", str(work))
               .replace("/var/log/custody", str(logs)))
        outputs[code] = subprocess.run([sh, "-c", cmd], capture_output=True, text=True).stdout
    assert outputs[0] == outputs[1] == ""
    assert outputs[2].splitlines()[0] == "custody nightly failed: exit 2"
    assert outputs[2].splitlines()[-1] == "line-of-run-2"
