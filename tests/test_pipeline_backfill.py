"""A fresh story while hundreds of new feeds are backfilled: the real daemon, loopback feeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from botapi import BotApiServer
from daemonproc import DaemonProcess, wait_for
from feedstream import FeedStream
from hostile import queue_config
from httpserver import HttpServer, RecordedRequest, Reply
from sqlalchemy.engine import Engine

from watcher.config import load_config
from watcher.daemon import Daemon, RunOptions

pytestmark = [pytest.mark.slow]

NEW_FEEDS = 100
BACKFILL_ITEMS = 10  # kept per new feed by its first poll ([polling] backfill_items)
BACKFILL = NEW_FEEDS * BACKFILL_ITEMS


def _farm(pages: HttpServer) -> Callable[[RecordedRequest], Reply]:
    """New feed ``n``: twenty recent items, their pages on ``pages`` (matching no rule);
    a conditional request gets 304, as from real feeds."""
    published = datetime.now(UTC)

    def feed(request: RecordedRequest) -> Reply:
        n = int(parse_qs(urlsplit(request.path).query)["n"][0])
        if request.header("If-None-Match") == f'"{n}"':
            return Reply(304, {"ETag": f'"{n}"'}, b"")
        headers = {"Content-Type": "application/rss+xml", "ETag": f'"{n}"'}
        return Reply(200, headers, _farm_feed(n, published, pages.url("/p")).encode())

    return feed


def _farm_feed(n: int, now: datetime, pages: str) -> str:
    items = "".join(
        f"<item><title>Harbour notice {n}-{i}</title><link>{pages}?n={n}&amp;i={i}</link>"
        f"<guid isPermaLink='false'>farm-{n}-{i}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=i))}</pubDate>"
        f"<description>Notice {i} of the harbour office.</description></item>"
        for i in range(20)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Farm {n}</title>{items}'
    return body + "</channel></rss>"


def _farm_page(request: RecordedRequest) -> Reply:
    text = "The harbour office said the ferry timetable stays as it is this week. " * 8
    title = escape(request.path)
    html = f"<html><body><article><h1>{title}</h1><p>{text}</p></article></body></html>"
    return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


def test_a_fresh_story_goes_ahead_of_a_large_backfill(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    """The new feeds' first items are queued when a known feed publishes a matching story:
    it alerts while most of the backfill still waits, and the backfill is then done too,
    each page fetched once."""
    # The new feeds and their pages on two hosts (ports), as a backfill spans many sites: on
    # one host, the pages would wait for the feeds' polls within its connection limit.
    with HttpServer() as news, HttpServer() as farm, HttpServer() as pages:
        stream = FeedStream(news, seed=13, total=1)
        stream.auto = False
        farm.route_handler("/f", _farm(pages))
        pages.route_handler("/p", _farm_page)
        feeds = {"Known": stream.feed_url}
        feeds |= {f"New {n}": farm.url(f"/f?n={n}") for n in range(NEW_FEEDS)}
        config = queue_config(tmp_path, bot_api, feeds)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("[polling]\n", f"[polling]\nbackfill_items = {BACKFILL_ITEMS}\n"),
            encoding="utf-8",
        )
        data = tmp_path / "data"
        with DaemonProcess.start(
            config, token=bot_api.token, log=tmp_path / "log", data_dir=data
        ) as daemon:
            daemon.wait_running(timeout=60)
            # The known feed was polled (empty) before: its next item is news, not backfill.
            wait_for(lambda: news.hits("/feed.xml") >= 2, 120, "the known feed's polls", daemon)
            wait_for(lambda: pages.hits("/p") >= 20, 120, "the backfill under way", daemon)
            story = stream.publish()
            wait_for(
                lambda: stream.numbers_in(r.text for r in bot_api.sent()) == [story.number],
                120,
                "the fresh story's alert",
                daemon,
            )
            served = pages.hits("/p")
            # A first-in first-out article stage would have fetched nearly all of it first.
            assert served < BACKFILL // 2, f"{served} backfill pages fetched before the story"
            wait_for(lambda: pages.hits("/p") >= BACKFILL, 300, "the whole backfill", daemon)
            assert daemon.stop(timeout=60) == 0
        fetched = [r.path for r in pages.requests_to("/p")]
        assert len(fetched) == len(set(fetched)) == BACKFILL


async def test_each_polls_new_entries_are_read_by_id_not_with_the_backlog(
    tmp_path: Path, bot_api: BotApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The article stage reads a poll's new entries by id. Reading the whole backlog for each
    poll (the query that ranks entries per feed) kept the one store thread busy for tens of
    seconds during a 1,000-feed backfill, and every store call (a fresh story's too) queued
    behind those reads."""
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    feeds_count, items = 200, 3
    backlog_reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "row_number" in statement.lower():
            backlog_reads.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", note)
    try:
        with HttpServer() as farm, HttpServer() as pages:
            farm.route_handler("/f", _farm(pages))
            pages.route_handler("/p", _farm_page)
            feeds = {f"New {n}": farm.url(f"/f?n={n}") for n in range(feeds_count)}
            path = queue_config(tmp_path, bot_api, feeds)
            daemon = Daemon(load_config(path, env={}))
            run = asyncio.create_task(daemon.run(RunOptions(tick=0.5)))
            deadline = time.monotonic() + 300
            while pages.hits("/p") < feeds_count * items and time.monotonic() < deadline:
                assert not run.done(), "the daemon stopped"
                await asyncio.sleep(0.1)
            daemon.stop()
            await asyncio.wait_for(run, 60)
            assert pages.hits("/p") == feeds_count * items  # the whole backfill, once
    finally:
        sa.event.remove(Engine, "before_cursor_execute", note)
    # The periodic round and the refills read the backlog; the 200 polls did not.
    assert len(backlog_reads) < feeds_count // 4


def test_a_known_feed_is_polled_while_new_feeds_wait_for_a_slow_host(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    """New feeds' first polls take at most half the poller's slots: a known feed's next
    poll does not wait behind two hundred new feeds queued for one slow host."""
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title></channel></rss>'
    with HttpServer() as news, HttpServer() as slow:

        def slow_feed(_request: RecordedRequest) -> Reply:
            slow.sleep(1.0)  # two at a time ([http] max_per_host): two feeds a second
            return Reply(200, {"Content-Type": "application/rss+xml"}, empty)

        stream = FeedStream(news, seed=17, total=0)
        slow.route_handler("/f", slow_feed)
        feeds = {"Known": stream.feed_url}
        feeds |= {f"New {n}": slow.url(f"/f?n={n}") for n in range(200)}
        config = queue_config(tmp_path, bot_api, feeds)
        data = tmp_path / "data"
        with DaemonProcess.start(
            config, token=bot_api.token, log=tmp_path / "log", data_dir=data
        ) as daemon:
            daemon.wait_running(timeout=60)
            wait_for(lambda: news.hits("/feed.xml") >= 4, 120, "the known feed's polls", daemon)
            # First in, first out, its second poll would have waited for ~140 new feeds.
            assert slow.hits("/f") < 60, f"{slow.hits('/f')} new feeds polled first"
            assert daemon.stop(timeout=60) == 0
