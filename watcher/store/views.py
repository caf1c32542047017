"""Read-only queries behind the web page: stories, rule and feed activity, article search."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store.tables import (
    alerts,
    articles,
    deliveries,
    entries,
    feedback,
    matches,
    stories,
    story_sources,
)

if TYPE_CHECKING:
    from watcher.store.base import Store

T = TypeVar("T")

# Marks around matched words in search snippets; control characters never occur in text.
_OPEN, _CLOSE = "\x02", "\x03"
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    page: int  # 1-based
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass(frozen=True)
class StoryFilter:
    rule: str = ""
    priority: str = ""
    language: str = ""
    feed: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Marked:
    """A text with spans to highlight (character offsets)."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class RuleHit:
    name: str
    score: float
    threshold: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceLine:
    rule: str
    term: str
    sentence: Marked


@dataclass(frozen=True)
class Delivery:
    destination: str
    state: str
    error: str | None


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    title: str


@dataclass(frozen=True)
class StoryView:
    alert_id: int
    story_id: int | None
    created_at: datetime
    last_seen: datetime | None
    title: str
    url: str
    source: str
    priority: str
    language: str
    quotes: tuple[Marked, ...]
    rules: tuple[RuleHit, ...]
    evidence: tuple[EvidenceLine, ...] = ()
    sources: tuple[Source, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    not_relevant: int = 0


@dataclass(frozen=True)
class Facets:
    """The values the story filters offer."""

    rules: tuple[str, ...]
    priorities: tuple[str, ...]
    languages: tuple[str, ...]
    feeds: tuple[str, ...]


@dataclass(frozen=True)
class RuleActivity:
    rule: str
    per_day: tuple[int, ...]  # oldest first, one per UTC day, today last
    hits: int
    alerts: int
    not_relevant: int


@dataclass(frozen=True)
class SearchHit:
    article_id: int
    title: str
    url: str
    feed: str
    processed_at: datetime
    snippet: Marked
    story_id: int | None = None
    rules: tuple[str, ...] = field(default=())


# --- stories --------------------------------------------------------------------------


def stories_page(store: Store, filt: StoryFilter, page: int = 1, per_page: int = 50) -> Page[Any]:
    """Alerted stories (their first alert), newest first, filtered, one page of them."""
    query = _story_query(filt)
    with store.transaction() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0
        )
        rows = list(
            conn.execute(
                query.order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
        )
        views = _story_views(conn, rows)
    return Page(tuple(views), total, page, per_page)


def _story_query(filt: StoryFilter) -> sa.Select[Any]:
    query = (
        sa.select(
            alerts.c.id,
            alerts.c.story_id,
            alerts.c.article_id,
            alerts.c.priority,
            alerts.c.created_at,
            alerts.c.payload,
            articles.c.language,
            articles.c.feed_name,
            stories.c.last_seen,
        )
        .select_from(
            alerts.outerjoin(articles, articles.c.id == alerts.c.article_id).outerjoin(
                stories, stories.c.id == alerts.c.story_id
            )
        )
        .where(alerts.c.kind == "new")
    )
    if filt.rule:
        by_rule = sa.select(matches.c.article_id).where(matches.c.rule == filt.rule)
        stories_by_rule = sa.select(matches.c.story_id).where(
            matches.c.rule == filt.rule, matches.c.story_id.is_not(None)
        )
        query = query.where(
            sa.or_(alerts.c.article_id.in_(by_rule), alerts.c.story_id.in_(stories_by_rule))
        )
    if filt.priority:
        query = query.where(alerts.c.priority == filt.priority)
    if filt.language:
        query = query.where(articles.c.language == filt.language)
    if filt.feed:
        query = query.where(articles.c.feed_name == filt.feed)
    if filt.since:
        query = query.where(alerts.c.created_at >= filt.since)
    if filt.until:
        query = query.where(alerts.c.created_at < filt.until)
    return query


def _story_views(conn: Connection, rows: Sequence[Any]) -> list[StoryView]:
    alert_ids = [r.id for r in rows]
    story_ids = [r.story_id for r in rows if r.story_id is not None]
    article_ids = [r.article_id for r in rows if r.article_id is not None]
    sent: dict[int, list[Delivery]] = {}
    for d in conn.execute(
        sa.select(
            deliveries.c.alert_id,
            deliveries.c.destination,
            deliveries.c.state,
            deliveries.c.last_error,
        )
        .where(deliveries.c.alert_id.in_(alert_ids))
        .order_by(deliveries.c.id)
    ):
        sent.setdefault(d.alert_id, []).append(Delivery(d.destination, d.state, d.last_error))
    sources: dict[int, list[Source]] = {}
    for s in conn.execute(
        sa.select(story_sources)
        .where(story_sources.c.story_id.in_(story_ids))
        .order_by(story_sources.c.id)
    ):
        sources.setdefault(s.story_id, []).append(Source(s.source, s.url, s.title))
    votes: dict[Any, int] = dict(
        conn.execute(
            sa.select(feedback.c.alert_id, sa.func.count(sa.distinct(feedback.c.by)))
            .where(feedback.c.alert_id.in_(alert_ids))
            .group_by(feedback.c.alert_id)
        ).all()
    )
    evidence = _evidence(conn, article_ids)
    return [
        _story_view(r, sent.get(r.id, []), sources.get(r.story_id, []), votes, evidence)
        for r in rows
    ]


def _story_view(
    r: Any,
    sent: list[Delivery],
    sources: list[Source],
    votes: dict[int, int],
    evidence: dict[int, list[EvidenceLine]],
) -> StoryView:
    payload = r.payload or {}
    return StoryView(
        alert_id=r.id,
        story_id=r.story_id,
        created_at=r.created_at,
        last_seen=r.last_seen,
        title=str(payload.get("title") or "(untitled)"),
        url=str(payload.get("url") or ""),
        source=str(payload.get("source") or r.feed_name or ""),
        priority=r.priority,
        language=r.language or "",
        quotes=tuple(
            Marked(str(q["text"]), tuple((int(a), int(b)) for a, b in q.get("marks", ())))
            for q in payload.get("quotes", ())
        ),
        rules=tuple(
            RuleHit(
                str(x["name"]),
                float(x.get("score", 0)),
                float(x.get("threshold", 0)),
                tuple(str(t["term"]) for t in x.get("terms", ())),
            )
            for x in payload.get("rules", ())
        ),
        evidence=tuple(evidence.get(r.article_id, ())),
        sources=tuple(sources),
        deliveries=tuple(sent),
        not_relevant=int(votes.get(r.id, 0)),
    )


def _evidence(
    conn: Connection, article_ids: Sequence[int], per_rule: int = 3
) -> dict[int, list[EvidenceLine]]:
    """Per article: a few sentences per matching rule, with the matched words marked."""
    out: dict[int, list[EvidenceLine]] = {}
    query = (
        sa.select(matches.c.article_id, matches.c.rule, matches.c.evidence)
        .where(matches.c.article_id.in_(article_ids))
        .order_by(matches.c.id)
    )
    for article_id, rule, stored in conn.execute(query):
        lines: list[EvidenceLine] = []
        # Context-only terms (weight 0) are neither quoted nor marked, as in the alerts.
        found = [e for e in stored or () if float(e.get("weight", 1.0)) > 0]
        for e in sorted(found, key=lambda e: -float(e.get("weight", 1.0))):
            sentence = str(e.get("sentence", ""))
            if len(lines) >= per_rule or any(x.sentence.text == sentence for x in lines):
                continue
            lines.append(EvidenceLine(rule, str(e.get("term", "")), mark_words(sentence, found)))
        out.setdefault(article_id, []).extend(lines)
    return out


def mark_words(sentence: str, evidence: Sequence[Mapping[str, Any]]) -> Marked:
    """The sentence with the evidence found in it marked: whole words, longest first, no
    overlaps (evidence from other sentences is ignored)."""
    spans: list[tuple[int, int]] = []
    folded = sentence.casefold()
    if len(folded) != len(sentence):  # casefolding changed offsets (ß -> ss): mark nothing
        return Marked(sentence)
    needles = {
        str(e.get("matched", "")).casefold()
        for e in evidence
        if e.get("sentence", sentence) == sentence
    }
    for needle in sorted(needles - {""}, key=len, reverse=True):
        start = folded.find(needle)
        while start >= 0:
            span = (start, start + len(needle))
            if _whole(folded, *span) and not any(a < span[1] and span[0] < b for a, b in spans):
                spans.append(span)
            start = folded.find(needle, start + 1)
    return Marked(sentence, tuple(sorted(spans)))


def _whole(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() and text[start].isalnum()) and not (
        after.isalnum() and text[end - 1].isalnum()
    )


def story_facets(store: Store) -> Facets:
    with store.transaction() as conn:

        def distinct(col: Any) -> tuple[str, ...]:
            rows = conn.execute(sa.select(col).distinct().order_by(col))
            return tuple(str(v) for (v,) in rows if v)

        return Facets(
            distinct(matches.c.rule),
            distinct(alerts.c.priority),
            distinct(articles.c.language),
            distinct(articles.c.feed_name),
        )


# --- rules and feeds over time ----------------------------------------------------------


def _day(col: Any, dialect: str) -> Any:
    """A UTC timestamp column as 'YYYY-MM-DD' text on either backend."""
    if dialect == "postgresql":
        return sa.func.to_char(col, "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", col)


def _day_index(today: date, days: int) -> dict[str, int]:
    return {(today - timedelta(days=days - 1 - i)).isoformat(): i for i in range(days)}


def rule_activity(store: Store, now: datetime, days: int = 30) -> list[RuleActivity]:
    """Per rule seen in the window: matches per UTC day, alerts, and "not relevant" votes."""
    since = datetime.combine(
        now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=now.tzinfo
    )
    index = _day_index(now.date(), days)
    with store.transaction() as conn:
        day = _day(matches.c.created_at, conn.dialect.name)
        per_day: dict[str, list[int]] = {}
        alerted: dict[str, int] = {}
        query = (
            sa.select(matches.c.rule, day.label("day"), matches.c.outcome, sa.func.count())
            .where(matches.c.created_at >= since)
            .group_by(matches.c.rule, day, matches.c.outcome)
        )
        for rule, when, outcome, n in conn.execute(query):
            counts = per_day.setdefault(rule, [0] * days)
            if when in index:
                counts[index[when]] += int(n)
            if outcome == "alert":
                alerted[rule] = alerted.get(rule, 0) + int(n)
        votes: dict[Any, int] = dict(
            conn.execute(
                sa.select(feedback.c.rule, sa.func.count())
                .where(feedback.c.created_at >= since)
                .group_by(feedback.c.rule)
            ).all()
        )
    names = sorted(set(per_day) | set(votes))
    return [
        RuleActivity(
            rule,
            tuple(per_day.get(rule, [0] * days)),
            sum(per_day.get(rule, ())),
            alerted.get(rule, 0),
            int(votes.get(rule, 0)),
        )
        for rule in names
    ]


def feed_activity(store: Store, now: datetime, days: int = 14) -> dict[int, tuple[int, ...]]:
    """Per feed id: new entries per UTC day over the last ``days`` days, oldest first."""
    since = datetime.combine(
        now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=now.tzinfo
    )
    index = _day_index(now.date(), days)
    out: dict[int, list[int]] = {}
    with store.transaction() as conn:
        day = _day(entries.c.first_seen, conn.dialect.name)
        query = (
            sa.select(entries.c.feed_id, day.label("day"), sa.func.count())
            .where(entries.c.first_seen >= since)
            .group_by(entries.c.feed_id, day)
        )
        for feed_id, when, n in conn.execute(query):
            if when in index:
                out.setdefault(feed_id, [0] * days)[index[when]] += int(n)
    return {k: tuple(v) for k, v in out.items()}


# --- full-text search -------------------------------------------------------------------


def search_articles(store: Store, text: str, page: int = 1, per_page: int = 25) -> Page[SearchHit]:
    """Stored articles matching every word of ``text``, best first (FTS5 or PostgreSQL)."""
    words = _WORD.findall(text)[:16]
    if not words:
        return Page((), 0, page, per_page)
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            total, rows = _search_pg(conn, words, page, per_page)
        else:
            total, rows = _search_sqlite(conn, words, page, per_page)
        hits = _with_stories(conn, rows)
    return Page(tuple(hits), total, page, per_page)


def _search_sqlite(
    conn: Connection, words: list[str], page: int, per_page: int
) -> tuple[int, list[Any]]:
    # Each word quoted: user text is never FTS5 syntax; the last one also matches as a prefix.
    query = " ".join('"' + w.replace('"', '""') + '"' for w in words) + "*"
    total = conn.exec_driver_sql(
        "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", (query,)
    ).scalar()
    rows = conn.exec_driver_sql(
        "SELECT a.id, a.title, a.url, a.feed_name, a.processed_at, "
        f"snippet(articles_fts, 1, '{_OPEN}', '{_CLOSE}', '…', 24) AS snippet "
        "FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
        "WHERE articles_fts MATCH ? ORDER BY rank LIMIT ? OFFSET ?",
        (query, per_page, (page - 1) * per_page),
    ).all()
    return int(total or 0), list(rows)


def _pg_document() -> Any:
    # Must stay identical to the index expression in migration 5 for the index to serve.
    return sa.func.to_tsvector(
        sa.literal_column("'simple'"), articles.c.title + sa.literal(" ") + articles.c.text
    )


def _search_pg(
    conn: Connection, words: list[str], page: int, per_page: int
) -> tuple[int, list[Any]]:
    # \w+ words carry no tsquery operator; all must match, the last also as a prefix (as on
    # SQLite). PostgreSQL's parser skips markup tags: "<script>" is not a word there.
    text = " & ".join(words) + ":*"
    query = sa.func.to_tsquery(sa.literal_column("'simple'"), text)
    hit = _pg_document().op("@@")(query)
    total = conn.execute(sa.select(sa.func.count()).select_from(articles).where(hit)).scalar()
    options = f"StartSel={_OPEN}, StopSel={_CLOSE}, MaxWords=35, MinWords=15"
    rows = conn.execute(
        sa.select(
            articles.c.id,
            articles.c.title,
            articles.c.url,
            articles.c.feed_name,
            articles.c.processed_at,
            sa.func.ts_headline(
                sa.literal_column("'simple'"), articles.c.text, query, options
            ).label("snippet"),
        )
        .where(hit)
        .order_by(sa.func.ts_rank(_pg_document(), query).desc(), articles.c.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return int(total or 0), list(rows)


def _with_stories(conn: Connection, rows: list[Any]) -> list[SearchHit]:
    ids = [r.id for r in rows]
    story: dict[int, int] = {}
    rules: dict[int, set[str]] = {}
    for article_id, story_id, rule in conn.execute(
        sa.select(matches.c.article_id, matches.c.story_id, matches.c.rule).where(
            matches.c.article_id.in_(ids)
        )
    ):
        rules.setdefault(article_id, set()).add(rule)
        if story_id is not None:
            story[article_id] = story_id
    return [
        SearchHit(
            r.id,
            r.title,
            r.url,
            r.feed_name,
            _parse_when(r.processed_at),
            unmark(r.snippet or ""),
            story.get(r.id),
            tuple(sorted(rules.get(r.id, ()))),
        )
        for r in rows
    ]


def _parse_when(value: Any) -> datetime:
    """SQLite hands raw SQL a DATETIME as text; make it the aware UTC datetime tables give."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def unmark(snippet: str) -> Marked:
    """A snippet with _OPEN/_CLOSE markers as plain text plus the spans they enclosed."""
    text: list[str] = []
    marks: list[tuple[int, int]] = []
    length, start = 0, -1
    for part in re.split(f"([{_OPEN}{_CLOSE}])", snippet):
        if part == _OPEN:
            start = length
        elif part == _CLOSE:
            if start >= 0:
                marks.append((start, length))
            start = -1
        else:
            text.append(part)
            length += len(part)
    return Marked("".join(text), tuple(marks))
