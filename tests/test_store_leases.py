"""Leases and the election on a real PostgreSQL: two Store objects stand in for two replicas."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from daemonproc import wait_for
from pgserver import PgServer

from watcher.cli import main
from watcher.config import FeedConfig
from watcher.errors import StoreError
from watcher.store import Store, open_store
from watcher.store.alerts import ArticleRecord
from watcher.store.feeds import PollSuccess
from watcher.types import Article, ArticleSource, Entry, NewEntry, Route

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = 30.0


@pytest.fixture
def pair(pg_server: PgServer) -> Iterator[tuple[Store, Store]]:
    url = pg_server.new_database()
    a, b = open_store(url, lease=LEASE), open_store(url, lease=LEASE)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _feeds(store: Store, n: int) -> None:
    store.sync_feeds([FeedConfig(url=f"https://f{i}.example/rss") for i in range(n)], NOW)


def test_each_due_feed_goes_to_one_replica_until_its_lease_ends(pair: tuple[Store, Store]) -> None:
    a, b = pair
    _feeds(a, 5)
    first = {f.id for f in a.due_feeds(NOW)}
    assert len(first) == 5
    assert b.due_feeds(NOW) == []  # all claimed
    assert a.due_feeds(NOW) == []  # claimed is not due, even for the holder
    later = NOW + timedelta(seconds=LEASE + 1)  # nobody recorded a poll: the lease ended
    assert {f.id for f in b.due_feeds(later)} == first


def test_a_recorded_poll_sets_the_real_next_time(pair: tuple[Store, Store]) -> None:
    a, b = pair
    _feeds(a, 1)
    (feed,) = a.due_feeds(NOW)
    a.record_not_modified(feed.id, NOW, NOW + timedelta(seconds=5), None)
    assert b.due_feeds(NOW + timedelta(seconds=6))[0].id == feed.id  # not a lease later


def test_claims_are_capped_so_replicas_share(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    a, b = open_store(url), open_store(url)
    try:
        _feeds(a, 450)
        got = [len(a.due_feeds(NOW)), len(b.due_feeds(NOW)), len(a.due_feeds(NOW))]
        assert got == [200, 200, 50]
    finally:
        a.close()
        b.close()


def _pending(store: Store, n: int, site: str = "news.example") -> list[int]:
    (feed,) = [
        f for f in store.sync_feeds([FeedConfig(url=f"https://{site}/rss")], NOW) if site in f.url
    ]
    new = [
        NewEntry(
            Entry(f"g{i}", f"https://{site}/{i}", f"T{i}", "", "", "", NOW, None, "en"),
            (f"guid:{site}:g{i}",),
            f"fp{i}",
        )
        for i in range(n)
    ]
    return store.record_poll_success(
        feed.id, PollSuccess(NOW, NOW + timedelta(hours=1), None, None, None, new=new)
    )


def test_each_pending_entry_goes_to_one_replica(pair: tuple[Store, Store]) -> None:
    a, b = pair
    ids = _pending(a, 6)
    mine = [p.id for p in a.pending_entries(4)]
    theirs = [p.id for p in b.pending_entries(100)]
    assert sorted(mine + theirs) == ids and not set(mine) & set(theirs)
    assert [p.id for p in a.pending_entries(100)] == mine  # the holder renews its own


def test_entries_held_longer_than_a_lease_stay_with_their_replica_once_renewed(
    pair: tuple[Store, Store],
) -> None:
    """A replica renews the claims of the entries still queued or in progress; an entry it
    stopped renewing goes to another replica once its lease ends."""
    a, b = pair
    held, dropped = _pending(a, 2)
    start = datetime.now(UTC)
    assert [p.id for p in a.pending_entries(100, now=start)] == [held, dropped]
    a.renew_entries([held], now=start + timedelta(seconds=LEASE - 5))
    later = start + timedelta(seconds=LEASE + 5)  # the first claims have ended
    assert [p.id for p in b.pending_entries(100, now=later)] == [dropped]
    b.renew_entries([held], now=later)  # not b's: renewing claims nothing
    last = start + timedelta(seconds=2 * LEASE)  # a's renewal has ended too
    assert [p.id for p in b.pending_entries(100, now=last)] == [held, dropped]


def test_a_takeover_after_a_lease_ran_out_is_logged_and_a_clean_stop_is_not(
    pair: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    ids = _pending(a, 4)
    _alert(a, ids[3], "telegram:-1001")  # that entry is done; three stay pending
    start = datetime.now(UTC)
    assert len(a.pending_entries(100, now=start)) == 3 and a.outbox_heads(start)
    later = start + timedelta(seconds=LEASE + 5)  # a stopped renewing: it died
    with caplog.at_level(logging.WARNING, logger="watcher.store.leases"):
        assert len(b.pending_entries(100, now=later)) == 3
        assert b.outbox_heads(later)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all(a.holder.owner in line for line in said)
    caplog.clear()
    b.leave(later)  # a clean stop: the next replica takes over without a word
    with caplog.at_level(logging.WARNING, logger="watcher.store.leases"):
        assert len(a.pending_entries(100, now=later)) == 3 and a.outbox_heads(later)
    assert caplog.records == []


def test_a_flooding_feed_cannot_take_the_whole_claim(pair: tuple[Store, Store]) -> None:
    """The per-feed window is chosen before the claim, so the claim leaves nothing unread."""
    a, b = pair
    flood = _pending(a, 40, "flood.example")
    quiet = _pending(a, 2, "quiet.example")
    mine = {p.id for p in a.pending_entries(10, per_feed=5)}
    assert set(quiet) <= mine and len(mine & set(flood)) == 5  # the flood's newest five
    theirs = {p.id for p in b.pending_entries(100, per_feed=5)}
    assert theirs and not theirs & mine  # nothing claimed and left unread by the first


def _alert(store: Store, entry_id: int, destination: str) -> None:
    article = Article(
        url=f"https://news.example/a{entry_id}",
        title="t",
        text="x",
        source=ArticleSource.PAGE,
        language="en",
    )
    payload = {"priority": "normal", "title": "t", "rules": []}
    rec = ArticleRecord(
        entry_id=entry_id,
        feed_id=None,
        url=article.url,
        article=article,
        now=NOW,
        alert_kind="new",
        payload=payload,
        routes=[Route(destination, False, None)],
    )
    assert store.record_article(rec) is not None


def test_one_replica_drains_a_destination_at_a_time(pair: tuple[Store, Store]) -> None:
    a, b = pair
    ids = _pending(a, 2)
    _alert(a, ids[0], "telegram:-1001")
    _alert(a, ids[1], "email:desk@example.org")
    heads_a = a.outbox_heads(NOW)
    assert {j.destination for j in heads_a} == {"telegram:-1001", "email:desk@example.org"}
    assert b.outbox_heads(NOW) == []
    a.leave(NOW)  # a clean stop hands them over at once
    assert {j.destination for j in b.outbox_heads(NOW)} == {j.destination for j in heads_a}


def test_a_drain_of_some_destinations_claims_no_other(pair: tuple[Store, Store]) -> None:
    """A stopping replica writes its local sinks' queue and leaves Telegram to the others."""
    a, b = pair
    ids = _pending(a, 2)
    _alert(a, ids[0], "telegram:-1001")
    _alert(a, ids[1], "console")
    assert [j.destination for j in a.outbox_heads(NOW, ["console", "jsonl"])] == ["console"]
    assert [j.destination for j in b.outbox_heads(NOW)] == ["telegram:-1001"]


