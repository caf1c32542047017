"""The webhook channel against a loopback receiver that checks each POST's HMAC signature,
through the outbox (retries, permanent failures), and its config and destination checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from httpserver import HttpServer, RecordedRequest, Reply

from watcher.alerts.compose import build_payload
from watcher.alerts.outbox import Sender, SendResult, compose
from watcher.articles.fingerprint import signature
from watcher.channels.base import OutgoingMessage
from watcher.channels.registry import build_channels, default_destinations, destination_problem
from watcher.channels.webhook import (
    SCHEMA_VERSION,
    SECRET_ENV,
    SIGNATURE_HEADER,
    WebhookChannel,
    verify,
    webhook_body,
)
from watcher.clock import FakeClock
from watcher.config import Secret, config_from_dict
from watcher.errors import ConfigError, DeliveryError, RuleError
from watcher.rules.schema import parse_rules
from watcher.store import open_store
from watcher.store.alerts import ArticleRecord, StoryChange
from watcher.store.outbox import DeliveryJob
from watcher.store.runner import StoreRunner
from watcher.types import Article, ArticleSource, Evidence, Match, Outcome, Route

SECRET = "s3cret-signing-key"
START = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)


class Receiver:
    """A loopback endpoint that answers with queued statuses and records what it verified."""

    def __init__(self, server: HttpServer, secret: str = SECRET) -> None:
        self.statuses: deque[int] = deque()
        self.verified: list[dict[str, object]] = []
        self.forged = 0
        self._secret = secret
        self.url = server.route_handler("/hook", self._handle)

    def _handle(self, request: RecordedRequest) -> Reply:
        if not verify(request.body, self._secret, request.header(SIGNATURE_HEADER)):
            self.forged += 1
            return Reply(401)
        status = self.statuses.popleft() if self.statuses else 204
        if status < 300:
            self.verified.append(json.loads(request.body))
        return Reply(status, {"Retry-After": "7"} if status == 429 else {})


@pytest.fixture
def receiver(http_server: HttpServer) -> Receiver:
    return Receiver(http_server)


def message(**changes: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "subject": "[watcher] venezuela: Maduro speaks",
        "html": "<b>Maduro</b> speaks",
        "text": "Maduro speaks",
        "link": "https://news.example/1",
        "data": {"alert_id": 1, "kind": "new", "title": "Maduro speaks"},
    } | changes
    return OutgoingMessage(**values)  # type: ignore[arg-type]


# --- the channel on its own -------------------------------------------------------------


async def test_a_post_carries_the_documented_schema_and_a_valid_signature(
    receiver: Receiver,
) -> None:
    channel = WebhookChannel({"desk": receiver.url}, Secret(SECRET), clock=FakeClock(START))
    try:
        await channel.send("desk", message())
    finally:
        await channel.aclose()
    (body,) = receiver.verified
    assert body["version"] == SCHEMA_VERSION and body["event"] == "alert"
    assert body["endpoint"] == "desk" and body["sent_at"] == "2026-01-14T10:00:00+00:00"
    assert body["link"] == "https://news.example/1" and body["update_of"] is None
    assert body["data"] == {"alert_id": 1, "kind": "new", "title": "Maduro speaks"}
    assert receiver.forged == 0


async def test_a_wrong_secret_is_refused_by_the_receiver_and_fails_for_good(
    receiver: Receiver,
) -> None:
    channel = WebhookChannel({"desk": receiver.url}, Secret("not-the-secret"))
    try:
        with pytest.raises(DeliveryError) as info:
            await channel.send("desk", message())
    finally:
        await channel.aclose()
    assert receiver.forged == 1 and info.value.permanent


async def test_statuses_map_to_retry_or_permanent_and_the_secret_is_never_shown(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = WebhookChannel({"desk": receiver.url + "?token=abc"}, Secret(SECRET))
    receiver.statuses.extend([503, 429, 400])
    errors = []
    try:
        for _ in range(3):
            with pytest.raises(DeliveryError) as info:
                await channel.send("desk", message())
            errors.append(info.value)
        with pytest.raises(DeliveryError) as unknown:
            await channel.send("elsewhere", message())
    finally:
        await channel.aclose()
    assert [e.permanent for e in errors] == [False, False, True]
    assert errors[1].retry_after == 7.0
    assert unknown.value.permanent
    shown = " ".join(e.reason for e in errors) + caplog.text
    assert SECRET not in shown and "token=abc" not in shown


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirecting_endpoint_fails_for_good_naming_where_it_points(
    http_server: HttpServer, status: int
) -> None:
    """Followed, a 301/302 became a GET without the alert that the receiver answered 200:
    the alert counted as delivered and was lost."""
    http_server.route("/old", status=status, headers={"Location": "/new?token=abc"})
    http_server.route("/new", "ok")
    channel = WebhookChannel({"desk": http_server.url("/old")}, Secret(SECRET))
    try:
        with pytest.raises(DeliveryError) as info:
            await channel.send("desk", message())
    finally:
        await channel.aclose()
    assert info.value.permanent and http_server.url("/new") in info.value.reason
    assert "token=abc" not in info.value.reason and http_server.hits("/new") == 0


async def test_an_unreachable_endpoint_is_retried() -> None:
    channel = WebhookChannel({"desk": "http://127.0.0.1:9/hook"}, Secret(SECRET), timeout=5)
    try:
        with pytest.raises(DeliveryError) as info:
            await channel.send("desk", message())
    finally:
        await channel.aclose()
    assert not info.value.permanent


def test_the_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"version": 1}'
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify(body, SECRET, expected)
    assert not verify(body + b" ", SECRET, expected) and not verify(body, SECRET, None)


# --- through the outbox -----------------------------------------------------------------


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[StoreRunner]:
    store = open_store(f"sqlite:///{tmp_path / 'watcher.db'}")
    db = StoreRunner(store)
    try:
        yield db
    finally:
        db.shutdown()
        store.close()


async def _record_alert(db: StoreRunner, destination: str) -> None:
    a = Article(
        url="https://news.example/1",
        title="Maduro speaks in Caracas",
        text="Maduro spoke in Caracas on Monday. Talks will go on.",
        source=ArticleSource.PAGE,
        published=START,
        feed_name="Outlet",
    )
    found = Evidence("actor", "Nicolás Maduro", "Maduro", "text", a.text, 0, 6)
    m = Match("venezuela", 5.0, 3.0, (found,), "normal", (destination,), ())
    rec = ArticleRecord(
        entry_id=None,
        feed_id=None,
        url=a.url,
        article=a,
        now=START,
        matches=[(m, Outcome(m.rule, "alert", ""))],
        story=StoryChange(None, a.title, signature(a.title, a.text), {m.rule: m.score}),
        alert_kind="new",
        payload=build_payload(a, [m], source="Outlet", quotes=2),
        routes=[Route(destination, False, None)],
    )
    await db(db.store.record_article, rec)


async def test_the_outbox_retries_a_failing_endpoint_until_it_accepts(
    runner: StoreRunner, receiver: Receiver
) -> None:
    clock = FakeClock(START)
    channel = WebhookChannel({"desk": receiver.url}, Secret(SECRET), clock=clock)
    sender = Sender(
        runner, {"webhook": channel}, clock=clock, tz=ZoneInfo("UTC"), retry_cap=60.0,
        rng=random.Random(1),
    )  # fmt: skip
    await _record_alert(runner, "webhook:desk")
    receiver.statuses.append(503)
    try:
        assert await sender.drain() == SendResult(retrying=1)
        clock.advance(120)
        assert await sender.drain() == SendResult(sent=1)
    finally:
        await channel.aclose()
    (body,) = receiver.verified
    data = body["data"]
    assert isinstance(data, dict) and data["title"] == "Maduro speaks in Caracas"
    assert data["rules"][0]["name"] == "venezuela" and data["kind"] == "new"


# --- config, registration and rules -----------------------------------------------------


def _config(tmp_path: Path, **webhook: object) -> object:
    return config_from_dict({"webhook": webhook}, source=tmp_path / "config.toml")


def test_the_channel_is_built_from_config_with_the_secret_from_env_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    endpoints = {"desk": "https://hooks.example.org/watcher"}
    config = _config(tmp_path, endpoints=endpoints)
    with pytest.raises(ConfigError):
        build_channels(config)  # type: ignore[arg-type]
    (tmp_path / "hook.secret").write_text(SECRET + "\n")
    config = _config(tmp_path, endpoints=endpoints, secret_file="hook.secret")
    assert isinstance(build_channels(config)["webhook"], WebhookChannel)  # type: ignore[arg-type]
    assert "webhook:desk" in default_destinations(config)  # type: ignore[arg-type]
    bad = _config(tmp_path, endpoints={"desk": "ftp://x"}, secret_file="hook.secret")
    with pytest.raises(ConfigError):
        build_channels(bad)  # type: ignore[arg-type]
    port = _config(
        tmp_path, endpoints={"desk": "http://x.example:99999/"}, secret_file="hook.secret"
    )
    with pytest.raises(ConfigError):  # refused up front, not a traceback at every send
        build_channels(port)  # type: ignore[arg-type]
    monkeypatch.setenv(SECRET_ENV, "from-env")
    assert "webhook" in build_channels(_config(tmp_path, endpoints=endpoints))  # type: ignore[arg-type]


def test_rules_may_route_to_a_webhook_and_malformed_destinations_are_refused() -> None:
    assert destination_problem("webhook:desk") == ""
    assert destination_problem("webhook:") and destination_problem("webhook")
    assert destination_problem("pager:desk")  # no such channel
    (rule,) = parse_rules("name: r\nkeywords: {k: [oil]}\ndestinations: [webhook:desk]\n")
    assert rule.destinations == ("webhook:desk",)
    with pytest.raises(RuleError):
        parse_rules("name: r\nkeywords: {k: [oil]}\ndestinations: [webhook]\n")


def test_a_digest_is_posted_as_a_digest_event() -> None:
    items = [{"title": "Maduro speaks", "url": "https://news.example/1", "source": "Outlet",
              "rules": [{"name": "venezuela"}]}]  # fmt: skip
    job = DeliveryJob(
        id=1, alert_id=9, destination="webhook:desk", kind="digest", attempts=0,
        alert_kind="digest", payload={"items": items}, story_id=None,
    )  # fmt: skip
    msg = compose(job, ZoneInfo("UTC"), START)
    assert msg is not None
    body = json.loads(webhook_body(msg, endpoint="desk", now=START))
    assert body["event"] == "digest" and body["data"]["items"][0]["title"] == "Maduro speaks"
    assert body["data"]["alert_id"] == 9  # the README: drop a repeat by alert_id


def test_an_alert_and_its_development_carry_their_story_id() -> None:
    rules = [{"name": "venezuela", "score": 5.0, "threshold": 1.0, "terms": []}]
    payload = {"title": "Maduro speaks", "url": "https://news.example/1", "source": "Outlet",
               "published": None, "priority": "normal", "quotes": [], "rules": rules}  # fmt: skip
    for kind, alert_kind in (("send", "new"), ("reply", "develop")):
        job = DeliveryJob(
            id=1, alert_id=3, destination="webhook:desk", kind=kind, attempts=0,
            alert_kind=alert_kind, payload=payload, story_id=7,
        )  # fmt: skip
        msg = compose(job, ZoneInfo("UTC"), START)
        assert msg is not None
        body = json.loads(webhook_body(msg, endpoint="desk", now=START))
        assert (body["data"]["kind"], body["data"]["story_id"]) == (alert_kind, 7)
