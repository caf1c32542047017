"""`watcher store copy`: every row of one store into another, empty one (SQLite to PostgreSQL)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from watcher.errors import StoreError
from watcher.store.base import Store, open_store
from watcher.store.tables import metadata

log = logging.getLogger(__name__)

_CHUNK = 2000
# Rows that only mean something while a replica runs: not copied.
_TRANSIENT = {"replicas"}


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every table, keeping ids, then move the target's id sequences past them.

    Both stores are brought to the latest schema first; the target must hold no data, so a
    copy is never merged into (or doubled in) a live database. Stop the daemon first: rows
    written during the copy may be missed. Returns rows copied per table."""
    source, target = open_store(source_url), open_store(target_url)
    try:
        _refuse_non_empty(target)
        copied = {}
        with source.transaction() as src, target.transaction() as dst:
            for table in metadata.sorted_tables:  # parents before children (foreign keys)
                if table.name not in _TRANSIENT:
                    copied[table.name] = _copy_table(src, dst, table)
            _reset_sequences(dst)
        return copied
    finally:
        source.close()
        target.close()


def _refuse_non_empty(target: Store) -> None:
    with target.transaction() as conn:
        for table in metadata.sorted_tables:
            if (
                table.name not in _TRANSIENT
                and conn.execute(sa.select(1).select_from(table).limit(1)).first()
            ):
                raise StoreError(
                    f"{target.url}: table {table.name} already has rows; "
                    "copy only into an empty database"
                )


def _copy_table(src: sa.Connection, dst: sa.Connection, table: sa.Table) -> int:
    total = 0
    order = list(table.primary_key.columns)
    result = src.execution_options(stream_results=True).execute(sa.select(table).order_by(*order))
    for rows in result.mappings().partitions(_CHUNK):
        dst.execute(table.insert(), [dict(r) for r in rows])
        total += len(rows)
    log.info("store copy: %s: %d rows", table.name, total)
    return total


def _reset_sequences(dst: sa.Connection) -> None:
    """PostgreSQL hands out ids from a sequence that the copied rows did not advance."""
    if dst.dialect.name != "postgresql":
        return
    for table in metadata.sorted_tables:
        key = table.c.get("id")
        if key is None or not isinstance(key.type, sa.Integer):
            continue
        dst.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )
        )
