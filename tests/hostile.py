"""Hostile loopback sites for the fault suite and bench/faults.py: a feed that suddenly
publishes thousands of items, and a site whose article pages never answer.

    flood = FloodSite(HttpServer(), items=10_000)    # .feed_url; .go() starts the flood
    silent = SilentSite(HttpServer(), items=40)      # .feed_url; .go(); pages never answer
    heavy = HeavySite(HttpServer(), items=4)         # pages that keep a worker busy
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

from botapi import BotApiServer
from daemonproc import FAST_NLP, DaemonProcess, wait_for
from feedstream import FeedStream, rule_yaml
from httpserver import HttpServer, RecordedRequest, Reply

_FILLER = (
    "The county weather office said the rain would ease by the evening. Farmers in the valley "
    "welcomed the news after a dry month, and the market reopened its covered stalls. "
)


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """An RSS document of ``(guid, title, link)`` items."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link>"
        f"<guid isPermaLink='false'>{escape(guid)}</guid></item>"
        for guid, t, link in items
    )
    channel = f"<channel><title>{escape(title)}</title>{body}</channel>"
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0">{channel}</rss>'.encode()


def _conditional(request: RecordedRequest, body: bytes) -> Reply:
    """The feed, or 304 Not Modified when the client has it (as real feeds answer)."""
    etag = f'"{hash(body):x}"'
    if request.header("If-None-Match") == etag:
        return Reply(304, {"ETag": etag}, b"")
    return Reply(200, {"Content-Type": "application/rss+xml", "ETag": etag}, body)


class FloodSite:
    """A feed with one item until ``go()``, then ``items`` more at once; each item's page
    answers at once with a short article that matches no rule."""

    def __init__(self, server: HttpServer, *, items: int) -> None:
        self.server = server
        self.started = threading.Event()
        one = [("calm-0", "Calm day in the valley", server.url("/p?n=0"))]
        many = [
            (f"flood-{n}", f"Valley notice {n}", server.url(f"/p?n={n}"))
            for n in range(1, items + 1)
        ]
        self._calm, self._flood = rss("Flood", one), rss("Flood", one + many[::-1])
        self.feed_url = server.route_handler("/feed.xml", self._feed)
        server.route_handler("/p", self._page)

    def go(self) -> None:
        self.started.set()

    def pages_served(self) -> int:
        return self.server.hits("/p")

    def _feed(self, request: RecordedRequest) -> Reply:
        return _conditional(request, self._flood if self.started.is_set() else self._calm)

    def _page(self, request: RecordedRequest) -> Reply:
        title = f"Valley notice {request.path}"
        article = f"<article><h1>{escape(title)}</h1><p>{_FILLER * 4}</p></article>"
        html = f"<html><body>{article}</body></html>"
        return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


class SilentSite:
    """A feed with no items until ``go()``, then ``items`` whose pages never answer (the
    handler waits until the server closes)."""

    def __init__(self, server: HttpServer, *, items: int) -> None:
        self.server = server
        self.started = threading.Event()
        listed = [
            (f"silent-{n}", f"Quiet report {n}", server.url(f"/s?n={n}")) for n in range(items)
        ]
        self._empty, self._full = rss("Silent", []), rss("Silent", listed)
        self.feed_url = server.route_handler("/feed.xml", self._feed)
        server.route_handler("/s", self._page)

    def go(self) -> None:
        self.started.set()

    def in_flight(self) -> int:
        return self.server.hits("/s")

    def _feed(self, request: RecordedRequest) -> Reply:
        return _conditional(request, self._full if self.started.is_set() else self._empty)

    def _page(self, _: RecordedRequest) -> Reply:
        self.server.stopping.wait(600)
        return Reply(503, {}, b"")


# A rule whose matching work grows with the mentions, and a page of nothing but mentions.
HEAVY_RULE = """name: maduro
actors:
  Nicolás Maduro:
    aliases: [Maduro]
    exclude: [plátano maduro, maduro plantain]
match:
  any: [Nicolás Maduro]
"""


class HeavySite:
    """A feed of ``items`` whose pages are ``mentions`` repetitions of one name: work for a
    worker process that (before issue 14) took minutes per page."""

    def __init__(self, server: HttpServer, *, items: int, mentions: int = 150_000) -> None:
        self.server = server
        page = f"<html><body><h1>t</h1><p>{'Maduro ' * mentions}</p></body></html>".encode()
        listed = [(f"heavy-{i}", f"Maduro {i}", server.url(f"/page/{i}")) for i in range(items)]
        self.feed_url = server.route("/feed.xml", rss("Heavy", listed))
        for i in range(items):
            server.route(f"/page/{i}", page, headers={"Content-Type": "text/html"})

    def pages_served(self) -> int:
        return sum(self.server.hits(f"/page/{i}") for i in range(100))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_child(children: list[int]) -> bool:
    """Whether one of ``children`` burns CPU now (sampled over half a second). A tenth of a
    core is enough: with two suites on the 2 cores a busy worker gets less than half of one."""
    before = {pid: cpu_seconds(pid) for pid in children}
    time.sleep(0.5)
    return any(cpu_seconds(pid) - cpu > 0.05 for pid, cpu in before.items())


