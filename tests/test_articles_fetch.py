"""Tests for watcher.articles.fetch, against a real HTTP server on loopback."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

import pytest
from httpserver import HttpServer

from watcher.articles.extract import extract_page
from watcher.articles.fetch import fetch_article
from watcher.clock import FakeClock
from watcher.config import ArticlesSettings, HttpSettings
from watcher.http import HttpClient

ON = ArticlesSettings()

# A synthetic page, written for these tests.
PAGE = (
    "<html><head><title>Bridge repairs finish early</title></head><body><article>"
    "<h1>Bridge repairs finish early</h1>"
    "<p>Work on the old stone bridge over the river ended two weeks ahead of schedule, "
    "the town council said on Tuesday, and traffic will return on Monday.</p>"
    "<p>Señora Peña, who runs the bakery by the bridge, said the detour had cost her a "
    "third of her morning customers since the autumn.</p>"
    "</article></body></html>"
)


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    settings = HttpSettings(
        connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0, allow_private_addresses=True
    )
    async with HttpClient(settings, clock=FakeClock()) as http:
        yield http


async def test_html_page_is_returned_as_bytes(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/a", PAGE, headers={"Content-Type": "text/html"})

    html, reason = await fetch_article(client, url=url, settings=ON)

    assert (html, reason) == (PAGE.encode(), "")
    request = http_server.requests_to("/a")[0]
    assert (request.header("accept") or "").startswith("text/html")


async def test_page_without_content_type_is_extracted(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.route("/bare", PAGE)
    html, reason = await fetch_article(client, url=url, settings=ON)
    assert reason == "" and html is not None
    extracted = extract_page(html, url=url)
    assert extracted is not None and "Señora Peña" in extracted.text


async def test_xhtml_page_is_accepted(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/x", PAGE, headers={"Content-Type": "application/xhtml+xml"})
    html, reason = await fetch_article(client, url=url, settings=ON)
    assert html is not None and reason == ""


async def test_header_charset_is_carried_in_the_bytes(
    http_server: HttpServer, client: HttpClient
) -> None:
    # The header outranks the page's own (here wrong) <meta> charset, as in browsers.
    body = PAGE.replace("<head>", "<head><meta charset='koi8-r'>").encode("windows-1252")
    headers = {"Content-Type": "text/html; charset=ISO-8859-1"}
    url = http_server.route("/latin", body, headers=headers)

    html, reason = await fetch_article(client, url=url, settings=ON)

    assert reason == "" and html is not None and html.startswith(codecs.BOM_UTF8)
    extracted = extract_page(html, url=url)
    assert extracted is not None and "Señora Peña" in extracted.text


async def test_utf8_body_is_left_alone(http_server: HttpServer, client: HttpClient) -> None:
    headers = {"Content-Type": "text/html; charset=iso-8859-1"}  # a stale header
    url = http_server.route("/utf8", PAGE.encode(), headers=headers)
    assert await fetch_article(client, url=url, settings=ON) == (PAGE.encode(), "")


async def test_wrong_header_charset_defers_to_the_page(
    http_server: HttpServer, client: HttpClient
) -> None:
    body = PAGE.replace("<head>", "<head><meta charset='windows-1252'>").encode("cp1252")
    headers = {"Content-Type": "text/html; charset=utf-8"}
    url = http_server.route("/mislabelled", body, headers=headers)

    html, reason = await fetch_article(client, url=url, settings=ON)

    assert (html, reason) == (body, "")
    extracted = extract_page(html, url=url)
    assert extracted is not None and "Señora Peña" in extracted.text


async def test_http_error_is_a_reason(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/gone", "no", status=404, headers={"Content-Type": "text/html"})
    assert await fetch_article(client, url=url, settings=ON) == (
        None,
        "fetch failed: HTTP 404 Not Found",
    )


async def test_network_error_is_a_reason(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.url("/a")
    http_server.close()
    html, reason = await fetch_article(client, url=url, settings=ON)
    assert html is None and reason.startswith("fetch failed: ")


async def test_pdf_is_a_reason(http_server: HttpServer, client: HttpClient) -> None:
    headers = {"Content-Type": "application/pdf"}
    url = http_server.route("/report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", headers=headers)
    assert await fetch_article(client, url=url, settings=ON) == (
        None,
        "not an HTML page (application/pdf)",
    )


async def test_empty_page_is_a_reason(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/empty", b"  \n", headers={"Content-Type": "text/html"})
    assert await fetch_article(client, url=url, settings=ON) == (None, "the page is empty")


async def test_fetching_off_makes_no_request(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/a", PAGE)
    html, reason = await fetch_article(client, url=url, settings=ArticlesSettings(fetch=False))
    assert (html, reason) == (None, "page fetching is off (articles.fetch = false)")
    assert http_server.hits("/a") == 0
