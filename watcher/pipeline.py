"""The running pipeline: feeds -> articles -> rules -> stories -> alerts, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher import __version__
from watcher.alerts.decide import decide_article
from watcher.alerts.outbox import Sender, SendResult
from watcher.alerts.plan import context_from_config, next_digest_time, quiet_until
from watcher.articles.fetch import fetch_article
from watcher.channels.base import Channel
from watcher.channels.registry import build_channels
from watcher.clock import Clock
from watcher.config import Config
from watcher.errors import StoreError
from watcher.explain import Explainer
from watcher.feeds.identity import canonical_url
from watcher.feeds.poll import Poller, PollResult
from watcher.feeds.schedule import FeedHealth, health_problem
from watcher.http import HttpClient
from watcher.metrics import Metrics
from watcher.rules.nlp import Analyzer
from watcher.rules.reload import RulesSource
from watcher.rules.worker import EntryJob, Processed, process_entry
from watcher.store.feeds import FeedRow, PendingEntry
from watcher.store.runner import StoreRunner
from watcher.workers import CpuPool

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 600.0
RULES_CHECK_SECONDS = 2.0
SEND_INTERVAL = 1.0
# Articles processed at once: enough to keep both cores and the network busy.
ARTICLE_CONCURRENCY = 8
# On a store shared by replicas, a replica holds at most this many polls in flight per HTTP
# connection: it claims no more feeds than it can poll within a lease.
SHARED_POLLS_PER_CONNECTION = 10
# A destination failing this many times in a row is reported to the admins.
DESTINATION_FAILURES = 3

# Sends an admin message (plain text); the Telegram bot provides one.
Notify = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """A periodic job the daemon schedules (APScheduler trigger name and its arguments)."""

    name: str
    fn: Callable[[], Awaitable[None]]
    trigger: str = "interval"
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Run by one replica only (the elected one) when several share a PostgreSQL store.
    once: bool = False


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
        rules: RulesSource | None = None,
        channels: dict[str, Channel] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._db = db
        self._clock = clock
        self._client = client
        self._cpu = cpu
        self._feeds = feeds
        self.rules = rules or RulesSource(config.watcher.rules_dir)
        self._channels = channels or {}
        self._tz = ZoneInfo(config.watcher.timezone)
        self._poller = Poller(client, db, config.polling, clock=clock, cpu=cpu, rng=random.Random())
        self._sender = Sender(
            db,
            self._channels,
            clock=clock,
            tz=self._tz,
            retry_cap=config.alerts.retry_cap,
            metrics=metrics,
            bot_buttons=config.telegram.bot,
        )
        self._polls: dict[int, asyncio.Task[PollResult | None]] = {}
        self._articles: dict[int, asyncio.Task[None]] = {}
        self._decide_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(ARTICLE_CONCURRENCY)
        self._send_wanted = asyncio.Event()
        self._notify: Notify | None = None
        # Feeds whose last poll could not be recorded, and when to poll them again: the store
        # still says they are due, and they must not be fetched again at every tick.
        self._held: dict[int, datetime] = {}
        self.explainer = Explainer(
            config, client=client, cpu=cpu, rules=lambda: self.rules.rules, clock=clock
        )

    @classmethod
    async def start(
        cls, config: Config, db: StoreRunner, *, clock: Clock, metrics: Metrics | None = None
    ) -> Pipeline:
        """Load rules (RuleError if invalid), build channels (ConfigError), sync feeds."""
        rules = RulesSource(config.watcher.rules_dir)
        rules.load()
        for warning in Analyzer(config.nlp, rules.rules).warnings():
            log.warning("%s", warning)
        channels = build_channels(config)
        feeds = await db(db.store.sync_feeds, config.feeds, clock.now())
        client = HttpClient(config.http, clock=clock)
        cpu = CpuPool(config.articles.workers)
        return cls(
            config,
            db,
            clock=clock,
            client=client,
            cpu=cpu,
            feeds=feeds,
            rules=rules,
            channels=channels,
            metrics=metrics,
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
        ]

    # --- feeds ---

    async def tick(self) -> None:
        """Start a poll for every feed that is due and not already being polled."""
        if self._db.store.shared:
            await self._claim_and_poll()
            return
        now = self._clock.now()
        for feed in await self._db(self._db.store.due_feeds, now):
            if feed.id not in self._polls and self._held.get(feed.id, now) <= now:
                self._spawn_poll(feed)

    async def _claim_and_poll(self) -> None:
        """Replicas: claim due feeds up to the in-flight cap, and again as polls finish,
        until fewer come back than asked (the rest are not due, or other replicas have them)."""
        cap = SHARED_POLLS_PER_CONNECTION * self.config.http.max_connections
        while (room := cap - len(self._polls)) > 0:
            now = self._clock.now()
            claimed = await self._db(self._db.store.due_feeds, now, room)
            for feed in claimed:
                if feed.id not in self._polls and self._held.get(feed.id, now) <= now:
                    self._spawn_poll(feed)
            if len(claimed) < room or not self._polls:
                return
            await asyncio.wait(list(self._polls.values()), return_when=asyncio.FIRST_COMPLETED)

    async def run_once(self) -> list[PollResult]:
        """`watcher run --once`: poll every enabled feed, process what is new, deliver."""
        for feed in await self._db(self._db.store.feeds):
            if feed.enabled and feed.id not in self._polls:
                self._spawn_poll(feed)
        results = [r for r in await asyncio.gather(*self._polls.values()) if r is not None]
        await self.process_pending()
        await asyncio.gather(*self._articles.values())
        sent = await self._sender.drain()
        self._log_sent(sent)
        return results

    def _spawn_poll(self, feed: FeedRow) -> None:
        task = asyncio.create_task(self._poll(feed), name=f"poll {feed.name}")
        self._polls[feed.id] = task
        task.add_done_callback(lambda _t: self._polls.pop(feed.id, None))

    async def _poll(self, feed: FeedRow) -> PollResult | None:
        try:
            result = await self._poller.poll(feed)
        except Exception as exc:
            # A bug or a failing store (disk full) must not stop this feed forever, nor
            # have it fetched at every tick: try again next interval.
            if isinstance(exc, StoreError):
                log.error("feed %s: poll not recorded, retrying next interval: %s", feed.name, exc)
            else:
                log.exception("feed %s: unexpected error while polling", feed.name)
            interval = feed.interval or self.config.polling.interval
            self._held[feed.id] = self._clock.now() + timedelta(seconds=interval)
            if self.metrics is not None:
                self.metrics.polled(feed.name, "failed")
            return None
        self._held.pop(feed.id, None)
        if self.metrics is not None:
            self.metrics.polled(feed.name, result.outcome)
        if result.new_entry_ids:
            log.info("feed %s: %d new entries", feed.name, len(result.new_entry_ids))
            await self.process_pending()
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
                await self._report(f"Feed {feed.name} ({feed.url}) is {problem}")
            elif not problem and feed.reported:
                # Cleared here, not by polls: a silent feed's polls succeed and find nothing.
                await self._db(self._db.store.mark_reported, feed.id, None)

    # --- articles, rules, stories, alerts ---

    async def process_pending(self) -> None:
        """Start the article stage for every pending entry not already in progress."""
        for pending in await self._db(self._db.store.pending_entries, 500):
            if pending.id not in self._articles:
                task = asyncio.create_task(self._process(pending), name=f"article {pending.id}")
                self._articles[pending.id] = task

    async def _process(self, pending: PendingEntry) -> None:
        try:
            async with self._slots:
                await self._process_entry(pending)
        except StoreError as exc:
            # Not the article's fault (disk full, read-only): it stays pending for a retry.
            log.error(
                "entry %d (%s): not recorded, kept pending: %s", pending.id, pending.entry.link, exc
            )
        except Exception:
            # A stop (CancelledError) is not caught: the entry stays pending for next start.
            log.exception(
                "entry %d (%s): processing failed; it is kept with state 'error'",
                pending.id,
                pending.entry.link,
            )
            await self._db(self._db.store.mark_entry_failed, pending.id)
        finally:
            self._articles.pop(pending.id, None)

    async def _process_entry(self, pending: PendingEntry) -> None:
        entry = pending.entry
        url = canonical_url(entry.link) if entry.link else f"entry:{pending.feed_id}:{pending.id}"
        if await self._db(self._db.store.article_id, url) is not None:
            # The same article through another feed (or entry): processed once, alerted once.
            await self._db(self._db.store.finish_entry, pending.id)
            return
        html, fetch_error = await self._fetch(entry.link)
        job = EntryJob(
            url=entry.link or url,
            html=html,
            fetch_error=fetch_error,
            feed_title=entry.title,
            feed_content=entry.content,
            feed_summary=entry.summary,
            published=entry.published,
            feed_name=pending.feed_name,
            feed_tags=pending.feed_tags,
            language_hint=entry.language,
            min_text_chars=self.config.articles.min_text_chars,
        )
        processed = await self._cpu(
            process_entry, job, self.rules.rules, self.config.nlp, self._clock.now()
        )
        if self.metrics is not None:
            self.metrics.processed(
                processed.article.source.value, (m.rule for m in processed.matches)
            )
        await self._record(pending, url, processed)

    async def _fetch(self, link: str | None) -> tuple[bytes | None, str]:
        if not link:
            return None, "the entry has no link"
        return await fetch_article(self._client, url=link, settings=self.config.articles)

    async def _record(self, pending: PendingEntry, url: str, processed: Processed) -> None:
        # Story grouping reads what earlier articles stored: decide and record one at a time
        # (on PostgreSQL, across the replicas too).
        async with self._decide_lock, self._db.one_replica_at_a_time():
            now = self._clock.now()
            store = self._db.store
            since = now - timedelta(seconds=self.config.alerts.story_window)
            recent = await self._db(store.recent_stories, since)
            muted = frozenset(await self._db(store.active_mutes, now))
            counts = await self._db(store.alert_counts, now - timedelta(hours=1))
            ctx = context_from_config(self.config, now, muted, counts)
            record = decide_article(
                processed,
                entry_id=pending.id,
                feed_id=pending.feed_id,
                url=url,
                recent=recent,
                ctx=ctx,
                settings=self.config.alerts,
            )
            await self._db(store.record_article, record)
        if record.alert_kind or record.story:
            for match, outcome in record.matches:
                log.info(
                    "rule %s: %s (score %.1f): %s",
                    match.rule,
                    outcome.outcome,
                    match.score,
                    processed.article.title,
                )
            self._send_wanted.set()

    async def reload_rules(self) -> None:
        """Pick up edited rule files; an invalid edit is logged and the old rules stay."""
        before = self.rules.rules
        error = await asyncio.to_thread(self.rules.reload)
        if error is not None:
            for problem in error.problems:
                log.error("rules not reloaded, previous rules stay active: %s", problem)
            await self._report(
                "Rule files rejected; the previous rules stay active:\n" + "\n".join(error.problems)
            )
        elif self.rules.rules is not before:
            names = ", ".join(self.rules.rules.names())
            log.info("rules reloaded: %d rules (%s)", len(self.rules.rules.rules), names)

    # --- delivery ---

    async def send_loop(self) -> None:
        """Drain the outbox whenever something is queued, and every second for retries."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_wanted.wait(), SEND_INTERVAL)
            self._send_wanted.clear()
            try:
                result = await self._sender.drain()
                self._log_sent(result)
                if result.failed or result.retrying:
                    await self._check_destinations(permanent=result.failed > 0)
            except StoreError as exc:
                log.error("delivery round stopped; the outbox keeps every alert: %s", exc)
            except Exception:
                log.exception("delivery round failed; the outbox keeps every alert")

    async def _check_destinations(self, *, permanent: bool) -> None:
        """Report destinations failing DESTINATION_FAILURES times in a row, or for good;
        a delivery that succeeds clears the report (Store.delivery_sent)."""
        for row in await self._db(self._db.store.destination_rows):
            failures = row["failures"]
            if row["reported"] or row["failing_since"] is None:
                continue
            if permanent or failures >= DESTINATION_FAILURES:
                problem = f"failing ({failures} attempts in a row): {row['last_error']}"
                log.warning("destination %s is %s", row["name"], problem)
                await self._db(self._db.store.mark_destination_reported, row["name"], problem)
                await self._report(f"Destination {row['name']} is {problem}")

    async def send_digests(self) -> None:
        now = self._clock.now()
        for destination in await self._db(self._db.store.digest_destinations):
            window = self.config.destinations.get(destination)
            quiet = (window.quiet_hours if window else "") or self.config.alerts.quiet_hours
            held = quiet_until(quiet, now, self._tz)  # a digest is never critical
            count = await self._db(self._db.store.queue_digest, destination, now, held)
            log.info("digest of %d alerts queued for %s", count, destination)
        self._send_wanted.set()

    # --- hooks for the Telegram bot ---

    def set_notifier(self, notify: Notify | None) -> None:
        """Where admin messages go (rejected rule files, failing feeds and destinations);
        every problem is logged as well."""
        self._notify = notify

    async def _report(self, text: str) -> None:
        if self._notify is None:
            return
        try:
            await self._notify(text)
        except Exception:
            log.exception("could not send an admin message")

    async def explain_url(self, url: str) -> dict[str, Any]:
        """`/test URL`: fetch the page and explain it against the current rules."""
        return await self.explainer.url(url)

    def next_digest(self) -> str:
        return next_digest_time(
            self.config.alerts.digest_at, self._clock.now(), self._tz
        ).isoformat()

    def _log_sent(self, result: SendResult) -> None:
        if result.sent or result.failed:
            log.info(
                "delivered %d messages (%d failed for good, %d waiting to retry)",
                result.sent,
                result.failed,
                result.retrying,
            )

    async def aclose(self, *, grace: float) -> None:
        """Let in-flight work finish for up to ``grace`` seconds, cancel the rest, close."""
        pending = [*self._polls.values(), *self._articles.values()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._client.aclose()
        for channel in self._channels.values():
            await channel.aclose()
        await asyncio.to_thread(self._cpu.shutdown, cancel=True)
