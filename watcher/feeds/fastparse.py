"""The fast path for well-formed RSS 2.0, RSS 1.0 and Atom 1.0: lxml into what feedparser yields.

feedparser (a SAX parser driving a large state machine) is most of the CPU time of a poll.
For the common well-formed document this module reads the same fields with lxml and returns
them shaped like feedparser's result (only the keys watcher/feeds/parse.py reads), so the
conversion to ``Entry`` values is the same code either way. It returns None, and feedparser
parses the document, whenever it is not sure to agree with feedparser: not well-formed XML,
another encoding than UTF-8, a DOCTYPE, xml:base, an element feedparser gives a meaning it does
not model (Atom xhtml content, a second title or summary, a text input...), a date in another
format. tests/test_feeds_fastparse.py checks on every corpus feed that it declines or agrees.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import lxml.etree

# Hardened: no DTD, no entity expansion, no network, no huge documents.
_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, collect_ids=False
)
_ATOM = "http://www.w3.org/2005/Atom"
_ATOM_FEED = f"{{{_ATOM}}}feed"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_ABOUT = f"{{{_RDF}}}about"

# feedparser's namespace table (lower-cased URI -> its prefix; "" is a core vocabulary).
_CORE = (
    "", "http://backend.userland.com/rss", "http://blogs.law.harvard.edu/tech/rss",
    "http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/",
    "http://example.com/newformat#", "http://example.com/necho", "http://purl.org/echo/",
    "uri/of/echo/namespace#", "http://purl.org/pie/", "http://purl.org/atom/ns#",
    "http://www.w3.org/2005/atom", "http://purl.org/rss/1.0/modules/rss091#",
)  # fmt: skip
_PREFIXED = {
    "admin": "http://webns.net/mvcb/",
    "ag": "http://purl.org/rss/1.0/modules/aggregation/",
    "annotate": "http://purl.org/rss/1.0/modules/annotate/",
    "audio": "http://media.tangent.org/rss/1.0/",
    "blogChannel": "http://backend.userland.com/blogChannelModule",
    "cc": "http://creativecommons.org/ns#license http://web.resource.org/cc/",
    "creativeCommons": "http://cyber.law.harvard.edu/rss/creativeCommonsRssModule.html "
    "http://backend.userland.com/creativeCommonsRssModule",
    "co": "http://purl.org/rss/1.0/modules/company",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "cp": "http://my.theinfo.org/changed/1.0/rss/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "email": "http://purl.org/rss/1.0/modules/email/",
    "ev": "http://purl.org/rss/1.0/modules/event/",
    "feedburner": "http://rssnamespace.org/feedburner/ext/1.0",
    "fm": "http://freshmeat.net/rss/fm/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "geo": "http://www.w3.org/2003/01/geo/wgs84_pos#",
    "georss": "http://www.georss.org/georss",
    "gml": "http://www.opengis.net/gml",
    "icbm": "http://postneo.com/icbm/",
    "image": "http://purl.org/rss/1.0/modules/image/",
    "itunes": "http://www.itunes.com/DTDs/PodCast-1.0.dtd http://example.com/DTDs/PodCast-1.0.dtd",
    "l": "http://purl.org/rss/1.0/modules/link/",
    "media": "http://search.yahoo.com/mrss http://search.yahoo.com/mrss/",
    "pingback": "http://madskills.com/public/xml/rss/module/pingback/",
    "prism": "http://prismstandard.org/namespaces/1.2/basic/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "ref": "http://purl.org/rss/1.0/modules/reference/",
    "reqv": "http://purl.org/rss/1.0/modules/richequiv/",
    "search": "http://purl.org/rss/1.0/modules/search/",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
    "soap": "http://schemas.xmlsoap.org/soap/envelope/",
    "ss": "http://purl.org/rss/1.0/modules/servicestatus/",
    "str": "http://hacks.benhammersley.com/rss/streaming/",
    "sub": "http://purl.org/rss/1.0/modules/subscription/",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "szf": "http://schemas.pocketsoap.com/rss/myDescModule/",
    "taxo": "http://purl.org/rss/1.0/modules/taxonomy/",
    "thr": "http://purl.org/rss/1.0/modules/threading/",
    "ti": "http://purl.org/rss/1.0/modules/textinput/",
    "trackback": "http://madskills.com/public/xml/rss/module/trackback/",
    "wfw": "http://wellformedweb.org/commentAPI/",
    "wiki": "http://purl.org/rss/1.0/modules/wiki/",
    "xhtml": "http://www.w3.org/1999/xhtml",
    "xlink": "http://www.w3.org/1999/xlink",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "psc": "http://podlove.org/simple-chapters",
}
NAMESPACES: dict[str, str] = {uri.lower(): "" for uri in _CORE} | {
    uri.lower(): prefix for prefix, uris in _PREFIXED.items() for uri in uris.split()
}
# Every element feedparser has a handler for (its _start_/_end_ methods, with the
# namespace prefix): any of these this module does not model makes it decline.
HANDLED = frozenset(
    """abstract author body category cc_license channel cloud content content_encoded contributor
    copyright created creativeCommons_license creativecommons_license dc_author dc_contributor
    dc_creator dc_date dc_description dc_language dc_publisher dc_rights dc_subject dc_title
    dcterms_created dcterms_issued dcterms_modified dcterms_valid description email enclosure entry
    expirationdate feed feedburner_browserfriendly fullitem generator geom georss_box georss_line
    georss_point georss_polygon georss_where georssgeom gml_exterior gml_linearring gml_linestring
    gml_point gml_polygon gml_pos gml_poslist guid height homepage id image info issued item
    itunes_author itunes_block itunes_category itunes_email itunes_explicit itunes_image
    itunes_keywords itunes_link itunes_name itunes_owner itunes_subtitle itunes_summary keywords
    language lastbuilddate link managingeditor media_category media_content media_credit
    media_description media_group media_keywords media_license media_player media_rating
    media_restriction media_thumbnail media_title modified name newlocation psc_chapter
    psc_chapters pubdate published rights rss source subtitle summary tagline tags textInput
    textinput title updated uri url webmaster where width xhtml_body""".split()  # noqa: SIM905
)
# Handled elements that leave every field watcher reads alone, when they have no children.
_INERT = frozenset(
    """cloud copyright rights generator enclosure subtitle tagline info webmaster expirationdate
    created dcterms_created dcterms_valid dc_publisher dc_rights dc_contributor contributor
    feedburner_browserfriendly itunes_block itunes_explicit itunes_image itunes_link
    itunes_subtitle media_credit media_license media_player media_rating media_restriction
    media_thumbnail cc_license creativecommons_license creativeCommons_license""".split()  # noqa: SIM905
)
# ...and those that only touch feed-level fields watcher does not read.
_FEED_INERT = _INERT | frozenset(
    """description lastbuilddate pubdate published updated modified issued dc_date
    dcterms_modified dcterms_issued managingeditor author dc_creator dc_author itunes_author
    category dc_subject keywords itunes_keywords itunes_summary summary""".split()  # noqa: SIM905
)
_IMAGE_CHILDREN = frozenset(("title", "url", "link", "width", "height", "description"))
_RESERVED_PREFIXES = frozenset(prefix.lower() for prefix in _PREFIXED)
# Keys of feedparser's entry and feed dicts that watcher reads; no unknown element may land there.
_READ_KEYS = frozenset(
    """id link title summary content author published updated language tags ttl
    sy_updateperiod sy_updatefrequency""".split()  # noqa: SIM905
)
# Prefixes of handled or read names: an unknown namespace declared with one would be read
# as that vocabulary (feedparser names elements of an unknown namespace by its prefix).
_HANDLER_PREFIXES = frozenset(name.split("_")[0] for name in HANDLED | _READ_KEYS if "_" in name)

_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_ENTITY_LIKE = re.compile(r"&([A-Za-z0-9_]+);")
# What makes feedparser guess that a plain-text field is HTML (its looks_like_html).
_MAYBE_HTML = re.compile(r"</\w+>|&#?\w+;")
_CP1252 = {
    c: bytes([c]).decode("cp1252") for c in range(128, 160) if c not in (129, 141, 143, 144, 157)
}
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8 = (b"utf-8", b"utf8")
_RSS1 = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
# feedparser's e-mail pattern for "name (email)" authors.
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)

_MONTHS = {m: n for n, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}  # noqa: SIM905
_ZONES = {"gmt": 0, "ut": 0, "utc": 0, "z": 0, "edt": -4, "est": -5, "cdt": -5, "cst": -6,
          "mdt": -6, "mst": -7, "pdt": -7, "pst": -8}  # fmt: skip
# The date formats where feedparser's first matching date handler is sure to read the same.
_RFC822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun), )?(\d{1,2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2})"
    r"(?::(\d{2}))? ([+-]\d{4}|[a-z]{1,3})",
    re.ASCII,
)
_W3CDTF = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})t(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(z|[+-]\d{2}:\d{2})", re.ASCII
)


class _Decline(Exception):
    """The document needs feedparser."""


def parse(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """feedparser's result for ``body`` (version, feed, entries, bozo), or None if unsure."""
    if not _plain_utf8(body, content_type):
        return None
    try:
        root = lxml.etree.fromstring(body, _PARSER)
        if root.getroottree().docinfo.doctype:
            raise _Decline  # a DOCTYPE past the first 4 KB: its entities are feedparser's
        reader = _READERS.get(root.tag)
        if reader is None:
            raise _Decline  # RSS 1.0, Atom 0.3, anything else
        return reader(root, _Names(_bindings(root, body)))
    except (lxml.etree.XMLSyntaxError, _Decline):
        return None


