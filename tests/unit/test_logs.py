"""The jobs' log lines (`pipeline.jobs.logs`): JSON lines off a terminal, text on one."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from pipeline.jobs.logs import configure_logging, get_logger


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_exactly_timestamp_level_event_and_the_bound_fields() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    before = dt.datetime.now(dt.UTC)
    get_logger(run_id="r-1", file="/dock/CAM01.mp4").info("ingest.file", status="archived")
    after = dt.datetime.now(dt.UTC)
    (line,) = _lines(out)
    assert list(line) == ["timestamp", "level", "event", "run_id", "file", "status"]
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "level": "info", "event": "ingest.file", "run_id": "r-1",
        "file": "/dock/CAM01.mp4", "status": "archived"}
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - dt.timedelta(milliseconds=1) <= when <= after + dt.timedelta(milliseconds=1)


def test_each_event_is_one_complete_line() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = get_logger(run_id="r-2")
    log.info("nightly.start")
    log.warning("nightly.reject", file="坏文件.mp4", reason="vanished\nafter listing")
    log.error("nightly.store_failed", file=None)
    assert out.getvalue().count("\n") == 3
    assert [(x["level"], x["event"]) for x in _lines(out)] == [
        ("info", "nightly.start"), ("warning", "nightly.reject"),
        ("error", "nightly.store_failed")]
    assert _lines(out)[1]["file"] == "坏文件.mp4"
    assert "坏文件" in out.getvalue(), "Chinese names are written as they are, not escaped"


def test_debug_is_dropped_at_the_default_level() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    get_logger().debug("noise")
    assert out.getvalue() == ""
    configure_logging(json=True, stream=out, level=logging.DEBUG)
    get_logger().debug("noise")
    assert [x["event"] for x in _lines(out)] == ["noise"]


def test_an_exception_is_carried_in_the_line() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        raise OSError(5, "Input/output error")
    except OSError:
        get_logger(file="a.mp4").exception("ingest.read_failed")
    (line,) = _lines(out)
    assert list(line) == ["timestamp", "level", "event", "file", "exception"]
    assert str(line["exception"]).endswith("OSError: [Errno 5] Input/output error")


def test_not_a_terminal_means_json() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger(run_id="r-3").info("nightly.done")
    assert _lines(out)[0]["event"] == "nightly.done"


def test_a_terminal_gets_a_line_for_a_person() -> None:
    out = _Terminal()
    configure_logging(stream=out)
    get_logger(run_id="r-4", file="CAM02.mp4").info("ingest.file")
    text = out.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert "ingest.file" in text and "run_id" in text and "r-4" in text
    assert "CAM02.mp4" in text and text.count("\n") == 1
