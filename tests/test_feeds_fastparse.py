"""The lxml fast path yields exactly what the feedparser path yields, or declines: on every
corpus feed, on the bench's feeds, and on the documents it must leave to feedparser."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from pathlib import Path

import feedparser
import feedparser.html
import lxml.etree
import pytest
from feedparser.mixin import _FeedParserMixin
from test_feeds_corpus import CONTENT_TYPES, FEEDS  # served as the corpus test serves them

from watcher.errors import ParseError
from watcher.feeds import fastparse
from watcher.feeds.parse import ParsedFeed, parse_feed

URL = "http://127.0.0.1/feed.xml"

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Site &amp; news</title><link>https://site.example/</link>
<language>es-VE</language><ttl>30</ttl>
<image><title>logo</title><url>https://site.example/logo.png</url></image>
<item><title>Caf\xc3\xa9 talks resume</title>
<link>https://site.example/a?x=1&amp;utm_source=rss</link>
<guid isPermaLink="false">site-1</guid><pubDate>Tue, 02 Jan 2024 10:30:00 -0500</pubDate>
<description>&lt;p&gt;First &lt;b&gt;paragraph&lt;/b&gt;.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;
</description>
<content:encoded><![CDATA[<p>Full <em>text</em> here.</p>]]></content:encoded>
<dc:creator>Ana P\xc3\xa9rez (ana@site.org)</dc:creator>
<category domain="x">Politics</category><category>politics</category><category>Oil</category>
<media:content url="https://site.example/i.jpg"><media:title>photo</media:title></media:content>
</item>
<item><title>Second</title><guid>https://site.example/b</guid>
<dc:date>2024-01-03T08:00:00+01:00</dc:date></item>
</channel></rss>"""


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-GB"
      xmlns:media="http://search.yahoo.com/mrss/">
<title type="text">Atom &amp; news</title><id>tag:site.example,2024:feed</id>
<link rel="self" href="https://site.example/atom.xml"/><updated>2024-01-02T10:00:00Z</updated>
<entry><title type="html">Talks &lt;b&gt;resume&lt;/b&gt;</title>
<id>tag:site.example,2024:1</id><link href="https://site.example/1"/>
<link rel="enclosure" href="https://site.example/1.mp3"/>
<published>2024-01-02T10:00:00.5+02:00</published><updated>2024-01-02T11:00:00Z</updated>
<author><name>Ana</name><email>ana@site.org</email></author>
<category term="politics" label="Politics"/>
<summary type="html">&lt;p&gt;Short.&lt;/p&gt;</summary>
<content type="html" xml:lang="es">&lt;p&gt;Largo &lt;i&gt;texto&lt;/i&gt;.&lt;/p&gt;</content>
</entry>
<entry><title>Second</title><id>https://site.example/2</id>
<media:group><media:title>clip</media:title><media:description>A clip.</media:description>
</media:group></entry>
</feed>"""


RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://site.example/rss"><title>RDF news</title>
<link>https://site.example/</link><dc:language>pt-BR</dc:language>
<items><rdf:Seq><rdf:li rdf:resource="https://site.example/1"/></rdf:Seq></items></channel>
<image rdf:about="https://site.example/logo.png"><title>logo</title><url>https://site.example/l.png</url></image>
<item rdf:about="https://site.example/1"><title>Um</title><link>https://site.example/1</link>
<description>Texto &amp;amp; mais.</description><dc:date>2024-01-02T10:00:00-03:00</dc:date>
<dc:subject>Pol\xc3\xadtica</dc:subject></item>
</rdf:RDF>"""


def _both(body: bytes, content_type: str | None = "application/rss+xml") -> tuple[object, object]:
    def run(fast: bool) -> ParsedFeed | tuple[str, str]:
        try:
            return parse_feed(body, url=URL, content_type=content_type, fast=fast)
        except ParseError as exc:
            return ("ParseError", str(exc))

    return run(True), run(False)


def _differences(fast: object, slow: object) -> list[str]:
    """Field by field, every Entry field of every entry, so a failure names what differs."""
    if not isinstance(fast, ParsedFeed) or not isinstance(slow, ParsedFeed):
        return [] if fast == slow else [f"{fast!r} != {slow!r}"]
    found = [
        f"feed.{field.name}: {getattr(fast, field.name)!r} != {getattr(slow, field.name)!r}"
        for field in dataclasses.fields(ParsedFeed)
        if field.name != "entries" and getattr(fast, field.name) != getattr(slow, field.name)
    ]
    if len(fast.entries) != len(slow.entries):
        return [*found, f"{len(fast.entries)} entries != {len(slow.entries)}"]
    for number, (mine, theirs) in enumerate(zip(fast.entries, slow.entries, strict=True)):
        found += [
            f"entry {number}.{field.name}: {getattr(mine, field.name)!r:.200} != "
            f"{getattr(theirs, field.name)!r:.200}"
            for field in dataclasses.fields(mine)
            if getattr(mine, field.name) != getattr(theirs, field.name)
        ]
    return found


