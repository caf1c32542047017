"""The metrics registry, the /metrics and /healthz endpoint, and a real daemon scraped over
loopback while it polls, matches and delivers (with a Telegram outage in between)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from botapi import BotApiServer
from httpserver import HttpServer
from prometheus_client.parser import text_string_to_metric_families

from watcher.clock import FakeClock
from watcher.config import Config, MetricsSettings, load_config, parse_listen
from watcher.daemon import Daemon, RunOptions
from watcher.errors import ConfigError
from watcher.health import Heartbeat, write_heartbeat
from watcher.metrics import Metrics, MetricsServer, start_metrics_server

ROOT = Path(__file__).resolve().parents[1]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(exposition: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# --- the registry -----------------------------------------------------------------------


def test_counters_histogram_and_outbox_gauge() -> None:
    metrics = Metrics()
    metrics.polled("BBC", "updated")
    metrics.polled("BBC", "updated")
    metrics.polled("BBC", "failed")
    metrics.processed("page", ["venezuela", "ukraine-peace"])
    metrics.processed("feed-summary", [])
    metrics.delivered("telegram:-1001", latency=1.5)
    metrics.delivered("telegram:-1001/7", latency=None)  # an edit: no latency
    metrics.delivery_failed("email:desk@example.org", final=False)
    metrics.set_outbox({"email:desk@example.org": 2})
    metrics.set_outbox({})  # drained: known destinations drop to 0
    got = _samples(metrics.exposition().decode())

    assert _value(got, "watcher_polls_total", feed="BBC", outcome="updated") == 2
    assert _value(got, "watcher_polls_total", feed="BBC", outcome="failed") == 1
    assert _value(got, "watcher_articles_processed_total", source="page") == 1
    assert _value(got, "watcher_articles_processed_total", source="feed-summary") == 1
    assert _value(got, "watcher_rule_matches_total", rule="ukraine-peace") == 1
    sent = {"channel": "telegram", "destination": "telegram:-1001"}
    assert _value(got, "watcher_alerts_sent_total", **sent) == 1
    failed = {"channel": "email", "destination": "email:desk@example.org", "final": "false"}
    assert _value(got, "watcher_alerts_failed_total", **failed) == 1
    assert _value(got, "watcher_alert_latency_seconds_count", channel="telegram") == 1
    assert _value(got, "watcher_alert_latency_seconds_sum", channel="telegram") == 1.5
    assert _value(got, "watcher_alert_latency_seconds_bucket", channel="telegram", le="2.0") == 1
    assert _value(got, "watcher_alert_latency_seconds_bucket", channel="telegram", le="1.0") == 0
    for destination in ("email:desk@example.org", "telegram:-1001", "telegram:-1001/7"):
        assert _value(got, "watcher_outbox_depth", destination=destination) == 0


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.polled("a", "updated")
    got = _samples(second.exposition().decode())
    assert _value(got, "watcher_polls_total", feed="a", outcome="updated") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("9464", None),
        (":9464", None),
        ("127.0.0.1:", None),
        ("127.0.0.1:http", None),
        ("127.0.0.1:70000", None),
        ("::1:9464", None),  # IPv6 needs brackets, or the port is ambiguous
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(text) == expected


def test_config_defaults_off_on_loopback_and_rejects_bad_listen(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    assert load_config(path, env={}).metrics == MetricsSettings(False, "127.0.0.1:9464")
    path.write_text('[metrics]\nenabled = true\nlisten = "9464"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert f"{path}: metrics.listen: '9464' is not an address" in str(caught.value)
    path.write_text("[metrics]\nenable = true\n")
    with pytest.raises(ConfigError, match=r"metrics\.enable: unknown key; did you mean 'enabled'"):
        load_config(path, env={})


# --- the endpoint -----------------------------------------------------------------------


async def _raw(address: str, request: bytes) -> bytes:
    host, port = parse_listen(address) or ("", 0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_endpoint_routes_health_and_bad_requests(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    metrics = Metrics()

    async def outbox() -> dict[str, int]:
        return {"telegram:-1001": 3}

    server = await start_metrics_server(
        MetricsSettings(True, "127.0.0.1:0"), metrics, data_dir=tmp_path, clock=clock, outbox=outbox
    )
    base = f"http://{server.address}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            missing = await client.get("/healthz")
            assert missing.status_code == 503
            assert missing.json()["problem"].startswith("no heartbeat")

            write_heartbeat(
                tmp_path, Heartbeat(os.getpid(), clock.now(), clock.now(), 15, "running")
            )
            healthy = await client.get("/healthz")
            assert healthy.status_code == 200
            assert healthy.json() | {"pid": 0} == {
                "healthy": True,
                "problem": "",
                "pid": 0,
                "state": "running",
                "time": "2026-03-01T12:00:00+00:00",
                "started": "2026-03-01T12:00:00+00:00",
                "interval": 15,
            }
            clock.advance(3600)
            stale = await client.get("/healthz")
            assert stale.status_code == 503 and "stale" in stale.json()["problem"]

            scraped = await client.get("/metrics?name[]=x")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain; version=")
            got = _samples(scraped.text)
            assert _value(got, "watcher_outbox_depth", destination="telegram:-1001") == 3

            assert (await client.get("/")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
            head = await client.head("/metrics")
            assert head.status_code == 200 and head.content == b""
        assert (await _raw(server.address, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await _raw(server.address, b"GET /" + b"x" * 9000)).startswith(b"HTTP/1.1 400 ")
    finally:
        await server.aclose()
    with pytest.raises(OSError):
        await asyncio.open_connection(*(parse_listen(server.address) or ("", 0)))


async def test_endpoint_survives_a_failing_store_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> dict[str, int]:
        raise RuntimeError("database is locked")

    server = MetricsServer(Metrics(), data_dir=tmp_path, clock=FakeClock(), outbox=broken)
    reply = await server.respond("GET", "/metrics")
    assert reply.status == 200 and b"watcher_build_info" in reply.body
    assert "cannot read the outbox depth" in caplog.text


async def test_closing_drops_a_scrape_in_progress(tmp_path: Path) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def stuck() -> dict[str, int]:  # a store call that does not come back
        started.set()
        await never.wait()
        return {}

    server = MetricsServer(Metrics(), data_dir=tmp_path, clock=FakeClock(), outbox=stuck)
    await server.start("127.0.0.1:0")
    scrape = asyncio.create_task(_raw(server.address, b"GET /metrics HTTP/1.1\r\n\r\n"))
    await asyncio.wait_for(started.wait(), 60)
    await asyncio.wait_for(server.aclose(), 60)
    assert await asyncio.wait_for(scrape, 60) == b""  # the connection closed unanswered


async def _empty() -> dict[str, int]:
    return {}


async def test_port_in_use_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        server = MetricsServer(Metrics(), data_dir=tmp_path, clock=FakeClock(), outbox=_empty)
        with pytest.raises(ConfigError, match=rf"metrics\.listen: cannot listen on {listen}: "):
            await server.start(listen)


# --- a real daemon ----------------------------------------------------------------------

# Synthetic article written for this test.
STORY = """US and Venezuela trade threats as warships gather in the Caribbean

