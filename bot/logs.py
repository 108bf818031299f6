"""Log output: human text by default, or one JSON object per line (LOG_FORMAT=json).

What the bot logs at INFO and above names no person: ids and counts only, never names,
usernames or what anybody wrote (a test runs a conversation and searches the logs for them).
aiogram's per-update log lines, which carry user ids and are noisy, are kept for DEBUG.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, plus ``exception`` with the traceback and any
    ``extra=`` fields; one line per record, UTF-8 kept as is."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: int, log_format: str = "text") -> None:
    """Root logging to stderr in LOG_FORMAT at LOG_LEVEL."""
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    # Like basicConfig: a no-op where logging is already set up (e.g. under pytest's capture).
    logging.basicConfig(level=level, handlers=[handler])
    # aiogram logs every update at INFO, with ids of people in it: keep that for DEBUG.
    if level > logging.DEBUG:
        logging.getLogger("aiogram.event").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