def _bindings(root: Any, body: bytes) -> set[tuple[str | None, str]]:
    """Every (prefix, namespace) the document declares; it must bind each prefix once, for
    feedparser keeps the first meaning of a prefix for the rest of the document."""
    if body.count(b"xmlns") == len(root.nsmap):
        return set(root.nsmap.items())  # only the root declares any
    bindings = {(prefix, uri) for element in root.iter() for prefix, uri in element.nsmap.items()}
    if len({prefix for prefix, _ in bindings}) != len(bindings):
        raise _Decline
    return bindings


def _plain_utf8(body: bytes, content_type: str | None) -> bool:
    """UTF-8 with no DOCTYPE (so no entities) and no xml:base, the case both parsers share."""
    if _charset(content_type) not in ("", "utf-8", "utf8"):
        return False
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    if not head.startswith((b"<?xml", b"<")) or b"\x00" in head[:4]:
        return False
    if head.startswith(b"<?xml"):
        declaration = head[: head.find(b"?>")]
        declared = _ENCODING.search(declaration)
        if b"1.0" not in declaration or (declared and declared.group(1).lower() not in _UTF8):
            return False  # feedparser re-declares every document as XML 1.0 in UTF-8
    return b"<!DOCTYPE" not in head[:4096] and b"xml:base" not in head


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip(" \t\"'").lower()
    return ""


