"""Feed parsers on the corpus: CPU time and whether a faster parser yields watcher's entries.

    WATCHER_CORPUS=../shared/corpus .venv/bin/python bench/parsers.py

For every file under corpus/feeds, times watcher's parse_feed with its lxml fast path (what
the daemon runs), parse_feed on feedparser alone (``fast=False``), the fast path by itself
(``fastparse.parse``: None when it declines), bare feedparser and fastfeedparser (process CPU
seconds, one pass each, served with the content type of their suffix as the corpus test
serves them). Then it counts the files the fast path takes and those where parse_feed gives
the same ParsedFeed both ways (every one must), and compares fastfeedparser's entries with
watcher's on what identifies an entry (count, GUID, link, title).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import fastfeedparser
import feedparser
from _common import CORPUS, emit, machine

from watcher.errors import ParseError
from watcher.feeds import fastparse
from watcher.feeds.parse import parse_feed

CONTENT_TYPES = {
    ".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml", ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8", ".opml": "text/x-opml", ".txt": "text/plain",
}  # fmt: skip


Doc = tuple[bytes, str]  # a body and the content type it is served with


def timed(docs: list[Doc], parse: Callable[[bytes, str], Any]) -> dict[str, Any]:
    started, parsed = time.process_time(), 0
    for body, content_type in docs:
        try:
            if parse(body, content_type) is not None:
                parsed += 1
        except Exception:
            continue
    return {"cpu_s": round(time.process_time() - started, 3), "parsed": parsed}


def watcher_parse(fast: bool) -> Callable[[bytes, str], Any]:
    def parse(body: bytes, content_type: str) -> Any:
        return parse_feed(body, url=URL, content_type=content_type, fast=fast)

    return parse


def fast_path(body: bytes, content_type: str) -> Any:
    """The fast path alone, on the body as parse_feed hands it over."""
    stripped = body.lstrip() if body.lstrip()[:5] == b"<?xml" else body
    return fastparse.parse(stripped, content_type)


def fast_path_agreement(docs: list[Doc], folders: list[str]) -> dict[str, Any]:
    taken = same = 0
    by_folder: dict[str, int] = {}
    for (body, content_type), folder in zip(docs, folders, strict=True):
        if fast_path(body, content_type) is None:
            continue
        taken += 1
        by_folder[folder] = by_folder.get(folder, 0) + 1
        try:
            same += watcher_parse(True)(body, content_type) == watcher_parse(False)(
                body, content_type
            )
        except ParseError:
            continue
    return {
        "fast_path_taken": taken,
        "by_folder": by_folder,
        "fast_path_same_parsed_feed": same,
        "of": len(docs),
    }


URL = "http://127.0.0.1/feed.xml"


def fast_keys(body: bytes) -> list[tuple[Any, ...]] | None:
    try:
        entries = fastfeedparser.parse(body)["entries"]
    except Exception:
        return None
    keys = []
    for e in entries:
        link = e.get("link") or next(
            (x.get("href") for x in e.get("links") or () if x.get("rel") == "alternate"), None
        )
        keys.append(
            ((e.get("id") or "").strip() or None, link, " ".join((e.get("title") or "").split()))
        )
    return keys


def ours(body: bytes) -> list[tuple[Any, ...]] | None:
    try:
        entries = parse_feed(body, url=URL).entries
    except ParseError:
        return None
    return [(e.guid, e.link, e.title) for e in entries]


def main() -> None:
    files = sorted(p for p in (CORPUS / "feeds").rglob("*") if p.is_file())
    docs = [
        (p.read_bytes(), CONTENT_TYPES.get(p.suffix, "application/octet-stream")) for p in files
    ]
    bodies = [body for body, _ in docs]
    emit({"machine": machine(), "files": len(docs), "mb": round(sum(map(len, bodies)) / 1e6, 1)})
    emit(
        {
            "parser": "watcher parse_feed (fast path, then feedparser)",
            **timed(docs, watcher_parse(True)),
        }
    )
    emit({"parser": "watcher parse_feed, feedparser only", **timed(docs, watcher_parse(False))})
    emit({"parser": "the fast path alone (None when it declines)", **timed(docs, fast_path)})
    emit(
        {
            "parser": "feedparser",
            **timed(
                docs,
                lambda b, _: feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False),
            ),
        }
    )
    emit({"parser": "fastfeedparser", **timed(docs, lambda b, _: fastfeedparser.parse(b))})
    folders = [p.relative_to(CORPUS / "feeds").parts[0] for p in files]
    emit(fast_path_agreement(docs, folders))
    same_count = same_entries = 0
    for body in bodies:
        a, b = ours(body), fast_keys(body)
        if a is None or b is None:
            same_count += a is None and b is None
            same_entries += a is None and b is None
            continue
        same_count += len(a) == len(b)
        same_entries += a == b
    emit(
        {
            "fastfeedparser_same_entry_count": same_count,
            "fastfeedparser_same_entries": same_entries,
            "of": len(bodies),
        }
    )


if __name__ == "__main__":
    main()
