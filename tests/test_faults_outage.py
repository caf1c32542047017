"""Outages: Telegram answering 502 and the SMTP server down while a running daemon keeps
finding matching stories; everything queued is delivered after recovery, in order."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, stream_config, wait_for
from feedstream import FeedStream
from httpserver import HttpServer
from smtpserver import SmtpServer

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SEED = 7
STORIES = 12
CHAT = "1001"
MAILBOX = "desk@example.org"


def test_queued_alerts_survive_outages_and_a_restart_and_arrive_in_order(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, smtp_server: SmtpServer
) -> None:
    stream = FeedStream(http_server, seed=SEED, total=STORIES)
    data = tmp_path / "data"
    email = smtp_server.email_config(MAILBOX)
    config = stream_config(tmp_path, stream, bot_api, extra=email, data_dir=data)
    db = data / "watcher.db"

    def start(name: str) -> DaemonProcess:
        return DaemonProcess.start(
            config, token=bot_api.token, log=tmp_path / f"{name}.log", data_dir=data
        )

    def queued(n: int) -> Callable[[], bool]:
        return lambda: min(_pending(db).values(), default=0) >= n

    with start("first") as daemon:
        both = lambda: bool(_telegram(stream, bot_api) and _mail(stream, smtp_server))  # noqa: E731
        wait_for(both, 60, "the first alerts", daemon)
        # Both destinations go down while stories keep coming: alerts queue, attempts fail.
        bot_api.outage()
        smtp_server.stop()
        down_at = time.monotonic()
        wait_for(queued(3), 60, "alerts queued for both destinations", daemon)
        failing = {f"telegram:{CHAT}", f"email:{MAILBOX}"}
        wait_for(lambda: _failing(db) == failing, 15, "failures", daemon)
        assert daemon.stop() == 0, daemon.tail()

    # A restart during the outage keeps the queue: nothing is dropped or marked failed.
    with start("second") as daemon:
        wait_for(lambda: stream.complete, 60, "every story published", daemon)
        wait_for(queued(4), 60, "alerts queued after the restart", daemon)
        assert _states(db) <= {"pending", "sent"}
        outage = time.monotonic() - down_at
        bot_api.end_outage()
        smtp_server.start()
        everything = lambda: (  # noqa: E731
            sorted(_telegram(stream, bot_api)) == stream.ids()
            and sorted(_mail(stream, smtp_server)) == stream.ids()
        )
        recovery = wait_for(everything, 60, "every alert after recovery", daemon)
        assert daemon.stop() == 0, daemon.tail()

    print(f"\noutage {outage:.1f} s; {STORIES} alerts to each destination {recovery:.1f} s later")
    assert bot_api.calls("sendMessage", ok=False), "the outage was never seen"
    assert {r.status for r in bot_api.calls("sendMessage", ok=False)} == {502}
    # In order per destination: the order the outbox queued them in, with no duplicate.
    assert _telegram(stream, bot_api) == _queue_order(db, f"telegram:{CHAT}", stream)
    assert _mail(stream, smtp_server) == _queue_order(db, f"email:{MAILBOX}", stream)
    assert _states(db) == {"sent"}


def _telegram(stream: FeedStream, bot_api: BotApiServer) -> list[int]:
    return stream.numbers_in(r.text for r in bot_api.sent(CHAT))


def _mail(stream: FeedStream, smtp: SmtpServer) -> list[int]:
    bodies = []
    for received in smtp.received:
        assert received.rcpt_tos == [MAILBOX]
        bodies.append(received.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    return stream.numbers_in(bodies)


def _query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        conn.close()


def _pending(db: Path) -> dict[str, int]:
    rows = _query(
        db, "SELECT destination, count(*) FROM deliveries WHERE state = 'pending' GROUP BY 1"
    )
    return {str(d): int(n) for d, n in rows}  # type: ignore[call-overload]


def _failing(db: Path) -> set[str]:
    rows = _query(db, "SELECT name FROM destinations WHERE failures >= 2")
    return {str(name) for (name,) in rows}


def _states(db: Path) -> set[str]:
    return {str(s) for (s,) in _query(db, "SELECT DISTINCT state FROM deliveries")}


def _queue_order(db: Path, destination: str, stream: FeedStream) -> list[int]:
    rows = _query(
        db,
        "SELECT a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE d.destination = ? ORDER BY d.id",
        destination,
    )
    return stream.numbers_in(str(payload) for (payload,) in rows)
