"""The feed-parsing job run in worker processes; imports only parsing (no store, no HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.feeds.dedup import Identity, identify

if TYPE_CHECKING:
    from watcher.feeds.parsed import ParsedFeed

# The budget of one parse in the feed pool: the largest real feed parses in well under a
# second; over this the job is abandoned and its worker replaced (see watcher.workers).
PARSE_SECONDS = 10.0
PARSE_MEMORY_MB = 512  # on top of a worker's size after start-up

# A tiny feed parsed once at worker start-up: feedparser and lxml import lazily and build
# their tables on first use, which would otherwise be charged to the first real poll.
_WARM_FEED = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>w</title><item><title>t</title>"
    b"<link>http://127.0.0.1/a</link><description>&lt;p&gt;x&lt;/p&gt;</description>"
    b"<pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item></channel></rss>"
)


def preload() -> None:
    """Worker initializer: import and warm the parsers before the first poll."""
    parse_and_identify(_WARM_FEED, url="http://127.0.0.1/", content_type=None)


def parse_and_identify(
    body: bytes, *, url: str, content_type: str | None
) -> tuple[ParsedFeed, tuple[Identity, ...]]:
    """``parse_feed`` and each entry's identity, in one call to the worker process: hashing
    and canonicalising URLs there leaves the event loop only the store lookups."""
    # Imported here: the daemon process names this job but never runs it, so it need not
    # load the parsers (lxml); workers import them once, in ``preload``.
    from watcher.feeds.parse import parse_feed  # noqa: PLC0415

    parsed = parse_feed(body, url=url, content_type=content_type)
    return parsed, identify(parsed.entries)
