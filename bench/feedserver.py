"""A fast loopback feed server for bench/feeds.py: N synthetic RSS feeds, conditional GET.

Run as ``python bench/feedserver.py --feeds 1000 --items 20``; it prints ``PORT <n>`` and
serves until killed. ``GET /feeds/<i>.xml`` is feed i; ``GET /_gen/1`` switches to the
second generation, in which every tenth feed (i % 10 == 0) has one more item and a new ETag;
``GET /_stats`` answers "<connections accepted> <feed requests served>" so far. With
``--recent`` (bench/latency.py's backfill), items are dated in the last hours rather than in
January 2026, so a first poll queues them for the article stage, and their links point at
this server (which answers 404: the article stage falls back to the feed's text).

Everything is pre-rendered and answered from one asyncio event loop with a bare HTTP/1.1
keep-alive protocol, so a request costs the server tens of microseconds: what the benchmark
measures is the client, not this server (the stdlib ThreadingHTTPServer in tests/ is not
fast enough for that).
"""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_LINKS = {"site": ""}  # "": https://site<i>.example/...; "local": /news/<i>/... on this server
_WORDS = (
    "government", "talks", "minister", "election", "protest", "economy", "oil", "prices",
    "court", "ruling", "opposition", "border", "trade", "summit", "inflation", "central",
    "bank", "reform", "strike", "vote", "parliament", "coalition",
)  # fmt: skip
_REQUEST_END = b"\r\n\r\n"
_PATH = re.compile(rb"^GET (\S+) HTTP/1\.[01]\r\n", re.IGNORECASE)
_IF_NONE_MATCH = re.compile(rb"\r\nif-none-match:[ \t]*([^\r\n]*)", re.IGNORECASE)


def item_xml(feed: int, n: int) -> str:
    """Item ``n`` of feed ``feed``: a realistic size (title, link, guid, date, ~500 B HTML)."""
    words = [_WORDS[(feed * 7 + n * 3 + k) % len(_WORDS)] for k in range(60)]
    title = " ".join(words[:9]).capitalize()
    text = " ".join(words)
    site = f"https://site{feed}.example" if not _LINKS["site"] else f"/site{feed}"
    link = f"{site}/news/{n}/{'-'.join(words[:4])}"
    published = format_datetime(_BASE + timedelta(hours=n), usegmt=True)
    return (
        f"<item><title>{title}</title><link>{link}?utm_source=rss</link>"
        f'<guid isPermaLink="false">site{feed}-story-{n}</guid><pubDate>{published}</pubDate>'
        f"<description>&lt;p&gt;{text}. &lt;a href=&quot;{link}&quot;&gt;Read more&lt;/a&gt;"
        f"&lt;/p&gt;</description></item>"
    )


def feed_xml(feed: int, count: int) -> bytes:
    items = "".join(item_xml(feed, n) for n in range(count - 1, -1, -1))  # newest first
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>Site {feed} news</title><link>https://site{feed}.example/</link>"
        f"<description>Synthetic feed {feed}</description>{items}</channel></rss>"
    ).encode()


def response(feed: int, count: int) -> tuple[bytes, bytes, bytes]:
    """(ETag, the full 200 response, the full 304 response) for a feed with ``count`` items."""
    body = feed_xml(feed, count)
    etag = f'"{feed}-{count}"'.encode()
    modified = format_datetime(_BASE + timedelta(hours=count), usegmt=True).encode()
    common = b"ETag: " + etag + b"\r\nLast-Modified: " + modified + b"\r\n"
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
        + common
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    not_modified = b"HTTP/1.1 304 Not Modified\r\n" + common + b"Content-Length: 0\r\n\r\n"
    return etag, ok, not_modified


class _Site:
    def __init__(self, feeds: int, items: int) -> None:
        self.generation = 0
        self.connections = 0
        self.requests = 0
        self._gens = [
            [response(i, items) for i in range(feeds)],
            [response(i, items + 1 if i % 10 == 0 else items) for i in range(feeds)],
        ]

    def answer(self, request: bytes) -> bytes:
        match = _PATH.match(request)
        path = match.group(1) if match else b""
        if path.startswith(b"/_gen/"):
            self.generation = int(path[6:])
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if path == b"/_stats":
            stats = b"%d %d" % (self.connections, self.requests)
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stats), stats)
        self.requests += 1
        try:
            etag, ok, not_modified = self._gens[self.generation][int(path[7:-4])]
        except (ValueError, IndexError):
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        sent = _IF_NONE_MATCH.search(request)
        return not_modified if sent and sent.group(1).strip() == etag else ok


class _Protocol(asyncio.Protocol):
    def __init__(self, site: _Site) -> None:
        self._site = site
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._site.connections += 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        assert self._transport is not None
        while (end := self._buffer.find(_REQUEST_END)) >= 0:
            request, self._buffer = self._buffer[: end + 4], self._buffer[end + 4 :]
            self._transport.write(self._site.answer(request))


async def serve(feeds: int, items: int, port: int = 0) -> None:
    site = _Site(feeds, items)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Protocol(site), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--recent", action="store_true", help="recent items, local links")
    args = parser.parse_args()
    if args.recent:
        global _BASE  # noqa: PLW0603  (set once, before anything is rendered)
        _BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=args.items)
        _LINKS["site"] = "local"
    asyncio.run(serve(args.feeds, args.items, args.port))


if __name__ == "__main__":
    main()
