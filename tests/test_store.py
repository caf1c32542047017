"""The store on SQLite and PostgreSQL: migrations, newer schemas, runs, drivers, replicas racing."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from pgserver import PgServer
from test_store_alerts import pending_entries, record

from watcher.cli import main
from watcher.config import FeedConfig
from watcher.errors import StoreError
from watcher.store import Store, open_store, probe_store
from watcher.store.copy import copy_store
from watcher.store.dialect import redact_url, url_problem
from watcher.store.migrations import MIGRATIONS
from watcher.store.tables import metadata, mutes

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watcher.db'}"


def test_migrates_empty_database_to_latest(store_url: str) -> None:
    store = open_store(store_url)
    assert store.schema_version() == MIGRATIONS[-1].version
    assert store.integrity_problems() == []
    store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    open_store(_url(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / "watcher.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_versions_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_tables_module_matches_migrated_schema(store_url: str) -> None:
    store = open_store(store_url)
    inspector = sa.inspect(store._engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    store.close()


def test_json_columns_are_jsonb_on_postgresql(pg_server: PgServer) -> None:
    store = open_store(pg_server.new_database())
    types = {c["name"]: c["type"] for c in sa.inspect(store._engine).get_columns("alerts")}
    assert type(types["payload"]).__name__ == "JSONB"
    store.close()


def test_upgrade_from_older_schema_keeps_data(store_url: str) -> None:
    store = open_store(store_url, migrate=False)
    store.migrate(target=1)
    assert store.schema_version() == 1
    run_id = store.start_run(42, "0.0.1", NOW)
    applied = store.migrate()
    assert [m.version for m in applied] == [m.version for m in MIGRATIONS[1:]]
    (run,) = store.runs()
    assert (run.id, run.pid, run.version, run.started_at) == (run_id, 42, "0.0.1", NOW)
    assert store.migrate() == []  # idempotent
    store.close()


def test_a_read_creates_a_new_store_but_never_upgrades_an_older_one(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = open_store(store_url, upgrade=False)  # nothing there yet: the schema is made
    assert fresh.schema_version() == MIGRATIONS[-1].version
    fresh.close()
    old_url = store_url + "-old" if store_url.startswith("sqlite") else store_url
    if not store_url.startswith("sqlite"):  # the same database, taken back to version 1
        with sa.create_engine(store_url).begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    old = open_store(old_url, migrate=False)
    old.migrate(target=1)
    old.close()
    with pytest.raises(StoreError):
        open_store(old_url, upgrade=False)
    config = tmp_path / "old.toml"
    config.write_text(f'[watcher]\ndata_dir = "{tmp_path / "data"}"\n[store]\nurl = "{old_url}"\n')
    assert main(["alerts", "--config", str(config)]) == 1  # says why, changes nothing
    assert capsys.readouterr().err.strip()
    still = open_store(old_url, migrate=False)
    assert still.schema_version() == 1
    still.close()


def test_text_json_of_an_older_postgresql_database_becomes_jsonb(pg_server: PgServer) -> None:
    """Versions 2-3 used to create JSON columns as TEXT on PostgreSQL; 4 converts them."""
    store = open_store(pg_server.new_database(), migrate=False)
    store.migrate(target=3)
    with store.transaction() as conn:
        conn.execute(sa.text("ALTER TABLE feeds ALTER COLUMN tags DROP DEFAULT"))
        conn.execute(sa.text("ALTER TABLE feeds ALTER COLUMN tags TYPE TEXT USING tags::text"))
        conn.execute(sa.text("ALTER TABLE feeds ALTER COLUMN tags SET DEFAULT '[]'"))
        conn.execute(
            sa.text(
                "INSERT INTO feeds (url, name, tags, added_at) "
                "VALUES ('https://a.example/feed', 'a', '[\"x\", \"y\"]', now())"
            )
        )
    store.migrate()
    (feed,) = store.feeds()
    assert feed.tags == ("x", "y")
    store.close()


def test_refuses_database_from_newer_watcher(store_url: str) -> None:
    store = open_store(store_url)
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 999"))
    store.close()
    with pytest.raises(StoreError, match="999"):
        open_store(store_url)


def test_unopenable_location_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unable to open database file"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'watcher.db'}")


def test_unreachable_postgresql_is_a_store_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once this closes
    with pytest.raises(StoreError):
        open_store(f"postgresql+psycopg://watcher@127.0.0.1:{port}/nothing")


def test_missing_driver_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from watcher.errors import StoreError\n"
        "from watcher.store import open_store\n"
        "try:\n"
        "    open_store('postgresql+psycopg://u:secret@127.0.0.1:1/db')\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert "watcher[postgres]" in out.stdout and "secret" not in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once this closes


@pytest.mark.parametrize(
    "url",
    [
        "postgres://watcher:S3cretPW!x@127.0.0.1:{port}/watcher",  # a scheme SQLAlchemy lacks
        "mysql://watcher:S3cretPW!x@127.0.0.1:{port}/watcher",  # a driver not installed
        "postgresql+psycopg2://watcher:S3cretPW@127.0.0.1:{port}/watcher",
        "postgresql+psycopg://watcher:S3cret@PW@127.0.0.1:{port}/watcher",  # "@" not encoded
        "postgresql+psycopg://watcher:S3cretPW@127.0.0.1:{port}/watcher",  # nothing listens
        "postgresql+psycopg://watcher@127.0.0.1:{port}/watcher?password=S3cretPW&user=watcher",
        "postgres://watcher:S3cret#PW@127.0.0.1:{port}/watcher",  # "#" and "?": still hidden
        "postgresql+psycopg://watcher:S3cret?PW@127.0.0.1:{port}/watcher",
        "postgresql+psycopg://watcher@srv:S3cretPW@127.0.0.1:{port}/watcher",  # user "a@b"
    ],
)
def test_store_errors_never_show_the_password(url: str) -> None:
    url = url.format(port=_refused_port())
    for opening in (open_store, probe_store):
        with pytest.raises(StoreError) as refused:
            opening(url)
        said = str(refused.value)
        assert "S3cret" not in said and "PW@" not in said and "***" in said
        assert len(said.splitlines()) == 1  # one log line, psycopg's hint joined in


def test_a_url_without_a_password_is_shown_as_written() -> None:
    for url in ("sqlite:////data/a@b/watcher.db", "postgresql+psycopg://w@db.example/w"):
        assert redact_url(url) == url and url_problem(url) == ""


def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    errors: list[BaseException] = []
    feeds = [FeedConfig(url=f"https://n{i}.example/feed") for i in range(20)]

    def start() -> None:
        try:
            store = open_store(url)
            store.sync_feeds(feeds, NOW)
            store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    store = open_store(url)
    assert store.schema_version() == MIGRATIONS[-1].version and len(store.feeds()) == 20
    store.close()


def test_runs_record_start_cycles_and_stop(store_url: str) -> None:
    store: Store = open_store(store_url)
    run_id = store.start_run(7, "1.0", NOW)
    store.count_cycle(run_id)
    store.count_cycle(run_id)
    store.stop_run(run_id, NOW)
    (run,) = store.runs()
    assert run.cycles == 2 and run.stopped_at == NOW and run.started_at.tzinfo is not None
    store.close()


def test_naive_datetimes_are_refused(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(StoreError):
        store.start_run(1, "x", datetime(2026, 1, 1))
    store.close()


def test_check_connects_to_the_store_and_reports(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(store_url).close()
    (tmp_path / "rules").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[watcher]\nrules_dir = "rules"\n[store]\nurl = "{store_url}"\n')
    assert main(["check", "--config", str(config)]) == 0
    assert f"schema version {MIGRATIONS[-1].version}" in capsys.readouterr().out


def test_check_fails_when_the_store_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "rules").mkdir()
    config = tmp_path / "config.toml"
    url = f"postgresql+psycopg://watcher@127.0.0.1:{port}/nothing"
    config.write_text(f'[watcher]\nrules_dir = "rules"\n[store]\nurl = "{url}"\n')
    assert main(["check", "--config", str(config)]) == 1
    assert str(port) in capsys.readouterr().err


def test_store_copy_moves_everything_from_sqlite_to_postgresql(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _url(tmp_path)
    store = open_store(source)
    store.sync_feeds([FeedConfig(url="https://a.example/rss", tags=("x",))], NOW)
    store.start_run(5, "1.0", NOW)
    store.add_mute("rule:x", NOW, NOW, by="me")
    store.close()
    target = pg_server.new_database()
    assert main(["store", "copy", "--from", source, "--to", target]) == 0
    assert "copied" in capsys.readouterr().out
    copy = open_store(target)
    (feed,) = copy.feeds()
    assert feed.tags == ("x",) and feed.added_at == NOW
    assert copy.start_run(6, "1.0", NOW) == 2  # ids continue after the copied ones
    copy.close()
    with pytest.raises(StoreError):  # never into a store that has data
        copy_store(source, target)


def test_pending_entries_by_id_reads_only_those_still_pending(store_url: str) -> None:
    """A poll's new entries are read by id, however large the backlog before them."""
    store = open_store(store_url)
    try:
        ids = pending_entries(store, 30)
        store.finish_entry(ids[3])
        wanted = [ids[2], ids[3], ids[17]]
        got = store.pending_entries(10, ids=wanted)
        assert sorted(p.id for p in got) == [ids[2], ids[17]]  # ids[3] is done
        assert {p.entry.guid for p in got} == {"g2", "g17"}
        assert store.pending_entries(10, ids=[]) == []
    finally:
        store.close()


