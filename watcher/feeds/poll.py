"""One poll of one feed: conditional fetch, parse off the loop, dedup, and record it all."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from watcher.clock import Clock
from watcher.config import PollingSettings
from watcher.errors import BudgetError, FetchError, ParseError, WatcherError
from watcher.feeds.cpu import parse_and_identify
from watcher.feeds.dedup import Identity, classify, split_backfill
from watcher.feeds.schedule import (
    effective_interval,
    feed_hint,
    next_poll_after_failure,
    next_poll_after_success,
)
from watcher.http import HttpClient, Response, cache_max_age
from watcher.store.feeds import FeedRow, PollFailure, PollNotModified, PollRecord, PollSuccess
from watcher.store.runner import StoreRunner
from watcher.types import Known, NewEntry

if TYPE_CHECKING:
    from watcher.feeds.parsed import ParsedFeed

log = logging.getLogger(__name__)
T = TypeVar("T")

# Polls between the start of their fetch and the end of their store write: responses arrive
# faster than one worker parses them and parsed feeds faster than the store writes them, and
# each waiting body (18 KB for a typical feed, up to the size cap) or parsed feed (about 100 KB
# of objects for 20 entries) is held in memory; unbounded, a 1,000-feed cycle held hundreds.
POLLS_IN_FLIGHT = 64

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.8, text/xml;q=0.8, application/json;q=0.7, */*;q=0.1"
)

__all__ = ["PollResult", "Poller", "parse_and_identify"]


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


# A rate limit's reason ends with the wait it asked for, which differs on every poll.
_RETRY_AFTER = re.compile(r"\s*\(retry after [^)]*\)$")


def _same_failure(last: str | None, reason: str) -> bool:
    return last is not None and _RETRY_AFTER.sub("", last) == _RETRY_AFTER.sub("", reason)


def _digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()[:16]  # SHA-256 has CPU instructions: the fastest


class PollWriter:
    """Group commit for poll records: the records of every poll that finishes while one
    batch is being written go to the store together, in one transaction, next. A quiet
    cycle of a thousand 304s is then a few commits, not a thousand."""

    def __init__(self, db: StoreRunner) -> None:
        self._db = db
        self._queue: list[tuple[int, PollRecord, asyncio.Future[list[int]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._writing = 0

    @property
    def backlog(self) -> int:
        """Records queued or being written."""
        return len(self._queue) + self._writing

    async def write(self, feed_id: int, record: PollRecord) -> list[int]:
        """Queue ``record``; returns the new pending entry ids once it is committed."""
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append((feed_id, record, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="poll writer")
        return await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            self._writing = len(batch)
            try:
                ids = await self._db(self._db.store.record_polls, [(f, r) for f, r, _ in batch])
            except Exception as exc:  # StoreError (disk full) or a bug: every poll learns it
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            finally:
                self._writing = 0
            for (*_, done), new in zip(batch, ids, strict=True):
                if not done.done():
                    done.set_result(new)


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
        self._writer = PollWriter(db)
        self._in_flight = asyncio.Semaphore(POLLS_IN_FLIGHT)
        # Per feed, the digest of the last document stored (the same bytes again, from a
        # server that ignores conditional requests, are "not modified": parsing them would
        # find nothing new), and of a document whose parsing ran over its budget with the
        # reason (the same bytes are not parsed again). One entry per feed, never a history.
        self._stored: dict[int, bytes] = {}
        self._over_budget: dict[int, tuple[bytes, str]] = {}
        self._moved_said: set[int] = set()  # feeds whose permanent redirect was logged

    async def poll(self, feed: FeedRow) -> PollResult:
        """Poll ``feed`` once. Every failure is recorded on the feed; none escapes."""
        now = self._clock.now()
        try:
            async with self._in_flight:
                return await self._poll(feed, now)
        except FetchError as exc:
            return await self._failed(feed, now, exc.reason, exc.retry_after)
        except (BudgetError, ParseError) as exc:  # over budget: see _parse
            return await self._failed(feed, now, str(exc), None)
        except WatcherError as exc:
            return await self._failed(feed, now, f"internal error: {exc}", None)
        except Exception as exc:
            # A bug (ours or a library's) on some input: still schedule the next poll, or the
            # feed stays due and its host gets a request every tick.
            log.exception("feed %s: unexpected error while polling", feed.name)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return await self._failed(feed, now, reason, None)

    async def _poll(self, feed: FeedRow, now: datetime) -> PollResult:
        response = await self._client.get(
            feed.url, etag=feed.etag, last_modified=feed.last_modified, accept=FEED_ACCEPT
        )
        digest = _digest(response.content) if response.status != 304 else b""
        if response.status == 304 or self._stored.get(feed.id) == digest:
            self._say_moved(feed, response)
            return await self._not_modified(feed, now, response)
        parsed, identities = await self._parse(feed, response, digest)
        self._say_moved(feed, response)  # a feed there, not a home page a dead feed points to
        # The body is parsed: let it go while the poll waits for the store.
        response = replace(response, content=b"")
        result = await self._store(feed, now, response, parsed, identities)
        self._stored[feed.id] = digest
        return result

    def _say_moved(self, feed: FeedRow, response: Response) -> None:
        """Once per run, that the feed answered from the end of permanent redirects."""
        if response.moved and feed.id not in self._moved_said:
            self._moved_said.add(feed.id)  # the config is the user's to change
            log.warning(
                "feed %s moved permanently to %s: put that url in the config (with the "
                "feed's name kept, its history stays)", feed.name, response.url,
            )  # fmt: skip

    async def _parse(
        self, feed: FeedRow, response: Response, digest: bytes
    ) -> tuple[ParsedFeed, tuple[Identity, ...]]:
        failed = self._over_budget.get(feed.id)
        if failed is not None and failed[0] == digest:
            raise BudgetError(f"{failed[1]} (the same document again: not parsed)")
        try:
            found = await self._cpu(
                parse_and_identify,
                response.content,
                url=response.url,
                content_type=response.headers.get("content-type"),
            )
        except BudgetError as exc:
            reason = f"parsing abandoned: {exc}"
            self._over_budget[feed.id] = (digest, reason)
            raise BudgetError(reason) from None
        self._over_budget.pop(feed.id, None)
        return found

    async def _not_modified(self, feed: FeedRow, now: datetime, response: Response) -> PollResult:
        hint = feed_hint(None, None, cache_max_age(response.headers)) or feed.hint
        next_at = self._next_success(feed, now, hint)
        await self._writer.write(feed.id, PollNotModified(now, next_at, hint))
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
        ids = await self._writer.write(feed.id, outcome)
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
        await self._writer.write(feed.id, PollFailure(now, reason, next_at))
        # The first failure, or a new reason, is a warning; the same one again is noted only
        # (`watcher feeds`, the web page and the admins' reports keep the count).
        again = feed.failures > 0 and _same_failure(feed.last_error, reason)
        log.log(
            logging.INFO if again else logging.WARNING,
            "feed %s: %s (retry at %s)", feed.name, reason, next_at.isoformat("T", "seconds"),
        )  # fmt: skip
        return PollResult(feed.id, feed.url, "failed", next_at, reason=reason)

    def _next_success(self, feed: FeedRow, now: datetime, hint: float | None) -> datetime:
        interval = effective_interval(feed.interval, self._settings, hint)
        return next_poll_after_success(now, interval, self._settings, self._rng)