class _Names:
    """feedparser's name for an element: its namespace's prefix, "_", its local name.

    A known namespace has feedparser's own prefix ("" for the core vocabularies). For another
    one feedparser (SAX, with no qualified names) uses the prefix the document declared for
    it, whatever prefix the element is written with, and none for a default namespace.
    """

    def __init__(self, bindings: set[tuple[str | None, str]]) -> None:
        self._unknown: dict[str, str] = {}  # namespace -> the prefix declared for it
        for given, uri in bindings:
            known = _known_prefix(uri)
            if known is not None:
                if given in _RESERVED_PREFIXES and known != given:
                    raise _Decline  # feedparser would read that prefix's elements as another's
            elif given is not None:
                if given.lower() in _HANDLER_PREFIXES or uri in self._unknown:
                    raise _Decline  # read as a known vocabulary, or as either of two prefixes
                self._unknown[uri] = given
        self._cache: dict[str, str] = {}

    def __call__(self, element: Any) -> str:
        tag = element.tag
        if not isinstance(tag, str):
            return ""  # a comment or processing instruction
        name = self._cache.get(tag)
        if name is None:
            name = self._cache[tag] = self._name(tag)
        return name

    def _name(self, tag: str) -> str:
        if tag[0] != "{":
            return tag.lower()
        uri, _, local = tag[1:].partition("}")
        prefix = _known_prefix(uri)
        if prefix is None:
            prefix = self._unknown.get(uri, "")
        return f"{prefix}_{local}".lower() if prefix else local.lower()


def _known_prefix(uri: str) -> str | None:
    lowered = uri.lower()
    return "" if "backend.userland.com/rss" in lowered else NAMESPACES.get(lowered)


# --- RSS ------------------------------------------------------------------------------------


def _rss(root: Any, names: _Names) -> dict[str, Any]:
    _check_attributes(root)
    version = root.get("version", "")
    versions = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
    version = versions.get(version) or ("rss20" if version.startswith("2.") else "rss")
    channels = [child for child in root if isinstance(child.tag, str)]
    if len(channels) != 1 or names(channels[0]) != "channel" or channels[0].attrib:
        raise _Decline
    if any(uri.lower() in _RSS1 for uri in root.nsmap.values()):
        raise _Decline  # feedparser would call it RSS 1.0 or 0.90
    channel = _Channel(names)
    for child in channels[0]:
        channel.read(child)
    return {"version": version, "feed": channel.feed, "entries": channel.entries, "bozo": False}


