"""The outbox sender with the real store and channels against the loopback Bot API and SMTP
doubles: ordering, retries and backoff, permanent failures, edits, digests, quiet hours."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botapi import BotApiServer
from smtpserver import SmtpServer

from watcher.alerts.compose import build_payload
from watcher.alerts.outbox import Sender, SendResult, compose, retry_delay, split_destination
from watcher.alerts.plan import Context, plan
from watcher.articles.fingerprint import signature
from watcher.channels.base import Channel
from watcher.channels.console import ConsoleChannel, JsonlChannel
from watcher.channels.email import EmailChannel
from watcher.channels.registry import updatable_kinds
from watcher.channels.telegram import RateLimiter, TelegramChannel
from watcher.clock import FakeClock
from watcher.config import EmailSettings, Secret
from watcher.store import Store, open_store
from watcher.store.alerts import ArticleRecord, StoryChange
from watcher.store.outbox import DeliveryJob
from watcher.store.runner import StoreRunner
from watcher.stories.group import Action
from watcher.types import Article, ArticleSource, Evidence, Match, Outcome, Route

MADRID = ZoneInfo("Europe/Madrid")
START = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
CHAT, OTHER_CHAT = "-1001", "-1002"
TG, TG2 = f"telegram:{CHAT}", f"telegram:{OTHER_CHAT}"
RECIPIENT = "desk@example.org"
MAIL = f"email:{RECIPIENT}"


def _article(i: int) -> Article:
    return Article(
        url=f"https://news.example/{i}",
        title=f"Alert {i}: Maduro speaks",
        text=f"Maduro spoke in Caracas on day {i}. Talks will go on. Nobody else spoke.",
        source=ArticleSource.PAGE,
        published=START,
        feed_name=f"Outlet {i}",
    )


def _match(priority: str = "normal") -> Match:
    sentence = "Maduro spoke in Caracas on day 0."
    found = Evidence("actor", "Nicolás Maduro", "Maduro", "text", sentence, 0, 6)
    return Match("venezuela", 5.0, 3.0, (found,), priority, (), ())


@dataclass
class Outbox:
    """The store, its runner, the channels and the sender, on one fake clock."""

    store: Store
    db: StoreRunner
    clock: FakeClock
    sender: Sender
    bot: BotApiServer
    smtp: SmtpServer
    jsonl: Path
    console: io.StringIO
    counter: list[int] = field(default_factory=lambda: [0])

    def now(self) -> datetime:
        return self.clock.now()

    async def drain(self) -> SendResult:
        return await self.sender.drain()

    async def alert(
        self,
        routes: Sequence[Route | str],
        *,
        priority: str = "normal",
        story_id: int | None = None,
    ) -> int:
        """Record a matching article whose alert goes to ``routes``; returns its number."""
        i = self.counter[0] = self.counter[0] + 1
        a, m = _article(i), _match(priority)
        kind = "develop" if story_id else "new"
        rec = ArticleRecord(
            entry_id=None,
            feed_id=None,
            url=a.url,
            article=a,
            now=self.now(),
            matches=[(m, Outcome(m.rule, "alert", ""))],
            story=StoryChange(story_id, a.title, signature(a.title, a.text), {m.rule: m.score}),
            alert_kind=kind,
            payload=build_payload(a, [m], source=a.feed_name, quotes=2),
            routes=[r if isinstance(r, Route) else Route(r, False, None) for r in routes],
        )
        await self.db(self.store.record_article, rec)
        return i

    async def join(self, story_id: int, throttle: float = 60.0) -> None:
        """Record a later article of ``story_id`` that sends nothing, only updates it."""
        i = self.counter[0] = self.counter[0] + 1
        a, m = _article(i), _match()
        rec = ArticleRecord(
            entry_id=None,
            feed_id=None,
            url=a.url,
            article=a,
            now=self.now(),
            matches=[(m, Outcome(m.rule, "join", ""))],
            story=StoryChange(story_id, a.title, signature(a.title, a.text), {}),
            update_throttle=throttle,
            updatable_kinds=updatable_kinds(),
        )
        await self.db(self.store.record_article, rec)

    async def story_of_last_alert(self) -> int:
        stories = await self.db(self.store.recent_stories, START - timedelta(days=1))
        return max(s.id for s in stories)

    async def states(self, destination: str) -> list[str]:
        rows = await self.db(self.store.recent_alerts, 100)
        return [s for r in reversed(rows) for d, s, *_ in r.deliveries if d == destination]

    async def destination(self, name: str) -> dict[str, Any]:
        rows = await self.db(self.store.destination_rows)
        (row,) = [r for r in rows if r["name"] == name]
        return row

    def telegram_titles(self, chat: str = CHAT) -> list[str]:
        return [_title(r.text or "") for r in self.bot.sent(chat)]

    def mail_subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.smtp.messages]


def _title(text: str) -> str:
    for line in text.splitlines():
        if "Alert " in line:
            return line[line.index("Alert ") :].split(":")[0]
    return text.splitlines()[0]


def _virtual_limiter() -> RateLimiter:
    """Telegram's flood limits, waited out on a clock of their own so tests do not sleep."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return RateLimiter(clock=clock, sleep=sleep)


