"""The running pipeline: feeds -> articles -> rules -> stories -> alerts, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher import __version__
from watcher.alerts.blocklist import BlocklistSource, blocked
from watcher.alerts.decide import decide_article
from watcher.alerts.outbox import Sender, SendResult
from watcher.alerts.plan import context_from_config, next_digest_time, quiet_until
from watcher.alerts.templates import Templates, templates_folder
from watcher.articles.extract import PAGE_CAP
from watcher.articles.fetch import fetch_article
from watcher.articles.queue import ArticleQueue, host_key
from watcher.channels.base import Channel
from watcher.channels.registry import build_channels
from watcher.clock import Clock
from watcher.config import Config
from watcher.errors import StoreError
from watcher.explain import Explainer
from watcher.feeds import cpu as feeds_cpu
from watcher.feeds.identity import canonical_url
from watcher.feeds.poll import Poller, PollResult
from watcher.feeds.schedule import FeedHealth, health_problem
from watcher.http import HttpClient
from watcher.metrics import Metrics
from watcher.rules import worker as rules_worker
from watcher.rules.nlp import Analyzer
from watcher.rules.reload import RulesSource
from watcher.rules.worker import EntryJob, Processed, process_entry
from watcher.store.feeds import FeedRow, PendingEntry
from watcher.store.runner import StoreRunner
from watcher.workers import CpuPool, pool_size

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 600.0
RULES_CHECK_SECONDS = 2.0
SEND_INTERVAL = 1.0
# On a store shared by replicas, a replica holds at most this many polls in flight per HTTP
# connection: it claims no more feeds than it can poll within a lease.
SHARED_POLLS_PER_CONNECTION = 10
# Budgets per article job (feed parsing: watcher.feeds.cpu): a job over them is abandoned
# and its worker replaced.
ARTICLE_SECONDS = 60.0
ARTICLE_MEMORY_MB = 1024
# Article pages fetched at once (each host also within [http] max_per_host); fetched
# articles then wait for a worker without holding a fetch slot.
ARTICLE_FETCHES = 16
# Pending entries read from the store per refill of the article queue, and per feed.
PENDING_BATCH = 1000
PENDING_PER_FEED = 50
# Shortest time between two reads of pending entries to refill a running-low queue.
REFILL_SECONDS = 0.5
# Seconds a busy worker process gets at a stop, after in-flight work had its grace.
WORKER_GRACE = 1.0
# Store failures of one kind are logged at most once per this many seconds.
STORE_LOG_SECONDS = 60.0
# A destination failing this many times in a row is reported to the admins.
DESTINATION_FAILURES = 3

# Failure reasons (watcher/http.py) that mean the host was never reached.
_UNREACHED = ("DNS lookup failed", "connect timed out", "connection refused", "network error")

# Sends an admin message (plain text); the Telegram bot provides one.
Notify = Callable[[str], Awaitable[None]]


class StoreTrouble:
    """Logs store failures (disk full, read-only) once per kind of work every
    STORE_LOG_SECONDS, with the number held back meanwhile, and the recovery once: a failing
    store must not write a line per entry, feed and second to a disk that may be full."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def failed(self, what: str, exc: Exception | str) -> None:
        now = self._clock()
        last = self._last.get(what)
        if last is not None and now - last < STORE_LOG_SECONDS:
            self._held[what] = self._held.get(what, 0) + 1
            return
        held = self._held.pop(what, 0)
        more = f" ({held} more like it in {now - last:.0f} s)" if held and last is not None else ""
        log.error("%s: %s%s", what, exc, more)
        self._last[what] = now

    def recovered(self) -> None:
        if self._last:
            held = sum(self._held.values())
            log.info("the store works again (%d failures not logged since the last report)", held)
            self._last.clear()
            self._held.clear()


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
        blocklist: BlocklistSource | None = None,
        parse: CpuPool | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._db = db
        self._clock = clock
        self._client = client
        self._cpu = cpu
        # Feed parsing has its own workers: it never waits behind article work.
        self._parse = parse or cpu
        self._feeds = feeds
        self.rules = rules or RulesSource(config.watcher.rules_dir)
        self.blocklist = blocklist or BlocklistSource(config)
        self._channels = channels or {}
        self._tz = ZoneInfo(config.watcher.timezone)
        self._poller = Poller(
            client, db, config.polling, clock=clock, cpu=self._parse, rng=random.Random()
        )
        self._sender = Sender(
            db,
            self._channels,
            clock=clock,
            tz=self._tz,
            retry_cap=config.alerts.retry_cap,
            metrics=metrics,
            bot_buttons=config.telegram.bot,
            templates=Templates.load(templates_folder(config.alerts.templates_dir, config.source)),
        )
        self._polls: dict[int, asyncio.Task[PollResult | None]] = {}
        self._articles: dict[int, asyncio.Task[None]] = {}
        self._decide_lock = asyncio.Lock()
        self._queue: ArticleQueue[PendingEntry] = ArticleQueue()
        self._fresh: set[int] = set()  # entries found by this run's regular polls
        self._fetching: dict[str, int] = {}  # article fetches in flight per host
        self._fetch_limit = min(ARTICLE_FETCHES, config.http.max_connections)
        self._cpu_slots = asyncio.Semaphore(max(2, 2 * cpu.workers))
        self._feed_active: dict[int, int] = {}  # entries in progress per feed
        self._feed_limit = 2 * max(2, 2 * cpu.workers)
        self._refill: asyncio.Task[None] | None = None
        self._refill_after = 0.0
        self._more_pending = False
        self._tried: set[int] | None = None  # entries started by `run --once`
        self._send_wanted = asyncio.Event()
        self._notify: Notify | None = None
        # Feeds whose last poll could not be recorded, and when to poll them again: the store
        # still says they are due, and they must not be fetched again at every tick.
        self._held: dict[int, datetime] = {}
        self.explainer = Explainer(
            config,
            client=client,
            cpu=cpu,
            rules=lambda: self.rules.rules,
            clock=clock,
            blocklist=lambda: self.blocklist.blocklist,
        )
        # Feed id -> whether its last poll reached the host; all unreached is said once.
        self._reached: dict[int, bool] = {}
        self._said_offline = False
        self.store_trouble = StoreTrouble()

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
        blocklist = BlocklistSource(config)
        await asyncio.to_thread(blocklist.load)  # ConfigError if invalid
        for warning in blocklist.blocklist.warnings:
            log.warning("blocklist: %s", warning)
        feeds = await db(db.store.sync_feeds, config.feeds, clock.now())
        client = HttpClient(config.http, clock=clock)
        workers = config.articles.workers
        # Half the cores parse feeds (one on two cores): parsing a whole cycle of a thousand
        # feeds takes seconds, and every worker costs ~35 MB.
        parse = CpuPool(
            max(1, pool_size(workers) // 2), name="feed", seconds=feeds_cpu.PARSE_SECONDS,
            memory_mb=feeds_cpu.PARSE_MEMORY_MB,
            preload="watcher.feeds.cpu:preload",
        )  # fmt: skip
        cpu = CpuPool(
            workers, name="article", seconds=ARTICLE_SECONDS, memory_mb=ARTICLE_MEMORY_MB,
            preload="watcher.rules.worker:preload",
            preload_args=(config.nlp, rules_worker.ship_rules(rules.rules)),
        )  # fmt: skip
        parse.start()  # the workers preload while the daemon starts, before the first poll
        cpu.start()
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
            blocklist=blocklist,
            parse=parse,
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
        await self._drain_articles()
        sent = await self._sender.drain()
        await self._log_sent(sent)
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
                self.store_trouble.failed("feed poll not recorded, retrying next interval", exc)
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
        self._note_reach(feed.id, result)
        if result.new_entry_ids:
            log.info("feed %s: %d new entries", feed.name, len(result.new_entry_ids))
            if not feed.first_poll:  # a new feed's first items are backfill, not news
                self._fresh.update(result.new_entry_ids)
            await self.process_pending()
        return result

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
        """Queue the pending entries not already queued or in progress, and start the
        fetches the limits allow (see ArticleQueue for the order)."""
        rows = await self._db(
            self._db.store.pending_entries, PENDING_BATCH, per_feed=PENDING_PER_FEED
        )
        per_feed: dict[int, int] = {}
        for pending in rows:
            per_feed[pending.feed_id] = per_feed.get(pending.feed_id, 0) + 1
            if pending.id not in self._articles and pending.id not in (self._tried or ()):
                fresh = pending.id in self._fresh
                self._queue.add(
                    pending.id, pending.feed_id, pending.entry.link, pending, fresh=fresh
                )
        # A full batch (or a feed at its share) means more wait in the store: read them
        # as soon as the queue runs low rather than at the next round.
        full = len(rows) >= PENDING_BATCH or any(n >= PENDING_PER_FEED for n in per_feed.values())
        self._more_pending = full
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued entries while fetch slots are free; a busy host's entries wait in
        the queue, holding no slot, while other hosts' entries go ahead."""
        while sum(self._fetching.values()) < self._fetch_limit:
            pending = self._queue.take(self._host_free, self._feed_free)
            if pending is None:
                break
            self._feed_active[pending.feed_id] = self._feed_active.get(pending.feed_id, 0) + 1
            host = host_key(pending.entry.link)
            self._fetching[host] = self._fetching.get(host, 0) + 1
            task = asyncio.create_task(self._process(pending, host), name=f"article {pending.id}")
            self._articles[pending.id] = task
            if self._tried is not None:
                self._tried.add(pending.id)
        now = asyncio.get_running_loop().time()
        low = len(self._queue) < PENDING_PER_FEED
        if self._more_pending and low and self._refill is None and now >= self._refill_after:
            self._refill_after = now + REFILL_SECONDS
            self._refill = asyncio.create_task(self._refill_queue(), name="article queue refill")

    def _feed_free(self, feed_id: int) -> bool:
        # Enough to keep the workers busy, not so many that one feed's fetched pages queue
        # for the workers ahead of another feed's story.
        return self._feed_active.get(feed_id, 0) < self._feed_limit

    def _host_free(self, host: str) -> bool:
        return not host or self._fetching.get(host, 0) < self.config.http.max_per_host

    async def _refill_queue(self) -> None:
        try:
            await self.process_pending()
        except StoreError as exc:
            self.store_trouble.failed("article queue not refilled, retried next round", exc)
        finally:
            self._refill = None

    def _fetched(self, host: str) -> None:
        """Give back the fetch slot of ``host`` (once per entry) and start the next entries."""
        left = self._fetching.get(host, 0) - 1
        if left > 0:
            self._fetching[host] = left
        else:
            self._fetching.pop(host, None)
        self._dispatch()

    async def _drain_articles(self) -> None:
        """`run --once`: process every pending entry once (an entry that stays pending after
        its attempt, e.g. the store refused it, is left for the next run)."""
        self._tried = set()
        try:
            while True:
                await self.process_pending()
                if not self._articles:
                    return
                await asyncio.wait(
                    list(self._articles.values()), return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            self._tried = None

    async def _process(self, pending: PendingEntry, host: str) -> None:
        fetch_done = False

        def fetched() -> None:
            nonlocal fetch_done
            if not fetch_done:
                fetch_done = True
                self._fetched(host)

        try:
            await self._process_entry(pending, fetched)
        except StoreError as exc:
            # Not the article's fault (disk full, read-only): it stays pending for a retry.
            self.store_trouble.failed("entries not recorded, kept pending for a retry", exc)
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
            self._fresh.discard(pending.id)
            self._feed_active[pending.feed_id] -= 1
            if not self._feed_active[pending.feed_id]:
                del self._feed_active[pending.feed_id]
            fetched()
            self._dispatch()  # the feed's slot is free too

    async def _process_entry(self, pending: PendingEntry, fetched: Callable[[], None]) -> None:
        entry = pending.entry
        url = canonical_url(entry.link) if entry.link else f"entry:{pending.feed_id}:{pending.id}"
        if await self._db(self._db.store.article_id, url) is not None:
            # The same article through another feed (or entry): processed once, alerted once.
            await self._db(self._db.store.finish_entry, pending.id)
            return
        html, fetch_error = await self._fetch(entry.link)
        fetched()  # the fetch slot goes to the next entry while this one waits for a worker
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
        async with self._cpu_slots:
            processed = await self._cpu(
                process_entry, job, self.rules.rules, self.config.nlp, self._clock.now()
            )
        if cut := processed.article.extra.get(PAGE_CAP):
            log.info("entry %d (%s): %s", pending.id, entry.link, cut)
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
            # Only a match can alert: spare the other articles the term search.
            article, blocklist = processed.article, self.blocklist.blocklist
            reason = blocked(blocklist, article, url) if processed.matches else ""
            record = decide_article(
                processed,
                entry_id=pending.id,
                feed_id=pending.feed_id,
                url=url,
                recent=recent,
                ctx=ctx,
                settings=self.config.alerts,
                blocked=reason,
            )
            await self._db(store.record_article, record)
        self.store_trouble.recovered()
        for match, outcome in record.matches:
            # Muted and blocked matches are logged too: they leave no alert behind.
            held = outcome.outcome in ("muted", "blocked")
            log.info(
                "rule %s: %s (score %.1f): %s",
                match.rule,
                outcome.reason if held else outcome.outcome,
                match.score,
                processed.article.title,
            )
        if record.alert_kind or record.story:
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
        await self._reload_blocklist()

    async def _reload_blocklist(self) -> None:
        before = self.blocklist.blocklist
        error = await asyncio.to_thread(self.blocklist.reload)
        if error is not None:
            for problem in error.problems:
                log.error("blocklist not reloaded, the previous one stays active: %s", problem)
            await self._report(
                "Blocklist rejected; the previous one stays active:\n" + "\n".join(error.problems)
            )
        elif self.blocklist.blocklist is not before:
            log.info("blocklist reloaded: %d entries", len(self.blocklist.blocklist))
            for warning in self.blocklist.blocklist.warnings:
                log.warning("blocklist: %s", warning)

    # --- delivery ---

    async def send_loop(self) -> None:
        """Drain the outbox whenever something is queued, and every second for retries."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_wanted.wait(), SEND_INTERVAL)
            self._send_wanted.clear()
            try:
                result = await self._sender.drain()
                self.store_trouble.recovered()
                await self._log_sent(result)
                if result.failed or result.retrying:
                    await self._check_destinations(permanent=result.failed > 0)
            except StoreError as exc:
                self.store_trouble.failed(
                    "delivery rounds stopped; the outbox keeps every alert", exc
                )
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

    async def _log_sent(self, result: SendResult) -> None:
        if not (result.sent or result.failed):
            return
        # The queue, not just this round's heads: messages behind a failing or held one.
        try:
            depth = await self._db(self._db.store.outbox_depth)
        except StoreError:
            depth = {}  # the round itself is recorded; only the count is missing
        queued = sum(depth.values())
        where = ", ".join(f"{n} for {d}" for d, n in sorted(depth.items()))
        log.info(
            "delivered %d messages (%d failed for good; %d still queued%s)",
            result.sent,
            result.failed,
            queued,
            f": {where}" if where else "",
        )

    async def _record_unrecorded_sends(self) -> None:
        """Sends delivered while the store refused to record them are recorded now, if the
        store works again, so the next start does not send them twice."""
        try:
            left = await asyncio.wait_for(self._sender.record_unrecorded(), WORKER_GRACE)
        except TimeoutError:
            log.error("delivered messages not recorded in time; a restart may send them again")
            return
        if left:
            log.error(
                "outbox jobs %s were delivered but could not be recorded; they will be sent "
                "again after a restart",
                ", ".join(map(str, left)),
            )

    async def aclose(self, *, grace: float) -> None:
        """Let in-flight work finish for up to ``grace`` seconds, cancel the rest, close."""
        if self._refill is not None:
            self._refill.cancel()
        self._queue, self._more_pending = ArticleQueue(), False  # queued entries stay pending
        pending = [*self._polls.values(), *self._articles.values()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._record_unrecorded_sends()
        await self._client.aclose()
        for channel in self._channels.values():
            await channel.aclose()
        # A worker still busy (a runaway page) is terminated; its entry stays pending.
        await asyncio.to_thread(self._cpu.shutdown, cancel=True, grace=WORKER_GRACE)
        if self._parse is not self._cpu:
            await asyncio.to_thread(self._parse.shutdown, cancel=True, grace=WORKER_GRACE)
