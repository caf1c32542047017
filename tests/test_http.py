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
from watcher.errors import (
    BlockedAddress,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    NetworkError,
    TooLarge,
    TooManyRedirects,
)
from watcher.http import (
    HttpClient,
    IPAddress,
    Response,
    _is_public,
    cache_max_age,
    parse_retry_after,
)

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
    url: str,
    kind: type[FetchError] = FetchError,
    middlewares: Sequence[aiohttp.ClientMiddlewareType] = (),
    **overrides: Any,
) -> FetchError:
    """The error fetching ``url`` raises, checked to be exactly of type ``kind``."""
    settings = _settings(**overrides)
    async with HttpClient(settings, middlewares=middlewares, clock=FakeClock(NOW)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(url)
    assert type(caught.value) is kind, caught.value
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
    assert 0 < response.elapsed < 60


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
    assert "zstd" in (await _failure(url, NetworkError)).reason


def test_response_headers_are_case_insensitive_even_as_a_plain_dict() -> None:
    headers = {"ETag": '"x"', "Last-Modified": "Sun, 01 Mar 2026 10:00:00 GMT"}
    response = Response("http://a.test/", 200, headers, b"", 0.1)
    assert response.etag == '"x"'
    assert response.last_modified == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert response.content_type is None


# --- HTTP errors and Retry-After -----------------------------------------------------------------


async def test_429_with_retry_after_seconds(http_server: HttpServer) -> None:
    error = await _failure(http_server.retry_after("/feed", "120"), HttpStatusError)
    assert isinstance(error, HttpStatusError)
    assert (error.status, error.retry_after) == (429, 120)


async def test_503_with_retry_after_http_date(http_server: HttpServer) -> None:
    when = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    error = await _failure(http_server.retry_after("/feed", when, status=503), HttpStatusError)
    assert isinstance(error, HttpStatusError)
    assert (error.status, error.retry_after) == (503, 90)


async def test_429_with_garbage_retry_after_has_none(http_server: HttpServer) -> None:
    error = await _failure(http_server.retry_after("/feed", "soon"), HttpStatusError)
    assert error.retry_after is None


@pytest.mark.parametrize("status", [500, 404, 410, 599])
async def test_error_statuses_carry_the_status(http_server: HttpServer, status: int) -> None:
    url = http_server.route("/feed", b"oops", status=status, headers={"Retry-After": "5"})
    error = await _failure(url, HttpStatusError)
    assert isinstance(error, HttpStatusError)
    assert (error.url, error.status, error.retry_after) == (url, status, None)
    assert str(status) in error.reason


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
    await _failure(http_server.redirect_chain("/r", 3), TooManyRedirects, max_redirects=2)
    assert http_server.hits("/r/3") == 0


async def test_redirect_to_itself_is_a_loop(http_server: HttpServer) -> None:
    url = http_server.redirect_loop("/loop")
    assert url in (await _failure(url, TooManyRedirects)).reason


async def test_two_step_redirect_loop_is_detected(http_server: HttpServer) -> None:
    http_server.redirect("/a", "/b", status=301)
    http_server.redirect("/b", http_server.url("/a"), status=307)
    error = await _failure(http_server.url("/a"), TooManyRedirects)
    assert http_server.url("/a") in error.reason


async def test_relative_redirect_and_conditional_headers_carry_over(
    http_server: HttpServer, client: HttpClient
) -> None:
    http_server.redirect("/old/feed", "../new/feed#top", status=308)
    http_server.route("/new/feed", FEED, etag='"n"')
    response = await client.get(http_server.url("/old/feed"), etag='"n"')
    assert (response.status, response.url) == (304, http_server.url("/new/feed"))


@pytest.mark.parametrize(
    ("statuses", "moved"),
    [((301,), True), ((308, 301), True), ((302,), False), ((301, 307), False), ((), False)],
)
async def test_a_response_says_when_every_redirect_was_permanent(
    http_server: HttpServer, client: HttpClient, statuses: tuple[int, ...], moved: bool
) -> None:
    http_server.route("/hop/end", FEED)
    for i, status in enumerate(statuses):
        to = f"/hop/{i + 1}" if i + 1 < len(statuses) else "/hop/end"
        http_server.redirect(f"/hop/{i}", to, status=status)
    start = "/hop/0" if statuses else "/hop/end"
    response = await client.get(http_server.url(start))
    assert (response.url, response.moved) == (http_server.url("/hop/end"), moved)


async def test_redirect_to_another_scheme_is_refused(http_server: HttpServer) -> None:
    url = http_server.redirect("/r", "ftp://files.example/feed")
    assert "ftp://files.example/feed" in (await _failure(url, NetworkError)).reason


async def test_redirect_without_location_fails(http_server: HttpServer) -> None:
    url = http_server.route("/r", b"", status=302)
    await _failure(url, NetworkError)


# --- time and size limits -----------------------------------------------------------------------


async def test_slow_drip_is_cut_at_total_timeout(http_server: HttpServer) -> None:
    url = http_server.drip("/drip", size=100, every=0.2)  # never trips the read timeout
    started = time.monotonic()
    await _failure(url, FetchTimeout, total_timeout=1.0, read_timeout=2.0)
    assert time.monotonic() - started < 30.0  # bounded by the timeout, not by the 20 s drip


async def test_total_timeout_spans_redirects(http_server: HttpServer) -> None:
    http_server.slow("/slow", 0.6)

    def slow_redirect(_: RecordedRequest) -> Reply:
        http_server.sleep(0.6)
        return Reply(302, {"Location": "/slow"})

    http_server.route_handler("/r1", slow_redirect)
    error = await _failure(http_server.url("/r1"), FetchTimeout, total_timeout=1.0)
    assert error.url == http_server.url("/slow")


async def test_silent_server_trips_read_timeout(http_server: HttpServer) -> None:
    url = http_server.slow("/slow", 3.0)
    await _failure(url, FetchTimeout, read_timeout=0.5)


@pytest.mark.parametrize("content_length", [True, False])
async def test_oversized_body_is_aborted(http_server: HttpServer, content_length: bool) -> None:
    url = http_server.huge("/big", 50 * MB, content_length=content_length)
    started = time.monotonic()
    await _failure(url, TooLarge, max_bytes=1_000_000)
    assert time.monotonic() - started < 30.0  # stopped at the limit, not after 50 MB


async def test_max_bytes_argument_overrides_settings(
    http_server: HttpServer, client: HttpClient
) -> None:
    url = http_server.route("/feed", b"x" * 1000)
    assert len((await client.get(url, max_bytes=1000)).content) == 1000
    with pytest.raises(TooLarge):
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
        await _failure(url, TooLarge)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert peak < 50 * MB
    assert elapsed < 30.0  # generous for a loaded machine; 1 GiB would take far longer


async def test_connection_closed_mid_body_is_a_fetch_error(http_server: HttpServer) -> None:
    await _failure(http_server.close_mid_body("/cut"), NetworkError)


async def test_short_body_for_content_length_is_a_fetch_error(http_server: HttpServer) -> None:
    await _failure(http_server.wrong_length("/short", declared=1000), NetworkError)


# --- connection failures and invalid URLs -------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused() -> None:
    await _failure(f"http://127.0.0.1:{_closed_port()}/feed", NetworkError)


async def test_tls_failure_is_reported(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED).replace("http://", "https://")
    await _failure(url, NetworkError)


async def test_untrusted_certificate_is_a_tls_error(tls_certificate: tuple[Path, Path]) -> None:
    with HttpServer(tls=server_tls_context(*tls_certificate)) as server:
        url = server.route("/feed", FEED)
        error = await _failure(url, NetworkError)
    assert url.startswith("https://")
    assert "certificate" in error.reason


@pytest.mark.parametrize("guarded", [False, True])
async def test_dns_failure_names_the_host(guarded: bool) -> None:
    error = await _failure(
        "http://no-such-host.invalid/feed", NetworkError, allow_private_addresses=not guarded
    )
    assert "no-such-host.invalid" in error.reason


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/feed", "http:///feed", ""])
async def test_invalid_urls_are_fetch_errors(url: str) -> None:
    await _failure(url, FetchError)


# --- the private-address guard ------------------------------------------------------------------


async def test_loopback_is_refused_by_default(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED)
    error = await _failure(url, BlockedAddress, allow_private_addresses=False)
    assert "http.allow_private_addresses" in error.reason  # says what to do
    assert http_server.hits("/feed") == 0


async def test_hostname_resolving_to_loopback_is_refused(http_server: HttpServer) -> None:
    http_server.route("/feed", FEED)
    error = await _failure(
        f"http://localhost:{http_server.port}/feed", BlockedAddress, allow_private_addresses=False
    )
    assert "localhost" in error.reason
    assert http_server.hits("/feed") == 0


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:10.0.0.1]", "0.0.0.0", "[fe80::1]"]
)
async def test_private_literals_are_refused_before_connecting(host: str) -> None:
    error = await _failure(
        f"http://{host}/feed",
        BlockedAddress,
        middlewares=[_loopback_only],
        allow_private_addresses=False,
    )
    assert host.strip("[]") in error.reason


