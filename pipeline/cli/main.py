"""The `custody` command: parse, build one Settings, call one command, turn errors into codes.

Exit codes: 0 clean, 1 findings, 2 error. A `CustodyError` (the library's "could not do
the job") is one line naming the file and the problem. Any other exception is a crash:
still exit 2 and one line (`custody CMD: error: Type: message`), with the traceback only
under `--debug`, so a cron job never mistakes a crash for findings (1). A reader that
closes the pipe early (`custody query ... | head -1`) ends the command quietly with exit
0: the reader asked for no more, and 141 would fail a `set -o pipefail` script for nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import TextIO

from pipeline import __version__
from pipeline.cli.commands import (
    audit,
    case,
    catalog,
    config,
    device,
    export,
    ingest,
    nightly,
    query,
    report,
    retention,
    staff,
    store,
    verify,
)
from pipeline.cli.render import Output
from pipeline.cli.settings import DEFAULT_HOME, ENVIRONMENT, SYSTEM_CONFIG, build_settings
from pipeline.errors import CustodyError
from pipeline.people.identity import OsAccount

GROUPS = (ingest, nightly, query, verify, retention, case, report, export, store, catalog,
          staff, device, audit, config)

EPILOG = f"""\
environment:
{chr(10).join(f"  {name:<24}{what}" for name, what in ENVIRONMENT.items())}

config file (the first found wins; `custody config show` says which):
  --config FILE, CUSTODY_CONFIG, ./custody.toml,
  $XDG_CONFIG_HOME/custody/custody.toml (default ~/.config), {SYSTEM_CONFIG}
  Flags win over the environment, which wins over the file.

exit codes:
  0  clean
  1  findings (a gap, a file not archived, a damaged object, a broken audit chain)
  2  error: bad input, refused, or a crash (one line; --debug for the traceback)

examples:
  custody ingest /mnt/dock/2026-11-27 --labels labels.csv --as FZ0201
  custody query --csv "SELECT code, count(*) FROM findings GROUP BY 1" --as ZF0101
"""


class UsageError(Exception):
    """argparse found the command line wrong (exit 2, its usage line and message)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.format_usage()}{self.prog}: error: {message}\n")


def shared_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The options of every command. Under a subcommand they default to SUPPRESS, so a
    value given before the subcommand is not overwritten by the subcommand's default."""
    value: str | None = None if top else argparse.SUPPRESS
    flag: bool | str = False if top else argparse.SUPPRESS
    g = p.add_argument_group("options of every command")
    g.add_argument("--as", dest="as_staff", metavar="STAFF_ID", default=value,
                   help="act as this registered person (default: `as` in custody.toml)")
    g.add_argument("--store", metavar="DIR|s3://BUCKET/PREFIX", default=value,
                   help=f"the WORM store (default ./{DEFAULT_HOME}/store)")
    g.add_argument("--catalog", metavar="DIR|s3://BUCKET/PREFIX", default=value,
                   help=f"the catalog (default ./{DEFAULT_HOME}/catalog)")
    g.add_argument("--config", metavar="FILE", default=value,
                   help="TOML config file (default: the first of the config locations)")
    g.add_argument("--json", action="store_true", default=flag,
                   help="print one JSON document")
    g.add_argument("--quiet", action="store_true", default=flag, help="no progress bar")
    g.add_argument("--debug", action="store_true", default=flag,
                   help="on an unexpected error, print the traceback")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="custody",
        description="Evidence media integrity and archive pipeline (大柘镇 执法音像记录).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"custody {__version__}")
    shared_options(parser, top=True)
    shared = _Parser(add_help=False)
    shared_options(shared, top=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for group in GROUPS:
        group.register(sub, shared)
    return parser


def _check_formats(args: argparse.Namespace) -> None:
    """`--json` with another output format (`--csv`, `--table`) is refused, not guessed."""
    fmt = getattr(args, "format", None)
    if getattr(args, "json", False) and fmt:
        raise UsageError(f"custody {args.command}: error: --json and --{fmt} are two "
                         "output formats; give one\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    account: OsAccount | None = None,
) -> int:
    """Run one command. `account` is for drivers that stand in for several people's logins
    in one process (the demo); the command line itself always takes the real uid."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
        _check_formats(args)
    except UsageError as exc:
        err.write(str(exc))
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    command = args.command
    debug = bool(getattr(args, "debug", False))
    try:
        settings = build_settings(args, os.environ if env is None else env, account=account)
        ui = Output(out=out, err=err, zone=settings.timezone, json=settings.json,
                    quiet=settings.quiet, plain=settings.plain,
                    terminal_env=settings.terminal_env)
        code: int = args.func(args, settings, ui)
        out.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout(out)
        return 0
    except CustodyError as exc:
        err.write(f"custody {command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        err.write(f"custody {command}: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc(file=err)
        message = " ".join(str(exc).split()) or "(no message)"
        err.write(f"custody {command}: error: {type(exc).__name__}: {message}"
                  f"{'' if debug else ' (--debug shows the traceback)'}\n")
        return 2


def _quiet_stdout(out: TextIO) -> None:
    """Point stdout at /dev/null so the interpreter's last flush finds no closed pipe."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
