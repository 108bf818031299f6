"""LOG_FORMAT=json: one JSON object per log line, with the exception when there is one."""

from __future__ import annotations

import json
import logging

from bot.logs import JsonFormatter


def record(message: str, *args: object, **kwargs: object) -> logging.LogRecord:
    return logging.getLogger("bot.test").makeRecord(
        "bot.test", logging.INFO, __file__, 1, message, args, None, **kwargs
    )


def test_a_record_is_one_line_of_json() -> None:
    line = JsonFormatter().format(record("Survey %d sent\nto chat", 7, extra={"job": 3}))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "Survey 7 sent\nto chat"
    assert (entry["level"], entry["logger"], entry["job"]) == ("INFO", "bot.test", 3)
    assert entry["time"].endswith("+00:00")


def test_an_exception_goes_in_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    item = logging.getLogger("bot.test").makeRecord(
        "bot.test", logging.ERROR, __file__, 1, "failed", (), exc_info
    )
    entry = json.loads(JsonFormatter().format(item))
    assert entry["level"] == "ERROR"
    assert "ValueError: boom" in entry["exception"]
