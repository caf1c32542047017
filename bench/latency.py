"""End-to-end latency: a loopback feed gains a matching item; how long until Telegram has it.

    .venv/bin/python bench/latency.py [--items 20]

Runs the real daemon (``python -m watcher run`` in a subprocess, with the example rules and
its worker pool) against a loopback feed, article pages and the Telegram Bot API double of
tests/botapi.py, all served from this process. Once the daemon polls steadily, it adds one
matching item at a time (a synthetic article about Venezuela, each different) at a random
moment and waits for its alert. For each item it prints the time from the poll that first
served the item (the request's arrival at the feed server) to the arrival of the alert's
sendMessage at the Bot API double, both on this process's monotonic clock; then the median,
90th percentile and maximum against the 2 s target, and what the daemon's own
``watcher_alert_latency_seconds`` histogram (entry first seen to delivery) says.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    Item,
    LoopFeed,
    emit,
    free_port,
    machine,
    page_html,
    scrape,
    start_daemon,
    stop_daemon,
    wait_until,
    write_config,
)
from botapi import BotApiServer
from httpserver import HttpServer

TARGET_S = 2.0
CITIES = ["Caracas", "Maracaibo", "Valencia", "Barquisimeto", "Maracay", "Ciudad Guayana"]


def matching_article(i: int) -> tuple[str, list[str]]:
    """A synthetic article (written for this benchmark) that the venezuela rule matches."""
    city = CITIES[i % len(CITIES)]
    ships = 3 + i
    title = f"Maduro puts troops on alert in {city} as {ships} US warships near Venezuela"
    return title, [
        f"Venezuelan President Nicolás Maduro ordered troops in {city} onto alert on Tuesday "
        f"after the United States moved {ships} warships closer to the Venezuelan coast.",
        "Maduro told a rally that Venezuela would defend its sovereignty against any attack, "
        "while the Venezuelan government asked regional partners to condemn the deployment.",
        f"US officials said the ships, the {ships}th deployment this season, are part of an "
        "operation against drug trafficking and denied plans for a strike on Venezuela.",
        "Opposition leaders in Caracas urged both governments to open negotiations before the "
        "standoff turns into a military clash that neither side could contain.",
    ]


def other_article(i: int) -> tuple[str, list[str]]:
    return f"City council approves new bicycle lanes, plan {i}", [
        "The city council approved a network of protected bicycle lanes on Monday, after two "
        "years of consultation with residents, shop owners and delivery companies.",
        "Work on the first lanes starts in spring; the council expects the network to be "
        "finished within three years and to cut car traffic in the centre by a fifth.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20, help="matching items to time (20)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    emit({"bench": "latency", "machine": machine()})
    with (
        tempfile.TemporaryDirectory(prefix="watcher-bench-latency-") as tmp,
        HttpServer() as web,
        BotApiServer() as bot,
    ):
        samples = run(Path(tmp), web, bot, args.items, rng)
    report(samples)


def _publish(web: HttpServer, feed: LoopFeed, i: int, matching: bool) -> Item:
    title, paragraphs = (matching_article if matching else other_article)(i)
    path = f"/news/{'m' if matching else 'o'}{i}"
    web.route(path, page_html(title, paragraphs), headers={"Content-Type": "text/html"})
    item = Item(f"item-{path}", title, web.url(path), time.time())
    feed.add(item)
    return item


def run(
    folder: Path, web: HttpServer, bot: BotApiServer, items: int, rng: random.Random
) -> list[dict[str, float]]:
    feed = LoopFeed(web, "/feed.xml")
    _publish(web, feed, 0, matching=False)
    port = free_port()
    config = write_config(folder, [feed.url], bot_url=bot.base_url, metrics_port=port)
    proc = start_daemon(config, token=bot.token)
    samples = []
    try:
        # Steady state: the old item processed, a few polls done, the pool warm.
        if not wait_until(lambda: web.hits("/feed.xml") >= 3 and web.hits("/news/o0"), 120, 0.05):
            raise SystemExit(f"the daemon did not poll; see {config.with_suffix('.log')}")
        for i in range(1, items + 1):
            time.sleep(rng.uniform(0.5, 2.0))  # at a random point of the polling cycle
            item = _publish(web, feed, i, matching=True)
            sent = _wait_for_alert(bot, item.link)
            if sent is None:
                raise SystemExit(f"no alert for {item.link}; see {config.with_suffix('.log')}")
            samples.append(
                {
                    "poll_to_send_s": sent - feed.first_served[item.guid],
                    "publish_to_send_s": sent - _monotonic_of(item.published),
                }
            )
            emit(
                {"bench": "latency", "item": i, **{k: round(v, 3) for k, v in samples[-1].items()}}
            )
        metrics = scrape(port)
    finally:
        stop_daemon(proc)
    count = metrics.get("watcher_alert_latency_seconds_count{channel=telegram}", 0)
    total = metrics.get("watcher_alert_latency_seconds_sum{channel=telegram}", 0)
    mean = round(total / count, 3) if count else None
    emit({"bench": "latency", "daemon_histogram": {"count": count, "mean_s": mean}})
    return samples


def _monotonic_of(wall: float) -> float:
    return time.monotonic() - (time.time() - wall)


def _wait_for_alert(bot: BotApiServer, link: str, timeout: float = 60.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in bot.calls("sendMessage", ok=True):
            if link in (call.text or ""):
                return call.at
        time.sleep(0.002)
    return None


def report(samples: list[dict[str, float]]) -> None:
    latencies = sorted(s["poll_to_send_s"] for s in samples)
    p90 = latencies[min(len(latencies) - 1, round(0.9 * (len(latencies) - 1)))]
    emit(
        {
            "bench": "latency",
            "items": len(latencies),
            "poll_to_send_s": {
                "median": round(statistics.median(latencies), 3),
                "p90": round(p90, 3),
                "max": round(latencies[-1], 3),
            },
            "publish_to_send_median_s": round(
                statistics.median(s["publish_to_send_s"] for s in samples), 3
            ),
            "target_s": TARGET_S,
            "met": latencies[-1] < TARGET_S,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
