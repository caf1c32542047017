"""Store methods for articles, matches, stories and the alerts recorded with them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Moved to their own modules; importable from here as before.
from watcher.store.dialect import insert
from watcher.store.tables import (
    alerts,
    articles,
    deliveries,
    entries,
    matches,
    new_id,
    stories,
    story_sources,
)
from watcher.types import Article, ArticleSource, Match, Outcome, Route, Signature, StoryRef


@dataclass(frozen=True)
class StoryChange:
    story_id: int | None  # None: a new story
    title: str
    signature: Signature
    rules: dict[str, float]  # rule -> score to remember (the highest wins)


@dataclass(frozen=True)
class ArticleRecord:
    """Everything decided about one article, stored in one transaction."""

    entry_id: int | None
    feed_id: int | None
    url: str  # canonical
    article: Article
    now: datetime
    matches: Sequence[tuple[Match, Outcome]] = ()
    story: StoryChange | None = None
    alert_kind: str | None = None  # "new" or "develop"
    payload: dict[str, Any] | None = None
    routes: Sequence[Route] = ()
    update_throttle: float = 60.0
    # Destination kinds that take story updates ("+3 sources"), as the channel specs say.
    updatable_kinds: frozenset[str] = frozenset()


class DeliveryState(NamedTuple):
    """An alert's delivery to one destination, as `watcher alerts` lists it."""

    destination: str
    state: str  # pending, sent, failed, digest
    error: str | None  # the last attempt's, if it failed
    held_until: datetime | None = None  # quiet hours (or an update's throttle) hold it till then


@dataclass(frozen=True)
class AlertRow:
    id: int
    kind: str
    priority: str
    created_at: datetime
    title: str
    rules: tuple[str, ...]
    deliveries: tuple[DeliveryState, ...] = field(default=())
    story_id: int | None = None


@dataclass(frozen=True)
class HeldMatch:
    """A rule's match that sent nothing: outcome "muted" or "blocked"."""

    created_at: datetime
    rule: str
    outcome: str
    title: str


def _signature_json(sig: Signature) -> dict[str, Any]:
    return {"title_terms": sorted(sig.title_terms), "sketch": list(sig.sketch)}


def _signature(data: dict[str, Any]) -> Signature:
    return Signature(frozenset(data["title_terms"]), tuple(data["sketch"]))


