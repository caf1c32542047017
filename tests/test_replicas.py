"""Real `watcher run` processes on one PostgreSQL: a database lost mid-run, unreachable at start,
and several replicas sharing the work with no duplicate poll, alert or getUpdates."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, run_watcher, stream_config, wait_for
from feedstream import FeedStream
from httpserver import HttpServer
from pgserver import PgServer

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


def _config(tmp_path: Path, stream: FeedStream, bot_api: BotApiServer, url: str, name: str) -> Path:
    """One config per replica: its own data directory (lock, heartbeat), the same database."""
    folder = tmp_path / f"{name}-config"
    folder.mkdir()
    return stream_config(folder, stream, bot_api, extra=_store(url), data_dir=tmp_path / name)


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
