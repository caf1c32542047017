"""Prometheus metrics, and the optional HTTP endpoint serving them with /healthz."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from watcher import __version__
from watcher.clock import Clock
from watcher.config import MetricsSettings, parse_listen
from watcher.errors import ConfigError
from watcher.health import Heartbeat, check_health, read_heartbeat

log = logging.getLogger(__name__)

# Poll-to-delivery seconds: a second or two when all goes well, up to hours when alerts
# are held for quiet hours or a destination is down.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600)
# A client gets this long to send its request; scrapers send theirs at once.
_REQUEST_TIMEOUT = 5.0
_MAX_LINE = 8192
_MAX_HEADERS = 100


class Metrics:
    """watcher's metrics, in a registry of their own (not prometheus_client's global one,
    so several daemons in one process, as in tests, never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._polls = Counter(
            "watcher_polls", "Feed polls by outcome.", ["feed", "outcome"], registry=r
        )
        self._articles = Counter(
            "watcher_articles_processed",
            "Articles extracted and matched, by where their text came from.",
            ["source"],
            registry=r,
        )
        self._matches = Counter(
            "watcher_rule_matches", "Articles each rule matched.", ["rule"], registry=r
        )
        self._sent = Counter(
            "watcher_alerts_sent",
            "Messages delivered (alerts, replies, updates, digests).",
            ["channel", "destination"],
            registry=r,
        )
        self._failed = Counter(
            "watcher_alerts_failed",
            "Failed delivery attempts; final=true when the message will not be retried.",
            ["channel", "destination", "final"],
            registry=r,
        )
        self._outbox = Gauge(
            "watcher_outbox_depth", "Messages waiting to be delivered.", ["destination"], registry=r
        )
        self._latency = Histogram(
            "watcher_alert_latency_seconds",
            "Time from an entry's first sight in its feed to the delivery of its alert.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        Gauge("watcher_build_info", "watcher's version.", ["version"], registry=r).labels(
            __version__
        ).set(1)
        self._destinations: set[str] = set()

    def polled(self, feed: str, outcome: str) -> None:
        self._polls.labels(feed, outcome).inc()

    def processed(self, source: str, rules: Iterable[str]) -> None:
        self._articles.labels(source).inc()
        for rule in rules:
            self._matches.labels(rule).inc()

    def delivered(self, destination: str, latency: float | None = None) -> None:
        self._destinations.add(destination)
        channel = _channel(destination)
        self._sent.labels(channel, destination).inc()
        if latency is not None:
            self._latency.labels(channel).observe(max(latency, 0.0))

    def delivery_failed(self, destination: str, *, final: bool) -> None:
        self._destinations.add(destination)
        self._failed.labels(_channel(destination), destination, str(final).lower()).inc()

    def set_outbox(self, depth: Mapping[str, int]) -> None:
        """The outbox as the store counts it; a destination once seen stays, at 0 when empty."""
        self._destinations |= depth.keys()
        for destination in self._destinations:
            self._outbox.labels(destination).set(depth.get(destination, 0))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _channel(destination: str) -> str:
    return destination.partition(":")[0]


# --- the endpoint -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}


def health_reply(beat: Heartbeat | None, problem: str) -> Reply:
    """/healthz: the heartbeat as JSON; 200 when ``problem`` (check_health's) is empty."""
    state: dict[str, object] = {"healthy": not problem, "problem": problem}
    if beat is not None:
        state |= {
            "pid": beat.pid,
            "state": beat.state,
            "time": beat.time.isoformat(),
            "started": beat.started.isoformat(),
            "interval": beat.interval,
        }
    body = json.dumps(state).encode() + b"\n"
    return Reply(503 if problem else 200, "application/json", body)


def _text(status: int, message: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", message.encode() + b"\n")


class MetricsServer:
    """A minimal HTTP/1.1 server (one request per connection) for /metrics and /healthz.

    ``outbox`` returns the store's outbox depth per destination; it is read on every scrape
    so the gauge is never stale.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        data_dir: Path,
        clock: Clock,
        outbox: Callable[[], Awaitable[Mapping[str, int]]],
    ) -> None:
        self.metrics = metrics
        self._data_dir = data_dir
        self._clock = clock
        self._outbox = outbox
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, listen: str) -> None:
        """Listen on ``listen`` (HOST:PORT); ConfigError when that is impossible."""
        address = parse_listen(listen)
        if address is None:
            raise ConfigError(f"metrics.listen: {listen!r} is not HOST:PORT")
        try:
            self._server = await asyncio.start_server(
                self._handle, address[0], address[1], limit=_MAX_LINE
            )
        except OSError as exc:
            raise ConfigError(
                f"metrics.listen: cannot listen on {listen}: {exc.strerror or exc} "
                "(choose another port, or set [metrics] enabled = false)"
            ) from None
        log.info("metrics and health on http://%s/metrics and /healthz", self.address)

    @property
    def address(self) -> str:
        """HOST:PORT actually bound (the port is the OS's choice when 0 was configured)."""
        if self._server is None or not self._server.sockets:
            return ""
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def aclose(self) -> None:
        """Stop listening and drop requests in progress (the store may be closing next)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            reply, head = await self._serve(reader)
            writer.write(_encode(reply, head=head))
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[Reply, bool]:
        try:
            method, path = await asyncio.wait_for(_read_request(reader), _REQUEST_TIMEOUT)
        except (TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError):
            return _text(400, "bad request"), False
        return await self.respond(method, path), method == "HEAD"

    async def respond(self, method: str, path: str) -> Reply:
        """The reply to one request (routing only; no socket involved)."""
        route = path.partition("?")[0]
        if route not in ("/metrics", "/healthz"):
            return _text(404, "not found: try /metrics or /healthz")
        if method not in ("GET", "HEAD"):
            return _text(405, "only GET and HEAD")
        if route == "/healthz":
            return await self._health()
        try:
            self.metrics.set_outbox(await self._outbox())
        except Exception:
            # The other metrics are still worth having; the gauge keeps its last value.
            log.exception("metrics: cannot read the outbox depth from the store")
        return Reply(200, CONTENT_TYPE_LATEST, self.metrics.exposition())

    async def _health(self) -> Reply:
        beat = await asyncio.to_thread(read_heartbeat, self._data_dir)
        return health_reply(beat, check_health(beat, self._clock.now()))


async def start_metrics_server(
    settings: MetricsSettings,
    metrics: Metrics,
    *,
    data_dir: Path,
    clock: Clock,
    outbox: Callable[[], Awaitable[Mapping[str, int]]],
) -> MetricsServer:
    server = MetricsServer(metrics, data_dir=data_dir, clock=clock, outbox=outbox)
    await server.start(settings.listen)
    return server


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """(method, target) of an HTTP/1.x request; its headers are read and ignored."""
    parts = (await reader.readuntil(b"\n")).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("not an HTTP/1.x request line")
    for _ in range(_MAX_HEADERS):
        if (await reader.readuntil(b"\n")).strip() == b"":
            return parts[0].upper(), parts[1]
    raise ValueError("too many headers")


def _encode(reply: Reply, *, head: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}",
        f"Content-Type: {reply.content_type}",
        f"Content-Length: {len(reply.body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + reply.body