class _Channel:
    """An RSS <channel> read in document order, as feedparser's handlers would."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.titles = 0

    def read(self, child: Any) -> None:
        name = self.names(child)
        if not name:
            return
        _check_attributes(child)
        if name == "item":
            self.entries.append(_Item(self.names).read(child))
        elif name == "title":
            self.titles += 1
            if self.titles > 1:
                raise _Decline  # the first non-empty one wins, by feedparser's depth rules
            text = _plain_text(child)
            self.feed["title"] = text
            self.feed["title_detail"] = {"type": "text/plain", "language": None, "value": text}
        elif name == "link":
            if _has_href(child):
                _inert_link(child)
            else:
                _no_attributes(child)
                self.feed["link"] = _ENTITY_LIKE.sub(r"&\1", _uri(_text(child)))
        elif name in ("language", "dc_language", "ttl", "sy_updateperiod", "sy_updatefrequency"):
            _no_attributes(child)  # with attributes feedparser keeps those instead
            self.feed["language" if name == "dc_language" else name] = _clean(_text(child))
        elif name == "image":
            _image(child, self.names)
        elif name in ("itunes_owner", "itunes_category"):
            _itunes(child, self.names)
        elif name in _FEED_INERT or name not in HANDLED:
            _inert(child, self.names, name)
        else:
            raise _Decline


_Handler = Callable[["_Item", Any, str], None]


class _Item:
    """An RSS <item> read in document order, as feedparser's handlers would."""

    atom = False  # Atom's plain-text constructs are never guessed to be HTML

    def __init__(self, names: _Names, lang: str | None = None) -> None:
        self.names = names
        self.lang = lang
        self.entry: dict[str, Any] = {}
        self.tags: list[tuple[str | None, str | None, str | None]] = []
        self.titles = self.guids = self.media_titles = self.sources = 0
        self.link: str | None = None
        self.permalink: str | None = None
        self.has_content = False

    def read(self, item: Any) -> dict[str, Any]:
        self.attributes(item)
        self.children(item, _ITEM_ELEMENTS)
        if self.titles > 1 or self.guids > 1:
            raise _Decline
        if self.media_titles and (self.sources or not self.entry.get("title")):
            raise _Decline  # which title wins then depends on feedparser's depth bookkeeping
        if self.link is not None:
            self.entry["link"] = self.link
        elif self.permalink is not None:
            self.entry["link"] = self.permalink
        self.entry["tags"] = [{"term": t, "scheme": s, "label": lb} for t, s, lb in self.tags]
        return self.entry

    def attributes(self, item: Any) -> None:
        if item.attrib:
            raise _Decline

    def children(self, element: Any, handlers: dict[str, _Handler]) -> None:
        for child in element:
            name = self.names(child)
            if not name:
                continue
            _check_attributes(child)
            handler = handlers.get(name)
            if handler is not None:
                handler(self, child, name)
            elif name in _INERT or name not in HANDLED:
                _inert(child, self.names, name)
            else:
                raise _Decline

    def media(self, element: Any, _: str) -> None:
        """media:content and media:group: containers whose titles and keywords count."""
        self.children(element, _MEDIA_ELEMENTS)

    def title(self, element: Any, _: str) -> None:
        self.titles += 1
        text = _plain_text(element)
        self.entry["title"] = text
        self.entry["title_detail"] = {"type": "text/plain", "language": None, "value": text}

    def media_title(self, element: Any, _: str) -> None:
        self.media_titles += 1
        _text(element)

    def source(self, element: Any, _: str) -> None:
        self.sources += 1
        _text(element)

    def link_(self, element: Any, _: str) -> None:
        if _has_href(element):
            _inert_link(element)
            return
        _no_attributes(element)
        self.link = _ENTITY_LIKE.sub(r"&\1", _uri(_text(element)).replace("&amp;", "&"))

    def guid(self, element: Any, _: str) -> None:
        self.guids += 1
        attributes = element.attrib
        if len(attributes) > 1 or set(attributes) - {"isPermaLink", "ispermalink"}:
            raise _Decline
        is_link = next(iter(attributes.values()), "true") == "true"
        self.entry["id"] = _uri(_text(element)) if is_link else _clean(_text(element))
        self.permalink = self.entry["id"] if is_link else None

    def summary(self, element: Any, name: str) -> None:
        if name == "description":
            _no_attributes(element)
            detail = {"type": "text/html", "language": None, "value": _clean(_text(element))}
        else:
            detail = {"type": "text/plain", "language": None, "value": _plain_text(element)}
        self.set_summary(detail)

    def media_description(self, element: Any, _: str) -> None:
        """media:description: a description, its type "plain" or "html" (the default)."""
        if set(element.attrib) - {"type", _XML_LANG}:
            raise _Decline
        kind = _CONTENT_TYPES.get((element.get("type") or "html").lower())
        if kind is None:
            raise _Decline
        text = _text(element)
        if kind == "text/plain" and not self.atom and _MAYBE_HTML.search(text.strip()):
            raise _Decline
        lang = _lang(element, self.lang)
        self.set_summary({"type": kind, "language": lang, "value": _clean(text)})

    def set_summary(self, detail: dict[str, Any]) -> None:
        """The summary is the last description-like element, unless one came before it and
        no content did: then feedparser makes it a content instead."""
        if "summary" in self.entry and not self.has_content:
            raise _Decline
        self.entry["summary"], self.entry["summary_detail"] = detail["value"], detail

    def content(self, element: Any, _: str) -> None:
        _no_attributes(element)
        self.has_content = True
        value = _clean(_text(element))
        detail = {"type": "text/html", "language": None, "value": value}
        self.entry.setdefault("content", []).append(detail)
        self.entry.setdefault("summary", value)

    def author(self, element: Any, _: str) -> None:
        _no_attributes(element)
        _author(self.entry, _clean(_text(element)))

    def category(self, element: Any, _: str) -> None:
        _category(element, self.tags)

    def keywords(self, element: Any, name: str) -> None:
        _keywords(element, name, self.tags)

    def date(self, element: Any, name: str) -> None:
        _no_attributes(element)
        key = "published" if name == "pubdate" else "updated"
        text = _clean(_text(element))
        self.entry[key] = text
        self.entry[f"{key}_parsed"] = _date(text)


