"""Disk faults under a running daemon: the data directory's disk full, the data directory made
read-only, and a read-only data directory at start-up. Each gives a clear error, no
corruption, no lost or repeated alert, and recovery once the fault clears.

Tests run as root here, and chmod does not stop root; the faults are made real instead:
- disk full: the data directory is a small tmpfs (mount), filled with a file;
- read-only while running: the immutable attribute (chattr +i) on the data directory, the
  database and its WAL, which the kernel enforces on open files and for root. (The WAL
  index, -shm, is left alone: SQLite maps it into memory, and writing to a mapped page of an
  immutable file kills the process with SIGBUS, a fault no program can answer.) A read-only
  remount of the running directory is refused by the kernel while files are open for
  writing (EBUSY), so it cannot stand in for this case;
- read-only at start-up: a read-only bind mount.
Each test skips when the machine does not allow it (no root, no mount, no chattr).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, run_watcher, stream_config, wait_for
from feedstream import FeedStream
from httpserver import HttpServer

from watcher.store import open_store

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SEED = 11
STORIES = 8
BURST = 5  # published before the first poll, so alerts are queued when the fault starts
CHAT = "1001"
FAULT_SECONDS = 6.0
FEED_INTERVAL = 3.0


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        pytest.skip(f"the {args[0]} command is not installed")
    return subprocess.run(args, capture_output=True, text=True, check=False)


@contextmanager
def _mounted(target: Path, *options: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    result = _sh("mount", *options, str(target))
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}); needs root in this namespace")
    try:
        yield
    finally:
        _sh("umount", "-l", str(target))


def _fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, bytes(block))
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def _immutable(paths: list[Path], on: bool) -> None:
    result = _sh("chattr", "+i" if on else "-i", *map(str, paths))
    if on and result.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here: {result.stderr.strip()}")


def test_disk_full_then_freed(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    data = tmp_path / "data"
    with _mounted(data, "-t", "tmpfs", "-o", "size=8m,mode=0755", "watcher-test"):
        filler: list[Path] = []

        def clear() -> None:
            for path in filler:
                path.unlink(missing_ok=True)

        _fault_then_recover(
            tmp_path,
            http_server,
            bot_api,
            apply=lambda: filler.append(_fill(data)),
            clear=clear,
            hints=("database or disk is full (SQLITE_FULL): the disk holding the data directory "
                   "is full; free some space",),
        )  # fmt: skip


def test_data_dir_made_read_only_then_writable(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    probe = tmp_path / "probe"
    probe.touch()
    _immutable([probe], on=True)  # skips here, before any daemon, where chattr is refused
    _immutable([probe], on=False)
    data = tmp_path / "data"
    frozen = [data, data / "watcher.db", data / "watcher.db-wal"]
    try:
        _fault_then_recover(
            tmp_path,
            http_server,
            bot_api,
            apply=lambda: _immutable(frozen, on=True),
            clear=lambda: _immutable(frozen, on=False),
            hints=(
                "the data directory cannot be written (read-only or failing disk?)",
                "the database or its data directory is read-only; make them writable",
            ),
        )
    finally:
        if shutil.which("chattr"):
            _immutable(frozen, on=False)  # or pytest cannot remove tmp_path


def test_read_only_data_dir_at_start_up_is_one_clear_line(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    stream = FeedStream(http_server, seed=SEED, total=2)
    data = tmp_path / "data"
    config = stream_config(tmp_path, stream, bot_api, data_dir=data)
    with _mounted(data, "--bind", str(data)):
        if _sh("mount", "-o", "remount,bind,ro", str(data)).returncode != 0:
            pytest.skip("cannot remount a bind mount read-only here")
        refused = run_watcher("run", config=config, token=bot_api.token)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"watcher: data directory {data}: on a read-only file system; remount it read-write "
        "or set [watcher] data_dir to another folder"
    )
    # Once writable, the same data directory works: one cycle polls, alerts and delivers.
    once = run_watcher("run", "--once", config=config, token=bot_api.token)
    assert once.returncode == 0, once.stderr
    assert sorted(stream.numbers_in(r.text for r in bot_api.sent(CHAT))) == stream.ids() == [1]


def _fault_then_recover(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    *,
    apply: Callable[[], None],
    clear: Callable[[], None],
    hints: tuple[str, ...],
) -> None:
    stream = FeedStream(http_server, seed=SEED, total=STORIES)
    for _ in range(BURST):
        stream.publish()
    data = tmp_path / "data"
    config = stream_config(
        tmp_path, stream, bot_api, data_dir=data, feed_interval=f"{FEED_INTERVAL:g}s"
    )
    log = tmp_path / "d.log"
    with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as daemon:
        wait_for(lambda: len(bot_api.sent(CHAT)) >= 2, 60, "the first alerts", daemon)
        try:
            apply()
            fetches, began = http_server.hits(stream.path), time.monotonic()
            # At least FAULT_SECONDS, and until a poll and a clear error have met the fault.
            seen = lambda: _shows_fault(daemon.output(), hints)  # noqa: E731
            wait_for(seen, 60, "the fault in the daemon's log", daemon)
            time.sleep(max(0.0, began + FAULT_SECONDS - time.monotonic()))
            during, elapsed = daemon.output(), time.monotonic() - began
            fetched = http_server.hits(stream.path) - fetches
        finally:
            clear()
        assert daemon.proc.poll() is None, daemon.tail()
        assert "Traceback" not in during
        # A poll that cannot be recorded is retried next interval, not at every tick.
        assert fetched <= elapsed / FEED_INTERVAL + 2

        everything = lambda: (  # noqa: E731
            stream.complete and sorted(set(_delivered(stream, bot_api))) == stream.ids()
        )
        recovery = wait_for(everything, 60, "every alert after the fault cleared", daemon)
        wait_for(daemon.running, 60, "a fresh heartbeat", daemon)
        assert daemon.stop() == 0, daemon.tail()
    print(f"\n{FAULT_SECONDS:.0f} s fault; every alert delivered {recovery:.1f} s after it cleared")
    counts = Counter(_delivered(stream, bot_api))
    assert max(counts.values()) == 1, f"repeated alerts: {counts}"
    _assert_sound(data, STORIES)


def _shows_fault(log: str, hints: tuple[str, ...]) -> bool:
    polled = "poll not recorded, retrying next interval" in log
    return polled and any(hint in log for hint in hints)


def _delivered(stream: FeedStream, bot_api: BotApiServer) -> list[int]:
    return stream.numbers_in(r.text for r in bot_api.sent(CHAT))


def _assert_sound(data: Path, stories: int) -> None:
    conn = sqlite3.connect(data / "watcher.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert dict(conn.execute("SELECT state, count(*) FROM entries GROUP BY 1")) == {
            "done": stories
        }
        assert dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY 1")) == {
            "sent": stories
        }
    finally:
        conn.close()
    store = open_store(f"sqlite:///{data / 'watcher.db'}")
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()
