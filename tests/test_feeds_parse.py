"""Feed parsing: RSS, Atom, RDF and JSON Feed documents, broken ones, hostile ones, the corpus."""

from __future__ import annotations

import collections
import gzip
import html
import json
import os
import pickle
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.errors import ParseError
from watcher.feeds.parse import MAX_BODY_BYTES, MAX_ENTRY_TEXT, ParsedFeed, parse_feed
from watcher.types import Entry

URL = "https://news.example.org/feeds/main.xml"
# WATCHER_CORPUS: where the corpus is when the checkout is not beside it (a git worktree).
CORPUS = Path(
    os.environ.get("WATCHER_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
  <title>Noticias &amp; Opini\xc3\xb3n</title>
  <link>/portada</link>
  <language>es-VE</language>
  <ttl>30</ttl>
  <sy:updatePeriod>hourly</sy:updatePeriod>
  <sy:updateFrequency>2</sy:updateFrequency>
  <item>
    <title>Maduro &amp;amp; the   &lt;em&gt;opposition&lt;/em&gt;</title>
    <link>/2024/05/talks.html?utm_source=rss</link>
    <guid isPermaLink="false">  talks-2024-05  </guid>
    <description><![CDATA[<p>First <b>paragraph</b>.</p><script>alert(1)</script>
      <p>Second&nbsp;one.</p>]]></description>
    <content:encoded><![CDATA[<h2>Heading</h2>
      <p>The <a href="/x">full</a> text.<br>Next line.</p>]]></content:encoded>
    <dc:creator>Ana P\xc3\xa9rez</dc:creator>
    <pubDate>Tue, 10 Jun 2003 04:00:00 +0200</pubDate>
  </item>
  <item>
    <title>Permalink only</title>
    <guid>https://news.example.org/2024/05/permalink</guid>
    <dc:language>en-GB</dc:language>
  </item>
  <item>
    <title>No identity at all</title>
    <description>Plain &amp; simple, a &lt; b</description>
  </item>
</channel>
</rss>
"""


def test_rss_entry_fields_are_plain_text_and_absolute() -> None:
    feed = parse_feed(RSS, url=URL, content_type="application/rss+xml")
    assert (feed.kind, feed.title, feed.link) == (
        "rss",
        "Noticias & Opinión",
        "https://news.example.org/portada",
    )
    assert feed.warning is None
    first = feed.entries[0]
    assert first.guid == "talks-2024-05"
    assert first.link == "https://news.example.org/2024/05/talks.html?utm_source=rss"
    assert first.title == "Maduro & the opposition"
    assert first.summary == "First paragraph.\nSecond one."
    assert first.content == "Heading\nThe full text.\nNext line."
    assert first.author == "Ana Pérez"
    assert first.published == datetime(2003, 6, 10, 2, 0, tzinfo=UTC)
    assert first.updated is None
    assert first.language == "es"


def test_rss_permalink_guid_missing_guid_and_item_language() -> None:
    _, permalink, anonymous = parse_feed(RSS, url=URL).entries
    assert permalink.guid == permalink.link == "https://news.example.org/2024/05/permalink"
    assert permalink.language == "en"
    assert (anonymous.guid, anonymous.link, anonymous.published) == (None, None, None)
    assert anonymous.summary == "Plain & simple, a < b"
    assert anonymous.content == ""


def test_a_guid_is_kept_as_written() -> None:
    # feedparser would resolve a permalink-style GUID against a base URL; with none, the
    # GUID keeps the form it had, whatever URL the feed was fetched from.
    body = b"<rss version='2.0'><channel><item><guid>12345</guid></item></channel></rss>"
    for url in (URL, "https://mirror.example.net/rss"):
        assert parse_feed(body, url=url).entries[0].guid == "12345"


def test_rss_ttl_and_syndication_hints_are_seconds() -> None:
    feed = parse_feed(RSS, url=URL)
    assert feed.ttl == 1800.0
    assert feed.update_period == 1800.0  # hourly, twice


@pytest.mark.parametrize(
    ("period", "frequency", "seconds"),
    [
        ("daily", None, 86400.0),
        ("daily", "4", 21600.0),
        (" Weekly ", "1", 604800.0),
        ("hourly", "0", 3600.0),  # a frequency of 0 is nonsense: ignore it
        ("fortnightly", "1", None),
    ],
)
def test_update_period(period: str, frequency: str | None, seconds: float | None) -> None:
    freq = f"<sy:updateFrequency>{frequency}</sy:updateFrequency>" if frequency else ""
    body = (
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
        f"<title>t</title><sy:updatePeriod>{period}</sy:updatePeriod>{freq}<ttl>x</ttl>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(body, url=URL)
    assert (feed.update_period, feed.ttl) == (seconds, None)


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US" xml:base="https://blog.example.com/">
  <title type="html">Dev &amp;lt;notes&amp;gt;</title>
  <link rel="alternate" href="/"/>
  <link rel="self" href="https://blog.example.com/atom.xml"/>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-05-06T10:11:12Z</updated>
  <entry xml:base="posts/">
    <title type="text">a &lt; b &amp; c</title>
    <link rel="alternate" href="first.html"/>
    <link rel="enclosure" href="first.mp3"/>
    <id>tag:blog.example.com,2024:1</id>
    <published>2024-05-06T12:00:00+02:00</published>
    <updated>2024-05-07T09:30:00-04:00</updated>
    <author><name>Kim</name><email>kim@example.com</email></author>
    <summary type="text">Short   version</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Long</p><p>version</p></div></content>
  </entry>
  <entry xml:lang="fr">
    <title>Deuxième</title>
    <link href="second.html"/>
    <id>tag:blog.example.com,2024:2</id>
    <updated>2024-05-08T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Bonjour&lt;/p&gt;</content>
  </entry>
</feed>
""".encode()


def test_atom_xml_base_and_languages() -> None:
    feed = parse_feed(ATOM, url="https://cdn.example.net/feed")
    assert (feed.kind, feed.title, feed.link, feed.language) == (
        "atom",
        "Dev <notes>",
        "https://blog.example.com/",
        "en",
    )
    first, second = feed.entries
    assert first.link == "https://blog.example.com/posts/first.html"
    assert second.link == "https://blog.example.com/second.html"  # the base does not leak
    assert (first.language, second.language) == ("en", "fr")


def test_atom_text_constructs() -> None:
    first, second = parse_feed(ATOM, url=URL).entries
    assert first.guid == "tag:blog.example.com,2024:1"
    assert first.title == "a < b & c"
    assert first.summary == "Short version"
    assert first.content == "Long\nversion"
    assert first.author == "Kim"
    assert first.published == datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    assert first.updated == datetime(2024, 5, 7, 13, 30, tzinfo=UTC)
    assert (second.published, second.summary, second.content) == (None, "", "Bonjour")


RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example.com/">
    <title>RDF site</title><link>https://rdf.example.com/</link>
    <dc:language>de</dc:language>
  </channel>
  <item rdf:about="https://rdf.example.com/1">
    <title>Eins</title><link>https://rdf.example.com/1</link>
    <dc:date>2024-01-02T03:04:05+01:00</dc:date>
  </item>
</rdf:RDF>
"""


def test_rdf() -> None:
    feed = parse_feed(RDF, url=URL)
    assert (feed.kind, feed.language, len(feed.entries)) == ("rdf", "de", 1)
    entry = feed.entries[0]
    assert entry.link == "https://rdf.example.com/1"
    assert entry.language == "de"
    assert entry.updated == datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)


JSON_FEED_11 = """{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "JSON &amp; friends",
  "home_page_url": "https://json.example.com/",
  "language": "pt-BR",
  "items": [
    {
      "id": "  1  ",
      "url": "/posts/1",
      "title": "Primeiro",
      "summary": "Resumo",
      "content_html": "<p>Texto <i>completo</i></p>",
      "date_published": "2024-03-01T10:00:00-03:00",
      "date_modified": "2024-03-01T14:00:00Z",
      "authors": [{"name": "Rui"}, {"url": "https://x"}, {"name": "Bia"}],
      "language": "es"
    },
    {"id": 2, "external_url": "https://elsewhere.example/story",
     "content_text": "  só\\n\\ntexto "},
    {"id": "", "title": "no id", "date_published": "Mon, 04 Mar 2024 10:00:00 GMT"},
    "not an item"
  ]
}""".encode()


def test_json_feed_1_1() -> None:
    feed = parse_feed(JSON_FEED_11, url="https://json.example.com/feed.json")
    assert (feed.kind, feed.title, feed.link, feed.language) == (
        "json",
        "JSON & friends",
        "https://json.example.com/",
        "pt",
    )
    assert feed.warning == "skipped 1 JSON Feed items that are not objects"
    first, second, third = feed.entries
    assert first == Entry(
        guid="1",
        link="https://json.example.com/posts/1",
        title="Primeiro",
        summary="Resumo",
        content="Texto completo",
        author="Rui, Bia",
        published=datetime(2024, 3, 1, 13, 0, tzinfo=UTC),
        updated=datetime(2024, 3, 1, 14, 0, tzinfo=UTC),
        language="es",
    )
    assert (second.guid, second.link, second.content, second.language) == (
        "2",
        "https://elsewhere.example/story",
        "só\ntexto",
        "pt",
    )
    assert third.guid is None
    assert third.published == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)  # not RFC 3339


def test_json_feed_1_0_author_and_http_version() -> None:
    body = (
        b'{"version": "http://jsonfeed.org/version/1", "title": "Old",'
        b' "items": [{"id": "a", "url": "https://o.example/a", "author": {"name": "Lee"},'
        b' "date_published": "2019-05-31"}]}'
    )
    feed = parse_feed(body, url=URL, content_type="application/json")
    entry = feed.entries[0]
    assert (entry.author, entry.published) == ("Lee", datetime(2019, 5, 31, tzinfo=UTC))


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', None, "invalid JSON"),
        (b'{"rss": {"channel": {}}}', None, 'JSON without a "version"'),
        (b"[1, 2]", "application/feed+json", 'JSON without a "version"'),
        (b"", None, "empty body"),
        (b" \r\n\t ", None, "empty body"),
        (b"<note><to>Tove</to></note>", "application/xml", "not a feed: no RSS, Atom"),
        (b"<?xml version='1.0'?>\n<unclosed", None, "not a feed: not well-formed XML"),
        (b"plain text, no markup", "text/plain", "not a feed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "image/png", "not a feed"),
        (gzip.compress(RSS), "application/rss+xml", "not a feed: gzip data"),
    ],
)
def test_documents_that_are_not_feeds(body: bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, url=URL, content_type=content_type)


HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>A news site</title>
<link rel="alternate" type="application/rss+xml" href="/feed"></head>
<body><article><h1>Story</h1></article></body></html>"""


@pytest.mark.parametrize(
    "body",
    [
        HTML_PAGE,
        b"\xef\xbb\xbf  \n<html><body>hi</body></html>",
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"'
        b' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head></html>',
    ],
)
def test_html_pages_point_to_discovery(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url=URL, content_type="text/html")
    assert "watcher feeds discover" in str(caught.value)


def test_valid_feed_without_entries_is_not_an_error() -> None:
    body = b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    feed = parse_feed(body, url=URL)
    assert (feed.title, feed.entries, feed.warning) == ("Quiet", (), None)
    atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Q</title></feed>'
    assert parse_feed(atom, url=URL).entries == ()


def test_malformed_feed_yields_entries_with_a_warning() -> None:
    body = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Broken</title>
<item><title>One</title><link>https://b.example/1</link></item>
<item><title>Two <b>bold</title><link>https://b.example/2</link></item>
</channel></rss>"""
    feed = parse_feed(body, url=URL)
    assert [e.link for e in feed.entries] == ["https://b.example/1", "https://b.example/2"]
    assert feed.warning == "not well-formed XML: mismatched tag at line 4"


def test_warning_line_is_right_without_xml_declaration() -> None:
    body = b'<rss version="2.0"><channel>\n<item><title>x</item>\n</channel></rss>'
    feed = parse_feed(body, url=URL)
    assert feed.warning == "not well-formed XML: mismatched tag at line 2"


def test_whitespace_before_xml_declaration_is_forgiven() -> None:
    feed = parse_feed(b"\n\n  " + RSS, url=URL)
    assert feed.warning is None
    assert len(feed.entries) == 3


CP1252_RSS = (
    '<?xml version="1.0" encoding="windows-1252"?>\n'
    '<rss version="2.0"><channel><title>Caf\u00e9 \u201cquotes\u201d \u2013 \u20ac5</title>'
    "<item><title>Ni\u00f1o</title><link>https://w.example/1</link></item></channel></rss>"
).encode("cp1252")


def test_windows_1252_declared_encoding() -> None:
    feed = parse_feed(CP1252_RSS, url=URL, content_type="application/rss+xml")
    assert feed.title == "Café “quotes” – €5"
    assert feed.entries[0].title == "Niño"
    assert feed.warning is None


def test_wrong_declared_encoding_is_recovered_with_a_warning() -> None:
    body = CP1252_RSS.replace(b"windows-1252", b"utf-8")
    feed = parse_feed(body, url=URL)
    assert feed.entries[0].title == "Niño"
    assert feed.warning == "document declared as utf-8, but parsed as windows-1252"


def test_http_charset_is_used_when_the_document_declares_none() -> None:
    body = "<rss version='2.0'><channel><title>Jos\u00e9</title></channel></rss>".encode("latin-1")
    feed = parse_feed(body, url=URL, content_type='text/xml; charset="ISO-8859-1"')
    assert (feed.title, feed.warning) == ("José", None)


def test_text_xml_without_charset_reads_utf8_not_ascii() -> None:
    # RFC 3023 says us-ascii here; real servers mean "whatever the document says".
    body = "<rss version='2.0'><channel><title>Jos\u00e9</title></channel></rss>".encode()
    feed = parse_feed(body, url=URL, content_type="text/xml")
    assert (feed.title, feed.warning) == ("José", None)


def test_utf16_document() -> None:
    body = '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>\u00e9t\u00e9'
    body += "</title></channel></rss>"
    assert parse_feed(body.encode("utf-16"), url=URL).title == "été"


def _item_with_date(date: str) -> bytes:
    return (
        "<rss version='2.0'><channel><title>d</title>"
        f"<item><title>x</title><pubDate>{date}</pubDate></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Sun, 17 Dec 2023 00:58:40 EST", datetime(2023, 12, 17, 5, 58, 40, tzinfo=UTC)),
        ("2024-05-06T10:11:12+02:00", datetime(2024, 5, 6, 8, 11, 12, tzinfo=UTC)),
        ("2024-05-06 10:11:12", datetime(2024, 5, 6, 10, 11, 12, tzinfo=UTC)),
        ("mié, 16 nov 2022 00:38:15 +0100", datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)),
        ("mer, 16 nov 2022 00:38:15 +0100", datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)),
        ("sábado 5 de octubre de 2024 08:00:00 -0400", datetime(2024, 10, 5, 12, tzinfo=UTC)),
        ("Tue, 10 Jun 2003 04:00:00 GMT", datetime(2003, 6, 10, 4, tzinfo=UTC)),
        ("Mon, 32 Jan 2020 00:00:00 GMT", None),
        ("yesterday-ish", None),
        ("", None),
    ],
)
def test_dates_in_odd_formats(date: str, expected: datetime | None) -> None:
    entry = parse_feed(_item_with_date(date), url=URL).entries[0]
    assert entry.published == expected
    assert entry.published is None or entry.published.tzinfo is UTC


def test_unsafe_and_missing_links_are_dropped() -> None:
    body = (
        b"<rss version='2.0'><channel><title>t</title><link>javascript:alert(1)</link>"
        b"<item><title>a</title><link>javascript:alert(1)</link></item>"
        b"<item><title>b</title><link>   </link></item></channel></rss>"
    )
    feed = parse_feed(body, url=URL)
    assert feed.link is None
    assert [e.link for e in feed.entries] == [None, None]


def test_html_to_text_drops_scripts_styles_comments_and_decodes_entities() -> None:
    html = (
        "<style>p{color:red}</style><div>caf&eacute;&#160;&#x41;<!-- hidden --></div>"
        "<ul><li>one</li><li>two</li></ul><template>t</template><p>x&lt;y</p>"
    )
    body = (
        "<rss version='2.0'><channel><title>t</title><item><title>x</title>"
        f"<description><![CDATA[{html}]]></description></item></channel></rss>"
    ).encode()
    assert parse_feed(body, url=URL).entries[0].summary == "café A\none\ntwo\nx<y"


def test_control_characters_in_broken_feeds_are_dropped() -> None:
    body = (
        b"<rss version='2.0'><channel><title>t</title><item><title>x</title>"
        b"<description>&lt;p&gt;one&lt;/p&gt;\x01tail</description></item></channel></rss>"
    )
    feed = parse_feed(body, url=URL)
    assert feed.entries[0].summary == "one\ntail"
    assert feed.warning == "not well-formed XML: not well-formed (invalid token) at line 1"


def test_the_fullest_content_wins() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry>
<title>x</title><id>1</id><updated>2024-01-01T00:00:00Z</updated>
<content type="text">short</content></entry></feed>"""
    assert parse_feed(body, url=URL).entries[0].content == "short"
    rss = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>t</title><item><title>x</title><description>teaser</description>
<content:encoded>&lt;p&gt;the whole story&lt;/p&gt;</content:encoded></item></channel></rss>"""
    entry = parse_feed(rss, url=URL).entries[0]
    assert (entry.summary, entry.content) == ("teaser", "the whole story")


# --- hostile input ----------------------------------------------------------------------------


def _billion_laughs(separator: str = "\n") -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [{separator}'
        f"{separator.join(entities)}{separator}]>\n"
        "<rss version='2.0'><channel><title>&lol9;</title>"
        "<item><title>&lol9;</title><link>https://e.example/</link></item></channel></rss>"
    )


def _quadratic_blowup() -> str:
    # One long entity, referenced many times: what feedparser's loose parser would expand.
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "{"A" * 100_000}">\n]>\n'
        f"<rss version='2.0'><channel><title>t</title><item><title>{'&a;' * 10_000}"
        "</title></item></channel></rss>"
    )


@pytest.mark.fault
@pytest.mark.parametrize(
    "body",
    [
        _billion_laughs().encode(),
        _billion_laughs(separator="").encode(),
        _billion_laughs().encode("utf-16"),
        _quadratic_blowup().encode(),
    ],
    ids=["billion-laughs", "billion-laughs-one-line", "billion-laughs-utf16", "quadratic"],
)
def test_entity_expansion_is_refused_quickly(body: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ParseError, match="entity-expansion attack"):
            parse_feed(body, url=URL)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 10.0  # refused up front; margin for a loaded machine
    assert peak < 20 * len(body) + 10_000_000


def test_short_character_entities_still_work() -> None:
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY nbsp "&#160;">
  <!ENTITY site "Example">
]>
<rss version="2.0"><channel><title>&site;&nbsp;news</title></channel></rss>"""
    feed = parse_feed(body, url=URL)
    assert (feed.title, feed.warning) == ("Example news", None)


@pytest.mark.fault
def test_oversized_body_is_refused_without_parsing() -> None:
    with pytest.raises(ParseError, match="limit"):
        parse_feed(b"<rss>" + b" " * MAX_BODY_BYTES, url=URL)


# --- process pool -----------------------------------------------------------------------------


def test_results_and_errors_cross_a_process_pool() -> None:
    feed = parse_feed(RSS, url=URL)
    assert pickle.loads(pickle.dumps(feed)) == feed
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(parse_feed, ATOM, url=URL).result() == parse_feed(ATOM, url=URL)
        with pytest.raises(ParseError, match="empty body"):
            pool.submit(parse_feed, b"", url=URL).result()


# --- the real corpus --------------------------------------------------------------------------

# Recorded with feedparser 6.0.14 (outcomes per top-level folder); update deliberately.
EXPECTED_OUTCOMES = {
    "real_news_feeds": {"entries": 220, "empty": 1, "warned": 8, "error": 82},
    "parser_conformance": {"entries": 1757, "empty": 1191, "warned": 280, "error": 613},
    "malformed": {"entries": 62, "empty": 13, "warned": 30, "error": 19},
}


def _is_feed_document(path: Path) -> bool:
    """Real feeds, not the expected-output files and web pages stored next to them."""
    if path.name.endswith(".serde.json") or "output" in path.parts:
        return False
    return path.suffix not in (".html", ".opml", ".txt")


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_every_file_parses_or_raises_parse_error() -> None:
    feeds = CORPUS / "feeds"
    if not feeds.is_dir():
        pytest.skip(f"{feeds} is not present")
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    real_documents = real_with_entries = real_entries = 0
    real_seconds = 0.0
    for path in sorted(p for p in feeds.rglob("*") if p.is_file()):
        folder = path.relative_to(feeds).parts[0]
        body = path.read_bytes()
        started = time.perf_counter()
        try:
            feed: ParsedFeed | None = parse_feed(body, url=f"https://corpus.example/{path.name}")
        except ParseError:
            feed = None
        if folder == "real_news_feeds":
            real_seconds += time.perf_counter() - started
        outcomes[folder][_outcome(feed)] += 1
        if feed is not None and feed.warning:
            outcomes[folder]["warned"] += 1
        if folder == "real_news_feeds" and _is_feed_document(path):
            real_documents += 1
            real_with_entries += bool(feed and feed.entries)
            real_entries += len(feed.entries) if feed else 0
    rate = real_entries / real_seconds
    print(f"\noutcomes: {dict(outcomes)}")
    print(f"real_news_feeds: {real_entries} entries in {real_seconds:.2f} s = {rate:.0f}/s")
    assert {folder: dict(counts) for folder, counts in outcomes.items()} == EXPECTED_OUTCOMES
    assert real_with_entries >= 0.9 * real_documents


def _outcome(feed: ParsedFeed | None) -> str:
    if feed is None:
        return "error"
    return "entries" if feed.entries else "empty"


# --- fuzzing ----------------------------------------------------------------------------------


@pytest.mark.fault
@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from([RSS, ATOM, RDF, JSON_FEED_11, CP1252_RSS, HTML_PAGE]),
    cut=st.integers(min_value=0, max_value=4000),
    junk=st.binary(max_size=40),
    content_type=st.sampled_from([None, "text/xml", "application/json", "text/html; charset=x"]),
)
def test_damaged_documents_parse_or_raise_parse_error(
    seed: bytes, cut: int, junk: bytes, content_type: str | None
) -> None:
    body = seed[:cut] + junk + seed[cut + len(junk) :]
    try:
        feed = parse_feed(body, url=URL, content_type=content_type)
    except ParseError as exc:
        assert str(exc)
        return
    assert all(isinstance(entry, Entry) for entry in feed.entries)
    assert all(e.link is None or e.link.startswith(("http://", "https://")) for e in feed.entries)


def test_a_huge_entry_summary_is_cut_and_the_cut_recorded() -> None:
    words = "word " * 900_000  # 4.5 MB of summary in one item
    body = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>big</title>"
        f"<link>http://127.0.0.1/big</link><description>{words}</description></item>"
        "</channel></rss>"
    ).encode()
    parsed = parse_feed(body, url="http://127.0.0.1/feed.xml")
    assert len(parsed.entries[0].summary) <= MAX_ENTRY_TEXT
    assert parsed.warning is not None


