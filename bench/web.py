"""Web page render time over a store with 10,000 alerted stories.

    .venv/bin/python bench/web.py [--stories 10000] [--runs 15]

Fills a fresh SQLite store the way the pipeline does (each story one record_article
transaction: article, matches, story, alert, two deliveries; one in five stories gets a
second source; 40 feeds with 14 days of entries), serves the page on 127.0.0.1 exactly as the
daemon does (store calls on the store thread), and requests each page ``--runs`` times.
Prints per page the server time (the Server-Timing header: store queries plus rendering)
and the client-side wall time, median and max, in milliseconds. Target: under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from _common import emit, machine
from test_web import NOW, record_story, serve

from watcher.config import FeedConfig
from watcher.store import Store
from watcher.store.feeds import PollSuccess
from watcher.types import Entry, NewEntry

PAGES = [
    "/stories",
    "/stories?page=150",
    "/stories?rule=ukraine-peace",
    "/stories?language=es&priority=critical",
    "/stories?since=2026-01-01&until=2026-01-07",
    "/search?q=Caracas",
    "/search?q=tregua+Zelensky",
    "/rules",
    "/feeds",
    "/tester",
]
FEEDS = 40


def fill(store: Store, stories: int) -> None:
    """``stories`` alerted stories over 30 days, rules and languages mixed, plus feeds."""
    joined = 0
    for i in range(stories):
        when = NOW - timedelta(minutes=i * 30 * 24 * 60 / stories)
        if i % 4 == 3:
            record_story(
                store,
                i,
                rule="ukraine-peace",
                title=f"Conversaciones de paz {i}",
                text=f"Zelensky habló de la tregua {i}. Rusia respondió en Moscú.",
                language="es",
                priority="critical",
                feed=f"Diario {i % 7}",
                now=when,
            )
        else:
            record_story(store, i, now=when, feed=f"Outlet {i % 13}")
        if i % 5 == 4:
            record_story(
                store, stories + joined, now=when, story_id=i + 1
            )  # stories are numbered in order
            joined += 1
    _feeds(store)


def _feeds(store: Store) -> None:
    configs = [
        FeedConfig(url=f"https://feed{n}.example/rss", name=f"Feed {n}") for n in range(FEEDS)
    ]
    rows = store.sync_feeds(configs, NOW - timedelta(days=30))
    for row in rows:
        for day in range(14):
            when = NOW - timedelta(days=day)
            new = [
                NewEntry(
                    Entry(
                        f"{row.id}-{day}-{k}",
                        f"https://x.example/{row.id}/{day}/{k}",
                        "T",
                        "",
                        "",
                        "",
                        when,
                        None,
                        "en",
                    ),
                    (f"guid:{row.id}-{day}-{k}",),
                    f"fp{row.id}-{day}-{k}",
                )
                for k in range(row.id % 6)
            ]
            poll = PollSuccess(when, when + timedelta(minutes=15), None, None, None, new=new)
            store.record_poll_success(row.id, poll)
        if row.id % 9 == 0:
            store.record_poll_failure(row.id, NOW, "HTTP 503", NOW + timedelta(hours=1))


async def measure(base: str, runs: int) -> list[dict[str, object]]:
    out = []
    async with aiohttp.ClientSession() as session:
        for path in PAGES:
            server, wall = [], []
            for _ in range(runs):
                started = time.perf_counter()
                async with session.get(base + path) as r:
                    await r.read()
                    assert r.status == 200, (path, r.status)
                    timing = r.headers["Server-Timing"]
                wall.append((time.perf_counter() - started) * 1000)
                server.append(float(timing.split("dur=")[1]))
            out.append(
                {
                    "page": path,
                    "server_ms_median": round(statistics.median(server), 1),
                    "server_ms_max": round(max(server), 1),
                    "wall_ms_median": round(statistics.median(wall), 1),
                }
            )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    emit({"machine": machine()})
    with tempfile.TemporaryDirectory(prefix="watcher-bench-web-") as tmp:
        async with serve(Path(tmp), populate=False) as site:
            started = time.perf_counter()
            await asyncio.to_thread(fill, site.store, args.stories)
            emit(
                {"filled_stories": args.stories, "fill_s": round(time.perf_counter() - started, 1)}
            )
            for row in await measure(site.base, args.runs):
                emit(row)


if __name__ == "__main__":
    asyncio.run(main())
