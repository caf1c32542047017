"""The polling stage: which feeds to poll and when, the polls in flight, feed health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from watcher.clock import Clock
from watcher.config import Config
from watcher.errors import StoreError
from watcher.feeds.poll import POLLS_IN_FLIGHT, Poller, PollResult
from watcher.feeds.schedule import FeedHealth, health_problem
from watcher.metrics import Metrics
from watcher.pipeline.reports import Report, StoreTrouble, log
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.workers import urgent

# On a store shared by replicas, a replica holds at most this many polls in flight per HTTP
# connection: it claims no more feeds than it can poll within a lease.
SHARED_POLLS_PER_CONNECTION = 10

# New feeds' first polls (their backfill) in flight at once: the others start as those end.
# Half the poller's in-flight slots, so a known feed's poll (news) never waits behind a
# thousand new feeds, even when they all wait for one slow host.
FIRST_POLLS_IN_FLIGHT = max(1, POLLS_IN_FLIGHT // 2)

# Failure reasons (watcher/http.py) that mean the host was never reached.
_UNREACHED = ("DNS lookup failed", "connect timed out", "connection refused", "network error")

# Told of a poll's new entries, and whether they are news (not a new feed's backfill).
Arrived = Callable[[list[int], bool], Awaitable[None]]


class PollingStage:
    def __init__(
        self,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        poller: Poller,
        feeds: list[FeedRow],
        metrics: Metrics | None,
        trouble: StoreTrouble,
        report: Report,
        arrived: Arrived,
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._poller = poller
        self._feeds = feeds
        self._metrics = metrics
        self._trouble = trouble
        self._report = report
        self._arrived = arrived
        self._polls: dict[int, asyncio.Task[PollResult | None]] = {}
        # Feeds whose last poll could not be recorded, and when to poll them again: the store
        # still says they are due, and they must not be fetched again at every tick.
        self._held: dict[int, datetime] = {}
        # Feed id -> whether its last poll reached the host; all unreached is said once.
        self._reached: dict[int, bool] = {}
        self._said_offline = False
        # New feeds due for their first poll, waiting for a slot (in the store's due order).
        self._first_due: dict[int, FeedRow] = {}
        self._first_polls = 0
        self._stopping = False

    def tasks(self) -> list[asyncio.Task[PollResult | None]]:
        """The polls in flight."""
        return list(self._polls.values())

    def stop_polling(self) -> None:
        """At a stop: start no more polls (those in flight may finish)."""
        self._stopping = True
        self._first_due.clear()

    async def tick(self) -> None:
        """Start a poll for every feed that is due and not already being polled."""
        if self._db.store.shared:
            await self._claim_and_poll()
            return
        now = self._clock.now()
        due = await self._db(self._db.store.due_feeds, now)
        if self._stopping:
            return
        ready = [f for f in due if f.id not in self._polls and self._held.get(f.id, now) <= now]
        for feed in ready:
            if not feed.first_poll:
                self._spawn_poll(feed)
        self._first_due = {f.id: f for f in ready if f.first_poll}
        self._start_first_polls()

    def _start_first_polls(self) -> None:
        while self._first_due and self._first_polls < FIRST_POLLS_IN_FLIGHT and not self._stopping:
            feed = self._first_due.pop(next(iter(self._first_due)))
            if feed.id not in self._polls:
                self._first_polls += 1
                self._spawn_poll(feed, first=True)

    async def _claim_and_poll(self) -> None:
        """Replicas: claim due feeds up to the in-flight cap, and again as polls finish,
        until fewer come back than asked (the rest are not due, or other replicas have them)."""
        cap = SHARED_POLLS_PER_CONNECTION * self._config.http.max_connections
        while (room := cap - len(self._polls)) > 0:
            now = self._clock.now()
            claimed = await self._db(self._db.store.due_feeds, now, room)
            for feed in claimed:
                if feed.id not in self._polls and self._held.get(feed.id, now) <= now:
                    self._spawn_poll(feed)
            if len(claimed) < room or not self._polls:
                return
            await asyncio.wait(list(self._polls.values()), return_when=asyncio.FIRST_COMPLETED)

    async def poll_all(self) -> list[PollResult]:
        """`watcher run --once`: poll every enabled feed and wait for the polls."""
        for feed in await self._db(self._db.store.feeds):
            if feed.enabled and feed.id not in self._polls:
                self._spawn_poll(feed)
        return [r for r in await asyncio.gather(*self._polls.values()) if r is not None]

    def _spawn_poll(self, feed: FeedRow, *, first: bool = False) -> None:
        task = asyncio.create_task(self._poll(feed), name=f"poll {feed.name}")
        self._polls[feed.id] = task
        task.add_done_callback(lambda _t: self._poll_ended(feed.id, first))

    def _poll_ended(self, feed_id: int, first: bool) -> None:
        self._polls.pop(feed_id, None)
        if first:
            self._first_polls -= 1
            self._start_first_polls()  # the next new feed's first poll

    async def _poll(self, feed: FeedRow) -> PollResult | None:
        if not feed.first_poll:
            urgent()  # news: parsed ahead of the new feeds' first polls (their backfill)
        try:
            result = await self._poller.poll(feed)
        except Exception as exc:
            self._poll_failed(feed, exc)
            return None
        self._held.pop(feed.id, None)
        if self._metrics is not None:
            self._metrics.polled(feed.name, result.outcome)
        self._note_reach(feed.id, result)
        if feed.failures and result.outcome != "failed":  # its failures were logged: so is this
            times = "once" if feed.failures == 1 else f"{feed.failures} times in a row"
            log.info("feed %s: reachable again (it had failed %s)", feed.name, times)
        if result.new_entry_ids:
            count = len(result.new_entry_ids)
            log.info("feed %s: %d new entr%s", feed.name, count, "y" if count == 1 else "ies")
            # A new feed's first items are backfill, not news.
            try:
                await self._arrived(list(result.new_entry_ids), not feed.first_poll)
            except StoreError as exc:  # they stay pending: the article stage reads them later
                self._trouble.failed("pending entries not read", exc)
        return result

    def _poll_failed(self, feed: FeedRow, exc: Exception) -> None:
        # A bug or a failing store (disk full) must not stop this feed forever, nor
        # have it fetched at every tick: try again next interval.
        if isinstance(exc, StoreError):
            self._trouble.failed("feed poll not recorded, retrying next interval", exc)
        else:
            log.exception("feed %s: unexpected error while polling", feed.name, exc_info=exc)
        interval = feed.interval or self._config.polling.interval
        self._held[feed.id] = self._clock.now() + timedelta(seconds=interval)
        if self._metrics is not None:
            self._metrics.polled(feed.name, "failed")

    def _note_reach(self, feed_id: int, result: PollResult) -> None:
        """Say once when no enabled feed's host could be reached: the network is down."""
        self._reached[feed_id] = not (
            result.outcome == "failed" and result.reason.startswith(_UNREACHED)
        )
        enabled = {f.id for f in self._feeds if f.enabled}
        if not enabled or not enabled <= self._reached.keys():
            return  # not every feed polled yet
        reachable = sum(self._reached[i] for i in enabled)
        if reachable == 0 and not self._said_offline:
            self._said_offline = True
            log.error(
                "0 of %d feeds reachable: is the network up? (last error: %s)",
                len(enabled),
                result.reason,
            )
        elif reachable and self._said_offline:
            self._said_offline = False
            log.info("%d of %d feeds reachable again", reachable, len(enabled))

    async def check_feed_health(self) -> None:
        """Report feeds failing longer than the threshold or silent far beyond their cadence."""
        now = self._clock.now()
        for feed in await self._db(self._db.store.feeds):
            cadence = await self._db(self._db.store.feed_cadence, feed.id)
            health = FeedHealth(
                feed.failing_since, feed.last_error, feed.last_new_item_at, cadence, feed.added_at
            )
            problem = health_problem(health, now, self._config.polling)
            if problem and problem.split(" ")[0] != (feed.reported or "").split(" ")[0]:
                log.warning("feed %s (%s) is %s", feed.name, feed.url, problem)
                await self._db(self._db.store.mark_reported, feed.id, problem)
                await self._report(f"Feed {feed.name} ({feed.url}) is {problem}")
            elif not problem and feed.reported:
                # Cleared here, not by polls: a silent feed's polls succeed and find nothing.
                await self._db(self._db.store.mark_reported, feed.id, None)
