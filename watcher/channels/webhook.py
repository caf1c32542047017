"""The webhook channel: each alert as a signed JSON POST to a configured endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from watcher import __version__
from watcher.channels.base import Delivered, OutgoingMessage
from watcher.channels.spec import ChannelSpec
from watcher.clock import Clock, SystemClock
from watcher.config import Config, Secret, config_path, read_secret
from watcher.errors import ConfigError, DeliveryError

SECRET_ENV = "WATCHER_WEBHOOK_SECRET"
SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Watcher-Signature-256"
EVENT_HEADER = "X-Watcher-Event"
_RETRYABLE = {408, 425, 429}


# --- the body and its signature (pure) --------------------------------------------------


def event_of(message: OutgoingMessage) -> str:
    """The event a post carries: a digest, a test (`watcher send-test`), or an alert
    (webhooks cannot edit, so they get no story updates)."""
    kind = (message.data or {}).get("kind")
    return kind if kind in ("digest", "test") else "alert"


def webhook_body(message: OutgoingMessage, *, endpoint: str, now: datetime) -> bytes:
    """The JSON document POSTed for ``message`` (schema in README "Webhook")."""
    document: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "event": event_of(message),
        "sent_at": now.isoformat(timespec="seconds"),
        "endpoint": endpoint,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "link": message.link,
        "update_of": message.edit_of,
        "data": dict(message.data) if message.data else {},
    }
    return json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (what a receiver checks)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def _public(url: str) -> str:
    """The URL without query or credentials, for messages: those may hold tokens."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


# --- the channel ------------------------------------------------------------------------


class WebhookChannel:
    """POSTs each alert to the endpoint a "webhook:NAME" destination names."""

    name = "webhook"

    def __init__(
        self,
        endpoints: Mapping[str, str],
        secret: Secret,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock or SystemClock()
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: Config, *, env: Mapping[str, str] | None = None) -> WebhookChannel:
        """The channel [webhook] describes; ConfigError naming the key at fault."""
        settings, label = config.webhook, str(config.source or "<config>")
        problems = [
            f"{label}: webhook.endpoints.{name}: {url!r} is not an http(s) URL with a valid port"
            for name, url in settings.endpoints.items()
            if not _valid_endpoint(url)
        ]
        secret = read_secret(
            SECRET_ENV,
            config_path(settings.secret_file, config.source),
            env,
            key="webhook.secret_file",
        )
        if secret is None:
            problems.append(
                f"{label}: webhook.secret_file: webhook endpoints are set but there is no "
                f"signing secret; set ${SECRET_ENV} or point secret_file at a file"
            )
        if problems or secret is None:
            raise ConfigError(problems)
        return cls(settings.endpoints, secret, timeout=settings.timeout)

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        url = self._endpoints.get(destination)
        if url is None:
            raise DeliveryError(
                f"webhook {destination!r}: no such endpoint in [webhook] endpoints",
                permanent=True,
            )
        body = webhook_body(message, endpoint=destination, now=self._clock.now())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"watcher/{__version__}",
            EVENT_HEADER: event_of(message),
            SIGNATURE_HEADER: sign(body, self._secret.reveal()),
        }
        await self._post(f"webhook {destination} ({_public(url)})", url, body, headers)
        return Delivered(None)

    async def _post(self, where: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            # Not followed: a 301/302 turns the POST into a GET without the alert, which the
            # receiver answers 200, and the alert would count as delivered.
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
                location = response.headers.get("Location", "")
                await response.read()
        except TimeoutError:
            raise DeliveryError(f"{where}: no answer in time (webhook.timeout)") from None
        except aiohttp.ClientError as exc:
            detail = str(exc).replace(url, _public(url))  # a query may hold a token
            raise DeliveryError(f"{where}: {type(exc).__name__}: {detail}") from None
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            moved = f" to {_public(urljoin(url, location))}" if location else ""
            raise DeliveryError(
                f"{where}: HTTP {status}: the endpoint redirects{moved}; put the address it "
                "answers at in [webhook] endpoints (then `watcher alerts retry`)",
                permanent=True,
            )
        retry = status >= 500 or status in _RETRYABLE
        raise DeliveryError(
            f"{where}: HTTP {status}",
            permanent=not retry,
            retry_after=_seconds(retry_after) if retry else None,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


SPEC = ChannelSpec(
    kind="webhook",
    configured=lambda config: bool(config.webhook.endpoints),
    build=WebhookChannel.from_config,
    accepts=lambda name: bool(name.strip()),
    example="webhook:NAME (a key of [webhook] endpoints)",
    defaults=lambda config: tuple(f"webhook:{name}" for name in config.webhook.endpoints),
)


def _valid_endpoint(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
