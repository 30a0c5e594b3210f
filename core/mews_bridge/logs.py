"""Logging set-up: readable lines by default, JSON lines for machines, secrets masked in both.

On a Raspberry Pi the logs go to journald through stderr; nothing here writes files.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from .redaction import Redactor, redactor

LogFormat = Literal["text", "json"]
_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
MAX_VALUE_CHARS = 1_000
"""A text argument longer than this is clipped in the line (a 10 kB lock id, a base64 document)."""
MAX_LINE_CHARS = 10_000
MAX_TRACEBACK_CHARS = 20_000


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was; safe to write (lone surrogates escaped)."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clip_args(args: Any, redact: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(
            clip(redact(a), MAX_VALUE_CHARS) if isinstance(a, str) and len(a) > MAX_VALUE_CHARS else a
            for a in args
        )
    return args


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any traceback before a handler formats it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redactor.redact
        record.args = _clip_args(record.args, redact)
        record.msg = clip(redact(record.getMessage()), MAX_LINE_CHARS)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clip(redact(record.exc_text), MAX_TRACEBACK_CHARS)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, clip(redact(value), MAX_VALUE_CHARS))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given to the logger (``extra={...}``) are kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    level: str | int = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send all logging to ``stream`` (stderr) through the redacting filter; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_mews_bridge", False)]:
        root.removeHandler(old)
    handler._mews_bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; the bridge logs what matters itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return handler