class _RdfItem(_Item):
    """An RSS 1.0 <item>: its rdf:about is its id."""

    def attributes(self, item: Any) -> None:
        if set(item.attrib) - {_RDF_ABOUT}:
            raise _Decline
        if about := item.get(_RDF_ABOUT):
            self.entry["id"] = about


_MEDIA_ELEMENTS: dict[str, _Handler] = {
    "media_content": _Item.media,
    "media_group": _Item.media,
    "media_title": _Item.media_title,
    "media_keywords": _Item.keywords,
    "media_description": _Item.media_description,
}
_ITEM_ELEMENTS: dict[str, _Handler] = _MEDIA_ELEMENTS | {
    "title": _Item.title,
    "source": _Item.source,
    "link": _Item.link_,
    "guid": _Item.guid,
    "id": _Item.guid,
    "description": _Item.summary,
    "itunes_summary": _Item.summary,
    "content_encoded": _Item.content,
    "author": _Item.author,
    "dc_creator": _Item.author,
    "itunes_author": _Item.author,
    "category": _Item.category,
    "dc_subject": _Item.category,
    "itunes_keywords": _Item.keywords,
    "pubdate": _Item.date,
    "dc_date": _Item.date,
    "dcterms_modified": _Item.date,
}


# --- Atom 1.0 -------------------------------------------------------------------------------


def _atom(root: Any, names: _Names) -> dict[str, Any]:
    _check_attributes(root, lang_ok=True)
    if set(root.attrib) - {_XML_LANG, "version"}:
        raise _Decline
    if any(uri.lower() in _RSS1 for uri in root.nsmap.values()):
        raise _Decline  # feedparser would take the first format it sees declared
    language = _lang(root, None)
    feed: dict[str, Any] = {"language": language.replace("_", "-")} if language else {}
    entries = []
    titles = 0
    for child in root:
        name = names(child)
        if not name:
            continue
        _check_attributes(child, lang_ok=True)
        if name == "entry":
            entries.append(_AtomEntry(names, _lang(child, language)).read(child))
        elif name == "title":
            titles += 1
            feed["title_detail"] = _atom_text(child, _lang(child, language))
        else:
            _atom_feed_child(feed, child, name, names)
    if titles > 1:
        raise _Decline
    return {"version": "atom10", "feed": feed, "entries": entries, "bozo": False}


def _atom_feed_child(feed: dict[str, Any], child: Any, name: str, names: _Names) -> None:
    if name == "link":
        href = _atom_link(child)
        if href is not None:
            feed["link"] = href
    elif name == "id":
        _no_attributes(child)
        feed.setdefault("link", _uri(_text(child)))  # feedparser: an id is a permalink
    elif name in ("author", "contributor"):
        _person(child, names)
    elif name in _FEED_INERT or name not in HANDLED:
        _inert(child, names, name)
    else:
        raise _Decline


