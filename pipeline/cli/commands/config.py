"""`custody config show`: which config file is in use and the effective settings."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.render import Output
from pipeline.cli.settings import Settings


def cmd_config_show(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    conf = s.config
    values = s.shown()
    origins = {k: s.origins.get(k, "default") for k in values if k != "s3"}
    if s.json:
        ui.dump_json({
            "config_file": str(conf.path) if conf.path else None, "found_by": conf.found_by,
            "searched": list(conf.searched), "settings": values, "origins": origins,
        })
        return 0
    if conf.path:
        ui.write(f"config file: {conf.path} (found by {conf.found_by})\n")
    else:
        ui.write("config file: none found\n")
    ui.write(f"searched: {', '.join(conf.searched)}\n\n")
    rows = [{"setting": k, "value": "" if v is None else v, "from": origins.get(k, "")}
            for k, v in values.items() if k != "s3"]
    rows += [{"setting": f"s3 {k}", "value": v, "from": ""} for k, v in values["s3"].items()]
    ui.table(rows, ["setting", "value", "from"])
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    cfg = sub.add_parser("config", help="the configuration in use",
                         description="Inspect the configuration: which file, which values.")
    cs = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = cs.add_parser("show", parents=[shared],
                      help="the config file used and the effective settings",
                      description="Print which config file was found (and where custody "
                      "looked, in order) and every effective setting with where it came "
                      "from: a flag, the environment, the file, or the default. Secrets are "
                      "not printed.")
    p.set_defaults(func=cmd_config_show)
