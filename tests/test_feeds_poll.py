"""One poll of one feed against real loopback servers and a real SQLite file: conditional GET,
dedup across publisher changes, first-poll backfill, failures and backoff, health reports."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from httpserver import HttpServer

from watcher.cli import format_feed_table
from watcher.clock import FakeClock
from watcher.config import Config, FeedConfig, HttpSettings, PollingSettings
from watcher.feeds.poll import Poller, PollResult
from watcher.http import HttpClient
from watcher.pipeline import Pipeline
from watcher.store import Store, open_store
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.store.tables import entries
from watcher.workers import CpuPool, InlinePool

T = TypeVar("T")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
POLLING = PollingSettings(interval=900.0, backfill_items=3, backfill_window=86400.0)


# --- synthetic feeds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    n: int
    guid: str | None = "default"
    link: str | None = "default"
    title: str = ""
    summary: str = ""
    published: datetime | None = None

    def render(self) -> str:
        guid = f"urn:story:{self.n}" if self.guid == "default" else self.guid
        link = f"https://news.example/story/{self.n}" if self.link == "default" else self.link
        parts = [f"<title>{escape(self.title or f'Story {self.n}')}</title>"]
        if guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
        if link is not None:
            parts.append(f"<link>{escape(link)}</link>")
        summary = self.summary or f"What happened in story {self.n}."
        parts.append(f"<description>{escape(summary)}</description>")
        published = self.published or NOW - timedelta(hours=self.n)
        parts.append(f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>")
        return f"<item>{''.join(parts)}</item>"


def rss(items: list[Item], *, channel_extra: str = "") -> str:
    body = "".join(item.render() for item in items)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Example News</title><link>https://news.example/</link>{channel_extra}"
        f"{body}</channel></rss>"
    )


def items(*numbers: int, **fields: Any) -> list[Item]:
    return [Item(n, **fields) for n in numbers]


# --- the harness: a real store, store thread, HTTP client and poller --------------------------


class CountingPool(InlinePool):
    """The inline pool, counting its calls: shows when a poll parsed and when it did not."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.calls += 1
        return fn(*args, **kwargs)


class Harness:
    def __init__(self, store: Store, clock: FakeClock, http: HttpSettings) -> None:
        self.store = store
        self.db = StoreRunner(store)
        self.clock = clock
        self.client = HttpClient(http, clock=clock)
        self.cpu = CountingPool()
        self.poller = self.new_poller(POLLING)

    def new_poller(self, settings: PollingSettings) -> Poller:
        return Poller(
            self.client, self.db, settings, clock=self.clock, cpu=self.cpu, rng=random.Random(7)
        )

    def add(self, url: str, **fields: Any) -> FeedRow:
        return self.store.add_feed(FeedConfig(url=url, **fields), self.clock.now())

    def row(self, url: str) -> FeedRow:
        return self.store.feed_by_url(url)

    async def poll(self, url: str) -> PollResult:
        """Poll the feed at ``url`` as stored now, as the pipeline would."""
        return await self.poller.poll(self.row(url))

    def entry_states(self) -> dict[str, str]:
        with self.store.transaction() as conn:
            return {r.title: r.state for r in conn.execute(sa.select(entries))}

    def entry(self, title: str) -> Any:
        with self.store.transaction() as conn:
            return conn.execute(sa.select(entries).where(entries.c.title == title)).one()

    async def aclose(self) -> None:
        await self.client.aclose()
        self.db.shutdown()


def http_settings(**overrides: Any) -> HttpSettings:
    values: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
        "max_bytes": 200_000,
        "allow_private_addresses": True,
    }
    return HttpSettings(**(values | overrides))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/w.db")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def harness(store: Store, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(store, clock, http_settings())
    yield h
    await h.aclose()


@pytest.fixture
def make_harness(store: Store, clock: FakeClock) -> Iterator[Callable[..., Harness]]:
    """A harness with other HTTP settings; closed by the caller (``await h.aclose()``)."""

    def make(**overrides: Any) -> Harness:
        return Harness(store, clock, http_settings(**overrides))

    yield make


