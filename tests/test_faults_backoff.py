"""Fault suite: a poll that fails slowly is retried after its backoff, counted from the failure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import HttpServer, RecordedRequest, Reply

from watcher.clock import FakeClock
from watcher.config import FeedConfig, HttpSettings, PollingSettings
from watcher.feeds.poll import Poller
from watcher.http import HttpClient
from watcher.store import open_store
from watcher.store.runner import StoreRunner
from watcher.workers import InlinePool

pytestmark = pytest.mark.fault

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_retry_time_is_after_a_slow_failure_not_after_its_start(
    tmp_path: Path, http_server: HttpServer
) -> None:
    clock = FakeClock(NOW)

    def slow_failure(_: RecordedRequest) -> Reply:
        clock.advance(3600)  # the request "took" an hour (the fake clock stands in for it)
        return Reply(500, {}, b"boom")

    url = http_server.route_handler("/feed.xml", slow_failure)
    store = open_store(f"sqlite:///{tmp_path}/w.db")
    db = StoreRunner(store)
    settings = PollingSettings(interval=60.0, jitter=0.0, backoff_cap=600.0)
    http = HttpSettings(allow_private_addresses=True, total_timeout=30.0)
    try:
        async with HttpClient(http, clock=clock) as client:
            poller = Poller(
                client, db, settings, clock=clock, cpu=InlinePool(), rng=random.Random(1)
            )
            feed = store.add_feed(FeedConfig(url=url), NOW)
            result = await poller.poll(feed)
    finally:
        db.shutdown()
        store.close()
    assert result.outcome == "failed"
    # Backoff of at least half the interval, from the failure an hour after the start.
    assert result.next_poll_at >= NOW + timedelta(seconds=3600 + 30)
    assert result.next_poll_at > clock.now()
