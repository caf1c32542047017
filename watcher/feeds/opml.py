"""OPML subscription lists: reading them safely into feeds with tags, and writing them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from xml.parsers import expat

from watcher.config import parse_duration
from watcher.errors import ParseError
from watcher.feeds.identity import feed_url_key

_CATEGORY_SPLIT = re.compile(r"[,/]")


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    name: str
    tags: tuple[str, ...] = ()  # folder titles, outermost first, then the category values
    # watcher's own outline attributes, so an export imported again keeps them: other
    # readers ignore attributes they do not know (OPML 2.0 allows any).
    enabled: bool = True
    interval: float = 0.0  # seconds between polls; 0 for [polling] interval


def parse_opml(data: bytes, *, source: str) -> list[OpmlFeed]:
    """The feeds in an OPML document, in document order, each URL once.

    Nested outlines become tags; ``source`` (a file name or URL) names the document in
    errors. A DOCTYPE is refused, so no entity can be declared, let alone expanded.
    """
    reader = _OpmlReader(source)
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = reader.doctype
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    reader.parser = parser
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ParseError(
            f"{source}:{exc.lineno}:{exc.offset + 1}: not well-formed XML:"
            f" {expat.ErrorString(exc.code)}"
        ) from None
    except (LookupError, ValueError) as exc:  # an encoding Python lacks, or a multi-byte one
        raise ParseError(f"{source}: unreadable encoding ({exc}); save it as UTF-8") from None
    if reader.root != "opml":
        found = f"<{reader.root}>" if reader.root else "no element"
        raise ParseError(f"{source}: not an OPML document (its root is {found}, not <opml>)")
    if reader.problems:  # every bad outline at once, one per line
        raise ParseError("\n".join(reader.problems))
    return list(reader.feeds.values())


class _OpmlReader:
    """expat callbacks that collect feed outlines with the folder titles above them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parser: Any = None
        self.root = ""
        self.folders: list[str | None] = []  # one per open outline; None for a feed outline
        # by feed_url_key: a feed listed twice, spelt alike or not, is one feed with both tags
        self.feeds: dict[str, OpmlFeed] = {}
        self.problems: list[str] = []

    def doctype(self, name: str, *_: object) -> None:
        raise ParseError(
            f"{self._where()}: OPML with a DOCTYPE is refused (its entities could expand"
            " without bound); remove the <!DOCTYPE ...> declaration"
        )

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.root = self.root or tag
        if tag != "outline":
            return
        attrs = {key.lower(): value.strip() for key, value in attributes.items()}
        title = attrs.get("title") or attrs.get("text") or ""
        url = attrs.get("xmlurl", "")
        if not url:
            self.folders.append(title or None)
            return
        self.folders.append(None)
        try:
            url = _feed_url(url, self._where())
            self._add(url, title, attrs.get("category", ""))
            self._settings(url, attrs)
        except ParseError as exc:
            self.problems.append(str(exc))

    def end(self, tag: str) -> None:
        if tag == "outline" and self.folders:
            self.folders.pop()

    def _add(self, url: str, title: str, category: str) -> None:
        tags = [folder for folder in self.folders if folder]
        tags += [part.strip() for part in _CATEGORY_SPLIT.split(category) if part.strip()]
        known = self.feeds.get(feed_url_key(url))
        if known is not None:
            tags = [*known.tags, *tags]
        new = OpmlFeed(url=url, name=title or url)
        self.feeds[feed_url_key(url)] = replace(known or new, tags=tuple(dict.fromkeys(tags)))

    def _settings(self, url: str, attrs: dict[str, str]) -> None:
        """watcher's ``enabled`` and ``interval`` outline attributes, when present."""
        key = feed_url_key(url)
        feed = self.feeds[key]
        enabled = attrs.get("enabled", "true").lower() not in ("false", "0", "no")
        interval = feed.interval
        if attrs.get("interval"):
            try:
                interval = parse_duration(attrs["interval"])
            except ValueError as exc:
                raise ParseError(f"{self._where()}: interval: {exc}; fix or remove it") from None
        self.feeds[key] = replace(feed, enabled=feed.enabled and enabled, interval=interval)

    def _where(self) -> str:
        return f"{self.source}:{self.parser.CurrentLineNumber}"


def _feed_url(url: str, where: str) -> str:
    if url.lower().startswith("feed://"):
        url = "http://" + url[len("feed://") :]  # an old browser convention
    if not url.lower().startswith(("http://", "https://")):
        raise ParseError(f"{where}: xmlUrl {url!r} is not an http(s) URL; fix or remove it")
    return url


def export_opml(feeds: Iterable[OpmlFeed], *, title: str) -> bytes:
    """An OPML 2.0 document listing ``feeds``, tags in each outline's ``category``.

    Commas and slashes separate categories in OPML, so inside a tag they become spaces.
    """
    root = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(root, "head"), "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        outline = ET.SubElement(
            body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
        )
        if feed.tags:
            outline.set("category", ",".join(_CATEGORY_SPLIT.sub(" ", tag) for tag in feed.tags))
        if not feed.enabled:
            outline.set("enabled", "false")
        if feed.interval:
            outline.set("interval", seconds(feed.interval))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def seconds(value: float) -> str:
    """A duration as watcher's config writes it: whole seconds ("2592000s"), no exponent."""
    return f"{value:.0f}s" if value == int(value) else f"{value:f}".rstrip("0") + "s"
