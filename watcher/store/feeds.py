"""Store methods for feeds: configured feeds, polling state, health, and their entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.config import FeedConfig, feed_name
from watcher.feeds.dedup import Known, NewEntry, UpdatedEntry
from watcher.feeds.parse import Entry
from watcher.store.tables import entries, entry_keys, feeds, new_id


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    name: str
    tags: tuple[str, ...]
    interval: float
    enabled: bool
    in_config: bool
    added_at: datetime
    title: str
    etag: str | None
    last_modified: str | None
    hint: float | None
    next_poll_at: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None
    failures: int
    warning: str | None
    polls: int
    not_modified: int
    entries_total: int
    reported: str | None

    @property
    def first_poll(self) -> bool:
        return self.last_success_at is None


@dataclass(frozen=True)
class PendingEntry:
    """An entry recorded by polling and not yet through the article stage."""

    id: int
    feed_id: int
    feed_name: str
    feed_tags: tuple[str, ...]
    entry: Entry


@dataclass(frozen=True)
class PollSuccess:
    now: datetime
    next_poll_at: datetime
    etag: str | None
    last_modified: str | None
    hint: float | None
    title: str | None = None
    warning: str | None = None
    new: Sequence[NewEntry] = ()
    backfill: Sequence[NewEntry] = ()
    updated: Sequence[UpdatedEntry] = ()
    unchanged: Sequence[int] = ()


def _row(r: Any) -> FeedRow:
    values = dict(r._mapping)
    values["tags"] = tuple(values["tags"] or ())
    return FeedRow(**values)


class FeedsMixin:
    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def sync_feeds(self, configured: Iterable[FeedConfig], now: datetime) -> list[FeedRow]:
        """Make the stored feeds match the config: add new ones, update names, tags and
        intervals, and set aside (never delete) feeds no longer configured."""
        wanted = {f.url: f for f in configured}
        with self.transaction() as conn:
            existing = {r.url: r.id for r in conn.execute(sa.select(feeds.c.url, feeds.c.id))}
            for url, cfg in wanted.items():
                values = {
                    "name": feed_name(cfg),
                    "tags": list(cfg.tags),
                    "interval": cfg.interval,
                    "enabled": cfg.enabled,
                    "in_config": True,
                }
                if url in existing:
                    conn.execute(feeds.update().where(feeds.c.id == existing[url]).values(**values))
                else:
                    conn.execute(
                        feeds.insert().values(url=url, added_at=now, **_NEW_FEED, **values)
                    )
            gone = [i for u, i in existing.items() if u not in wanted]
            if gone:
                conn.execute(feeds.update().where(feeds.c.id.in_(gone)).values(in_config=False))
        return self.feeds()

    def add_feed(self, cfg: FeedConfig, now: datetime) -> FeedRow:
        with self.transaction() as conn:
            conn.execute(
                feeds.insert().values(
                    url=cfg.url,
                    name=feed_name(cfg),
                    tags=list(cfg.tags),
                    interval=cfg.interval,
                    enabled=cfg.enabled,
                    in_config=True,
                    added_at=now,
                    **_NEW_FEED,
                )
            )
        return self.feed_by_url(cfg.url)

    def feeds(self, *, configured_only: bool = True) -> list[FeedRow]:
        query = sa.select(feeds).order_by(feeds.c.name)
        if configured_only:
            query = query.where(feeds.c.in_config)
        with self.transaction() as conn:
            return [_row(r) for r in conn.execute(query)]

    def feed(self, feed_id: int) -> FeedRow:
        with self.transaction() as conn:
            return _row(conn.execute(sa.select(feeds).where(feeds.c.id == feed_id)).one())

    def feed_by_url(self, url: str) -> FeedRow:
        with self.transaction() as conn:
            return _row(conn.execute(sa.select(feeds).where(feeds.c.url == url)).one())

    def due_feeds(self, now: datetime) -> list[FeedRow]:
        due = sa.or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now)
        query = (
            sa.select(feeds)
            .where(feeds.c.enabled, feeds.c.in_config, due)
            .order_by(feeds.c.next_poll_at.is_not(None), feeds.c.next_poll_at)
        )
        with self.transaction() as conn:
            return [_row(r) for r in conn.execute(query)]

    def known_keys(self, feed_id: int, keys: Iterable[str]) -> dict[str, Known]:
        keys = list(keys)
        found: dict[str, Known] = {}
        with self.transaction() as conn:
            for chunk in _chunks(keys, 500):
                query = (
                    sa.select(entry_keys.c.key, entries.c.id, entries.c.fingerprint)
                    .join(entries, entries.c.id == entry_keys.c.entry_id)
                    .where(entry_keys.c.feed_id == feed_id, entry_keys.c.key.in_(chunk))
                )
                found.update({r.key: Known(r.id, r.fingerprint) for r in conn.execute(query)})
        return found

    def record_poll_success(self, feed_id: int, outcome: PollSuccess) -> list[int]:
        """Store one successful poll atomically; returns the ids of new pending entries."""
        with self.transaction() as conn:
            pending = [_insert_entry(conn, feed_id, n, outcome.now, "pending") for n in outcome.new]
            for n in outcome.backfill:
                _insert_entry(conn, feed_id, n, outcome.now, "backfill")
            for u in outcome.updated:
                _update_entry(conn, feed_id, u, outcome.now)
            if outcome.unchanged:
                conn.execute(
                    entries.update()
                    .where(entries.c.id.in_(outcome.unchanged))
                    .values(last_seen=outcome.now)
                )
            conn.execute(
                feeds.update()
                .where(feeds.c.id == feed_id)
                .values(
                    **_success_values(outcome),
                    entries_total=feeds.c.entries_total + len(outcome.new) + len(outcome.backfill),
                )
            )
        return pending

    def record_not_modified(
        self, feed_id: int, now: datetime, next_poll_at: datetime, hint: float | None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                feeds.update()
                .where(feeds.c.id == feed_id)
                .values(
                    last_poll_at=now,
                    last_success_at=now,
                    next_poll_at=next_poll_at,
                    failures=0,
                    failing_since=None,
                    polls=feeds.c.polls + 1,
                    hint=hint,
                    not_modified=feeds.c.not_modified + 1,
                )
            )

    def record_poll_failure(
        self, feed_id: int, now: datetime, reason: str, next_poll_at: datetime
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                feeds.update()
                .where(feeds.c.id == feed_id)
                .values(
                    last_poll_at=now,
                    last_error=reason,
                    last_error_at=now,
                    failing_since=sa.func.coalesce(feeds.c.failing_since, now),
                    failures=feeds.c.failures + 1,
                    polls=feeds.c.polls + 1,
                    next_poll_at=next_poll_at,
                )
            )

    def set_next_poll(self, feed_id: int, when: datetime | None) -> None:
        with self.transaction() as conn:
            conn.execute(feeds.update().where(feeds.c.id == feed_id).values(next_poll_at=when))

    def mark_reported(self, feed_id: int, problem: str | None) -> None:
        with self.transaction() as conn:
            conn.execute(feeds.update().where(feeds.c.id == feed_id).values(reported=problem))

    def feed_cadence(self, feed_id: int, sample: int = 50) -> float | None:
        """Typical seconds between new items, from when recent entries were first seen."""
        query = (
            sa.select(entries.c.first_seen)
            .where(entries.c.feed_id == feed_id, entries.c.state != "backfill")
            .order_by(entries.c.first_seen.desc())
            .limit(sample)
        )
        with self.transaction() as conn:
            seen: list[datetime] = [r.first_seen for r in conn.execute(query)]
        if len(seen) < 3:
            return None
        return (seen[0] - seen[-1]).total_seconds() / (len(seen) - 1)

    def pending_entries(self, limit: int = 100) -> list[PendingEntry]:
        query = (
            sa.select(entries, feeds.c.name.label("feed_name"), feeds.c.tags.label("feed_tags"))
            .join(feeds, feeds.c.id == entries.c.feed_id)
            .where(entries.c.state == "pending")
            .order_by(entries.c.id)
            .limit(limit)
        )
        with self.transaction() as conn:
            return [_pending(r) for r in conn.execute(query)]

    def count_entries(self, state: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(entries)
        if state:
            query = query.where(entries.c.state == state)
        with self.transaction() as conn:
            return int(conn.execute(query).scalar_one())


_NEW_FEED: dict[str, Any] = {
    "title": "",
    "failures": 0,
    "polls": 0,
    "not_modified": 0,
    "entries_total": 0,
}


def _success_values(o: PollSuccess) -> dict[str, Any]:
    values: dict[str, Any] = {
        "last_poll_at": o.now,
        "last_success_at": o.now,
        "next_poll_at": o.next_poll_at,
        "etag": o.etag,
        "last_modified": o.last_modified,
        "hint": o.hint,
        "warning": o.warning,
        "failures": 0,
        "failing_since": None,
        "polls": feeds.c.polls + 1,
    }
    if o.title:
        values["title"] = o.title
    if o.new:
        values["last_new_item_at"] = o.now
    return values


def _entry_values(entry: Entry) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "link": entry.link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "author": entry.author,
        "language": entry.language,
        "published": entry.published,
        "updated": entry.updated,
    }


def _insert_entry(conn: Connection, feed_id: int, new: NewEntry, now: datetime, state: str) -> int:
    result = conn.execute(
        entries.insert().values(
            feed_id=feed_id,
            fingerprint=new.fingerprint,
            first_seen=now,
            last_seen=now,
            revisions=0,
            state=state,
            **_entry_values(new.entry),
        )
    )
    entry_id = new_id(result)
    _add_keys(conn, feed_id, entry_id, new.keys)
    return entry_id


def _update_entry(conn: Connection, feed_id: int, upd: UpdatedEntry, now: datetime) -> None:
    conn.execute(
        entries.update()
        .where(entries.c.id == upd.entry_id)
        .values(
            fingerprint=upd.fingerprint,
            last_seen=now,
            revisions=entries.c.revisions + 1,
            **_entry_values(upd.entry),
        )
    )
    _add_keys(conn, feed_id, upd.entry_id, upd.keys)


def _add_keys(conn: Connection, feed_id: int, entry_id: int, keys: Sequence[str]) -> None:
    # A key may already point at this (or, after a GUID reuse, another) entry: keep the first.
    existing = {
        r.key
        for r in conn.execute(
            sa.select(entry_keys.c.key).where(
                entry_keys.c.feed_id == feed_id, entry_keys.c.key.in_(keys)
            )
        )
    }
    rows = [{"feed_id": feed_id, "key": k, "entry_id": entry_id} for k in keys if k not in existing]
    if rows:
        conn.execute(entry_keys.insert(), rows)


def _pending(r: Any) -> PendingEntry:
    m = r._mapping
    entry = Entry(
        guid=m["guid"],
        link=m["link"],
        title=m["title"],
        summary=m["summary"],
        content=m["content"],
        author=m["author"],
        published=m["published"],
        updated=m["updated"],
        language=m["language"],
    )
    return PendingEntry(m["id"], m["feed_id"], m["feed_name"], tuple(m["feed_tags"] or ()), entry)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
