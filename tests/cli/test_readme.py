"""The README names every command and every option the parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pipeline.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands_and_options(
    p: argparse.ArgumentParser, path: str
) -> tuple[set[str], set[str]]:
    commands, options = set(), set()
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.add(f"{path} {name}")
                c, o = _commands_and_options(sub, f"{path} {name}")
                commands |= c
                options |= o
        else:
            options.update(s for s in action.option_strings if s.startswith("--"))
    return commands, options


def test_every_command_and_option_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    commands, options = _commands_and_options(build_parser(), "custody")
    assert len(commands) == 43 and len(options) > 40
    missing = sorted(c for c in commands if c not in text)
    missing += sorted(o for o in options if not re.search(re.escape(o) + r"(?![\w-])", text))
    assert missing == []
