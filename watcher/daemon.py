"""The daemon: lock, store, scheduler and signals around the pipeline; wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher import __version__
from watcher.bot.access import unrouted_warning
from watcher.bot.app import TelegramBot, bot_token
from watcher.channels.registry import configured_kinds
from watcher.clock import Clock, SystemClock
from watcher.config import Config, lease_warning, web_token
from watcher.errors import StoreError
from watcher.health import HEARTBEAT_NAME, Heartbeat, write_heartbeat
from watcher.lock import LOCK_NAME, DataDirLock, prepare_data_dir
from watcher.metrics import Metrics, MetricsServer, start_metrics_server
from watcher.pipeline import Pipeline, Pools
from watcher.pools import Spawned
from watcher.store import open_store
from watcher.store.runner import StoreRunner
from watcher.web import Backend, WebServer
from watcher.workers import CpuPool

log = logging.getLogger(__name__)

# In-flight work gets this long to finish after SIGTERM; the whole stop stays under 10 s.
_STOP_GRACE = 5.0
# Scheduled jobs (tick, health check, rules reload) get this long before they are cancelled.
_JOB_GRACE = 1.0
# Past this many seconds after SIGTERM the process exits whatever is still running (a thread
# stuck in a system call cannot be interrupted), so a stop always ends within 10 s.
STOP_DEADLINE = 9.5
# How often the scheduler looks for feeds that are due.
TICK_SECONDS = 5.0


@dataclass(frozen=True)
class RunOptions:
    once: bool = False
    tick: float = TICK_SECONDS


class Daemon:
    def __init__(
        self, config: Config, *, clock: Clock | None = None, spawned: Spawned | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        # Worker pools started before this module was imported (watcher.launch), or None.
        self._spawned = spawned
        self._stop = asyncio.Event()
        self._started = self.clock.now()
        # Scheduled jobs running now: a stop lets them end instead of cancelling them unstarted.
        self._jobs: set[asyncio.Task[None]] = set()
        # The running pipeline, once started (for the bot and for tests to look at).
        self.pipeline: Pipeline | None = None
        # The /metrics and /healthz endpoint while serving, when [metrics] enables it.
        self.metrics_server: MetricsServer | None = None
        # The Telegram command bot while serving, when a token is set and [telegram] bot is on.
        self.bot: TelegramBot | None = None
        # The web page while serving, when [web] enables it.
        self.web: WebServer | None = None
        # Whether this replica runs the once-only work (always, on SQLite).
        self._elected = False

    async def run(self, options: RunOptions) -> None:
        """Run until SIGTERM/SIGINT (or one cycle with ``once``); raises WatcherError on failure."""
        data_dir = prepare_data_dir(self.config.data_dir)
        if not options.once:
            # From the start: a SIGTERM while the models load still stops cleanly, with 0.
            self._install_signal_handlers()
        _note_missing_store(self.config)
        with DataDirLock(data_dir):
            # First: the workers load spaCy and the rules while the store opens (migrations)
            # and the pipeline is built, so the first article finds one ready sooner.
            # (Pools started early by watcher.launch are stopped by it if this fails.)
            pools = Pools.start(self.config, self._spawned)
            try:
                await self._run_with_pools(pools, options)
            finally:
                await asyncio.to_thread(pools.shutdown)  # done already, unless start-up failed

    async def _run_with_pools(self, pools: Pools, options: RunOptions) -> None:
        store = open_store(self.config.store_url, lease=self.config.store.lease)
        db = StoreRunner(store)
        try:
            await self._run_with_store(db, options, pools)
        finally:
            db.shutdown()
            store.close()
            log.info("watcher stopped")

    async def _run_with_store(self, db: StoreRunner, options: RunOptions, pools: Pools) -> None:
        run_id = await db(db.store.start_run, os.getpid(), __version__, self.clock.now())
        metrics = Metrics() if self.config.metrics.enabled and not options.once else None
        pipeline = await Pipeline.start(
            self.config, db, clock=self.clock, metrics=metrics, pools=pools
        )
        self.pipeline = pipeline
        try:
            log.info("%s", pipeline.summary())
            kinds = configured_kinds(self.config)
            rules = pipeline.rules.rules
            for warning in (
                unrouted_warning(self.config, rules, token="telegram" in kinds),
                lease_warning(self.config, kinds),
            ):
                if warning:
                    log.warning("%s", warning)
            if options.once:
                await pipeline.run_once()
                await db(db.store.count_cycle, run_id)
            elif not self._stop.is_set():
                await self._serve(pipeline, db, run_id, options)
        finally:
            await pipeline.aclose(grace=_STOP_GRACE)
            with contextlib.suppress(StoreError):  # nothing is lost: say what waits
                if left := await db(db.store.count_entries, "pending"):
                    entries = "entry" if left == 1 else "entries"
                    by = "by the other replicas or " if db.store.shared else ""
                    log.info(
                        "%d %s left pending: read %swhen watcher runs again", left, entries, by
                    )
            with contextlib.suppress(StoreError):  # hand leases back; else they just expire
                await db(db.store.leave, self.clock.now())
            await db(db.store.stop_run, run_id, self.clock.now())
            self._beat("stopped")

    async def _serve(
        self, pipeline: Pipeline, db: StoreRunner, run_id: int, opts: RunOptions
    ) -> None:
        if pipeline.metrics is not None:
            self.metrics_server = await start_metrics_server(
                self.config.metrics,
                pipeline.metrics,
                data_dir=self.config.data_dir,
                clock=self.clock,
                outbox=functools.partial(db, db.store.outbox_depth),
            )
        web_cpu = CpuPool(1) if self.config.web.enabled else None
        if web_cpu is not None:
            self.web = await self._start_web(pipeline, db, web_cpu)
        scheduler = AsyncIOScheduler(timezone="UTC")
        now = self.clock.now()
        scheduler.add_job(
            self._guard(self._beat_running, "heartbeat"),
            "interval",
            seconds=self.config.watcher.heartbeat_interval,
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guard(pipeline.tick, "poll tick"),
            "interval",
            seconds=opts.tick,
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        for job in pipeline.jobs():
            fn = self._if_elected(job.fn) if job.once else job.fn  # digests, feed health
            scheduler.add_job(self._guard(fn, job.name), job.trigger, **job.kwargs)
        elect = self._guard(functools.partial(self._elect, pipeline, db), "election")
        await elect()
        if db.store.shared:
            every = max(0.5, self.config.store.lease / 4)
            scheduler.add_job(elect, "interval", seconds=every, max_instances=1, coalesce=True)
        scheduler.start()
        pipeline.start_sending()
        shared = f", replica {db.store.holder.owner}" if db.store.shared else ""
        log.info(
            "watcher running (pid %d, config %s, store %s%s); stop with SIGTERM or Ctrl-C",
            os.getpid(),
            self.config.source or "built-in defaults",
            db.store.url,
            shared,
        )
        try:
            await self._stop.wait()
        finally:
            await self._stop_bot(pipeline)
            scheduler.pause()
            await self._settle_jobs()
            scheduler.shutdown(wait=False)
            pipeline.stop_sending()  # the round under way is let finish by pipeline.aclose
            if self.metrics_server is not None:
                await self.metrics_server.aclose()
            if self.web is not None:
                await self.web.aclose()
            if web_cpu is not None:
                await asyncio.to_thread(web_cpu.shutdown, cancel=True)
            await db(db.store.count_cycle, run_id)

    async def _elect(self, pipeline: Pipeline, db: StoreRunner) -> None:
        """Replicas on PostgreSQL: the elected one runs the bot (getUpdates), the admin
        messages and the once-only jobs; another takes over when it dies. SQLite: always."""
        self._elected = await db(db.store.lead)
        if db.store.shared:
            now = self.clock.now()
            await db(db.store.beat, now, os.getpid(), __version__, leader=self._elected)
        if self._elected and self.bot is None:
            self._start_bot(pipeline, db)
        elif not self._elected and self.bot is not None:
            log.warning("no longer the elected replica: stopping the Telegram bot")
            await self._stop_bot(pipeline)

    def _if_elected(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def elected_only() -> None:
            if self._elected:
                await fn()

        return elected_only

    async def _stop_bot(self, pipeline: Pipeline) -> None:
        bot, self.bot = self.bot, None
        if bot is not None:
            pipeline.set_notifier(None)
            await bot.stop()

    async def _start_web(self, pipeline: Pipeline, db: StoreRunner, cpu: CpuPool) -> WebServer:
        """Serve the web page in this loop; its store calls go through the same store thread,
        the tester explains through the pipeline's Explainer, and backtests run in the page's own
        one-worker pool, started on first use."""
        backend = Backend(
            self.config,
            db,
            self.clock,
            rules=lambda: pipeline.rules.rules,
            explainer=pipeline.explainer,
            cpu=cpu,
            token=web_token(self.config),
        )
        server = WebServer(backend)
        await server.start()
        return server

    def _start_bot(self, pipeline: Pipeline, db: StoreRunner) -> None:
        """Start the Telegram bot in this loop (it connects in the background)."""
        token = bot_token(self.config)
        if token is None:
            return
        self.bot = TelegramBot(
            self.config, token, db, pipeline, clock=self.clock, started=self._started
        )
        pipeline.set_notifier(self.bot.notify_admins)
        self.bot.start()

    async def _settle_jobs(self) -> None:
        """Let running jobs end (briefly), then cancel the rest; the scheduler then finds
        nothing to cancel, since a job task cancelled before it starts logs a traceback."""
        await asyncio.sleep(0)  # jobs submitted just now start, see the stop and return
        if self._jobs:
            _, late = await asyncio.wait(self._jobs, timeout=_JOB_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _guard(self, fn: Callable[[], Awaitable[None]], name: str) -> Callable[[], Awaitable[None]]:
        """A job that logs its failures instead of killing the scheduler's executor."""

        async def guarded() -> None:
            if self._stop.is_set():
                return
            task = asyncio.current_task()
            if task is not None:
                self._jobs.add(task)
            try:
                await fn()
            except asyncio.CancelledError:
                # A stop cancels jobs in flight: not an error (anything they handed to the
                # store thread still finishes).
                if not self._stop.is_set():
                    raise
            except StoreError as exc:  # disk full, read-only: one clear line, no traceback
                trouble = self.pipeline.store_trouble if self.pipeline else None
                if trouble is None:
                    log.error("%s failed; it will run again on schedule: %s", name, exc)
                else:
                    trouble.failed(f"{name} failed; it will run again on schedule", exc)
            except Exception:
                log.exception("%s failed; it will run again on schedule", name)
            finally:
                self._jobs.discard(task)

        return guarded

    async def _beat_running(self) -> None:
        """The periodic heartbeat: written in a thread (a slow disk must not hold the loop)
        by a job of the loop, which a stop lets end. As a plain function the scheduler ran
        it in its thread pool, and a stop cancelling one not yet started logged a traceback."""
        await asyncio.to_thread(self._beat, "running")

    def _beat(self, state: str) -> None:
        beat = Heartbeat(
            os.getpid(),
            self.clock.now(),
            self._started,
            self.config.watcher.heartbeat_interval,
            state,
        )
        try:
            write_heartbeat(self.config.data_dir, beat)
        except OSError as exc:
            what = f"cannot write heartbeat in {self.config.data_dir}"
            if self.pipeline is None:
                log.warning("%s: %s", what, exc.strerror)
            else:  # a full or read-only disk: not a line every heartbeat
                self.pipeline.store_trouble.failed(what, exc.strerror or str(exc))

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            return
        log.info("received %s: finishing in-flight work, then stopping", sig.name)
        self._stop.set()
        _exit_by_deadline(STOP_DEADLINE)

    def stop(self) -> None:
        self._stop.set()


