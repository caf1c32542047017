"""Every feed file of the shared corpus served on loopback and polled through the real Poller:
none crashes, each ends with entries or a recorded reason, and the counts stay as recorded."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import HttpServer, RecordedRequest, Reply

from watcher.clock import FakeClock
from watcher.config import FeedConfig, HttpSettings, PollingSettings
from watcher.feeds.poll import Poller
from watcher.http import HttpClient
from watcher.store import Store, open_store
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.workers import InlinePool

# WATCHER_CORPUS: where the corpus is when the checkout is not beside it (a git worktree).
CORPUS = Path(
    os.environ.get("WATCHER_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
FEEDS = CORPUS / "feeds"

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml",
    ".txt": "text/plain",
}

# What last_error starts with -> its category; the first match wins.
REASONS = (
    ("HTML page, not a feed", "html-page"),
    ("empty body", "empty-body"),
    ("not a feed: not well-formed XML", "malformed-xml"),
    ("not a feed: invalid JSON", "invalid-json"),
    ('not a feed: JSON without a "version"', "json-not-a-feed"),
    ("not a feed: gzip data", "gzip-without-header"),
    ("not a feed: its DOCTYPE declares", "entity-expansion"),
    ("not a feed: no RSS, Atom, RDF or JSON Feed", "no-feed-found"),
    ("not a feed: document declared as", "wrong-encoding"),
)

# Recorded with feedparser 6.0.14 (per top-level folder; "warned" counts successes that also
# recorded a parser warning). A change here is a change in what users get: update deliberately.
EXPECTED_OUTCOMES = {
    "malformed": {
        "entries": 62, "empty": 13, "warned": 30, "malformed-xml": 8, "json-not-a-feed": 3,
        "invalid-json": 3, "gzip-without-header": 2, "empty-body": 1, "html-page": 1,
        "no-feed-found": 1,
    },
    "parser_conformance": {
        "entries": 1757, "empty": 1191, "warned": 280, "json-not-a-feed": 583,
        "no-feed-found": 15, "html-page": 9, "malformed-xml": 4, "empty-body": 1,
        "wrong-encoding": 1,
    },
    "real_news_feeds": {
        "entries": 220, "empty": 1, "warned": 8, "json-not-a-feed": 56, "html-page": 13,
        "malformed-xml": 7, "no-feed-found": 4, "invalid-json": 1, "gzip-without-header": 1,
    },
}  # fmt: skip
# Entries stored, and those left pending by the first-poll backfill (3 newest within a day).
# 9065 and 1731 until items sharing one id but not their links were told apart: 29
# parser-conformance files (ROME, newsboat, feedparser) copy one id into several items.
EXPECTED_ENTRIES = {"stored": 9099, "pending": 1738}


def _corpus_files() -> list[Path]:
    if not FEEDS.is_dir():
        pytest.skip(f"{FEEDS} is not present")
    return sorted(p for p in FEEDS.rglob("*") if p.is_file())


def _serve(server: HttpServer, files: list[Path]) -> dict[str, Path]:
    """One route per file, read when requested; returns {url: file}."""
    urls = {}
    for number, path in enumerate(files):
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        headers = {"Content-Type": content_type}

        def handler(
            _: RecordedRequest, path: Path = path, headers: dict[str, str] = headers
        ) -> Reply:
            return Reply(200, headers, path.read_bytes())

        urls[server.route_handler(f"/{number}{path.suffix}", handler)] = path
    return urls


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/corpus.db")
    yield opened
    opened.close()


def _category(row: FeedRow) -> str:
    if row.last_error is None:
        return "entries" if row.entries_total else "empty"
    for prefix, category in REASONS:
        if row.last_error.startswith(prefix):
            return category
    return f"other: {row.last_error[:60]}"


async def test_every_corpus_feed_is_polled_to_entries_or_a_recorded_reason(
    http_server: HttpServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)  # each failed feed logs a warning; only errors matter here
    files = _corpus_files()
    urls = _serve(http_server, files)
    clock = FakeClock()
    store.sync_feeds([FeedConfig(url=url) for url in urls], clock.now())
    db = StoreRunner(store)
    settings = HttpSettings(allow_private_addresses=True, max_per_host=20, total_timeout=30.0)
    try:
        async with HttpClient(settings, clock=clock) as client:
            poller = Poller(
                client, db, PollingSettings(), clock=clock, cpu=InlinePool(), rng=random.Random(3)
            )
            # gather without return_exceptions: one exception escaping a poll fails the test.
            results = await asyncio.gather(*(poller.poll(row) for row in store.feeds()))
    finally:
        db.shutdown()

    assert len(results) == len(files)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for row in store.feeds():
        assert row.polls == 1, row.url
        # Either it succeeded, or it failed with a reason and its next poll is scheduled.
        assert (row.last_success_at is None) == (row.last_error is not None), row.url
        assert row.next_poll_at is not None and row.next_poll_at > clock.now()
        assert not (row.last_error or "").startswith("internal error"), row.last_error
        folder = urls[row.url].relative_to(FEEDS).parts[0]
        outcomes[folder][_category(row)] += 1
        outcomes[folder]["warned"] += row.warning is not None
    counts = {folder: dict(+counter) for folder, counter in sorted(outcomes.items())}
    entries = {"stored": store.count_entries(), "pending": store.count_entries("pending")}
    print(f"\noutcomes: {counts}\nentries: {entries}")
    assert counts == EXPECTED_OUTCOMES
    assert entries == EXPECTED_ENTRIES
    assert http_server.hits("/0" + files[0].suffix) == 1
