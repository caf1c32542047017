"""Store methods for articles, stories and the alert outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from watcher.alerts.compose import build_payload
from watcher.articles.fingerprint import signature
from watcher.config import FeedConfig
from watcher.errors import StoreError
from watcher.store import Store, open_store
from watcher.store.alerts import ArticleRecord, StoryChange
from watcher.store.feeds import PollSuccess
from watcher.store.tables import (
    alerts,
    articles,
    deliveries,
    entries,
    matches,
    stories,
    story_sources,
)
from watcher.types import Article, ArticleSource, Entry, Evidence, Match, NewEntry, Outcome, Route

NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
TG, MAIL = "telegram:-1001", "email:desk@example.org"
TABLES = {
    "articles": articles,
    "matches": matches,
    "stories": stories,
    "story_sources": story_sources,
    "alerts": alerts,
    "deliveries": deliveries,
}


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def pending_entries(store: Store, count: int) -> list[int]:
    """Entries as a poll records them, waiting for the article stage."""
    (feed,) = store.sync_feeds([FeedConfig(url="https://news.example/feed.xml")], NOW)
    new = [
        NewEntry(
            Entry(f"g{i}", f"https://news.example/{i}", f"T{i}", "", "", "", NOW, None, "en"),
            (f"guid:g{i}",),
            f"fp{i}",
        )
        for i in range(count)
    ]
    poll = PollSuccess(NOW, NOW + timedelta(hours=1), None, None, None, new=new)
    return store.record_poll_success(feed.id, poll)


def counts(store: Store) -> dict[str, int]:
    with store.transaction() as conn:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for name, t in TABLES.items()
        }


def entry_state(store: Store, entry_id: int) -> str:
    with store.transaction() as conn:
        return str(
            conn.execute(sa.select(entries.c.state).where(entries.c.id == entry_id)).scalar()
        )


def article(i: int, source: str = "") -> Article:
    return Article(
        url=f"https://news.example/{i}",
        title=f"Alert {i}: Maduro speaks",
        text=f"Maduro spoke in Caracas on day {i}.",
        source=ArticleSource.PAGE,
        published=NOW,
        feed_name=source or f"Outlet {i}",
    )


def match(rule: str = "venezuela", score: float = 5.0, priority: str = "normal") -> Match:
    found = Evidence("actor", "Nicolás Maduro", "Maduro", "text", "Maduro spoke.", 0, 6)
    return Match(rule, score, 3.0, (found,), priority, (), ("matched",))


def record(
    i: int,
    routes: Sequence[Route] = (),
    *,
    entry_id: int | None = None,
    story_id: int | None = None,
    kind: str | None = "new",
    outcome: str = "alert",
    now: datetime = NOW,
    m: Match | None = None,
    **changes: Any,
) -> ArticleRecord:
    a, m = article(i), m or match()
    values: dict[str, Any] = {
        "entry_id": entry_id,
        "feed_id": None,
        "url": a.url,
        "article": a,
        "now": now,
        "matches": [(m, Outcome(m.rule, outcome, "why"))],
        "story": StoryChange(story_id, a.title, signature(a.title, a.text), {m.rule: m.score}),
        "alert_kind": kind,
        "payload": build_payload(a, [m], source=a.feed_name, quotes=1) if kind else None,
        "routes": routes,
        "updatable_kinds": frozenset({"telegram", "console", "jsonl"}),  # as the specs say
    } | changes
    return ArticleRecord(**values)


def story_ids(store: Store) -> list[int]:
    return sorted(s.id for s in store.recent_stories(NOW - timedelta(days=1)))


def heads(store: Store, now: datetime = NOW) -> list[tuple[str, str, str]]:
    return [(j.destination, j.kind, j.payload.get("title", "")) for j in store.outbox_heads(now)]


# --- recording an article ---------------------------------------------------------------


def test_an_alert_is_recorded_with_its_match_story_and_deliveries(store: Store) -> None:
    (entry,) = pending_entries(store, 1)
    later = NOW + timedelta(hours=8)
    routes = [Route(TG, False, None), Route(MAIL, False, later), Route("email:x@y.z", True, None)]
    article_id = store.record_article(record(0, routes, entry_id=entry))
    assert article_id is not None and store.article_id("https://news.example/0") == article_id
    assert counts(store) == {
        "articles": 1,
        "matches": 1,
        "stories": 1,
        "story_sources": 0,
        "alerts": 1,
        "deliveries": 3,
    }
    assert entry_state(store, entry) == "done"
    with store.transaction() as conn:
        rows = list(conn.execute(sa.select(deliveries).order_by(deliveries.c.id)))
    assert [(r.destination, r.kind, r.state, r.not_before) for r in rows] == [
        (TG, "send", "pending", None),
        (MAIL, "send", "pending", later),
        ("email:x@y.z", "send", "digest", None),
    ]
    (story,) = store.recent_stories(NOW)
    assert story.rules == {"venezuela": 5.0} and story.signature == record(0).story.signature  # type: ignore[union-attr]


def test_recording_is_all_or_nothing(store: Store) -> None:
    (entry,) = pending_entries(store, 1)
    broken = record(0, [Route(TG, False, None)], entry_id=entry)
    assert broken.payload is not None
    broken.payload["extra"] = {1, 2}  # not JSON: fails after the article, story and matches
    with pytest.raises(StoreError):
        store.record_article(broken)
    assert set(counts(store).values()) == {0}
    assert entry_state(store, entry) == "pending"  # processed again on the next run

    assert store.record_article(record(0, [Route(TG, False, None)], entry_id=entry)) is not None
    assert counts(store)["deliveries"] == 1


def test_the_same_article_again_only_finishes_its_entry(store: Store) -> None:
    first, second = pending_entries(store, 2)
    assert store.record_article(record(0, [Route(TG, False, None)], entry_id=first)) is not None
    before = counts(store)
    again = record(0, [Route(TG, False, None)], entry_id=second, kind="new")
    assert store.record_article(again) is None
    assert counts(store) == before and entry_state(store, second) == "done"


def test_an_article_without_matches_is_stored_alone(store: Store) -> None:
    (entry,) = pending_entries(store, 1)
    bare = record(0, entry_id=entry, kind=None, matches=(), story=None)
    assert store.record_article(bare) is not None
    assert counts(store)["articles"] == 1 and sum(counts(store).values()) == 1


def test_a_joining_article_updates_the_story_and_queues_one_edit(store: Store) -> None:
    routes = [Route(TG, False, None), Route(MAIL, False, None), Route("jsonl", False, None)]
    store.record_article(record(0, routes))
    (story,) = story_ids(store)
    for i in (1, 2, 3):
        join = record(i, kind=None, story_id=story, outcome="join", now=NOW + timedelta(minutes=i))
        store.record_article(join)
    assert counts(store)["story_sources"] == 3
    (ref,) = store.recent_stories(NOW + timedelta(minutes=3))  # last seen moved on
    assert ref.last_seen == NOW + timedelta(minutes=3)
    # Email cannot edit what it sent; the others get one pending edit, not three.
    assert store.outbox_depth() == {TG: 2, MAIL: 1, "jsonl": 2}
    with store.transaction() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(alerts).order_by(alerts.c.id))]
    assert kinds == ["new", "sources"]


def test_a_story_keeps_the_best_score_of_each_rule(store: Store) -> None:
    store.record_article(record(0, [Route(TG, False, None)]))
    (story,) = story_ids(store)
    develop = record(1, [Route(TG, False, None)], story_id=story, kind="develop", m=match(score=9))
    store.record_article(develop)
    lower = record(2, kind=None, story_id=story, outcome="join", m=match(score=4))
    store.record_article(lower)
    other = record(3, kind=None, story_id=story, outcome="join", m=match("oil", 1.0))
    store.record_article(other)
    (ref,) = store.recent_stories(NOW)
    assert ref.rules == {"venezuela": 9.0, "oil": 1.0}
    # A development replies to the first alert; the two joins share one edit.
    assert [j.kind for j in _all_jobs(store, TG)] == ["send", "reply", "edit"]


def test_alert_counts_cover_sent_alerts_in_the_window(store: Store) -> None:
    store.record_article(record(0, [Route(TG, False, None)]))
    store.record_article(record(1, kind=None, outcome="digest", routes=()))
    store.record_article(record(2, now=NOW + timedelta(hours=2)))
    assert store.alert_counts(NOW - timedelta(minutes=1)) == {"venezuela": 2}
    assert store.alert_counts(NOW + timedelta(hours=1)) == {"venezuela": 1}


# --- the outbox -------------------------------------------------------------------------


def test_outbox_heads_are_the_oldest_due_delivery_per_destination(store: Store) -> None:
    tomorrow = NOW + timedelta(days=1)
    store.record_article(record(0, [Route(TG, False, tomorrow), Route(MAIL, False, None)]))
    store.record_article(record(1, [Route(TG, False, None), Route(MAIL, False, None)]))
    store.record_article(record(2, [Route(TG, False, None), Route(MAIL, True, None)]))
    assert heads(store) == [
        (MAIL, "send", "Alert 0: Maduro speaks"),
        (TG, "send", "Alert 1: Maduro speaks"),  # alert 0 is held until tomorrow
    ]
    assert heads(store, tomorrow)[0] == (TG, "send", "Alert 0: Maduro speaks")


def test_a_destination_in_backoff_has_no_head_until_its_retry_time(store: Store) -> None:
    store.record_article(record(0, [Route(TG, False, None), Route(MAIL, False, None)]))
    (job,) = [j for j in store.outbox_heads(NOW) if j.destination == TG]
    retry_at = NOW + timedelta(seconds=30)
    assert store.delivery_failed(job.id, TG, "502", NOW, retry_at=retry_at) == 1
    assert [d for d, _, _ in heads(store)] == [MAIL]
    assert [d for d, _, _ in heads(store, retry_at)] == [TG, MAIL]
    (again,) = [j for j in store.outbox_heads(retry_at) if j.destination == TG]
    assert again.id == job.id and again.attempts == 1


def test_waking_a_kind_lets_its_destinations_in_backoff_be_tried_now(store: Store) -> None:
    tg2, tg3, look_alike = "telegram:-1002", "telegram:-1003", "telegramx:-1001"
    routes = [Route(d, False, None) for d in (TG, tg2, tg3, look_alike, MAIL)]
    store.record_article(record(0, routes))
    later = NOW + timedelta(minutes=5)
    for job in store.outbox_heads(NOW):
        store.delivery_failed(job.id, job.destination, "502", NOW, retry_at=later)
    assert heads(store) == []
    assert store.wake_destinations("telegram", NOW, keep={tg3}) == [TG, tg2]
    assert sorted(d for d, _, _ in heads(store)) == [TG, tg2]  # due now, in their order
    assert store.wake_destinations("telegram", NOW) == [tg3]  # the rest, when asked
    assert store.wake_destinations("telegram", NOW) == []  # nothing waits any more
    assert sorted(d for d, _, _ in heads(store)) == [TG, tg2, tg3]  # not email, not look-alike


def test_failures_and_success_are_tracked_per_destination(store: Store) -> None:
    for i in range(3):
        store.record_article(record(i, [Route(TG, False, None)]))
    first, second, third = (j.id for j in _all_jobs(store, TG))
    store.delivery_failed(first, TG, "blocked", NOW, retry_at=None)
    later = NOW + timedelta(minutes=5)
    assert store.delivery_failed(second, TG, "blocked again", later, retry_at=None) == 2
    (row,) = store.destination_rows()
    assert (row["failures"], row["failing_since"], row["last_error"]) == (2, NOW, "blocked again")
    store.delivery_sent(third, TG, "77", later)
    (row,) = store.destination_rows()
    assert (row["failures"], row["failing_since"], row["last_success_at"]) == (0, None, later)
    states = [d[:3] for r in reversed(store.recent_alerts()) for d in r.deliveries]
    assert states == [
        (TG, "failed", "blocked"),
        (TG, "failed", "blocked again"),
        (TG, "sent", None),
    ]


def _all_jobs(store: Store, destination: str) -> list[Any]:
    with store.transaction() as conn:
        return list(
            conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.destination == destination)
                .order_by(deliveries.c.id)
            )
        )


def test_retry_failed_queues_failed_deliveries_again(store: Store) -> None:
    store.record_article(record(0, [Route(TG, False, None), Route(MAIL, False, None)]))
    tg, mail = (j.id for j in store.outbox_heads(NOW)[::-1])
    store.delivery_failed(tg, TG, "blocked", NOW, retry_at=None)
    store.delivery_failed(mail, MAIL, "down", NOW, retry_at=NOW + timedelta(hours=1))
    assert store.retry_failed(NOW) == 1
    # Every destination's backoff is lifted too: "retry" means now.
    assert sorted(d for d, _, _ in heads(store)) == [MAIL, TG]
    assert store.retry_failed(NOW) == 0


def test_a_digest_of_one_alert_is_listed_as_one_alert(store: Store) -> None:
    store.record_article(record(0, [Route(MAIL, True, None)]))
    store.record_article(record(1, [Route(TG, True, None), Route(MAIL, True, None)]))
    assert store.queue_digest(TG, NOW) == 1 and store.queue_digest(MAIL, NOW) == 2
    digests = sorted(r.title for r in store.recent_alerts(10) if r.kind == "digest")
    assert digests == ["1 alert", "2 alerts"]


def test_queue_digest_gathers_held_alerts_into_one_delivery(store: Store) -> None:
    for i in range(3):
        store.record_article(record(i, [Route(TG, True, None), Route(MAIL, True, None)]))
    store.record_article(record(3, [Route(TG, False, None)]))
    assert sorted(store.digest_destinations()) == [MAIL, TG]
    assert store.queue_digest(TG, NOW) == 3
    assert store.digest_destinations() == [MAIL]
    assert store.queue_digest(TG, NOW) == 0
    jobs = store.outbox_heads(NOW)
    assert [j.kind for j in jobs] == ["send"]  # alert 3 came first; the digest is behind
    store.delivery_sent(jobs[0].id, TG, "1", NOW)
    (digest,) = store.outbox_heads(NOW)
    assert digest.kind == "digest" and digest.destination == TG
    assert [item["title"] for item in digest.payload["items"]] == [
        f"Alert {i}: Maduro speaks" for i in range(3)
    ]
    newest = store.recent_alerts(1)[0]
    assert (newest.kind, newest.title, newest.rules) == ("digest", "3 alerts", ())


def test_recent_alerts_list_newest_first_with_each_delivery(store: Store) -> None:
    for i in range(3):
        store.record_article(record(i, [Route(TG, False, None), Route(MAIL, True, None)]))
    rows = store.recent_alerts(2)
    assert [r.title for r in rows] == ["Alert 2: Maduro speaks", "Alert 1: Maduro speaks"]
    assert rows[0].rules == ("venezuela",) and rows[0].priority == "normal"
    assert rows[0].deliveries == ((TG, "pending", None, None), (MAIL, "digest", None, None))


def test_mutes_expire_and_can_be_lifted(store: Store) -> None:
    store.add_mute("rule:venezuela", NOW + timedelta(hours=1), NOW, by="tester")
    store.add_mute("rule:venezuela", NOW + timedelta(hours=3), NOW)
    store.add_mute("actor:Nicolás Maduro", NOW + timedelta(minutes=1), NOW)
    assert store.active_mutes(NOW) == {
        "rule:venezuela": NOW + timedelta(hours=3),
        "actor:Nicolás Maduro": NOW + timedelta(minutes=1),
    }
    assert set(store.active_mutes(NOW + timedelta(minutes=2))) == {"rule:venezuela"}
    assert store.remove_mute("rule:venezuela", NOW) == 2
    assert store.active_mutes(NOW + timedelta(seconds=1)) == {
        "actor:Nicolás Maduro": NOW + timedelta(minutes=1)
    }


def test_a_delivery_held_by_quiet_hours_is_listed_with_the_time_it_waits_for(
    store: Store,
) -> None:
    from zoneinfo import ZoneInfo

    from watcher.cli import format_alerts

    morning = NOW + timedelta(hours=8)
    store.record_article(record(1, [Route(TG, False, morning), Route(MAIL, False, None)]))
    (row,) = store.recent_alerts()
    assert [(d.destination, d.state, d.held_until) for d in row.deliveries] == [
        (TG, "pending", morning),
        (MAIL, "pending", None),
    ]
    madrid = ZoneInfo("Europe/Madrid")
    local = morning.astimezone(madrid)
    table = format_alerts([row], madrid, now=NOW)
    day = "" if local.date() == NOW.astimezone(madrid).date() else local.strftime("%a ")
    assert f"{TG}=pending (held until {day}{local:%H:%M})" in table
    assert f"{MAIL}=pending" in table and f"{MAIL}=pending (" not in table
    # Once that time has passed, it is just pending (due: the sender takes it next).
    assert "held until" not in format_alerts([row], madrid, now=morning + timedelta(minutes=1))


def test_a_digest_queued_in_quiet_hours_waits_for_them_to_end(store: Store) -> None:
    store.record_article(record(0, [Route(TG, True, None)]))
    assert store.queue_digest(TG, NOW, NOW + timedelta(hours=3)) == 1
    assert store.outbox_heads(NOW) == []
    (digest,) = store.outbox_heads(NOW + timedelta(hours=3))
    assert digest.kind == "digest"


def test_a_named_feed_whose_url_changed_keeps_its_row_and_history(store: Store) -> None:
    old = FeedConfig(url="https://news.example/old.xml", name="Desk")
    (feed,) = store.sync_feeds([old], NOW)
    new = [NewEntry(Entry("g1", "https://news.example/1", "T1", "", "", "", NOW, None, "en"),
                    ("guid:g1",), "fp1")]  # fmt: skip
    store.record_poll_success(feed.id, PollSuccess(NOW, NOW, '"v1"', None, None, new=new))
    store.record_poll_failure(feed.id, NOW, "HTTP 410 Gone", NOW + timedelta(hours=6))
    moved = FeedConfig(url="https://feeds.news.example/desk.rss", name="Desk")
    unnamed = FeedConfig(url="https://other.example/b.xml")
    (desk, other) = sorted(store.sync_feeds([moved, unnamed], NOW), key=lambda f: f.name)
    assert (desk.id, desk.url, desk.etag) == (feed.id, moved.url, None)  # old validators gone
    assert (desk.failures, desk.next_poll_at, desk.first_poll) == (0, None, True)  # backfill
    assert set(store.known_keys(desk.id, ["guid:g1"])) == {"guid:g1"}  # its entries stay
    again = FeedConfig(url="https://other.example/moved-b.xml")  # no name: a new feed
    assert {f.url for f in store.sync_feeds([moved, again], NOW)} == {moved.url, again.url}
    assert other.id not in {f.id for f in store.feeds()}
    store.sync_feeds([again], NOW)  # Desk set aside...
    (reborn,) = [f for f in store.sync_feeds([again, old], NOW) if f.name == "Desk"]
    assert reborn.url == old.url  # ...and its old url back: that row, configured again
    store.sync_feeds([again], NOW)
    later = FeedConfig(url="https://news.example/desk-2027.xml", name="Desk")
    (fresh,) = [f for f in store.sync_feeds([again, later], NOW) if f.name == "Desk"]
    assert fresh.id != feed.id  # a name set aside earlier lends nothing
