"""Local channels: alerts printed on the console and appended to a JSON-lines file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from watcher.channels.base import Delivered, OutgoingMessage
from watcher.channels.spec import ChannelSpec
from watcher.config import Config
from watcher.errors import DeliveryError

ALERTS_FILE = "alerts.jsonl"


class ConsoleChannel:
    """Prints each alert's plain text on standard output, framed so alerts stand apart."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        stream = self._stream or sys.stdout
        try:
            stream.write(f"\n{'─' * 72}\n{message.text}\n{'─' * 72}\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"console: cannot write: {exc}") from None
        return Delivered(None)

    async def aclose(self) -> None:
        pass


class JsonlChannel:
    """Appends one JSON object per alert to ``<data_dir>/alerts.jsonl``, fsynced, so the
    file is a durable record other tools can tail."""

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "subject": message.subject,
            "text": message.text,
            "link": message.link,
            "update_of": message.edit_of,
            **(dict(message.data) if message.data else {}),
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise DeliveryError(f"{self.path}: cannot append: {exc.strerror}") from None
        return Delivered(None)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            # The outbox marks the alert sent after this returns: it must be on disk.
            os.fsync(f.fileno())

    async def aclose(self) -> None:
        pass


def _always(target: str) -> bool:
    return True


CONSOLE = ChannelSpec(
    kind="console",
    configured=lambda config: True,
    build=lambda config: ConsoleChannel(),
    accepts=_always,
    example="console",
    can_edit=True,
    local=True,
    bare=True,
    fallback=True,
    defaults=lambda config: ("console",) if config.console.enabled else (),
)


def _jsonl(config: Config) -> JsonlChannel:
    return JsonlChannel(config.data_dir / ALERTS_FILE)


JSONL = ChannelSpec(
    kind="jsonl",
    configured=lambda config: True,
    build=_jsonl,
    accepts=_always,
    example="jsonl",
    can_edit=True,
    local=True,
    bare=True,
    routable=False,
    defaults=lambda config: ("jsonl",) if config.console.jsonl else (),
)