Washington sent more warships to the Caribbean on Monday, and Venezuelan President Nicolás
Maduro answered by calling up militia units across the country. The Venezuelan government
said the deployment was a threat to its sovereignty and asked regional partners for support.

Maduro told supporters in Caracas that Venezuela would not accept foreign military pressure.
US officials said the ships are part of an operation against drug trafficking routes and
denied planning a strike on Venezuelan territory. Analysts in Caracas said the standoff
between the United States and Venezuela is the most serious in years, and opposition leaders
urged both sides to open talks before the tension turns into a military clash.
"""
OTHER = """Local bakery wins national bread award

A family bakery in a small northern town won this year's national bread award for its sourdough
loaf. The judges praised the crust and the open crumb, and the owners said they would keep
their prices unchanged. The bakery opened forty years ago and still bakes every loaf by hand
in a wood-fired oven that the founder built himself from old bricks and river stones.
"""


def _page(text: str) -> str:
    title, _, body = text.partition("\n\n")
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    head = f"<head><title>{title}</title></head>"
    return f'<html lang="en">{head}<body><article>{paragraphs}</article></body></html>'


def _serve_feed(server: HttpServer) -> None:
    items = ""
    for i, text in enumerate((STORY, OTHER)):
        server.route(f"/p/{i}", _page(text), headers={"Content-Type": "text/html; charset=utf-8"})
        when = format_datetime(datetime.now(UTC) - timedelta(minutes=i))
        title = text.partition("\n")[0]
        items += (
            f"<item><title>{title}</title><link>{server.url(f'/p/{i}')}</link><guid>p{i}</guid>"
            f"<pubDate>{when}</pubDate></item>"
        )
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>{items}</channel></rss>'
    )
    server.route("/feed.xml", rss, headers={"Content-Type": "application/rss+xml"})


def _daemon_config(tmp_path: Path, server: HttpServer, bot: BotApiServer) -> Config:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    for path in rules.glob("*.yaml"):  # route to the configured Telegram chat
        lines = path.read_text().splitlines()
        path.write_text("\n".join(x for x in lines if not x.startswith("destinations:")))
    path = tmp_path / "config.toml"
    path.write_text(f"""
