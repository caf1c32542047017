"""The state store: one interface over SQLAlchemy Core, SQLite (WAL) by default."""

from watcher.store.base import Store, open_store, probe_store

__all__ = ["Store", "open_store", "probe_store"]