def _note_missing_store(config: Config) -> None:
    """Say so when the SQLite store is gone from a data directory watcher has used before
    (its heartbeat or lock file is there): starting afresh is then news, not routine."""
    if config.store.url:
        return
    database = config.data_dir / "watcher.db"
    traces = [config.data_dir / name for name in (HEARTBEAT_NAME, LOCK_NAME)]
    used = next((path for path in traces if path.exists()), None)
    if used is not None and not database.exists():
        log.warning(
            "store %s is missing, though %s shows watcher ran here before; starting with an "
            "empty store (restore the file from a backup to keep feeds' history and alerts)",
            database,
            used.name,
        )


def _exit_by_deadline(seconds: float) -> None:
    """Exit with 0 after ``seconds`` if the graceful stop has not ended the process by then.

    SQLite in WAL mode loses nothing committed, and pending entries are processed at the
    next start; what cannot be waited for is a thread stuck in a system call."""

    def watchdog() -> None:
        time.sleep(seconds)
        log.error("stop took over %.1f s; exiting now (pending work resumes at start)", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        os._exit(0)

    threading.Thread(target=watchdog, name="stop deadline", daemon=True).start()


def run_daemon(
    config: Config,
    options: RunOptions,
    *,
    clock: Clock | None = None,
    spawned: Spawned | None = None,
) -> None:
    asyncio.run(Daemon(config, clock=clock, spawned=spawned).run(options))