class _AtomEntry(_Item):
    """An Atom <entry> read in document order, as feedparser's handlers would."""

    atom = True

    def __init__(self, names: _Names, lang: str | None) -> None:
        super().__init__(names, lang)
        self.authors = 0

    def read(self, item: Any) -> dict[str, Any]:
        if set(item.attrib) - {_XML_LANG}:
            raise _Decline
        for child in item:
            name = self.names(child)
            if not name:
                continue
            _check_attributes(child, lang_ok=True)
            self.child(child, name)
        if self.titles > 1 or self.guids > 1 or self.authors > 1:
            raise _Decline
        if self.media_titles and not self.entry.get("title_detail", {}).get("value"):
            raise _Decline  # which title wins then depends on feedparser's depth bookkeeping
        self.entry["tags"] = [{"term": t, "scheme": s, "label": lb} for t, s, lb in self.tags]
        return self.entry

    def child(self, child: Any, name: str) -> None:
        entry, lang = self.entry, _lang(child, self.lang)
        if name in ("media_content", "media_group"):
            self.media(child, name)
        elif name == "title":
            self.titles += 1
            entry["title_detail"] = _atom_text(child, lang)
        elif name == "link":
            href = _atom_link(child)
            if href is not None:
                entry["link"] = href
        elif name == "id":
            self.guids += 1
            _no_attributes(child)
            entry["id"] = _uri(_text(child))
            entry.setdefault("link", entry["id"])  # feedparser: an id is a permalink
        elif name in ("summary", "content"):
            self.text_construct(child, name, lang)
        elif name == "author":
            self.authors += 1
            _author_detail(entry, _person(child, self.names))
        elif name == "contributor":
            _person(child, self.names)
        elif name == "category":
            _category(child, self.tags)
        elif name in ("published", "updated"):
            _no_attributes(child)
            text = _clean(_text(child))
            entry[name] = text
            entry[f"{name}_parsed"] = _date(text)
        elif name in _INERT or name not in HANDLED:
            _inert(child, self.names, name)
        else:
            raise _Decline

    def text_construct(self, element: Any, name: str, lang: str | None) -> None:
        if set(element.attrib) - {"type", _XML_LANG}:
            raise _Decline  # src, mode
        detail = _atom_text(element, lang)
        if name == "summary":
            self.set_summary(detail)
            return
        self.has_content = True
        self.entry.setdefault("content", []).append(detail)
        self.entry.setdefault("summary", detail["value"])


# Content types feedparser keeps as text (others it base64-decodes or re-serialises).
_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "text/plain": "text/plain"}
_CONTENT_TYPES |= {"html": "text/html", "text/html": "text/html"}


def _atom_text(element: Any, lang: str | None) -> dict[str, Any]:
    """An Atom text construct as feedparser's contentparams: type, language, value."""
    kind = _CONTENT_TYPES.get((element.get("type") or "text").lower())
    if kind is None:
        raise _Decline  # xhtml (markup feedparser re-serialises) or a media type
    if lang:
        lang = lang.replace("_", "-")
    return {"type": kind, "language": lang, "value": _clean(_text(element))}


def _atom_link(element: Any) -> str | None:
    """The href of an HTML alternate link (what feedparser takes as the link), else None."""
    if len(element) or "href" not in element.attrib or set(element.attrib) & {"url", "uri"}:
        raise _Decline
    rel = (element.get("rel") or "alternate").lower()
    kind = (
        element.get("type") or ("application/atom+xml" if rel == "self" else "text/html")
    ).lower()
    if rel != "alternate" or kind not in ("text/html", "html", "application/xhtml+xml", "xhtml"):
        return None
    return _URI_FIXER.sub(r"\1\3", element.get("href"))


def _person(element: Any, names: _Names) -> dict[str, str]:
    """An Atom author or contributor: its name, email and uri (each once, plain text), and
    elements of other vocabularies (a Blogger avatar) with no text, which set nothing."""
    found: dict[str, str] = {}
    if element.text and element.text.strip():
        raise _Decline  # text beside the children would become the author
    for child in element:
        name = names(child)
        if not name or (child.tail and child.tail.strip()):
            raise _Decline
        _check_attributes(child)
        if name not in HANDLED and name not in _READ_KEYS:
            if len(child) or (child.text and child.text.strip()):
                raise _Decline
            continue
        if name not in ("name", "email", "uri") or name in found or child.attrib:
            raise _Decline
        found[name] = _text(child).strip() if name != "uri" else _uri(_text(child))
    return found


