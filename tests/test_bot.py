"""The Telegram bot through the loopback Bot API: commands, buttons, access control, admin
messages, bad input, and its life inside the daemon; state checked in the real SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botapi import TEST_USER, TEST_USER_ID, ApiRequest, BotApiServer
from httpserver import HttpServer
from hypothesis import given
from hypothesis import strategies as st

from watcher.alerts.buttons import MAX_BYTES, Press, alert_buttons, decode, encode
from watcher.alerts.outbox import compose
from watcher.bot.access import Access, Caller, alert_chats, chat_key
from watcher.bot.app import TelegramBot, bot_token
from watcher.bot.replies import (
    Status,
    Target,
    format_feeds,
    format_status,
    format_test,
    parse_mute,
    resolve_target,
)
from watcher.bot.webhook import RecentIds, webhook_mode
from watcher.clock import FakeClock
from watcher.config import Config, Secret, load_config
from watcher.daemon import Daemon, RunOptions
from watcher.errors import ConfigError
from watcher.pipeline import Pipeline
from watcher.rules.schema import load_rules
from watcher.store import Store, open_store
from watcher.store.alerts import ArticleRecord
from watcher.store.outbox import DeliveryJob
from watcher.store.replicas import LeaseCount, ReplicaRow
from watcher.store.runner import StoreRunner
from watcher.types import Article, ArticleSource, Match, Outcome, Route

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
ADMIN = TEST_USER_ID  # 1001, the double's default user, in a private chat
GROUP = -1001  # the alert chat
MEMBER = {"id": 777, "is_bot": False, "first_name": "Member", "username": "member"}
STRANGER = {"id": 666, "is_bot": False, "first_name": "Stranger", "username": "stranger"}

# A synthetic article written for these tests.
VENEZUELA = """US and Venezuela trade threats as warships gather in the Caribbean

Washington sent more warships to the Caribbean on Monday, and Venezuelan President Nicolás
Maduro answered by calling up militia units across the country. The Venezuelan government
said the deployment was a threat to its sovereignty and asked regional partners for support.

Maduro told supporters in Caracas that Venezuela would not accept foreign military pressure.
US officials said the ships are part of an operation against drug trafficking routes and
denied planning a strike on Venezuelan territory. Analysts in Caracas said the standoff
between the United States and Venezuela is the most serious in years.
"""


def _page(text: str) -> str:
    title, _, body = text.partition("\n\n")
    paragraphs = "".join(f"<p>{p.replace(chr(10), ' ')}</p>" for p in body.split("\n\n"))
    return (
        f'<html lang="en"><head><title>{title}</title></head><body><article><h1>{title}</h1>'
        f"{paragraphs}</article></body></html>"
    )


WORLD, BROKEN = "https://feeds.example.org/world.xml", "https://feeds.example.org/broken.xml"


def _config(
    tmp_path: Path, api: BotApiServer, extra: str = "", feeds: tuple[str, str] = (WORLD, BROKEN)
) -> Config:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    for path in rules.glob("*.yaml"):  # route to the configured chat
        lines = path.read_text().splitlines()
        path.write_text("\n".join(x for x in lines if not x.startswith("destinations:")))
    (tmp_path / "bot.token").write_text(api.token + "\n")
    path = tmp_path / "config.toml"
    path.write_text(f"""
