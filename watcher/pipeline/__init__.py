"""The running pipeline: builds the stages (polling, articles, reload, delivery, reports)
and wires them together; each stage lives in its own module of this package."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from watcher import __version__, pools
from watcher.alerts.blocklist import BlocklistSource
from watcher.alerts.outbox import Sender
from watcher.alerts.templates import TemplatesSource, templates_folder
from watcher.channels.base import Channel
from watcher.channels.registry import build_channels, configured_kinds
from watcher.clock import Clock
from watcher.config import Config
from watcher.explain import Explainer
from watcher.feeds.poll import Poller, PollResult
from watcher.http import HttpClient
from watcher.metrics import Metrics
from watcher.pipeline.articles import (
    ARTICLE_FETCHES,
    PENDING_BATCH,
    PENDING_PER_FEED,
    REFILL_SECONDS,
    ArticleStage,
)
from watcher.pipeline.delivery import DESTINATION_FAILURES, SEND_INTERVAL, DeliveryStage
from watcher.pipeline.polling import SHARED_POLLS_PER_CONNECTION, PollingStage
from watcher.pipeline.reload import Reloader
from watcher.pipeline.reports import STORE_LOG_SECONDS, Notify, Reports, StoreTrouble, log
from watcher.pools import ARTICLE_MEMORY_MB, ARTICLE_SECONDS, WORKER_GRACE, Spawned
from watcher.rules import worker as rules_worker
from watcher.rules.nlp import Analyzer
from watcher.rules.reload import RulesSource
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.workers import CpuPool

__all__ = [
    "ARTICLE_FETCHES",
    "ARTICLE_MEMORY_MB",
    "ARTICLE_SECONDS",
    "DESTINATION_FAILURES",
    "HEALTH_CHECK_SECONDS",
    "PENDING_BATCH",
    "PENDING_PER_FEED",
    "REFILL_SECONDS",
    "RULES_CHECK_SECONDS",
    "SEND_INTERVAL",
    "SHARED_POLLS_PER_CONNECTION",
    "STORE_LOG_SECONDS",
    "WORKER_GRACE",
    "Job",
    "Notify",
    "Pipeline",
    "Pools",
    "StoreTrouble",
]

HEALTH_CHECK_SECONDS = 600.0
MISSED_DIGEST_SECONDS = 600.0
RULES_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Job:
    """A periodic job the daemon schedules (APScheduler trigger name and its arguments)."""

    name: str
    fn: Callable[[], Awaitable[None]]
    trigger: str = "interval"
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Run by one replica only (the elected one) when several share a PostgreSQL store.
    once: bool = False


def rules_source(config: Config) -> RulesSource:
    """The rules folder as the daemon holds it: rules sending to a channel the config does
    not turn on are refused (at start and on reload), as `watcher check` refuses them."""
    return RulesSource(
        config.watcher.rules_dir, channels=configured_kinds(config), feeds=config.feeds
    )


@dataclass(frozen=True)
class Pools:
    """The worker processes and the rules they run: the daemon starts them first, so they
    load spaCy and the rules while it opens the store and builds the pipeline."""

    rules: RulesSource
    workers: Spawned

    @classmethod
    def start(cls, config: Config, spawned: Spawned | None = None) -> Pools:
        """Load the rules (RuleError if invalid) and start both pools' workers, or adopt
        ``spawned``, started before the rules were read (their workers load the rules with
        their first job)."""
        rules = rules_source(config)
        rules.load()
        if spawned is None:
            spawned = pools.spawn(config, rules_worker.ship_rules(rules.rules))
        return cls(rules, spawned)

    def shutdown(self) -> None:
        """Stop both pools (a no-op for a pool already stopped)."""
        self.workers.shutdown()


class Pipeline:
    """Thin wiring: builds the stages and exposes what the daemon, the bot and the web use."""

    def __init__(
        self,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        client: HttpClient,
        cpu: CpuPool,
        feeds: list[FeedRow],
        rules: RulesSource | None = None,
        channels: dict[str, Channel] | None = None,
        metrics: Metrics | None = None,
        blocklist: BlocklistSource | None = None,
        parse: CpuPool | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self._client = client
        self._cpu = cpu
        # Feed parsing has its own workers: it never waits behind article work.
        self._parse = parse or cpu
        self._feeds = feeds
        self.rules = rules or rules_source(config)
        self.blocklist = blocklist or BlocklistSource(config)
        self._channels = channels or {}
        self._tz = ZoneInfo(config.watcher.timezone)
        self.templates = TemplatesSource(
            templates_folder(config.alerts.templates_dir, config.source)
        )
        self.templates.load()  # ConfigError if one does not compile
        for problem in self.templates.problems:
            log.error(
                "%s; alerts of this rule go out in the built-in layout until it is fixed", problem
            )
        self._reports = Reports()
        self.store_trouble = self._reports.store_trouble
        self._delivery = self._delivery_stage(db, clock)
        self._sending: asyncio.Task[None] | None = None  # start_sending's task
        self._articles = ArticleStage(
            config, db, clock=clock, client=client, cpu=cpu, rules=self.rules,
            blocklist=self.blocklist, metrics=metrics, trouble=self.store_trouble,
            to_send=self._delivery.want,
        )  # fmt: skip
        poller = Poller(
            client, db, config.polling, clock=clock, cpu=self._parse, rng=random.Random()
        )
        self._polling = PollingStage(
            config, db, clock=clock, poller=poller, feeds=feeds, metrics=metrics,
            trouble=self.store_trouble, report=self._reports.report,
            arrived=self._articles.arrived,
        )  # fmt: skip
        self._reloader = Reloader(self.rules, self.blocklist, self.templates, self._reports.report)
        self.explainer = Explainer(
            config,
            client=client,
            cpu=cpu,
            rules=lambda: self.rules.rules,
            clock=clock,
            blocklist=lambda: self.blocklist.blocklist,
        )

    def _delivery_stage(self, db: StoreRunner, clock: Clock) -> DeliveryStage:
        config = self.config
        sender = Sender(
            db,
            self._channels,
            clock=clock,
            tz=self._tz,
            retry_cap=config.alerts.retry_cap,
            metrics=self.metrics,
            bot_buttons=config.telegram.bot,
            templates=self.templates,
        )
        return DeliveryStage(
            config, db, clock=clock, tz=self._tz, sender=sender,
            trouble=self.store_trouble, report=self._reports.report,
        )  # fmt: skip

    @classmethod
    async def start(
        cls,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        metrics: Metrics | None = None,
        pools: Pools | None = None,
    ) -> Pipeline:
        """Load rules (RuleError if invalid), build channels (ConfigError), sync feeds; with
        ``pools``, the workers and rules started beforehand (Pools.start)."""
        own = pools is None
        pools = pools or Pools.start(config)
        try:
            built = await cls._build(config, db, clock, metrics, pools)
        except BaseException:
            if own:  # else the caller stops the pools it started
                await asyncio.to_thread(pools.shutdown)
            raise
        return built

    @classmethod
    async def _build(
        cls, config: Config, db: StoreRunner, clock: Clock, metrics: Metrics | None, pools: Pools
    ) -> Pipeline:
        rules = pools.rules
        for warning in [*Analyzer(config.nlp, rules.rules).warnings(), *rules.warnings]:
            log.warning("%s", warning)
        channels = build_channels(config)
        blocklist = BlocklistSource(config)
        await asyncio.to_thread(blocklist.load)  # ConfigError if invalid
        for warning in blocklist.blocklist.warnings:
            log.warning("blocklist: %s", warning)
        feeds = await db(db.store.sync_feeds, config.feeds, clock.now())
        client = HttpClient(config.http, clock=clock)
        return cls(
            config,
            db,
            clock=clock,
            client=client,
            cpu=pools.workers.cpu,
            feeds=feeds,
            rules=rules,
            channels=channels,
            metrics=metrics,
            blocklist=blocklist,
            parse=pools.workers.parse,
        )

    def summary(self) -> str:
        enabled = sum(f.enabled for f in self._feeds)
        return (
            f"watcher {__version__}: {len(self._feeds)} feeds ({enabled} enabled); "
            f"{len(self.rules.rules.rules)} rules ({', '.join(self.rules.rules.names())}); "
            f"channels: {', '.join(self._channels)}; "
            f"{self._cpu.workers} worker processes; data in {self.config.data_dir}"
        )

    def jobs(self) -> list[Job]:
        hour_minutes = [t.split(":") for t in self.config.alerts.digest_at]
        digests = [
            Job(
                f"digest at {h}:{m}",
                self.send_digests,
                "cron",
                {"hour": int(h), "minute": int(m), "timezone": self._tz},
                once=True,
            )
            for h, m in hour_minutes
        ]
        return [
            Job(
                "feed health check",
                self.check_feed_health,
                kwargs={"seconds": HEALTH_CHECK_SECONDS},
                once=True,
            ),
            Job("rules reload", self.reload_rules, kwargs={"seconds": RULES_CHECK_SECONDS}),
            Job("article stage", self.process_pending, kwargs={"seconds": 5.0}),
            *digests,
            # at start (the scheduler starts after the election), then now and then
            Job(
                "missed digests",
                self._delivery.send_missed_digests,
                kwargs={"seconds": MISSED_DIGEST_SECONDS, "next_run_time": self._clock.now()},
                once=True,
            ),
        ]

    # --- the stages' entry points, as the daemon, the bot and the web call them ---

    async def tick(self) -> None:
        """Start a poll for every feed that is due and not already being polled."""
        await self._polling.tick()

    async def run_once(self) -> list[PollResult]:
        """`watcher run --once`: poll every enabled feed, process what is new, deliver."""
        results = await self._polling.poll_all()
        await self._articles.drain()
        await self._delivery.send_missed_digests()
        await self._delivery.drain()
        return results

    async def check_feed_health(self) -> None:
        """Report feeds failing longer than the threshold or silent far beyond their cadence."""
        await self._polling.check_feed_health()

    async def process_pending(self) -> None:
        """Queue the pending entries and start the fetches the limits allow."""
        await self._articles.process_pending()

    async def reload_rules(self) -> None:
        """Pick up edited rule files and blocklist; an invalid edit keeps the old one."""
        await self._reloader.reload()

    async def send_loop(self) -> None:
        """Drain the outbox whenever something is queued, and every second for retries."""
        await self._delivery.send_loop()

    def start_sending(self) -> None:
        """Run send_loop until a stop; aclose lets its round under way finish."""
        self._sending = asyncio.create_task(self.send_loop(), name="outbox sender")

    def stop_sending(self) -> None:
        """At a stop: start no more delivery rounds (the one under way finishes in aclose)."""
        self._delivery.stop_sending()

    async def send_digests(self) -> None:
        await self._delivery.send_digests()

    def next_digest(self) -> str:
        return self._delivery.next_digest()

    # --- hooks for the Telegram bot ---

    def set_notifier(self, notify: Notify | None) -> None:
        """Where admin messages go (rejected rule files, failing feeds and destinations);
        every problem is logged as well."""
        self._reports.set_notifier(notify)

    async def explain_url(self, url: str) -> dict[str, Any]:
        """`/test URL`: fetch the page and explain it against the current rules."""
        return await self.explainer.url(url)

    async def aclose(self, *, grace: float) -> None:
        """Let in-flight work finish for up to ``grace`` seconds, cancel the rest, close."""
        self._polling.stop_polling()
        self._articles.stop_queueing()  # queued entries stay pending
        self.stop_sending()
        sending = [self._sending] if self._sending is not None else []
        pending = [*self._polling.tasks(), *self._articles.tasks(), *sending]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._delivery.record_unrecorded_sends(WORKER_GRACE)
        # Half the workers' grace: the whole stop must end (and hand leases back) in time.
        await self._delivery.drain_local(WORKER_GRACE / 2)
        await self._client.aclose()
        for channel in self._channels.values():
            await channel.aclose()
        # A worker still busy (a runaway page) is terminated; its entry stays pending.
        await asyncio.to_thread(self._cpu.shutdown, cancel=True, grace=WORKER_GRACE)
        if self._parse is not self._cpu:
            await asyncio.to_thread(self._parse.shutdown, cancel=True, grace=WORKER_GRACE)
