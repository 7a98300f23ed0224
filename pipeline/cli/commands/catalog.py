"""`custody catalog compact`: merge the catalog's small committed parts into large ones
(`pipeline.catalog.compact`), as one recorded commit; no row changes."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2,
          "mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes of `128MiB`, `64MB`, `1GiB`, `500000` (a plain number is bytes)."""
    m = _SIZE.match(text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None or float(m.group(1)) * unit < 1:
        raise InputError(f"--target-size {text!r}: expected a size such as 128MiB, 64MB or "
                         "1GiB (a plain number is bytes)")
    return int(float(m.group(1)) * unit)


def cmd_catalog_compact(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.catalog.compact import compact

    target = parse_size(args.target_size)
    with open_context(s, writes=False) as ctx:
        result = compact(ctx.catalog, auth=ctx.auth, actor=ctx.actor, target_bytes=target)
        if result.compacted:
            ctx.catalog.refresh_views()
    if s.json:
        ui.dump_json({"catalog": result.catalog, "compacted": result.compacted,
                      "compaction_id": result.compaction_id, "commit": result.where,
                      "target_bytes": result.target_bytes, "parts_before": result.parts_before,
                      "summary": result.summary(), "links_folded": result.links_folded,
                      "tables": [asdict(t) for t in result.tables]})
        return 0
    ui.write(f"{result.summary()}\n")
    if result.links_folded is not None:
        ui.write(f"case links folded: {result.links_folded} (case, recording) pairs, read "
                 "from case_links_folded with the events committed after it\n")
    if result.tables:
        ui.table([asdict(t) for t in result.tables],
                 ["table", "parts_before", "parts_merged", "parts_after", "rows",
                  "bytes_merged", "bytes_written", "largest_part_bytes"])
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    cat = sub.add_parser("catalog", help="catalog maintenance (compaction)",
                         description="Maintain the Parquet catalog.")
    cs = cat.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    p = cs.add_parser(
        "compact", parents=[shared],
        help="merge small committed parts into large ones (one recorded commit)",
        description="Merge, per table, every committed part smaller than the target size "
        "into parts of about that size, and commit them as one compaction: recorded in "
        "commits and in the audit log before it is visible, it supersedes the parts it "
        "merged, which stay where they are (WORM) and are no longer read. The rows the "
        "views give are the same before and after. A crash leaves the catalog as it was. "
        "Compacting a compacted catalog does nothing and says so. Holds the ingest lock "
        "(refused while an ingest runs). Needs the catalog.compact permission "
        "(administrator, officer, the nightly job's identity).",
    )
    p.add_argument("--target-size", default="128MiB", metavar="SIZE",
                   help="size of each merged part (default 128MiB; e.g. 64MB, 1GiB)")
    p.set_defaults(func=cmd_catalog_compact)