[watcher]
data_dir = "data"
[http]
allow_private_addresses = true
total_timeout = "10s"
[articles]
workers = 1
[alerts]
update_throttle = 0
[telegram]
token_file = "bot.token"
api_base_url = "{api.base_url}"
chats = ["{GROUP}"]
admins = ["{ADMIN}"]
timeout = "5s"
{extra}
[[feeds]]
url = "{feeds[0]}"
name = "World"
[[feeds]]
url = "{feeds[1]}"
name = "Broken"
""")
    return load_config(path, env={})


@dataclass
class Harness:
    api: BotApiServer
    config: Config
    clock: FakeClock
    store: Store
    pipeline: Pipeline
    bot: TelegramBot

    async def ask(
        self, text: str, *, chat_id: int = ADMIN, user: dict[str, Any] | None = None
    ) -> ApiRequest:
        """Send ``text`` as a message and return the bot's (first delivered) reply."""
        before = len(self.api.calls("sendMessage"))
        self.api.push_message(text, chat_id=chat_id, user=user)
        found = await asyncio.to_thread(self.api.wait_for, "sendMessage", before + 1)
        return next((r for r in found[before:] if r.ok), found[before])

    async def press(
        self,
        data: str,
        *,
        chat_id: int = GROUP,
        user: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> ApiRequest:
        """Press an inline button; returns the bot's answerCallbackQuery."""
        before = len(self.api.calls("answerCallbackQuery"))
        self.api.push_callback(data, chat_id=chat_id, user=user, message_id=message_id)
        found = await asyncio.to_thread(self.api.wait_for, "answerCallbackQuery", before + 1)
        return found[before]

    async def settle(self) -> None:
        """Every update pushed so far is handled (updates are handled in order)."""
        await self.ask("/help")

    def replies_to(self, chat_id: int) -> list[str]:
        return [r.text or "" for r in self.api.calls("sendMessage") if r.chat_id == str(chat_id)]


@pytest.fixture
async def harness(tmp_path: Path, bot_api: BotApiServer) -> AsyncIterator[Harness]:
    config = _config(tmp_path, bot_api)
    config.data_dir.mkdir()
    store = open_store(config.store_url)
    db = StoreRunner(store)
    clock = FakeClock(NOW)
    pipeline = await Pipeline.start(config, db, clock=clock)
    bot = TelegramBot(
        config, Secret(bot_api.token), db, pipeline, clock=clock, started=NOW, poll_timeout=1
    )
    pipeline.set_notifier(bot.notify_admins)
    bot.start()
    try:
        await asyncio.wait_for(bot.ready.wait(), 60)
        yield Harness(bot_api, config, clock, store, pipeline, bot)
    finally:
        await bot.stop()
        await pipeline.aclose(grace=0)
        db.shutdown()
        store.close()


def _alert(
    store: Store,
    now: datetime,
    *,
    url: str = "https://news.example.org/1",
    rules: tuple[str, ...] = ("venezuela",),
    destinations: tuple[str, ...] = (f"telegram:{GROUP}",),
    digest: bool = False,
) -> int:
    """Record a matching article with its alert, as the pipeline does; returns the alert id."""
    article = Article(url=url, title="Maduro & the <navy>", text="Text.", source=ArticleSource.PAGE)
    matches = [(Match(r, 5.0, 1.0, (), "normal", (), ()), Outcome(r, "alert", "")) for r in rules]
    payload = {
        "title": article.title,
        "url": url,
        "source": "Example News",
        "published": None,
        "language": "en",
        "text_source": "page",
        "quotes": [],
        "rules": [{"name": r, "score": 5.0, "threshold": 1.0, "terms": []} for r in rules],
        "priority": "normal",
    }
    record = ArticleRecord(
        entry_id=None,
        feed_id=None,
        url=url,
        article=article,
        now=now,
        matches=matches,
        alert_kind="new",
        payload=payload,
        routes=[Route(d, digest, None) for d in destinations],
    )
    assert store.record_article(record) is not None
    return store.recent_alerts(1)[0].id


# --- pure parts -------------------------------------------------------------------------


def test_callback_data_round_trips_and_stays_compact() -> None:
    for press in (Press("mute", 10**12 - 1, 2), Press("not_relevant", 1)):
        data = encode(press)
        assert decode(data) == press and len(data.encode()) <= MAX_BYTES
    buttons = alert_buttons(42, [{"name": "a" * 64}, {"name": "b"}, {"name": "c"}, {"name": "d"}])
    assert [d for _, d in buttons] == ["m:42:0", "m:42:1", "m:42:2", "n:42"]
    assert all(len(label) < 40 for label, _ in buttons)


@pytest.mark.parametrize(
    "data",
    ["", "m:1", "m:1:x", "m:-1:0", "m:1:10", "n:", "n:1:0", "x:1", " n:1", "n:1\n",
     "m:1234567890123:0", "n:١٢"],
)  # fmt: skip
def test_malformed_callback_data_is_refused(data: str) -> None:
    assert decode(data) is None


@given(st.one_of(st.text(max_size=100), st.binary(max_size=80), st.none(), st.integers()))
def test_decoding_never_raises(data: object) -> None:
    press = decode(data)
    assert press is None or encode(press) == data


def test_access_admins_and_alert_chats_only() -> None:
    access = Access(["1001", "-500"])
    chats = frozenset({"-1001", "@desk"})
    assert access.allows(Caller(1001, 1001), frozenset())  # admin in private
    assert access.allows(Caller(1001, -999), frozenset())  # admin in any chat
    assert access.allows(Caller(None, -500), frozenset())  # admin chat, anonymous admin
    assert access.allows(Caller(777, -1001), chats)  # member of the alert chat
    assert access.allows(Caller(777, -42, "Desk"), chats)  # public channel by @name
    assert not access.allows(Caller(777, 777), chats)
    assert not access.allows(Caller(None, None), chats)
    assert chat_key("telegram:-100123/7") == "-100123" and chat_key("@Desk") == "@desk"


def test_alert_chats_include_rule_destinations(tmp_path: Path, bot_api: BotApiServer) -> None:
    config = _config(tmp_path, bot_api)
    rule = tmp_path / "rules" / "extra.yaml"
    rule.write_text("name: extra\nactors: [Someone]\ndestinations: [telegram:-100777/3]\n")
    rules = load_rules(tmp_path / "rules")
    assert alert_chats(config, rules) == {str(GROUP), "-100777"}


def test_mute_targets_resolve_rules_actors_and_suggest(tmp_path: Path) -> None:
    rules = load_rules(ROOT / "rules")
    assert resolve_target("venezuela", rules) == Target(
        "rule:venezuela", " (to mute the actor instead: actor:Venezuela)"
    )
    for text, key in [
        ("actor:venezuela", "actor:Venezuela"),
        ("nicolas  MADURO", "actor:Nicolás Maduro"),
        ("Maduro", "actor:Nicolás Maduro"),
        ("ALL", "all"),
    ]:
        target = resolve_target(text, rules)
        assert isinstance(target, Target) and target.key == key, text
    # An actor's mute covers its other names: a few are named, the one typed first.
    putin = resolve_target("putin", rules)
    assert isinstance(putin, Target) and putin.key == "actor:Russia"
    assert putin.note == (
        " The mute covers its other names too: Putin, Moscow, Kremlin, Vladimir Putin and 12 more."
    )
    reply = resolve_target("venezuella", rules)
    assert isinstance(reply, str) and "Did you mean venezuela" in reply
    reply = resolve_target("<b>zzzzzz</b>", rules)
    assert isinstance(reply, str) and "&lt;b&gt;" in reply and "Rules:" in reply


def test_mute_arguments() -> None:
    rules = load_rules(ROOT / "rules")
    request = parse_mute(["Nicolás", "Maduro", "3d"], rules)
    assert not isinstance(request, str)
    assert request.target.key == "actor:Nicolás Maduro" and request.seconds == 3 * 86400
    request = parse_mute(["venezuela"], rules)
    assert not isinstance(request, str) and request.seconds == 86400
    assert "not a duration" in str(parse_mute(["venezuela", "3x"], rules))
    assert "1m to 365d" in str(parse_mute(["venezuela", "400d"], rules))
    assert "Usage" in str(parse_mute([], rules))
    # the name is right, the duration is not: say so, not "no rule or actor 'venezuela soon'"
    for args in (["venezuela", "soon"], ["venezuela", "-5m"], ["venezuela", "2", "x"]):
        assert "not a duration" in str(parse_mute(args, rules)), args
    spaced = parse_mute(["venezuela", "2", "h"], rules)  # "2 h" reads as 2h
    assert not isinstance(spaced, str) and spaced.seconds == 7200
    assert isinstance(parse_mute(["venezuela", "2", "3d"], rules), str)  # not 23 days
    assert "Usage" in str(parse_mute(["3d"], rules))  # a duration alone
    assert "No rule or actor" in str(parse_mute(["venezuelaa", "soon"], rules))
    asked = str(parse_mute(["actor:Nothing"], rules))  # an actor asked: actors listed
    assert "No actor" in asked and "Actors:" in asked and "Nicolás Maduro" in asked
    # a known name with more than a duration after it: too many arguments, not an unknown name
    for args in (["ukraine-peace", "2h", "extra"], ["Nicolás", "Maduro", "3d", "now"]):
        reply = str(parse_mute(args, rules))
        assert reply.startswith("Too many arguments") and "Usage: /mute" in reply, args


def test_test_reply_fits_one_message_and_escapes() -> None:
    evidence = [
        {
            "kind": "actor",
            "term": f"<Actor {i}>",
            "matched": "x" * 500,
            "where": "text",
            "sentence": "<script>" * 200,
        }
        for i in range(50)
    ]
    verdict = {"matched": True, "score": 9.0, "threshold": 1.0, "reasons": ["r" * 900] * 9}
    report = {
        "title": "<b>T</b>" * 200,
        "language": "en",
        "length": 50_000,
        "text_source": "page",
        "fallback_reason": "",
        "verdicts": [{**verdict, "rule": f"rule-{i}", "evidence": evidence} for i in range(40)],
    }
    text = format_test(report)
    assert len(text) <= 4096 and "<script>" not in text and "would alert" in text
    # A rule a mute would hold is named apart from the rules that would alert.
    two = {**report, "verdicts": report["verdicts"][:2]}
    text = format_test(two, {"rule-1": "rule rule-1 is muted until 10 Mar 14:00 UTC"})
    assert "<b>✅ would alert: rule-0</b>\n🔕 rule-1 held: rule rule-1 is muted until" in text


def test_test_reply_names_a_keywords_group_and_phrase() -> None:
    """As `watcher explain` does: the group the rule names, and the phrase that matched."""
    evidence = {
        "kind": "keyword",
        "term": "hostage",
        "group": "captivity",
        "matched": "hostages",
        "where": "text",
        "sentence": "Hostages were freed.",
    }
    verdict = {
        "rule": "captives",
        "matched": True,
        "score": 1.0,
        "threshold": 1.0,
        "reasons": [],
        "evidence": [evidence],
    }
    report = {
        "title": "T",
        "language": "en",
        "length": 20,
        "text_source": "page",
        "fallback_reason": "",
        "verdicts": [verdict],
    }
    text = format_test(report)
    assert "keyword captivity (phrase" in text and "hostage" in text, text


def test_alert_buttons_on_telegram_alerts_only(tmp_path: Path) -> None:
    payload = {
        "title": "T",
        "url": "https://news.example.org/1",
        "source": "S",
        "published": None,
        "quotes": [],
        "rules": [{"name": "venezuela", "score": 5.0, "threshold": 1.0, "terms": []}],
        "priority": "normal",
    }
    job = DeliveryJob(7, 7, f"telegram:{GROUP}", "send", 0, "new", payload, None)
    message = compose(job, UTC_ZONE, NOW, bot_buttons=True)
    assert message is not None
    assert [d for _, d in message.buttons] == ["m:7:0", "n:7", "url:https://news.example.org/1"]
    to_email = DeliveryJob(8, 7, "email:a@b.org", "send", 0, "new", payload, None)
    email = compose(to_email, UTC_ZONE, NOW, bot_buttons=True)
    assert email is not None and all(not d.startswith(("m:", "n:")) for _, d in email.buttons)
    # A "+N sources" edit keeps the buttons of the alert whose message it edits.
    edit = DeliveryJob(
        9, 8, f"telegram:{GROUP}", "edit", 0, "sources", {}, 3, "55", (("B", "https://b"),),
        payload, original_alert_id=7,
    )  # fmt: skip
    message = compose(edit, UTC_ZONE, NOW, bot_buttons=True)
    assert message is not None and ("👎 Not relevant", "n:7") in message.buttons
    plain = compose(job, UTC_ZONE, NOW)
    assert plain is not None and [d for _, d in plain.buttons] == ["url:https://news.example.org/1"]


def test_bot_token_needs_a_token_and_the_bot_on(tmp_path: Path, bot_api: BotApiServer) -> None:
    config = _config(tmp_path, bot_api)
    token = bot_token(config, env={})
    assert token is not None and token.reveal() == bot_api.token
    token = bot_token(config, env={"WATCHER_TELEGRAM_TOKEN": "1:x"})
    assert token is not None and token.reveal() == "1:x"
    (tmp_path / "bot.token").unlink()
    with pytest.raises(ConfigError, match=r"telegram\.token_file: .*bot\.token: cannot read"):
        bot_token(config, env={})
    off = _config(tmp_path / "off", bot_api, "bot = false")
    assert bot_token(off, env={"WATCHER_TELEGRAM_TOKEN": "1:x"}) is None


# --- commands through the Bot API double ------------------------------------------------


async def test_commands_are_registered_and_help_answers(harness: Harness) -> None:
    (registered,) = harness.api.calls("setMyCommands")
    names = {c["command"] for c in registered.params["commands"]}
    assert names >= {"help", "status", "rules", "mute", "unmute", "pause", "resume", "test"}
    assert names >= {"digest", "feeds"}
    reply = await harness.ask("/help")
    assert reply.parse_mode == "HTML" and "/mute" in (reply.text or "")
    assert harness.api.calls("getUpdates")[0].params.get("allowed_updates") == [
        "message",
        "callback_query",
    ]


async def test_status_reports_feeds_alerts_and_outbox(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    broken = store.feed_by_url(BROKEN)
    store.record_poll_failure(broken.id, now - timedelta(hours=1), "HTTP 404 Not Found", now)
    _alert(store, now)
    text = (await harness.ask("/status")).text or ""
    assert "Feeds: 1 healthy, 0 failing, 1 erroring, 0 silent" in text  # 1 h < failing_after
    assert "Last poll: 10 Mar 11:00 UTC" in text
    assert "Alerts today: 1" in text
    assert f"Outbox: 1 waiting for telegram:{GROUP}\n" in text
    assert "Rules: 2" in text and "Next digest: 11 Mar 08:00 UTC" in text


async def test_feeds_lists_failing_feeds_with_reasons(harness: Harness) -> None:
    assert "All 2 feeds are healthy" in ((await harness.ask("/feeds")).text or "")
    store, now = harness.store, harness.clock.now()
    broken = store.feed_by_url(BROKEN)
    store.record_poll_failure(broken.id, now, "HTTP 404 <Not Found>", now)
    text = (await harness.ask("/feeds")).text or ""
    assert "1 of 2 feeds needs attention" in text
    assert "Broken</a>: erroring since 10 Mar 12:00 UTC (1 failure): HTTP 404 &lt;Not" in text
    harness.clock.advance(2 * 86_400)
    text = (await harness.ask("/feeds")).text or ""
    assert "Broken</a>: failing since" in text  # past failing_after (24 h)


async def test_one_feed_and_one_destination_read_in_the_singular(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    world, broken = sorted(store.feeds(), key=lambda f: f.name != "World")
    assert format_feeds([world], now, UTC_ZONE) == "The 1 feed is healthy."
    assert format_feeds([], now, UTC_ZONE) == "No feed is enabled."
    store.record_poll_failure(broken.id, now, "HTTP 404 Not Found", now)
    (failing,) = [f for f in store.feeds() if f.id == broken.id]
    assert "1 of 1 feed needs attention" in format_feeds([failing], now, UTC_ZONE)
    outbox = {"email:desk@example.org": 2, f"telegram:{GROUP}": 1}
    text = format_status(Status("1", now, now, (), 0, outbox, {}, rules=2), UTC_ZONE)
    assert f"Outbox: 3 waiting: 2 for email:desk@example.org, 1 for telegram:{GROUP}\n" in text


async def test_mute_unmute_pause_resume_change_the_store(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    reply = await harness.ask("/mute venezuela 2h")
    assert "Muted rule venezuela until 10 Mar 14:00 UTC" in (reply.text or "")
    reply = await harness.ask("/mute Maduro 3d")
    assert "Muted actor Nicolás Maduro until 13 Mar 12:00 UTC" in (reply.text or "")
    assert store.active_mutes(now) == {
        "rule:venezuela": now + timedelta(hours=2),
        "actor:Nicolás Maduro": now + timedelta(days=3),
    }
    assert "Did you mean venezuela" in ((await harness.ask("/mute venezuella")).text or "")
    assert "not a duration" in ((await harness.ask("/mute ukraine-peace 3x")).text or "")
    listed = (await harness.ask("/unmute")).text or ""
    assert "rule venezuela until" in listed and "actor Nicolás Maduro" in listed
    assert "Unmuted rule venezuela" in ((await harness.ask("/unmute venezuela")).text or "")
    assert "was not muted" in ((await harness.ask("/unmute venezuela")).text or "")
    assert set(store.active_mutes(now)) == {"actor:Nicolás Maduro"}

    reply = await harness.ask("/pause")
    assert "Paused all alerts until /resume" in (reply.text or "")
    assert store.active_mutes(now)["all"] > now + timedelta(days=3000)
    rules_text = (await harness.ask("/rules")).text or ""
    assert "All alerts are paused until /resume" in rules_text
    assert "Alerts resumed" in ((await harness.ask("/resume")).text or "")
    assert "were not paused" in ((await harness.ask("/resume")).text or "")
    assert "Paused all alerts until 10 Mar 18:00" in ((await harness.ask("/pause 6h")).text or "")
    assert "all" in store.active_mutes(now)


async def test_a_new_mute_replaces_the_end_and_the_reply_states_it(harness: Harness) -> None:
    """Re-muting shortens or extends: /unmute and /rules show the end the reply gave."""
    store, now = harness.store, harness.clock.now()
    for name, key, label in [
        ("venezuela", "rule:venezuela", "rule venezuela"),
        ("Maduro", "actor:Nicolás Maduro", "actor Nicolás Maduro"),
    ]:
        assert "until 17 Mar 12:00 UTC" in ((await harness.ask(f"/mute {name} 1w")).text or "")
        shorter = (await harness.ask(f"/mute {name} 2h")).text or ""
        assert f"Muted {label} until 10 Mar 14:00 UTC." in shorter
        assert store.active_mutes(now)[key] == now + timedelta(hours=2)
        listed = (await harness.ask("/unmute")).text or ""
        assert f"{label} until 10 Mar 14:00 UTC" in listed and "17 Mar" not in listed
    assert "venezuela</b> (critical): 🔕 muted until 10 Mar 14:00 UTC" in (
        (await harness.ask("/rules")).text or ""
    )
    longer = (await harness.ask("/mute venezuela 3d")).text or ""
    assert "until 13 Mar 12:00 UTC" in longer
    assert store.active_mutes(now)["rule:venezuela"] == now + timedelta(days=3)
    assert "Paused all alerts until 10 Mar 18:00" in ((await harness.ask("/pause 6h")).text or "")
    assert "until 10 Mar 13:00" in ((await harness.ask("/pause 1h")).text or "")
    assert store.active_mutes(now)["all"] == now + timedelta(hours=1)


async def test_mute_replies_name_an_actors_other_names_and_refuse_extra_words(
    harness: Harness,
) -> None:
    reply = (await harness.ask("/mute Putin 2h")).text or ""
    assert "Muted actor Russia until 10 Mar 14:00 UTC." in reply
    assert "other names too: Putin, Moscow, Kremlin" in reply
    reply = (await harness.ask("/mute ukraine-peace 2h extra")).text or ""
    assert reply.startswith("Too many arguments") and "Usage: /mute" in reply
    assert set(harness.store.active_mutes(harness.clock.now())) == {"actor:Russia"}


async def test_unmute_resolves_a_name_as_mute_does_and_names_the_other(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    await harness.ask("/mute venezuela")  # the rule: a rule comes before an actor
    await harness.ask("/mute actor:venezuela")
    assert set(store.active_mutes(now)) == {"rule:venezuela", "actor:Venezuela"}
    reply = (await harness.ask("/unmute venezuela")).text or ""
    assert reply.startswith("🔔 Unmuted rule venezuela.")
    assert "actor Venezuela is still muted: <code>/unmute actor:Venezuela</code>" in reply
    assert set(store.active_mutes(now)) == {"actor:Venezuela"}
    reply = (await harness.ask("/unmute venezuela")).text or ""
    assert reply.startswith("rule venezuela was not muted.") and "actor:Venezuela" in reply
    assert set(store.active_mutes(now)) == {"actor:Venezuela"}
    assert "Unmuted actor Venezuela" in ((await harness.ask("/unmute actor:VENEZUELA")).text or "")
    # A mute of a rule gone from the rules can still be lifted by its name.
    store.add_mute("rule:gone", now + timedelta(hours=1), now)
    assert "Unmuted rule gone" in ((await harness.ask("/unmute gone")).text or "")
    assert store.active_mutes(now) == {}


async def test_rules_show_state_hits_and_not_relevant(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    first = _alert(store, now - timedelta(hours=2))
    _alert(store, now - timedelta(hours=30), url="https://news.example.org/old")
    store.add_feedback(first, "not_relevant", "telegram:1", now)
    store.add_mute("rule:ukraine-peace", now + timedelta(hours=5), now)
    text = (await harness.ask("/rules")).text or ""
    assert "<b>venezuela</b> (critical): active · 1 alert · 1 not relevant" in text
    assert "<b>ukraine-peace</b>" in text and "muted until 10 Mar 17:00 UTC" in text


async def test_digest_command_queues_the_pending_digest(harness: Harness) -> None:
    assert "Nothing is waiting" in ((await harness.ask("/digest")).text or "")
    _alert(harness.store, harness.clock.now(), digest=True)
    text = (await harness.ask("/digest")).text or ""
    assert f"Digest of 1 alert queued for telegram:{GROUP}" in text
    assert harness.store.digest_counts() == {}
    assert harness.store.outbox_depth() == {f"telegram:{GROUP}": 1}


# --- buttons ----------------------------------------------------------------------------


async def test_buttons_record_feedback_once_and_mute_the_rule(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    alert = _alert(store, now)
    answer = await harness.press(f"n:{alert}", user=MEMBER)
    assert "not relevant for venezuela" in (answer.params.get("text") or "")
    answer = await harness.press(f"n:{alert}", user=MEMBER)
    assert "Already noted" in (answer.params.get("text") or "")
    assert store.feedback_counts() == {"venezuela": 1}

    await harness.press(f"m:{alert}:0", user=MEMBER)
    assert store.active_mutes(now) == {"rule:venezuela": now + timedelta(hours=24)}
    # A second press changes nothing and posts nothing: the answer says until when.
    answer = await harness.press(f"m:{alert}:0", user=MEMBER)
    assert (answer.params.get("text") or "").startswith("Already muted until 11 Mar 12:00 UTC")
    assert store.active_mutes(now) == {"rule:venezuela": now + timedelta(hours=24)}
    await harness.settle()
    confirmations = [t for t in harness.replies_to(GROUP) if "Muted rule venezuela" in t]
    assert confirmations == ["🔕 Muted rule venezuela until 11 Mar 12:00 UTC. (Member)"]


async def test_the_mute_button_keeps_a_longer_mute_and_says_so(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    alert = _alert(store, now)
    await harness.ask("/mute venezuela 1w")
    answer = await harness.press(f"m:{alert}:0", user=MEMBER)
    assert "Already muted until 17 Mar 12:00 UTC" in (answer.params.get("text") or "")
    assert store.active_mutes(now) == {"rule:venezuela": now + timedelta(weeks=1)}
    await harness.settle()
    assert harness.replies_to(GROUP) == []


async def test_forged_and_stale_button_data_change_nothing(harness: Harness) -> None:
    store, now = harness.store, harness.clock.now()
    elsewhere = _alert(store, now, destinations=("telegram:-3003",))
    mine = _alert(store, now, url="https://news.example.org/2", digest=True)
    store.queue_digest(f"telegram:{GROUP}", now)
    digest = store.recent_alerts(1)[0].id  # a digest has no rules to judge
    forged = [f"n:{elsewhere}", f"m:{elsewhere}:0", f"m:{mine}:5", f"n:{digest}", "n:999999"]
    for data in [*forged, "garbage", ""]:
        answer = await harness.press(data, user=MEMBER)
        assert "no longer valid" in (answer.params.get("text") or ""), data
    assert store.feedback_counts() == {} and store.active_mutes(now) == {}
    # An admin may press on an alert sent elsewhere (e.g. forwarded to them).
    await harness.press(f"n:{elsewhere}", chat_id=ADMIN, user=TEST_USER)
    assert store.feedback_counts() == {"venezuela": 1}


# --- access control, bad input, secrets -------------------------------------------------


async def test_strangers_get_nothing_and_are_logged_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watcher")
    store, now = harness.store, harness.clock.now()
    alert = _alert(store, now)
    for text in ["/status", "/mute venezuela", "/pause", "/feeds", "hello"]:
        harness.api.push_message(text, chat_id=666, user=STRANGER)
    harness.api.push_message("/rules", chat_id=-2002, user=STRANGER)
    answer = await harness.press(f"n:{alert}", chat_id=-2002, user=STRANGER)
    assert not answer.params.get("text")  # acknowledged with no text: no answer to read
    await harness.settle()
    assert harness.replies_to(666) == [] and harness.replies_to(-2002) == []
    assert store.active_mutes(now) == {} and store.feedback_counts() == {}
    refusals = [r.getMessage() for r in caplog.records if "refused chat" in r.getMessage()]
    assert len(refusals) == 2 and "refused chat 666 (user 666 @stranger)" in refusals[0]
    # Members of the alert chat may command the bot.
    assert "Feeds:" in ((await harness.ask("/status", chat_id=GROUP, user=MEMBER)).text or "")


async def test_bad_input_gets_a_short_reply_or_silence(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    api = harness.api
    assert "Unknown command /frobnicate" in ((await harness.ask("/frobnicate now")).text or "")
    assert "only understand commands" in ((await harness.ask("what is up?")).text or "")
    assert "Usage: /test URL" in ((await harness.ask("/test ftp://x")).text or "")
    huge = await harness.ask("/mute " + "&x" * 2000)
    assert len(huge.text or "") < 400 and "&amp;x" in (huge.text or "")
    assert "1m to 365d" in ((await harness.ask("/pause 0s")).text or "")
    before = len(api.calls("sendMessage"))
    api.push_message("/status@some_other_bot", chat_id=GROUP, user=MEMBER)
    api.push_message("/nonsense@some_other_bot", chat_id=GROUP, user=MEMBER)
    edited = {"message_id": 5, "date": 0, "chat": {"id": ADMIN, "type": "private"}}
    api.push_update({"edited_message": {**edited, "from": TEST_USER, "text": "/pause"}})
    channel = {"id": -1005, "type": "channel", "title": "C"}
    api.push_update(
        {"channel_post": {"message_id": 6, "date": 0, "chat": channel, "text": "/pause"}}
    )
    api.push_update({"my_chat_member": {"junk": True}})
    await harness.settle()
    assert len(api.calls("sendMessage")) == before + 1  # only the reply to /help
    assert harness.store.active_mutes(harness.clock.now()) == {}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_token_never_appears_in_logs_or_replies(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = harness.api.token
    harness.api.fail_next("sendMessage", 400, f"Bad Request: chat not found for bot{token}")
    harness.api.push_message("/status")
    await asyncio.to_thread(harness.api.wait_for, "sendMessage", 2)  # failed reply + apology
    await harness.settle()
    assert any("an update failed" in r.getMessage() for r in caplog.records)
    assert token not in caplog.text
    assert all(token not in (r.text or "") for r in harness.api.calls("sendMessage"))


async def test_rejected_token_keeps_the_bot_off_quietly(
    tmp_path: Path, bot_api: BotApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = _config(tmp_path, bot_api)
    config.data_dir.mkdir()
    store = open_store(config.store_url)
    db = StoreRunner(store)
    pipeline = await Pipeline.start(config, db, clock=FakeClock(NOW))
    wrong = "987654321:AAwrong-token-wrong-token-wrong-token"
    bot = TelegramBot(config, Secret(wrong), db, pipeline, clock=FakeClock(NOW), started=NOW)
    try:
        bot.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "token was rejected" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "token was rejected" in caplog.text and wrong not in caplog.text
        assert not bot.ready.is_set()
    finally:
        await bot.stop()
        await pipeline.aclose(grace=0)
        db.shutdown()
        store.close()


# --- admin messages ---------------------------------------------------------------------


async def _admin_message(api: BotApiServer, containing: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for text in (r.text or "" for r in api.calls("sendMessage") if r.chat_id == str(ADMIN)):
            if containing in text:
                return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"no admin message with {containing!r}")


async def test_admins_hear_of_rejected_rules_failing_feeds_and_destinations(
    harness: Harness,
) -> None:
    bad = harness.config.watcher.rules_dir / "broken.yaml"
    bad.write_text("name: broken\nactors: [\n")
    await harness.pipeline.reload_rules()
    text = await _admin_message(harness.api, "Rule files rejected")
    assert "broken.yaml" in text and "previous rules stay active" in text

    store, now = harness.store, harness.clock.now()
    broken = store.feed_by_url(BROKEN)
    store.record_poll_failure(broken.id, now - timedelta(days=2), "HTTP 404 Not Found", now)
    await harness.pipeline.check_feed_health()
    text = await _admin_message(harness.api, "Feed Broken")
    assert "failing for 2 d: HTTP 404 Not Found" in text

    harness.api.fail_chat(GROUP, 403)
    _alert(store, now)
    sender = asyncio.create_task(harness.pipeline.send_loop())
    try:
        text = await _admin_message(harness.api, f"Destination telegram:{GROUP}")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    assert "bot was blocked" in text


# --- /test, with the worker pool --------------------------------------------------------


async def test_test_command_explains_a_page(harness: Harness, http_server: HttpServer) -> None:
    http_server.route(
        "/story", _page(VENEZUELA), headers={"Content-Type": "text/html; charset=utf-8"}
    )
    http_server.route("/gone", "gone", status=404)
    reply = await harness.ask(f"/test {http_server.url('/gone')}")
    assert "Could not test" in (reply.text or "") and "404" in (reply.text or "")
    started = time.monotonic()
    reply = await harness.ask(f"/test {http_server.url('/story')}")
    text = reply.text or ""
    assert "<b>✅ would alert: venezuela</b>" in text and "Nicolás Maduro" in text
    assert text.index("<b>venezuela</b>: MATCH") < text.index("<b>ukraine-peace</b>: no match")
    assert len(text) <= 4096
    assert time.monotonic() - started < 60


async def test_test_command_names_the_mute_or_pause_that_would_hold_the_alert(
    harness: Harness, http_server: HttpServer
) -> None:
    html_type = {"Content-Type": "text/html; charset=utf-8"}
    http_server.route("/story", _page(VENEZUELA), headers=html_type)
    page = http_server.url("/story")
    await harness.ask("/mute Maduro 3d")  # the actor that weighs most in the match
    await harness.ask("/mute ukraine-peace 2h")  # a rule that did not match: no hold
    text = (await harness.ask(f"/test {page}")).text or ""
    assert "<b>🔕 matched venezuela, but no alert would be sent</b>" in text
    assert "venezuela held: actor Nicolás Maduro is muted until 13 Mar 12:00 UTC" in text
    assert "would alert" not in text and "ukraine-peace held" not in text
    await harness.ask("/unmute Maduro")
    await harness.ask("/pause")
    text = (await harness.ask(f"/test {page}")).text or ""
    assert "venezuela held: all alerts are paused until /resume" in text
    assert "(/resume)" not in text  # said once
    await harness.ask("/resume")
    await harness.ask("/mute Caracas 1h")  # an actor mentioned, but not the weightiest
    text = (await harness.ask(f"/test {page}")).text or ""
    assert "<b>✅ would alert: venezuela</b>" in text and "held" not in text


# --- in the daemon ----------------------------------------------------------------------


def _rss(server: HttpServer) -> str:
    item = (
        f"<item><title>US and Venezuela trade threats</title><link>{server.url('/a/1')}</link>"
        "<guid>a1</guid><description>US and Venezuela trade threats</description></item>"
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>{item}</channel></rss>'
    )


@pytest.mark.slow
async def test_bot_lives_and_stops_with_the_daemon_and_buttons_record_feedback(
    tmp_path: Path, bot_api: BotApiServer, http_server: HttpServer
) -> None:
    http_server.route("/a/1", _page(VENEZUELA), headers={"Content-Type": "text/html"})
    rss = {"Content-Type": "application/rss+xml"}
    http_server.route("/feed.xml", _rss(http_server), headers=rss)
    feeds = (http_server.url("/feed.xml"), http_server.url("/missing.xml"))
    config = _config(tmp_path, bot_api, feeds=feeds)
    daemon = Daemon(config)
    run = asyncio.create_task(daemon.run(RunOptions(tick=0.2)))
    try:
        (alert,) = await asyncio.to_thread(bot_api.wait_for, "sendMessage", 1, 60)
        assert alert.chat_id == str(GROUP)
        assert [d for _, d in alert.buttons] == ["m:1:0", "n:1", f"url:{http_server.url('/a/1')}"]
        assert daemon.bot is not None
        await asyncio.wait_for(daemon.bot.ready.wait(), 60)
        bot_api.push_callback("n:1", chat_id=GROUP, message_id=alert.sent_id, user=MEMBER)
        await asyncio.to_thread(bot_api.wait_for, "answerCallbackQuery", 1)
        bot_api.push_message("/status")
        (_, status) = await asyncio.to_thread(bot_api.wait_for, "sendMessage", 2)
        assert status.chat_id == str(ADMIN) and "Alerts today: 1" in (status.text or "")
    finally:
        stopping = time.monotonic()
        daemon.stop()
        await asyncio.wait_for(run, 60)
    # Bounded (the promise is 10 s); the margin is for a loaded machine.
    assert time.monotonic() - stopping < 30
    await asyncio.sleep(bot_api.max_poll + 0.1)  # the long poll cut by the stop is recorded
    polls = len(bot_api.calls("getUpdates"))
    await asyncio.sleep(bot_api.max_poll + 0.1)
    assert len(bot_api.calls("getUpdates")) == polls  # the bot stopped polling
    store = open_store(config.store_url)
    try:
        assert store.feedback_counts() == {"venezuela": 1}
    finally:
        store.close()


# --- webhook mode -----------------------------------------------------------------------

WEBHOOK_SECRET = "hook_Secret-123"
WEBHOOK = """webhook_url = "https://bot.example.org/telegram"
webhook_listen = "127.0.0.1:0"
webhook_secret_file = "hook.secret"
"""


async def test_webhook_mode_takes_updates_posted_with_the_secret_token(
    tmp_path: Path, bot_api: BotApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watcher")
    (tmp_path / "hook.secret").write_text(WEBHOOK_SECRET + "\n")
    config = _config(tmp_path, bot_api, WEBHOOK)
    config.data_dir.mkdir()
    store = open_store(config.store_url)
    db = StoreRunner(store)
    pipeline = await Pipeline.start(config, db, clock=FakeClock(NOW))
    bot = TelegramBot(
        config, Secret(bot_api.token), db, pipeline, clock=FakeClock(NOW), started=NOW
    )
    bot.start()
    try:
        await asyncio.wait_for(bot.ready.wait(), 60)
        registered = bot_api.webhook
        assert registered["url"] == "https://bot.example.org/telegram"
        assert registered["secret_token"] == WEBHOOK_SECRET
        assert registered["allowed_updates"] == ["message", "callback_query"]
        address = bot.webhook_address
        assert address is not None
        url = f"http://{address[0]}:{address[1]}/telegram"

        forged = bot_api.message_update("/status")
        assert await asyncio.to_thread(bot_api.deliver_webhook, forged, url, secret="wrong") == 403
        assert await asyncio.to_thread(bot_api.deliver_webhook, forged, url, secret="") == 403
        # A header that is not UTF-8 is a wrong token too, not a crash (aiohttp decodes it
        # with surrogates, which str.encode refuses).
        not_utf8 = "tok\xff"
        assert await asyncio.to_thread(bot_api.deliver_webhook, forged, url, secret=not_utf8) == 403
        update = bot_api.message_update("/help")
        assert await asyncio.to_thread(bot_api.deliver_webhook, update, url) == 200
        (reply,) = await asyncio.to_thread(bot_api.wait_for, "sendMessage", 1, 60)
        assert reply.chat_id == str(ADMIN) and "/mute" in (reply.text or "")
        assert bot_api.calls("getUpdates") == []  # no polling in webhook mode
        malformed = {"update_id": 5, "message": 7}
        assert await asyncio.to_thread(bot_api.deliver_webhook, malformed, url) == 400
        # Telegram posts an update again when its 200 came late: acknowledged, run once.
        mute = {**bot_api.message_update("/mute venezuela 2h"), "update_id": 4242}
        for _ in range(2):
            assert await asyncio.to_thread(bot_api.deliver_webhook, mute, url) == 200
        assert await asyncio.to_thread(bot_api.deliver_webhook, update, url) == 200  # /help
        # Updates are handled in order: a second /mute would have replied before /help.
        replies = await asyncio.to_thread(bot_api.wait_for, "sendMessage", 3, 60)
        assert "Muted rule venezuela" in (replies[1].text or "")
        assert (replies[2].text or "").startswith("<b>watcher bot</b>")
        assert "update 4242 posted again" in caplog.text
        started = f"in webhook mode: listening on {address[0]}:{address[1]}/telegram for"
        assert started in caplog.text
        assert WEBHOOK_SECRET not in caplog.text and bot_api.token not in caplog.text
    finally:
        await bot.stop()
        await pipeline.aclose(grace=0)
        db.shutdown()
        store.close()
    # The forged posts and the repeat were answered by nothing.
    assert len(bot_api.calls("sendMessage")) == 3


def test_recent_update_ids_are_bounded() -> None:
    recent = RecentIds(size=2)
    assert [recent.first_time(i) for i in (1, 2, 1, 3)] == [True, True, False, True]
    assert recent.first_time(1)  # forgotten: only the last two are kept
    assert not recent.first_time(3)


def test_webhook_mode_needs_https_and_a_valid_secret(tmp_path: Path, bot_api: BotApiServer) -> None:
    (tmp_path / "hook.secret").write_text(WEBHOOK_SECRET)
    assert webhook_mode(_config(tmp_path, bot_api), env={}) is None  # long polling
    mode = webhook_mode(
        _config(tmp_path / "a", bot_api, WEBHOOK.replace("hook.secret", "../hook.secret")), env={}
    )
    assert mode is not None and mode.path == "/telegram" and mode.port == 0
    plain = WEBHOOK.replace("https://", "http://").replace("hook.secret", "../hook.secret")
    with pytest.raises(ConfigError):
        webhook_mode(_config(tmp_path / "b", bot_api, plain), env={})
    with pytest.raises(ConfigError):  # no secret at all
        webhook_mode(
            _config(tmp_path / "c", bot_api, WEBHOOK.replace("hook.secret", "none")), env={}
        )
    (tmp_path / "bad.secret").write_text("spaces are not allowed")
    bad = WEBHOOK.replace("hook.secret", "../bad.secret")
    with pytest.raises(ConfigError):
        webhook_mode(_config(tmp_path / "d", bot_api, bad), env={})
    from_env = webhook_mode(
        _config(tmp_path / "e", bot_api, WEBHOOK.replace("hook.secret", "none")),
        env={"WATCHER_TELEGRAM_WEBHOOK_SECRET": "from_env"},
    )
    assert from_env is not None and from_env.secret == "from_env"


def test_status_lists_replicas_and_their_leases_on_a_shared_store() -> None:
    """Pure: what /status adds on PostgreSQL replicas (tests/test_replicas.py runs it live)."""
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    seen = now - timedelta(seconds=3)
    status = Status(
        version="1.0",
        started=now,
        now=now,
        feeds=[],
        alerts_today=0,
        outbox={},
        mutes={},
        rules=2,
        replicas=[
            ReplicaRow("host-a:1", "host-a", 1, "1.0", now, seen, True),
            ReplicaRow("host-b:2", "host-b", 2, "1.0", now, seen, False),
        ],
        leases=[LeaseCount("host-b:2", "feeds", 7, now + timedelta(seconds=90))],
    )
    text = format_status(status, ZoneInfo("UTC"))
    assert "Replicas: 2 alive" in text
    assert "host-a pid 1 (elected" in text
    assert "host-b pid 2 (replica" in text and "7 feeds (next ends in 90s)" in text
    single = format_status(dataclasses.replace(status, replicas=(), leases=()), ZoneInfo("UTC"))
    assert "Replicas" not in single


def test_status_counts_muted_rules_and_actors_apart_and_keeps_them_while_paused() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    later = now + timedelta(hours=2)
    mutes = {"rule:venezuela": later, "actor:Nicolás Maduro": later, "all": later}
    status = Status("1", now, now, (), 0, {}, mutes, rules=2)
    text = format_status(status, ZoneInfo("UTC"))
    assert "Rules: 2 · 1 muted · 1 actor muted · ⏸ all alerts paused" in text


async def test_an_admin_message_outlives_a_bot_api_outage(harness: Harness) -> None:
    """A report of trouble often comes while Telegram is unreachable too: it is tried again
    (here every 0.2 s; 30 s, 2 min and 5 min in the daemon) until the Bot API answers."""
    harness.bot.admin_retry = (0.2,) * 50
    await asyncio.wait_for(harness.bot.ready.wait(), 60)

    def tries(ok: bool) -> list[str]:
        calls = harness.api.calls("sendMessage", ok=ok)
        return [r.text or "" for r in calls if "failing for 2 d" in (r.text or "")]

    harness.api.outage()
    await harness.bot.notify_admins("Feed Broken is failing for 2 d")
    deadline = time.monotonic() + 60
    while len(tries(ok=False)) < 2:  # failed, and tried again
        assert time.monotonic() < deadline, "the admin message was not tried again"
        await asyncio.sleep(0.05)
    harness.api.end_outage()
    while not tries(ok=True):
        assert time.monotonic() < deadline + 60, "the admin message never arrived"
        await asyncio.sleep(0.05)
    assert tries(ok=True)[0].startswith("⚠️ watcher:")


async def test_an_admin_message_refused_for_good_is_not_tried_again(harness: Harness) -> None:
    """A 400 (unknown chat) is a BadRequest, which PTB makes a NetworkError: not passing."""
    harness.bot.admin_retry = (0.05,) * 20
    await asyncio.wait_for(harness.bot.ready.wait(), 60)
    harness.api.fail_chat(ADMIN, 400, "Bad Request: chat not found")
    await harness.bot.notify_admins("Feed Broken is failing for 2 d")

    def tries() -> int:
        calls = harness.api.calls("sendMessage", ok=False)
        return sum("failing for 2 d" in (r.text or "") for r in calls)

    deadline = time.monotonic() + 60
    while not tries():
        assert time.monotonic() < deadline, "the admin message was never tried"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # twenty retry intervals: a retry would have come by now
    assert tries() == 1
