"""Real `watcher run` processes on one PostgreSQL: a database lost mid-run, unreachable at start,
and several replicas sharing the work with no duplicate poll, alert or getUpdates."""

from __future__ import annotations

import itertools
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from botapi import BotApiServer
from daemonproc import DaemonProcess, run_watcher, stream_config, wait_for
from feedstream import FeedStream
from httpserver import HttpServer
from pgserver import PgServer

from watcher.config import load_config

pytestmark = [pytest.mark.slow]

CHAT = "1001"


def _store(url: str, lease: str = "10s") -> str:
    return f'[store]\nurl = "{url}"\nlease = "{lease}"\n'


def _telegram(stream: FeedStream, bot_api: BotApiServer) -> list[int]:
    return stream.numbers_in(r.text for r in bot_api.sent(CHAT))


def _start(config: Path, bot_api: BotApiServer, tmp_path: Path, name: str) -> DaemonProcess:
    data = tmp_path / name
    return DaemonProcess.start(
        config, token=bot_api.token, log=tmp_path / f"{name}.log", data_dir=data
    )


def _config(
    tmp_path: Path,
    stream: FeedStream,
    bot_api: BotApiServer,
    url: str,
    name: str,
    *,
    extra: str | None = None,
    **kwargs: Any,
) -> Path:
    """One config per replica: its own data directory (lock, heartbeat), the same database."""
    folder = tmp_path / f"{name}-config"
    folder.mkdir()
    extra = _store(url) if extra is None else extra
    return stream_config(folder, stream, bot_api, extra=extra, data_dir=tmp_path / name, **kwargs)


def test_postgresql_lost_mid_run_recovers_and_loses_nothing(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, pg_server: PgServer
) -> None:
    stream = FeedStream(http_server, seed=11, total=10)
    config = _config(tmp_path, stream, bot_api, pg_server.new_database(), "one")
    with _start(config, bot_api, tmp_path, "one") as daemon:
        wait_for(lambda: len(_telegram(stream, bot_api)) >= 2, 60, "the first alerts", daemon)
        pg_server.stop()
        wait_for(lambda: "failed" in daemon.output(), 30, "the store errors logged", daemon)
        assert daemon.proc.poll() is None, daemon.tail()
        pg_server.restart()
        everything = lambda: sorted(_telegram(stream, bot_api)) == stream.ids()  # noqa: E731
        wait_for(lambda: stream.complete and everything(), 90, "every alert", daemon)
        assert daemon.stop() == 0, daemon.tail()
    assert Counter(_telegram(stream, bot_api)).most_common(1)[0][1] == 1  # none twice


def test_unreachable_postgresql_at_start_is_one_line_and_exit_1(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stream = FeedStream(http_server, seed=1, total=1)
    url = f"postgresql+psycopg://watcher@127.0.0.1:{port}/watcher"
    config = _config(tmp_path, stream, bot_api, url, "one")
    done = run_watcher("run", "--once", config=config, token=bot_api.token)
    assert done.returncode == 1
    assert str(port) in done.stderr and "Traceback" not in done.stderr


_EMPTY_RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title>'
    "<link>https://quiet.example/</link></channel></rss>"
)


def _feeds(urls: list[str]) -> str:
    return "".join(
        f'[[feeds]]\nurl = "{u}"\nname = "Quiet {i}"\ninterval = "1s"\n' for i, u in enumerate(urls)
    )


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows from the replicas' database; none before its tables exist."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        try:
            return conn.execute(sql).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):  # migrating
            return []


def _feed_lease_owners(url: str) -> set[str]:
    return {
        str(o)
        for (o,) in _query(url, "SELECT lease_owner FROM feeds WHERE lease_owner IS NOT NULL")
    }


def _min_gap(server: HttpServer, path: str) -> float:
    times = sorted(r.received for r in server.requests_to(path))
    return min((b - a for a, b in itertools.pairwise(times)), default=99.0)


def _leader_pid(url: str) -> int | None:
    rows = _query(url, "SELECT pid FROM replicas WHERE leader ORDER BY seen_at DESC LIMIT 1")
    return int(rows[0][0]) if rows else None


def test_two_replicas_poll_each_feed_once_and_alert_each_story_once(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, pg_server: PgServer
) -> None:
    stream = FeedStream(http_server, seed=20, total=12)
    quiet = [f"/quiet{i}.xml" for i in range(6)]  # feeds with nothing new: polled, no alerts
    for path in quiet:
        http_server.route(path, _EMPTY_RSS, headers={"Content-Type": "application/rss+xml"})
    url = pg_server.new_database()
    extra = _store(url) + _feeds([http_server.url(p) for p in quiet])
    a_config, b_config = (
        _config(tmp_path, stream, bot_api, url, name, extra=extra) for name in ("a", "b")
    )
    with (
        _start(a_config, bot_api, tmp_path, "a") as a,
        _start(b_config, bot_api, tmp_path, "b") as b,
    ):
        owners: set[str] = set()

        def both_claim() -> bool:  # the due feeds are shared, not all taken by one
            owners.update(_feed_lease_owners(url))
            return len(owners) >= 2

        wait_for(both_claim, 60, "both replicas claiming feeds", a)
        everything = lambda: stream.complete and sorted(_telegram(stream, bot_api)) == stream.ids()  # noqa: E731
        wait_for(everything, 120, "every story", a)
        assert b.proc.poll() is None, b.tail()
        assert a.stop() == 0 and b.stop() == 0
    assert Counter(_telegram(stream, bot_api)).most_common(1)[0][1] == 1  # none twice
    for path in [stream.path, *quiet]:
        # Due every second and claimed by one replica: two polling it would come closer.
        assert _min_gap(http_server, path) > 0.5, path


