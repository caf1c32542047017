"""Shared value types every layer may import: articles, entries, evidence, matches, stories, routes.

Like reader's ``_types.py``: plain frozen records at the bottom of the package, importing
nothing of watcher's, so the store and every stage can speak them without importing each
other. Behaviour lives in the packages that own the decisions, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

# The article fields a rule can look in.
Field = Literal["title", "text"]


class ArticleSource(StrEnum):
    """Where an article's text came from."""

    PAGE = "page"  # the fetched web page, extracted with trafilatura
    FEED_CONTENT = "feed-content"  # the feed item's full content
    FEED_SUMMARY = "feed-summary"  # the feed item's summary or description
    FILE = "file"  # a local file given to `watcher explain`
    PASTED = "pasted text"  # text pasted into the web page's tester


@dataclass(frozen=True)
class Article:
    """The record extraction produces and rule matching consumes."""

    url: str
    title: str
    text: str
    source: ArticleSource
    language: str = ""  # ISO 639-1 code, "" when unknown
    published: datetime | None = None
    author: str = ""
    site_name: str = ""
    feed_name: str = ""
    feed_tags: tuple[str, ...] = ()
    # Why the page was not used (fetch error, blocked, too little text), when it was not.
    fallback_reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()  # the feed item's own categories/tags


@dataclass(frozen=True)
class Entry:
    """One parsed feed item, as plain text."""

    guid: str | None  # RSS guid / Atom id / JSON Feed id, stripped; None if absent or empty
    link: str | None  # absolute URL of the item's page
    title: str  # plain text on one line
    summary: str  # plain text; paragraphs separated by "\n"
    content: str  # plain text of the fullest content, "" if none
    author: str
    published: datetime | None  # timezone-aware UTC
    updated: datetime | None  # timezone-aware UTC
    language: str  # ISO 639-1 lower-case, "" if unknown
    categories: tuple[str, ...] = ()  # the item's categories/tags, plain text, deduplicated


@dataclass(frozen=True)
class Known:
    """An entry already stored, by id, with the fingerprint of its content then."""

    entry_id: int
    fingerprint: str


@dataclass(frozen=True)
class NewEntry:
    entry: Entry
    keys: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class UpdatedEntry:
    entry_id: int
    entry: Entry
    keys: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class Evidence:
    """One mention that counted (or was looked at) for a rule, with where it was found."""

    kind: Literal["actor", "keyword", "regex"]
    term: str  # the actor's canonical name, the keyword phrase, or the regex group's name
    matched: str  # the text as it appears in the article
    where: Field
    sentence: str
    start: int  # char offsets in the field
    end: int
    entity_label: str | None = None
    weight: float = 1.0  # the term's weight in the rule; 0 for context-only terms
    group: str = ""  # the rule's term it counted for: a keyword's group ("" in old records)


@dataclass(frozen=True)
class Match:
    """A rule that matched an article: its score, evidence and where it wants alerts sent."""

    rule: str
    score: float
    threshold: float
    evidence: tuple[Evidence, ...]
    priority: str
    destinations: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Signature:
    """An article's near-duplicate fingerprint: headline terms and a MinHash sketch."""

    title_terms: frozenset[str]
    sketch: tuple[int, ...]


@dataclass(frozen=True)
class StoryRef:
    """What the grouping decision needs to know about a recent story."""

    id: int
    signature: Signature
    last_seen: datetime
    rules: Mapping[str, float]  # rule name -> best score that alerted in this story


@dataclass(frozen=True)
class Route:
    """Where one alert goes, and whether it waits for a digest or the end of quiet hours."""

    destination: str
    digest: bool  # held for the next digest instead of sent now
    not_before: datetime | None  # held by quiet hours until then


@dataclass(frozen=True)
class Outcome:
    """What happens to one rule's match: "alert", "develop", "join", "muted" or "digest"."""

    rule: str
    outcome: str
    reason: str
