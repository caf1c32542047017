"""A real HTTP/1.1 server on loopback with programmable and hostile routes, for tests and benches.

Usage::

    with HttpServer() as server:
        url = server.route("/feed.xml", b"<rss/>", etag='"v1"')
        ...                                   # fetch url with any client, sync or async
        assert server.hits("/feed.xml") == 1

A handler's body may be bytes, str, or an iterable of chunks where a number means "sleep this
many seconds" (interrupted at once by ``close()``) and ``CLOSE`` drops the connection there.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import itertools
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import brotli  # type: ignore[import-untyped]


class _Close:
    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = _Close()
"""In a body iterable: drop the connection at this point, mid-body."""

Chunk = bytes | float | _Close
Body = bytes | str | Iterable[Chunk]

_STEP = 64 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it; ``headers`` names are lower-cased."""

    method: str
    path: str  # with the query string
    headers: Mapping[str, str]
    body: bytes = b""
    received: float = 0.0  # time.monotonic()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def route(self) -> str:
        return urlsplit(self.path).path


@dataclass
class Reply:
    """What a handler answers; a Content-Length is added for bytes bodies that lack one."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = b""


Handler = Callable[[RecordedRequest], "Reply | tuple[int, Mapping[str, str], Body]"]


class _Stopping(Exception):
    """The server is closing: abandon the response."""


# Clients hanging up mid-response (BrokenPipe, ConnectionReset...) is the point of half the
# hostile routes, and closing the server cuts connections: neither deserves a traceback.
_QUIET = (OSError, _Stopping)


class HttpServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with an OS-chosen port; HTTPS given ``tls``."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._inflight: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._httpd = _Server((host, 0), self)
        self._scheme = "https" if tls else "http"
        if tls is not None:
            # The handshake happens in the handler thread, so a stalled client blocks only itself.
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # --- basics ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == path]

    def hits(self, path: str) -> int:
        return len(self.requests_to(path))

    def peak_concurrency(self, path: str) -> int:
        """The most requests to ``path`` that were being handled at the same time."""
        with self._lock:
            return self._peak.get(path, 0)

    def sleep(self, seconds: float) -> None:
        """For handlers: sleep, but give up at once when the server closes."""
        if self.stopping.wait(seconds):
            raise _Stopping

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- routes ----------------------------------------------------------------------------

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        encoding: str | None = None,
    ) -> str:
        """Serve a fixed body; answers 304 to matching If-None-Match / If-Modified-Since.

        ``encoding`` ("gzip", "deflate", "deflate-raw", "br") compresses the body and sets
        Content-Encoding. Returns the route's URL.
        """
        data = body.encode() if isinstance(body, str) else body
        fixed = dict(headers or {})
        if encoding is not None:
            data = compress(data, encoding)
            fixed["Content-Encoding"] = "deflate" if encoding == "deflate-raw" else encoding
        validators = {"ETag": etag, "Last-Modified": last_modified}
        fixed.update({k: v for k, v in validators.items() if v is not None})
        return self.route_handler(path, _static(status, fixed, data, etag, last_modified))

    def route_handler(self, path: str, handler: Handler) -> str:
        """Serve ``path`` with ``handler(request) -> Reply | (status, headers, body)``."""
        with self._lock:
            self._routes[path] = handler
        return self.url(path)

    # --- hostile and awkward behaviours ----------------------------------------------------

    def drip(self, path: str, *, size: int = 100, chunk: int = 1, every: float = 1.0) -> str:
        """``chunk`` bytes every ``every`` seconds until ``size`` bytes (Content-Length set)."""
        pieces: list[Chunk] = []
        for _ in range(0, size, chunk):
            pieces += [every, b"x" * chunk]
        headers = {"Content-Length": str(len(pieces) // 2 * chunk)}
        return self.route_handler(path, lambda _: Reply(200, headers, iter(pieces)))

    def redirect(self, path: str, to: str, *, status: int = 302) -> str:
        """Redirect ``path`` to ``to`` (a path on this server or any URL)."""
        return self.route_handler(path, lambda _: Reply(status, {"Location": to}, b""))

    def redirect_loop(self, path: str) -> str:
        return self.redirect(path, path)

    def redirect_chain(
        self, path: str, length: int, *, status: int = 302, body: bytes = b"end of chain"
    ) -> str:
        """``length`` redirects: path -> path/1 -> ... -> path/length, which serves ``body``."""
        hops = [path] + [f"{path}/{i}" for i in range(1, length + 1)]
        for here, there in itertools.pairwise(hops):
            self.redirect(here, there, status=status)
        self.route(hops[-1], body)
        return self.url(path)

    def gzip_bomb(self, path: str, *, expanded: int = 1 << 30) -> str:
        """A gzip body of ~``expanded / 1000`` bytes that inflates to ``expanded`` zero bytes."""
        bomb = gzip_bomb(expanded)
        headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
        return self.route_handler(path, lambda _: Reply(200, headers, _slices(bomb)))

    def huge(self, path: str, size: int, *, content_length: bool = True) -> str:
        """``size`` zero bytes, streamed without building them in memory."""
        headers = {"Content-Length": str(size)} if content_length else {}
        return self.route_handler(path, lambda _: Reply(200, headers, _zeros(size)))

    def retry_after(self, path: str, value: str, *, status: int = 429) -> str:
        """Answer ``status`` with ``Retry-After: value`` (delta-seconds or an HTTP-date)."""
        headers = {"Retry-After": value}
        return self.route_handler(path, lambda _: Reply(status, headers, b"slow down"))

    def slow(self, path: str, delay: float, body: bytes = b"ok") -> str:
        """Wait ``delay`` seconds before answering."""

        def handle(_: RecordedRequest) -> Reply:
            self.sleep(delay)
            return Reply(200, {}, body)

        return self.route_handler(path, handle)

    def close_mid_body(self, path: str, *, sent: int = 100) -> str:
        """A chunked body cut off after ``sent`` bytes, connection closed."""
        return self.route_handler(path, lambda _: Reply(200, {}, [b"x" * sent, CLOSE]))

    def wrong_length(self, path: str, *, declared: int = 1000, body: bytes = b"short") -> str:
        """Content-Length promises ``declared`` bytes; only ``body`` comes, then a close."""
        headers = {"Content-Length": str(declared)}
        return self.route_handler(path, lambda _: Reply(200, headers, [body, CLOSE]))

    # --- called by the request handler -----------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            handler = self._routes.get(request.route)
        if handler is None:
            return Reply(404, {"Content-Type": "text/plain"}, f"no route for {request.route}")
        try:
            reply = handler(request)
        except _Stopping:
            raise
        except Exception as exc:  # a broken test handler must show up, not hang the client
            self.errors.append(exc)
            return Reply(500, {"Content-Type": "text/plain"}, f"handler failed: {exc!r}")
        return reply if isinstance(reply, Reply) else Reply(*reply)

    def _enter(self, route: str) -> None:
        with self._lock:
            self._inflight[route] = self._inflight.get(route, 0) + 1
            self._peak[route] = max(self._peak.get(route, 0), self._inflight[route])

    def _leave(self, route: str) -> None:
        with self._lock:
            self._inflight[route] -= 1


# --- payloads ---------------------------------------------------------------------------------


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` in a Content-Encoding: "gzip", "deflate" (zlib), "deflate-raw" or "br"."""
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "deflate-raw":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush()
    if encoding == "br":
        return bytes(brotli.compress(data, quality=6))  # 11, the default, is slow
    raise ValueError(f"unknown encoding {encoding!r}")