@pytest.fixture
async def outbox(
    tmp_path: Path, bot_api: BotApiServer, smtp_server: SmtpServer
) -> AsyncIterator[Outbox]:
    store = open_store(f"sqlite:///{tmp_path / 'watcher.db'}")
    db = StoreRunner(store)
    clock = FakeClock(START)
    console = io.StringIO()
    channels: dict[str, Channel] = {
        "telegram": TelegramChannel(
            Secret(bot_api.token),
            api_base_url=bot_api.base_url,
            timeout=2.0,
            limiter=_virtual_limiter(),
        ),
        "email": EmailChannel(
            EmailSettings(
                host=smtp_server.host,
                port=smtp_server.port,
                security="none",
                sender="watcher@example.org",
                timeout=2.0,
            ),
            clock=clock,
        ),
        "jsonl": JsonlChannel(tmp_path / "alerts.jsonl"),
        "console": ConsoleChannel(console),
    }
    sender = Sender(db, channels, clock=clock, tz=MADRID, retry_cap=1800.0, rng=random.Random(5))
    box = Outbox(store, db, clock, sender, bot_api, smtp_server, tmp_path / "alerts.jsonl", console)
    try:
        yield box
    finally:
        for channel in channels.values():
            await channel.aclose()
        db.shutdown()
        store.close()


# --- the happy path ---------------------------------------------------------------------


async def test_alerts_reach_every_destination_in_order(outbox: Outbox) -> None:
    for _ in range(3):
        await outbox.alert([TG, MAIL, "jsonl", "console"])
    assert await outbox.drain() == SendResult(sent=12)
    assert outbox.telegram_titles() == ["Alert 1", "Alert 2", "Alert 3"]
    assert [s.split(": ")[1] for s in outbox.mail_subjects()] == ["Alert 1", "Alert 2", "Alert 3"]
    lines = [json.loads(x) for x in outbox.jsonl.read_text().splitlines()]
    assert [r["title"] for r in lines] == [f"Alert {i}: Maduro speaks" for i in (1, 2, 3)]
    assert outbox.console.getvalue().count("Maduro speaks") == 3
    assert (sent := outbox.bot.sent(CHAT)[0]).parse_mode == "HTML" and "<b>" in (sent.text or "")
    assert await outbox.states(TG) == ["sent"] * 3
    assert await outbox.db(outbox.store.outbox_depth) == {}
    assert await outbox.drain() == SendResult()  # nothing twice


# --- Telegram faults --------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_waits_at_least_retry_after(outbox: Outbox) -> None:
    outbox.bot.fail_next("sendMessage", 429, retry_after=30)
    await outbox.alert([TG])
    assert await outbox.drain() == SendResult(retrying=1)
    row = await outbox.destination(TG)
    assert row["next_attempt_at"] >= START + timedelta(seconds=30)
    assert "retry after 30s" in row["last_error"]

    outbox.clock.advance(29)
    assert await outbox.drain() == SendResult()
    assert len(outbox.bot.calls("sendMessage")) == 1  # not asked again before retry_after
    outbox.clock.advance(1.5)
    assert await outbox.drain() == SendResult(sent=1)
    assert outbox.telegram_titles() == ["Alert 1"]
    assert (await outbox.destination(TG))["failures"] == 0


async def test_html_rejected_for_its_entities_is_resent_as_plain_text(outbox: Outbox) -> None:
    outbox.bot.fail_next("sendMessage", 400)  # "can't parse entities"
    await outbox.alert([TG])
    assert await outbox.drain() == SendResult(sent=1)
    rejected, plain = outbox.bot.calls("sendMessage")
    assert rejected.parse_mode == "HTML" and not rejected.ok
    assert plain.ok and plain.parse_mode is None
    assert "<b>" not in (plain.text or "") and "Alert 1: Maduro speaks" in (plain.text or "")


