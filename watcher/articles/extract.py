"""Main text and metadata from article pages (trafilatura), and the choice of an article's text."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import json
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import trafilatura
from htmldate import find_date
from lxml.etree import ElementDefaultClassLookup, HTMLParser
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from lxml.html import fromstring as html_fromstring
from trafilatura.metadata import examine_meta, extract_meta_json, extract_sitename, extract_title
from trafilatura.settings import Document
from trafilatura.utils import decode_file, is_dubious_html, repair_faulty_html

from watcher.errors import ParseError
from watcher.types import Article, ArticleSource


@dataclass(frozen=True)
class Extracted:
    """What a page yields: its main text (possibly empty) and metadata ("" when unknown)."""

    title: str
    text: str
    author: str
    date: datetime | None
    site_name: str
    language: str  # ISO 639-1 code, or ""
    capped: str = ""  # how the page was cut before extraction (see cap_page), or ""


# Chosen by measuring on ../shared/corpus/articles (scrapinghub and newspaper ground truth,
# tests/test_articles_extract.py): without comments the text is cleaner and extraction is
# faster; favor_recall skips the readability/justext comparison once the main extractor has
# found a long text (most news pages), which is ~1.5x faster and agrees better with the
# ground truth (mean token F1 0.959 and 0.802, against 0.948 and 0.780 for trafilatura's
# defaults); favor_precision and fast lose recall on some sites. Tables stay in (some
# articles are tables). No deduplicate: its cache is per process and order-dependent, so
# the same page would extract differently in different workers.
_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "favor_recall": True,
    "include_tables": True,
    "deduplicate": False,
}

# Dates come from the feed first; the page's date is a fallback, so the cheap search
# (meta tags, JSON-LD, URL) is enough and the slow scan of the body text is skipped.
_DATE_OPTIONS: dict[str, Any] = {"original_date": True, "extensive_search": False}

# Extraction time grows faster than the page: 4.9 MB of <div> soup took 25 s of CPU, 1 MB
# took 3 s. Real news pages are smaller once scripts and styles are gone (the corpus's
# largest is 1.6 MB, mostly scripts), so a longer page loses those first, then its tail.
MAX_PAGE_CHARS = 1_000_000
# The Article.extra key recording that its page was cut (cap_page's note).
PAGE_CAP = "page_cap"
_BULK_TAGS = re.compile(r"<(script|style|svg|noscript|template)\b", re.IGNORECASE)


def extract_page(html: bytes | str, *, url: str, date: bool = True) -> Extracted | None:
    """The main text and metadata of an HTML page; None when it is not HTML or holds nothing.

    ``date=False`` skips the search for the page's date (Extracted.date is None): the
    caller has the feed's, which wins anyway, and the search costs 5 % of an extraction.
    Raises only ParseError. Runs in worker processes: pure and picklable.
    """
    try:
        page, capped = cap_page(decode_html(html) if isinstance(html, bytes) else html)
        extracted = _extract(page, url, date=date)
    except Exception as exc:  # trafilatura/lxml can fail in many ways on hostile pages
        where = url or "page"
        raise ParseError(f"{where}: cannot extract the page: {type(exc).__name__}: {exc}") from exc
    if extracted is not None and capped:
        return dataclasses.replace(extracted, capped=capped)
    return extracted


def cap_page(html: str, limit: int = MAX_PAGE_CHARS) -> tuple[str, str]:
    """``html`` short enough for extraction in bounded time, and a note saying how it was
    cut ("" when it was not): scripts, styles and SVG go first, then the tail."""
    if len(html) <= limit:
        return html, ""
    lean = _without_bulk(html)
    if len(lean) <= limit:
        return lean, ""
    return lean[:limit], (
        f"page cut to its first {limit:,} characters for extraction "
        f"({len(lean):,} without scripts and styles)"
    )


def _without_bulk(html: str) -> str:
    """``html`` without script, style, svg, noscript and template elements; linear time (an
    element never closed keeps the rest of the page, it is not searched for again)."""
    kept: list[str] = []
    at = 0
    while (opening := _BULK_TAGS.search(html, at)) is not None:
        closing = _CLOSING[opening[1].lower()].search(html, opening.end())
        if closing is None:
            break
        kept.append(html[at : opening.start()])
        at = closing.end()
    kept.append(html[at:])
    return "".join(kept)


_CLOSING = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "svg", "noscript", "template")
}


def _extract(html: str, url: str, *, date: bool) -> Extracted | None:
    tree = _load_html(html)
    return None if tree is None else _extract_tree(tree, url, date=date)


def _extract_tree(tree: HtmlElement, url: str, *, date: bool) -> Extracted | None:
    """What a parsed page yields; None when it has neither main text nor a title."""
    # Metadata is read before extraction, which prunes the tree (bare_extraction copies it).
    title, author, site_name = _page_metadata(tree)
    language, published = _page_language(tree), _page_date(tree, url) if date else None
    document = trafilatura.bare_extraction(tree, url=url or None, **_OPTIONS)
    text = (document.text or "").strip() if isinstance(document, Document) else ""
    if not (text or title):
        return None
    return Extracted(title, text, author, published, site_name, language)


# trafilatura's parser settings (trafilatura.utils.HTML_PARSER) with one change: every element
# is an HtmlElement, looked up in C. lxml.html's default lookup calls back into Python for
# each element proxy (to give forms and inputs their own classes, which trafilatura never
# uses): 2-3.5 % of an extraction (200 corpus and on-topic pages, alternating runs), with the
# same trees, text and metadata (tests/test_articles_extract.py holds the parsers equal).
_PARSER = HTMLParser(
    collect_ids=False,
    default_doctype=False,
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
)
_PARSER.set_element_class_lookup(
    ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)


def _load_html(html: str) -> HtmlElement | None:
    """The page's tree as trafilatura.utils.load_html parses a str, with ``_PARSER``; None
    when it is not HTML."""
    beginning = html[:50].lower()
    html = repair_faulty_html(html, beginning)
    tree = _parse(html)
    if tree is None or len(tree) < 1:
        tree = _parse(html.encode("utf8", "surrogatepass"))
    if tree is None or (is_dubious_html(beginning) and len(tree) < 2):
        return None
    return tree


def _parse(html: str | bytes) -> HtmlElement | None:
    """The tree of ``html``, or None where lxml refuses it."""
    # As trafilatura does: lxml refuses some pages as str ("Unicode strings with encoding
    # declaration"), others as bytes, some both ways ("Document is empty").
    try:
        return html_fromstring(html, parser=_PARSER)
    except Exception:
        return None


def _page_metadata(tree: HtmlElement) -> tuple[str, str, str]:
    """Title, author and site name, as trafilatura finds them, minus its slowest searches.

    trafilatura's own extract_metadata also searches the body for bylines, categories,
    tags and licences: a third of the extraction time, for fields watcher does not need
    or gets from meta tags and JSON-LD well enough.
    """
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None  # a user name rather than a person, as trafilatura judges
    with contextlib.suppress(Exception):  # as trafilatura does: JSON-LD is often malformed
        meta = extract_meta_json(tree, meta)
    title = meta.title or extract_title(tree) or ""
    site_name = (meta.sitename or extract_sitename(tree) or "").lstrip("@")
    return _clean(title), _clean(meta.author or ""), _clean(site_name)


def _page_date(tree: HtmlElement, url: str) -> datetime | None:
    with warnings.catch_warnings():  # dateutil warns about every "EST" it cannot place
        warnings.simplefilter("ignore")
        found = find_date(tree, url=url or None, **_DATE_OPTIONS)
    if not found:
        return None
    try:
        day = date.fromisoformat(found)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


_LANG_META = ("content-language", "og:locale", "language", "dc.language")
_LANG_CODE = re.compile(r"\s*([a-zA-Z]{2})(?:[-_][a-zA-Z0-9]+)*\s*$")


def _page_language(tree: HtmlElement) -> str:
    """The page's declared language: <html lang>, else a language meta tag; "" if none."""
    declared = [tree.get("lang"), tree.get("xml:lang")]
    # The parser puts the one <head> first under <html>; ".//head" would walk the whole tree.
    head = tree.find("head")
    for element in () if head is None else head.iterfind("meta[@content]"):
        key = element.get("http-equiv") or element.get("property") or element.get("name") or ""
        if key.lower() in _LANG_META:
            declared.append(element.get("content"))
    for value in declared:
        code = language_code(value or "")
        if code:
            return code
    return ""


