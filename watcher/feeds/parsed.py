"""The parsed-feed record: what parsing returns and polling consumes, with no parser imports.

It crosses from the parsing workers to the daemon pickled; unpickling imports the module that
defines it, so keeping it apart from watcher/feeds/parse.py keeps lxml out of the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.types import Entry


@dataclass(frozen=True)
class ParsedFeed:
    kind: str  # "rss", "atom", "rdf", "json"
    title: str
    link: str | None  # site URL
    language: str
    entries: tuple[Entry, ...]
    ttl: float | None  # RSS <ttl>, in seconds
    update_period: float | None  # sy:updatePeriod / sy:updateFrequency, in seconds
    warning: str | None  # why the document is malformed, when it still yielded a feed