def test_a_plain_rss_feed_takes_the_fast_path_and_reads_as_feedparser_reads_it() -> None:
    assert fastparse.parse(RSS, "application/rss+xml") is not None
    fast, slow = _both(RSS)
    assert _differences(fast, slow) == []
    assert isinstance(fast, ParsedFeed)
    assert fast.title == "Site & news" and fast.language == "es" and fast.ttl == 1800
    first, second = fast.entries
    assert first.title == "Café talks resume" and first.guid == "site-1"
    assert first.summary == "First paragraph.\nSecond." and first.content == "Full text here."
    assert first.author == "Ana Pérez" and first.categories == ("Politics", "Oil")
    assert (
        first.published is not None and first.published.isoformat() == "2024-01-02T15:30:00+00:00"
    )
    assert second.link == "https://site.example/b"  # a permalink GUID is the link
    assert second.updated is not None and second.updated.hour == 7


def test_a_plain_atom_feed_takes_the_fast_path_and_reads_as_feedparser_reads_it() -> None:
    assert fastparse.parse(ATOM, "application/atom+xml") is not None
    fast, slow = _both(ATOM, "application/atom+xml")
    assert _differences(fast, slow) == []
    assert isinstance(fast, ParsedFeed)
    assert fast.kind == "atom" and fast.title == "Atom & news" and fast.language == "en"
    first, second = fast.entries
    assert first.title == "Talks resume" and first.link == "https://site.example/1"
    assert first.summary == "Short." and first.content == "Largo texto."
    assert first.author == "Ana" and first.categories == ("politics",)
    assert first.published is not None and first.published.hour == 8
    assert second.link == "https://site.example/2" and second.summary == "A clip."


def test_an_rss_1_feed_takes_the_fast_path_and_reads_as_feedparser_reads_it() -> None:
    assert fastparse.parse(RDF, "application/rdf+xml") is not None
    fast, slow = _both(RDF, "application/rdf+xml")
    assert _differences(fast, slow) == []
    assert isinstance(fast, ParsedFeed)
    assert fast.kind == "rdf" and fast.title == "RDF news" and fast.language == "pt"
    (entry,) = fast.entries
    assert entry.guid == "https://site.example/1" and entry.summary == "Texto & mais."
    assert entry.updated is not None and entry.updated.hour == 13
    assert entry.categories == ("Política",)


def test_the_bench_feeds_take_the_fast_path() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        from feedserver import feed_xml
    finally:
        sys.path.pop(0)
    for feed in (0, 7, 999):
        body = feed_xml(feed, 20)
        assert fastparse.parse(body, "application/rss+xml; charset=utf-8") is not None
        fast, slow = _both(body, "application/rss+xml; charset=utf-8")
        assert _differences(fast, slow) == []


SUMMARY = b"<description>x</description>"
DOCTYPE = b'<!DOCTYPE rss [<!ENTITY a "b">]>'
ATOM_LINK = b'<link xmlns="http://www.w3.org/2005/Atom" href="https://x.example/"/>'
# What to change in RSS (old, new, how many times; -1 all) for each document to decline.
DECLINED = {
    "not well-formed": (b"</channel>", b"", 1),
    "declared Latin-1": (b"UTF-8", b"ISO-8859-1", 1),
    "a DOCTYPE": (b"<rss ", DOCTYPE + b"<rss ", 1),
    "a DOCTYPE past 4 KB": (b"<rss ", b"<!--" + b"x" * 5000 + b"-->" + DOCTYPE + b"<rss ", 1),
    "xml:base": (b"<channel>", b'<channel xml:base="https://x.example/">', 1),
    "xml:lang": (b"<item>", b'<item><title xml:lang="fr">t</title>', 1),
    "an unknown date format": (b"Tue, 02 Jan", b"mar, 02 ene", 1),
    "a second summary": (b"<content:encoded>", SUMMARY + b"<content:encoded>", 1),
    "a title like HTML": (b"Second</title>", b"Second &lt;/b&gt;</title>", 1),
    "an Atom alternate link": (b"<guid>", ATOM_LINK + b"<guid>", 1),
    "dc bound elsewhere": (b"purl.org/dc/elements/1.1/", b"purl.org/dc/terms/", 1),
    "a second title": (b"<title>Second</title>", b"<title>Second</title><title>2</title>", 1),
    "dc as another vocabulary": (
        b"<guid>",
        b'<dc:creator xmlns:dc="urn:x">A</dc:creator><guid>',
        1,
    ),
    "one namespace, two prefixes": (b"<rss ", b'<rss xmlns:a="urn:x" xmlns:b="urn:x" ', 1),
}


