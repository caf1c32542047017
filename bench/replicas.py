"""Replicas on one PostgreSQL: polls per interval, duplicate polls and alerts, throughput, and
the takeover after kill -9; also one replica on SQLite against one on PostgreSQL.

    .venv/bin/python bench/replicas.py                      # 5,000 feeds; 1, 2, 3 replicas
    .venv/bin/python bench/replicas.py --feeds 1000 --replicas 1 2 --no-sqlite

Everything is real and on loopback: a PostgreSQL server started from /usr/lib/postgresql
(tests/pgserver.py), `python -m watcher run` processes, a pre-rendered feed server (the one of
bench/feedserver.py, here logging every request: time and feed) and the Telegram Bot API
double (tests/botapi.py). For each replica count, on a fresh database:

- ``first_round_s`` and ``first_round_polls_per_s``: from the first fetch until every feed's
  first poll is stored (every item as backfill): polling, parsing and store writes, checked
  every 0.25 s; ``start_to_all_polled_s`` includes the replicas' start-up;
- ``polls_in_interval``: fetches in one steady ``--interval`` window (must equal the feeds:
  each due feed polled once), ``feeds_polled_twice``: feeds fetched twice less than half an
  interval apart (must be 0);
- ``alerts`` / ``duplicate_alerts``: every tenth feed then gets one new item matching a rule;
  Telegram messages sent, and links sent more than once (must be 0);
- ``takeover_s`` (2+ replicas): kill -9 of one replica, then the longest a feed went unpolled
  past its interval (bounded by ``--lease``), and whether every feed was polled again.

Prints one JSON object per line: the machine, then one per run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from _common import ROOT, emit, machine
from botapi import BotApiServer
from feedserver import _PATH, _Protocol, _Site, item_xml
from pgserver import PgServer, find_bindir

RULE = "name: parliament\nkeywords:\n  house: [parliament]\n"
CHAT = "-1001"


class _LoggingSite(_Site):
    """The bench feed server, remembering when each feed was fetched."""

    def __init__(self, feeds: int, items: int) -> None:
        super().__init__(feeds, items)
        self.log: list[tuple[float, int]] = []

    def answer(self, request: bytes) -> bytes:
        match = _PATH.match(request)
        path = match.group(1) if match else b""
        if path.startswith(b"/feeds/"):
            with contextlib.suppress(ValueError):
                self.log.append((time.time(), int(path[7:-4])))
        return super().answer(request)


@dataclass
class FeedServer:
    """The feed server on its own thread and event loop in this process."""

    feeds: int
    items: int
    site: _LoggingSite = field(init=False)
    port: int = 0

    def start(self) -> None:
        self.site = _LoggingSite(self.feeds, self.items)
        ready = threading.Event()

        async def run() -> None:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: _Protocol(self.site), "127.0.0.1", 0, backlog=4096
            )
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await server.serve_forever()

        threading.Thread(target=lambda: asyncio.run(run()), daemon=True).start()
        ready.wait(30)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/feeds/{i}.xml"

    def fetches(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, int]]:
        return [(t, f) for t, f in list(self.site.log) if since <= t < until]


def _config(
    folder: Path, server: FeedServer, bot: BotApiServer, url: str, args: argparse.Namespace
) -> Path:
    folder.mkdir(parents=True)
    (folder / "rules").mkdir()
    (folder / "rules" / "parliament.yaml").write_text(RULE)
    feeds = "".join(
        f'[[feeds]]\nurl = "{server.url(i)}"\nname = "Site {i}"\n' for i in range(server.feeds)
    )
    store = f'[store]\nurl = "{url}"\nlease = "{args.lease}s"\n' if url else ""
    path = folder / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "{folder / "data"}"
rules_dir = "rules"
{store}
[http]
allow_private_addresses = true
max_per_host = {args.connections}
max_connections = {args.connections}
[polling]
interval = "{args.interval}s"
min_interval = "{args.interval}s"
jitter = 0
respect_feed_hints = false
backfill_items = 0
tick = "1s"
[articles]
fetch = false
workers = 1
[nlp]
model = "watcher_bench_no_such_model"
[alerts]
rate_limit = 0
[telegram]
api_base_url = "{bot.base_url}"
chats = ["{CHAT}"]
bot = false
[console]
enabled = false
jsonl = false
{feeds}"""
    )
    return path


