"""Feed parsers on the corpus: CPU time and whether a faster parser yields watcher's entries.

    WATCHER_CORPUS=../shared/corpus .venv/bin/python bench/parsers.py

For every file under corpus/feeds, times watcher's parse_feed (feedparser and the text
conversion), bare feedparser and fastfeedparser (process CPU seconds, one pass each), then
compares fastfeedparser's entries with watcher's on what identifies an entry (count, GUID,
link, title). A faster parser could replace feedparser only if every feed agreed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import fastfeedparser
import feedparser
from _common import CORPUS, emit, machine

from watcher.errors import ParseError
from watcher.feeds.parse import parse_feed


def timed(bodies: list[bytes], parse: Callable[[bytes], Any]) -> dict[str, Any]:
    started, parsed = time.process_time(), 0
    for body in bodies:
        try:
            parse(body)
            parsed += 1
        except Exception:
            continue
    return {"cpu_s": round(time.process_time() - started, 3), "parsed": parsed}


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
        entries = parse_feed(body, url="http://127.0.0.1/feed.xml").entries
    except ParseError:
        return None
    return [(e.guid, e.link, e.title) for e in entries]


def main() -> None:
    files = sorted(p for p in (CORPUS / "feeds").rglob("*") if p.is_file())
    bodies = [p.read_bytes() for p in files]
    emit({"machine": machine(), "files": len(bodies), "mb": round(sum(map(len, bodies)) / 1e6, 1)})
    emit(
        {
            "parser": "watcher parse_feed",
            **timed(bodies, lambda b: parse_feed(b, url="http://127.0.0.1/")),
        }
    )
    emit(
        {
            "parser": "feedparser",
            **timed(
                bodies,
                lambda b: feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False),
            ),
        }
    )
    emit({"parser": "fastfeedparser", **timed(bodies, fastfeedparser.parse)})
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
