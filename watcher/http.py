"""The one shared async HTTP client: timeouts, size cap, redirects, IP guard, conditional GET."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Protocol, Self

import brotli  # type: ignore[import-untyped]
import httpx

from watcher import __version__
from watcher.clock import Clock, SystemClock
from watcher.config import HttpSettings
from watcher.errors import FetchError

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP addresses``: how the private-address guard sees DNS."""

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Decoded bytes produced per decompression step: what bounds memory against decompression bombs.
_STEP = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_ACCEPT_ENCODING = "gzip, deflate, br"
_PRIVATE_HINT = "(set http.allow_private_addresses = true to allow)"

# Everything the network, TLS, httpx or a decompressor can throw; all become FetchError.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    OSError,
    ValueError,
    zlib.error,
    brotli.error,
)


@dataclass(frozen=True)
class Response:
    """A complete 2xx response with its body decoded, or a 304 with an empty body."""

    url: str  # the final URL, after redirects
    status: int  # 200..299 or 304
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
    content: bytes  # decompressed; b"" for 304
    elapsed: float  # seconds spent fetching, all hops, not counting waits for a free slot
    redirects: tuple[str, ...] = ()  # the URLs visited before ``url``

    @property
    def etag(self) -> str | None:
        return _header(self.headers, "etag")

    @property
    def last_modified(self) -> str | None:
        return _header(self.headers, "last-modified")

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters (the charset is in ``headers``)."""
        value = _header(self.headers, "content-type")
        media = value.split(";", 1)[0].strip().lower() if value else ""
        return media or None


class HttpClient:
    """Fetches URLs politely and defensively; share one per process across tasks.

    ``resolver`` replaces DNS for the private-address guard only (tests use it).
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self._resolve: Resolver = resolver or _getaddrinfo
        self._slots = asyncio.Semaphore(settings.max_connections)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._client = _make_client(settings, transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """GET ``url``, following redirects; every failure is a FetchError with a short reason.

        The FetchError's ``url`` is the one whose fetch failed: after redirects, the last hop.
        """
        job = _Job(
            headers=_request_headers(etag, last_modified, accept),
            limit=self._settings.max_bytes if max_bytes is None else max_bytes,
            total=self._settings.total_timeout,
        )
        visited: list[str] = []
        current = _parse_url(url)
        while True:
            hop = await self._hop(current, job)
            if hop.location is None:
                return hop.response(str(current), job.spent, tuple(visited))
            visited.append(str(current))
            current = _next_hop(hop.location, visited, self._settings.max_redirects)

    async def _guard(self, url: httpx.URL) -> None:
        if self._settings.allow_private_addresses:
            return
        host = url.raw_host.decode("ascii")
        for ip in await self._addresses(url, host):
            if not _is_public(ip):
                raise FetchError(str(url), _refusal(host, ip))

    async def _addresses(self, url: httpx.URL, host: str) -> list[_IPAddress]:
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            return [ipaddress.ip_address(a) for a in await self._resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchError(str(url), f"DNS lookup failed for host {host}") from exc

    async def _hop(self, url: httpx.URL, job: _Job) -> _Hop:
        """One request/response exchange, inside the politeness slots and the total deadline."""
        async with self._slot(url.host):
            started = time.monotonic()
            deadline = asyncio.timeout(job.total - job.spent)
            try:
                async with deadline:
                    await self._guard(url)
                    return await self._exchange(url, job)
            except _NETWORK_ERRORS as exc:
                reason = _describe(exc, self._settings, url.host, total=deadline.expired())
                raise FetchError(str(url), reason) from exc
            finally:
                job.spent += time.monotonic() - started

    @asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        # Per host first: a task queued behind a slow host must not hold a global slot.
        per_host = self._host_slots.get(host)
        if per_host is None:
            per_host = self._host_slots[host] = asyncio.Semaphore(self._settings.max_per_host)
        async with per_host, self._slots:
            yield

    async def _exchange(self, url: httpx.URL, job: _Job) -> _Hop:
        request = self._client.build_request("GET", url, headers=job.headers)
        response = await self._client.send(request, stream=True)
        try:
            return await self._settle(response, job.limit)
        finally:
            await response.aclose()

    async def _settle(self, response: httpx.Response, limit: int) -> _Hop:
        status = response.status_code
        if status in _REDIRECT_STATUSES:
            return _Hop(status, response.headers, b"", _location(response))
        if status == 304:
            return _Hop(status, response.headers, b"")
        if not 200 <= status < 300:
            raise self._status_error(response)
        return _Hop(status, response.headers, await _read_body(response, limit))

    def _status_error(self, response: httpx.Response) -> FetchError:
        status = response.status_code
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        reason = _status_reason(status, retry_after)
        return FetchError(str(response.url), reason, retry_after=retry_after)


@dataclass
class _Job:
    """One ``get`` call's request headers, size limit and time budget across its hops."""

    headers: dict[str, str]
    limit: int
    total: float
    spent: float = 0.0


@dataclass(frozen=True)
class _Hop:
    status: int
    headers: httpx.Headers
    content: bytes
    location: httpx.URL | None = None

    def response(self, url: str, elapsed: float, redirects: tuple[str, ...]) -> Response:
        return Response(url, self.status, self.headers, self.content, elapsed, redirects)


def _make_client(
    settings: HttpSettings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    user_agent = settings.user_agent.replace("{version}", __version__)
    return httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": user_agent, "Accept-Encoding": _ACCEPT_ENCODING},
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.total_timeout
        ),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        follow_redirects=False,
        # Environment proxies would connect somewhere the address guard never checked.
        trust_env=False,
    )


def _request_headers(
    etag: str | None, last_modified: str | None, accept: str | None
) -> dict[str, str]:
    wanted = {"If-None-Match": etag, "If-Modified-Since": last_modified, "Accept": accept}
    return {name: value for name, value in wanted.items() if value}


# --- URLs and redirects -----------------------------------------------------------------


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(url, f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(url, f"invalid URL {url!r}: only http:// and https:// URLs can be fetched")
    return parsed


def _location(response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        reason = f"{_status_reason(response.status_code, None)} without a Location header"
        raise FetchError(str(response.url), reason)
    # Fragments are the client's business and would defeat loop detection.
    return response.url.join(location).copy_with(fragment=None)


def _next_hop(location: httpx.URL, visited: list[str], max_redirects: int) -> httpx.URL:
    """Where a redirect leads, or FetchError for a loop, too many hops or a bad target."""
    target = str(location)
    if target in visited:
        raise FetchError(visited[-1], f"redirect loop at {target}")
    if len(visited) > max_redirects:
        raise FetchError(visited[-1], f"too many redirects (more than {max_redirects})")
    if location.scheme not in ("http", "https") or not location.host:
        raise FetchError(visited[-1], f"redirect to unsupported URL {target}")
    return location


# --- the private-address guard ----------------------------------------------------------


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip_literal(host: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_public(ip: _IPAddress) -> bool:
    """Whether ``ip`` is on the public internet, not this machine or a private network."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    special = (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
    return ip.is_global and not special


def _refusal(host: str, ip: _IPAddress) -> str:
    if _ip_literal(host) is not None:
        return f"refused: {host} is a private address {_PRIVATE_HINT}"
    return f"refused: {host} resolves to private address {ip} {_PRIVATE_HINT}"


# --- failure reasons --------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _status_reason(status: int, retry_after: float | None) -> str:
    try:
        reason = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        reason = f"HTTP {status}"
    if retry_after is not None:
        reason += f" (retry after {_seconds(retry_after)} s)"
    return reason


_Explain = Callable[[BaseException, HttpSettings, str], str]

# First match along the exception's cause chain wins, so specific kinds come first.
_EXPLANATIONS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], _Explain], ...
] = (
    (
        httpx.ConnectTimeout,
        lambda e, s, h: f"connect timed out after {_seconds(s.connect_timeout)} s",
    ),
    (httpx.ReadTimeout, lambda e, s, h: f"read timed out after {_seconds(s.read_timeout)} s"),
    (httpx.PoolTimeout, lambda e, s, h: "timed out waiting for a free connection"),
    (httpx.TimeoutException, lambda e, s, h: f"timed out: {e}"),
    (socket.gaierror, lambda e, s, h: f"DNS lookup failed for host {h}"),
    (ConnectionRefusedError, lambda e, s, h: "connection refused"),
    (ssl.SSLError, lambda e, s, h: f"TLS error: {_tls_message(e)}"),
    (ConnectionResetError, lambda e, s, h: "connection reset by the server"),
    (httpx.RemoteProtocolError, lambda e, s, h: f"broken response: {e}"),
    ((zlib.error, brotli.error), lambda e, s, h: f"could not decompress the body: {e}"),
    ((httpx.InvalidURL, httpx.UnsupportedProtocol), lambda e, s, h: f"invalid URL: {e}"),
    (httpx.LocalProtocolError, lambda e, s, h: f"invalid request: {e}"),
    (UnicodeError, lambda e, s, h: f"invalid request: {e}"),
)


def _describe(exc: BaseException, settings: HttpSettings, host: str, *, total: bool) -> str:
    """The user-facing reason for a low-level failure during one exchange."""
    if total:
        return f"timed out after {_seconds(settings.total_timeout)} s (total)"
    for kind, explain in _EXPLANATIONS:
        found = _find_cause(exc, kind)
        if found is not None:
            return explain(found, settings, host)
    return f"network error: {exc or type(exc).__name__}"


def _find_cause(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _tls_message(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return str(getattr(exc, "reason", None) or exc)


# --- bounded body decoding --------------------------------------------------------------


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _ZlibDecoder:
    """gzip or deflate, inflating at most ``_STEP`` bytes at a time."""

    def __init__(self, wbits: int, *, sniff_raw: bool = False) -> None:
        self._inflater = zlib.decompressobj(wbits)
        self._sniff_raw = sniff_raw

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._sniff_raw and data:
            # Some servers send headerless (raw) deflate for "deflate", as browsers tolerate.
            self._sniff_raw = False
            if not _has_zlib_header(data):
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._drain(data)

    def _drain(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._inflater.decompress(data, _STEP)
            if out:
                yield out
            data = self._inflater.unconsumed_tail
            if not data and len(out) < _STEP:
                return

    def flush(self) -> Iterator[bytes]:
        yield from self._drain(b"")
        if tail := self._inflater.flush():
            yield tail


def _has_zlib_header(data: bytes) -> bool:
    return len(data) < 2 or (data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0)


class _BrotliDecoder:
    """brotli, producing at most about ``_STEP`` bytes per call."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        out: bytes = self._decompressor.process(data, output_buffer_limit=_STEP)
        if out:
            yield out
        while not self._decompressor.can_accept_more_data():
            out = self._decompressor.process(b"", output_buffer_limit=_STEP)
            if out:
                yield out

    def flush(self) -> Iterator[bytes]:
        while out := self._decompressor.process(b"", output_buffer_limit=_STEP):
            yield out


class _Chain:
    """Content codings undone in order, each step's output fed piecewise to the next."""

    def __init__(self, decoders: list[_Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, [data])

    def flush(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            yield from self._through(index + 1, decoder.flush())

    def _through(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self._decoders[index].decode(piece))


_DECODERS: dict[str, Callable[[], _Decoder]] = {
    "gzip": lambda: _ZlibDecoder(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _ZlibDecoder(16 + zlib.MAX_WBITS),
    "deflate": lambda: _ZlibDecoder(zlib.MAX_WBITS, sniff_raw=True),
    "br": _BrotliDecoder,
}


def _decoder_for(url: str, content_encoding: str | None) -> _Chain:
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    unknown = [c for c in codings if c not in _DECODERS]
    if unknown:
        raise FetchError(url, f"unsupported Content-Encoding {unknown[0]!r}")
    # Codings are listed in the order applied, so they are undone last first.
    return _Chain([_DECODERS[c]() for c in reversed(codings)])


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    url = str(response.url)
    encoding = response.headers.get("content-encoding")
    decoder = _decoder_for(url, encoding)
    if not encoding and _declared_length(response) > limit:
        raise FetchError(url, f"response larger than {limit} bytes")
    body = bytearray()
    async for raw in response.aiter_raw():
        _append(body, decoder.decode(raw), limit, url)
    _append(body, decoder.flush(), limit, url)
    return bytes(body)


def _declared_length(response: httpx.Response) -> int:
    try:
        return int(response.headers.get("content-length", "0"))
    except ValueError:
        return 0


def _append(body: bytearray, pieces: Iterator[bytes], limit: int, url: str) -> None:
    for piece in pieces:
        body += piece
        if len(body) > limit:
            raise FetchError(url, f"response larger than {limit} bytes")


# --- pure header helpers ----------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); never negative."""
    text = (value or "").strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


_DIRECTIVE = re.compile(r'\s*([^\s=,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?\s*(?:,|$)')


def _cache_directives(value: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(value):
        name, argument = match.group(1).lower(), match.group(2)
        directives.setdefault(name, argument.strip('"') if argument is not None else None)
    return directives


def cache_max_age(headers: Mapping[str, str]) -> float | None:
    """Cache-Control max-age in seconds; None when absent, malformed or no-store."""
    value = _header(headers, "cache-control")
    if not value:
        return None
    directives = _cache_directives(value)
    argument = directives.get("max-age")
    if "no-store" in directives or argument is None or not argument.isdigit():
        return None
    return float(argument)