def test_elements_of_unknown_vocabularies_are_named_as_feedparser_names_them() -> None:
    """WordPress's <post-id xmlns="com-wordpress:feed-additions:1">: a default namespace
    feedparser does not know leaves the local name, which must then not be a field."""
    body = RSS.replace(
        b"<guid>", b'<post-id xmlns="com-wordpress:feed-additions:1">7</post-id><guid>'
    )
    assert fastparse.parse(body, None) is not None
    assert _differences(*_both(body, None)) == []
    body = RSS.replace(b"<guid>", b'<author xmlns="urn:x">Bo</author><guid>', 1)
    fast, slow = _both(body, None)
    assert _differences(fast, slow) == []
    assert isinstance(fast, ParsedFeed) and fast.entries[1].author == "Bo"  # the second item


@pytest.mark.parametrize("why", DECLINED)
def test_it_declines_what_it_does_not_model(why: str) -> None:
    old, new, count = DECLINED[why]
    body = RSS.replace(old, new, count)
    assert body != RSS
    if why != "not well-formed":
        lxml.etree.fromstring(body)  # so it is declined for the reason named
    assert fastparse.parse(body, None) is None
    fast, slow = _both(body, None)
    assert _differences(fast, slow) == []


ATOM_DECLINED = {
    "xhtml content": (b'<content type="html"', b'<content type="xhtml"'),
    "content by reference": (b'<content type="html"', b'<content src="https://x.example/"'),
    "a second author": (b"</author>", b"</author><author><name>Bo</name></author>"),
    "an RSS 1.0 namespace too": (b"<feed ", b'<feed xmlns:r="http://purl.org/rss/1.0/" '),
}


@pytest.mark.parametrize("why", ATOM_DECLINED)
def test_it_declines_atom_it_does_not_model(why: str) -> None:
    old, new = ATOM_DECLINED[why]
    body = ATOM.replace(old, new, 1)
    assert body != ATOM
    lxml.etree.fromstring(body)
    assert fastparse.parse(body, None) is None
    fast, slow = _both(body, None)
    assert _differences(fast, slow) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (RSS, "application/rss+xml; charset=iso-8859-1"),
        (RSS.replace(b'"UTF-8"', b'"UTF-16"').decode().encode("utf-16"), None),
    ],
)
def test_it_declines_other_encodings(body: bytes, content_type: str | None) -> None:
    assert fastparse.parse(body, content_type) is None
    fast, slow = _both(body, content_type)
    assert _differences(fast, slow) == []


def test_an_entity_bomb_is_still_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel>'
        b"<item><title>&b;&b;&b;</title></item></channel></rss>"
    )
    assert fastparse.parse(bomb, None) is None
    with pytest.raises(ParseError):
        parse_feed(bomb, url=URL)


def test_its_tables_are_feedparsers() -> None:
    """A feedparser upgrade that handles more elements or namespaces must fail here first."""
    handled = {
        name.split("_", 2)[2]
        for name in dir(_FeedParserMixin)
        if name.startswith(("_start_", "_end_"))
    }
    assert handled == fastparse.HANDLED
    assert {
        uri.lower(): p for uri, p in _FeedParserMixin.namespaces.items()
    } == fastparse.NAMESPACES
    assert {chr(c): t for c, t in fastparse._CP1252.items()} == {
        chr(c): t for c, t in feedparser.html._cp1252.items()
    }


def test_a_parsing_worker_does_not_import_feedparser_until_a_feed_needs_it() -> None:
    script = (
        "import sys\n"
        "from watcher.feeds.cpu import preload, parse_and_identify\n"
        "preload()\n"
        "print('feedparser' in sys.modules)\n"
        "parse_and_identify(b'<rss><channel><item><title>a</title></item></channel></rss>'"
        ", url='http://127.0.0.1/', content_type=None)\n"
        "print('feedparser' in sys.modules)\n"
        'parse_and_identify(b\'<feed xmlns="http://purl.org/atom/ns#"><entry><title>a</title>'
        "</entry></feed>', url='http://127.0.0.1/', content_type=None)\n"
        "print('feedparser' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False", "True"]