def _race(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` at once, one thread each, released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: dict[int, T] = {}

    def run(i: int) -> None:
        barrier.wait(timeout=60)
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return [results[i] for i in range(len(calls))]


def _active_rows(store: Store, target: str) -> int:
    query = sa.select(sa.func.count()).select_from(mutes)
    query = query.where(mutes.c.target == target, mutes.c.until > NOW)
    with store.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def test_mutes_set_at_once_by_two_replicas_leave_one_active(store_url: str) -> None:
    """Two replicas' bots re-mute a rule at the same moment: one mute stays active, never
    both (of two active rows the longer would win, whoever pressed last)."""
    a, b = open_store(store_url), open_store(store_url)
    try:
        for round_ in range(25):
            target = f"rule:r{round_}"
            ends = [NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
            stores = zip((a, b), ends, strict=True)
            _race([partial(s.set_mute, target, end, NOW) for s, end in stores])
            assert _active_rows(a, target) == 1, round_
            assert a.active_mutes(NOW)[target] in ends
    finally:
        a.close()
        b.close()


def test_mute_button_pressed_at_once_on_two_replicas_mutes_once(store_url: str) -> None:
    a, b = open_store(store_url), open_store(store_url)
    until = NOW + timedelta(hours=1)
    try:
        for round_ in range(25):
            target = f"rule:b{round_}"
            results = _race([partial(s.add_mute_once, target, until, NOW) for s in (a, b)])
            assert sorted(muted for _, muted in results) == [False, True], round_
            assert _active_rows(a, target) == 1, round_
    finally:
        a.close()
        b.close()


def test_feedback_pressed_at_once_on_two_replicas_counts_once(store_url: str) -> None:
    a, b = open_store(store_url), open_store(store_url)
    try:
        for round_ in range(25):
            a.record_article(record(round_))
            alert_id = a.recent_alerts(limit=1)[0].id
            press = "not_relevant", "telegram:1", NOW
            presses = [partial(s.add_feedback_once, alert_id, *press) for s in (a, b)]
            assert sorted(map(len, _race(presses))) == [0, 1], round_
        assert a.feedback_counts() == {"venezuela": 25}
    finally:
        a.close()
        b.close()
