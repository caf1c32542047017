"""Store methods for the durable delivery outbox: per-destination queues, backoff, digests."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store.dialect import insert, is_postgres
from watcher.store.leases import Holder, claim_destinations
from watcher.store.tables import alerts, deliveries, destinations, new_id, story_sources


@dataclass(frozen=True)
class DeliveryJob:
    """The head of one destination's queue, with what is needed to compose it."""

    id: int
    alert_id: int
    destination: str
    kind: str  # "send", "reply", "edit" or "digest"
    attempts: int
    alert_kind: str
    payload: dict[str, Any]
    story_id: int | None
    target_remote_id: str | None = None  # the message to reply to or edit
    sources: tuple[tuple[str, str], ...] = ()
    original_payload: dict[str, Any] | None = None
    original_alert_id: int | None = None  # the alert whose message an edit replaces


class OutboxMixin:
    holder: Holder

    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def outbox_heads(self, now: datetime, only: Collection[str] | None = None) -> list[DeliveryJob]:
        """For each destination not in backoff (of ``only``, when given: a stop drains the
        local sinks alone, and claims no other), its oldest delivery that is due."""
        due = sa.or_(deliveries.c.not_before.is_(None), deliveries.c.not_before <= now)
        heads = (
            sa.select(sa.func.min(deliveries.c.id))
            .where(deliveries.c.state == "pending", due)
            .group_by(deliveries.c.destination)
        )
        ready = sa.or_(
            destinations.c.next_attempt_at.is_(None), destinations.c.next_attempt_at <= now
        )
        query = (
            sa.select(
                deliveries, alerts.c.kind.label("alert_kind"), alerts.c.payload, alerts.c.story_id
            )
            .join(alerts, alerts.c.id == deliveries.c.alert_id)
            .outerjoin(destinations, destinations.c.name == deliveries.c.destination)
            .where(deliveries.c.id.in_(heads), sa.or_(destinations.c.name.is_(None), ready))
            .order_by(deliveries.c.id)
        )
        if only is not None:
            query = query.where(deliveries.c.destination.in_(list(only)))
        with self.transaction() as conn:
            if is_postgres(conn):  # one replica drains a destination at a time
                mine = claim_destinations(conn, self.holder, now, only)
                query = query.where(deliveries.c.destination.in_(mine))
            return [_job(conn, r) for r in conn.execute(query)]

    def outbox_depth(self) -> dict[str, int]:
        query = (
            sa.select(deliveries.c.destination, sa.func.count())
            .where(deliveries.c.state == "pending")
            .group_by(deliveries.c.destination)
        )
        with self.transaction() as conn:
            return {str(d): int(n) for d, n in conn.execute(query)}

    def delivery_sent(
        self, job_id: int, destination: str, remote_id: str | None, now: datetime
    ) -> bool:
        """Record a delivery; whether it ends a failure that was reported (said once: the
        report is cleared here, by whichever replica delivers)."""
        with self.transaction() as conn:
            reported = conn.execute(
                sa.select(destinations.c.reported).where(destinations.c.name == destination)
            ).scalar()
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == job_id)
                .values(
                    state="sent",
                    remote_id=remote_id,
                    sent_at=now,
                    attempts=deliveries.c.attempts + 1,
                    last_error=None,
                )
            )
            _upsert_destination(
                conn,
                destination,
                failures=0,
                next_attempt_at=None,
                last_error=None,
                failing_since=None,
                last_success_at=now,
                reported=None,
            )
            return reported is not None

    def delivery_failed(
        self,
        job_id: int,
        destination: str,
        reason: str,
        now: datetime,
        *,
        retry_at: datetime | None,
    ) -> int:
        """Record a failed attempt; ``retry_at`` None means permanent (the delivery fails).
        Returns the destination's consecutive failures."""
        with self.transaction() as conn:
            state = "pending" if retry_at else "failed"
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == job_id)
                .values(state=state, attempts=deliveries.c.attempts + 1, last_error=reason)
            )
            row = conn.execute(
                sa.select(destinations).where(destinations.c.name == destination)
            ).first()
            failures = (row.failures if row else 0) + 1
            _upsert_destination(
                conn,
                destination,
                failures=failures,
                next_attempt_at=retry_at,
                last_error=reason,
                failing_since=(row.failing_since if row and row.failing_since else now),
            )
            return failures

    def destination_rows(self) -> list[dict[str, Any]]:
        with self.transaction() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(destinations))]

    def mark_destination_reported(self, destination: str, problem: str | None) -> None:
        with self.transaction() as conn:
            _upsert_destination(conn, destination, reported=problem)

    def retry_failed(self, now: datetime) -> int:
        """Queue every failed delivery again; returns how many."""
        with self.transaction() as conn:
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.state == "failed")
                .values(state="pending", not_before=None)
            )
            conn.execute(destinations.update().values(next_attempt_at=None))
            return result.rowcount

    def wake_destinations(self, kind: str, now: datetime, keep: Collection[str] = ()) -> list[str]:
        """Let the destinations of ``kind`` ("telegram") that wait out a backoff be tried
        now, except those in ``keep``; returns the ones woken."""
        waiting = sa.and_(
            destinations.c.name.startswith(f"{kind}:", autoescape=True),
            destinations.c.next_attempt_at > now,
        )
        with self.transaction() as conn:
            names = [
                n
                for (n,) in conn.execute(sa.select(destinations.c.name).where(waiting))
                if n not in keep
            ]
            if names:
                conn.execute(
                    destinations.update()
                    .where(destinations.c.name.in_(names))
                    .values(next_attempt_at=None)
                )
            return sorted(names)

    def oldest_digest_held(self) -> datetime | None:
        """When the oldest alert held for a digest was queued (None when none is held)."""
        query = sa.select(sa.func.min(deliveries.c.created_at)).where(
            deliveries.c.state == "digest"
        )
        with self.transaction() as conn:
            oldest: datetime | None = conn.execute(query).scalar()
            return oldest

    def digest_destinations(self) -> list[str]:
        query = sa.select(deliveries.c.destination).where(deliveries.c.state == "digest").distinct()
        with self.transaction() as conn:
            return [r[0] for r in conn.execute(query)]

    def queue_digest(
        self, destination: str, now: datetime, not_before: datetime | None = None
    ) -> int:
        """Gather a destination's held alerts into one digest delivery; returns their count."""
        with self.transaction() as conn:
            rows = list(
                conn.execute(
                    sa.select(deliveries.c.id, alerts.c.payload)
                    .join(alerts, alerts.c.id == deliveries.c.alert_id)
                    .where(deliveries.c.destination == destination, deliveries.c.state == "digest")
                    .order_by(deliveries.c.id)
                )
            )
            if not rows:
                return 0
            items = [r.payload for r in rows]
            result = conn.execute(
                alerts.insert().values(
                    kind="digest", priority="low", created_at=now, payload={"items": items}
                )
            )
            conn.execute(
                deliveries.insert().values(
                    alert_id=new_id(result),
                    destination=destination,
                    kind="digest",
                    state="pending",
                    created_at=now,
                    not_before=not_before,
                    attempts=0,
                )
            )
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_([r.id for r in rows]))
                .values(state="digested", sent_at=now)
            )
            return len(rows)

    def digest_counts(self) -> dict[str, int]:
        """Alerts held for the next digest, per destination."""
        query = (
            sa.select(deliveries.c.destination, sa.func.count())
            .where(deliveries.c.state == "digest")
            .group_by(deliveries.c.destination)
        )
        with self.transaction() as conn:
            return {str(d): int(n) for d, n in conn.execute(query)}