async def settled(h: Harness, server: HttpServer, body: str, **route: Any) -> str:
    """A feed whose first poll already happened, so later polls are not backfill polls."""
    url = server.route("/feed.xml", body, headers=RSS_TYPE, **route)
    h.add(url)
    result = await h.poll(url)
    assert result.outcome == "updated"
    return url


# --- conditional GET ----------------------------------------------------------------------


async def test_validators_are_stored_sent_back_and_a_304_costs_no_parse(
    http_server: HttpServer, harness: Harness
) -> None:
    stamp = "Sun, 01 Mar 2026 10:00:00 GMT"
    url = http_server.route(
        "/feed.xml", rss(items(1, 2)), headers=RSS_TYPE, etag='"v1"', last_modified=stamp
    )
    harness.add(url)
    first = await harness.poll(url)
    row = harness.row(url)
    assert (first.outcome, row.etag, row.last_modified) == ("updated", '"v1"', stamp)
    assert harness.cpu.calls == 1
    assert http_server.requests[0].header("if-none-match") is None

    harness.clock.advance(900)
    second = await harness.poll(url)
    request = http_server.requests[-1]
    assert request.header("if-none-match") == '"v1"'
    assert request.header("if-modified-since") == stamp
    assert second.outcome == "not-modified"
    assert harness.cpu.calls == 1  # nothing parsed
    row = harness.row(url)
    assert (row.polls, row.not_modified, row.failures) == (2, 1, 0)
    assert row.last_success_at == NOW + timedelta(seconds=900)
    assert row.etag == '"v1"'  # a 304 keeps the validators
    assert second.next_poll_at >= harness.clock.now() + timedelta(seconds=900)


async def test_last_modified_alone_gives_a_304(http_server: HttpServer, harness: Harness) -> None:
    stamp = "Sun, 01 Mar 2026 10:00:00 GMT"
    url = await settled(harness, http_server, rss(items(1)), last_modified=stamp)
    assert (await harness.poll(url)).outcome == "not-modified"
    assert http_server.requests[-1].header("if-modified-since") == stamp
    assert http_server.requests[-1].header("if-none-match") is None


async def test_a_changed_etag_is_stored_and_its_body_parsed(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1)), etag='"v1"')
    http_server.route("/feed.xml", rss(items(1, 2)), headers=RSS_TYPE, etag='"v2"')
    result = await harness.poll(url)
    assert (result.outcome, len(result.new_entry_ids)) == ("updated", 1)
    assert harness.row(url).etag == '"v2"'
    assert http_server.requests[-1].header("if-none-match") == '"v1"'


async def test_cache_control_max_age_floors_the_interval(
    http_server: HttpServer, harness: Harness
) -> None:
    url = http_server.route(
        "/feed.xml", rss(items(1)), headers=RSS_TYPE | {"Cache-Control": "max-age=3600"}
    )
    harness.add(url)
    result = await harness.poll(url)
    assert harness.row(url).hint == 3600
    assert result.next_poll_at >= NOW + timedelta(seconds=3600)


async def test_rss_ttl_floors_the_interval(http_server: HttpServer, harness: Harness) -> None:
    url = http_server.route("/feed.xml", rss(items(1), channel_extra="<ttl>60</ttl>"))
    harness.add(url)
    result = await harness.poll(url)
    assert harness.row(url).hint == 3600
    assert result.next_poll_at >= NOW + timedelta(seconds=3600)


# --- identity and dedup -------------------------------------------------------------------