def test_the_elected_replica_alone_answers_and_another_takes_over_after_kill_9(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, pg_server: PgServer
) -> None:
    stream = FeedStream(http_server, seed=31, total=1)
    url = pg_server.new_database()
    daemons = {}
    for name in ("a", "b"):
        folder = tmp_path / f"{name}-config"
        folder.mkdir()
        config = stream_config(
            folder,
            stream,
            bot_api,
            extra=_store(url, "4s"),
            data_dir=tmp_path / name,
            chats=("-100777",),
        )
        config.write_text(
            config.read_text().replace("bot = false", 'bot = true\nadmins = ["1001"]')
        )
        daemons[name] = _start(config, bot_api, tmp_path, name)
    with daemons["a"] as a, daemons["b"] as b:
        a.wait_running()
        b.wait_running()
        wait_for(lambda: _leader_pid(url) in (a.pid, b.pid), 30, "an elected replica", a)
        replies = lambda: len(bot_api.sent("1001"))  # noqa: E731
        bot_api.push_message("/status")
        wait_for(lambda: replies() == 1, 30, "the answer to /status", a)
        # /status names the replicas alive, the elected one among them.
        status = bot_api.sent("1001")[0].text or ""
        assert "Replicas: 2 alive" in status and "elected" in status, status
        leader, other = (a, b) if _leader_pid(url) == a.pid else (b, a)
        leader.kill()
        killed = time.monotonic()
        bot_api.push_message("/status")
        wait_for(lambda: replies() == 2, 60, "the new elected replica's answer", other)
        takeover = time.monotonic() - killed
        print(f"\ntakeover of the bot after kill -9 of the elected replica: {takeover:.1f} s")
        assert _leader_pid(url) == other.pid
        assert other.stop() == 0, other.tail()
    assert replies() == 2  # each command answered once


def _holder_pid(url: str, destination: str) -> int | None:
    rows = _query(url, f"SELECT lease_owner FROM destinations WHERE name = '{destination}'")
    return int(str(rows[0][0]).split(":")[1]) if rows and rows[0][0] else None


def test_kill_9_of_the_replica_sending_loses_nothing_and_the_other_takes_over(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, pg_server: PgServer
) -> None:
    stream = FeedStream(http_server, seed=41, total=12)
    url = pg_server.new_database()
    a_config, b_config = (
        _config(tmp_path, stream, bot_api, url, name, extra=_store(url, "4s"))
        for name in ("a", "b")
    )
    with (
        _start(a_config, bot_api, tmp_path, "a") as a,
        _start(b_config, bot_api, tmp_path, "b") as b,
    ):
        wait_for(lambda: len(_telegram(stream, bot_api)) >= 3, 60, "the first alerts", a)
        sender = _holder_pid(url, f"telegram:{CHAT}")
        victim, survivor = (a, b) if sender == a.pid else (b, a)
        assert sender == victim.pid
        victim.kill()
        killed, before = time.monotonic(), len(_telegram(stream, bot_api))
        wait_for(lambda: len(_telegram(stream, bot_api)) > before, 60, "a send after", survivor)
        takeover = time.monotonic() - killed
        sent_all = lambda: sorted(set(_telegram(stream, bot_api))) == stream.ids()  # noqa: E731
        wait_for(lambda: stream.complete and sent_all(), 90, "every alert", survivor)
        print(f"\ndeliveries resumed {takeover:.1f} s after kill -9 of the sending replica")
        assert survivor.stop() == 0, survivor.tail()
    sent = Counter(_telegram(stream, bot_api))
    assert sum(n - 1 for n in sent.values()) <= 1  # at most one duplicate per crash


def test_compose_file_runs_replicas_with_own_data_and_one_database() -> None:
    root = Path(__file__).parent.parent
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    replicas = {k: v for k, v in compose["services"].items() if k.startswith("watcher-")}
    assert len(replicas) >= 2
    data = [next(v for v in s["volumes"] if v.endswith(":/data")) for s in replicas.values()]
    ports = [s["ports"][0].rsplit(":", 1)[0] for s in replicas.values()]
    assert len(set(data)) == len(data) and len(set(ports)) == len(ports)
    config = load_config(root / "compose.config.toml")
    assert config.store_url.startswith("postgresql+psycopg://") and config.metrics.enabled
    assert "postgres" in compose["services"]
