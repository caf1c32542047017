"""Alert buttons: their labels, and the compact callback data (encoding, strict decoding)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Telegram allows 1-64 bytes of callback data; these stay far below.
MAX_BYTES = 64
MUTE_LABEL = "🔕 Mute {rule} 24h"
FEEDBACK_LABEL = "👎 Not relevant"
# Buttons carry at most this many rules' mute buttons (the keyboard stays one or two rows).
MAX_RULE_BUTTONS = 3
_DATA_RE = re.compile(r"(m):([0-9]{1,12}):([0-9])|(n):([0-9]{1,12})")


@dataclass(frozen=True)
class Press:
    """A decoded button press: mute the alert's rule number ``rule_index``, or not relevant.

    Only ids travel in the data; what they refer to is looked up in the store, so a forged
    press can at most name another alert, which the bot then checks against the chat.
    """

    action: Literal["mute", "not_relevant"]
    alert_id: int
    rule_index: int = 0


def encode(press: Press) -> str:
    if press.action == "mute":
        return f"m:{press.alert_id}:{press.rule_index}"
    return f"n:{press.alert_id}"


def decode(data: object) -> Press | None:
    """The press ``data`` encodes, or None for anything else (never raises)."""
    if not isinstance(data, str) or len(data.encode()) > MAX_BYTES:
        return None
    found = _DATA_RE.fullmatch(data)
    if found is None:
        return None
    if found[1]:
        return Press("mute", int(found[2]), int(found[3]))
    return Press("not_relevant", int(found[5]))


def alert_buttons(alert_id: int, rules: Sequence[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The bot's buttons for one alert: mute each of its (first three) rules, not relevant."""
    mutes = tuple(
        (
            MUTE_LABEL.format(rule=_short(str(rule.get("name", "rule")))),
            encode(Press("mute", alert_id, i)),
        )
        for i, rule in enumerate(rules[:MAX_RULE_BUTTONS])
    )
    return (*mutes, (FEEDBACK_LABEL, encode(Press("not_relevant", alert_id))))


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
