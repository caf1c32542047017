"""Telegram webhook mode: an aiohttp route that takes Telegram's update POSTs for the bot."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from watcher.config import Config, config_path, parse_listen, read_secret
from watcher.errors import ConfigError

log = logging.getLogger(__name__)

SECRET_ENV = "WATCHER_TELEGRAM_WEBHOOK_SECRET"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What Telegram accepts as a secret token.
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram's updates are small; a bigger body is not from Telegram.
_MAX_BODY = 1 << 20
# Update ids remembered to drop Telegram's repeated posts: it re-posts an update only while
# it waits for our 200, so the last thousand cover any repeat by far.
RECENT_UPDATES = 1000


@dataclass(frozen=True)
class WebhookMode:
    """Where Telegram posts (``url``), where the bot listens for it, and the shared secret."""

    url: str
    host: str
    port: int
    path: str
    secret: str


def webhook_mode(config: Config, env: Mapping[str, str] | None = None) -> WebhookMode | None:
    """The webhook settings of [telegram], None for long polling (or no bot at all);
    ConfigError naming the key."""
    settings, label = config.telegram, str(config.source or "<config>")
    if not settings.webhook_url or not settings.bot:
        return None
    problems = []
    parts = urlsplit(settings.webhook_url)
    if parts.scheme != "https" or not parts.hostname:
        problems.append(
            f"{label}: telegram.webhook_url: {settings.webhook_url!r} is not an https:// URL "
            "(Telegram only posts to HTTPS)"
        )
    listen = parse_listen(settings.webhook_listen)
    if listen is None:
        problems.append(
            f"{label}: telegram.webhook_listen: {settings.webhook_listen!r} is not HOST:PORT"
        )
    file = config_path(settings.webhook_secret_file, config.source)
    secret = read_secret(SECRET_ENV, file, env, key="telegram.webhook_secret_file")
    if secret is None or not _SECRET_RE.fullmatch(secret.reveal()):
        problems.append(
            f"{label}: telegram.webhook_secret_file: webhook mode needs a secret token of 1-256 "
            f"letters, digits, _ or -; set ${SECRET_ENV} or point webhook_secret_file at a file"
        )
    if problems or listen is None or secret is None:
        raise ConfigError(problems)
    host, port = listen
    return WebhookMode(settings.webhook_url, host, port, parts.path or "/", secret.reveal())


class RecentIds:
    """The last ``size`` update ids taken, oldest forgotten first."""

    def __init__(self, size: int = RECENT_UPDATES) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def first_time(self, update_id: int) -> bool:
        """Remember ``update_id``; False when it is among the recent ones already."""
        if update_id in self._ids:
            return False
        self._ids.add(update_id)
        self._order.append(update_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class UpdateReceiver:
    """Serves ``mode.path`` on ``mode.host:port``: checks the secret token, then queues the
    update for the Application, which handles it as it would a polled one."""

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], mode: WebhookMode) -> None:
        self._app = app
        self._mode = mode
        self._runner: web.AppRunner | None = None
        self._taken = RecentIds()

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def address(self) -> tuple[str, int] | None:
        """The (host, port) listened on, once started (the port is known after a ":0")."""
        if self._runner is None or not self._runner.addresses:
            return None
        host, port = self._runner.addresses[0][:2]
        return str(host), int(port)

    async def start(self) -> None:
        """Listen; OSError if the address is taken (the bot retries its start)."""
        server = web.Application(client_max_size=_MAX_BODY)
        server.router.add_post(self._mode.path, self._receive)
        runner = web.AppRunner(server, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._mode.host, self._mode.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        # surrogateescape: a header that is not UTF-8 is a wrong token (403), not a crash.
        if not hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self._mode.secret.encode()
        ):
            log.warning("telegram webhook: refused a post without the secret token")
            return web.Response(status=403)
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self._app.bot)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("telegram webhook: refused a malformed update (%s)", type(exc).__name__)
            return web.Response(status=400)
        # Telegram posts an update again when our 200 came late or got lost: acknowledge the
        # repeat, but a /mute or /digest must not run twice.
        if not self._taken.first_time(update.update_id):
            log.info("telegram webhook: update %d posted again; handled once", update.update_id)
            return web.Response(status=200)
        # Answer at once; Telegram retries posts that take long, and handlers may.
        await self._app.update_queue.put(update)
        return web.Response(status=200)
