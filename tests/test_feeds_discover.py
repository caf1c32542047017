"""Feed discovery: <link rel="alternate"> parsing, common paths, and discovery over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpserver import HttpServer

from watcher.cli import main
from watcher.config import HttpSettings
from watcher.errors import FetchError
from watcher.feeds.discover import (
    COMMON_FEED_PATHS,
    Checked,
    candidate_urls,
    check_feeds,
    discover,
    discover_checked,
    find_feed_links,
)
from watcher.http import HttpClient

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

PAGE = b"""<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>A news site</title>
<link rel="stylesheet" type="text/css" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Main" href="/feed/">
<link rel="Alternate Home" type="application/atom+xml; charset=utf-8" href="atom.xml">
<link rel="alternate" type="application/json" href="/wp-json/wp/v2/posts/1">
<link rel="alternate" type="application/feed+json" href="https://cdn.example.net/feed.json">
<link rel="alternate" type="application/rss+xml" href="/feed/">
<link rel="alternate" type="text/html" hreflang="es" href="/es/">
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="application/rss+xml" href="http://[::1/broken">
<link rel="alternate" type="application/rss+xml">
</head><body><a href="/rss.xml" rel="alternate" type="application/rss+xml">not a link element</a>
</body></html>"""


def test_links_in_document_order_absolute_and_unique() -> None:
    assert find_feed_links(PAGE, "https://news.example.org/section/page.html") == [
        "https://news.example.org/feed/",
        "https://news.example.org/section/atom.xml",
        "https://cdn.example.net/feed.json",
    ]


def test_the_first_base_element_sets_the_base() -> None:
    page = (
        b'<html><head><base href="https://static.example.org/blog/">'
        b'<base href="https://ignored.example/">'
        b'<link rel="alternate" type="application/rss+xml" href="rss.xml"></head></html>'
    )
    assert find_feed_links(page, "https://example.org/") == [
        "https://static.example.org/blog/rss.xml"
    ]


@pytest.mark.parametrize(
    "page", [b"", b"   ", b"<!-- only a comment -->", b"\x00\xff\xfe binary", b"plain text"]
)
def test_pages_without_links(page: bytes) -> None:
    assert find_feed_links(page, "https://example.org/") == []


def test_legacy_encoded_page() -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        '<link rel="alternate" type="application/rss+xml" href="/noticias-\u00f1.xml">'
        "</head></html>"
    ).encode("latin-1")
    assert find_feed_links(page, "https://example.es/") == ["https://example.es/noticias-ñ.xml"]


def test_candidate_urls() -> None:
    assert candidate_urls("https://Example.org") == [
        "https://Example.org" + path for path in COMMON_FEED_PATHS
    ]
    in_folder = candidate_urls("https://example.org/blog/post.html?x=1")
    assert in_folder[:2] == ["https://example.org/blog/feed", "https://example.org/blog/rss"]
    assert "https://example.org/feed" in in_folder
    assert len(in_folder) == len(set(in_folder)) == 2 * len(COMMON_FEED_PATHS)
    assert candidate_urls("https://example.org/news")[0] == "https://example.org/news/feed"
    assert candidate_urls("ftp://example.org/") == []
    assert candidate_urls("not a url") == []
    assert candidate_urls("http://[::1/broken") == []


# --- over loopback, with the real HTTP client ---------------------------------------------

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>
<item><title>One</title><link>https://example.org/1</link></item></channel></rss>"""
BARE_PAGE = b"<!DOCTYPE html><html><head><title>No links</title></head><body>hi</body></html>"


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    settings = HttpSettings(
        connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0, allow_private_addresses=True
    )
    async with HttpClient(settings) as fetcher:
        yield fetcher


async def test_discover_returns_the_links_a_page_advertises(
    http_server: HttpServer, client: HttpClient
) -> None:
    page = http_server.route("/", PAGE, headers={"Content-Type": "text/html"})
    assert await discover(client, page) == [
        http_server.url("/feed/"),
        http_server.url("/atom.xml"),
        "https://cdn.example.net/feed.json",
    ]
    assert [r.route for r in http_server.requests] == ["/"]  # the links are not fetched


