"""Log lines of the unattended jobs: JSON lines off a terminal, a readable line on one.

A timer or cron runs `custody nightly` with stderr going to journald or a file, which log
shippers read one JSON object per line: `timestamp` (ISO 8601, UTC), `level`, `event`,
then the fields bound to the logger (`run_id`, `file`, ...). On a terminal a person reads
the same events as aligned text. structlog does both (a pipeline of small processors,
one renderer at its end); `configure_logging` picks the renderer once per process and
`get_logger(**bound)` gives a logger that carries its fields into every line.

Decision: structlog writes straight to the stream (no stdlib `logging` handlers between),
so a line is one `write` of one complete JSON object: nothing a library logs through
`logging` is mixed into it, and a reader never sees half a line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor

__all__ = ["configure_logging", "get_logger"]


def _renderer(json: bool, stream: TextIO) -> Processor:
    if json:
        return structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
    colors = bool(getattr(stream, "isatty", lambda: False)())
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback)


def configure_logging(
    *, json: bool | None = None, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Send this process's structlog events to `stream` (default: stderr) as JSON lines
    (`json=True`), as text for a person (`False`), or JSON exactly when the stream is not a
    terminal (`None`). Events below `level` are dropped. Calling it again reconfigures."""
    out = sys.stderr if stream is None else stream
    if json is None:
        json = not bool(getattr(out, "isatty", lambda: False)())
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        _order_keys,
        _renderer(json, out),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


_FIRST = ("timestamp", "level", "event")


def _order_keys(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """timestamp, level and event first, then the bound and given fields as they came."""
    first = {k: event[k] for k in _FIRST if k in event}
    return {**first, **{k: v for k, v in event.items() if k not in first}}


def get_logger(**bound: Any) -> FilteringBoundLogger:
    """A logger whose every line carries `bound` (e.g. `run_id=`, `file=`)."""
    logger: FilteringBoundLogger = structlog.get_logger().bind(**bound)
    return logger
