"""The Store class: connection handling, migrations and integrity; domain methods are mixins."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StoreError
from watcher.store.alerts import AlertsMixin
from watcher.store.botstate import BotStateMixin
from watcher.store.dialect import (
    engine_options,
    error_reason,
    redact_url,
    store_url_hint,
    url_problem,
)
from watcher.store.feeds import FeedsMixin
from watcher.store.leases import Holder
from watcher.store.migrations import MIGRATIONS, Migration
from watcher.store.outbox import OutboxMixin
from watcher.store.protocols import (
    ArticleStore,
    BotStateStore,
    FeedStore,
    OutboxStore,
    ReplicaStore,
    RunStore,
)
from watcher.store.replicas import ReplicasMixin
from watcher.store.runs import RunsMixin

log = logging.getLogger(__name__)

_VERSION_TABLE = "schema_version"
# pg_advisory_lock key serialising migrations across replicas ("watcher" in ASCII).
_MIGRATION_LOCK = 0x77617463686572


class Store(RunsMixin, FeedsMixin, AlertsMixin, OutboxMixin, BotStateMixin, ReplicasMixin):
    """Everything watcher remembers, on SQLite or PostgreSQL. It implements every Protocol
    in ``watcher.store.protocols`` and keeps their contract (errors, UTC, threading)."""

    def __init__(self, engine: Engine, holder: Holder | None = None) -> None:
        self._engine = engine
        # Who this process is when it claims work on a shared (PostgreSQL) store.
        self.holder = holder or Holder.for_this_process(120.0)
        self._leader_conn: Connection | None = None
        self._decide_conn: Connection | None = None

    @property
    def url(self) -> str:
        return redact_url(self._engine.url.render_as_string(hide_password=True))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success; errors become StoreError."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: {error_reason(exc)}") from exc

    def schema_version(self) -> int:
        with self.transaction() as conn:
            return _current_version(conn)

    def migrate(self, target: int | None = None, *, upgrade: bool = True) -> list[Migration]:
        """Apply pending migrations up to ``target`` (default: latest); return those applied.

        On PostgreSQL this runs under an advisory lock, so replicas may start together: the
        first migrates, the others wait, then find nothing left to do. ``upgrade=False``
        migrates only a new store and refuses an older schema (StoreError)."""
        latest = MIGRATIONS[-1].version
        target = latest if target is None else target
        with self._migration_lock():
            with self.transaction() as conn:
                _ensure_version_table(conn)
                current = _current_version(conn)
            if current > latest:
                raise StoreError(
                    f"{self.url}: schema version {current} is newer than this watcher knows "
                    f"({latest}); upgrade watcher on every replica, or use another database"
                )
            if not upgrade and 0 < current < latest:
                raise StoreError(
                    f"{self.url}: schema version {current} is older than this watcher's "
                    f"({latest}); `watcher run` upgrades it (stop the older replicas first); "
                    "this command changes nothing"
                )
            applied = []
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    self._apply(migration)
                    applied.append(migration)
        return applied

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self._engine.dialect.name != "postgresql":
            yield  # SQLite: one replica, and the data directory lock keeps it so
            return
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                    conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: {error_reason(exc)}") from exc

    def _apply(self, migration: Migration) -> None:
        log.info("store: applying migration %d (%s)", migration.version, migration.name)
        with self.transaction() as conn:
            migration.upgrade(conn)
            conn.execute(sa.text(f"DELETE FROM {_VERSION_TABLE}"))
            conn.execute(
                sa.text(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (:v)"),
                {"v": migration.version},
            )

    def integrity_problems(self) -> list[str]:
        """Problems SQLite's integrity and foreign-key checks find; empty when healthy."""
        if self._engine.dialect.name != "sqlite":
            return []
        with self.transaction() as conn:
            rows = [r[0] for r in conn.execute(sa.text("PRAGMA integrity_check"))]
            fks = list(conn.execute(sa.text("PRAGMA foreign_key_check")))
        problems = [r for r in rows if r != "ok"]
        return problems + [f"foreign key violation: {tuple(r)}" for r in fks]

    def close(self) -> None:
        self._drop_leadership()
        self._drop_decisions()
        if self._engine.dialect.name == "sqlite":
            # Fold the WAL back into the main file so a stopped store is one consistent file.
            try:
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except SQLAlchemyError as exc:
                log.warning("store: checkpoint on close failed: %s", error_reason(exc))
        self._engine.dispose()