def _start(config: Path, bot: BotApiServer) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WATCHER_TELEGRAM_TOKEN": bot.token}
    env.pop("WATCHER_CONFIG", None)
    env.pop("WATCHER_DATA_DIR", None)
    log = (config.parent / "watcher.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(config)],
        cwd=config.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"bench: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)
    return time.monotonic() - started


def _recorded(url: str, config: Path) -> int:
    """Feeds whose first poll is stored, read from the database (PostgreSQL or SQLite)."""
    query = "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL"
    try:
        if url:
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                row = conn.execute(query).fetchone()
        else:
            with contextlib.closing(sqlite3.connect(config.parent / "data" / "watcher.db")) as db:
                row = db.execute(query).fetchone()
    except (psycopg.Error, sqlite3.Error):
        return 0  # not created or migrated yet
    return int(row[0]) if row else 0


def _links_sent(bot: BotApiServer) -> list[str]:
    pattern = re.compile(r"https://site\d+\.example/news/\d+/[\w-]+")
    return [m[0] for r in bot.sent(CHAT) if (m := pattern.search(r.text or ""))]


def run(
    replicas: int, backend: str, server: FeedServer, pg: PgServer | None, args: argparse.Namespace
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="watcher-bench-"))
    server.site.generation = 0
    server.site.log.clear()
    url = pg.new_database() if pg is not None else ""
    procs: list[subprocess.Popen[bytes]] = []
    record: dict[str, Any] = {"backend": backend, "replicas": replicas, "feeds": server.feeds}
    with BotApiServer() as bot:
        try:
            configs = [_config(root / f"r{i}", server, bot, url, args) for i in range(replicas)]
            started = time.time()
            procs = [_start(c, bot) for c in configs]
            recorded = lambda: _recorded(url, configs[0]) >= server.feeds  # noqa: E731
            record["start_to_all_polled_s"] = round(_wait(recorded, 900, "the first round"), 1)
            first = min(t for t, _ in server.fetches(started))
            # From the first fetch until every feed's first poll is stored (every item as
            # backfill): polling, parsing and store writes, without the start-up.
            span = time.time() - first
            record["first_round_s"] = round(span, 1)
            record["first_round_polls_per_s"] = round(server.feeds / span)
            # One steady interval, starting after the first round's polls are rescheduled.
            time.sleep(args.interval / 2)
            window = time.time()
            time.sleep(args.interval)
            polled = server.fetches(window, window + args.interval)
            record["polls_in_interval"] = len(polled)
            record["feeds_polled_twice"] = _polled_twice(server, window, args.interval)
            cpu = _cpu_seconds(procs)
            record["replica_cpu_s_per_interval"] = round(
                cpu / max(1.0, time.time() - started) * args.interval, 2
            )
            # New items on every tenth feed: each matching item must alert once.
            server.site.generation = 1
            _wait(lambda: len(_links_sent(bot)) >= 1, 300, "the first alert")
            _settle(lambda: len(bot.sent(CHAT)), quiet=max(10.0, args.interval))
            links = _links_sent(bot)
            record["alerts"] = len(links)
            record["duplicate_alerts"] = len(links) - len(set(links))
            if replicas >= 2:
                record |= _takeover(procs, server, args)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
            shutil.rmtree(root, ignore_errors=True)
    return record


def _polled_twice(server: FeedServer, since: float, interval: float) -> int:
    last: dict[int, float] = {}
    twice = set()
    for t, f in sorted(server.fetches(since)):
        if f in last and t - last[f] < interval / 2:
            twice.add(f)
        last[f] = t
    return len(twice)


def _takeover(
    procs: list[subprocess.Popen[bytes]], server: FeedServer, args: argparse.Namespace
) -> dict[str, Any]:
    """kill -9 of the first replica; the longest any feed then waited past its interval."""
    procs[0].kill()
    procs[0].wait()
    killed = time.time()
    time.sleep(args.interval + args.lease + 10)
    before = {f: t for t, f in sorted(server.fetches(killed - args.interval, killed))}
    after: dict[int, float] = {}
    for t, f in sorted(server.fetches(killed)):
        after.setdefault(f, t)
    waits = [after[f] - before.get(f, killed) - args.interval for f in after]
    return {
        "takeover_s": round(max(0.0, max(waits, default=0.0)), 1),
        "every_feed_polled_after_kill": len(after) == server.feeds,
        "lease_s": args.lease,
    }


def _settle(count: Any, quiet: float) -> None:
    """Wait until ``count()`` has not changed for ``quiet`` seconds."""
    value, since = count(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.5)
        now = count()
        if now != value:
            value, since = now, time.monotonic()


def _cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU of the replicas (and their worker processes) so far, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in procs:
        for pid in [p.pid, *_children(p.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--interval", type=float, default=60.0, help="poll interval, seconds")
    parser.add_argument("--lease", type=float, default=15.0, help="[store] lease, seconds")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("bench: PostgreSQL not installed (apt-get install postgresql)")
    emit({"machine": machine(), "args": vars(args), "new_item": len(item_xml(0, 0))})
    server = FeedServer(args.feeds, args.items)
    server.start()
    pg = PgServer(bindir, Path(tempfile.mkdtemp(prefix="watcher-bench-pg-")))
    pg.start()
    # SIGTERM stops the bench like Ctrl-C: replicas and the database are stopped on the way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if not args.no_sqlite:
            emit(run(1, "sqlite", server, None, args))
        for n in args.replicas:
            emit(run(n, "postgresql", server, pg, args))
    finally:
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