async def test_a_blocked_chat_fails_for_good_while_the_others_go_on(outbox: Outbox) -> None:
    outbox.bot.fail_chat(CHAT, 403)
    await outbox.alert([TG, TG2])
    await outbox.alert([TG, TG2])
    assert await outbox.drain() == SendResult(sent=2, failed=2)
    assert outbox.telegram_titles(OTHER_CHAT) == ["Alert 1", "Alert 2"]
    assert await outbox.states(TG) == ["failed", "failed"]  # the second was still tried
    rows = await outbox.db(outbox.store.recent_alerts, 10)
    errors = [e for r in rows for d, _, e, _ in r.deliveries if d == TG]
    assert all("bot was blocked" in (e or "") and "unblock" in (e or "") for e in errors)
    failing = await outbox.destination(TG)
    assert failing["failures"] == 2 and failing["failing_since"] == START

    # Unblocked: new alerts go out, and `watcher alerts retry` resends the failed ones.
    outbox.bot.clear_faults()
    await outbox.alert([TG])
    assert await outbox.drain() == SendResult(sent=1)
    assert (await outbox.destination(TG))["failing_since"] is None
    assert await outbox.db(outbox.store.retry_failed, outbox.now()) == 2
    assert await outbox.drain() == SendResult(sent=2)
    assert outbox.telegram_titles() == ["Alert 3", "Alert 1", "Alert 2"]
    assert await outbox.states(TG) == ["sent"] * 3


@pytest.mark.parametrize("fault", ["500", "502 outage"])
async def test_an_outage_is_retried_with_backoff_and_delivered_in_order(
    outbox: Outbox, fault: str
) -> None:
    if fault == "500":
        outbox.bot.fail_next("sendMessage", 500, count=2)
    else:
        outbox.bot.outage()
    for _ in range(3):
        await outbox.alert([TG, MAIL])
    assert await outbox.drain() == SendResult(sent=3, retrying=1)  # email is not held up
    first_wait = (await outbox.destination(TG))["next_attempt_at"] - START
    assert timedelta(seconds=3.75) <= first_wait <= timedelta(seconds=5)
    assert len(outbox.bot.calls("sendMessage")) == 1  # the queue waits behind its head

    outbox.clock.set(START + first_wait)
    assert await outbox.drain() == SendResult(retrying=1)
    second_wait = (await outbox.destination(TG))["next_attempt_at"] - outbox.now()
    assert timedelta(seconds=7.5) <= second_wait <= timedelta(seconds=10)  # backing off

    outbox.bot.end_outage()
    outbox.clock.advance(second_wait.total_seconds())
    assert await outbox.drain() == SendResult(sent=3)
    assert outbox.telegram_titles() == ["Alert 1", "Alert 2", "Alert 3"]
    assert (await outbox.destination(TG))["failures"] == 0


async def _back_off(outbox: Outbox, destination: str, failures: int) -> timedelta:
    """Fail ``destination``'s head ``failures`` times (the clock follows its backoff);
    returns how long it then waits."""
    await outbox.drain()
    for _ in range(failures - 1):
        outbox.clock.set((await outbox.destination(destination))["next_attempt_at"])
        await outbox.drain()
    wait: timedelta = (await outbox.destination(destination))["next_attempt_at"] - outbox.now()
    return wait


async def test_a_delivery_through_telegram_wakes_the_chats_waiting_out_a_backoff(
    outbox: Outbox,
) -> None:
    """After an outage, the chats that failed most wait longest (up to retry_cap): once one
    message goes through, the Bot API works, and they are tried at once."""
    outbox.bot.outage()
    await outbox.alert([TG2])
    wait = await _back_off(outbox, TG2, failures=5)
    assert wait > timedelta(seconds=40)
    outbox.bot.end_outage()
    await outbox.alert([TG])  # a fresh alert to the other chat goes through
    assert await outbox.drain() == SendResult(sent=2)
    assert outbox.telegram_titles(OTHER_CHAT) == ["Alert 1"]  # not 40 s later
    assert (await outbox.destination(TG2))["failures"] == 0


