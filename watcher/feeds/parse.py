"""Parsing feed documents (RSS, Atom, RDF, JSON Feed) from bytes into plain-text entries."""

from __future__ import annotations

import calendar
import email.utils
import html
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import lxml.etree
import lxml.html

from watcher.errors import ParseError
from watcher.feeds import fastparse
from watcher.feeds.parsed import ParsedFeed
from watcher.types import Entry

# Far above any real feed (the largest in our corpus is 1.6 MB); the HTTP client caps
# downloads too, this only keeps a direct caller from handing us a runaway document.
MAX_BODY_BYTES = 64 * 1024 * 1024

# The most of one entry's summary or content kept (its markup, then its text): real entries
# stay far below; a 4.5 MB summary would otherwise cost hundreds of MB at every step after.
MAX_ENTRY_MARKUP = 1_000_000
MAX_ENTRY_TEXT = 200_000
# An item's categories/tags kept, and the characters kept of each (rule filters match them).
MAX_CATEGORIES = 50
MAX_CATEGORY_CHARS = 200

# The spec says https, but early JSON Feed 1.0 publishers wrote http.
_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/")
_JSON_TYPES = ("application/feed+json", "application/json")

# The internal DTD subset ends at the first element; entity declarations can only live there.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(%\s*)?([^\s\"']+)\s*(\"[^\"]*\"|'[^']*')?")
_CHAR_REF = re.compile(rb"&#\w+;")
# Real feeds declare a few short entities (&#160;, a tag: prefix); expanding them all
# adds little. Nested references, or more growth than this, is an expansion attack.
_MAX_ENTITY_GROWTH = 1024 * 1024

# Month names feedparser does not know: Spanish, Portuguese, Italian, French, German.
_MONTH_WORDS = (
    "ene enero gen gennaio janv janvier janeiro januar",
    "febrero fev fevereiro febbraio févr février februar",
    "marzo março mars mär märz mrz",
    "abr abril aprile avr avril",
    "mayo mai maio mag maggio",
    "junio junho giu giugno juin juni",
    "julio julho lug luglio juil juillet juli",
    "ago agosto août",
    "sept septiembre setiembre set setembro settembre septembre",
    "octubre out outubro ott ottobre octobre okt oktober",
    "noviembre novembro novembre",
    "dic diciembre dez dezembro dicembre déc décembre dezember",
)
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {
    word: _EN_MONTHS[number] for number, words in enumerate(_MONTH_WORDS) for word in words.split()
}

_UPDATE_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 604800.0,
    "monthly": 2592000.0,
    "yearly": 31536000.0,
}

_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol",
    "p", "pre", "section", "table", "td", "th", "tr", "ul",
)  # fmt: skip
_HTML_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)
_TAG = re.compile(r"<[^>]*>")
_CONTROL_CHARACTERS = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")
_HTML_HINT = re.compile(r"<[A-Za-z/!]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]\w*);")


def parse_feed(
    body: bytes, *, url: str, content_type: str | None = None, fast: bool = True
) -> ParsedFeed:
    """Parse a feed document fetched from ``url``; ParseError if it holds no feed at all.

    Pure and picklable, so it can run in a process pool. Never touches the network.
    ``fast=False`` always parses with feedparser (what the fast path is checked against).
    """
    if not body or body.isspace():
        raise ParseError("empty body")
    if len(body) > MAX_BODY_BYTES:
        raise ParseError(f"not a feed: {len(body)} bytes is over the {MAX_BODY_BYTES} limit")
    if body.startswith(b"\x1f\x8b"):
        raise ParseError("not a feed: gzip data (sent without a Content-Encoding header?)")
    if _is_json(body, content_type):
        return _parse_json_feed(body, url)
    if _starts_like_html(body):
        raise ParseError(_HTML_REASON)
    return _parse_xml_feed(body, url, content_type, fast)


_HTML_REASON = "HTML page, not a feed (`watcher feeds discover` on this url lists its feeds)"


def _head(body: bytes) -> bytes:
    return body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()


def _is_json(body: bytes, content_type: str | None) -> bool:
    head = _head(body)
    if head.startswith(b"{"):
        return True
    mime = (content_type or "").partition(";")[0].strip().lower()
    return mime in _JSON_TYPES and not head.startswith(b"<")


