"""The store: migrations from empty and older schemas, WAL mode, integrity, runs."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from watcher.errors import StoreError
from watcher.store import Store, open_store
from watcher.store.migrations import MIGRATIONS
from watcher.store.tables import metadata

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watcher.db'}"


def test_migrates_empty_database_to_latest(tmp_path: Path) -> None:
    store = open_store(_url(tmp_path))
    assert store.schema_version() == MIGRATIONS[-1].version
    assert store.integrity_problems() == []
    store.close()
    conn = sqlite3.connect(tmp_path / "watcher.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_versions_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_tables_module_matches_migrated_schema(tmp_path: Path) -> None:
    store = open_store(_url(tmp_path))
    inspector = sa.inspect(store._engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    store.close()


def test_upgrade_from_older_schema_keeps_data(tmp_path: Path) -> None:
    store = open_store(_url(tmp_path), migrate=False)
    store.migrate(target=1)
    assert store.schema_version() == 1
    run_id = store.start_run(42, "0.0.1", NOW)
    applied = store.migrate()
    assert [m.version for m in applied] == [m.version for m in MIGRATIONS[1:]]
    (run,) = store.runs()
    assert (run.id, run.pid, run.version, run.started_at) == (run_id, 42, "0.0.1", NOW)
    assert store.migrate() == []  # idempotent
    store.close()


def test_refuses_database_from_newer_watcher(tmp_path: Path) -> None:
    open_store(_url(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / "watcher.db")
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 999 is newer than this watcher knows"):
        open_store(_url(tmp_path))


def test_unopenable_location_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unable to open database file"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'watcher.db'}")


def test_runs_record_start_cycles_and_stop(tmp_path: Path) -> None:
    store: Store = open_store(_url(tmp_path))
    run_id = store.start_run(7, "1.0", NOW)
    store.count_cycle(run_id)
    store.count_cycle(run_id)
    store.stop_run(run_id, NOW)
    (run,) = store.runs()
    assert run.cycles == 2 and run.stopped_at == NOW and run.started_at.tzinfo is not None
    store.close()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    store = open_store(_url(tmp_path))
    with pytest.raises(StoreError, match="timezone-aware"):
        store.start_run(1, "x", datetime(2026, 1, 1))
    store.close()