def test_a_huge_json_feed_item_is_cut_like_rss() -> None:
    item = {
        "id": "1",
        "url": "http://127.0.0.1/big",
        "content_html": "<p>" + "word " * 300_000 + "</p>",
        "summary": "word " * 100_000,
    }
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [item]}
    ).encode()
    parsed = parse_feed(body, url="http://127.0.0.1/feed.json")
    entry = parsed.entries[0]
    assert len(entry.content) <= MAX_ENTRY_TEXT and len(entry.summary) <= MAX_ENTRY_TEXT
    assert parsed.warning is not None and "cut" in parsed.warning


def test_markup_that_shrinks_under_the_cap_is_not_reported_cut() -> None:
    markup = "<b>x</b> " * 40_000  # 360,000 characters of markup, 80,000 of text
    body = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>m</title>"
        f"<link>http://127.0.0.1/m</link><description>{html.escape(markup)}</description></item>"
        "</channel></rss>"
    ).encode()
    parsed = parse_feed(body, url="http://127.0.0.1/feed.xml")
    assert parsed.warning is None


def test_html_text_that_is_a_bodiless_document_is_read_as_text() -> None:
    """lxml.html asserts on a fragment that looks like a document and has no body ("<html>");
    a feed's field holding just that must not crash the parse (hypothesis found it)."""
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b'<title type="html">&lt;html&gt;</title><entry><id>1</id>'
        b'<title type="html">&lt;HTML&gt;</title><link href="https://e.example/1"/></entry></feed>'
    )
    feed = parse_feed(body, url="https://e.example/feed", content_type=None)
    assert feed.title == "" and [e.title for e in feed.entries] == [""]
