"""The shared HTTP client against a real loopback server: success, failures, limits, guard."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import brotli  # type: ignore[import-untyped]
import pytest
from httpserver import HttpServer, RecordedRequest, Reply, compress
from smtpserver import server_tls_context

from watcher import __version__
from watcher.clock import FakeClock
from watcher.config import HttpSettings
from watcher.errors import FetchError
from watcher.http import HttpClient, Response, _is_public, cache_max_age, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
MB = 1 << 20


def _settings(**overrides: Any) -> HttpSettings:
    values: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
        "allow_private_addresses": True,
    }
    return HttpSettings(**(values | overrides))


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(_settings(), clock=FakeClock(NOW)) as fetcher:
        yield fetcher


async def _loopback_only(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A tripwire on every request sent: the guard tests must never send traffic off-host.

    Should the guard regress, a request to 10.x would otherwise really leave this machine.
    """
    if request.url.host not in ("127.0.0.1", "localhost"):
        raise AssertionError(f"the guard let a request through to {request.url}")
    return await handler(request)


async def _failure(
    url: str, middlewares: Sequence[aiohttp.ClientMiddlewareType] = (), **overrides: Any
) -> FetchError:
    settings = _settings(**overrides)
    async with HttpClient(settings, middlewares=middlewares, clock=FakeClock(NOW)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(url)
    return caught.value


# --- success and conditional GET ---------------------------------------------------------------


async def test_200_returns_body_headers_and_final_url(
    http_server: HttpServer, client: HttpClient
) -> None:
    headers = {"Content-Type": "Application/RSS+xml; charset=utf-8", "X-Feed": "yes"}
    url = http_server.route("/feed.xml", FEED, headers=headers)
    response = await client.get(url)
    assert (response.status, response.content, response.url) == (200, FEED, url)
    assert response.content_type == "application/rss+xml"
    assert response.headers["x-feed"] == "yes"
    assert response.redirects == ()
    assert 0 < response.elapsed < 5


async def test_sends_user_agent_accept_encoding_and_accept(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.route("/feed.xml", FEED)
    await client.get(url, accept="application/rss+xml")
    (request,) = http_server.requests
    assert (
        request.header("user-agent")
        == f"watcher/{__version__} (+https://github.com/watcher-news/watcher)"
    )
    assert request.header("accept-encoding") == "gzip, deflate, br"
    assert request.header("accept") == "application/rss+xml"
    assert request.header("if-none-match") is None


async def test_etag_round_trip_gives_304_with_empty_content(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.route("/feed.xml", FEED, etag='"v1"')
    first = await client.get(url)
    assert (first.status, first.etag) == (200, '"v1"')
    second = await client.get(url, etag=first.etag)
    assert (second.status, second.content, second.etag) == (304, b"", '"v1"')
    assert http_server.requests[-1].header("if-none-match") == '"v1"'


async def test_last_modified_round_trip_gives_304(
    http_server: HttpServer, client: HttpClient
) -> None:
    stamp = "Sun, 01 Mar 2026 10:00:00 GMT"
    url = http_server.route("/feed.xml", FEED, last_modified=stamp)
    first = await client.get(url)
    assert first.last_modified == stamp
    second = await client.get(url, last_modified=stamp)
    assert (second.status, second.content) == (304, b"")
    assert http_server.requests[-1].header("if-modified-since") == stamp


async def test_stale_etag_gets_the_new_body(http_server: HttpServer, client: HttpClient) -> None:
    url = http_server.route("/feed.xml", FEED, etag='"v2"')
    response = await client.get(url, etag='"v1"')
    assert (response.status, response.content) == (200, FEED)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
async def test_compressed_bodies_are_decoded(
    http_server: HttpServer, client: HttpClient, encoding: str
) -> None:
    # Larger than one decompression step, so the bounded loops run more than once.
    body = b"".join(b"<item>story %d</item>\n" % i for i in range(40_000))
    url = http_server.route("/feed.xml", body, encoding=encoding)
    response = await client.get(url)
    assert response.content == body


async def test_stacked_content_codings_are_undone_in_reverse(
    http_server: HttpServer, client: HttpClient
) -> None:
    body = compress(compress(FEED, "gzip"), "br")
    url = http_server.route("/feed.xml", body, headers={"Content-Encoding": "gzip, br"})
    assert (await client.get(url)).content == FEED


async def test_unknown_content_encoding_is_a_fetch_error(http_server: HttpServer) -> None:
    url = http_server.route("/feed.xml", FEED, headers={"Content-Encoding": "zstd"})
    assert (await _failure(url)).reason == "unsupported Content-Encoding 'zstd'"


def test_response_headers_are_case_insensitive_even_as_a_plain_dict() -> None:
    headers = {"ETag": '"x"', "Last-Modified": "Sun, 01 Mar 2026 10:00:00 GMT"}
    response = Response("http://a.test/", 200, headers, b"", 0.1)
    assert response.etag == '"x"'
    assert response.last_modified == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert response.content_type is None


# --- HTTP errors and Retry-After -----------------------------------------------------------------


async def test_429_with_retry_after_seconds(http_server: HttpServer) -> None:
    error = await _failure(http_server.retry_after("/feed", "120"))
    assert error.retry_after == 120
    assert error.reason == "HTTP 429 Too Many Requests (retry after 120 s)"


async def test_503_with_retry_after_http_date(http_server: HttpServer) -> None:
    when = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    error = await _failure(http_server.retry_after("/feed", when, status=503))
    assert error.retry_after == 90
    assert error.reason == "HTTP 503 Service Unavailable (retry after 90 s)"


async def test_429_with_garbage_retry_after_has_none(http_server: HttpServer) -> None:
    error = await _failure(http_server.retry_after("/feed", "soon"))
    assert (error.retry_after, error.reason) == (None, "HTTP 429 Too Many Requests")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "HTTP 500 Internal Server Error"), (404, "HTTP 404 Not Found"), (599, "HTTP 599")],
)
async def test_error_statuses_become_reasons(
    http_server: HttpServer, status: int, reason: str
) -> None:
    url = http_server.route("/feed", b"oops", status=status, headers={"Retry-After": "5"})
    error = await _failure(url)
    assert (error.url, error.reason, error.retry_after) == (url, reason, None)