def test_the_same_article_from_two_replicas_is_stored_once(pair: tuple[Store, Store]) -> None:
    a, b = pair
    first, second = _pending(a, 2)
    _alert(a, first, "telegram:-1001")
    article = Article(
        url=f"https://news.example/a{first}", title="t", text="x", source=ArticleSource.PAGE
    )
    again = ArticleRecord(entry_id=second, feed_id=None, url=article.url, article=article, now=NOW)
    assert b.record_article(again) is None


def test_an_election_outage_is_logged_once_and_its_end_once(
    pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(pg_server.new_database())
    try:
        assert store.lead() is True
        pg_server.stop()
        with caplog.at_level(logging.INFO, logger="watcher.store.replicas"):
            assert [store.lead() for _ in range(4)] == [False] * 4  # one round per lease / 4
            lost = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(lost) == 1 and "\n" not in lost[0].getMessage()
            pg_server.restart()
            assert store.lead() is True and store.lead() is True
        back = [r for r in caplog.records if r.levelno == logging.INFO]
        assert len(back) == 2  # the connection works again; elected again
    finally:
        if pg_server.pid() is None:
            pg_server.restart()
        store.close()


def test_connections_name_their_replica_for_the_dba(pair: tuple[Store, Store]) -> None:
    a, _ = pair
    with a.transaction() as conn:
        name = conn.execute(sa.text("SELECT current_setting('application_name')")).scalar()
    assert name == f"watcher {socket.gethostname()[:40]}:{os.getpid()}"


def test_one_elected_replica_and_a_takeover_when_it_goes(pair: tuple[Store, Store]) -> None:
    a, b = pair
    assert a.lead() is True
    assert b.lead() is False
    assert a.lead() is True  # still held
    a.close()  # its connection ends, as when the process dies
    # The server releases the lock when the dead session's backend exits, which on a busy
    # machine can come a moment after the client closed its socket: b is elected at one of
    # its next tries (the daemon asks every tick).
    wait_for(b.lead, 30, "the other replica to be elected")


def test_status_lists_replicas_and_their_leases(pair: tuple[Store, Store]) -> None:
    a, b = pair
    _feeds(a, 3)
    a.beat(NOW, 11, "1.0", leader=a.lead())
    b.beat(NOW, 22, "1.0", leader=b.lead())
    a.due_feeds(NOW)
    rows = a.replicas(NOW - timedelta(minutes=1))
    assert [(r.pid, r.leader) for r in rows] == [(11, True), (22, False)]
    (held,) = a.lease_counts(NOW)
    assert (held.owner, held.kind, held.held) == (a.holder.owner, "feeds", 3)


def test_sqlite_is_one_replica_that_always_leads(tmp_path_factory: pytest.TempPathFactory) -> None:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('s') / 'w.db'}")
    _feeds(store, 2)
    assert not store.shared and store.lead()
    assert len(store.due_feeds(NOW)) == 2 and len(store.due_feeds(NOW)) == 2  # no claims
    store.close()


