"""Store methods for feeds: configured feeds, polling state, health, and their entries."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.config import FeedConfig, feed_name
from watcher.errors import StoreError
from watcher.store.dialect import insert, is_postgres
from watcher.store.leases import Holder, claim_due_feeds, claim_pending_entries, renew_entries
from watcher.store.tables import entries, entry_keys, feeds
from watcher.types import Entry, Known, NewEntry, UpdatedEntry

log = logging.getLogger(__name__)


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


_FEED_FIELDS = [f.name for f in fields(FeedRow)]


@dataclass(frozen=True)
class PollNotModified:
    """A poll answered 304 (or the same document again): only the schedule changes."""

    now: datetime
    next_poll_at: datetime
    hint: float | None


@dataclass(frozen=True)
class PollFailure:
    now: datetime
    reason: str
    next_poll_at: datetime


# What one poll of one feed leaves in the store (see FeedsMixin.record_polls).
PollRecord = PollSuccess | PollNotModified | PollFailure


def _row(r: Any) -> FeedRow:
    m = r._mapping  # also holds columns FeedRow does not carry (leases)
    values = {name: m[name] for name in _FEED_FIELDS}
    values["tags"] = tuple(values["tags"] or ())
    return FeedRow(**values)


class FeedsMixin:
    holder: Holder

    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def sync_feeds(self, configured: Iterable[FeedConfig], now: datetime) -> list[FeedRow]:
        """Make the stored feeds match the config: add new ones, update names, tags and
        intervals, and set aside (never delete) feeds no longer configured. A named feed
        whose url changed (the site moved it) keeps its row, entries and history."""
        wanted = {f.url: f for f in configured}
        with self.transaction() as conn:
            columns = (feeds.c.url, feeds.c.id, feeds.c.name, feeds.c.in_config)
            stored = conn.execute(sa.select(*columns)).all()
            existing = {r.url: r.id for r in stored}
            for url, old in moved_feeds(wanted, stored).items():
                log.info("feed %s: url changed from %s to %s; its history is kept",
                         feed_name(wanted[url]), old, url)  # fmt: skip
                feed_id = existing.pop(old)
                conn.execute(feeds.update().where(feeds.c.id == feed_id).values(url=url, **_MOVED))
                existing[url] = feed_id
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
                else:  # another replica may add it at the same moment: then update it
                    new = insert(conn, feeds).values(url=url, added_at=now, **_NEW_FEED, **values)
                    conn.execute(new.on_conflict_do_update(index_elements=["url"], set_=values))
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

    def due_feeds(self, now: datetime, limit: int | None = None) -> list[FeedRow]:
        due = sa.or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now)
        query = (
            sa.select(feeds)
            .where(feeds.c.enabled, feeds.c.in_config, due)
            .order_by(feeds.c.next_poll_at.is_not(None), feeds.c.next_poll_at)
        )
        with self.transaction() as conn:
            if is_postgres(conn):  # replicas share the feeds: claim some (store/leases.py)
                claimed = claim_due_feeds(conn, self.holder, now, limit)
                query = sa.select(feeds).where(feeds.c.id.in_(claimed)).order_by(feeds.c.id)
            return [_row(r) for r in conn.execute(query)]

    def known_keys(self, feed_id: int, keys: Iterable[str]) -> dict[str, Known]:
        found: dict[str, Known] = {}
        with self.transaction() as conn:
            for chunk in _chunks(list(keys), 500):
                rows = conn.execute(_KNOWN_KEYS, {"b_feed": feed_id, "b_keys": chunk})
                found.update({r.key: Known(r.id, r.fingerprint) for r in rows})
        return found

    def record_polls(self, polls: Sequence[tuple[int, PollRecord]]) -> list[list[int]]:
        """Store the polls of many feeds in one transaction (one commit for them all);
        returns, for each ``(feed_id, record)``, the ids of its new pending entries."""
        with self.transaction() as conn:
            not_modified = [
                _not_modified_values(feed_id, r)
                for feed_id, r in polls
                if isinstance(r, PollNotModified)
            ]
            if not_modified:  # one executemany: the common case of a quiet cycle
                conn.execute(_NOT_MODIFIED, not_modified)
            failed = [
                _failure_values(feed_id, r) for feed_id, r in polls if isinstance(r, PollFailure)
            ]
            if failed:
                conn.execute(_FAILURE, failed)
            return [
                _record_success(conn, feed_id, r) if isinstance(r, PollSuccess) else []
                for feed_id, r in polls
            ]

    def record_poll_success(self, feed_id: int, outcome: PollSuccess) -> list[int]:
        """Store one successful poll atomically; returns the ids of new pending entries."""
        return self.record_polls([(feed_id, outcome)])[0]

    def record_not_modified(
        self, feed_id: int, now: datetime, next_poll_at: datetime, hint: float | None
    ) -> None:
        self.record_polls([(feed_id, PollNotModified(now, next_poll_at, hint))])

    def record_poll_failure(
        self, feed_id: int, now: datetime, reason: str, next_poll_at: datetime
    ) -> None:
        self.record_polls([(feed_id, PollFailure(now, reason, next_poll_at))])

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

    def pending_entries(
        self,
        limit: int = 100,
        *,
        per_feed: int | None = None,
        ids: Sequence[int] | None = None,
        now: datetime | None = None,
    ) -> list[PendingEntry]:
        """Pending entries, oldest first; with ``per_feed``, only each feed's newest that many
        (so one flooding feed cannot fill the batch), newest first. With ``ids``, only those
        of them still pending: a poll's new entries read at once, without the whole backlog.
        On PostgreSQL they are claimed for this replica from ``now`` (default: the time)."""
        query = (
            sa.select(entries, feeds.c.name.label("feed_name"), feeds.c.tags.label("feed_tags"))
            .join(feeds, feeds.c.id == entries.c.feed_id)
            .where(entries.c.state == "pending")
        )
        if ids is not None:
            query = query.where(entries.c.id.in_(list(ids)))
        with self.transaction() as conn:
            if is_postgres(conn):  # replicas share the entries: claim some (store/leases.py)
                claimed = claim_pending_entries(
                    conn, self.holder, now or datetime.now(UTC), limit, per_feed, ids=ids
                )
                query = query.where(entries.c.id.in_(claimed))
            if per_feed is not None:
                rank = sa.func.row_number().over(
                    partition_by=entries.c.feed_id, order_by=entries.c.id.desc()
                )
                ranked = query.add_columns(rank.label("rank")).subquery()
                query = (
                    sa.select(ranked).where(ranked.c.rank <= per_feed).order_by(ranked.c.id.desc())
                )
            else:
                query = query.order_by(entries.c.id)
            return [_pending(r) for r in conn.execute(query.limit(limit))]

    def renew_entries(self, ids: Sequence[int], now: datetime | None = None) -> None:
        """Keep this replica's claims on ``ids`` (queued or in progress) for another lease
        from ``now``; nothing to do on SQLite, where there is one replica."""
        if not ids:
            return
        with self.transaction() as conn:
            if is_postgres(conn):
                renew_entries(conn, self.holder, now or datetime.now(UTC), ids)

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


# The statements run for every poll are built once: building one (SQLAlchemy's generative
# calls and cache key) costs several times more than running it.
_KNOWN_KEYS = (
    sa.select(entry_keys.c.key, entries.c.id, entries.c.fingerprint)
    .join(entries, entries.c.id == entry_keys.c.entry_id)
    .where(
        entry_keys.c.feed_id == sa.bindparam("b_feed"),
        entry_keys.c.key.in_(sa.bindparam("b_keys", expanding=True)),
    )
)
_EXISTING_KEYS = sa.select(entry_keys.c.key).where(
    entry_keys.c.feed_id == sa.bindparam("b_feed"),
    entry_keys.c.key.in_(sa.bindparam("b_keys", expanding=True)),
)
_MAX_ENTRY_ID = sa.select(sa.func.max(entries.c.id))
_ENTRIES_SINCE = (
    sa.select(entries.c.id)
    .where(entries.c.feed_id == sa.bindparam("b_feed"), entries.c.id > sa.bindparam("b_after"))
    .order_by(entries.c.id)
)
_INSERT_ENTRY = entries.insert()
_INSERT_KEY = entry_keys.insert()
_SEEN_AGAIN = (
    entries.update()
    .where(entries.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(last_seen=sa.bindparam("b_now"))
)
_THIS_FEED = feeds.c.id == sa.bindparam("b_feed")
_POLLED = {"last_poll_at": sa.bindparam("b_now"), "polls": feeds.c.polls + 1}
_SUCCEEDED = {
    **_POLLED,
    "last_success_at": sa.bindparam("b_now"),
    "next_poll_at": sa.bindparam("b_next"),
    "hint": sa.bindparam("b_hint"),
    "failures": 0,
    "failing_since": None,
}
_NOT_MODIFIED = (
    feeds.update().where(_THIS_FEED).values(**_SUCCEEDED, not_modified=feeds.c.not_modified + 1)
)
_SUCCESS = (
    feeds.update()
    .where(_THIS_FEED)
    .values(
        **_SUCCEEDED,
        etag=sa.bindparam("b_etag"),
        last_modified=sa.bindparam("b_last_modified"),
        warning=sa.bindparam("b_warning"),
        # NULL keeps the stored value: an empty title, or no new item this time.
        title=sa.func.coalesce(sa.bindparam("b_title", type_=sa.Text), feeds.c.title),
        last_new_item_at=sa.func.coalesce(
            sa.bindparam("b_new_at", type_=feeds.c.last_new_item_at.type),
            feeds.c.last_new_item_at,
        ),
        entries_total=feeds.c.entries_total + sa.bindparam("b_added", type_=sa.Integer),
    )
)
_FAILURE = (
    feeds.update()
    .where(_THIS_FEED)
    .values(
        **_POLLED,
        last_error=sa.bindparam("b_reason"),
        last_error_at=sa.bindparam("b_now"),
        failing_since=sa.func.coalesce(
            feeds.c.failing_since, sa.bindparam("b_now", type_=feeds.c.failing_since.type)
        ),
        failures=feeds.c.failures + 1,
        next_poll_at=sa.bindparam("b_next"),
    )
)


def _record_success(conn: Connection, feed_id: int, outcome: PollSuccess) -> list[int]:
    states = ["pending"] * len(outcome.new) + ["backfill"] * len(outcome.backfill)
    ids = _insert_entries(conn, feed_id, [*outcome.new, *outcome.backfill], states, outcome.now)
    for u in outcome.updated:
        _update_entry(conn, feed_id, u, outcome.now)
    if outcome.unchanged:
        conn.execute(_SEEN_AGAIN, {"b_ids": list(outcome.unchanged), "b_now": outcome.now})
    conn.execute(_SUCCESS, _success_values(feed_id, outcome))
    return ids[: len(outcome.new)]


def _not_modified_values(feed_id: int, r: PollNotModified) -> dict[str, Any]:
    return {"b_feed": feed_id, "b_now": r.now, "b_next": r.next_poll_at, "b_hint": r.hint}


def _failure_values(feed_id: int, r: PollFailure) -> dict[str, Any]:
    return {"b_feed": feed_id, "b_now": r.now, "b_reason": r.reason, "b_next": r.next_poll_at}


def _success_values(feed_id: int, o: PollSuccess) -> dict[str, Any]:
    return {
        "b_feed": feed_id,
        "b_now": o.now,
        "b_next": o.next_poll_at,
        "b_hint": o.hint,
        "b_etag": o.etag,
        "b_last_modified": o.last_modified,
        "b_warning": o.warning,
        "b_title": o.title or None,
        "b_new_at": o.now if o.new else None,
        "b_added": len(o.new) + len(o.backfill),
    }


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
        "categories": list(entry.categories),
    }


def _insert_entries(
    conn: Connection, feed_id: int, news: Sequence[NewEntry], states: Sequence[str], now: datetime
) -> list[int]:
    """Insert entries and their keys in a few statements; returns their ids, in order.

    One executemany instead of a statement per entry: a first poll of a thousand feeds
    stores tens of thousands of entries on the one store thread. (An ordered INSERT ...
    RETURNING would do, but SQLAlchemy runs it row by row on SQLite.) The rows are inserted
    one after the other, so their new ids ascend in the order given.
    """
    if not news:
        return []
    before = conn.execute(_MAX_ENTRY_ID).scalar() or 0
    rows = [
        {
            "feed_id": feed_id,
            "fingerprint": n.fingerprint,
            "first_seen": now,
            "last_seen": now,
            "revisions": 0,
            "state": state,
            **_entry_values(n.entry),
        }
        for n, state in zip(news, states, strict=True)
    ]
    conn.execute(_INSERT_ENTRY, rows)
    added = conn.execute(_ENTRIES_SINCE, {"b_feed": feed_id, "b_after": before})
    ids = [int(i) for i in added.scalars()]
    if len(ids) != len(rows):  # only another writer on this feed could cause it
        raise StoreError(f"feed {feed_id}: inserted {len(rows)} entries but found {len(ids)}")
    _add_keys(conn, feed_id, [(i, n.keys) for i, n in zip(ids, news, strict=True)])
    return ids


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
    _add_keys(conn, feed_id, [(upd.entry_id, upd.keys)])


def _add_keys(conn: Connection, feed_id: int, owners: Sequence[tuple[int, Sequence[str]]]) -> None:
    """Point each ``(entry_id, keys)``'s keys at its entry, in one INSERT for them all.

    A key may already point at this (or, after a GUID reuse, another) entry: keep the first.
    """
    wanted = [key for _, keys in owners for key in keys]
    existing: set[str] = set()
    for chunk in _chunks(wanted, 500):
        found = conn.execute(_EXISTING_KEYS, {"b_feed": feed_id, "b_keys": chunk})
        existing.update(found.scalars())
    rows = []
    for entry_id, keys in owners:
        for key in keys:
            if key not in existing:
                existing.add(key)
                rows.append({"feed_id": feed_id, "key": key, "entry_id": entry_id})
    if rows:
        conn.execute(_INSERT_KEY, rows)


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
        categories=tuple(m["categories"] or ()),
    )
    return PendingEntry(m["id"], m["feed_id"], m["feed_name"], tuple(m["feed_tags"] or ()), entry)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# A moved feed keeps its entries; what it learnt about the old url goes: validators,
# errors, backoff and cadence hint, and its first poll at the new url is a first poll again
# (backfill: the new url may list old items under new links).
_MOVED: dict[str, Any] = {
    "etag": None, "last_modified": None, "hint": None, "next_poll_at": None,
    "last_success_at": None, "last_error": None, "last_error_at": None,
    "failing_since": None, "failures": 0, "warning": None, "reported": None,
}  # fmt: skip


def moved_feeds(wanted: dict[str, FeedConfig], stored: Sequence[Any]) -> dict[str, str]:
    """New configured url -> url of the stored feed it replaces: a feed the config names
    (``name =``) at a url not stored, while exactly one feed of that name, configured until
    now, has a url the config no longer lists. Rows of ``stored`` have ``url``, ``id``,
    ``name`` and ``in_config`` (a feed set aside long ago lends its history to no one)."""
    left = [r for r in stored if r.url not in wanted and r.in_config]
    stored_urls = {r.url for r in stored}
    moved: dict[str, str] = {}
    for url, cfg in wanted.items():
        if url in stored_urls or not cfg.name:
            continue
        same_name = [r.url for r in left if r.name == cfg.name]
        if len(same_name) == 1 and same_name[0] not in moved.values():
            moved[url] = same_name[0]
    return moved
