"""Fault suite: a stop that always stops, whatever the worker processes are busy with."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from daemonproc import FAST_NLP, DaemonProcess, alive, wait_for
from httpserver import HttpServer

from watcher.workers import CpuPool

pytestmark = [pytest.mark.fault, pytest.mark.slow]

# A rule whose matching work grows with the mentions, and a page of nothing but mentions.
_RULE = """name: maduro
actors:
  Nicolás Maduro:
    aliases: [Maduro]
    exclude: [plátano maduro, maduro plantain]
match:
  any: [Nicolás Maduro]
"""
_HEAVY = ("<html><body><h1>t</h1><p>" + "Maduro " * 30_000 + "</p></body></html>").encode()


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
        workers = list(pool._executor._processes)  # type: ignore[attr-defined]
        started = time.monotonic()
        await asyncio.to_thread(pool.shutdown, cancel=True, grace=0.5)
        took = time.monotonic() - started
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        assert workers and not any(alive(pid) for pid in workers)
        return took

    # Bounded by the grace, not by the job's 600 s (generous for a loaded machine).
    assert asyncio.run(scenario()) < 30.0


def _config(tmp_path: Path, server: HttpServer) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "maduro.yaml").write_text(_RULE, encoding="utf-8")
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
url = "{server.url("/feed.xml")}"
name = "Heavy"
""",
        encoding="utf-8",
    )
    return path


def _rss(server: HttpServer, count: int) -> bytes:
    items = "".join(
        f"<item><title>Maduro {i}</title><link>{server.url(f'/page/{i}')}</link>"
        f"<guid>heavy-{i}</guid></item>"
        for i in range(count)
    )
    channel = f"<channel><title>Heavy</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def _busy_worker(daemon: DaemonProcess) -> bool:
    """Whether a worker process is burning CPU now (sampled over half a second)."""
    before = {pid: _cpu_seconds(pid) for pid in daemon.children()}
    time.sleep(0.5)
    return any(_cpu_seconds(pid) - cpu > 0.2 for pid, cpu in before.items())


def test_sigterm_with_a_busy_worker_exits_0_in_time_and_keeps_entries_pending(
    tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.route("/feed.xml", _rss(http_server, 4), headers={"Content-Type": "text/xml"})
    for i in range(4):
        http_server.route(f"/page/{i}", _HEAVY, headers={"Content-Type": "text/html"})
    config = _config(tmp_path, http_server)
    data = tmp_path / "data"
    with DaemonProcess.start(config, token="", log=tmp_path / "log", data_dir=data) as daemon:
        daemon.wait_running(timeout=60)
        wait_for(lambda: http_server.hits("/page/0") > 0, 60, "an article fetch", daemon)
        wait_for(lambda: _busy_worker(daemon), 60, "a busy worker", daemon)
        workers = daemon.children()
        started = time.monotonic()
        code = daemon.stop(timeout=60)
        took = time.monotonic() - started
    assert code == 0, daemon.tail()
    # The promise is 10 s; a few more allow for a loaded machine starting the interpreter's exit.
    assert took < 15.0, f"stop took {took:.1f} s\n{daemon.tail()}"
    assert not any(alive(pid) for pid in workers)
    assert "Traceback" not in daemon.output()
    with sqlite3.connect(data / "watcher.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM entries GROUP BY state"))
    assert states.get("pending", 0) >= 1, states  # interrupted work is redone at next start