def test_status_command_shows_replicas_and_leases(
    pair: tuple[Store, Store],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = pair
    _feeds(a, 2)
    now = datetime.now(UTC)
    a.beat(now, 11, "1.0", leader=a.lead())
    b.beat(now, 22, "1.0", leader=b.lead())
    a.due_feeds(now)
    folder = tmp_path_factory.mktemp("cfg")
    config = folder / "config.toml"
    url = a._engine.url.render_as_string(hide_password=False)
    config.write_text(f'[watcher]\ndata_dir = "data"\n[store]\nurl = "{url}"\n')
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "replicas alive: 2" in out and "elected  pid 11" in out
    assert f"{a.holder.owner}  2 feeds" in out


def test_one_replica_decides_at_a_time(pair: tuple[Store, Store]) -> None:
    a, b = pair
    a.lock_decisions()
    inside = threading.Event()

    def other() -> None:
        b.lock_decisions()  # blocks until a unlocks
        inside.set()
        b.unlock_decisions()

    thread = threading.Thread(target=other)
    thread.start()
    assert not inside.wait(1.0)  # still held by a
    a.unlock_decisions()
    assert inside.wait(60)
    thread.join(60)


def test_a_lost_decision_connection_is_a_one_line_store_error_naming_the_store(
    pair: tuple[Store, Store],
) -> None:
    a, b = pair
    a.lock_decisions()
    a.unlock_decisions()
    assert a._decide_conn is not None
    pid = a._decide_conn.execute(sa.select(sa.func.pg_backend_pid())).scalar()
    a._decide_conn.commit()
    with b.transaction() as conn:  # the server ends a's session, as a restart would
        conn.execute(sa.select(sa.func.pg_terminate_backend(pid)))
    with pytest.raises(StoreError) as raised:
        a.lock_decisions()
    message = str(raised.value)
    assert message.startswith(a.url) and "\n" not in message  # psycopg's lines joined
    a.lock_decisions()  # a new connection
    a.unlock_decisions()


def test_a_replica_claims_its_new_entries_by_id_past_any_backlog(pair: tuple[Store, Store]) -> None:
    """The replica whose poll found entries claims them by id at once; the backlog stays
    free for the others."""
    a, b = pair
    backlog = _pending(a, 20, "backlog.example")
    fresh = _pending(a, 2, "fresh.example")
    got = {p.id for p in a.pending_entries(10, ids=[*fresh, backlog[0]])}
    assert got == {*fresh, backlog[0]}
    assert {p.id for p in b.pending_entries(100)} == set(backlog[1:])  # not claimed by a
    assert b.pending_entries(100, ids=fresh) == []  # a holds them
    assert {p.id for p in a.pending_entries(100, ids=fresh)} == set(fresh)  # renewed