class AlertsMixin:
    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- articles and stories ---

    def article_id(self, url: str) -> int | None:
        with self.transaction() as conn:
            return conn.execute(sa.select(articles.c.id).where(articles.c.url == url)).scalar()

    def recent_stories(self, since: datetime) -> list[StoryRef]:
        query = sa.select(stories).where(stories.c.last_seen >= since)
        with self.transaction() as conn:
            return [
                StoryRef(r.id, _signature(r.signature), r.last_seen, dict(r.rules))
                for r in conn.execute(query)
            ]

    def record_article(self, rec: ArticleRecord) -> int | None:
        """Store an article, its matches, story and alert with its deliveries, atomically.

        Returns the article id, or None if another entry already brought the same article.
        """
        with self.transaction() as conn:
            article_id = _insert_article(conn, rec)
            if article_id is None:  # stored already, from another entry or replica
                _finish_entry(conn, rec.entry_id)
                return None
            story_id = _save_story(conn, rec, article_id) if rec.story else None
            _insert_matches(conn, rec, article_id, story_id)
            if rec.alert_kind and rec.payload is not None:
                _insert_alert(conn, rec, article_id, story_id)
            elif story_id is not None and rec.story and rec.story.story_id is not None:
                _queue_story_updates(
                    conn, story_id, rec.now, rec.update_throttle, rec.updatable_kinds
                )
            _finish_entry(conn, rec.entry_id)
            return article_id

    def finish_entry(self, entry_id: int) -> None:
        with self.transaction() as conn:
            _finish_entry(conn, entry_id)

    def mark_entry_failed(self, entry_id: int) -> None:
        with self.transaction() as conn:
            conn.execute(entries.update().where(entries.c.id == entry_id).values(state="error"))

    # --- reading back ---

    def alert_counts(self, since: datetime) -> dict[str, int]:
        """Alerts sent per rule since ``since`` (for rate limits and /rules)."""
        query = (
            sa.select(matches.c.rule, sa.func.count())
            .where(matches.c.created_at >= since, matches.c.outcome.in_(["alert", "develop"]))
            .group_by(matches.c.rule)
        )
        with self.transaction() as conn:
            return {str(rule): int(n) for rule, n in conn.execute(query)}

    def count_alerts(self, since: datetime) -> int:
        """Alerts (new stories and developments, not digests or updates) since ``since``."""
        query = sa.select(sa.func.count()).where(
            alerts.c.created_at >= since, alerts.c.kind.in_(["new", "develop"])
        )
        with self.transaction() as conn:
            return int(conn.execute(query).scalar() or 0)

    def recent_alerts(self, limit: int = 20) -> list[AlertRow]:
        with self.transaction() as conn:
            rows = list(conn.execute(sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)))
            out = []
            for r in rows:
                ds = conn.execute(
                    sa.select(
                        deliveries.c.destination,
                        deliveries.c.state,
                        deliveries.c.last_error,
                        deliveries.c.not_before,
                    )
                    .where(deliveries.c.alert_id == r.id)
                    .order_by(deliveries.c.id)
                )
                payload = r.payload or {}
                count = len(payload.get("items", []))
                title = payload.get("title") or f"{count} alert{'' if count == 1 else 's'}"
                if r.kind == "sources" and r.story_id is not None:
                    # An update ("+N sources") has no payload: it names its story instead.
                    story = conn.execute(
                        sa.select(stories.c.title, stories.c.rules).where(
                            stories.c.id == r.story_id
                        )
                    ).first()
                    title = story.title if story else f"story {r.story_id}"
                    payload = {"rules": [{"name": n} for n in (story.rules if story else {})]}
                out.append(
                    AlertRow(
                        r.id,
                        r.kind,
                        r.priority,
                        r.created_at,
                        title,
                        tuple(x["name"] for x in payload.get("rules", [])),
                        tuple(DeliveryState(*d) for d in ds),
                        r.story_id,
                    )
                )
            return out

    def held_matches(self, limit: int = 20) -> list[HeldMatch]:
        """The latest matches a mute or the blocklist kept from alerting, newest first."""
        query = (
            sa.select(matches.c.created_at, matches.c.rule, matches.c.outcome, articles.c.title)
            .join(articles, articles.c.id == matches.c.article_id)
            .where(matches.c.outcome.in_(["muted", "blocked"]))
            .order_by(matches.c.id.desc())
            .limit(limit)
        )
        with self.transaction() as conn:
            return [HeldMatch(*r) for r in conn.execute(query)]

    def held_rules(self, article_ids: Sequence[int]) -> dict[int, set[str]]:
        """For backtests: which rules matched but were muted or blocked, per stored article."""
        out: dict[int, set[str]] = {}
        with self.transaction() as conn:
            for chunk in range(0, len(article_ids), 500):
                query = sa.select(matches.c.article_id, matches.c.rule).where(
                    matches.c.article_id.in_(article_ids[chunk : chunk + 500]),
                    matches.c.outcome.in_(["muted", "blocked"]),
                )
                for article_id, rule in conn.execute(query):
                    out.setdefault(article_id, set()).add(rule)
        return out

    def articles_since(self, since: datetime, limit: int = 100_000) -> list[tuple[int, Article]]:
        # The feed item's categories live on its entry row (gone if the entry was deleted).
        query = (
            sa.select(articles, entries.c.categories)
            .select_from(articles.outerjoin(entries, entries.c.id == articles.c.entry_id))
            .where(articles.c.processed_at >= since)
            .order_by(articles.c.id)
            .limit(limit)
        )
        with self.transaction() as conn:
            return [(r.id, _article(r)) for r in conn.execute(query)]

    def alerted_rules(self, article_ids: Sequence[int]) -> dict[int, set[str]]:
        """For backtests: which rules matched (not muted or blocked) per stored article."""
        out: dict[int, set[str]] = {}
        with self.transaction() as conn:
            for chunk in range(0, len(article_ids), 500):
                ids = article_ids[chunk : chunk + 500]
                query = sa.select(matches.c.article_id, matches.c.rule).where(
                    matches.c.article_id.in_(ids), matches.c.outcome.not_in(["muted", "blocked"])
                )
                for article_id, rule in conn.execute(query):
                    out.setdefault(article_id, set()).add(rule)
        return out

    def alert_first_seen(self, alert_id: int) -> datetime | None:
        """When the feed entry behind an alert was first seen (for the latency metric);
        None when the alert has no entry (e.g. its article came from a file)."""
        query = (
            sa.select(entries.c.first_seen)
            .join(articles, articles.c.entry_id == entries.c.id)
            .join(alerts, alerts.c.article_id == articles.c.id)
            .where(alerts.c.id == alert_id)
        )
        with self.transaction() as conn:
            first_seen: datetime | None = conn.execute(query).scalar()
            return first_seen


def _insert_article(conn: Connection, rec: ArticleRecord) -> int | None:
    """Insert the article; None when its URL is stored already (ON CONFLICT DO NOTHING)."""
    a = rec.article
    new = (
        insert(conn, articles)
        .values(
            url=rec.url,
            entry_id=rec.entry_id,
            feed_id=rec.feed_id,
            feed_name=a.feed_name,
            feed_tags=list(a.feed_tags),
            title=a.title,
            text=a.text,
            language=a.language,
            source=str(a.source),
            fallback_reason=a.fallback_reason,
            published=a.published,
            author=a.author,
            site_name=a.site_name,
            processed_at=rec.now,
        )
        .on_conflict_do_nothing(index_elements=["url"])
        .returning(articles.c.id)
    )
    article_id: int | None = conn.execute(new).scalar()
    return article_id


