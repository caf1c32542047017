"""The daemon as users run it: a subprocess started, signalled, locked out, health-checked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher.health import HEARTBEAT_NAME, Heartbeat, check_health, read_heartbeat, write_heartbeat


def _config(tmp_path: Path, feeds: str = "", extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "data"
rules_dir = "rules"
heartbeat_interval = "1s"
[http]
allow_private_addresses = true
total_timeout = "5s"
[articles]
workers = 1
{extra}
{feeds}
""",
        encoding="utf-8",
    )
    (tmp_path / "rules").mkdir(exist_ok=True)
    return path


def _watcher(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHER_CONFIG", None)
    env.pop("WATCHER_DATA_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = _watcher(*args, cwd=cwd)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _running(data: Path) -> bool:
    beat = read_heartbeat(data)
    return beat is not None and beat.state == "running"


@pytest.mark.slow
def test_sigterm_stops_gracefully_and_store_is_consistent(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    http_server.route("/feed.xml", _rss(3), headers={"Content-Type": "application/rss+xml"})
    config = _config(
        tmp_path, f'[[feeds]]\nurl = "{http_server.url("/feed.xml")}"\nname = "Loop"\n'
    )
    proc = _watcher("run", "--config", str(config), cwd=tmp_path)
    data = tmp_path / "data"
    try:
        _wait_for(lambda: _running(data) and http_server.hits("/feed.xml") >= 1)
        assert _run("health", "--config", str(config), cwd=tmp_path).returncode == 0
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    # The promise is 10 s (a watchdog exits by 9.5 s); the margin is for a loaded machine.
    assert time.monotonic() - started < 15
    assert "Traceback" not in err
    assert "1 feeds (1 enabled)" in err  # the start-up summary line
    conn = sqlite3.connect(data / "watcher.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (stopped,) = conn.execute("SELECT stopped_at FROM runs").fetchone()
    assert stopped is not None
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 3
    assert not (data / "watcher.db-wal").exists() or (data / "watcher.db-wal").stat().st_size == 0
    health = _run("health", "--config", str(config), cwd=tmp_path)
    assert health.returncode == 1 and "not running" in health.stderr


@pytest.mark.slow
def test_second_daemon_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = _watcher("run", "--config", str(config), cwd=tmp_path)
    try:
        _wait_for(lambda: _running(tmp_path / "data"))
        second = _run("run", "--config", str(config), cwd=tmp_path, timeout=30)
        assert second.returncode == 1
        assert f"is in use by another watcher daemon (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 0


def test_run_once_polls_every_feed_and_exits(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    http_server.route("/a.xml", _rss(2), headers={"Content-Type": "application/rss+xml"})
    http_server.route(
        "/b.xml", "<html><body>not a feed</body></html>", headers={"Content-Type": "text/html"}
    )
    feeds = (
        f'[[feeds]]\nurl = "{http_server.url("/a.xml")}"\nname = "A"\n'
        f'[[feeds]]\nurl = "{http_server.url("/b.xml")}"\nname = "B"\n'
    )
    config = _config(tmp_path, feeds)
    result = _run("run", "--once", "--config", str(config), "--log-format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any("2 feeds (2 enabled)" in line["message"] for line in lines)
    assert http_server.hits("/a.xml") == 1 and http_server.hits("/b.xml") == 1
    table = _run("feeds", "--config", str(config), cwd=tmp_path)
    assert table.returncode == 0
    a_line = next(line for line in table.stdout.splitlines() if line.startswith("A "))
    b_line = next(line for line in table.stdout.splitlines() if line.startswith("B "))
    assert " ok " in a_line
    # failed once: "erroring", as on the web page, until it has failed for failing_after
    assert " erroring " in b_line and "HTML page, not a feed" in b_line


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "config file not found"),
        ("unknown", "did you mean 'data_dir'?"),
        ("type", "heartbeat_interval: expected a duration"),
        ("unwritable", "data directory /proc/watcher-data: cannot create it"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path: Path, setup: str, message: str) -> None:
    config = tmp_path / "config.toml"
    texts = {
        "unknown": "[watcher]\ndata_dri = 'x'\n",
        "type": "[watcher]\nheartbeat_interval = true\n",
        "unwritable": "[watcher]\ndata_dir = '/proc/watcher-data'\n",
    }
    if setup in texts:
        config.write_text(texts[setup])
    result = _run("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_health_fresh_stale_and_missing(tmp_path: Path) -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert "no heartbeat" in check_health(read_heartbeat(tmp_path), now)
    write_heartbeat(tmp_path, Heartbeat(1, now - timedelta(seconds=10), now, 15.0, "running"))
    assert check_health(read_heartbeat(tmp_path), now) == ""
    assert "stale" in check_health(read_heartbeat(tmp_path), now + timedelta(seconds=60))
    assert check_health(read_heartbeat(tmp_path), now, max_age=5).startswith("heartbeat is stale")
    (tmp_path / HEARTBEAT_NAME).write_text("{garbage")
    assert "no heartbeat" in check_health(read_heartbeat(tmp_path), now)


def test_health_command_exit_codes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    assert _run("health", "--config", str(config), cwd=tmp_path).returncode == 1
    write_heartbeat(data, Heartbeat(1, datetime.now(UTC), datetime.now(UTC), 1.0, "running"))
    result = _run("health", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "healthy"
    old = datetime.now(UTC) - timedelta(minutes=5)
    write_heartbeat(data, Heartbeat(1, old, old, 1.0, "running"))
    stale = _run("health", "--config", str(config), cwd=tmp_path)
    assert stale.returncode == 1 and "stale" in stale.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("watcher 0.")


def _rss(items: int) -> str:
    body = "".join(
        f"<item><title>Item {i}</title><link>https://example.org/{i}</link>"
        f"<guid>id-{i}</guid><pubDate>Mon, 23 Nov 2026 1{i}:00:00 GMT</pubDate></item>"
        for i in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    )


async def test_a_store_that_cannot_open_leaves_no_worker_behind(tmp_path: Path) -> None:
    """The worker pools start first, to preload while the store opens: when the store then
    fails, they are stopped (in-process, as a long-lived caller would see it)."""
    from daemonproc import pool_workers

    from watcher.config import load_config
    from watcher.daemon import Daemon, RunOptions
    from watcher.errors import StoreError

    (tmp_path / "not-a-folder").write_text("a file where the store's folder should be")
    url = f"sqlite:///{tmp_path / 'not-a-folder' / 'watcher.db'}"
    config = load_config(_config(tmp_path, extra=f'[store]\nurl = "{url}"\n'), env={})
    with pytest.raises(StoreError):
        await Daemon(config).run(RunOptions(once=True))
    await asyncio.to_thread(_wait_for, lambda: not pool_workers(os.getpid()), 60)