def _implements(
    store: Store,
) -> tuple[FeedStore, ArticleStore, OutboxStore, BotStateStore, RunStore, ReplicaStore]:
    """Never called: mypy checks here that Store keeps every per-domain Protocol."""
    return store, store, store, store, store, store


def open_store(
    url: str, *, migrate: bool = True, lease: float = 120.0, upgrade: bool = True
) -> Store:
    """Open (creating if needed) the store at ``url`` and bring its schema up to date.

    ``lease`` is how long this process's claims last on a store shared by replicas.
    ``upgrade=False`` (commands that only read) still creates a new store's schema but
    refuses to upgrade an older one. Raises StoreError when the driver is missing (naming
    the extra to install), the database cannot be reached, or its schema is newer than this
    watcher (or older, without ``upgrade``)."""
    engine = _engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    store = Store(engine, Holder.for_this_process(lease))
    with store.transaction() as conn:
        _quick_check(conn)
    # The version table is made by migrate() under its lock: replicas may start together.
    if migrate:
        try:
            store.migrate(upgrade=upgrade)
        except StoreError:
            store.close()
            raise
    else:
        with store.transaction() as conn:
            _ensure_version_table(conn)
    return store


def _engine(url: str) -> sa.Engine:
    """The engine for ``url``; StoreError for a URL that cannot be used or a missing driver
    (nothing connects yet)."""
    if problem := url_problem(url):
        raise StoreError(problem)
    try:
        return sa.create_engine(url, future=True, **engine_options(url))
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(store_url_hint(url, exc)) from exc


def probe_store(url: str) -> str:
    """Connect to the store without changing it and say what is there, for ``watcher check``.

    Raises StoreError (missing driver, unreachable, schema newer than this watcher)."""
    latest = MIGRATIONS[-1].version
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return f"store {url}: not created yet (made on first run)"
    engine = _engine(url)
    store = Store(engine)
    try:
        with store.transaction() as conn:
            has_table = sa.inspect(conn).has_table(_VERSION_TABLE)
            current = _current_version(conn) if has_table else 0
    finally:
        engine.dispose()
    if current > latest:
        raise StoreError(
            f"{store.url}: schema version {current} is newer than this watcher knows ({latest}); "
            "upgrade watcher"
        )
    todo = f", {latest - current} migration(s) to apply on start" if current < latest else ""
    return f"store {store.url}: reachable, schema version {current}{todo}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL is crash-safe in WAL mode (a killed process loses nothing committed).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _quick_check(conn: Connection) -> None:
    """StoreError naming the file when SQLite finds it damaged; a cheap check (no index
    cross-checks), run before anything reads or writes the store."""
    if conn.dialect.name != "sqlite":
        return
    rows = [str(r[0]) for r in conn.execute(sa.text("PRAGMA quick_check(5)"))]
    lines = [line for row in rows for line in row.splitlines() if not line.startswith("***")]
    if lines != ["ok"]:
        raise StoreError(
            f"{conn.engine.url.database}: the database file is damaged ({lines[0]}); "
            "restore it from a backup, or move it aside to start with an empty store"
        )


def _ensure_version_table(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(_VERSION_TABLE, md, sa.Column("version", sa.Integer, nullable=False))
    md.create_all(conn)


def _current_version(conn: Connection) -> int:
    row = conn.execute(sa.text(f"SELECT max(version) FROM {_VERSION_TABLE}")).first()
    return int(row[0]) if row and row[0] is not None else 0
