"""Crash safety: a daemon working through a stream of matching stories is SIGKILLed again
and again; every alert still arrives, at most once more per crash, and the store stays sound."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, alive, stream_config, wait_for
from feedstream import FeedStream
from httpserver import HttpServer

from watcher.store import open_store

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SEED = 20261124
# 15 crashes, about 3 s each: the suite's largest single cost (it must stay under 10 min).
CRASHES = 15
STORIES = 30
# Kills land anywhere from start-up (imports, migrations, lock) through polling, the
# worker's start, article processing, recording and sending.
KILL_AFTER = (0.3, 5.0)
# Of the other crashes, the share timed from the daemon's "running" rather than its start:
# on a loaded machine the start alone can take the whole KILL_AFTER, and the crashes would
# then never hit polling, processing or sending.
AFTER_START_SHARE = 0.5
# The share of crashes aimed at a message in flight, and how long the double holds it.
IN_FLIGHT_SHARE = 0.35
HOLD = 1.0
CHAT = "1001"


def test_sigkill_at_random_points_loses_no_alert(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    stream = FeedStream(http_server, seed=SEED, total=STORIES)
    data = tmp_path / "data"
    config = stream_config(tmp_path, stream, bot_api, data_dir=data)
    rng = random.Random(SEED)
    started = time.monotonic()
    orphans: list[int] = []
    for crash in range(CRASHES):
        log = tmp_path / f"run-{crash:02d}.log"
        with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as daemon:
            if rng.random() < IN_FLIGHT_SHARE:
                _wait_until_sending(daemon, bot_api, rng)
            else:
                if rng.random() < AFTER_START_SHARE:
                    daemon.wait_running()  # among the work, however slow a loaded start is
                time.sleep(rng.uniform(*KILL_AFTER))
            orphans += daemon.children()
            assert daemon.proc.poll() is None, daemon.tail()
            daemon.kill()
    bot_api.clear_faults()
    before_final = len(bot_api.sent(CHAT))

    # Publish what is left at once, then let one daemon run until everything is delivered.
    stream.auto = False
    while not stream.complete:
        stream.publish()
    wanted = set(stream.ids())
    log = tmp_path / "final.log"
    with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as final:
        final.wait_running()  # a SIGTERM before the handlers are installed would just kill it
        wait_for(lambda: set(_delivered(stream, bot_api)) >= wanted, 60, "every alert", final)
        wait_for(lambda: _outbox_empty(data / "watcher.db"), 60, "an empty outbox", final)
        assert final.stop() == 0, final.tail()

    counts = Counter(_delivered(stream, bot_api))
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\n{CRASHES} crashes, {STORIES} stories, {before_final} alerts delivered between "
        f"crashes, {duplicates} duplicates, {time.monotonic() - started:.1f} s"
    )
    assert set(counts) == wanted
    assert duplicates <= CRASHES, f"{duplicates} duplicates: {sorted(counts.items())}"
    # The crashes must have hit real work, not only start-ups.
    assert before_final >= 3
    # Worker processes of a killed daemon must not outlive it (memory, one more per crash).
    wait_for(lambda: not any(alive(pid) for pid in orphans), 30, "orphaned workers to exit")
    for output in sorted(tmp_path.glob("*.log")):
        assert "Traceback" not in output.read_text(errors="replace"), output.name
    _assert_store_sound(data, STORIES)


def _wait_until_sending(daemon: DaemonProcess, bot_api: BotApiServer, rng: random.Random) -> None:
    """Kill with a message in flight: once the daemon sends, the double holds the next
    sendMessage for a while before delivering it, as Telegram may deliver a message whose
    answer never arrives; the kill lands inside or just around that window."""
    sent = len(bot_api.sent(CHAT))
    with contextlib.suppress(AssertionError):  # nothing left to send: kill anyway
        wait_for(lambda: len(bot_api.sent(CHAT)) > sent, 8, "a send", daemon)
    bot_api.hang_next("sendMessage", HOLD)
    time.sleep(rng.uniform(0.0, HOLD + 0.5))


def _delivered(stream: FeedStream, bot_api: BotApiServer) -> list[int]:
    return stream.numbers_in(r.text for r in bot_api.sent(CHAT))


def _outbox_empty(db: Path) -> bool:
    conn = sqlite3.connect(db)
    try:
        (pending,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE state != 'sent'"
        ).fetchone()
        return int(pending) == 0
    finally:
        conn.close()


def _assert_store_sound(data: Path, stories: int) -> None:
    conn = sqlite3.connect(data / "watcher.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        states = dict(conn.execute("SELECT state, count(*) FROM entries GROUP BY state"))
        assert states == {"done": stories}
        (alerts,) = conn.execute("SELECT count(*) FROM alerts WHERE kind = 'new'").fetchone()
        assert alerts == stories
    finally:
        conn.close()
    store = open_store(f"sqlite:///{data / 'watcher.db'}")
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()