def _starts_like_html(body: bytes) -> bool:
    return _head(body).startswith((b"<!doctype html", b"<html"))


# --- RSS, Atom, RDF (feedparser, or its fast path) ----------------------------------------


def _parse_xml_feed(body: bytes, url: str, content_type: str | None, fast: bool) -> ParsedFeed:
    _reject_entity_bombs(body)
    if body[:1].isspace() and body.lstrip()[:5] == b"<?xml":
        # Whitespace before the declaration is common and forces the slow loose parser.
        body = body.lstrip()
    # The fast path, when it is sure to read what feedparser would; feedparser otherwise.
    result = fastparse.parse(body, content_type) if fast else None
    if result is None:
        result = _run_feedparser(body, url, content_type)
    version: str = result.get("version") or ""
    raw_entries = result.get("entries") or []
    if not version and not raw_entries:
        raise ParseError(_not_a_feed_reason(body, result))
    feed = dict(result["feed"])
    language = _feed_language(feed)
    entries = tuple(_entry(dict(raw), url, language) for raw in raw_entries)
    return ParsedFeed(
        kind=_kind(version, body),
        title=_detail_text(feed, "title", one_line=True),
        link=_absolute_url(feed.get("link"), url),
        language=language,
        entries=entries,
        ttl=_ttl(feed.get("ttl")),
        update_period=_update_period(feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")),
        warning=_with_cut_note(_bozo_reason(result, body) if result.get("bozo") else None, entries),
    )


def _with_cut_note(warning: str | None, entries: tuple[Entry, ...]) -> str | None:
    """The feed's warning, saying so when an entry's text reached the cap (and was cut)."""
    if not any(max(len(e.summary), len(e.content)) >= MAX_ENTRY_TEXT for e in entries):
        return warning
    cut = f"entry text cut to {MAX_ENTRY_TEXT:,} characters"
    return f"{warning}; {cut}" if warning else cut


def _capped(markup: str, kind: str) -> str:
    """Plain text of ``markup`` ("html" or "text") within the caps: the markup is cut
    before conversion (bounded work) and the text after it (bounded memory)."""
    markup = markup[:MAX_ENTRY_MARKUP]
    text = _html_to_text(markup) if kind == "html" else _plain(markup)
    return text[:MAX_ENTRY_TEXT]


def _reject_entity_bombs(body: bytes) -> None:
    """Refuse entity declarations that could expand the document before a parser sees them.

    feedparser drops nested declarations itself, but falls back to its loose parser, which
    expands a literal entity at every reference (100 KB x 10,000 references = 1 GB).
    """
    head = _utf8_head(body)
    first = _FIRST_ELEMENT.search(head)
    growth = 0
    for match in _ENTITY_DECL.finditer(head[: first.start()] if first else head):
        name, literal = match.group(2), match.group(3)
        if literal is None:
            continue  # external (SYSTEM/PUBLIC): never fetched, dropped by feedparser
        value = _CHAR_REF.sub(b"#", literal[1:-1])
        # A reference or markup in a value, or a parameter entity, is how expansion nests.
        if match.group(1) or any(char in value for char in b"&%<"):
            raise ParseError(f"not a feed: {_BOMB_REASON}")
        growth += len(value) * head.count(b"&" + name + b";")
    if growth > _MAX_ENTITY_GROWTH:
        raise ParseError(f"not a feed: {_BOMB_REASON}")


_BOMB_REASON = "its DOCTYPE declares nested or oversized entities (an XML entity-expansion attack?)"


def _utf8_head(body: bytes) -> bytes:
    """The document as ASCII-compatible bytes, so UTF-16/32 cannot hide a DOCTYPE."""
    if b"\x00" not in body[:4] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body
    for encoding in ("utf-32", "utf-16", "utf-32-be", "utf-32-le", "utf-16-be", "utf-16-le"):
        try:
            return body.decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            continue
    return body


def _feedparser() -> Any:
    """feedparser, imported on first use: a worker whose feeds all take the fast path never
    pays for it (in memory as much as in start-up time)."""
    import feedparser  # noqa: PLC0415  (about 5 MB, and the fast path mostly does without)

    return feedparser


def _run_feedparser(body: bytes, url: str, content_type: str | None) -> dict[str, Any]:
    headers = {"content-type": _xml_content_type(content_type)}
    if b"xml:base" in body:
        # feedparser restores the base when an element with xml:base ends only if the
        # outer base is not empty. (xml:base is a template-wide choice, so a feed's GUIDs,
        # which feedparser resolves against the base, keep the same form from poll to poll.)
        headers["content-location"] = url
    # Otherwise no base URL: with one, feedparser joins URLs at every element, a quarter of
    # its time; we resolve the few links we keep ourselves.
    try:
        # Sanitizing and rewriting HTML would be wasted: we keep only its text.
        result = _feedparser().parse(
            body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser is lenient by design; a crash is still "no feed"
        raise ParseError(f"not a feed: the parser failed ({type(exc).__name__}: {exc})") from exc
    # A plain dict: FeedParserDict's lookups are slow and warn when mapping "updated".
    return dict(result)


def _xml_content_type(content_type: str | None) -> str:
    """The header that makes feedparser take the encoding from HTTP, BOM or XML declaration.

    The media type itself is ignored: feeds are served as text/html, text/plain and worse,
    and RFC 3023's "text/xml without charset means us-ascii" misreads most real feeds.
    """
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        charset = value.strip(" \t\"'")
        if name.strip().lower() == "charset" and charset:
            return f"application/xml; charset={charset}"
    return "application/xml"


def _not_a_feed_reason(body: bytes, result: Any) -> str:
    head = _head(body)
    if b"<html" in head or b"<!doctype html" in head:
        return _HTML_REASON
    if result.get("bozo"):
        return f"not a feed: {_bozo_reason(result, body)}"
    return "not a feed: no RSS, Atom, RDF or JSON Feed document found"


def _bozo_reason(result: Any, body: bytes) -> str:
    exc = result.get("bozo_exception")
    get_message = getattr(exc, "getMessage", None)
    get_line = getattr(exc, "getLineNumber", None)
    if get_message is None or get_line is None:
        return str(exc) or type(exc).__name__
    line = get_line()
    # feedparser prepends an XML declaration line when the document has none.
    if isinstance(line, int) and not _head(body).startswith(b"<?xml"):
        line -= 1
    return f"not well-formed XML: {get_message()} at line {line}"


def _kind(version: str, body: bytes) -> str:
    if version in ("rss090", "rss10"):
        return "rdf"
    if version.startswith("atom"):
        return "atom"
    if version:
        return "rss"
    # The loose parser found entries in a document without a recognised root.
    head = body[:4096]
    if b"<feed" in head:
        return "atom"
    return "rdf" if b"<rdf:RDF" in head else "rss"


def _entry(raw: Mapping[str, Any], url: str, feed_language: str) -> Entry:
    summary_raw = raw.get("summary_detail")
    content_raw = _fullest_content(raw.get("content"))
    summary = _detail_value_text(summary_raw)
    if content_raw is None:
        content = ""
    elif summary_raw is not None and content_raw.get("value") == summary_raw.get("value"):
        content = summary  # feedparser copies content to summary when there is none
    else:
        content = _detail_value_text(content_raw)
    return Entry(
        guid=_strip_or_none(raw.get("id")),
        link=_absolute_url(raw.get("link"), url),
        title=_detail_text(raw, "title", one_line=True),
        summary=summary,
        content=content,
        author=_author(raw),
        published=_entry_date(raw, "published"),
        updated=_entry_date(raw, "updated"),
        language=_entry_language(raw, summary_raw, content_raw) or feed_language,
        categories=_categories(t.get("term") or t.get("label") for t in raw.get("tags") or ()),
    )


def _fullest_content(contents: Any) -> Mapping[str, Any] | None:
    if not contents:
        return None
    usable = [c for c in contents if _text_kind(c.get("type")) is not None]
    return max(usable, key=lambda c: len(c.get("value") or ""), default=None)


def _detail_text(container: Mapping[str, Any], key: str, *, one_line: bool = False) -> str:
    detail = container.get(f"{key}_detail")
    text = _detail_value_text(detail) if detail else _plain(container.get(key) or "")
    return " ".join(text.split()) if one_line else text


def _detail_value_text(detail: Mapping[str, Any] | None) -> str:
    if not detail:
        return ""
    kind = _text_kind(detail.get("type"))
    return _capped(detail.get("value") or "", kind) if kind else ""


def _text_kind(mime: Any) -> str | None:
    """Whether content is "html", "text", or None for binary (application/pdf, ...)."""
    mime = (mime or "text/plain").lower()
    if "html" in mime or mime.endswith("xml"):
        return "html"
    return "text" if mime.startswith("text/") else None


def _author(raw: Mapping[str, Any]) -> str:
    detail = raw.get("author_detail") or {}
    name = detail.get("name") or raw.get("author") or ""
    return " ".join(_text(name).split())


def _entry_language(raw: Mapping[str, Any], *details: Mapping[str, Any] | None) -> str:
    for candidate in (raw.get("language"), raw.get("title_detail"), *details):
        code = candidate.get("language") if isinstance(candidate, Mapping) else candidate
        if language := _language(code):
            return language
    return ""


def _feed_language(feed: Mapping[str, Any]) -> str:
    return _language(feed.get("language")) or _language(
        (feed.get("title_detail") or {}).get("language")
    )


def _ttl(value: Any) -> float | None:
    minutes = _positive_float(value)
    return minutes * 60 if minutes is not None else None


def _update_period(period: Any, frequency: Any) -> float | None:
    if not isinstance(period, str) or period.strip().lower() not in _UPDATE_PERIODS:
        return None
    times = _positive_float(frequency) if frequency is not None else 1.0
    return _UPDATE_PERIODS[period.strip().lower()] / (times or 1.0)


def _positive_float(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < float("inf") else None


def _entry_date(raw: Mapping[str, Any], key: str) -> datetime | None:
    parsed = _struct_to_datetime(raw.get(f"{key}_parsed"))
    text = raw.get(key)
    if parsed is None and isinstance(text, str) and text.strip():
        return _lenient_date(text)
    return parsed


def _lenient_date(text: str) -> datetime | None:
    """A date feedparser gave up on, e.g. "mié, 16 nov 2022 00:38:15 +0100" (Spanish)."""
    words = [_MONTHS.get(word.lower().rstrip("."), word) for word in text.replace(",", " ").split()]
    if words and words[0].isalpha() and words[0][:3].title() not in _EN_MONTHS:
        words = words[1:]  # a weekday, in whatever language
    rewritten = " ".join(word for word in words if word.lower() not in ("de", "del"))
    try:
        parsed = email.utils.parsedate_to_datetime(rewritten)
    except (TypeError, ValueError, IndexError):
        return _struct_to_datetime(_feedparser().datetimes._parse_date(rewritten))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _struct_to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# --- JSON Feed -----------------------------------------------------------------------------


def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    document = _load_json(body)
    items = document.get("items", [])
    warning = None
    if not isinstance(items, list):
        items, warning = [], 'JSON Feed "items" is not a list'
    language = _language(document.get("language"))
    entries = tuple(_json_entry(item, url, language) for item in items if isinstance(item, dict))
    if len(entries) < len(items):
        warning = f"skipped {len(items) - len(entries)} JSON Feed items that are not objects"
    return ParsedFeed(
        kind="json",
        title=" ".join(_text(_json_str(document, "title")).split()),
        link=_json_url(document, "home_page_url", url),
        language=language,
        entries=entries,
        ttl=None,
        update_period=None,
        warning=_with_cut_note(warning, entries),
    )


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        document = _json_loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"not a feed: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ParseError("not a feed: JSON nested too deeply") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(version, str):
        raise ParseError(_NO_JSON_FEED_VERSION)
    if not _JSON_FEED_VERSION.match(version):
        raise ParseError(_NO_JSON_FEED_VERSION)
    return document


_NO_JSON_FEED_VERSION = (
    'not a feed: JSON without a "version" starting with https://jsonfeed.org/version/'
)


def _json_loads(body: bytes) -> Any:
    # strict=False accepts raw control characters in strings, which some publishers emit.
    try:
        return json.loads(body, strict=False)
    except UnicodeDecodeError:  # JSON must be UTF-8; keep what is readable
        return json.loads(body.decode("utf-8", "replace"), strict=False)


def _json_entry(item: dict[str, Any], url: str, feed_language: str) -> Entry:
    guid = item.get("id")
    content_html, content_text = _json_str(item, "content_html"), _json_str(item, "content_text")
    return Entry(
        guid=_strip_or_none(str(guid) if isinstance(guid, int | float | str) else None),
        link=_json_url(item, "url", url) or _json_url(item, "external_url", url),
        title=" ".join(_text(_json_str(item, "title")).split()),
        summary=_text(_json_str(item, "summary")[:MAX_ENTRY_MARKUP])[:MAX_ENTRY_TEXT],
        content=_capped(content_html, "html") if content_html else _capped(content_text, "text"),
        author=_json_author(item),
        published=_iso_datetime(item.get("date_published")),
        updated=_iso_datetime(item.get("date_modified")),
        language=_language(item.get("language")) or feed_language,
        categories=_categories(_json_list(item.get("tags"))),
    )


def _json_str(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _json_url(mapping: Mapping[str, Any], key: str, base: str) -> str | None:
    value = _json_str(mapping, key).strip()
    return _absolute_url(value, base)


def _json_author(item: Mapping[str, Any]) -> str:
    authors = item.get("authors")  # JSON Feed 1.1
    if not isinstance(authors, list):
        authors = [item.get("author")]  # JSON Feed 1.0
    names = [_json_str(a, "name").strip() for a in authors if isinstance(a, dict)]
    return ", ".join(name for name in names if name)


def _json_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _categories(names: Iterable[Any]) -> tuple[str, ...]:
    """Plain-text categories, first spelling of each kept (case-insensitively), capped."""
    found: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            continue
        # Cut before converting too, so a giant tag costs no more than a short one.
        text = " ".join(_text(name[: 4 * MAX_CATEGORY_CHARS]).split())[:MAX_CATEGORY_CHARS]
        if text and text.casefold() not in found:
            found[text.casefold()] = text
            if len(found) == MAX_CATEGORIES:
                break
    return tuple(found.values())


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        # Not RFC 3339; feedparser's date parsers know the formats publishers use instead.
        return _struct_to_datetime(_feedparser().datetimes._parse_date(value))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- text ----------------------------------------------------------------------------------


def _html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: no tags, scripts or styles; one line per block."""
    if "<" not in markup and "&" not in markup:
        return _plain(markup)
    try:
        return _markup_text(markup)
    except ValueError:  # control characters, which lxml will not set back into a tree
        pass
    except lxml.etree.ParserError:  # nothing but comments and whitespace
        return ""
    except (AssertionError, IndexError):  # lxml.html on a "document" without a body: "<html>"
        return _plain(html.unescape(_TAG.sub(" ", markup)))
    try:
        return _markup_text(markup.translate(_CONTROL_CHARACTERS))
    except (ValueError, lxml.etree.ParserError):  # e.g. an XML encoding declaration
        return _plain(html.unescape(_TAG.sub(" ", markup)))


def _markup_text(markup: str) -> str:
    root = lxml.html.fragment_fromstring(markup, create_parent="div", parser=_HTML_PARSER)
    lxml.etree.strip_elements(root, "script", "style", "template", with_tail=False)
    for element in root.iter(_BLOCK_TAGS):
        element.tail = "\n" + element.tail if element.tail else "\n"
    text: str = lxml.etree.tostring(root, method="text", encoding="unicode")
    return _plain(text)


def _text(value: str) -> str:
    """Plain text of a field that should be plain but may carry markup or entities."""
    return _html_to_text(value) if _HTML_HINT.search(value) else _plain(value)


def _plain(text: str) -> str:
    """Whitespace collapsed within lines, blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _language(code: Any) -> str:
    """ISO 639-1 code from a language tag ("es-VE" -> "es"); "" when it is not one."""
    if not isinstance(code, str):
        return ""
    primary = code.strip().replace("_", "-").partition("-")[0].lower()
    return primary if len(primary) == 2 and primary.isascii() and primary.isalpha() else ""


def _strip_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _absolute_url(value: Any, base: str) -> str | None:
    """``value`` resolved against ``base``, if it is then an http(s) URL."""
    link = _strip_or_none(value)
    if link is None:
        return None
    if link.startswith(("https://", "http://")):
        return link  # the usual case, and urljoin is slow
    try:
        absolute = urljoin(base, link)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return absolute if absolute[:8].lower().startswith(("http://", "https://")) else None
