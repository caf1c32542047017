"""End-to-end latency: real corpus articles through the real daemon to the Telegram double.

    WATCHER_CORPUS=../shared/corpus .venv/bin/python bench/latency.py [--items 20]
        [--backfill-feeds 1000] [--runs 3] [--only steady|backfill] [--keep DIR]

Runs the real daemon (``python -m watcher run`` in a subprocess, with the example rules and
its worker pools) against a loopback feed, article pages and the Telegram Bot API double of
tests/botapi.py, all served from this process. The articles are real news articles from
corpus/news/articles.jsonl (read at run time) that the example rules match (the same ones
at every run: the first in file order). Three figures:

* first alert after start-up: the feed already holds one matching article when the daemon
  starts; time from starting the process, and from the first poll, to its sendMessage;
* steady state: once the daemon polls steadily, one matching article at a time at a random
  moment; time from the poll that first served it to its sendMessage (median, p90, max);
* during a backfill (``--backfill-feeds``, 0 skips it): a second daemon starts with that many
  more feeds of bench/feedserver.py (20 recent items each, 3 kept by the first-poll backfill),
  and a fresh matching article is published once the backfill polls are under way.

Each part runs ``--runs`` times (a new daemon and data directory each time); the last line
has the medians over the runs of every figure (and each run's value), the CPU model is in
the first. ``--keep DIR`` keeps the daemons' folders, with their logs, for a look at where
the time went.

Targets: median < 0.3 s, first alert after start < 2 s, fresh item during backfill < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    CORPUS,
    HERE,
    Item,
    LoopFeed,
    emit,
    free_port,
    machine,
    page_html,
    start_daemon,
    stop_daemon,
    wait_until,
    write_config,
)
from botapi import BotApiServer
from httpserver import HttpServer

MEDIAN_TARGET_S = 0.3
FIRST_TARGET_S = 2.0
BACKFILL_TARGET_S = 2.0
# Names the example rules (rules/venezuela.yaml, rules/ukraine-peace.yaml) are about: the
# articles mentioning them near the top are the candidates; only those that match are used.
MENTIONS = ("Maduro", "Venezuela", "Zelensky", "Putin", "Ukraine")


def corpus_articles(wanted: int) -> list[tuple[str, list[str]]]:
    """The first ``wanted`` corpus articles (title, paragraphs) the example rules match."""
    from watcher.config import NlpSettings
    from watcher.rules.schema import load_rules
    from watcher.rules.worker import EntryJob, process_entry

    rules = load_rules(HERE.parent / "rules")
    now = datetime.now(UTC)
    found: list[tuple[str, list[str]]] = []
    with (CORPUS / "news" / "articles.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            title, text = row.get("title") or "", row.get("text") or ""
            head = title + text[:1500]
            if row.get("lang") != "en" or not any(name in head for name in MENTIONS):
                continue
            paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
            job = EntryJob(
                url="http://127.0.0.1/a", html=page_html(title, paragraphs).encode(),
                fetch_error="", feed_title=title, feed_content="", feed_summary="",
                published=None, feed_name="Loop", feed_tags=(), language_hint="en",
                min_text_chars=300,
            )  # fmt: skip
            if process_entry(job, rules, NlpSettings(), now).matches:
                found.append((title, paragraphs))
                if len(found) == wanted:
                    break
    if len(found) < wanted:
        raise SystemExit(f"only {len(found)} matching corpus articles under {CORPUS}")
    return found


def publish(web: HttpServer, feed: LoopFeed, i: int, article: tuple[str, list[str]]) -> Item:
    title, paragraphs = article
    path = f"/news/{i}"
    web.route(path, page_html(title, paragraphs), headers={"Content-Type": "text/html"})
    item = Item(f"item-{i}", title, web.url(path), time.time())
    feed.add(item)
    return item


def wait_for_alert(bot: BotApiServer, link: str, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in bot.calls("sendMessage", ok=True):
            if link in (call.text or ""):
                return call.at
        time.sleep(0.002)
    raise SystemExit(f"no alert for {link} within {timeout:g} s")


def steady(
    folder: Path, articles: list[tuple[str, list[str]]], rng: random.Random
) -> dict[str, float]:
    """One steady-state run: the first alert after start-up, then one article at a time."""
    folder.mkdir(parents=True)
    with HttpServer() as web, BotApiServer() as bot:
        feed = LoopFeed(web, "/feed.xml")
        first = publish(web, feed, 0, articles[0])
        config = write_config(folder, [feed.url], bot_url=bot.base_url, metrics_port=free_port())
        started = time.monotonic()
        proc = start_daemon(config, token=bot.token)
        try:
            sent = wait_for_alert(bot, first.link)
            first_figures = {
                "first_alert_after_start_s": round(sent - started, 3),
                "first_poll_to_send_s": round(sent - feed.first_served[first.guid], 3),
            }
            emit({"bench": "latency", **first_figures, "target_s": FIRST_TARGET_S})
            wait_until(lambda: web.hits("/feed.xml") >= 3, 60, 0.05)
            latencies = []
            for i, article in enumerate(articles[1:], start=1):
                time.sleep(rng.uniform(0.5, 2.0))  # at a random point of the polling cycle
                item = publish(web, feed, i, article)
                sent = wait_for_alert(bot, item.link)
                latencies.append(sent - feed.first_served[item.guid])
                emit({"bench": "latency", "item": i, "poll_to_send_s": round(latencies[-1], 3)})
        finally:
            stop_daemon(proc)
    latencies.sort()
    spread = {
        "poll_to_send_median_s": round(statistics.median(latencies), 3),
        "poll_to_send_p90_s": round(latencies[round(0.9 * (len(latencies) - 1))], 3),
        "poll_to_send_max_s": round(latencies[-1], 3),
    }
    emit({"bench": "latency", "items": len(latencies), **spread, "target_s": MEDIAN_TARGET_S})
    return {**first_figures, **spread}


def backfill(folder: Path, feeds: int, article: tuple[str, list[str]]) -> dict[str, float]:
    """One backfill run: a fresh matching article published while ``feeds`` are backfilled."""
    folder.mkdir(parents=True)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "feedserver.py"), f"--feeds={feeds}", "--recent"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        farm = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        with HttpServer() as web, BotApiServer() as bot:
            feed = LoopFeed(web, "/feed.xml")
            urls = [feed.url, *(f"{farm}/feeds/{i}.xml" for i in range(feeds))]
            config = write_config(folder, urls, bot_url=bot.base_url, backfill_items=3)
            proc = start_daemon(config, token=bot.token)
            try:
                # Publish once a tenth of the farm has been polled: the backfill is queued.
                wait_until(lambda: _served(farm) >= feeds // 10, 300, 0.05)
                item = publish(web, feed, 1, article)
                sent = wait_for_alert(bot, item.link, 600)
                got = {
                    "fresh_poll_to_send_s": round(sent - feed.first_served[item.guid], 3),
                    "fresh_publish_to_send_s": round(
                        sent - (time.monotonic() - (time.time() - item.published)), 3
                    ),
                }
                emit(
                    {
                        "bench": "latency",
                        "backfill_feeds": feeds,
                        **got,
                        "target_s": BACKFILL_TARGET_S,
                    }
                )
            finally:
                stop_daemon(proc)
    finally:
        server.terminate()
        server.wait(10)
    return got


def _served(farm: str) -> int:
    with urllib.request.urlopen(f"{farm}/_stats", timeout=5) as reply:
        return int(reply.read().split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20, help="steady-state items to time")
    parser.add_argument("--backfill-feeds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each part; medians count")
    parser.add_argument(
        "--only", choices=("steady", "backfill"), help="run one part (default: both)"
    )
    parser.add_argument("--keep", type=Path, help="keep the daemons' folders (and logs) here")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    emit({"bench": "latency", "machine": machine(), "load": os.getloadavg()})
    articles = corpus_articles(args.items + 2)
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-latency-") as tmp:
        top = args.keep or Path(tmp)
        for run in range(args.runs):
            if args.only != "backfill":
                got = steady(
                    top / f"steady-{run}", articles[: args.items + 1], random.Random(args.seed)
                )
                for key, value in got.items():
                    figures.setdefault(key, []).append(value)
            if args.backfill_feeds and args.only != "steady":
                got = backfill(top / f"backfill-{run}", args.backfill_feeds, articles[-1])
                for key, value in got.items():
                    figures.setdefault(key, []).append(value)
    emit(
        {
            "bench": "latency",
            "runs": args.runs,
            "medians": {k: round(statistics.median(v), 3) for k, v in figures.items()},
            "all": figures,
            "targets_s": {
                "poll_to_send_median": MEDIAN_TARGET_S,
                "first_alert_after_start": FIRST_TARGET_S,
                "fresh_poll_to_send": BACKFILL_TARGET_S,
            },
            "load_after": os.getloadavg(),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
