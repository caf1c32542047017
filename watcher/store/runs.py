"""Store methods for daemon runs: when each daemon started, stopped, and how many cycles ran."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store.tables import new_id, runs


@dataclass(frozen=True)
class Run:
    id: int
    pid: int
    version: str
    started_at: datetime
    stopped_at: datetime | None
    cycles: int


class RunsMixin:
    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def start_run(self, pid: int, version: str, now: datetime) -> int:
        with self.transaction() as conn:
            result = conn.execute(runs.insert().values(pid=pid, version=version, started_at=now))
            return new_id(result)

    def count_cycle(self, run_id: int) -> None:
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(cycles=runs.c.cycles + 1))

    def stop_run(self, run_id: int, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(stopped_at=now))

    def runs(self, limit: int = 20) -> list[Run]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        with self.transaction() as conn:
            return [Run(**row._mapping) for row in conn.execute(query)]