async def test_a_chat_told_to_wait_and_other_services_are_not_woken(outbox: Outbox) -> None:
    # Flood control on one chat: Telegram said how long to wait, and that stands.
    outbox.bot.fail_next("sendMessage", 429, retry_after=300)
    await outbox.alert([TG2])
    assert await outbox.drain() == SendResult(retrying=1)
    # SMTP down: email waits out its own backoff; Telegram working says nothing of it.
    outbox.smtp.stop()
    await outbox.alert([MAIL])
    await _back_off(outbox, MAIL, failures=3)
    outbox.smtp.start()
    await outbox.alert([TG])
    assert await outbox.drain() == SendResult(sent=1)
    assert outbox.telegram_titles(OTHER_CHAT) == [] and outbox.mail_subjects() == []
    assert (await outbox.destination(TG2))["next_attempt_at"] > outbox.now()
    assert (await outbox.destination(MAIL))["next_attempt_at"] > outbox.now()


async def test_a_hanging_bot_api_times_out_and_is_retried(outbox: Outbox) -> None:
    outbox.bot.hang_next("sendMessage", 4.0)  # the channel waits 2 s
    await outbox.alert([TG])
    assert await outbox.drain() == SendResult(retrying=1)
    assert "did not answer in time" in (await outbox.destination(TG))["last_error"]
    outbox.clock.advance(10)
    assert await outbox.drain() == SendResult(sent=1)
    # The hung request was handled in the end, as Telegram may do: one duplicate at most.
    await asyncio.to_thread(outbox.bot.wait_for, "sendMessage", 2)
    assert outbox.telegram_titles() == ["Alert 1", "Alert 1"]
    assert await outbox.states(TG) == ["sent"]


# --- SMTP faults ------------------------------------------------------------------------


async def test_smtp_down_for_a_while_queues_then_delivers_in_order(outbox: Outbox) -> None:
    outbox.smtp.stop()
    for _ in range(3):
        await outbox.alert([MAIL])
    assert await outbox.drain() == SendResult(retrying=1)
    assert "connection refused" in (await outbox.destination(MAIL))["last_error"]
    for _ in range(3):  # down for minutes: every attempt fails, the queue keeps its order
        outbox.clock.advance(120)
        assert await outbox.drain() == SendResult(retrying=1)
    assert (await outbox.destination(MAIL))["failures"] == 4

    outbox.smtp.start()
    outbox.clock.advance(120)
    assert await outbox.drain() == SendResult(sent=3)
    assert [s.split(": ")[1] for s in outbox.mail_subjects()] == ["Alert 1", "Alert 2", "Alert 3"]
    assert await outbox.states(MAIL) == ["sent"] * 3


async def test_smtp_dropping_the_connection_is_retried(outbox: Outbox) -> None:
    outbox.smtp.drop_next("DATA")
    outbox.smtp.fail_next("MAIL", "451 4.3.0 Try again later")
    await outbox.alert([MAIL])
    assert await outbox.drain() == SendResult(retrying=1)
    assert "451 4.3.0 Try again later" in (await outbox.destination(MAIL))["last_error"]
    outbox.clock.advance(60)
    assert await outbox.drain() == SendResult(retrying=1)
    assert "closed the connection" in (await outbox.destination(MAIL))["last_error"]
    outbox.clock.advance(60)
    assert await outbox.drain() == SendResult(sent=1)
    assert len(outbox.smtp.messages) == 1


async def test_a_refused_recipient_fails_and_retry_failed_resends_it(outbox: Outbox) -> None:
    outbox.smtp.fail_next("RCPT", "550 5.1.1 No such user here")
    await outbox.alert([MAIL])
    await outbox.alert([MAIL])
    assert await outbox.drain() == SendResult(sent=1, failed=1)
    assert await outbox.states(MAIL) == ["failed", "sent"]
    assert await outbox.db(outbox.store.retry_failed, outbox.now()) == 1
    assert await outbox.db(outbox.store.retry_failed, outbox.now()) == 0
    assert await outbox.drain() == SendResult(sent=1)
    assert await outbox.states(MAIL) == ["sent", "sent"]


async def test_a_destination_without_a_channel_fails_for_good(outbox: Outbox) -> None:
    await outbox.alert(["apprise:team", TG])
    assert await outbox.drain() == SendResult(sent=1, failed=1)
    rows = await outbox.db(outbox.store.recent_alerts, 1)
    failed = ("apprise:team", "failed", "no apprise channel is configured", None)
    assert failed in rows[0].deliveries


