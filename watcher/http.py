"""The one shared async HTTP client: timeouts, size cap, redirects, IP guard, conditional GET."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import re
import socket
import ssl
import time
import zlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Protocol, Self

import aiohttp
import brotli  # type: ignore[import-untyped]
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from watcher import __version__
from watcher.clock import Clock, SystemClock
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

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP addresses``: DNS for the address guard and for the connection."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
"""Whether the guard lets a connection go to an address (default: public addresses only)."""

# Decoded bytes produced per decompression step: what bounds memory against decompression bombs.
_STEP = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_ACCEPT_ENCODING = "gzip, deflate, br"
_PRIVATE_HINT = "(set http.allow_private_addresses = true to allow)"
# Idle keep-alive connections are dropped after this long, before most servers drop them.
_KEEPALIVE = 5.0
# A status line or one header field may be this long (aiohttp's default, 8 KiB, is below
# what some CDNs send in Content-Security-Policy or Link headers).
_HEADER_LIMIT = 16 * 1024

# Everything the network, TLS, aiohttp or a decompressor can throw; all become FetchError.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    HttpProcessingError,
    OSError,  # TimeoutError included
    ValueError,
    zlib.error,
    brotli.error,
)


@dataclass(frozen=True)
class Response:
    """A complete 2xx response with its body decoded, or a 304 with an empty body."""

    url: str  # the final URL, after redirects
    status: int  # 200..299 or 304
    headers: Mapping[str, str]  # case-insensitive; a repeated field's values joined by ", "
    content: bytes  # decompressed; b"" for 304
    elapsed: float  # seconds spent fetching, all hops, not counting waits for a free slot
    redirects: tuple[str, ...] = ()  # the URLs visited before ``url``
    # Every redirect was permanent (301, 308): the resource now lives at ``url``.
    moved: bool = False

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

    A host name is resolved once per request; the guard checks those addresses and the
    connection goes to one of them (aiohttp's resolver serves the checked answer), so DNS
    cannot answer differently between the check and the connect. ``resolver`` replaces DNS
    and ``allowed`` the guard's notion of a public address (tests use both);
    ``middlewares`` wrap every request aiohttp sends (tests use one as a tripwire).
    Concurrency per host is counted by resolved address and port, not by host name.
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        middlewares: Sequence[aiohttp.ClientMiddlewareType] = (),
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        allowed: AddressPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self._resolve: Resolver = resolver or _getaddrinfo
        self._allowed: AddressPolicy = allowed or _is_public
        self._pins = _PinnedResolver()
        self._slots = asyncio.Semaphore(settings.max_connections)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._middlewares = tuple(middlewares)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

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
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """GET ``url``, following redirects; every failure is a FetchError subclass (see
        watcher.errors) with a short reason.

        The FetchError's ``url`` is the one whose fetch failed: after redirects, the last hop.
        """
        job = _Job(
            headers=_request_headers(etag, last_modified, accept),
            limit=self._settings.max_bytes if max_bytes is None else max_bytes,
            total=self._settings.total_timeout,
        )
        visited: list[str] = []
        permanent = True
        current = _parse_url(url)
        while True:
            hop = await self._hop(current, job)
            if hop.location is None:
                moved = permanent and bool(visited)
                return hop.response(str(current), job.spent, tuple(visited), moved=moved)
            visited.append(str(current))
            permanent = permanent and hop.status in _PERMANENT_REDIRECTS
            current = _next_hop(hop.location, visited, self._settings.max_redirects)

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that is running then.
        if self._closed:
            raise RuntimeError("HttpClient.get called after aclose()")
        if self._session is None:
            self._session = _make_session(self._settings, self._middlewares, self._pins)
        return self._session

    async def _checked_addresses(self, url: URL) -> list[IPAddress]:
        """The host's addresses, resolved once and checked by the guard, pinned for aiohttp."""
        host = url.raw_host or ""
        port = _port(url)
        addresses = await self._addresses(url, host, port)
        if not self._settings.allow_private_addresses:
            for ip in addresses:
                if not self._allowed(ip):
                    raise BlockedAddress(str(url), _refusal(host, ip))
        if _ip_literal(host) is None:
            self._pins.pin(host, port, addresses)
        return addresses

    async def _addresses(self, url: URL, host: str, port: int) -> list[IPAddress]:
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                found = [ipaddress.ip_address(a) for a in await self._resolve(host, port)]
        except TimeoutError as exc:
            raise FetchTimeout(str(url), f"DNS lookup timed out for host {host}") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise NetworkError(str(url), f"DNS lookup failed for host {host}") from exc
        if not found:
            raise NetworkError(str(url), f"DNS lookup failed for host {host}")
        return found

    async def _hop(self, url: URL, job: _Job) -> _Hop:
        """One request/response exchange, inside the politeness slots and the total deadline."""
        addresses = await self._checked_addresses(url)
        async with self._slot(_slot_key(addresses, _port(url))):
            started = time.monotonic()
            deadline = asyncio.timeout(job.total - job.spent)
            try:
                async with deadline:
                    return await self._exchange(url, job)
            except _NETWORK_ERRORS as exc:
                total = deadline.expired()
                raise fetch_error(
                    exc, str(url), self._settings, url.host or "", total=total
                ) from exc
            finally:
                job.spent += time.monotonic() - started

    @asynccontextmanager
    async def _slot(self, key: str) -> AsyncIterator[None]:
        # Per host first: a task queued behind a slow host must not hold a global slot.
        per_host = self._host_slots.get(key)
        if per_host is None:
            per_host = self._host_slots[key] = asyncio.Semaphore(self._settings.max_per_host)
        async with per_host, self._slots:
            yield

    async def _exchange(self, url: URL, job: _Job) -> _Hop:
        response = await self._client().get(url, headers=job.headers, allow_redirects=False)
        try:
            return await self._settle(response, url, job.limit)
        finally:
            # Back to the pool when the body was read to its end (304s, redirects and most
            # small bodies are, by then); otherwise the connection is closed.
            response.release()

    async def _settle(self, response: aiohttp.ClientResponse, url: URL, limit: int) -> _Hop:
        status, headers = response.status, _single_valued(response.headers)
        if status in _REDIRECT_STATUSES:
            return _Hop(status, headers, b"", _location(url, status, headers))
        if status == 304:
            return _Hop(status, headers, b"")
        if not 200 <= status < 300:
            raise self._status_error(str(url), status, headers)
        return _Hop(status, headers, await _read_body(response, str(url), limit))

    def _status_error(self, url: str, status: int, headers: Mapping[str, str]) -> FetchError:
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(headers.get("retry-after"), self._clock.now())
        reason = _status_reason(status, retry_after)
        return HttpStatusError(url, status, reason, retry_after=retry_after)