def _author_detail(entry: dict[str, Any], person: dict[str, str]) -> None:
    """feedparser's author and author_detail for one Atom author."""
    name, email = person.get("name"), person.get("email")
    detail = dict(person)
    if "uri" in detail:
        detail["href"] = detail.pop("uri")
    if detail:
        entry["author_detail"] = detail
    if name and email:
        entry["author"] = f"{name} ({email})"
    elif name or email:
        entry["author"] = name or email
    else:
        entry["author"] = ""


def _lang(element: Any, inherited: str | None) -> str | None:
    """The element's xml:lang, or its parent's; "" means none (feedparser's reading)."""
    value = element.get(_XML_LANG)
    if value is None:
        return inherited
    return value or None


# --- RSS 1.0 --------------------------------------------------------------------------------

# The namespaces whose declaration sets feedparser's version: the first one declared wins.
_VERSIONS = {
    (None, "http://my.netscape.com/rdf/simple/0.9/"): "rss090",
    ("*", "http://purl.org/rss/1.0/"): "rss10",
    ("*", "http://www.w3.org/2005/atom"): "atom10",
}


def _rdf(root: Any, names: _Names) -> dict[str, Any]:
    """RSS 1.0 (and 0.90): the channel, then its items and image, siblings under rdf:RDF."""
    if root.attrib:
        raise _Decline
    versions = {
        _VERSIONS.get((prefix, uri.lower())) or _VERSIONS.get(("*", uri.lower()))
        for prefix, uri in root.nsmap.items()
    } - {None}
    if versions not in ({"rss10"}, {"rss090"}):
        raise _Decline  # none, or several in an order lxml does not keep
    children = [child for child in root if isinstance(child.tag, str)]
    if not children or names(children[0]) != "channel":
        raise _Decline  # a title before the channel's would hide it (feedparser's depth rule)
    if set(children[0].attrib) - {_RDF_ABOUT}:
        raise _Decline
    channel = _Channel(names)
    for child in children[0]:
        channel.read(child)
    for child in children[1:]:
        name = names(child)
        _check_attributes(child)
        if name == "item":
            channel.entries.append(_RdfItem(channel.names).read(child))
        elif name == "image":
            _image(child, names)
        elif name in _FEED_INERT or name not in HANDLED:
            _inert(child, names, name)
        else:
            raise _Decline
    return {
        "version": versions.pop(),
        "feed": channel.feed,
        "entries": channel.entries,
        "bozo": False,
    }


_READERS: dict[str, Callable[[Any, _Names], dict[str, Any]]] = {
    "rss": _rss,
    _ATOM_FEED: _atom,
    f"{{{_RDF}}}RDF": _rdf,
}


def _image(image: Any, names: _Names) -> None:
    for child in image:
        name = names(child)
        if name and (name not in _IMAGE_CHILDREN or child.attrib or len(child)):
            raise _Decline  # other children make feedparser leave the image early


def _itunes(element: Any, names: _Names) -> None:
    """A channel's itunes:owner (a name and an e-mail) or itunes:category (nested ones): they set
    the feed's publisher and tags, which watcher does not read."""
    allowed = (
        ("itunes_name", "itunes_email")
        if names(element) == "itunes_owner"
        else ("itunes_category",)
    )
    for descendant in element.iterdescendants():
        name = names(descendant)
        if name and name not in allowed:
            raise _Decline
        _check_attributes(descendant)


def _inert(element: Any, names: _Names, name: str) -> None:
    """An element that sets nothing watcher reads, nor do its descendants (the callers vet
    the handled ones; an unknown one is stored under its own name)."""
    if name not in HANDLED and name in _READ_KEYS:
        raise _Decline
    for descendant in element.iterdescendants():
        inner = names(descendant)
        if inner and (inner in HANDLED or inner in _READ_KEYS):
            raise _Decline
        _check_attributes(descendant)


def _has_href(element: Any) -> bool:
    return any(key in element.attrib for key in ("href", "url", "uri"))


def _inert_link(element: Any) -> None:
    """An Atom-style link in RSS: it sets the entry's link only if it is an HTML alternate."""
    if len(element):
        raise _Decline
    rel = (element.get("rel") or "alternate").lower()
    kind = (
        element.get("type") or ("application/atom+xml" if rel == "self" else "text/html")
    ).lower()
    if rel == "alternate" and kind in ("text/html", "html", "application/xhtml+xml", "xhtml"):
        raise _Decline


