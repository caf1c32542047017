"""Soak: 10,000 articles through the whole daemon and delivery, watching its memory.

    .venv/bin/python bench/soak.py [--articles 10000] [--feeds 10] [--workers 0]

Runs the real daemon (``python -m watcher run`` in a subprocess: example rules, spaCy model,
its worker pool, SQLite store, metrics endpoint) against loopback feeds and pages and the
Telegram Bot API double, all served from this process. Items are published round-robin to
the feeds as fast as the daemon takes them (each feed keeps at most 20 items the daemon has
not seen yet, and at most 100 articles wait to be processed). The pages are the real news
pages of ../shared/corpus/articles, reused under new URLs (synthetic pages when the corpus is
absent), and every 20th item is a synthetic article the venezuela rule matches, so about 5 %
of the articles alert (more where corpus pages match too).

Alerts go to one private Telegram chat, which watcher paces at Telegram's limit of one
message per second per chat: when alerts come faster, they queue in the outbox and the run
ends when it is empty. Every second the bench samples the RSS of the daemon process and of
each worker process. At the end it prints the processing throughput, the time until the
outbox was empty, the alerts the double received, the daemon's own metrics and CPU time, the
store integrity check, and memory: peak RSS per process and for all of them together, and the
growth from the warm-up point (10 % of the articles) to the end.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from _common import (
    CORPUS,
    Item,
    LoopFeed,
    cpu_seconds,
    descendants,
    emit,
    free_port,
    machine,
    metric_total,
    page_html,
    pss_mb,
    rss_mb,
    scrape,
    start_daemon,
    stop_daemon,
    wait_until,
    write_config,
)
from botapi import BotApiServer
from httpserver import HttpServer
from latency import matching_article, other_article

MATCH_EVERY = 20
FEED_WINDOW = 40
UNSEEN_PER_FEED = 20  # well inside the window, so no item scrolls out unseen
MAX_BACKLOG = 100
TARGET_GROWTH_MB = 50
TARGET_PEAK_MB = 500


def page_bodies() -> tuple[str, list[bytes]]:
    """The pages to reuse: real ones from the corpus when present."""
    import gzip

    articles = CORPUS / "articles"
    real = [
        gzip.decompress(p.read_bytes()) for p in sorted(articles.glob("scrapinghub_aeb/html/*.gz"))
    ]
    real += [p.read_bytes() for p in sorted(articles.glob("newspaper/html/*.html"))]
    if real:
        return "corpus", real
    return "synthetic", [page_html(*other_article(i)).encode() for i in range(50)]


class Publisher:
    """Adds items to the feeds, one page per item, as fast as the daemon keeps up."""

    def __init__(self, web: HttpServer, feeds: list[LoopFeed], pages: list[bytes]) -> None:
        self.web, self.feeds = web, feeds
        self._pages = itertools.cycle(pages)
        self._next_feed = itertools.cycle(range(len(feeds)))
        self._published: list[list[str]] = [[] for _ in feeds]
        self.count = 0
        self.matching = 0

    def publish(self, limit: int, processed: int) -> None:
        while self.count < limit and self.count - processed < MAX_BACKLOG:
            index = next(self._next_feed)
            feed = self.feeds[index]
            unseen = sum(g not in feed.first_served for g in self._published[index][-50:])
            if unseen >= UNSEEN_PER_FEED:
                return
            self._publish(feed, index)

    def _publish(self, feed: LoopFeed, index: int) -> None:
        i = self.count
        path = f"/a/{i}"
        if i % MATCH_EVERY == 0:
            title, paragraphs = matching_article(i)
            body = page_html(title, paragraphs).encode()
            self.matching += 1
        else:
            title, body = f"Story {i}", next(self._pages)
        self.web.route(path, body, headers={"Content-Type": "text/html"})
        guid = f"soak-{i}"
        feed.add(Item(guid, title, self.web.url(path), time.time()))
        self._published[index].append(guid)
        self.count += 1


class Sample(NamedTuple):
    articles: int  # processed so far
    daemon: float  # RSS of the daemon's main process, MB
    total: float  # RSS of it and its workers together, MB
    total_pss: float  # the same as PSS: shared pages (libraries) counted once
    workers: dict[int, float]  # RSS by worker pid, MB


class Memory:
    """RSS samples of the daemon and of its workers, with the articles processed so far."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[Sample] = []

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the daemon's main process, of its workers together, and of
        this process (the loopback servers), which shares the machine with them."""
        workers = sum(cpu_seconds(p) for p in descendants(self.pid))
        return {
            "daemon": round(cpu_seconds(self.pid), 1),
            "workers": round(workers, 1),
            "bench_servers": round(time.process_time(), 1),
        }

    def sample(self, processed: int) -> None:
        pids = descendants(self.pid)
        workers = {p: rss_mb(p) for p in pids}
        main = rss_mb(self.pid)
        pss = sum(pss_mb(p) for p in [self.pid, *pids])
        self.samples.append(Sample(processed, main, main + sum(workers.values()), pss, workers))

    def report(self, warm_at: int) -> dict[str, Any]:
        warm = next((s for s in self.samples if s.articles >= warm_at), self.samples[0])
        end = self.samples[-1]
        worker = max((max(s.workers.values(), default=0.0) for s in self.samples), default=0.0)
        return {
            "peak_rss_mb": {
                "daemon": round(max(s.daemon for s in self.samples), 1),
                "largest_worker": round(worker, 1),
                "all_processes": round(max(s.total for s in self.samples), 1),
                "all_processes_pss": round(max(s.total_pss for s in self.samples), 1),
            },
            "rss_mb_at_warm_up": {"articles": warm.articles, "daemon": round(warm.daemon, 1),
                                  "all_processes": round(warm.total, 1)},
            "rss_mb_at_end": {"articles": end.articles, "daemon": round(end.daemon, 1),
                              "all_processes": round(end.total, 1)},
            "growth_mb": {"daemon": round(end.daemon - warm.daemon, 1),
                          "all_processes": round(end.total - warm.total, 1)},
        }  # fmt: skip


def _processed(port: int) -> tuple[int, dict[str, float]]:
    try:
        metrics = scrape(port)
    except OSError:
        return 0, {}
    return int(metric_total(metrics, "watcher_articles_processed_total")), metrics


def soak(folder: Path, articles: int, feeds_n: int, timeout: float, workers: int) -> None:
    kind, pages = page_bodies()
    with HttpServer() as web, BotApiServer() as bot:
        feeds = [LoopFeed(web, f"/feed/{i}.xml", window=FEED_WINDOW) for i in range(feeds_n)]
        port = free_port()
        config = write_config(
            folder,
            [f.url for f in feeds],
            bot_url=bot.base_url,
            metrics_port=port,
            extra=f"[articles]\nworkers = {workers}\n",
        )
        proc = start_daemon(config, token=bot.token)
        publisher = Publisher(web, feeds, pages)
        memory = Memory(proc.pid)
        emit({"bench": "soak", "articles": articles, "feeds": feeds_n, "workers": workers,
              "pages": kind, "distinct_pages": len(pages),
              "match_every": MATCH_EVERY})  # fmt: skip
        try:
            if not wait_until(lambda: _processed(port)[1], 120, 0.1):
                raise SystemExit(f"metrics never answered; see {config.with_suffix('.log')}")
            started = time.monotonic()
            metrics, all_processed = _run(publisher, memory, port, articles, started + timeout)
            elapsed = (all_processed - started, time.monotonic() - started)
            memory.sample(int(metric_total(metrics, "watcher_articles_processed_total")))
            cpu = memory.cpu()
        finally:
            code = stop_daemon(proc, timeout=30)
        sent = len(bot.calls("sendMessage", ok=True))
    outcome = Outcome(metrics, elapsed, sent, code, folder / "data" / "watcher.db", cpu)
    _report(publisher, memory, outcome, articles)


def _run(
    publisher: Publisher, memory: Memory, port: int, articles: int, deadline: float
) -> tuple[dict[str, float], float]:
    """Until every article is processed and delivered: the last metrics, and when the
    processing (not the delivery) was done."""
    processed, metrics, last_sample, all_processed = 0, {}, 0.0, 0.0
    for tick in itertools.count():
        publisher.publish(articles, processed)
        if tick % 5 == 0:
            now_processed, now_metrics = _processed(port)
            if now_metrics:  # (a scrape that failed keeps the last figures)
                processed, metrics = now_processed, now_metrics
            if processed >= articles and not all_processed:
                all_processed = time.monotonic()
            done = processed >= articles and metric_total(metrics, "watcher_outbox_depth") == 0
            if done or time.monotonic() > deadline:
                return metrics, all_processed or time.monotonic()
        if time.monotonic() - last_sample >= 1.0:
            memory.sample(processed)
            last_sample = time.monotonic()
        time.sleep(0.1)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Outcome:
    metrics: dict[str, float]  # the daemon's last /metrics
    elapsed: tuple[float, float]  # until every article was processed, and delivered
    sent: int  # sendMessage calls the Telegram double answered
    exit_code: int
    db: Path
    cpu_seconds: dict[str, float]


def _report(publisher: Publisher, memory: Memory, outcome: Outcome, articles: int) -> None:
    metrics, elapsed = outcome.metrics, outcome.elapsed
    processed = int(metric_total(metrics, "watcher_articles_processed_total"))
    conn = sqlite3.connect(outcome.db)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        entries = conn.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall()
    finally:
        conn.close()
    latency_n = metric_total(metrics, "watcher_alert_latency_seconds_count")
    latency_sum = metric_total(metrics, "watcher_alert_latency_seconds_sum")
    emit({"bench": "soak", "published": publisher.count, "processed": processed,
          "processing_s": round(elapsed[0], 1), "articles_per_s": round(processed / elapsed[0], 2),
          "until_outbox_empty_s": round(elapsed[1], 1),
          "matching_published": publisher.matching, "telegram_messages": outcome.sent,
          "daemon_metrics": {
              "polls": metric_total(metrics, "watcher_polls_total"),
              "rule_matches": metric_total(metrics, "watcher_rule_matches_total"),
              "alerts_sent": metric_total(metrics, "watcher_alerts_sent_total"),
              "alerts_failed": metric_total(metrics, "watcher_alerts_failed_total"),
              "outbox_depth": metric_total(metrics, "watcher_outbox_depth"),
              "mean_first_seen_to_delivery_s": round(latency_sum / max(latency_n, 1), 3),
          },
          "cpu_seconds": outcome.cpu_seconds,
          "entries": dict(entries), "integrity": integrity,
          "exit_code": outcome.exit_code})  # fmt: skip
    mem = memory.report(warm_at=max(articles // 10, 100))
    mem["targets_mb"] = {"growth": TARGET_GROWTH_MB, "peak_per_process": TARGET_PEAK_MB}
    mem["met"] = (
        mem["growth_mb"]["all_processes"] < TARGET_GROWTH_MB
        and max(mem["peak_rss_mb"]["daemon"], mem["peak_rss_mb"]["largest_worker"]) < TARGET_PEAK_MB
    )
    emit({"bench": "soak", **mem})
    emit({"bench": "soak", "rss_series": list(_thin(memory.samples, 20))})


def _thin(samples: list[Sample], keep: int) -> Iterator[list[float]]:
    """About ``keep`` evenly spaced samples: (articles, daemon MB, all processes MB)."""
    step = max(1, len(samples) // keep)
    for s in samples[::step]:
        yield [s.articles, round(s.daemon, 1), round(s.total, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000, help="articles (10000)")
    parser.add_argument("--feeds", type=int, default=10, help="loopback feeds (10)")
    parser.add_argument("--workers", type=int, default=0, help="[articles] workers (0: cores)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (log, store)")
    args = parser.parse_args()
    emit({"bench": "soak", "machine": machine()})
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        soak(args.keep, args.articles, args.feeds, args.timeout, args.workers)
        return
    with tempfile.TemporaryDirectory(prefix="watcher-bench-soak-") as tmp:
        soak(Path(tmp), args.articles, args.feeds, args.timeout, args.workers)


if __name__ == "__main__":
    sys.exit(main())