async def test_at_a_stop_the_local_sinks_get_what_is_queued_and_remote_ones_wait(
    outbox: Outbox,
) -> None:
    await outbox.alert([TG, "jsonl", "console"])
    outbox.sender.stop()
    assert await outbox.drain() == SendResult()  # stopped: no more rounds
    assert await outbox.sender.drain_local() == SendResult(sent=2)
    assert "Alert 1" in outbox.console.getvalue() and outbox.jsonl.read_text().strip()
    assert outbox.bot.sent(CHAT) == []
    assert await outbox.states(TG) == ["pending"]


async def test_admins_hear_that_a_failing_destination_works_again(outbox: Outbox) -> None:
    from watcher.config import load_config
    from watcher.pipeline.delivery import DeliveryStage
    from watcher.pipeline.reports import StoreTrouble

    said: list[str] = []

    async def report(text: str) -> None:
        said.append(text)

    stage = DeliveryStage(
        load_config(None, env={}), outbox.db, clock=outbox.clock, tz=MADRID,
        sender=outbox.sender, trouble=StoreTrouble(), report=report,
    )  # fmt: skip
    outbox.bot.fail_chat(CHAT, 500)
    await outbox.alert([TG])
    for _ in range(3):
        await stage.send_round()
        outbox.clock.advance(3600)  # past any backoff
    assert [t for t in said if t.startswith(f"Destination {TG} is failing")], said
    outbox.bot.clear_faults()
    await stage.send_round()
    assert said[-1].startswith(f"Destination {TG} works again")
    await outbox.alert([TG])
    await stage.send_round()
    assert sum("works again" in t for t in said) == 1  # said once


async def test_a_digest_time_missed_with_alerts_held_sends_the_digest_late(
    outbox: Outbox,
) -> None:
    """The daemon was not running at 08:00: its held alerts waited a whole day for the next."""
    from watcher.config import config_from_dict
    from watcher.pipeline.delivery import DeliveryStage
    from watcher.pipeline.reports import StoreTrouble

    async def report(text: str) -> None:
        pass

    config = config_from_dict({"alerts": {"digest_at": ["08:00"]}})
    stage = DeliveryStage(
        config, outbox.db, clock=outbox.clock, tz=MADRID, sender=outbox.sender,
        trouble=StoreTrouble(), report=report,
    )  # fmt: skip
    await outbox.alert([Route(TG, True, None)], priority="low")  # 14 Jan, 11:00 in Madrid
    await stage.send_missed_digests()
    await stage.send_round()
    assert outbox.bot.sent(CHAT) == []  # no digest time has passed since it was held
    outbox.clock.set(datetime(2026, 1, 15, 9, 30, tzinfo=UTC))  # 10:30 the next day
    await stage.send_missed_digests()
    await stage.send_round()
    (digest,) = outbox.bot.sent(CHAT)
    assert "Digest: 1 alert" in (digest.text or "")
    await stage.send_missed_digests()  # nothing held any more: nothing sent
    await stage.send_round()
    assert len(outbox.bot.sent(CHAT)) == 1


# --- story updates and developments -----------------------------------------------------


async def test_joins_coalesce_into_one_throttled_edit(outbox: Outbox) -> None:
    await outbox.alert([TG, "jsonl"])
    assert await outbox.drain() == SendResult(sent=2)
    (first,) = outbox.bot.sent(CHAT)
    story = await outbox.story_of_last_alert()

    for _ in range(3):
        await outbox.join(story)
    assert await outbox.db(outbox.store.outbox_depth) == {TG: 1, "jsonl": 1}
    assert await outbox.drain() == SendResult(sent=2)
    (edit,) = outbox.bot.calls("editMessageText", ok=True)
    assert edit.message_id == first.sent_id and "+3 sources" in (edit.text or "")
    assert "Outlet 4" in (edit.text or "")
    update = json.loads(outbox.jsonl.read_text().splitlines()[-1])
    assert update["kind"] == "sources" and len(update["sources"]) == 3
    # the line reads on its own: the story's alert it updates
    assert update["title"] and update["url"] and update["priority"]
    assert [r["name"] for r in update["rules"]]

    outbox.clock.advance(30)
    await outbox.join(story)
    await outbox.join(story)
    assert await outbox.drain() == SendResult()  # within the 60 s throttle
    outbox.clock.advance(30)
    assert await outbox.drain() == SendResult(sent=2)
    assert len(outbox.bot.calls("editMessageText", ok=True)) == 2
    shown = outbox.bot.message(CHAT, first.sent_id or 0)
    assert shown is not None and "+5 sources" in shown["message"]["text"]
    assert len(outbox.bot.sent(CHAT)) == 1  # never a new message