async def test_new_entries_are_pending_and_the_same_document_twice_adds_nothing(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2, 3)))
    assert harness.store.count_entries("pending") == 3  # recent enough for the backfill
    http_server.route("/feed.xml", rss([*items(0, 1, 2, 3), Item(-1)]), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert result.outcome == "updated"
    assert len(result.new_entry_ids) == 2
    pending = {p.id: p for p in harness.store.pending_entries()}
    assert {pending[i].entry.title for i in result.new_entry_ids} == {"Story 0", "Story -1"}
    assert pending[result.new_entry_ids[0]].entry.link == "https://news.example/story/0"
    assert harness.row(url).last_new_item_at == NOW

    again = await harness.poll(url)
    assert (again.new_entry_ids, again.updated, again.backfilled) == ([], 0, 0)
    assert harness.store.count_entries() == 5
    assert harness.row(url).entries_total == 5


async def test_publisher_changing_guids_but_keeping_links_adds_nothing(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2, 3)))
    moved = [Item(n, guid=f"https://news.example/?p={n + 1000}") for n in (1, 2, 3)]
    http_server.route("/feed.xml", rss(moved), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (result.new_entry_ids, result.updated) == ([], 0)
    assert harness.store.count_entries() == 3


async def test_tracking_parameters_added_to_links_add_nothing(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2, 3, guid=None)))
    tracked = [
        Item(
            n,
            guid=None,
            link=f"https://NEWS.example/story/{n}?utm_source=rss&utm_medium=feed&fbclid=x#top",
        )
        for n in (1, 2, 3)
    ]
    http_server.route("/feed.xml", rss(tracked), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (result.new_entry_ids, result.updated) == ([], 0)
    assert harness.store.count_entries() == 3


async def test_new_guids_and_tracked_links_at_once_add_nothing(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2)))
    both = [
        Item(n, guid=f"tag:cms,2026:{n}", link=f"https://news.example/story/{n}?utm_campaign=x")
        for n in (1, 2)
    ]
    http_server.route("/feed.xml", rss(both), headers=RSS_TYPE)
    assert (await harness.poll(url)).new_entry_ids == []


