"""Fault suite: a stop that always stops, whatever the worker processes are busy with."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, alive, stream_config, wait_for
from feedstream import FeedStream
from hostile import HeavySite, heavy_config, stop_with_busy_worker
from httpserver import HttpServer

from watcher.workers import CpuPool

pytestmark = [pytest.mark.fault, pytest.mark.slow]


def _sleep_after_mark(mark: str, seconds: float) -> None:
    """A job that says it started (by creating ``mark``) and then keeps its worker busy."""
    Path(mark).touch()
    time.sleep(seconds)


def test_pool_shutdown_terminates_a_busy_worker(tmp_path: Path) -> None:
    mark = tmp_path / "started"

    async def scenario() -> float:
        pool = CpuPool(1)
        job = asyncio.ensure_future(pool(_sleep_after_mark, str(mark), 600.0))
        await asyncio.to_thread(wait_for, mark.exists, 60.0, "the job to start")
        workers = pool.worker_pids()
        started = time.monotonic()
        await asyncio.to_thread(pool.shutdown, cancel=True, grace=0.5)
        took = time.monotonic() - started
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        assert workers and not any(alive(pid) for pid in workers)
        return took

    # Bounded by the grace, not by the job's 600 s (generous for a loaded machine).
    assert asyncio.run(scenario()) < 30.0


def test_sigterm_with_a_busy_worker_exits_0_in_time_and_keeps_entries_pending(
    tmp_path: Path, http_server: HttpServer
) -> None:
    stopped = stop_with_busy_worker(tmp_path, http_server)
    assert stopped.code == 0, stopped.log
    # The promise is 10 s; a few more allow for a loaded machine starting the interpreter's exit.
    assert stopped.seconds < 15.0, f"stop took {stopped.seconds:.1f} s\n{stopped.log}"
    # Workers were terminated, or left as soon as they saw the daemon gone.
    wait_for(lambda: not any(alive(pid) for pid in stopped.workers), 30, "no children left")
    assert "Traceback" not in stopped.log
    with sqlite3.connect(tmp_path / "data" / "watcher.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM entries GROUP BY state"))
    assert states.get("pending", 0) >= 1, states  # interrupted work is redone at next start
    assert "left pending: read when watcher runs again" in stopped.log  # the user is told


def test_sigterm_exits_even_with_a_thread_stuck_on_a_fifo_in_rules(
    tmp_path: Path, http_server: HttpServer
) -> None:
    """A FIFO named like a rule file appearing while the daemon runs can block the rules
    reload thread in open() for good; the stop still ends the process, with 0."""
    site = HeavySite(http_server, items=0)
    config = heavy_config(tmp_path, site.feed_url)
    data = tmp_path / "data"
    with DaemonProcess.start(config, token="", log=tmp_path / "log", data_dir=data) as daemon:
        daemon.wait_running()
        os.mkfifo(tmp_path / "rules" / "x.yaml")
        time.sleep(3)  # two rules-reload rounds (every 2 s) have had their chance to get stuck
        started = time.monotonic()
        code = daemon.stop()
        took = time.monotonic() - started
    assert code == 0, daemon.tail()
    assert took < 15.0, f"stop took {took:.1f} s\n{daemon.tail()}"


def test_sigterm_with_a_message_in_flight_records_it_and_never_sends_it_twice(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    """A stop lets the delivery round under way finish: cancelling it while Telegram held
    a message recorded nothing, and the next start sent that message a second time."""
    stream = FeedStream(http_server, seed=23, total=1)
    stream.auto = False  # one story, published below, and no other
    data = tmp_path / "data"
    config = stream_config(tmp_path, stream, bot_api, data_dir=data)
    bot_api.hang_next("sendMessage", 3.0)  # Telegram slow to answer: the send is in flight
    log = tmp_path / "log"
    with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as daemon:
        daemon.wait_running()
        stream.publish()
        wait_for(lambda: bot_api.hangs_left("sendMessage") == 0, 60, "a send in flight", daemon)
        assert daemon.stop() == 0, daemon.tail()
    assert stream.numbers_in(r.text for r in bot_api.sent("1001")) == stream.ids()
    with sqlite3.connect(data / "watcher.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
    assert states == {"sent": 1}
    # A new start finds nothing to send again.
    with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as daemon:
        daemon.wait_running()
        time.sleep(2)  # two delivery rounds (every second) had their chance to resend it
        assert daemon.stop() == 0, daemon.tail()
    assert stream.numbers_in(r.text for r in bot_api.sent("1001")) == stream.ids()
