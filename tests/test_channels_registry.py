"""The channel specs: each declared beside its channel, and what routing, rule validation,
the outbox and the store learn from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.alerts.plan import context_from_config
from watcher.channels.registry import (
    SPECS,
    configured_kinds,
    default_destinations,
    destination_problem,
    local_destinations,
    spec_for,
    updatable_kinds,
)
from watcher.config import config_from_dict


def test_every_kind_is_registered_once_and_its_example_is_accepted() -> None:
    kinds = [spec.kind for spec in SPECS]
    assert len(kinds) == len(set(kinds))
    for spec in SPECS:
        if spec.routable:
            example = spec.example.split(" ")[0].rstrip(",")
            assert destination_problem(example) == "", spec.kind


@pytest.mark.parametrize(
    ("destination", "ok"),
    [
        ("telegram:-1001234567890", True),
        ("telegram:-1001234567890/42", True),
        ("telegram:@news_channel", True),
        ("telegram:chat", False),
        ("telegram:@abcd", False),  # usernames have 5 characters at least
        ("email:desk@example.org", True),
        ("email:root@localhost", True),
        ("email:not an address", False),
        ("console", True),
        ("console:x", False),
        ("jsonl", False),  # every alert goes there anyway: rules do not name it
        ("apprise:ops", True),
        ("apprise:", False),
        ("webhook:desk", True),
        ("pager:desk", False),
    ],
)
def test_rules_destinations_are_checked_by_their_channel(destination: str, ok: bool) -> None:
    assert (destination_problem(destination) == "") is ok


def test_what_the_specs_say_about_editing_buttons_and_kinds() -> None:
    assert updatable_kinds() == frozenset({"telegram", "console", "jsonl"})
    telegram, email = spec_for("telegram:-100123"), spec_for("email:a@b.org")
    assert telegram is not None and telegram.buttons and telegram.can_edit
    assert email is not None and not email.buttons and not email.can_edit
    assert spec_for("nothing:here") is None


def test_defaults_and_local_sinks_come_from_the_specs(tmp_path: Path) -> None:
    bare = config_from_dict({}, source=tmp_path / "c.toml")
    assert default_destinations(bare) == ()
    assert local_destinations(bare) == ("console", "jsonl")  # console: nothing else is set
    config = config_from_dict(
        {
            "console": {"enabled": False, "jsonl": True},
            "telegram": {"chats": ["-1001"]},
            "email": {"host": "smtp.example.org", "sender": "w@example.org",
                      "recipients": ["a@example.org"]},
            "webhook": {"endpoints": {"desk": "https://hooks.example.org/w"}},
        },
        source=tmp_path / "c.toml",
    )  # fmt: skip
    assert default_destinations(config) == ("telegram:-1001", "email:a@example.org", "webhook:desk")
    assert local_destinations(config) == ("jsonl",)
    assert {"telegram", "email", "webhook", "console"} <= configured_kinds(config)
    ctx = context_from_config(config, now=None, muted=frozenset(), recent_alerts={})  # type: ignore[arg-type]
    assert ctx.updatable_kinds == updatable_kinds()