async def test_discover_falls_back_to_common_paths_that_parse(
    http_server: HttpServer, client: HttpClient
) -> None:
    page = http_server.route("/blog/", BARE_PAGE, headers={"Content-Type": "text/html"})
    http_server.route("/blog/rss", BARE_PAGE, headers={"Content-Type": "text/html"})
    http_server.route("/index.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    http_server.redirect("/feed", "/index.xml")
    assert await discover(client, page) == [http_server.url("/index.xml")]
    assert http_server.hits("/blog/feed") == 1  # 404: skipped


async def test_discover_accepts_a_feed_url(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/feed.xml", RSS, headers={"Content-Type": "text/xml"})
    assert await discover(client, url) == [url]


async def test_discover_finds_nothing(http_server: HttpServer, client: HttpClient) -> None:
    page = http_server.route("/", BARE_PAGE, headers={"Content-Type": "text/html"})
    assert await discover(client, page) == []


async def test_discover_raises_when_the_page_cannot_be_fetched(
    http_server: HttpServer, client: HttpClient
) -> None:
    with pytest.raises(FetchError):
        await discover(client, http_server.url("/missing"))


@pytest.mark.corpus
def test_corpus_pages_advertise_feeds() -> None:
    pages = sorted(CORPUS.glob("feeds/real_news_feeds/**/*.html"))
    if not pages:
        pytest.skip(f"no HTML pages under {CORPUS}")
    found = [find_feed_links(page.read_bytes(), "https://example.org/") for page in pages]
    assert all(link.startswith(("http://", "https://")) for links in found for link in links)
    assert sum(bool(links) for links in found) >= 0.9 * len(pages)


SITE = b"""<!DOCTYPE html><html><head><title>Site</title>
<link rel="alternate" type="application/rss+xml" href="/rss.xml">
<link rel="alternate" type="application/rss+xml" href="/comments.rss">
<link rel="alternate" type="application/atom+xml" href="/not-a-feed.xml">
</head><body>hi</body></html>"""


async def test_check_feeds_fetches_each_and_says_why_one_does_not_work(
    http_server: HttpServer, client: HttpClient
) -> None:
    page = http_server.route("/", SITE, headers={"Content-Type": "text/html"})
    http_server.route("/rss.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/not-a-feed.xml", BARE_PAGE, headers={"Content-Type": "text/html"})
    checked = await check_feeds(client, await discover(client, page))
    assert [(c.url.rsplit("/", 1)[1], c.title, bool(c.problem)) for c in checked] == [
        ("rss.xml", "Site", False),
        ("comments.rss", "", True),  # advertised, but 404
        ("not-a-feed.xml", "", True),
    ]
    assert "404" in checked[1].problem


async def test_discover_checked_fetches_only_what_discover_did_not_parse(
    http_server: HttpServer, client: HttpClient
) -> None:
    feed = http_server.route("/rss.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    assert await discover_checked(client, feed) == [Checked(feed, "Site")]
    assert http_server.hits("/rss.xml") == 1  # the URL itself, parsed once
    page = http_server.route("/", SITE, headers={"Content-Type": "text/html"})
    http_server.route("/not-a-feed.xml", BARE_PAGE, headers={"Content-Type": "text/html"})
    checked = await discover_checked(client, page)
    assert checked == await check_feeds(client, await discover(client, page))
    assert http_server.hits("/rss.xml") == 3  # a linked feed is fetched to be checked


async def test_watcher_feeds_discover_prints_titles_problems_and_configured_feeds(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = http_server.route("/", SITE, headers={"Content-Type": "text/html"})
    http_server.route("/rss.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[watcher]\ndata_dir = "data"\n[http]\nallow_private_addresses = true\n'
        f'[[feeds]]\nurl = "{http_server.url("/rss.xml")}"\nname = "Mine"\n'
    )
    assert await asyncio.to_thread(main, ["feeds", "discover", page, "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("Site  [already configured: Mine]")
    assert "not working: HTTP 404" in lines[1]
