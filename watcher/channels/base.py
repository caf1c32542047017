"""What every channel shares: the outgoing message, the delivery receipt, the Channel protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """One alert, already composed for delivery; channels pick the parts they can show."""

    subject: str  # one line: the email subject (not sent to Telegram)
    # Telegram-flavoured HTML (<b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>),
    # escaped by the composer.
    html: str
    text: str  # the plain-text equivalent of ``html``
    link: str | None  # the article URL
    silent: bool = False
    reply_to: str | None = None  # a previous delivery's remote id to reply to
    edit_of: str | None = None  # a previous delivery's remote id to replace in place
    # (label, callback data) or (label, "url:https://...") for Telegram inline keyboards.
    buttons: tuple[tuple[str, str], ...] = ()
    # The alert as structured data (rules, scores, terms) for machine-readable channels.
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Delivered:
    """A successful delivery; ``remote_id`` lets later messages reply to or edit it."""

    remote_id: str | None  # e.g. the Telegram message_id, the email Message-ID


class Channel(Protocol):
    """A delivery edge. ``send`` raises watcher.errors.DeliveryError and nothing else."""

    name: str

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered: ...

    async def aclose(self) -> None: ...
