"""Logging: readable text by default, one JSON object per line with BOTKIT_LOG_FORMAT=json.

Every line of an event's life carries its identity: `delivery_id`, `lane` (bot and conversation), `event`
and, while a handler runs, `handler`. The worker binds those fields once per event with `bind()` (a context
variable, so they follow the event's task and the tasks it starts) and `ContextFilter` copies them onto each
record; a call may also pass them as `extra=`. The code that logs passes only identifiers and one-line error
descriptions, never a token or a secret, and message contents only at debug level. `Redactor` is the safety
net behind that rule: it masks the configured secrets and any signature if one ever reaches a record.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from botkit import tracing

CONTEXT_FIELDS = ("delivery_id", "lane", "event", "handler", "bot", "trace_id")
REDACTED = "[redacted]"
# An X-Chatwoot-Signature value (or any sha256=<hex> digest) is a per-delivery secret-derived value.
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{16,}")

_NO_FIELDS: dict[str, Any] = {}  # never mutated: bind() sets a new dict
_fields: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("botkit_log_fields")


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (and in tasks started from it)."""
    token = _fields.set({**_fields.get(_NO_FIELDS), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def bound() -> dict[str, Any]:
    """The fields bound where this is called (for spans and metrics that want the same identity)."""
    return _fields.get(_NO_FIELDS)


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record that does not carry them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get(_NO_FIELDS).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        if getattr(record, "trace_id", None) is None:
            record.trace_id = tracing.trace_id()  # None, and so left out, while tracing is off
        return True


class Redactor(logging.Filter):
    """Masks the given secret values and signatures in a record's message, arguments, fields and traceback."""

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        super().__init__()
        values = {s.decode() if isinstance(s, bytes) else s for s in secrets}
        # Longest first, so a secret containing another is masked whole; very short values would mask noise.
        self.secrets = sorted((s for s in values if len(s) >= 6), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _SIGNATURE.sub("sha256=" + REDACTED, text) if "sha256=" in text else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.error = self.redact(_describe_error(record.exc_text))
        return True


def _describe_error(exc_text: str) -> str:
    """The last line of a traceback: `Type: message`."""
    lines = [line for line in exc_text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None))
        if not context:
            return line
        first, newline, rest = line.partition("\n")  # keep the fields on the message's line, before a traceback
        return f"{first} [{context}]{newline}{rest}"


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
        elif getattr(record, "error", None):
            entry["error"] = record.error
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text", *, secrets: Iterable[str | bytes] = (),
                  stream: IO[str] | None = None) -> logging.Handler:
    """Send botkit's logs to stderr (or `stream`) in `fmt`, with event fields and the redaction filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger("botkit")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    return handler


def uvicorn_log_config(fmt: str) -> dict[str, Any] | None:
    """uvicorn's `log_config` for BOTKIT_LOG_FORMAT: in json mode its own lines ("Started server process",
    errors, access lines if any) are JSON objects like botkit's; in text mode None keeps uvicorn's default."""
    if fmt != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "botkit.logs.JSONFormatter"}},
        "filters": {"context": {"()": "botkit.logs.ContextFilter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"],
                              "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["json"], "level": "INFO", "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def secrets_of(settings: Any) -> list[str]:
    """Every secret value in the settings, for the redaction filter."""
    from botkit.config import SECRET_SETTINGS

    found: list[str] = []
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, None)
        if value is None:
            continue
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        found.append(raw)
        found.extend(part.strip() for part in raw.split(",") if part.strip())  # each of several webhook secrets
        if name == "botkit_basic_auth" and ":" in raw:
            found.append(raw.split(":", 1)[1])  # the password alone, and the header value as sent
            found.append(base64.b64encode(raw.encode()).decode())
    return found