def language_code(value: str) -> str:
    """The ISO 639-1 code in a language tag ("es-VE" -> "es", "en_US" -> "en"), or ""."""
    match = _LANG_CODE.match(value.split(",", maxsplit=1)[0])
    return match[1].lower() if match else ""


def _clean(value: str) -> str:
    return " ".join(value.split())


# --- decoding ---------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE)
# The HTML standard's prescan reads 1024 bytes; real pages put megabytes of script first.
_PRESCAN_BYTES = 32_768
# What browsers do (WHATWG Encoding): these labels all mean windows-1252.
_WINDOWS_1252 = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii"})


def decode_html(data: bytes, declared: str = "") -> str:
    """An HTML document's text, never raising: by its BOM; else as UTF-8 if it is valid
    UTF-8; else by the ``declared`` charset (the HTTP header's), else by its <meta> charset;
    else by detection.

    Valid UTF-8 wins over a declared legacy charset because legacy text is almost never
    valid UTF-8 by chance, while pages re-encoded to UTF-8 that keep an old "iso-8859-1"
    declaration are common (trafilatura also tries UTF-8 first).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    labels = [codec_name(label) for label in (declared, _meta_charset(data))]
    for codec in ("utf-8", *labels):
        text = _decode_strictly(data, codec)
        if text is not None:
            return text
    if "utf-8" in labels:  # declared UTF-8 with a few broken bytes: still UTF-8
        return data.decode("utf-8", errors="replace")
    return decode_file(data)


def _meta_charset(data: bytes) -> str:
    match = _META_CHARSET.search(data, 0, _PRESCAN_BYTES)
    return match[1].decode("ascii") if match else ""


def _decode_strictly(data: bytes, codec: str) -> str | None:
    if not codec:
        return None
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):  # LookupError: "rot13" and other non-text codecs
        return None


def codec_name(label: str) -> str:
    """Python's codec for a charset label ("latin1" means windows-1252, as in browsers);
    "" when the label is unknown or implausible."""
    label = label.strip().lower()
    if label in _WINDOWS_1252:
        label = "windows-1252"
    try:
        name = codecs.lookup(label).name if label else ""
    except LookupError:
        return ""
    # A document that declares UTF-16 in readable ASCII is not UTF-16 (HTML standard).
    return "utf-8" if name.startswith(("utf-16", "utf-32")) else name


# --- choosing the article's text --------------------------------------------------------


def build_article(
    *,
    url: str,
    extracted: Extracted | None,
    feed_title: str,
    feed_content: str,
    feed_summary: str,
    published: datetime | None,
    feed_name: str,
    feed_tags: tuple[str, ...],
    language_hint: str,
    min_text_chars: int,
    fetch_error: str = "",
    categories: tuple[str, ...] = (),
    feed_author: str = "",
) -> Article:
    """The Article for a feed entry: the page's text when it is usable, else the feed's.

    ``fetch_error`` is fetch_article's reason when the page could not be had; it becomes
    the fallback reason verbatim. ``categories`` and ``feed_author`` are the feed item's;
    the page's author wins over the item's when the page names one.
    """
    page = extracted or Extracted("", "", "", None, "", "")
    reason = fetch_error or _page_problem(page.text, min_text_chars)
    source, text = _choose_text(page.text, feed_content, feed_summary, failed=bool(reason))
    return Article(
        url=url,
        title=_choose_title(source, page.title, _clean(feed_title)),
        text=text,
        source=source,
        language=page.language or language_code(language_hint),
        published=published or page.date,
        author=page.author or feed_author,
        site_name=page.site_name,
        feed_name=feed_name,
        feed_tags=feed_tags,
        categories=categories,
        fallback_reason=reason if source is not ArticleSource.PAGE else "",
        extra={PAGE_CAP: page.capped} if page.capped and source is ArticleSource.PAGE else {},
    )


def _page_problem(text: str, min_text_chars: int) -> str:
    if not text:
        return "extraction found no main text"
    if len(text) < min_text_chars:
        return f"page text too short ({len(text)} chars)"
    return ""


def _choose_text(
    page_text: str, feed_content: str, feed_summary: str, *, failed: bool
) -> tuple[ArticleSource, str]:
    """Page, then feed content, then summary; a short page text beats no text at all."""
    if not failed:
        return ArticleSource.PAGE, page_text
    if feed_content.strip():
        return ArticleSource.FEED_CONTENT, feed_content.strip()
    if feed_summary.strip() or not page_text:
        return ArticleSource.FEED_SUMMARY, feed_summary.strip()
    return ArticleSource.PAGE, page_text


def _choose_title(source: ArticleSource, page_title: str, feed_title: str) -> str:
    # A page whose text was unusable (consent wall, paywall) often has a junk title too.
    if source is ArticleSource.PAGE:
        return page_title or feed_title
    return feed_title or page_title


# --- local files, for `watcher explain FILE` --------------------------------------------

_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
JSON_LINES = ".jsonl"  # one article a line: see article_lines
NOTE = "note"  # Article.extra: what the input lacks, for explain


def article_from_file(path: Path) -> Article:
    """An Article from an HTML page, a JSON object (``.json``: see article_from_json), or
    plain UTF-8 text whose first line is the title.

    Raises ParseError naming the file when it is missing, unreadable or not text.
    """
    data = _read(path)
    suffix = path.suffix.lower()
    if suffix in _HTML_SUFFIXES:
        return _article_from_html(path, data)
    if suffix == JSON_LINES:
        raise ParseError(f"{path}: holds many articles, one a line: read it with article_lines")
    if suffix == ".json":
        text, url = _decode(path, data), path.resolve().as_uri()
        return article_from_json(text, where=str(path), url=url)[1]
    return _article_from_text(path, data)


def article_lines(path: Path) -> list[tuple[int, bytes]]:
    """The lines of a JSON lines file that hold something, numbered from 1, for
    article_from_line; ParseError naming the file when it is missing, unreadable or empty. Split
    on "\n" only: JSON writers leave U+2028 and U+0085 unescaped inside a record's text."""
    data = _read(path).removeprefix(codecs.BOM_UTF8)
    lines = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    if not lines:
        raise ParseError(f"{path}: the file is empty; give one JSON article a line")
    return lines


