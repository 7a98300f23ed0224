"""`custody device add|list`: recording devices with their section and custodian (AV-2, AV-10)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from schemas.people import DEVICE_TYPES, DEVICE_VIEW


def _device_row(d: Any) -> dict[str, Any]:
    return {"serial": d.serial, "type": d.device_type, "type_zh": DEVICE_TYPES[d.device_type],
            "section": d.section, "custodian": d.custodian_id, "make": d.make,
            "model": d.model, "status": d.status, "since_utc": d.at_utc}


def cmd_device_add(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    with open_context(s, writes=True, require_actor=True) as c:
        rec = c.auth.registry.add_device(
            c.auth, c.actor, args.serial, args.type, args.section, args.custodian,
            at_utc=s.now(), make=args.make, model=args.model, reason=args.reason,
        )
    if s.json:
        ui.dump_json(_device_row(rec))
    else:
        ui.write(f"registered device {rec.serial} ({DEVICE_TYPES[rec.device_type]} "
                 f"{rec.device_type}), section {rec.section}, custodian {rec.custodian_id}\n")
    return 0


def cmd_device_list(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    with open_context(s, writes=False, require_actor=True) as c:
        c.auth.authorize(c.actor, DEVICE_VIEW, "devices")
        rows = [_device_row(d) for d in c.auth.registry.devices()
                if args.section is None or d.section == args.section]
    if s.json:
        ui.dump_json(rows)
    else:
        ui.table(rows, ["serial", "type", "type_zh", "section", "custodian", "make",
                        "model", "status"])
        ui.write(f"({len(rows)} devices)\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    dev = sub.add_parser("device", help="recording device registry (AV-2, AV-10)",
                         description="Recording devices with their section and custodian.")
    ds = dev.add_subparsers(dest="device_command", required=True, metavar="SUBCOMMAND")
    types = ", ".join(f"{k} ({v})" for k, v in DEVICE_TYPES.items())
    p = ds.add_parser("add", parents=[shared], help="register a device with its custodian",
                      description=f"Register a device. Types (AV-2): {types}. The custodian "
                      "(AV-10) is an active person of the device's section.")
    p.add_argument("serial", metavar="SERIAL", help="device serial number (设备编号)")
    p.add_argument("--type", required=True, metavar="TYPE",
                   help="device type: code or Chinese name")
    p.add_argument("--section", required=True, metavar="SECTION", help="owning section (科室)")
    p.add_argument("--custodian", required=True, metavar="STAFF_ID", help="custodian")
    p.add_argument("--make", metavar="MAKE", help="manufacturer")
    p.add_argument("--model", metavar="MODEL", help="model")
    p.add_argument("--reason", default="", metavar="TEXT", help="note for the event")
    p.set_defaults(func=cmd_device_add)

    p = ds.add_parser("list", parents=[shared], help="list registered devices",
                      description="Every device.")
    p.add_argument("--section", metavar="SECTION", help="only this section")
    p.set_defaults(func=cmd_device_list)