async def test_a_developing_story_replies_to_the_first_alert(outbox: Outbox) -> None:
    await outbox.alert([TG])
    await outbox.drain()
    (first,) = outbox.bot.sent(CHAT)
    await outbox.alert([TG], story_id=await outbox.story_of_last_alert())
    assert await outbox.drain() == SendResult(sent=1)
    reply = outbox.bot.sent(CHAT)[-1]
    assert reply.reply_to == first.sent_id
    assert (reply.text or "").startswith("<i>Story develops (venezuela)</i>")


async def test_an_update_waits_for_its_alert_held_by_quiet_hours(outbox: Outbox) -> None:
    morning = START + timedelta(hours=8)
    await outbox.alert([Route(TG, False, morning)])
    await outbox.join(await outbox.story_of_last_alert())
    assert await outbox.drain() == SendResult()
    assert outbox.bot.requests == []
    outbox.clock.set(morning)
    assert await outbox.drain() == SendResult(sent=2)
    (first,) = outbox.bot.sent(CHAT)
    (edit,) = outbox.bot.calls("editMessageText", ok=True)
    assert edit.message_id == first.sent_id and "+1 source:" in (edit.text or "")


# --- digests and quiet hours ------------------------------------------------------------


async def test_low_priority_alerts_are_held_and_sent_as_one_digest(outbox: Outbox) -> None:
    held = [Route(TG, True, None), Route(MAIL, True, None), Route("jsonl", False, None)]
    for _ in range(3):
        await outbox.alert(held, priority="low")
    assert await outbox.drain() == SendResult(sent=3)  # only the local record
    assert outbox.bot.requests == [] and outbox.smtp.messages == []
    assert sorted(await outbox.db(outbox.store.digest_destinations)) == [MAIL, TG]

    outbox.clock.set(datetime(2026, 1, 15, 7, 0, tzinfo=UTC))  # 08:00 in Madrid
    for destination in (TG, MAIL):
        assert await outbox.db(outbox.store.queue_digest, destination, outbox.now()) == 3
    assert await outbox.db(outbox.store.queue_digest, TG, outbox.now()) == 0
    assert await outbox.drain() == SendResult(sent=2)
    (digest,) = outbox.bot.sent(CHAT)
    assert "Digest: 3 alerts (15 Jan 08:00 CET)" in (digest.text or "")
    assert all(f"Alert {i}: Maduro speaks" in (digest.text or "") for i in (1, 2, 3))
    assert digest.disable_notification
    assert outbox.mail_subjects() == ["[watcher] Digest: 3 alerts (15 Jan 08:00 CET)"]
    assert await outbox.states(TG) == ["digested"] * 3 + ["sent"]


def _night(now: datetime) -> Context:
    return Context(
        now=now,
        tz=MADRID,
        muted=frozenset(),
        recent_alerts={},
        rate_limit=10,
        default_destinations=(TG,),
        local_destinations=("jsonl",),
        quiet_hours={},
        default_quiet_hours="22:00-07:00",
        critical_ignores_quiet=True,
    )


async def test_quiet_hours_hold_alerts_until_morning_but_not_critical_ones(
    outbox: Outbox,
) -> None:
    outbox.clock.set(datetime(2026, 1, 14, 22, 30, tzinfo=UTC))  # 23:30 in Madrid
    for priority in ("normal", "critical"):
        routes = plan([_match(priority)], Action.ALERT, "", _night(outbox.now())).routes
        await outbox.alert(routes, priority=priority)
    assert await outbox.drain() == SendResult(sent=3)  # the critical one and both records
    assert outbox.telegram_titles() == ["Alert 2"]

    outbox.clock.set(datetime(2026, 1, 15, 5, 59, tzinfo=UTC))  # 06:59
    assert await outbox.drain() == SendResult()
    outbox.clock.set(datetime(2026, 1, 15, 6, 0, tzinfo=UTC))  # 07:00: the window ends
    assert await outbox.drain() == SendResult(sent=1)
    assert outbox.telegram_titles() == ["Alert 2", "Alert 1"]
    assert outbox.bot.sent(CHAT)[0].text.startswith("🚨")  # type: ignore[union-attr]