def _port(url: URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _slot_key(addresses: list[IPAddress], port: int) -> str:
    """The per-host limit's key: the lowest resolved address (IPv4 first) and the port, so
    ``localhost`` and ``127.0.0.1`` share one limit while two ports do not."""
    ip = min((_unmapped(a) for a in addresses), key=lambda a: (a.version, int(a)))
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver: answers with the addresses HttpClient resolved and checked last
    for that host and port; it never asks DNS itself, so nothing unchecked is connected to."""

    def __init__(self) -> None:
        self._pins: dict[tuple[str, int], list[IPAddress]] = {}

    def pin(self, host: str, port: int, addresses: list[IPAddress]) -> None:
        self._pins[(host.rstrip(".").lower(), port)] = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._pins.get((host.rstrip(".").lower(), port))
        if not addresses:
            raise OSError(f"no checked address for {host}")
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=flags,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        self._pins.clear()


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
    headers: Mapping[str, str]
    content: bytes
    location: URL | None = None

    def response(
        self, url: str, elapsed: float, redirects: tuple[str, ...], *, moved: bool
    ) -> Response:
        return Response(url, self.status, self.headers, self.content, elapsed, redirects, moved)


def _make_session(
    settings: HttpSettings,
    middlewares: Sequence[aiohttp.ClientMiddlewareType],
    resolver: AbstractResolver,
) -> aiohttp.ClientSession:
    user_agent = settings.user_agent.replace("{version}", __version__)
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,  # HttpClient's per-host semaphores decide
        resolver=resolver,  # connect only to the addresses the guard checked
        use_dns_cache=False,
        keepalive_timeout=_KEEPALIVE,
        ssl=_tls_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": user_agent, "Accept-Encoding": _ACCEPT_ENCODING},
        # Waiting for a pooled connection is bounded by the semaphores and the total deadline.
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
        ),
        # Bodies are inflated by the bounded decoders below, never by aiohttp.
        auto_decompress=False,
        # Environment proxies would connect somewhere the address guard never checked.
        trust_env=False,
        max_line_size=_HEADER_LIMIT,
        max_field_size=_HEADER_LIMIT,
        middlewares=middlewares,
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Mozilla's CA bundle, not the system's: the same trust on every machine (as httpx did).
    return ssl.create_default_context(cafile=certifi.where())


def _request_headers(
    etag: str | None, last_modified: str | None, accept: str | None
) -> dict[str, str]:
    wanted = {"If-None-Match": etag, "If-Modified-Since": last_modified, "Accept": accept}
    return {name: value for name, value in wanted.items() if value}


def _single_valued(headers: CIMultiDictProxy[str]) -> Mapping[str, str]:
    """The headers with a repeated field's values joined by ", " (RFC 9110 section 5.3)."""
    names = {name.lower() for name in headers}
    if len(names) == len(headers):
        return headers
    return CIMultiDictProxy(CIMultiDict({n: ", ".join(headers.getall(n)) for n in names}))


# --- URLs and redirects -----------------------------------------------------------------


def _parse_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise FetchError(url, f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise FetchError(url, f"invalid URL {url!r}: only http:// and https:// URLs can be fetched")
    return parsed


def _location(url: URL, status: int, headers: Mapping[str, str]) -> URL:
    location = headers.get("location")
    if not location:
        raise NetworkError(str(url), f"{_status_reason(status, None)} without a Location header")
    try:
        target = url.join(URL(location))
    except (TypeError, ValueError) as exc:
        raise NetworkError(str(url), f"redirect to invalid URL {location!r}: {exc}") from exc
    # Fragments are the client's business and would defeat loop detection.
    return target.with_fragment(None)


def _next_hop(location: URL, visited: list[str], max_redirects: int) -> URL:
    """Where a redirect leads, or FetchError for a loop, too many hops or a bad target."""
    target = str(location)
    if target in visited:
        raise TooManyRedirects(visited[-1], f"redirect loop at {target}")
    if len(visited) > max_redirects:
        raise TooManyRedirects(visited[-1], f"too many redirects (more than {max_redirects})")
    if location.scheme not in ("http", "https") or not location.raw_host:
        raise NetworkError(visited[-1], f"redirect to unsupported URL {target}")
    return location


# --- the private-address guard ----------------------------------------------------------


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_public(ip: IPAddress) -> bool:
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


def _shown(ip: IPAddress) -> str:
    # URL parsing compresses ::ffff:10.0.0.1 to ::ffff:a00:1; people write the dotted form.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def _refusal(host: str, ip: IPAddress) -> str:
    literal = _ip_literal(host)
    if literal is not None:
        return f"refused: {_shown(literal)} is a private address {_PRIVATE_HINT}"
    return f"refused: {host} resolves to private address {_shown(ip)} {_PRIVATE_HINT}"


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
    tuple[type[BaseException] | tuple[type[BaseException], ...], type[FetchError], _Explain],
    ...,
] = (
    (
        aiohttp.ConnectionTimeoutError,
        FetchTimeout,
        lambda e, s, h: f"connect timed out after {_seconds(s.connect_timeout)} s",
    ),
    (
        aiohttp.SocketTimeoutError,
        FetchTimeout,
        lambda e, s, h: f"read timed out after {_seconds(s.read_timeout)} s",
    ),
    (aiohttp.ServerTimeoutError, FetchTimeout, lambda e, s, h: f"timed out: {e}"),
    (
        (aiohttp.ClientConnectorDNSError, socket.gaierror),
        NetworkError,
        lambda e, s, h: f"DNS lookup failed for host {h}",
    ),
    (ConnectionRefusedError, NetworkError, lambda e, s, h: "connection refused"),
    (ssl.SSLError, NetworkError, lambda e, s, h: f"TLS error: {_tls_message(e)}"),
    (ConnectionResetError, NetworkError, lambda e, s, h: "connection reset by the server"),
    (
        (
            aiohttp.ClientPayloadError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientResponseError,
            HttpProcessingError,
        ),
        NetworkError,
        lambda e, s, h: f"broken response: {_protocol_message(e)}",
    ),
    (
        (zlib.error, brotli.error),
        NetworkError,
        lambda e, s, h: f"could not decompress the body: {e}",
    ),
    (aiohttp.InvalidURL, FetchError, lambda e, s, h: f"invalid URL: {e}"),
    ((UnicodeError, ValueError), FetchError, lambda e, s, h: f"invalid request: {e}"),
)


def fetch_error(
    exc: BaseException, url: str, settings: HttpSettings, host: str, *, total: bool
) -> FetchError:
    """The one place mapping an aiohttp, OS, TLS or decoder error to watcher's FetchError
    subclasses, with the user-facing reason; ``total`` when the request's deadline expired."""
    if total:
        return FetchTimeout(url, f"timed out after {_seconds(settings.total_timeout)} s (total)")
    for kind, error, explain in _EXPLANATIONS:
        found = _find_cause(exc, kind)
        if found is not None:
            return error(url, explain(found, settings, host))
    if isinstance(exc, TimeoutError):
        return FetchTimeout(url, "timed out")
    return NetworkError(url, f"network error: {exc or type(exc).__name__}")


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
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error  # aiohttp's wrapper; the ssl module's error says what went wrong
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return str(getattr(exc, "reason", None) or exc)


def _protocol_message(exc: BaseException) -> str:
    """The parser's own words, on one line, without aiohttp's wrapping and repr()s."""
    parser_error = _find_cause(exc, HttpProcessingError)
    if isinstance(parser_error, HttpProcessingError) and parser_error.message:
        text = parser_error.message
    elif isinstance(exc, aiohttp.ClientResponseError) and exc.message:
        text = exc.message
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


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
        raise NetworkError(url, f"unsupported Content-Encoding {unknown[0]!r}")
    # Codings are listed in the order applied, so they are undone last first.
    return _Chain([_DECODERS[c]() for c in reversed(codings)])


async def _read_body(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
    encoding = response.headers.get("content-encoding")
    decoder = _decoder_for(url, encoding)
    if not encoding and _declared_length(response.headers) > limit:
        raise TooLarge(url, f"response larger than {limit} bytes ([http] max_bytes)")
    body = bytearray()
    async for raw in response.content.iter_any():
        _append(body, decoder.decode(raw), limit, url)
    _append(body, decoder.flush(), limit, url)
    return bytes(body)


def _declared_length(headers: Mapping[str, str]) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


def _append(body: bytearray, pieces: Iterator[bytes], limit: int, url: str) -> None:
    for piece in pieces:
        body += piece
        if len(body) > limit:
            raise TooLarge(url, f"response larger than {limit} bytes ([http] max_bytes)")


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