@pytest.mark.corpus
def test_on_every_corpus_feed_the_fast_path_declines_or_agrees_with_feedparser() -> None:
    if not FEEDS.is_dir():
        pytest.skip(f"{FEEDS} is not present")
    files = sorted(p for p in FEEDS.rglob("*") if p.is_file())
    taken, wrong = 0, {}
    for path in files:
        body = path.read_bytes()
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        stripped = body.lstrip() if body.lstrip()[:5] == b"<?xml" else body  # as parse_feed does
        if fastparse.parse(stripped, content_type) is None:
            continue
        taken += 1
        if differences := _differences(*_both(body, content_type)):
            wrong[str(path.relative_to(FEEDS))] = differences[:3]
    print(f"\nfast path: {taken} of {len(files)} corpus files")
    assert wrong == {}
    # Recorded when written; fewer means a change made the fast path decline more.
    assert taken >= 1285


# Elements the mutation test inserts: each one something the fast path models or must decline.
SNIPPETS = (
    b"<title>x &amp;amp; y</title>",
    b"<description>d</description>",
    b'<guid isPermaLink="true">http://a.example//b</guid>',
    b"<link>http:///x.example/a</link>",
    b"<pubDate>Mon, 01 Jan 2024 00:00:00 EST</pubDate>",
    b"<pubDate>1 Jan 2024 10:00 +0530</pubDate>",
    b"<author>joe@x.org (Joe)</author>",
    b'<category domain="d"/>',
    b'<category term="t">v</category>',
    b'<foo:bar xmlns:foo="urn:x">q</foo:bar>',
    b"<title>\xc3\x83\xc2\xa9t\xc3\xa9</title>",
    b'<summary type="html">&lt;b&gt;s&lt;/b&gt;</summary>',
    b'<content type="text">c</content>',
    b"<id>urn:x</id>",
    b'<link href="http://m/"/>',
    b"<updated>2024-02-30T00:00:00Z</updated>",
    b"<published>2024-01-01T00:00:00-03:30</published>",
    b"<author><name> N </name></author>",
    b'<m:title xmlns:m="http://search.yahoo.com/mrss/">mt</m:title>',
    b"<title></title>",
    b'<m:description xmlns:m="http://search.yahoo.com/mrss/" type="plain">md</m:description>',
    b'<c:encoded xmlns:c="http://purl.org/rss/1.0/modules/content/">ce</c:encoded>',
    b"<language>fr</language>",
    b'<source url="http://s/">S</source>',
    b"<ttl>5</ttl>",
)
TEXTS = ("", " x ", "a &amp; b", "<b>z</b>", "Tue, 02 Jan 2024 10:00:00 GMT", "2024-01-01T00:00Z")


def _mutant(document: bytes, rng: random.Random) -> bytes:
    """``document`` with 1-3 elements removed, repeated, re-texted or joined by a snippet."""
    root = lxml.etree.fromstring(document)
    elements = [e for e in root.iter() if isinstance(e.tag, str) and e is not root]
    for _ in range(rng.randint(1, 3)):
        element, choice = rng.choice(elements), rng.random()
        if element.getparent() is None:
            continue  # removed by an earlier change
        if choice < 0.3:
            element.getparent().remove(element)
        elif choice < 0.6:
            element.addnext(lxml.etree.fromstring(rng.choice(SNIPPETS)))
        elif choice < 0.75:
            element.addnext(lxml.etree.fromstring(lxml.etree.tostring(element)))
        elif choice < 0.9:
            element.text = rng.choice(TEXTS)
        else:
            element.append(lxml.etree.fromstring(rng.choice(SNIPPETS)))
    return lxml.etree.tostring(root, xml_declaration=True, encoding="utf-8")


@pytest.mark.parametrize("document", [RSS, ATOM, RDF], ids=["rss", "atom", "rdf"])
def test_mutated_feeds_are_declined_or_read_as_feedparser_reads_them(document: bytes) -> None:
    rng, taken = random.Random(13), 0
    for _ in range(300):
        body = _mutant(document, rng)
        if fastparse.parse(body, None) is None:
            continue
        taken += 1
        assert _differences(*_both(body, None)) == [], body.decode()
    assert taken > 50  # the mutants still exercise the fast path