# --- pure parts -------------------------------------------------------------------------


def test_retry_delay_backs_off_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, None, 60.0, rng) for n in range(1, 8)]
    assert all(0.75 * min(60, 5 * 2 ** (n - 1)) <= d for n, d in enumerate(delays, 1))
    assert all(d <= min(60, 5 * 2 ** (n - 1)) for n, d in enumerate(delays, 1))
    assert retry_delay(1, 120.0, 60.0, rng) == 120.0  # what the remote side asked wins


def test_destinations_split_into_kind_and_target() -> None:
    assert split_destination("telegram:-100123/7") == ("telegram", "-100123/7")
    assert split_destination("email:a@b.example") == ("email", "a@b.example")
    assert split_destination("console") == ("console", "")


def _job(kind: str, destination: str = TG, **changes: Any) -> DeliveryJob:
    payload = build_payload(_article(1), [_match("low")], source="Outlet 1", quotes=2)
    values: dict[str, Any] = {
        "id": 1,
        "alert_id": 9,
        "destination": destination,
        "kind": kind,
        "attempts": 0,
        "alert_kind": "new",
        "payload": payload,
        "story_id": 3,
    } | changes
    return DeliveryJob(**values)


def test_compose_each_kind_of_delivery() -> None:
    sent = compose(_job("send"), MADRID, START)
    assert sent is not None and sent.silent and sent.data is not None
    assert sent.data["alert_id"] == 9 and sent.reply_to is None and sent.edit_of is None

    reply = compose(_job("reply", target_remote_id="41"), MADRID, START)
    assert reply is not None and reply.reply_to == "41"
    assert reply.html.startswith("<i>Story develops (venezuela)</i>")

    original = _job("send").payload
    sources = (("Outlet 2", "https://news.example/2"),)
    edit = compose(
        _job("edit", target_remote_id="41", sources=sources, original_payload=original),
        MADRID,
        START,
    )
    assert edit is not None and edit.edit_of == "41" and "+1 source:" in edit.html

    digest = compose(_job("digest", payload={"items": [original]}), MADRID, START)
    assert digest is not None and digest.subject.startswith("[watcher] Digest: 1 alert")

    # A development keeps the first alert's subject ("Re: ..."), so mail clients that thread
    # by subject keep the story in one thread; its text still leads with the new article.
    first = build_payload(_article(2), [_match("low")], source="Outlet 2", quotes=1)
    first_sent = compose(_job("send", MAIL, payload=first), MADRID, START)
    develop = compose(
        _job("reply", MAIL, target_remote_id="<a@b>", original_payload=first), MADRID, START
    )
    assert first_sent is not None and develop is not None
    assert develop.subject == f"Re: {first_sent.subject}" and "Alert 2" in develop.subject
    assert "Alert 1" in develop.text  # the body leads with the article that developed it
    elsewhere = compose(
        _job("reply", TG, target_remote_id="41", original_payload=first), MADRID, START
    )
    assert elsewhere is not None and not elsewhere.subject.startswith("Re:")  # Apprise, webhooks


def test_compose_updates_where_the_original_is_missing() -> None:
    sources = (("Outlet 2", "https://news.example/2"),)
    original = _job("send").payload
    assert compose(_job("edit", sources=sources), MADRID, START) is None
    assert compose(_job("edit", original_payload=original), MADRID, START) is None
    by_mail = compose(_job("edit", MAIL, sources=sources, original_payload=original), MADRID, START)
    assert by_mail is not None and by_mail.edit_of == "story"
    assert by_mail.subject == "↻ Alert 1: Maduro speaks: +1 source (Outlet 2)"
    # shown alone, the update names the new source's link
    assert by_mail.text == f"{by_mail.subject}\n  Outlet 2: https://news.example/2"
    assert '<a href="https://news.example/2">' in by_mail.html


def test_an_update_alone_counts_a_source_named_many_times_and_lists_a_few_links() -> None:
    wire = [("Wire", f"https://news.example/{n}") for n in range(27)]
    sources = (*wire, ("Outlet 2", "https://news.example/x"))
    original = _job("send").payload
    by_mail = compose(_job("edit", MAIL, sources=sources, original_payload=original), MADRID, START)
    assert by_mail is not None
    assert "(Wire ×27, Outlet 2)" in by_mail.subject
    assert by_mail.text.count("https://news.example/") == 8
    assert "and 20 more" in by_mail.text and "and 20 more" in by_mail.html
