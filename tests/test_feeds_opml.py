"""OPML import and export: folders and categories as tags, hostile and broken files, round trip."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from watcher.errors import ParseError
from watcher.feeds.opml import OpmlFeed, export_opml, parse_opml

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

SUBSCRIPTIONS = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Top level" type="rss" xmlUrl="https://top.example/feed" category="/Misc"/>
    <outline text="Venezuela">
      <outline title="El Nacional" text="ignored" type="rss" xmlUrl="https://en.example/rss"
               category="politica, economia/Caracas"/>
      <outline text="Opinion">
        <outline text="Columnas &amp; más" xmlURL="feed://col.example/atom.xml"/>
      </outline>
    </outline>
    <outline text="Ukraine">
      <outline text="Same feed again" xmlUrl="https://en.example/rss" category="peace"/>
      <outline text="Untitled feed follows"/>
      <outline xmlUrl="https://untitled.example/feed.json"/>
    </outline>
  </body>
</opml>
""".encode()


def test_nested_outlines_and_categories_become_tags() -> None:
    feeds = parse_opml(SUBSCRIPTIONS, source="subs.opml")
    assert feeds == [
        OpmlFeed("https://top.example/feed", "Top level", ("Misc",)),
        OpmlFeed(
            "https://en.example/rss",
            "El Nacional",
            ("Venezuela", "politica", "economia", "Caracas", "Ukraine", "peace"),
        ),
        OpmlFeed("http://col.example/atom.xml", "Columnas & más", ("Venezuela", "Opinion")),
        OpmlFeed(
            "https://untitled.example/feed.json", "https://untitled.example/feed.json", ("Ukraine",)
        ),
    ]


def test_round_trip() -> None:
    feeds = [
        OpmlFeed("https://a.example/feed?x=1&y=2", 'Quotes "and" <angles> & amps', ("news", "es")),
        OpmlFeed("https://b.example/rss", "Ñandú noticias", ()),
        OpmlFeed("https://c.example/atom", "C", ("Ukraine peace",)),
    ]
    document = export_opml(feeds, title="watcher feeds")
    assert parse_opml(document, source="export") == feeds
    root = ET.fromstring(document)
    assert (root.tag, root.get("version"), root.findtext("head/title")) == (
        "opml",
        "2.0",
        "watcher feeds",
    )
    outline = root.find("body/outline")
    assert outline is not None
    assert (outline.get("type"), outline.get("category")) == ("rss", "news,es")


def test_export_cannot_split_a_tag() -> None:
    document = export_opml(
        [OpmlFeed("https://a.example/", "A", ("left/right, centre",))], title="t"
    )
    assert parse_opml(document, source="t") == [
        OpmlFeed("https://a.example/", "A", ("left right  centre",))
    ]


def test_export_of_nothing_is_a_valid_empty_list() -> None:
    assert parse_opml(export_opml([], title="empty"), source="e") == []


@pytest.mark.fault
def test_doctype_is_refused_before_any_entity_expands() -> None:
    entities = ['<!ENTITY a0 "ha">'] + [
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    ]
    document = (
        '<?xml version="1.0"?>\n<!DOCTYPE opml [\n' + "\n".join(entities) + "\n]>\n"
        '<opml version="2.0"><body><outline text="&a9;" xmlUrl="https://x.example/"/></body></opml>'
    ).encode()
    started = time.perf_counter()
    with pytest.raises(ParseError, match=r"^bomb\.opml:2: OPML with a DOCTYPE is refused"):
        parse_opml(document, source="bomb.opml")
    assert time.perf_counter() - started < 10.0  # refused up front; margin for a loaded machine


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            b'<opml version="2.0">\n<body>\n<outline text="x">\n</body></opml>',
            r"^f\.opml:4:3: not well-formed XML: mismatched tag$",
        ),
        (b"", r"^f\.opml:1:1: not well-formed XML: no element found$"),
        (
            b"<rss version='2.0'><channel/></rss>",
            r"^f\.opml: not an OPML document \(its root is <rss>",
        ),
        (
            b'<opml><body>\n\n<outline text="bad" xmlUrl="javascript:alert(1)"/></body></opml>',
            r"^f\.opml:3: xmlUrl 'javascript:alert\(1\)' is not an http\(s\) URL; fix or remove",
        ),
        (
            b'<opml><body><outline text="&nbsp;"/></body></opml>',
            r"^f\.opml:1:\d+: not well-formed XML: undefined entity$",
        ),
    ],
)
def test_errors_name_the_source_and_line(document: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_opml(document, source="f.opml")


@pytest.mark.parametrize("encoding", ["TF-8", "shift_jis"])
def test_unreadable_encodings(encoding: str) -> None:
    document = f'<?xml version="1.0" encoding="{encoding}"?><opml/>'.encode()
    with pytest.raises(ParseError, match=r"^f\.opml: unreadable encoding .*save it as UTF-8$"):
        parse_opml(document, source="f.opml")


def test_legacy_encodings_are_read() -> None:
    document = (
        '<?xml version="1.0" encoding="windows-1252"?>\n<opml version="1.0"><body>'
        '<outline text="Caf\u00e9 \u20ac" xmlUrl="https://cafe.example/rss"/></body></opml>'
    ).encode("cp1252")
    assert parse_opml(document, source="old.opml")[0].name == "Café €"


@pytest.mark.corpus
def test_corpus_opml_files_parse_and_round_trip() -> None:
    files = sorted(CORPUS.glob("feeds/**/*.opml"))
    if not files:
        pytest.skip(f"no OPML files under {CORPUS}")
    for path in files:
        feeds = parse_opml(path.read_bytes(), source=str(path))
        assert feeds, path
        assert all(feed.url.startswith(("http://", "https://")) for feed in feeds)
        assert parse_opml(export_opml(feeds, title=path.name), source="export") == feeds


def test_watchers_own_attributes_survive_a_repeated_outline() -> None:
    document = b"""<opml version="2.0"><body>
<outline text="A" xmlUrl="https://a.example/rss" enabled="FALSE" interval="2h"/>
<outline text="Folder"><outline text="A again" xmlUrl="https://a.example/rss"/></outline>
</body></opml>"""
    (feed,) = parse_opml(document, source="x.opml")
    assert (feed.enabled, feed.interval, feed.tags) == (False, 7200.0, ("Folder",))
    with pytest.raises(ParseError):
        parse_opml(document.replace(b'"2h"', b'"soon"'), source="x.opml")


def test_every_bad_outline_is_reported_at_once() -> None:
    document = b"""<opml version="2.0"><body>
<outline text="A" xmlUrl="ftp://a.example/rss"/>
<outline text="B" xmlUrl="https://b.example/rss" interval="often"/>
<outline text="C" xmlUrl="gopher://c.example/"/>
<outline text="D" xmlUrl="https://d.example/rss"/>
</body></opml>"""
    with pytest.raises(ParseError) as refused:
        parse_opml(document, source="x.opml")
    lines = str(refused.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "3", "4"]  # x.opml:LINE: ...
