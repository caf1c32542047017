"""Logging setup: human-readable or JSON lines, with registered secrets scrubbed from output."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_SECRETS: set[str] = set()
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
# python-telegram-bot logs a Bot API answer that is not JSON (a proxy's HTML error page on a
# 5xx) with a traceback, and puts the page into its exception's message.
_NOT_JSON_LOG = "Can not load invalid JSON data"
_PAGE_RE = re.compile(
    r"\. Parsing the server response b(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") failed"
)
_PAGE_NOTE = " (the answer was an error page, not JSON; --log-level debug shows it)"


def register_secret(value: str) -> None:
    """Never let ``value`` reach a log line, whatever code logs it."""
    if len(value) >= 6:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "********")
    return text


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and k[0] != "_"}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class _ErrorPages(logging.Filter):
    """A Bot API 5xx: one line per attempt; the error page only at debug level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("telegram") and str(record.msg).startswith(_NOT_JSON_LOG):
            if not logging.getLogger().isEnabledFor(logging.DEBUG):
                return False
            # At debug: the page on one line, without the traceback of the JSON parser.
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            record.msg, record.args = " ".join(record.getMessage().split()), None
            return True
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        if record.name.startswith("telegram") and record.exc_info and not debug:
            # e.g. the Updater's last getUpdates at stop during an outage: the error on the
            # same line, not a traceback holding the proxy's page (--log-level debug has it)
            error = record.exc_info[1]
            said = " ".join(f"{type(error).__name__}: {error}".split())
            record.msg, record.args = f"{record.getMessage()} ({said})", None
            record.exc_info, record.exc_text = None, None
        if record.levelno > logging.DEBUG:
            message = record.getMessage()
            if "Parsing the server response" in message:
                record.msg, record.args = _PAGE_RE.sub(_PAGE_NOTE, message), None
        return True


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_ErrorPages())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter: httpx logs full request URLs (Telegram's contain the bot token).
    for noisy in ("httpx", "httpcore", "telegram", "apscheduler", "trafilatura", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