@functools.cache
def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip member inflating to ``expanded`` zero bytes (rounded up to whole MiB).

    Built cheaply: after a full flush, deflating another MiB of zeros yields the same block,
    so the block is computed once and repeated.
    """
    mebibytes = max(1, -(-expanded // (1 << 20)))
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = crc.to_bytes(4, "little") + ((mebibytes << 20) & 0xFFFFFFFF).to_bytes(4, "little")
    return header + block * mebibytes + packer.flush() + trailer


def http_date(when: float | None = None) -> str:
    """An IMF-fixdate (RFC 9110) for ``when`` (a Unix time; now by default)."""
    return formatdate(when, usegmt=True)


def _slices(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), _STEP):
        yield data[start : start + _STEP]


def _zeros(size: int) -> Iterator[bytes]:
    block = bytes(_STEP)
    for start in range(0, size, _STEP):
        yield block[: min(_STEP, size - start)]


def _static(
    status: int, headers: dict[str, str], body: bytes, etag: str | None, last_modified: str | None
) -> Handler:
    not_modified_headers = {
        k: v for k, v in headers.items() if not k.lower().startswith("content-")
    }

    def handle(request: RecordedRequest) -> Reply:
        if _not_modified(request, etag, last_modified):
            return Reply(304, not_modified_headers, b"")
        return Reply(status, headers, body)

    return handle


def _not_modified(request: RecordedRequest, etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.header("if-none-match")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return etag is not None and ("*" in tags or etag.removeprefix("W/") in tags)
    since = request.header("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return since == last_modified


# --- the socket side --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: HttpServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive or mid-response sockets."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], _QUIET):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end eventually even if never closed
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        with contextlib.suppress(*_QUIET):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read server.requests instead of a log

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _serve(self) -> None:
        owner = self.server.owner
        request = self._record()
        # In flight while the handler runs: counted down before the reply goes out, or a
        # client that reads it could start its next request before this thread counts down,
        # and a loaded machine would see two at once where there was one.
        owner._enter(request.route)
        try:
            reply = owner._dispatch(request)
        except _QUIET:
            self.close_connection = True
            return
        finally:
            owner._leave(request.route)
        try:
            self._send(reply, head=request.method == "HEAD")
        except _QUIET:
            self.close_connection = True

    def _record(self) -> RecordedRequest:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return RecordedRequest(
            self.command, self.path, headers, self._read_body(headers), time.monotonic()
        )

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join(iter(self._read_chunk, b""))
        length = int(headers.get("content-length", "0") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunk(self) -> bytes:
        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
        data = self.rfile.read(size) if size else b""
        if not size:
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
        else:
            self.rfile.readline()
        return data

    def _send(self, reply: Reply, *, head: bool) -> None:
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        declared = next(
            (v for k, v in reply.headers.items() if k.lower() == "content-length"), None
        )
        has_body = not head and reply.status >= 200 and reply.status not in (204, 304)
        if isinstance(body, bytes):
            if declared is None and reply.status >= 200 and reply.status not in (204, 304):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if has_body:
                self.wfile.write(body)
        elif has_body:
            self._send_stream(body, None if declared is None else int(declared))
        else:
            self.end_headers()

    def _send_stream(self, body: Iterable[Chunk], declared: int | None) -> None:
        # Without a length, chunked, unless the reply chose close-delimited (Connection: close).
        chunked = declared is None and not self.close_connection
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = self._stream(body, chunked=chunked)
        if chunked and sent >= 0:
            self.wfile.write(b"0\r\n\r\n")
        if sent < 0 or (declared is not None and sent != declared):
            self.close_connection = True

    def _stream(self, body: Iterable[Chunk], *, chunked: bool) -> int:
        """Writes the chunks; returns bytes sent, or -1 when a CLOSE cut the body short."""
        sent = 0
        for chunk in body:
            if isinstance(chunk, _Close):
                return -1
            if isinstance(chunk, (int, float)):
                self.server.owner.sleep(chunk)
                continue
            if self.server.owner.stopping.is_set():
                raise _Stopping
            if chunked and chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            elif chunk:
                self.wfile.write(chunk)
            sent += len(chunk)
        return sent
