"""The running pipeline: feeds -> articles -> rules -> stories -> alerts, wired together."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from watcher import __version__
from watcher.clock import Clock
from watcher.config import Config
from watcher.feeds.poll import Poller, PollResult
from watcher.feeds.schedule import FeedHealth, health_problem
from watcher.http import HttpClient
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.workers import CpuPool

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 600.0


@dataclass(frozen=True)
class Job:
    """A periodic job the daemon schedules (APScheduler trigger name and its arguments)."""

    name: str
    fn: Callable[[], Awaitable[None]]
    trigger: str = "interval"
    kwargs: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        client: HttpClient,
        cpu: CpuPool,
        feeds: list[FeedRow],
    ) -> None:
        self.config = config
        self._db = db
        self._clock = clock
        self._client = client
        self._cpu = cpu
        self._feeds = feeds
        self._poller = Poller(client, db, config.polling, clock=clock, cpu=cpu, rng=random.Random())
        self._tasks: dict[int, asyncio.Task[PollResult | None]] = {}

    @classmethod
    async def start(cls, config: Config, db: StoreRunner, *, clock: Clock) -> Pipeline:
        feeds = await db(db.store.sync_feeds, config.feeds, clock.now())
        client = HttpClient(config.http, clock=clock)
        cpu = CpuPool(config.articles.workers)
        return cls(config, db, clock=clock, client=client, cpu=cpu, feeds=feeds)

    def summary(self) -> str:
        enabled = sum(f.enabled for f in self._feeds)
        return (
            f"watcher {__version__}: {len(self._feeds)} feeds ({enabled} enabled); "
            f"channels: {', '.join(self.channel_names())}; "
            f"{self._cpu.workers} worker processes; data in {self.config.data_dir}"
        )

    def channel_names(self) -> list[str]:
        console = self.config.console
        names = ["console"] if console.enabled else []
        return names + (["alerts.jsonl"] if console.jsonl else [])

    def jobs(self) -> list[Job]:
        return [
            Job(
                "feed health check",
                self.check_feed_health,
                kwargs={"seconds": HEALTH_CHECK_SECONDS},
            )
        ]

    async def tick(self) -> None:
        """Start a poll for every feed that is due and not already being polled."""
        for feed in await self._db(self._db.store.due_feeds, self._clock.now()):
            if feed.id not in self._tasks:
                self._spawn(feed)

    async def run_once(self) -> list[PollResult]:
        """Poll every enabled feed now and wait for all of it: `watcher run --once`."""
        feeds = await self._db(self._db.store.feeds)
        for feed in feeds:
            if feed.enabled and feed.id not in self._tasks:
                self._spawn(feed)
        results = await asyncio.gather(*self._tasks.values())
        return [r for r in results if r is not None]

    def _spawn(self, feed: FeedRow) -> None:
        task = asyncio.create_task(self._poll(feed), name=f"poll {feed.name}")
        self._tasks[feed.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(feed.id, None))

    async def _poll(self, feed: FeedRow) -> PollResult | None:
        try:
            result = await self._poller.poll(feed)
        except Exception:
            # A bug must not stop this feed forever: log it and try again next interval.
            log.exception("feed %s: unexpected error while polling", feed.name)
            return None
        if result.new_entry_ids:
            log.info("feed %s: %d new entries", feed.name, len(result.new_entry_ids))
        return result

    async def check_feed_health(self) -> None:
        """Report feeds failing longer than the threshold or silent far beyond their cadence."""
        now = self._clock.now()
        for feed in await self._db(self._db.store.feeds):
            cadence = await self._db(self._db.store.feed_cadence, feed.id)
            health = FeedHealth(
                feed.failing_since, feed.last_error, feed.last_new_item_at, cadence, feed.added_at
            )
            problem = health_problem(health, now, self.config.polling)
            if problem and problem.split(" ")[0] != (feed.reported or "").split(" ")[0]:
                log.warning("feed %s (%s) is %s", feed.name, feed.url, problem)
                await self._db(self._db.store.mark_reported, feed.id, problem)

    async def aclose(self, *, grace: float) -> None:
        """Let in-flight polls finish for up to ``grace`` seconds, cancel the rest, close."""
        pending = list(self._tasks.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._client.aclose()
        await asyncio.to_thread(self._cpu.shutdown, cancel=True)