def _public_or_test_server(ip: IPAddress) -> bool:
    """The guard's policy in these tests: 127.0.0.1 (the test server) stands in for a public
    site; every other private address is refused as usual."""
    return ip == ipaddress.ip_address("127.0.0.1") or _is_public(ip)


async def _loopback_dns(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/inside", "http://10.0.0.1/inside"])
async def test_redirect_from_public_to_private_is_refused(
    http_server: HttpServer, target: str
) -> None:
    http_server.redirect("/hop", target.format(port=http_server.port))
    http_server.route("/inside", b"secret")
    settings = _settings(allow_private_addresses=False)
    async with HttpClient(
        settings, middlewares=[_loopback_only], allowed=_public_or_test_server
    ) as fetcher:
        with pytest.raises(BlockedAddress) as caught:
            await fetcher.get(f"http://localhost:{http_server.port}/hop")
    assert caught.value.url == target.format(port=http_server.port)
    assert (http_server.hits("/hop"), http_server.hits("/inside")) == (1, 0)


async def test_public_address_passes_the_guard_end_to_end(http_server: HttpServer) -> None:
    url = http_server.route("/feed", FEED)
    settings = _settings(allow_private_addresses=False)
    async with HttpClient(settings, allowed=_public_or_test_server) as fetcher:
        response = await fetcher.get(url.replace("127.0.0.1", "localhost"))
    assert response.content == FEED


async def test_connection_goes_to_the_checked_address_not_a_second_lookup(
    http_server: HttpServer,
) -> None:
    """DNS rebinding: a name that answers a public address to the check and a private one
    to the connect must not reach the private one; here the name exists only in the
    injected resolver, so any second lookup by aiohttp itself would fail the fetch."""
    url = http_server.route("/feed", FEED)
    answers = iter([["127.0.0.1"]] + [["10.0.0.1"]] * 10)
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    settings = _settings(allow_private_addresses=False)
    async with HttpClient(settings, resolver=rebinding, allowed=_public_or_test_server) as fetcher:
        response = await fetcher.get(url.replace("127.0.0.1", "rebind.invalid"))
        with pytest.raises(BlockedAddress):  # the next request sees the new answer, refused
            await fetcher.get(url.replace("127.0.0.1", "rebind.invalid"))
    assert response.content == FEED
    assert calls == ["rebind.invalid", "rebind.invalid"]  # one lookup per request
    assert http_server.hits("/feed") == 1


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


async def test_two_ports_of_one_address_have_separate_per_host_limits() -> None:
    """With max_per_host = 1, the first server answers only once the second has a request:
    a limit shared by the two ports would never let that happen (the fetch times out)."""
    second_busy = threading.Event()

    def first_handler(_: RecordedRequest) -> Reply:
        second_busy.wait(30)
        return Reply(200, {}, b"first")

    def second_handler(_: RecordedRequest) -> Reply:
        second_busy.set()
        return Reply(200, {}, b"second")

    with HttpServer() as first, HttpServer() as second:
        urls = [
            first.route_handler("/a", first_handler),
            second.route_handler("/b", second_handler),
        ]
        async with HttpClient(_settings(max_per_host=1, total_timeout=20.0)) as fetcher:
            responses = await asyncio.gather(*(fetcher.get(url) for url in urls))
    assert [r.content for r in responses] == [b"first", b"second"]


async def test_localhost_and_127_0_0_1_share_one_per_host_limit(http_server: HttpServer) -> None:
    url = http_server.slow("/slow", 0.3)
    urls = [url, url.replace("127.0.0.1", "localhost")] * 2
    async with HttpClient(_settings(max_per_host=1), resolver=_loopback_dns) as fetcher:
        await asyncio.gather(*(fetcher.get(u) for u in urls))
    assert http_server.peak_concurrency("/slow") == 1


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
    deadline = time.monotonic() + 60
    while not server.hits("/drip") and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 4.0  # before the drip's next byte (5 s): cut, not waited
    assert done.wait(60)


def test_route_handler_sees_method_headers_and_body(http_server: HttpServer) -> None:
    def echo(request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return 201, {"X-Method": request.method}, request.body[::-1]

    url = http_server.route_handler("/echo", echo)
    post = urllib.request.Request(url, data=b"abc", headers={"X-Test": "1"}, method="POST")
    with urllib.request.urlopen(post, timeout=60) as reply:
        assert (reply.status, reply.headers["X-Method"], reply.read()) == (201, "POST", b"cba")
    (request,) = http_server.requests_to("/echo")
    assert request.header("X-Test") == "1"
