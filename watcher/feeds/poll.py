"""One poll of one feed: conditional fetch, parse off the loop, dedup, and record it all."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from watcher.clock import Clock
from watcher.config import PollingSettings
from watcher.errors import FetchError, ParseError, WatcherError
from watcher.feeds.dedup import Identity, Known, NewEntry, classify, identify, split_backfill
from watcher.feeds.parse import ParsedFeed, parse_feed
from watcher.feeds.schedule import (
    effective_interval,
    feed_hint,
    next_poll_after_failure,
    next_poll_after_success,
)
from watcher.http import HttpClient, Response, cache_max_age
from watcher.store.feeds import FeedRow, PollSuccess
from watcher.store.runner import StoreRunner

log = logging.getLogger(__name__)
T = TypeVar("T")

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.8, text/xml;q=0.8, application/json;q=0.7, */*;q=0.1"
)


def parse_and_identify(
    body: bytes, *, url: str, content_type: str | None
) -> tuple[ParsedFeed, tuple[Identity, ...]]:
    """``parse_feed`` and each entry's identity, in one call to the worker process: hashing
    and canonicalising URLs there leaves the event loop only the store lookups."""
    parsed = parse_feed(body, url=url, content_type=content_type)
    return parsed, identify(parsed.entries)


class Runner(Protocol):
    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]: ...


@dataclass(frozen=True)
class PollResult:
    feed_id: int
    url: str
    outcome: str  # "updated", "not-modified" or "failed"
    next_poll_at: datetime
    new_entry_ids: list[int] = field(default_factory=list)
    updated: int = 0
    backfilled: int = 0
    reason: str = ""


class Poller:
    def __init__(
        self,
        client: HttpClient,
        db: StoreRunner,
        settings: PollingSettings,
        *,
        clock: Clock,
        cpu: Runner,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._db = db
        self._settings = settings
        self._clock = clock
        self._cpu = cpu
        self._rng = rng or random.Random()

    async def poll(self, feed: FeedRow) -> PollResult:
        """Poll ``feed`` once. Every failure is recorded on the feed; none escapes."""
        now = self._clock.now()
        try:
            response = await self._client.get(
                feed.url, etag=feed.etag, last_modified=feed.last_modified, accept=FEED_ACCEPT
            )
            if response.status == 304:
                return await self._not_modified(feed, now, response)
            parsed, identities = await self._cpu(
                parse_and_identify,
                response.content,
                url=response.url,
                content_type=response.headers.get("content-type"),
            )
            return await self._store(feed, now, response, parsed, identities)
        except FetchError as exc:
            return await self._failed(feed, now, exc.reason, exc.retry_after)
        except ParseError as exc:
            return await self._failed(feed, now, str(exc), None)
        except WatcherError as exc:
            return await self._failed(feed, now, f"internal error: {exc}", None)
        except Exception as exc:
            # A bug (ours or a library's) on some input: still schedule the next poll, or the
            # feed stays due and its host gets a request every tick.
            log.exception("feed %s: unexpected error while polling", feed.name)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return await self._failed(feed, now, reason, None)

    async def _not_modified(self, feed: FeedRow, now: datetime, response: Response) -> PollResult:
        hint = feed_hint(None, None, cache_max_age(response.headers)) or feed.hint
        next_at = self._next_success(feed, now, hint)
        await self._db(self._db.store.record_not_modified, feed.id, now, next_at, hint)
        return PollResult(feed.id, feed.url, "not-modified", next_at)

    async def _store(
        self,
        feed: FeedRow,
        now: datetime,
        response: Response,
        parsed: ParsedFeed,
        identities: tuple[Identity, ...],
    ) -> PollResult:
        known: dict[str, Known] = {}
        if feed.entries_total:  # else nothing can be known: spare the store a query
            wanted = {key for identity in identities for key in identity.keys}
            known = await self._db(self._db.store.known_keys, feed.id, wanted)
        found = classify(parsed.entries, known, identities)
        new, backfill = list(found.new), list[NewEntry]()
        if feed.first_poll:
            s = self._settings
            new, backfill = split_backfill(
                new, now, items=s.backfill_items, window=s.backfill_window
            )
        hint = feed_hint(parsed.ttl, parsed.update_period, cache_max_age(response.headers))
        next_at = self._next_success(feed, now, hint)
        outcome = PollSuccess(
            now=now, next_poll_at=next_at, etag=response.etag,
            last_modified=response.last_modified, hint=hint, title=parsed.title,
            warning=parsed.warning, new=new, backfill=backfill, updated=found.updated,
            unchanged=found.unchanged,
        )  # fmt: skip
        ids = await self._db(self._db.store.record_poll_success, feed.id, outcome)
        if parsed.warning:
            log.info("feed %s: parsed despite a problem: %s", feed.name, parsed.warning)
        return PollResult(
            feed.id, feed.url, "updated", next_at, ids, len(found.updated), len(backfill)
        )

    async def _failed(
        self, feed: FeedRow, now: datetime, reason: str, retry_after: float | None
    ) -> PollResult:
        interval = effective_interval(feed.interval, self._settings, feed.hint)
        # Backoff runs from the failure, not from the poll's start: after a 60 s timeout a
        # retry "at" the start plus 30 s would already be past.
        failed_at = max(now, self._clock.now())
        next_at = next_poll_after_failure(
            failed_at,
            feed.failures + 1,
            interval,
            self._settings,
            rng=self._rng,
            retry_after=retry_after,
        )
        await self._db(self._db.store.record_poll_failure, feed.id, now, reason, next_at)
        log.warning(
            "feed %s: %s (retry at %s)", feed.name, reason, next_at.isoformat("T", "seconds")
        )
        return PollResult(feed.id, feed.url, "failed", next_at, reason=reason)

    def _next_success(self, feed: FeedRow, now: datetime, hint: float | None) -> datetime:
        interval = effective_interval(feed.interval, self._settings, hint)
        return next_poll_after_success(now, interval, self._settings, self._rng)