async def test_an_edited_entry_is_updated_not_new(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2)))
    edited = [Item(1, title="Story 1 (corrected)", summary="A correction was appended."), Item(2)]
    http_server.route("/feed.xml", rss(edited), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (result.new_entry_ids, result.updated) == ([], 1)
    row = harness.entry("Story 1 (corrected)")
    assert (row.revisions, row.summary, row.state) == (1, "A correction was appended.", "pending")
    assert harness.entry("Story 2").revisions == 0
    assert harness.store.count_entries() == 2
    # The edit is remembered: seeing it again is not another revision.
    assert (await harness.poll(url)).updated == 0
    assert harness.entry("Story 1 (corrected)").revisions == 1


async def test_reordered_items_add_nothing(http_server: HttpServer, harness: Harness) -> None:
    url = await settled(harness, http_server, rss(items(1, 2, 3, 4)))
    http_server.route("/feed.xml", rss(items(3, 1, 4, 2)), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (result.new_entry_ids, result.updated, result.backfilled) == ([], 0, 0)
    assert harness.store.count_entries() == 4


async def test_items_sharing_one_link_but_not_their_guids_are_distinct(
    http_server: HttpServer, harness: Harness
) -> None:
    # e.g. a live blog or podcast whose items all point at the same section page
    same = "https://news.example/live/elections"
    url = await settled(harness, http_server, rss(items(1, 2, 3, link=same)))
    assert harness.store.count_entries() == 3
    http_server.route("/feed.xml", rss(items(0, 1, 2, 3, link=same)), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (len(result.new_entry_ids), result.updated) == (1, 0)
    assert harness.store.count_entries() == 4


async def test_items_sharing_one_guid_but_not_their_links_are_distinct(
    http_server: HttpServer, harness: Harness
) -> None:
    # a broken feed that gives every item the same GUID
    await settled(harness, http_server, rss(items(1, 2, 3, guid="urn:feed:same")))
    assert harness.store.count_entries() == 3


async def test_a_feed_that_moved_permanently_is_logged_once(
    http_server: HttpServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    home = http_server.route("/new-home.rss", rss(items(1)), headers=RSS_TYPE)
    old = http_server.redirect("/moved.xml", home, status=301)
    harness.add(old, name="Moved")
    with caplog.at_level(logging.WARNING, logger="watcher.feeds.poll"):
        for _ in range(3):
            assert (await harness.poll(old)).outcome in ("updated", "not-modified")
    said = [r.getMessage() for r in caplog.records if "moved permanently" in r.getMessage()]
    assert len(said) == 1 and home in said[0]
    caplog.clear()
    page = http_server.route("/", "<!DOCTYPE html><html><body>Home</body></html>")
    dead = http_server.redirect("/dead.xml", page, status=301)  # a dead feed sent home
    harness.add(dead, name="Dead")
    with caplog.at_level(logging.WARNING, logger="watcher.feeds.poll"):
        assert (await harness.poll(dead)).outcome == "failed"
    assert not [r for r in caplog.records if "moved permanently" in r.getMessage()]


async def test_items_dropped_and_readded_are_not_new(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2, 3)))
    http_server.route("/feed.xml", rss(items(1)), headers=RSS_TYPE)
    assert (await harness.poll(url)).new_entry_ids == []
    http_server.route("/feed.xml", rss(items(1, 2, 3)), headers=RSS_TYPE)
    assert (await harness.poll(url)).new_entry_ids == []


# --- first-poll backfill ----------------------------------------------------------------------


async def test_first_poll_keeps_only_the_newest_within_the_window(
    http_server: HttpServer, harness: Harness
) -> None:
    # Five items of the last day and five older ones, not in date order.
    hours = [30, 2, 50, 5, 1, 72, 20, 40, 9, 100]
    document = [Item(h, published=NOW - timedelta(hours=h)) for h in hours]
    url = http_server.route("/feed.xml", rss(document), headers=RSS_TYPE)
    harness.add(url)
    result = await harness.poll(url)
    assert (len(result.new_entry_ids), result.backfilled) == (3, 7)
    states = harness.entry_states()
    assert {t for t, s in states.items() if s == "pending"} == {"Story 1", "Story 2", "Story 5"}
    assert harness.store.count_entries("backfill") == 7
    assert harness.row(url).entries_total == 10


async def test_first_poll_with_few_recent_items_keeps_just_those(
    http_server: HttpServer, harness: Harness
) -> None:
    document = [Item(h, published=NOW - timedelta(hours=h)) for h in (3, 30, 60, 90)]
    url = http_server.route("/feed.xml", rss(document), headers=RSS_TYPE)
    harness.add(url)
    result = await harness.poll(url)
    assert (len(result.new_entry_ids), result.backfilled) == (1, 3)
    # Backfilled entries are known: they never come back as new.
    harness.clock.advance(900)
    assert (await harness.poll(url)).new_entry_ids == []
    assert harness.store.count_entries() == 4


async def test_a_failed_first_poll_still_backfills_on_the_first_success(
    http_server: HttpServer, harness: Harness
) -> None:
    url = http_server.route("/feed.xml", "oops", status=500)
    harness.add(url)
    assert (await harness.poll(url)).outcome == "failed"
    http_server.route("/feed.xml", rss(items(*range(1, 30))), headers=RSS_TYPE)
    result = await harness.poll(url)
    assert (len(result.new_entry_ids), result.backfilled) == (3, 26)


# --- failures, backoff and recovery -----------------------------------------------------------


async def test_a_feed_failing_the_same_way_again_is_warned_about_once(
    http_server: HttpServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    url = http_server.route("/gone.xml", "gone", status=404)
    harness.add(url)
    with caplog.at_level(logging.INFO, logger="watcher.feeds.poll"):
        for _ in range(3):
            assert (await harness.poll(url)).outcome == "failed"
        http_server.route("/gone.xml", "down", status=500)  # a new reason: warned again
        assert (await harness.poll(url)).outcome == "failed"
    levels = [r.levelno for r in caplog.records if "retry at" in r.getMessage()]
    assert levels == [logging.WARNING, logging.INFO, logging.INFO, logging.WARNING]


def test_a_rate_limit_asking_another_wait_is_the_same_failure() -> None:
    from watcher.feeds.poll import _same_failure

    first = "HTTP 503 Service Unavailable (retry after 10800 s)"
    assert _same_failure(first, "HTTP 503 Service Unavailable (retry after 10741.5 s)")
    assert not _same_failure(first, "HTTP 429 Too Many Requests (retry after 10800 s)")
    assert not _same_failure(None, first)


async def test_429_with_retry_after_seconds_is_honoured(
    http_server: HttpServer, harness: Harness
) -> None:
    url = http_server.retry_after("/feed.xml", "7200")
    harness.add(url)
    result = await harness.poll(url)
    assert result.outcome == "failed"
    assert result.next_poll_at >= NOW + timedelta(seconds=7200)
    row = harness.row(url)
    assert row.last_error == "HTTP 429 Too Many Requests (retry after 7200 s)"
    assert (row.failures, row.failing_since, row.last_error_at) == (1, NOW, NOW)
    assert row.next_poll_at == result.next_poll_at


async def test_503_with_retry_after_http_date_is_honoured(
    http_server: HttpServer, harness: Harness
) -> None:
    when = format_datetime(NOW + timedelta(hours=3), usegmt=True)
    url = http_server.retry_after("/feed.xml", when, status=503)
    harness.add(url)
    result = await harness.poll(url)
    assert result.next_poll_at >= NOW + timedelta(hours=3)
    assert result.reason == "HTTP 503 Service Unavailable (retry after 10800 s)"


async def test_repeated_500s_back_off_exponentially_up_to_the_cap_and_recovery_resets(
    http_server: HttpServer, harness: Harness
) -> None:
    url = http_server.route("/feed.xml", "boom", status=500)
    harness.add(url)
    delays = []
    for _ in range(9):
        result = await harness.poll(url)
        assert (result.outcome, result.reason) == ("failed", "HTTP 500 Internal Server Error")
        delays.append((result.next_poll_at - harness.clock.now()).total_seconds())
        # The feed is never dropped: it is due again when its retry time comes.
        due = harness.store.due_feeds(result.next_poll_at)
        assert [f.url for f in due] == [url]
        harness.clock.set(result.next_poll_at)
    for failures, delay in enumerate(delays, start=1):
        ceiling = min(POLLING.backoff_cap, POLLING.interval * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling, (failures, delays)
    assert delays[-1] > 4 * delays[0]
    assert max(delays) <= POLLING.backoff_cap
    row = harness.row(url)
    assert (row.failures, row.polls, row.failing_since) == (9, 9, NOW)
    assert row.last_success_at is None

    http_server.route("/feed.xml", rss(items(1, 2)), headers=RSS_TYPE)
    recovered_at = harness.clock.now()
    result = await harness.poll(url)
    assert result.outcome == "updated"
    row = harness.row(url)
    assert (row.failures, row.failing_since, row.last_success_at) == (0, None, recovered_at)
    interval = timedelta(seconds=POLLING.interval)
    assert recovered_at + interval <= row.next_poll_at <= recovered_at + interval * 1.1


@dataclass(frozen=True)
class BadCase:
    id: str
    setup: Callable[[HttpServer], str]  # returns the feed URL
    reason: str  # what last_error starts with
    http: dict[str, Any]


def _bad_cases() -> list[BadCase]:
    def case(id: str, setup: Callable[[HttpServer], str], reason: str, **http: Any) -> BadCase:
        return BadCase(id, setup, reason, http)

    return [
        case("redirect-loop", lambda s: s.redirect_loop("/feed.xml"), "redirect loop at http://"),
        case(
            "too-many-redirects",
            lambda s: s.redirect_chain("/feed.xml", 8),
            "too many redirects (more than 5)",
        ),
        case(
            "slow-drip",
            lambda s: s.drip("/feed.xml", size=50, every=0.2),
            "timed out after 1 s (total)",
            total_timeout=1.0,
        ),
        case(
            "stalled",
            lambda s: s.slow("/feed.xml", 5.0),
            "read timed out after 0.5 s",
            read_timeout=0.5,
        ),
        case(
            "oversized",
            lambda s: s.huge("/feed.xml", 1_000_000),
            "response larger than 200000 bytes",
        ),
        case(
            "oversized-unannounced",
            lambda s: s.huge("/feed.xml", 1_000_000, content_length=False),
            "response larger than 200000 bytes",
        ),
        case("gzip-bomb", lambda s: s.gzip_bomb("/feed.xml"), "response larger than 200000"),
        case(
            "html-page",
            lambda s: s.route(
                "/feed.xml",
                "<!DOCTYPE html><html><head><title>News</title></head><body>hi</body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "HTML page, not a feed",
        ),
        case("empty-body", lambda s: s.route("/feed.xml", b""), "empty body"),
        case(
            "not-xml",
            lambda s: s.route("/feed.xml", "just some words\n", headers=RSS_TYPE),
            "not a feed",
        ),
        case(
            "json-not-a-feed",
            lambda s: s.route(
                "/feed.json", '{"hello": "world"}', headers={"Content-Type": "application/json"}
            ),
            'not a feed: JSON without a "version"',
        ),
        case("dns", lambda s: "http://feeds.nonexistent.invalid/rss", "DNS lookup failed for host"),
        case("refused", lambda s: _closed_port_url(), "connection refused"),
        case("http-404", lambda s: s.route("/feed.xml", "gone", status=404), "HTTP 404 Not Found"),
        case(
            "private-address",
            lambda s: s.route("/feed.xml", rss(items(1))),
            "refused: 127.0.0.1 is a private address",
            allow_private_addresses=False,
        ),
        case("bad-url", lambda s: "ftp://news.example/feed.xml", "invalid URL"),
    ]


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c.id)
async def test_bad_input_is_a_recorded_reason_and_a_scheduled_retry(
    http_server: HttpServer, make_harness: Callable[..., Harness], case: BadCase
) -> None:
    h = make_harness(**case.http)
    try:
        url = case.setup(http_server)
        h.add(url)
        result = await h.poll(url)
    finally:
        await h.aclose()
    row = h.row(url)
    assert result.outcome == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith(case.reason), row.last_error
    assert result.reason == row.last_error
    assert (row.failures, row.failing_since, row.last_error_at, row.polls) == (1, NOW, NOW, 1)
    # The next try is scheduled, after a backoff of at least half the interval.
    assert row.next_poll_at is not None
    assert row.next_poll_at >= NOW + timedelta(seconds=POLLING.interval / 2)
    assert h.store.count_entries() == 0
    if case.id == "private-address":
        assert http_server.requests == []  # refused before any byte was sent


class BrokenPool(InlinePool):
    """A pool whose work fails with an unexpected exception, as a parser bug would."""

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        raise RecursionError("maximum recursion depth exceeded")


async def test_an_unexpected_error_is_recorded_and_the_feed_rescheduled(
    http_server: HttpServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    url = http_server.route("/feed.xml", rss(items(1)), headers=RSS_TYPE)
    harness.add(url)
    poller = Poller(harness.client, harness.db, POLLING, clock=harness.clock, cpu=BrokenPool())
    result = await poller.poll(harness.row(url))
    assert result.outcome == "failed"
    assert result.reason == "internal error: RecursionError: maximum recursion depth exceeded"
    row = harness.row(url)
    assert (row.failures, row.last_error) == (1, result.reason)
    # Not due again at the next tick: a broken feed must not be fetched every few seconds.
    assert row.next_poll_at is not None
    assert row.next_poll_at >= NOW + timedelta(seconds=POLLING.interval / 2)
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


async def test_malformed_xml_with_entries_is_stored_with_a_warning(
    http_server: HttpServer, harness: Harness
) -> None:
    broken = rss(items(1, 2)).replace("</channel></rss>", "<item><title>cut off &nbsp")
    url = http_server.route("/feed.xml", broken, headers=RSS_TYPE)
    harness.add(url)
    result = await harness.poll(url)
    assert result.outcome == "updated"
    row = harness.row(url)
    assert row.warning is not None and row.warning.startswith("not well-formed XML")
    assert (row.failures, row.last_error) == (0, None)
    assert {"Story 1", "Story 2"} <= set(harness.entry_states())
    # A later clean document clears the warning.
    http_server.route("/feed.xml", rss(items(1, 2)), headers=RSS_TYPE)
    await harness.poll(url)
    assert harness.row(url).warning is None


async def test_json_feed_is_polled_like_any_other(
    http_server: HttpServer, harness: Harness
) -> None:
    document = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": ['
        '{"id": "1", "url": "https://news.example/j/1", "title": "First",'
        f' "content_text": "x", "date_published": "{NOW.isoformat()}"}}]}}'
    )
    url = http_server.route(
        "/feed.json", document, headers={"Content-Type": "application/feed+json"}
    )
    harness.add(url)
    result = await harness.poll(url)
    assert len(result.new_entry_ids) == 1
    assert harness.row(url).title == "J"


async def test_a_working_feed_after_a_bad_one_is_unaffected(
    http_server: HttpServer, harness: Harness
) -> None:
    bad = http_server.gzip_bomb("/bomb.xml")
    good = http_server.route("/good.xml", rss(items(1)), headers=RSS_TYPE)
    harness.add(bad)
    harness.add(good)
    assert (await harness.poll(bad)).outcome == "failed"
    assert (await harness.poll(good)).outcome == "updated"


# --- health reports and the feeds table -----------------------------------------------------


def _pipeline(h: Harness, polling: PollingSettings) -> Pipeline:
    config = replace(Config(), polling=polling)
    return Pipeline(config, h.db, clock=h.clock, client=h.client, cpu=h.cpu, feeds=[])  # type: ignore[arg-type]


def _health_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "watcher.pipeline" and r.levelno == logging.WARNING
    ]


async def test_a_feed_failing_longer_than_the_threshold_is_reported_once(
    http_server: HttpServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    polling = replace(POLLING, failing_after=3 * 3600.0)
    pipeline = _pipeline(harness, polling)
    url = http_server.route("/feed.xml", "down", status=500)
    harness.add(url, name="Flaky News")
    await harness.poll(url)
    harness.clock.advance(2 * 3600)
    await harness.poll(url)
    await pipeline.check_feed_health()
    assert _health_records(caplog) == []  # failing, but not for long enough yet

    harness.clock.advance(2 * 3600)
    await harness.poll(url)
    await pipeline.check_feed_health()
    (message,) = _health_records(caplog)
    assert message == (
        f"feed Flaky News ({url}) is failing for 4 h: HTTP 500 Internal Server Error"
    )
    assert harness.row(url).reported == "failing for 4 h: HTTP 500 Internal Server Error"

    harness.clock.advance(6 * 3600)
    await pipeline.check_feed_health()
    assert len(_health_records(caplog)) == 1  # reported once, not every check

    http_server.route("/feed.xml", rss(items(1)), headers=RSS_TYPE)
    await harness.poll(url)
    await pipeline.check_feed_health()
    assert harness.row(url).reported is None  # recovery re-arms the report
    http_server.route("/feed.xml", "down again", status=500)
    for _ in range(3):
        await harness.poll(url)
        harness.clock.advance(2 * 3600)
    await pipeline.check_feed_health()
    assert len(_health_records(caplog)) == 2


async def test_a_feed_silent_far_beyond_its_cadence_is_reported(
    http_server: HttpServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = _pipeline(harness, POLLING)
    url = await settled(harness, http_server, rss(items(1)))
    for n in range(2, 7):  # a new item every hour
        harness.clock.advance(3600)
        document = [Item(k, published=harness.clock.now()) for k in range(n, 0, -1)]
        http_server.route("/feed.xml", rss(document), headers=RSS_TYPE)
        assert len((await harness.poll(url)).new_entry_ids) == 1
    harness.clock.advance(5 * 3600)
    await pipeline.check_feed_health()
    assert _health_records(caplog) == []
    harness.clock.advance(6 * 3600)  # 11 h without news, usually one an hour
    await pipeline.check_feed_health()
    (message,) = _health_records(caplog)
    assert "is silent for 11 h (usually a new item every 1 h)" in message
    # Still silent: the polls in between (304s, or the same items) must not re-arm it.
    for _ in range(3):
        harness.clock.advance(1800)
        assert (await harness.poll(url)).new_entry_ids == []
        await pipeline.check_feed_health()
    assert len(_health_records(caplog)) == 1
    # News again re-arms it.
    harness.clock.advance(1800)
    http_server.route("/feed.xml", rss([Item(99), *items(6, 5)]), headers=RSS_TYPE)
    assert len((await harness.poll(url)).new_entry_ids) == 1
    await pipeline.check_feed_health()
    assert harness.row(url).reported is None


async def test_feed_table_shows_status_and_the_failing_reason(
    http_server: HttpServer, harness: Harness
) -> None:
    ok = http_server.route("/ok.xml", rss(items(1, 2)), headers=RSS_TYPE)
    broken = rss(items(1)).replace("</channel></rss>", "<item><title>x")
    warned = http_server.route("/warned.xml", broken, headers=RSS_TYPE)
    down = http_server.retry_after("/down.xml", "120")
    for url, name in ((ok, "Good News"), (warned, "Sloppy Times"), (down, "Rate Limited Daily")):
        harness.add(url, name=name)
        await harness.poll(url)
    harness.add("http://127.0.0.1:9/never.xml", name="Brand New")
    harness.clock.advance(120)
    table = format_feed_table(harness.store.feeds(), harness.clock.now(), PollingSettings())
    lines = table.splitlines()
    assert lines[0].split() == [
        "FEED", "STATUS", "LAST", "OK", "FAILS", "LAST", "NEW", "NEXT", "POLL", "ENTRIES", "PROBLEM"
    ]  # fmt: skip
    by_name = {line.split("  ")[0].strip(): line for line in lines[1:]}
    assert set(by_name) == {"Good News", "Sloppy Times", "Rate Limited Daily", "Brand New"}
    # failing for 2 minutes: "erroring" (as on the web page) until failing_after has passed
    assert by_name["Rate Limited Daily"].split()[3:5] == ["erroring", "never"]
    assert by_name["Rate Limited Daily"].endswith("HTTP 429 Too Many Requests (retry after 120 s)")
    assert by_name["Good News"].split()[2:5] == ["ok", "2m", "ago"]
    assert by_name["Good News"][lines[0].index("ENTRIES") :].split() == ["2"]
    assert "not well-formed XML" in by_name["Sloppy Times"]
    assert by_name["Brand New"].split()[2:4] == ["new", "never"]
    # The PROBLEM column starts at the same place on every line.
    column = lines[0].index("PROBLEM")
    assert by_name["Rate Limited Daily"][column:].startswith("HTTP 429")


# --- batched writes and budgets ----------------------------------------------------------------


async def test_polls_finishing_together_are_stored_in_one_transaction(
    http_server: HttpServer, harness: Harness
) -> None:
    urls = [http_server.route(f"/f{i}.xml", rss(items(i)), headers=RSS_TYPE) for i in range(40)]
    rows = [harness.add(url) for url in urls]
    commits: list[int] = []
    sa.event.listen(harness.store._engine, "commit", lambda _conn: commits.append(1))
    # Hold the store thread so every poll's record is queued before the first write ends.
    release = threading.Event()
    blocker = asyncio.ensure_future(harness.db(release.wait, 60))
    polls = [asyncio.ensure_future(harness.poller.poll(row)) for row in rows]
    deadline = time.monotonic() + 60
    writer = harness.poller._writer  # no event tells: look until all are queued
    while writer.backlog < len(rows) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    release.set()
    await blocker
    results = await asyncio.gather(*polls)
    assert [r.outcome for r in results] == ["updated"] * 40
    assert sum(len(r.new_entry_ids) + r.backfilled for r in results) == 40
    assert len(commits) <= 2  # the first batch, then all the records queued behind it
    assert all(harness.row(url).polls == 1 for url in urls)


async def test_the_same_bytes_again_are_not_parsed_again(
    http_server: HttpServer, harness: Harness
) -> None:
    url = await settled(harness, http_server, rss(items(1, 2)))  # no validators: always a 200
    calls = harness.cpu.calls
    harness.clock.advance(900)
    again = await harness.poll(url)
    assert again.outcome == "not-modified"
    assert harness.cpu.calls == calls
    assert harness.row(url).polls == 2


def nested_feed(depth: int) -> bytes:
    return (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>deep</title><item><title>x"
        + b"<b>" * depth
        + b"</b>" * depth
        + b"</title></item></channel></rss>"
    )


class CountingCpuPool(CpuPool):
    calls = 0

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.calls += 1
        return await super().__call__(fn, *args, **kwargs)


async def test_a_feed_over_its_parse_budget_is_failed_and_not_parsed_again(
    http_server: HttpServer, make_harness: Callable[..., Harness]
) -> None:
    # 400,000 nested elements: seconds of parsing, far over a budget of half a second.
    url = http_server.route("/deep.xml", nested_feed(400_000), headers=RSS_TYPE)
    harness = make_harness(max_bytes=4_000_000)
    harness.add(url)
    pool = CountingCpuPool(1, name="feed", seconds=0.5)
    poller = Poller(harness.client, harness.db, POLLING, clock=harness.clock, cpu=pool)
    try:
        first = await poller.poll(harness.row(url))
        harness.clock.advance(3600)
        second = await poller.poll(harness.row(url))
    finally:
        pool.shutdown()
        await harness.aclose()
    assert (first.outcome, second.outcome) == ("failed", "failed")
    assert pool.calls == 1  # the same document was refused without a second try
    row = harness.row(url)
    assert (row.failures, row.last_error) == (2, second.reason)
