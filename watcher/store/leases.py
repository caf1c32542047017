"""Replicas sharing one PostgreSQL: claims with an expiry on feeds, entries and destinations.

A claim is an UPDATE of rows picked with ``FOR UPDATE SKIP LOCKED`` (as delayed_job and
Huginn pick jobs): two replicas asking at the same moment get disjoint rows, and nobody waits.
Each claimed row records its holder (``lease_owner``) and ``leased_until``; a replica that dies
simply stops renewing, and its rows are free again once that time passes. On SQLite there is
one replica (the data directory lock) and nothing here is called.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store import dialect
from watcher.store.tables import deliveries, destinations, entries, feeds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who claims (this process) and for how long; ``batch`` caps one claim, so replicas
    polling at once share the due feeds instead of the first taking them all."""

    owner: str
    lease: timedelta
    batch: int = 200

    @classmethod
    def for_this_process(cls, lease: float) -> Holder:
        token = secrets.token_hex(3)
        return cls(f"{socket.gethostname()[:60]}:{os.getpid()}:{token}", timedelta(seconds=lease))


def _free(table: sa.Table, holder: Holder, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        table.c.leased_until.is_(None),
        table.c.leased_until <= now,
        table.c.lease_owner == holder.owner,
    )


def claim_due_feeds(
    conn: Connection, holder: Holder, now: datetime, limit: int | None = None
) -> list[int]:
    """Claim up to ``limit`` (default ``holder.batch``) due feeds; returns their ids.

    The claim moves ``next_poll_at`` to the lease's end: recording the poll sets the real
    next time, and a replica that dies mid-poll leaves the feed due again when the lease ends.
    """
    due = sa.or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now)
    pick = (
        sa.select(feeds.c.id)
        .where(feeds.c.enabled, feeds.c.in_config, due)
        .order_by(feeds.c.next_poll_at.is_not(None), feeds.c.next_poll_at)
        .limit(holder.batch if limit is None else limit)
        .with_for_update(skip_locked=True)
    )
    until = now + holder.lease
    claim = (
        feeds.update()
        .where(feeds.c.id.in_(pick.scalar_subquery()))
        .values(lease_owner=holder.owner, leased_until=until, next_poll_at=until)
        .returning(feeds.c.id)
    )
    return sorted(int(i) for i in conn.execute(claim).scalars())


def claim_pending_entries(
    conn: Connection,
    holder: Holder,
    now: datetime,
    limit: int,
    per_feed: int | None = None,
    *,
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Claim (or renew) up to ``limit`` pending entries nobody else holds; their ids.

    With ``per_feed``, only each feed's newest that many are candidates, so one flooding
    feed cannot take the whole claim (the article queue's fairness, across replicas too).
    With ``ids``, only those are candidates: the replica whose poll found them claims them
    at once, by id, however long the backlog ahead of them."""
    free = sa.and_(entries.c.state == "pending", _free(entries, holder, now))
    if ids is not None:
        free = sa.and_(free, entries.c.id.in_(list(ids)))
    pick = sa.select(entries.c.id, entries.c.lease_owner).where(free)
    if per_feed is not None:
        # FOR UPDATE cannot sit on a query with a window function: rank in a subquery.
        rank = sa.func.row_number().over(
            partition_by=entries.c.feed_id, order_by=entries.c.id.desc()
        )
        ranked = sa.select(entries.c.id, rank.label("rank")).where(free).subquery()
        window = sa.select(ranked.c.id).where(ranked.c.rank <= per_feed)
        pick = pick.where(entries.c.id.in_(window)).order_by(entries.c.id.desc())
    else:
        pick = pick.order_by(entries.c.id)
    picked = pick.limit(limit).with_for_update(skip_locked=True).cte("picked")
    claim = (
        entries.update()
        .where(entries.c.id == picked.c.id)
        .values(lease_owner=holder.owner, leased_until=now + holder.lease)
        .returning(entries.c.id, picked.c.lease_owner)
    )
    rows = conn.execute(claim).all()
    _log_takeovers(("pending entry", "pending entries"), holder, (owner for _, owner in rows))
    return sorted(int(i) for i, _ in rows)


def renew_entries(conn: Connection, holder: Holder, now: datetime, ids: Sequence[int]) -> None:
    """Extend the claims ``holder`` still has on ``ids`` by a lease from ``now``: entries
    waiting in its queue longer than a lease would otherwise go to another replica too."""
    conn.execute(
        entries.update()
        .where(entries.c.id.in_(list(ids)), entries.c.lease_owner == holder.owner)
        .values(leased_until=now + holder.lease)
    )


def claim_destinations(
    conn: Connection, holder: Holder, now: datetime, only: Collection[str] | None = None
) -> list[str]:
    """Claim (or renew) every destination with work that nobody else holds (of ``only``,
    when given): one replica drains a destination at a time, so its order and rate limits
    hold."""
    waiting = sa.select(deliveries.c.destination, sa.literal(0)).where(
        deliveries.c.state == "pending"
    )
    known = dialect.insert(conn, destinations).from_select(["name", "failures"], waiting.distinct())
    conn.execute(known.on_conflict_do_nothing(index_elements=["name"]))
    free = _free(destinations, holder, now)
    if only is not None:
        free = sa.and_(free, destinations.c.name.in_(list(only)))
    picked = (
        sa.select(destinations.c.name, destinations.c.lease_owner)
        .where(free)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    claim = (
        destinations.update()
        .where(destinations.c.name == picked.c.name)
        .values(lease_owner=holder.owner, leased_until=now + holder.lease)
        .returning(destinations.c.name, picked.c.lease_owner)
    )
    rows = conn.execute(claim).all()
    _log_takeovers(("destination", "destinations"), holder, (owner for _, owner in rows))
    return sorted(str(n) for n, _ in rows)


def _log_takeovers(what: tuple[str, str], holder: Holder, previous: Iterable[str | None]) -> None:
    """Says when this replica took rows another replica held: its lease ran out (it died or
    stopped renewing), which a clean stop never leaves behind (``release``)."""
    taken = Counter(owner for owner in previous if owner and owner != holder.owner)
    for owner, count in sorted(taken.items()):
        log.warning(
            "took over %d %s from replica %s: its lease ended without a clean stop",
            count, what[count > 1], owner,
        )  # fmt: skip


def release(conn: Connection, holder: Holder) -> None:
    """Give back everything ``holder`` claimed (a clean stop): others need not wait."""
    for table in (feeds, entries, destinations):
        conn.execute(
            table.update()
            .where(table.c.lease_owner == holder.owner)
            .values(lease_owner=None, leased_until=None)
        )