def _category(element: Any, tags: list[tuple[str | None, str | None, str | None]]) -> None:
    """feedparser's _start_category/_end_category: the attributes' tag, then the text's."""
    if set(element.attrib) - {"term", "domain", "scheme", "label"}:
        raise _Decline
    term, label = element.get("term"), element.get("label")
    scheme = element.get("scheme", element.get("domain"))
    _add_tag(tags, term, scheme, label)
    value = _clean(_text(element))
    if not value:
        return
    if tags and not tags[-1][0]:
        tags[-1] = (value, tags[-1][1], tags[-1][2])
    else:
        _add_tag(tags, value, None, None)


def _keywords(element: Any, name: str, tags: list[Any]) -> None:
    """media:keywords and itunes:keywords: comma-separated tags."""
    _no_attributes(element)  # with attributes feedparser stores them instead, and fails
    scheme = "http://www.itunes.com/" if name == "itunes_keywords" else None
    for term in _clean(_text(element)).split(","):
        if term.strip():
            _add_tag(tags, term.strip(), scheme, None)


def _add_tag(tags: list[Any], term: str | None, scheme: str | None, label: str | None) -> None:
    if (term or scheme or label) and (term, scheme, label) not in tags:
        tags.append((term, scheme, label))


def _author(entry: dict[str, Any], value: str) -> None:
    """feedparser's _sync_author_detail for an author given as one string: the last such
    element gives "author", the first non-empty one "author_detail"."""
    entry["author"] = value
    author, email = value, None
    if not author or "author_detail" in entry:
        return
    found = _EMAIL.search(author)
    if found:
        email = found.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    detail = {}
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email
    if detail:
        entry["author_detail"] = detail


# --- text -----------------------------------------------------------------------------------


def _check_attributes(element: Any, *, lang_ok: bool = False) -> None:
    """xml:lang and xml:base (or bare lang/base, which feedparser reads too) change meanings;
    Atom's reading follows xml:lang (``lang_ok``)."""
    for key in element.attrib:
        local = key.rpartition("}")[2].lower()
        if local in ("lang", "base") and not (lang_ok and key == _XML_LANG):
            raise _Decline


def _no_attributes(element: Any) -> None:
    if element.attrib:
        raise _Decline


def _text(element: Any) -> str:
    """An element's character data; it must have no child (a comment would split it)."""
    if len(element):
        raise _Decline
    return element.text or ""


def _plain_text(element: Any) -> str:
    """A nominally plain-text field, unless feedparser would guess it is HTML."""
    _no_attributes(element)
    text = _text(element).strip()
    if _MAYBE_HTML.search(text):
        raise _Decline
    return _clean(text)


def _clean(text: str) -> str:
    """What feedparser does to all character data: strip, undo UTF-8 read as Latin-1, cp1252."""
    text = text.strip()
    if text.isascii():
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_CP1252)


def _uri(text: str) -> str:
    """A URI element (a link, a permalink GUID): feedparser joins it to an empty base."""
    text = text.strip()
    return _clean(_URI_FIXER.sub(r"\1\3", text))


def _date(text: str) -> time.struct_time | None:
    """The UTC time feedparser's date handlers give, for the formats where that is certain."""
    if not text:
        return None
    lowered = text.lower()
    found = _w3cdtf(lowered) or _rfc822(lowered)
    if found is None:
        raise _Decline
    (year, month, day, hour, minute, second), offset = found
    if not 1900 <= year <= 9000:
        raise _Decline
    try:
        stamp = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise _Decline from None  # feedparser's next handlers might still read it
    return (stamp - timedelta(minutes=offset)).utctimetuple()


_Fields = tuple[tuple[int, int, int, int, int, int], int]  # (Y, M, D, h, m, s), UTC offset


def _w3cdtf(text: str) -> _Fields | None:
    """2024-01-31T10:00:00Z or +01:00 (feedparser's first date handler)."""
    match = _W3CDTF.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    zone = match.group(7)
    offset = 0 if zone == "z" else int(zone[1:3]) * 60 + int(zone[4:])
    return (year, month, day, hour, minute, second), -offset if zone[0] == "-" else offset


def _rfc822(text: str) -> _Fields | None:
    """Wed, 31 Jan 2024 10:00:00 GMT or +0100 (feedparser's second, the first declines it)."""
    match = _RFC822.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, zone = match.groups()
    if zone[0] in "+-":
        offset = int(zone[1:3]) * 60 + int(zone[3:])
        offset = -offset if zone[0] == "-" else offset
    elif zone in _ZONES:
        offset = _ZONES[zone] * 60
    else:
        return None
    fields = (int(year), _MONTHS.get(month, 0), int(day), int(hour), int(minute), int(second or 0))
    return fields, offset
