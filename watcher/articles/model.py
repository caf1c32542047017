"""The Article record that extraction produces and rule matching consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ArticleSource(StrEnum):
    """Where an article's text came from."""

    PAGE = "page"  # the fetched web page, extracted with trafilatura
    FEED_CONTENT = "feed-content"  # the feed item's full content
    FEED_SUMMARY = "feed-summary"  # the feed item's summary or description
    FILE = "file"  # a local file given to `watcher explain`


@dataclass(frozen=True)
class Article:
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
