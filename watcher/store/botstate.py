"""Store methods for what the Telegram bot keeps: mutes, feedback and alert buttons."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store.dialect import is_postgres
from watcher.store.tables import alerts, deliveries, feedback, mutes


@dataclass(frozen=True)
class ButtonAlert:
    id: int
    rules: tuple[str, ...]
    destinations: tuple[str, ...]


class BotStateMixin:
    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def active_mutes(self, now: datetime) -> dict[str, datetime]:
        query = (
            sa.select(mutes.c.target, sa.func.max(mutes.c.until).label("until"))
            .where(mutes.c.until > now)
            .group_by(mutes.c.target)
        )
        with self.transaction() as conn:
            return {r.target: r.until for r in conn.execute(query)}

    def add_mute(self, target: str, until: datetime, now: datetime, by: str = "") -> None:
        with self.transaction() as conn:
            conn.execute(mutes.insert().values(target=target, until=until, created_at=now, by=by))

    def set_mute(self, target: str, until: datetime, now: datetime, by: str = "") -> datetime:
        """Mute ``target`` until ``until``, replacing the end of a mute it already has (one
        re-mutes to shorten or to extend); returns the end stored, which is ``until``."""
        with self.transaction() as conn:
            _hold(conn, f"mute:{target}")
            _end_mutes(conn, target, now)
            conn.execute(mutes.insert().values(target=target, until=until, created_at=now, by=by))
        return until

    def add_mute_once(
        self, target: str, until: datetime, now: datetime, by: str = ""
    ) -> tuple[datetime, bool]:
        """Mute ``target`` unless it is muted already: (the end stored, whether this call
        muted it). A second press of a mute button changes nothing."""
        with self.transaction() as conn:
            _hold(conn, f"mute:{target}")
            current = _mute_end(conn, target, now)
            if current is not None:
                return current, False
            conn.execute(mutes.insert().values(target=target, until=until, created_at=now, by=by))
            return until, True

    def remove_mute(self, target: str, now: datetime) -> int:
        with self.transaction() as conn:
            return _end_mutes(conn, target, now)

    def add_feedback(self, alert_id: int, kind: str, by: str, now: datetime) -> list[str]:
        """Record feedback on every rule of an alert; returns those rules."""
        with self.transaction() as conn:
            return _add_feedback(conn, alert_id, kind, by, now)

    def feedback_counts(self, since: datetime | None = None) -> dict[str, int]:
        query = sa.select(feedback.c.rule, sa.func.count()).group_by(feedback.c.rule)
        if since is not None:
            query = query.where(feedback.c.created_at >= since)
        with self.transaction() as conn:
            return {str(rule): int(n) for rule, n in conn.execute(query)}

    def button_alert(self, alert_id: int) -> ButtonAlert | None:
        """What an alert button may act on: the alert's rules and where it was delivered."""
        with self.transaction() as conn:
            payload = conn.execute(
                sa.select(alerts.c.payload).where(alerts.c.id == alert_id)
            ).scalar()
            if payload is None:
                return None
            dests = conn.execute(
                sa.select(deliveries.c.destination).where(deliveries.c.alert_id == alert_id)
            )
            return ButtonAlert(
                alert_id,
                tuple(str(r["name"]) for r in payload.get("rules", [])),
                tuple(sorted({str(d) for (d,) in dests})),
            )

    def add_feedback_once(self, alert_id: int, kind: str, by: str, now: datetime) -> list[str]:
        """Like add_feedback, but a second press by the same person records nothing (returns
        [])."""
        with self.transaction() as conn:
            _hold(conn, f"feedback:{alert_id}:{kind}:{by}")
            seen = conn.execute(
                sa.select(feedback.c.id).where(
                    feedback.c.alert_id == alert_id, feedback.c.kind == kind, feedback.c.by == by
                )
            ).first()
            return [] if seen else _add_feedback(conn, alert_id, kind, by, now)


def _add_feedback(conn: Connection, alert_id: int, kind: str, by: str, now: datetime) -> list[str]:
    payload = conn.execute(sa.select(alerts.c.payload).where(alerts.c.id == alert_id)).scalar()
    rules = [r["name"] for r in (payload or {}).get("rules", [])]
    for rule in rules:
        conn.execute(
            feedback.insert().values(alert_id=alert_id, rule=rule, kind=kind, by=by, created_at=now)
        )
    return rules


# pg_advisory_xact_lock(namespace, hashtext(key)): the bot state's namespace ("bot").
_BOT_LOCK = 0x626F74


def _hold(conn: Connection, key: str) -> None:
    """Hold ``key`` until the transaction ends, so that two replicas (or two presses) that
    read then write the same thing take turns: otherwise another writer can come between
    the read and the write (two active mutes for one rule, a press counted twice)."""
    if is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BOT_LOCK, sa.func.hashtext(key))))
    else:  # SQLite has one writer at a time: write (nothing, in any table) first to be it
        conn.execute(mutes.update().where(mutes.c.id == -1).values(by=mutes.c.by))


def _end_mutes(conn: Connection, target: str, now: datetime) -> int:
    """End the active mutes of ``target`` now (the rows stay, as a record); how many."""
    result = conn.execute(
        mutes.update().where(mutes.c.target == target, mutes.c.until > now).values(until=now)
    )
    return result.rowcount


def _mute_end(conn: Connection, target: str, now: datetime) -> datetime | None:
    """When the active mute of ``target`` ends, None if it has none (as active_mutes reads)."""
    query = sa.select(sa.func.max(mutes.c.until)).where(
        mutes.c.target == target, mutes.c.until > now
    )
    end: datetime | None = conn.execute(query).scalar()
    return end
