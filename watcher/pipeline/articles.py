"""The article stage: the fair queue of pending entries, fetch, CPU job, decide and record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from watcher.alerts.blocklist import BlocklistSource, blocked
from watcher.alerts.decide import decide_article
from watcher.alerts.plan import context_from_config
from watcher.articles.extract import PAGE_CAP
from watcher.articles.fetch import fetch_article
from watcher.articles.queue import ArticleQueue, host_key
from watcher.clock import Clock
from watcher.config import Config
from watcher.errors import StoreError
from watcher.feeds.identity import canonical_url
from watcher.http import HttpClient
from watcher.metrics import Metrics
from watcher.pipeline.reports import StoreTrouble, log
from watcher.rules.reload import RulesSource
from watcher.rules.worker import EntryJob, Processed, process_entry
from watcher.store.alerts import ArticleRecord
from watcher.store.feeds import PendingEntry
from watcher.store.runner import StoreRunner
from watcher.workers import CpuPool, Turns, urgent

# Article pages fetched at once (each host also within [http] max_per_host); fetched
# articles then wait for a worker without holding a fetch slot.
ARTICLE_FETCHES = 16
# Pending entries read from the store per refill of the article queue, and per feed.
PENDING_BATCH = 1000
PENDING_PER_FEED = 50
# Shortest time between two reads of pending entries to refill a running-low queue.
REFILL_SECONDS = 0.5
# The entries of finished polls are read by id, this many per read; a backfill's are read
# only while the queue holds fewer than PENDING_BATCH (the rest wait in the store).
ARRIVED_BATCH = 500


class ArticleStage:
    def __init__(
        self,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        client: HttpClient,
        cpu: CpuPool,
        rules: RulesSource,
        blocklist: BlocklistSource,
        metrics: Metrics | None,
        trouble: StoreTrouble,
        to_send: Callable[[], None],
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._client = client
        self._cpu = cpu
        self._rules = rules
        self._blocklist = blocklist
        self._metrics = metrics
        self._trouble = trouble
        self._to_send = to_send
        self._articles: dict[int, asyncio.Task[None]] = {}
        self._queue: ArticleQueue[PendingEntry] = ArticleQueue()
        self._fresh: set[int] = set()  # entries found by this run's regular polls
        self._fetching: dict[str, int] = {}  # article fetches in flight per host
        self._fetch_limit = min(ARTICLE_FETCHES, config.http.max_connections)
        # Story grouping reads what earlier articles stored: one decision at a time, news first.
        self._deciding = Turns(1)
        self._feed_active: dict[int, int] = {}  # entries in progress per feed
        self._feed_limit = 2 * max(2, 2 * cpu.workers)
        # Entries in progress (fetching, or holding a fetched page until a worker is free)
        # beyond which only fresh ones start, and twice that beyond which none: neither a
        # backfill nor a burst of news holds hundreds of pages in memory.
        self._active_limit = self._fetch_limit + 4 * max(1, cpu.workers)
        self._arrivals: set[int] = set()  # entry ids of finished polls to read
        self._reader: asyncio.Task[None] | None = None
        # While a read of pending entries is under way: the entries that ended meanwhile,
        # which the read may still have seen pending (they must not be queued again).
        self._reads = 0
        self._ended: set[int] = set()
        self._refill: asyncio.Task[None] | None = None
        self._refill_after = 0.0
        self._renew_after = 0.0  # loop time of the next renewal of this replica's claims
        self._more_pending = False
        self._tried: set[int] | None = None  # entries started by `run --once`
        self._stopping = False

    def tasks(self) -> list[asyncio.Task[None]]:
        """The entries in progress."""
        return list(self._articles.values())

    def stop_queueing(self) -> None:
        """At a stop: start no more entries; the queued ones stay pending in the store."""
        # A poll finishing within the stop's grace must not queue (and start) more.
        self._stopping = True
        for task in (self._refill, self._reader):
            if task is not None:
                task.cancel()
        self._queue, self._more_pending = ArticleQueue(), False
        self._arrivals.clear()

    async def arrived(self, entry_ids: list[int], fresh: bool) -> None:
        """A poll found new entries (``fresh``: news, not a new feed's backfill): read them
        by id and queue them, without reading (or waiting behind) the whole backlog."""
        if self._stopping:
            return
        if fresh:
            self._fresh.update(entry_ids)
        if len(entry_ids) > PENDING_PER_FEED:  # a flood: its newest now, the rest later
            entry_ids = sorted(entry_ids)[-PENDING_PER_FEED:]
            self._more_pending = True
        if not fresh and len(self._queue) + len(self._arrivals) >= PENDING_BATCH:
            self._more_pending = True  # a big backfill: read from the store as the queue empties
            return
        self._arrivals.update(entry_ids)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_arrivals(), name="new entries")

    async def _read_arrivals(self) -> None:
        """Read the arrived entries, fresh ones first, in batches: the polls that finish
        during one read are read together by the next."""
        try:
            while self._arrivals and not self._stopping:
                ids = sorted(self._arrivals, key=lambda i: i not in self._fresh)[:ARRIVED_BATCH]
                self._arrivals.difference_update(ids)
                try:
                    await self._read_pending(len(ids), ids=ids)
                except StoreError as exc:  # they stay pending: the next round reads them
                    self._trouble.failed("new entries not read, read at the next round", exc)
                    self._more_pending = True
                except Exception:
                    log.exception("new entries not read; they are read at the next round")
                self._dispatch()
        finally:
            self._reader = None

    async def process_pending(self) -> None:
        """Queue the pending entries not already queued or in progress, and start the
        fetches the limits allow (see ArticleQueue for the order)."""
        if self._stopping:
            return
        await self._renew_claims()
        rows = await self._read_pending(PENDING_BATCH, per_feed=PENDING_PER_FEED)
        per_feed: dict[int, int] = {}
        for pending in rows:
            per_feed[pending.feed_id] = per_feed.get(pending.feed_id, 0) + 1
        # A full batch (or a feed at its share) means more wait in the store: read them
        # as soon as the queue runs low rather than at the next round.
        full = len(rows) >= PENDING_BATCH or any(n >= PENDING_PER_FEED for n in per_feed.values())
        self._more_pending = full
        self._dispatch()

    async def _renew_claims(self) -> None:
        """Replicas on PostgreSQL: claims last a lease, so renew those of the entries still
        queued or in progress here (four times a lease), or another replica would process
        them too. process_pending also runs at every refill: most calls have nothing to do."""
        now = asyncio.get_running_loop().time()
        if not self._db.store.shared or now < self._renew_after:
            return
        self._renew_after = now + self._config.store.lease / 4
        await self._db(self._db.store.renew_entries, [*self._queue.ids(), *self._articles])

    async def _read_pending(
        self, limit: int, *, per_feed: int | None = None, ids: list[int] | None = None
    ) -> list[PendingEntry]:
        """Read pending entries and queue those not queued, in progress or ended already."""
        self._reads += 1
        try:
            rows = await self._db(self._db.store.pending_entries, limit, per_feed=per_feed, ids=ids)
            if not self._stopping:
                for pending in rows:
                    self._enqueue(pending)
            return rows
        finally:
            self._reads -= 1
            if not self._reads:
                self._ended.clear()

    def _enqueue(self, pending: PendingEntry) -> None:
        entry_id = pending.id
        if entry_id in self._articles or entry_id in self._ended:
            return
        if entry_id not in (self._tried or ()):
            fresh = entry_id in self._fresh
            self._queue.add(entry_id, pending.feed_id, pending.entry.link, pending, fresh=fresh)

    def _dispatch(self) -> None:
        """Start queued entries while fetch slots are free; a busy host's entries wait in
        the queue, holding no slot, while other hosts' entries go ahead."""
        if self._stopping:
            return
        while sum(self._fetching.values()) < self._fetch_limit:
            active = len(self._articles)
            if active >= 2 * self._active_limit:
                break  # the next starts as one ends, fresh first
            full = active >= self._active_limit
            pending = self._queue.take(self._host_free, self._feed_free, fresh_only=full)
            if pending is None:
                break
            self._start(pending)
        now = asyncio.get_running_loop().time()
        low = len(self._queue) < PENDING_PER_FEED
        if self._more_pending and low and self._refill is None and now >= self._refill_after:
            self._refill_after = now + REFILL_SECONDS
            self._refill = asyncio.create_task(self._refill_queue(), name="article queue refill")

    def _start(self, pending: PendingEntry) -> None:
        self._feed_active[pending.feed_id] = self._feed_active.get(pending.feed_id, 0) + 1
        host = host_key(pending.entry.link)
        self._fetching[host] = self._fetching.get(host, 0) + 1
        task = asyncio.create_task(self._process(pending, host), name=f"article {pending.id}")
        self._articles[pending.id] = task
        if self._tried is not None:
            self._tried.add(pending.id)

    def _feed_free(self, feed_id: int) -> bool:
        # Enough to keep the workers busy, not so many that one feed's fetched pages queue
        # for the workers ahead of another feed's story.
        return self._feed_active.get(feed_id, 0) < self._feed_limit

    def _host_free(self, host: str) -> bool:
        return not host or self._fetching.get(host, 0) < self._config.http.max_per_host

    async def _refill_queue(self) -> None:
        try:
            await self.process_pending()
        except StoreError as exc:
            self._trouble.failed("article queue not refilled, retried next round", exc)
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

    async def drain(self) -> None:
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

        if pending.id in self._fresh:
            urgent()  # its worker job and its decision go ahead of the backfill's
        try:
            await self._process_entry(pending, fetched)
        except StoreError as exc:
            # Not the article's fault (disk full, read-only): it stays pending for a retry.
            self._trouble.failed("entries not recorded, kept pending for a retry", exc)
        except Exception:
            # A stop (CancelledError) is not caught: the entry stays pending for next start.
            log.exception(
                "feed %s: %r (%s): processing failed; entry %d is kept with state 'error'",
                pending.feed_name, pending.entry.title[:80], pending.entry.link, pending.id,
            )  # fmt: skip
            await self._db(self._db.store.mark_entry_failed, pending.id)
        finally:
            self._articles.pop(pending.id, None)
            if self._reads:
                self._ended.add(pending.id)
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
            published=entry.published or entry.updated,  # Atom requires only <updated>
            feed_name=pending.feed_name,
            feed_tags=pending.feed_tags,
            language_hint=entry.language,
            min_text_chars=self._config.articles.min_text_chars,
            categories=entry.categories,
            feed_author=entry.author,
        )
        # The pool hands out its workers, fresh entries' jobs first.
        processed = await self._cpu(
            process_entry, job, self._rules.rules, self._config.nlp, self._clock.now()
        )
        # Named as a user knows it: feed and title, then the link (or the internal id).
        named = f"feed {pending.feed_name}: {entry.title[:80]!r} ({entry.link or url})"
        if cut := processed.article.extra.get(PAGE_CAP):
            log.info("%s: %s", named, cut)
        if reason := processed.article.fallback_reason:  # else only alerts.jsonl would say
            source = processed.article.source.value.replace("-", " ")
            log.info("%s: page not used (%s); read the %s", named, reason, source)
        if self._metrics is not None:
            self._metrics.processed(
                processed.article.source.value, (m.rule for m in processed.matches)
            )
        await self._record(pending, url, processed)

    async def _fetch(self, link: str | None) -> tuple[bytes | None, str]:
        if not link:
            return None, "the entry has no link"
        return await fetch_article(self._client, url=link, settings=self._config.articles)

    async def _record(self, pending: PendingEntry, url: str, processed: Processed) -> None:
        # Story grouping reads what earlier articles stored: decide and record one at a time
        # (on PostgreSQL, across the replicas too).
        async with self._deciding, self._db.one_replica_at_a_time():
            now = self._clock.now()
            store = self._db.store
            since = now - timedelta(seconds=self._config.alerts.story_window)
            recent = await self._db(store.recent_stories, since)
            muted = frozenset(await self._db(store.active_mutes, now))
            counts = await self._db(store.alert_counts, now - timedelta(hours=1))
            ctx = context_from_config(self._config, now, muted, counts)
            # Only a match can alert: spare the other articles the term search.
            article, blocklist = processed.article, self._blocklist.blocklist
            reason = blocked(blocklist, article, url) if processed.matches else ""
            record = decide_article(
                processed,
                entry_id=pending.id,
                feed_id=pending.feed_id,
                url=url,
                recent=recent,
                ctx=ctx,
                settings=self._config.alerts,
                blocked=reason,
            )
            await self._db(store.record_article, record)
        self._trouble.recovered()
        _log_matches(record, processed.article.title)
        if record.alert_kind or record.story:
            self._to_send()


def _log_matches(record: ArticleRecord, title: str) -> None:
    for match, outcome in record.matches:
        # Muted and blocked matches are logged too: they leave no alert behind.
        held = outcome.outcome in ("muted", "blocked")
        log.info(
            "rule %s: %s (score %.1f): %s",
            match.rule,
            outcome.reason if held else outcome.outcome,
            match.score,
            title,
        )
