"""Logging: readable text by default, one JSON object per line with BOTKIT_LOG_FORMAT=json.

Log calls pass the event's identity as `extra={"delivery_id": ..., "lane": ..., "event": ...}`; both
formats print those fields on every line that has them. Nothing here ever sees a token or a secret:
the code that logs passes only identifiers and one-line error descriptions.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

CONTEXT_FIELDS = ("delivery_id", "lane", "event", "handler", "bot")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None))
        return f"{line} [{context}]" if context else line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in CONTEXT_FIELDS if getattr(record, k, None) is not None})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("botkit")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