[watcher]
heartbeat_interval = "1s"
[http]
allow_private_addresses = true
[articles]
workers = 1
[console]
enabled = false
jsonl = false
[telegram]
api_base_url = "{bot.base_url}"
chats = ["-1001"]
[metrics]
enabled = true
listen = "127.0.0.1:0"
[[feeds]]
url = "{server.url("/feed.xml")}"
name = "Loop"
""")
    return load_config(path, env={"WATCHER_TELEGRAM_TOKEN": bot.token})


async def _until(predicate: Callable[[], object], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_running_daemon_counts_polls_articles_matches_and_deliveries(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    _serve_feed(http_server)
    daemon = Daemon(_daemon_config(tmp_path, http_server, bot_api))
    bot_api.outage()
    run = asyncio.create_task(daemon.run(RunOptions(tick=0.2)))
    try:
        await _until(lambda: daemon.metrics_server is not None or run.done())
        assert daemon.metrics_server is not None, run
        async with httpx.AsyncClient(base_url=f"http://{daemon.metrics_server.address}") as web:
            await _until(lambda: bot_api.calls("sendMessage"))
            await asyncio.sleep(0.2)  # the failure is recorded after the answer
            during = _samples((await web.get("/metrics")).text)
            bot_api.end_outage()
            await _until(lambda: bot_api.calls("sendMessage", ok=True), within=30)
            await asyncio.sleep(0.2)
            after = _samples((await web.get("/metrics")).text)
            health = await web.get("/healthz")
        address = daemon.metrics_server.address
    finally:
        daemon.stop()
        await run

    telegram = {"channel": "telegram", "destination": "telegram:-1001"}
    assert _value(during, "watcher_outbox_depth", destination="telegram:-1001") == 1
    assert _value(during, "watcher_alerts_failed_total", **telegram, final="false") == 1
    assert _value(during, "watcher_alerts_sent_total", **telegram) is None

    assert _value(after, "watcher_polls_total", feed="Loop", outcome="updated") == 1
    assert _value(after, "watcher_articles_processed_total", source="page") == 2
    assert _value(after, "watcher_rule_matches_total", rule="venezuela") == 1
    assert _value(after, "watcher_alerts_sent_total", **telegram) == 1
    assert _value(after, "watcher_outbox_depth", destination="telegram:-1001") == 0
    assert _value(after, "watcher_alert_latency_seconds_count", channel="telegram") == 1
    # Delivered after the outage's first backoff (about 5 s), seen from the entry's first poll.
    latency = _value(after, "watcher_alert_latency_seconds_sum", channel="telegram") or 0
    assert 3 < latency < 30
    assert health.status_code == 200 and health.json()["state"] == "running"

    with pytest.raises(OSError):  # the endpoint closes with the daemon
        await asyncio.open_connection(*(parse_listen(address) or ("", 0)))