def _upsert_destination(conn: Connection, name: str, **values: Any) -> None:
    new = insert(conn, destinations).values(name=name, **{"failures": 0, **values})
    conn.execute(new.on_conflict_do_update(index_elements=["name"], set_=values))


def _job(conn: Connection, r: Any) -> DeliveryJob:
    base = DeliveryJob(
        r.id,
        r.alert_id,
        r.destination,
        r.kind,
        r.attempts,
        r.alert_kind,
        r.payload or {},
        r.story_id,
    )
    if r.kind not in ("reply", "edit") or r.story_id is None:
        return base
    first = conn.execute(
        sa.select(alerts.c.payload, alerts.c.id, deliveries.c.remote_id)
        .join(deliveries, deliveries.c.alert_id == alerts.c.id)
        .where(
            alerts.c.story_id == r.story_id,
            alerts.c.kind == "new",
            deliveries.c.destination == r.destination,
            deliveries.c.kind == "send",
        )
        .order_by(alerts.c.id)
        .limit(1)
    ).first()
    sources = tuple(
        (s.source, s.url)
        for s in conn.execute(
            sa.select(story_sources.c.source, story_sources.c.url)
            .where(story_sources.c.story_id == r.story_id)
            .order_by(story_sources.c.id)
        )
    )
    return DeliveryJob(
        **{
            **asdict(base),
            "target_remote_id": first.remote_id if first else None,
            "sources": sources,
            "original_payload": first.payload if first else None,
            "original_alert_id": first.id if first else None,
        }
    )