def _save_story(conn: Connection, rec: ArticleRecord, article_id: int) -> int:
    change = rec.story
    assert change is not None
    if change.story_id is None:
        result = conn.execute(
            stories.insert().values(
                created_at=rec.now,
                last_seen=rec.now,
                title=change.title,
                signature=_signature_json(change.signature),
                rules=change.rules,
            )
        )
        return new_id(result)
    known = conn.execute(sa.select(stories.c.rules).where(stories.c.id == change.story_id)).scalar()
    merged = dict(known or {})
    for rule, score in change.rules.items():
        merged[rule] = max(score, merged.get(rule, 0.0))
    conn.execute(
        stories.update()
        .where(stories.c.id == change.story_id)
        .values(last_seen=rec.now, rules=merged)
    )
    conn.execute(
        story_sources.insert().values(
            story_id=change.story_id,
            article_id=article_id,
            source=rec.article.feed_name or rec.article.site_name or "",
            url=rec.article.url,
            title=rec.article.title,
            added_at=rec.now,
        )
    )
    return change.story_id


def _insert_matches(
    conn: Connection, rec: ArticleRecord, article_id: int, story_id: int | None
) -> None:
    rows = [
        {
            "article_id": article_id,
            "story_id": story_id,
            "rule": m.rule,
            "score": m.score,
            "threshold": m.threshold,
            "priority": m.priority,
            "evidence": [asdict(e) for e in m.evidence],
            "reasons": list(m.reasons),
            "outcome": o.outcome,
            "created_at": rec.now,
        }
        for m, o in rec.matches
    ]
    if rows:
        conn.execute(matches.insert(), rows)


def _insert_alert(
    conn: Connection, rec: ArticleRecord, article_id: int, story_id: int | None
) -> None:
    assert rec.payload is not None
    result = conn.execute(
        alerts.insert().values(
            story_id=story_id,
            article_id=article_id,
            kind=rec.alert_kind,
            priority=rec.payload["priority"],
            created_at=rec.now,
            payload=rec.payload,
        )
    )
    alert_id = new_id(result)
    kind = "reply" if rec.alert_kind == "develop" else "send"
    rows = [
        {
            "alert_id": alert_id,
            "destination": r.destination,
            "kind": kind,
            "state": "digest" if r.digest else "pending",
            "created_at": rec.now,
            "not_before": r.not_before,
            "attempts": 0,
        }
        for r in rec.routes
    ]
    if rows:
        conn.execute(deliveries.insert(), rows)


def _queue_story_updates(
    conn: Connection, story_id: int, now: datetime, throttle: float, updatable: frozenset[str]
) -> None:
    """Make sure each editable destination of the story's first alert has one pending edit;
    a pending edit is composed when sent, so it always carries every source so far."""
    first = conn.execute(
        sa.select(alerts.c.id)
        .where(alerts.c.story_id == story_id, alerts.c.kind == "new")
        .order_by(alerts.c.id)
        .limit(1)
    ).scalar()
    if first is None:
        return
    # destination -> when the first alert may go there (quiet hours): no edit before it.
    dests: dict[str, datetime | None] = {
        d: held
        for d, held in conn.execute(
            sa.select(deliveries.c.destination, deliveries.c.not_before).where(
                deliveries.c.alert_id == first, deliveries.c.kind == "send"
            )
        )
        if d.partition(":")[0] in updatable
    }
    pending = {
        d
        for (d,) in conn.execute(
            sa.select(deliveries.c.destination)
            .join(alerts, alerts.c.id == deliveries.c.alert_id)
            .where(
                alerts.c.story_id == story_id,
                deliveries.c.kind == "edit",
                deliveries.c.state == "pending",
            )
        )
    }
    todo = [d for d in dests if d not in pending]
    if not todo:
        return
    result = conn.execute(
        alerts.insert().values(
            story_id=story_id, kind="sources", priority="normal", created_at=now, payload={}
        )
    )
    alert_id = new_id(result)
    for dest in todo:
        conn.execute(
            deliveries.insert().values(
                alert_id=alert_id,
                destination=dest,
                kind="edit",
                state="pending",
                created_at=now,
                not_before=max(_next_edit(conn, story_id, dest, now, throttle), dests[dest] or now),
                attempts=0,
            )
        )


def _next_edit(
    conn: Connection, story_id: int, dest: str, now: datetime, throttle: float
) -> datetime:
    last: datetime | None = conn.execute(
        sa.select(sa.func.max(deliveries.c.sent_at))
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .where(
            alerts.c.story_id == story_id,
            deliveries.c.destination == dest,
            deliveries.c.kind == "edit",
        )
    ).scalar()
    if last is None:
        return now
    return max(now, last + timedelta(seconds=throttle))


def _finish_entry(conn: Connection, entry_id: int | None) -> None:
    if entry_id is not None:
        conn.execute(entries.update().where(entries.c.id == entry_id).values(state="done"))


def _article(r: Any) -> Article:
    return Article(
        url=r.url,
        title=r.title,
        text=r.text,
        source=ArticleSource(r.source),
        language=r.language,
        published=r.published,
        author=r.author,
        site_name=r.site_name,
        feed_name=r.feed_name,
        feed_tags=tuple(r.feed_tags or ()),
        fallback_reason=r.fallback_reason,
        categories=tuple(r.categories or ()),
    )
