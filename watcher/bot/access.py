"""Who may command the bot and press alert buttons: admins and the alert chats, nobody else."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from watcher.config import Config
from watcher.rules.schema import RuleSet

log = logging.getLogger(__name__)

# Refused chats are remembered (to log each once) up to this many, so strangers cannot
# grow the daemon's memory without bound.
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Caller:
    """Who sent an update: the user (None for anonymous group admins) and the chat."""

    user_id: int | None
    chat_id: int | None
    chat_username: str | None = None
    user_name: str = ""


def chat_key(destination: str) -> str:
    """The chat a Telegram destination names: "-100123" from "-100123/7"; "@name" lower-cased."""
    chat = destination.removeprefix("telegram:").partition("/")[0].strip()
    return chat.lower() if chat.startswith("@") else chat


def alert_chats(config: Config, rules: RuleSet) -> frozenset[str]:
    """Every chat alerts go to: [telegram] chats and the Telegram destinations of rules."""
    named = [d for r in rules.rules for d in r.destinations if d.startswith("telegram:")]
    return frozenset(chat_key(d) for d in [*config.telegram.chats, *named])


def unrouted_warning(config: Config, rules: RuleSet, *, token: bool) -> str:
    """Why Telegram alerts would go nowhere ("" if they go somewhere): a bot token and no chat
    in [telegram] chats nor in any rule's destinations."""
    if not token or alert_chats(config, rules):
        return ""
    return (
        "telegram: a bot token is set, but no chat gets alerts ([telegram] chats is empty and "
        "no rule routes to telegram:CHAT_ID); send /start to the bot: the log names the chat "
        "id to add"
    )


class Access:
    """Decides whether a caller may use the bot; logs each refused chat once."""

    def __init__(self, admins: Iterable[str]) -> None:
        self.admins = frozenset(a.strip() for a in admins if a.strip())
        self._refused: set[str] = set()
        odd = sorted(a for a in self.admins if not a.lstrip("-").isdigit())
        if odd:
            log.warning(
                "telegram.admins: %s are not numeric ids and never match; use user or chat "
                "ids (README: finding a chat id)",
                ", ".join(odd),
            )

    def is_admin(self, caller: Caller) -> bool:
        return str(caller.user_id) in self.admins or str(caller.chat_id) in self.admins

    def allows(self, caller: Caller, chats: frozenset[str]) -> bool:
        """Admins anywhere, and anyone in an alert chat."""
        if self.is_admin(caller):
            return True
        username = f"@{caller.chat_username.lower()}" if caller.chat_username else None
        return str(caller.chat_id) in chats or (username is not None and username in chats)

    def refuse(self, caller: Caller) -> None:
        """Log the refusal the first time this chat is refused."""
        key = str(caller.chat_id)
        if key in self._refused or len(self._refused) >= _MAX_REMEMBERED:
            return
        self._refused.add(key)
        log.warning(
            "telegram bot: refused chat %s (user %s%s); to allow it, add its id to "
            "[telegram] admins or chats",
            caller.chat_id,
            caller.user_id,
            f" {caller.user_name}" if caller.user_name else "",
        )