def heavy_config(tmp_path: Path, feed_url: str) -> Path:
    """A daemon with one worker process polling the HeavySite feed at ``feed_url``."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "maduro.yaml").write_text(HEAVY_RULE, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "data"
heartbeat_interval = "0.5s"
[http]
allow_private_addresses = true
[polling]
tick = "0.5s"
backfill_items = 100
[articles]
workers = 1
{FAST_NLP}
[console]
enabled = false
jsonl = false
[[feeds]]
url = "{feed_url}"
name = "Heavy"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Stopped:
    code: int
    seconds: float  # from SIGTERM to the process's exit
    workers: list[int]  # its worker processes at the SIGTERM
    log: str


def stop_with_busy_worker(tmp_path: Path, server: HttpServer) -> Stopped:
    """Start the daemon on a HeavySite, SIGTERM it while a worker is busy, time the exit."""
    # Enough pages that a worker is still busy when a loaded machine gets round to looking
    # (8 took 10 s, and a sampler starved of CPU missed them all).
    site = HeavySite(server, items=40)
    config = heavy_config(tmp_path, site.feed_url)
    data = tmp_path / "data"
    with DaemonProcess.start(config, token="", log=tmp_path / "log", data_dir=data) as daemon:
        daemon.wait_running(timeout=60)
        wait_for(lambda: site.pages_served() > 0, 60, "an article fetch", daemon)
        wait_for(lambda: busy_child(daemon.children()), 60, "a busy worker", daemon)
        workers = daemon.children()
        started = time.monotonic()
        code = daemon.stop(timeout=60)
        took = time.monotonic() - started
    return Stopped(code, took, workers, daemon.output())


def queue_config(tmp_path: Path, bot: BotApiServer, feeds: dict[str, str]) -> Path:
    """A daemon polling ``feeds`` (name -> URL) every second, alerting on the Bot API double."""
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "lighthouses.yaml").write_text(rule_yaml(), encoding="utf-8")
    listed = "".join(f'[[feeds]]\nurl = "{url}"\nname = "{name}"\n' for name, url in feeds.items())
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "data"
heartbeat_interval = "0.5s"
[http]
allow_private_addresses = true
[polling]
interval = "1s"
min_interval = "0.5s"
jitter = 0
tick = "0.5s"
[articles]
workers = 2
{FAST_NLP}
[alerts]
rate_limit = 0
[telegram]
api_base_url = "{bot.base_url}"
chats = ["1001"]
bot = false
[console]
enabled = false
jsonl = false
{listed}""",
        encoding="utf-8",
    )
    return path


@dataclass
class UnderAttack:
    latency: float  # seconds from the story's publication to its alert
    peak_tree_rss_mb: float  # the daemon and its workers, sampled every 0.2 s


def alert_latency_under_attack(
    tmp_path: Path, bot: BotApiServer, *, flood: int, silent: int
) -> UnderAttack:
    """How long a matching story on a healthy feed takes from publication to its alert
    while ``silent`` article pages never answer and a feed has just published ``flood``
    items; and the daemon tree's peak RSS meanwhile."""
    with (
        HttpServer() as healthy_server,
        HttpServer() as flood_server,
        HttpServer() as silent_server,
    ):
        stream = FeedStream(healthy_server, seed=11, total=1)
        stream.auto = False
        flooding = FloodSite(flood_server, items=flood)
        quiet = SilentSite(silent_server, items=silent)
        feeds = {"Healthy": stream.feed_url, "Flood": flooding.feed_url, "Silent": quiet.feed_url}
        config = queue_config(tmp_path, bot, feeds)
        data = tmp_path / "data"
        with (
            DaemonProcess.start(
                config, token=bot.token, log=tmp_path / "log", data_dir=data
            ) as daemon,
            RssSampler(daemon.pid) as rss,
        ):
            daemon.wait_running(timeout=60)
            wait_for(lambda: flooding.pages_served() >= 1, 60, "the calm first page", daemon)
            flooding.go()
            quiet.go()
            wait_for(lambda: quiet.in_flight() >= 2, 60, "silent pages in flight", daemon)
            wait_for(lambda: flooding.pages_served() >= 20, 60, "the flood under way", daemon)
            story = stream.publish()
            published = time.monotonic()
            wait_for(
                lambda: stream.numbers_in(r.text for r in bot.sent()) == [story.number],
                120,
                "the alert",
                daemon,
            )
            latency = time.monotonic() - published
            assert flooding.pages_served() < flood  # the flood was still in flight
            assert daemon.stop(timeout=60) == 0
        return UnderAttack(latency, rss.peak_mb)


class RssSampler:
    """Samples the resident memory of a process and all its descendants in a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.every = every
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
        except (OSError, StopIteration):
            continue
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(p) for p in task.read_text().split()]
            except OSError:
                continue
    return total / 1024