def article_from_line(path: Path, number: int, line: bytes) -> tuple[str, Article]:
    """Line ``number`` of a JSON lines file (see article_lines) as an article, with the
    source a report names: FILE#ID, or FILE:LINE for a record without an id. ParseError
    names FILE:LINE, so the other lines can still be read."""
    where = f"{path}:{number}"
    text = _line_text(line, where)
    record_id, article = article_from_json(text, where=where, url=path.resolve().as_uri())
    return (f"{path}#{record_id}" if record_id else where), article


def _line_text(line: bytes, where: str) -> str:
    """A line as text; ParseError naming ``where`` and the column when it is not UTF-8."""
    try:
        return line.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(line[: exc.start].decode("utf-8", "replace")) + 1
        raise ParseError(
            f"{where}:{column}: not UTF-8 (byte 0x{line[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ParseError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ParseError(f"{path}: is a directory, not an article file") from None
    except OSError as exc:
        raise ParseError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise ParseError(
            f"{path}: not a text file (binary or not UTF-8); give an .html page or UTF-8 text"
        )
    return text


def _article_from_html(path: Path, data: bytes) -> Article:
    url = path.resolve().as_uri()
    extracted = extract_page(data, url=url)
    if extracted is None or not extracted.text:
        raise ParseError(f"{path}: no article text found in this HTML page")
    return Article(
        url=url,
        title=extracted.title or path.stem,
        text=extracted.text,
        source=ArticleSource.FILE,
        language=extracted.language,
        published=extracted.date,
        author=extracted.author,
        site_name=extracted.site_name,
        extra={PAGE_CAP: extracted.capped} if extracted.capped else {},
    )


def _article_from_text(path: Path, data: bytes) -> Article:
    text = _decode(path, data)
    if not text.strip():
        raise ParseError(f"{path}: the file is empty; its first line should be the title")
    return article_from_text(text, url=path.resolve().as_uri())


def article_from_text(
    text: str, *, url: str = "", source: ArticleSource = ArticleSource.FILE
) -> Article:
    """Plain text as an article: the first line is the title, the rest the body (a text file
    given to `watcher explain`, or text pasted into the web tester: ``source`` says which)."""
    title, _, body = text.strip().partition("\n")
    what = "file" if source is ArticleSource.FILE else "text"
    note = {} if body.strip() else {NOTE: f"the {what} has a title line and no text"}
    return Article(url=url, title=_clean(title), text=body.strip(), source=source, extra=note)


_RECORD_KEYS = ("title", "text", "url", "lang")
_JSON_KINDS = {
    "list": "array", "dict": "object", "str": "string", "int": "number", "float": "number",
    "bool": "true/false",
}  # fmt: skip


def article_from_json(text: str, *, where: str, url: str = "") -> tuple[str, Article]:
    """One JSON object ``{"id", "title", "text", "url", "lang"}`` (a ``.json`` file, a line of
    a ``.jsonl`` one) as an article, with its id ("" without one); ``url`` when it has none.

    Raises ParseError naming ``where`` (the file, or file:line) when it is not an object with
    a title or a text.
    """
    record = _json_object(text, where)
    fields = {key: _record_text(record, key, where) for key in _RECORD_KEYS}
    title, body = _clean(fields["title"]), fields["text"].strip()
    if not (title or body):
        raise ParseError(f'{where}: the JSON object has no "title" or "text"')
    article = Article(
        url=fields["url"].strip() or url,
        title=title,
        text=body,
        source=ArticleSource.FILE,
        language=language_code(fields["lang"]),
        extra={} if body else {NOTE: "the record has a title and no text"},
    )
    record_id = record.get("id")
    return ("" if record_id is None else str(record_id)), article


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno}, column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        hint = "; one article a line is a .jsonl file" if exc.msg == "Extra data" else ""
        raise ParseError(f"{where}: not valid JSON: {exc.msg} ({at}){hint}") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, 100,000 brackets
        raise ParseError(f"{where}: cannot read this JSON: {type(exc).__name__}") from None
    if not isinstance(record, dict):
        kind = _JSON_KINDS.get(type(record).__name__, "value")
        raise ParseError(
            f'{where}: a JSON {kind} is no article: give an object with a "title" or a "text"'
        )
    return record


def _record_text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        kind = _JSON_KINDS.get(type(value).__name__, "value")
        raise ParseError(f'{where}: "{key}" is a JSON {kind}, not a string')
    return value or ""