# --- redirects ----------------------------------------------------------------------------------


async def test_redirect_chain_within_limit_is_followed(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.redirect_chain("/r", 5)  # the default limit is exactly 5
    response = await client.get(url)
    assert response.content == b"end of chain"
    assert response.url == http_server.url("/r/5")
    assert response.redirects == (url, *(http_server.url(f"/r/{i}") for i in range(1, 5)))


async def test_redirect_chain_beyond_limit_fails(http_server: HttpServer) -> None:
    error = await _failure(http_server.redirect_chain("/r", 3), max_redirects=2)
    assert error.reason == "too many redirects (more than 2)"
    assert http_server.hits("/r/3") == 0


async def test_redirect_to_itself_is_a_loop(http_server: HttpServer) -> None:
    url = http_server.redirect_loop("/loop")
    assert (await _failure(url)).reason == f"redirect loop at {url}"


async def test_two_step_redirect_loop_is_detected(http_server: HttpServer) -> None:
    http_server.redirect("/a", "/b", status=301)
    http_server.redirect("/b", http_server.url("/a"), status=307)
    error = await _failure(http_server.url("/a"))
    assert error.reason == f"redirect loop at {http_server.url('/a')}"


async def test_relative_redirect_and_conditional_headers_carry_over(
    http_server: HttpServer, client: HttpClient
) -> None:
    http_server.redirect("/old/feed", "../new/feed#top", status=308)
    http_server.route("/new/feed", FEED, etag='"n"')
    response = await client.get(http_server.url("/old/feed"), etag='"n"')
    assert (response.status, response.url) == (304, http_server.url("/new/feed"))


async def test_redirect_to_another_scheme_is_refused(http_server: HttpServer) -> None:
    url = http_server.redirect("/r", "ftp://files.example/feed")
    assert (await _failure(url)).reason == "redirect to unsupported URL ftp://files.example/feed"


async def test_redirect_without_location_fails(http_server: HttpServer) -> None:
    url = http_server.route("/r", b"", status=302)
    assert (await _failure(url)).reason == "HTTP 302 Found without a Location header"


# --- time and size limits -----------------------------------------------------------------------


async def test_slow_drip_is_cut_at_total_timeout(http_server: HttpServer) -> None:
    url = http_server.drip("/drip", size=100, every=0.2)  # never trips the read timeout
    started = time.monotonic()
    error = await _failure(url, total_timeout=1.0, read_timeout=2.0)
    assert error.reason == "timed out after 1 s (total)"
    assert time.monotonic() - started < 2.0


async def test_total_timeout_spans_redirects(http_server: HttpServer) -> None:
    http_server.slow("/slow", 0.6)

    def slow_redirect(_: RecordedRequest) -> Reply:
        http_server.sleep(0.6)
        return Reply(302, {"Location": "/slow"})

    http_server.route_handler("/r1", slow_redirect)
    error = await _failure(http_server.url("/r1"), total_timeout=1.0)
    assert error.reason == "timed out after 1 s (total)"
    assert error.url == http_server.url("/slow")


async def test_silent_server_trips_read_timeout(http_server: HttpServer) -> None:
    url = http_server.slow("/slow", 3.0)
    error = await _failure(url, read_timeout=0.5)
    assert error.reason == "read timed out after 0.5 s"


@pytest.mark.parametrize("content_length", [True, False])
async def test_oversized_body_is_aborted(http_server: HttpServer, content_length: bool) -> None:
    url = http_server.huge("/big", 50 * MB, content_length=content_length)
    started = time.monotonic()
    error = await _failure(url, max_bytes=1_000_000)
    assert error.reason == "response larger than 1000000 bytes"
    assert time.monotonic() - started < 2.0


async def test_max_bytes_argument_overrides_settings(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.route("/feed", b"x" * 1000)
    assert len((await client.get(url, max_bytes=1000)).content) == 1000
    with pytest.raises(FetchError, match="response larger than 999 bytes"):
        await client.get(url, max_bytes=999)


def _brotli_bomb(expanded: int) -> bytes:
    packer = brotli.Compressor(quality=1)
    zeros = bytes(MB)
    return bytes(b"".join(packer.process(zeros) for _ in range(expanded // MB)) + packer.finish())


@pytest.mark.parametrize("kind", ["gzip", "br"])
async def test_decompression_bomb_aborts_quickly_with_bounded_memory(
    http_server: HttpServer, kind: str
) -> None:
    if kind == "gzip":
        url = http_server.gzip_bomb("/bomb", expanded=1 << 30)  # ~1 MB inflating to 1 GiB
    else:
        headers = {"Content-Encoding": "br"}
        url = http_server.route("/bomb", _brotli_bomb(256 * MB), headers=headers)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        started = time.monotonic()
        error = await _failure(url)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert error.reason == "response larger than 5000000 bytes"
    assert peak < 50 * MB
    assert elapsed < 3.0


async def test_connection_closed_mid_body_is_a_fetch_error(http_server: HttpServer) -> None:
    error = await _failure(http_server.close_mid_body("/cut"))
    assert error.reason.startswith("broken response:")


async def test_short_body_for_content_length_is_a_fetch_error(http_server: HttpServer) -> None:
    error = await _failure(http_server.wrong_length("/short", declared=1000))
    assert error.reason.startswith("broken response:")


# --- connection failures and invalid URLs -------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused() -> None:
    error = await _failure(f"http://127.0.0.1:{_closed_port()}/feed")
    assert error.reason == "connection refused"


async def test_tls_failure_is_reported(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED).replace("http://", "https://")
    error = await _failure(url)
    assert error.reason.startswith("TLS error: ")


async def test_untrusted_certificate_is_a_tls_error(tls_certificate: tuple[Path, Path]) -> None:
    with HttpServer(tls=server_tls_context(*tls_certificate)) as server:
        url = server.route("/feed", FEED)
        error = await _failure(url)
    assert url.startswith("https://")
    assert error.reason == "TLS error: certificate verify failed: self-signed certificate"


@pytest.mark.parametrize("guarded", [False, True])
async def test_dns_failure_names_the_host(guarded: bool) -> None:
    error = await _failure("http://no-such-host.invalid/feed", allow_private_addresses=not guarded)
    assert error.reason == "DNS lookup failed for host no-such-host.invalid"


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/feed", "http:///feed", ""])
async def test_invalid_urls_are_fetch_errors(url: str) -> None:
    error = await _failure(url)
    assert error.reason.startswith(f"invalid URL {url!r}")


# --- the private-address guard ------------------------------------------------------------------


async def test_loopback_is_refused_by_default(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED)
    error = await _failure(url, allow_private_addresses=False)
    assert error.reason == (
        "refused: 127.0.0.1 is a private address (set http.allow_private_addresses = true to allow)"
    )
    assert http_server.hits("/feed") == 0


async def test_hostname_resolving_to_loopback_is_refused(http_server: HttpServer) -> None:
    http_server.route("/feed", FEED)
    error = await _failure(
        f"http://localhost:{http_server.port}/feed", allow_private_addresses=False
    )
    assert error.reason.startswith("refused: localhost resolves to private address ")
    assert http_server.hits("/feed") == 0


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:10.0.0.1]", "0.0.0.0", "[fe80::1]"]
)
async def test_private_literals_are_refused_before_connecting(host: str) -> None:
    error = await _failure(
        f"http://{host}/feed", middlewares=[_loopback_only], allow_private_addresses=False
    )
    assert error.reason.startswith(f"refused: {host.strip('[]')} is a private address")


async def _public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]  # what a real resolver might say about a public site


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/inside", "http://10.0.0.1/inside"])
async def test_redirect_from_public_to_private_is_refused(
    http_server: HttpServer, target: str
) -> None:
    # "localhost" passes the guard via the injected resolver but still reaches this server.
    http_server.redirect("/hop", target.format(port=http_server.port))
    http_server.route("/inside", b"secret")
    settings = _settings(allow_private_addresses=False)
    async with HttpClient(settings, middlewares=[_loopback_only], resolver=_public) as fetcher:
        with pytest.raises(FetchError, match=r"^.*: refused: .* is a private address") as caught:
            await fetcher.get(f"http://localhost:{http_server.port}/hop")
    assert caught.value.url == target.format(port=http_server.port)
    assert (http_server.hits("/hop"), http_server.hits("/inside")) == (1, 0)


async def test_public_address_passes_the_guard_end_to_end(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED)
    async with HttpClient(_settings(allow_private_addresses=False), resolver=_public) as fetcher:
        response = await fetcher.get(url.replace("127.0.0.1", "localhost"))
    assert response.content == FEED


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("::ffff:93.184.216.34", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert _is_public(ipaddress.ip_address(address)) is public


# --- politeness ---------------------------------------------------------------------------------


async def test_per_host_limit_caps_concurrent_requests(http_server: HttpServer) -> None:
    url = http_server.slow("/slow", 0.2)
    async with HttpClient(_settings(max_per_host=2)) as fetcher:
        responses = await asyncio.gather(*(fetcher.get(url) for _ in range(6)))
    assert [r.content for r in responses] == [b"ok"] * 6
    assert http_server.peak_concurrency("/slow") == 2


async def test_global_limit_caps_requests_across_hosts(http_server: HttpServer) -> None:
    http_server.slow("/slow", 0.2)
    urls = [f"http://{host}:{http_server.port}/slow" for host in ("127.0.0.1", "localhost")] * 3
    async with HttpClient(_settings(max_per_host=3, max_connections=3)) as fetcher:
        await asyncio.gather(*(fetcher.get(url) for url in urls))
    assert http_server.peak_concurrency("/slow") == 3


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 01 Mar 2026 12:02:00 GMT", 120.0),
        ("Sunday, 01-Mar-26 12:00:30 GMT", 30.0),  # obsolete RFC 850 form
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # in the past: never negative
        ("Sun, 01 Mar 2026 12:00:10", 10.0),  # no zone: taken as GMT
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("9" * 400, None),
        ("٣", None),  # a non-ASCII digit
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("max-age=300", 300.0),
        ("public, max-age=60, s-maxage=600", 60.0),
        ('MAX-AGE="45", must-revalidate', 45.0),
        ('private="Set-Cookie, max-age=1", max-age=90', 90.0),
        ("s-maxage=600", None),
        ("no-store, max-age=60", None),
        ("no-cache", None),
        ("max-age=abc", None),
        ("max-age=-1", None),
        ("", None),
    ],
)
def test_cache_max_age(value: str, seconds: float | None) -> None:
    assert cache_max_age({"Cache-Control": value}) == seconds


def test_cache_max_age_without_header() -> None:
    assert cache_max_age({}) is None


# --- the test server itself ---------------------------------------------------------------------


def test_server_closes_quickly_while_a_drip_is_mid_response() -> None:
    server = HttpServer()
    url = server.drip("/drip", size=100, every=5.0)
    done = threading.Event()

    def fetch() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            urllib.request.urlopen(url, timeout=10).read()
        done.set()

    threading.Thread(target=fetch, daemon=True).start()
    while not server.hits("/drip"):
        time.sleep(0.01)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1.0
    assert done.wait(2.0)


def test_route_handler_sees_method_headers_and_body(http_server: HttpServer) -> None:
    def echo(request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return 201, {"X-Method": request.method}, request.body[::-1]

    url = http_server.route_handler("/echo", echo)
    post = urllib.request.Request(url, data=b"abc", headers={"X-Test": "1"}, method="POST")
    with urllib.request.urlopen(post, timeout=5) as reply:
        assert (reply.status, reply.headers["X-Method"], reply.read()) == (201, "POST", b"cba")
    (request,) = http_server.requests_to("/echo")
    assert request.header("X-Test") == "1"
