"""The channel spec: what a channel is called, how it is built, what it accepts and can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from watcher.channels.base import Channel
from watcher.config import Config


def _none(config: Config) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class ChannelSpec:
    """One channel kind, declared beside the channel and registered in channels/registry.py.

    Routing, rule validation, the outbox and the store ask the spec; nothing outside the
    channel's own module spells its kind.
    """

    kind: str  # the destination prefix: "telegram" in "telegram:-100123"
    # Whether the config turns the channel on (then `watcher check` builds it).
    configured: Callable[[Config], bool]
    # The channel the config describes; raises ConfigError for a half-configured one.
    build: Callable[[Config], Channel]
    # Whether ``target`` (what follows "kind:") is well formed; for a bare kind such as
    # "console", whether the destination is exactly the kind (target is then "").
    accepts: Callable[[str], bool]
    example: str  # a well-formed destination, shown when a rule names a malformed one
    can_edit: bool = False  # replaces a sent alert in place ("+3 sources")
    buttons: bool = False  # carries the bot's inline buttons (mute, not relevant)
    # Local sinks get every alert at once (digest or not) and a one-line story update.
    local: bool = False
    # Where rules without `destinations` send, e.g. every configured chat.
    defaults: Callable[[Config], tuple[str, ...]] = _none
    bare: bool = False  # the destination is the kind alone ("console"), with no target
    fallback: bool = False  # gets every alert when no other channel has a destination
    routable: bool = True  # rules may name it in `destinations`
    # Every destination goes through one service (a Bot API, an SMTP server): one delivered
    # after failures means the service is back, so the others stop waiting out a backoff.
    shared: bool = False

    def check(self, destination: str) -> bool:
        """Whether ``destination`` (with its "kind:" prefix) is one this channel accepts."""
        kind, colon, target = destination.partition(":")
        if kind != self.kind:
            return False
        if self.bare:
            return not colon
        return bool(colon and target) and self.accepts(target)


def split_destination(destination: str) -> tuple[str, str]:
    """("telegram", "-100123/7") from "telegram:-100123/7"; ("console", "") from "console"."""
    kind, _, target = destination.partition(":")
    return kind, target
