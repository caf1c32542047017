"""Store methods for replicas on one PostgreSQL: heartbeats, the elected replica, who holds what."""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StoreError
from watcher.store.dialect import error_reason, insert
from watcher.store.leases import Holder, release
from watcher.store.tables import destinations, entries, feeds, replicas

log = logging.getLogger(__name__)

# pg_advisory_lock key of the elected replica ("leader" in ASCII).
LEADER_LOCK = 0x6C6561646572
# ... and of the replica deciding an article's story and alert ("decide").
DECIDE_LOCK = 0x646563696465
_LEASED = (("feeds", feeds), ("entries", entries), ("destinations", destinations))


def alive_since(now: datetime, lease: float) -> datetime:
    """The last beat a replica alive at ``now`` has given: a replica beats every lease/4
    seconds, so one not seen for a whole lease (``[store] lease`` seconds) is gone."""
    return now - timedelta(seconds=lease)


@dataclass(frozen=True)
class ReplicaRow:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    seen_at: datetime
    leader: bool


@dataclass(frozen=True)
class LeaseCount:
    """How many rows of a kind (feeds, entries, destinations) a replica holds right now."""

    owner: str
    kind: str
    held: int
    oldest: datetime  # when the earliest of these leases ends


class ReplicasMixin:
    holder: Holder
    _engine: Engine
    _leader_conn: Connection | None
    _decide_conn: Connection | None
    _election_failing: bool = False  # the last election round could not reach the database

    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def shared(self) -> bool:
        """Whether replicas may share this store (PostgreSQL); SQLite has exactly one."""
        return self._engine.dialect.name == "postgresql"

    def lead(self) -> bool:
        """Whether this process is the elected replica, trying to become it if nobody is.

        The election is a PostgreSQL session advisory lock held on a dedicated connection:
        it ends when this process or its connection dies, and the next replica to ask takes
        over. Always True on SQLite. Never raises: a lost database means not leading."""
        if not self.shared:
            return True
        try:
            if self._leader_conn is None:
                conn = self._engine.connect()
                got = bool(
                    conn.execute(sa.select(sa.func.pg_try_advisory_lock(LEADER_LOCK))).scalar()
                )
                conn.commit()
                self._election_answered()
                if not got:
                    conn.close()
                    return False
                self._leader_conn = conn
                log.info("store: this replica (%s) is now the elected one", self.holder.owner)
            else:
                self._leader_conn.execute(sa.select(1))
                self._leader_conn.commit()
                self._election_answered()
            return True
        except SQLAlchemyError as exc:
            self._election_lost(exc)
            return False

    def _election_answered(self) -> None:
        if self._election_failing:
            self._election_failing = False
            log.info("store: the election connection works again")

    def _election_lost(self, exc: SQLAlchemyError) -> None:
        """Logged once per outage (the election is retried every lease / 4, quietly)."""
        leading = self._leader_conn is not None
        self._drop_leadership()
        if self._election_failing:
            return
        self._election_failing = True
        reason = error_reason(exc)
        gave_up = "; this replica is no longer the elected one" if leading else ""
        log.warning("store: election connection lost: %s%s; retrying quietly", reason, gave_up)

    def _drop_leadership(self) -> None:
        conn, self._leader_conn = self._leader_conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
                conn.close()

    def lock_decisions(self) -> None:
        """Wait until no other replica is deciding (story grouping reads what the last
        decision stored), then hold that until ``unlock_decisions``. A PostgreSQL advisory
        lock on a dedicated connection, given up after 30 s (StoreError); nothing on SQLite,
        where the one process serialises its decisions itself."""
        if not self.shared:
            return
        try:
            if self._decide_conn is None:
                self._decide_conn = self._engine.connect()
                self._decide_conn.execute(sa.text("SET lock_timeout = '30s'"))
                self._decide_conn.commit()
            self._decide_conn.execute(sa.select(sa.func.pg_advisory_lock(DECIDE_LOCK)))
            self._decide_conn.commit()
        except SQLAlchemyError as exc:
            self._drop_decisions()
            reason = error_reason(exc)
            raise StoreError(f"{self.url}: cannot take the decision lock: {reason}") from exc

    def unlock_decisions(self) -> None:
        if self._decide_conn is None:
            return
        try:
            self._decide_conn.execute(sa.select(sa.func.pg_advisory_unlock(DECIDE_LOCK)))
            self._decide_conn.commit()
        except SQLAlchemyError:
            self._drop_decisions()  # a closed session holds no lock

    def _drop_decisions(self) -> None:
        conn, self._decide_conn = self._decide_conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
                conn.close()

    def beat(self, now: datetime, pid: int, version: str, *, leader: bool) -> None:
        """Record that this replica is alive (and whether it leads); shown by ``watcher status``."""
        values = {"seen_at": now, "leader": leader, "pid": pid, "version": version}
        with self.transaction() as conn:
            new = insert(conn, replicas).values(
                id=self.holder.owner, host=self.holder.owner.split(":")[0], started_at=now, **values
            )
            conn.execute(new.on_conflict_do_update(index_elements=["id"], set_=values))

    def replicas(self, since: datetime) -> list[ReplicaRow]:
        """Replicas seen since ``since``, the elected one first."""
        query = (
            sa.select(replicas)
            .where(replicas.c.seen_at >= since)
            .order_by(replicas.c.leader.desc(), replicas.c.started_at)
        )
        with self.transaction() as conn:
            return [ReplicaRow(**r._mapping) for r in conn.execute(query)]

    def lease_counts(self, now: datetime) -> list[LeaseCount]:
        """Unexpired leases per holder and kind."""
        out = []
        with self.transaction() as conn:
            for kind, table in (
                ("feeds", feeds),
                ("entries", entries),
                ("destinations", destinations),
            ):
                query = (
                    sa.select(
                        table.c.lease_owner, sa.func.count(), sa.func.min(table.c.leased_until)
                    )
                    .where(table.c.lease_owner.is_not(None), table.c.leased_until > now)
                    .group_by(table.c.lease_owner)
                )
                out += [LeaseCount(str(o), kind, int(n), t) for o, n, t in conn.execute(query)]
        return sorted(out, key=lambda c: (c.owner, c.kind))

    def leave(self, now: datetime) -> None:
        """A clean stop: give back every lease and the election, so others need not wait."""
        if not self.shared:
            return
        with self.transaction() as conn:
            # Claimed but never polled: due again now, not when the lease would have ended.
            conn.execute(
                feeds.update()
                .where(
                    feeds.c.lease_owner == self.holder.owner,
                    feeds.c.next_poll_at == feeds.c.leased_until,
                )
                .values(next_poll_at=now)
            )
            release(conn, self.holder)
            conn.execute(replicas.delete().where(replicas.c.id == self.holder.owner))
        self._drop_leadership()
