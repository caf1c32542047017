"""Telegram delivery through the Bot API: client-side rate limits, fallbacks, error mapping."""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from watcher.channels.base import Delivered, OutgoingMessage
from watcher.channels.spec import ChannelSpec
from watcher.clock import Clock, SystemClock
from watcher.config import Config, Secret, config_path, read_secret
from watcher.errors import ConfigError, DeliveryError

log = logging.getLogger(__name__)

TOKEN_ENV = "WATCHER_TELEGRAM_TOKEN"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
# Telegram allows 4,096 characters per message; counting UTF-16 code units of the HTML
# source over-estimates that, so parts measured this way always fit.
MAX_TEXT = 4096

# Substrings of Bot API 400 descriptions (PTB lower-cases all but the first letter).
_PARSE_ERROR = "can't parse entities"
_NOT_MODIFIED = "message is not modified"
_EDIT_IMPOSSIBLE = ("message to edit not found", "message can't be edited")
_CHAT_NOT_FOUND = "chat not found"

T = TypeVar("T")

# PTB 22 warns whenever RetryAfter.retry_after is read (even inside PTB) while it moves from
# int to timedelta; retry_after_seconds handles both.
warnings.filterwarnings("ignore", r".*`retry_after`", PTBDeprecationWarning)


# --- rate limits (pure windows, async waiting) ------------------------------------------


@dataclass
class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds; the caller passes the time in.

    A sliding log rather than a token bucket: Telegram states its limits as "N per period",
    and a bucket big enough to allow N at once lets up to 2N through in one period.
    """

    limit: int
    period: float
    _times: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        """Seconds until one more event fits; 0.0 if it fits now."""
        self._forget(now)
        if len(self._times) < self.limit:
            return 0.0
        return min(self._times[0] + self.period - now, self.period)

    def record(self, now: float) -> None:
        self._forget(now)
        self._times.append(now)

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()


@dataclass(frozen=True)
class TelegramLimits:
    """Telegram's documented flood limits, as (messages, seconds)."""

    overall: tuple[int, float] = (30, 1.0)
    per_chat: tuple[int, float] = (1, 1.0)
    per_group: tuple[int, float] = (20, 60.0)


class RateLimiter:
    """Waits until a message to a chat fits the overall, per-chat and per-group limits."""

    def __init__(
        self,
        limits: TelegramLimits | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = limits or TelegramLimits()
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._overall = SlidingWindow(*self._limits.overall)
        self._chats: dict[str, SlidingWindow] = {}
        self._groups: dict[str, SlidingWindow] = {}

    async def acquire(self, chat: str) -> float:
        """Wait for a free slot for ``chat`` and take it; returns the seconds waited."""
        windows = self._windows(chat)
        waited = 0.0
        while (delay := max(w.wait(self._now()) for w in windows)) > 0:
            await self._sleep(delay)
            waited += delay
        # No await between the check above and this, so concurrent senders cannot overbook.
        now = self._now()
        for window in windows:
            window.record(now)
        return waited

    def _windows(self, chat: str) -> list[SlidingWindow]:
        windows = [self._overall, self._window(self._chats, chat, self._limits.per_chat)]
        if _is_group(chat):
            windows.append(self._window(self._groups, chat, self._limits.per_group))
        return windows

    @staticmethod
    def _window(
        windows: dict[str, SlidingWindow], chat: str, limit: tuple[int, float]
    ) -> SlidingWindow:
        return windows.setdefault(chat, SlidingWindow(*limit))

    def _now(self) -> float:
        return self._clock.now().timestamp()


def _is_group(chat: str) -> bool:
    # Negative ids are groups and channels; @names are public channels or groups.
    return chat.startswith(("-", "@"))


# --- destinations and message parts (pure) ----------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed destination: a chat and, for forum topics, the topic's thread id."""

    chat_id: int | str
    thread_id: int | None = None

    @property
    def chat_key(self) -> str:
        return str(self.chat_id)


_DESTINATION_RE = re.compile(r"(-?\d+|@[A-Za-z]\w{3,})(?:/(\d+))?")


def parse_destination(destination: str) -> Target:
    """``"<chat_id>"``, ``"<chat_id>/<topic_id>"`` or ``"@channel"``; DeliveryError otherwise."""
    match = _DESTINATION_RE.fullmatch(destination.strip())
    if match is None:
        raise DeliveryError(
            f"telegram {destination!r}: not a chat; use a chat id such as -1001234567890, "
            "<chat_id>/<topic_id> for a forum topic, or @channelname",
            permanent=True,
        )
    chat, thread = match.groups()
    chat_id: int | str = chat if chat.startswith("@") else int(chat)
    return Target(chat_id, int(thread) if thread else None)


_TAG_RE = re.compile(r"<(/?)[a-zA-Z][^>]*>")
_SEPARATORS = ("\n\n", "\n", " ")


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """``text`` cut into parts of at most ``limit`` UTF-16 units.

    Cuts fall at paragraph, then line, then word boundaries outside HTML elements where
    possible, so that each part is valid Telegram HTML on its own.
    """
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        cut = _cut_point(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [part for part in parts if part] or [text]


def _cut_point(text: str, limit: int) -> int:
    window = text[: _fitting_prefix(text, limit)]
    safe = _safe_cuts(window)
    for separator in _SEPARATORS:
        position = window.rfind(separator)
        while position > 0:
            if safe[position]:
                return position
            position = window.rfind(separator, 0, position)
    return _hard_cut(window)


def _fitting_prefix(text: str, limit: int) -> int:
    """Length of the longest prefix of ``text`` within ``limit`` UTF-16 units."""
    end = min(len(text), limit)
    while _utf16_len(text[:end]) > limit:
        end -= max(1, (_utf16_len(text[:end]) - limit) // 2)
    return end


def _safe_cuts(window: str) -> list[bool]:
    """For each position, whether a cut there is outside every tag and element."""
    safe = [False] * (len(window) + 1)
    depth, start = 0, 0
    for tag in _TAG_RE.finditer(window):
        if depth == 0:
            safe[start : tag.start() + 1] = [True] * (tag.start() + 1 - start)
        depth = max(0, depth - 1) if tag.group(1) else depth + 1
        start = tag.end()
    if depth == 0:
        safe[start:] = [True] * (len(window) + 1 - start)
    return safe


def _hard_cut(window: str) -> int:
    # No boundary outside an element: cut inside one, but never inside a tag or an entity.
    for position in range(len(window), 0, -1):
        in_tag = window.rfind("<", 0, position) > window.rfind(">", 0, position)
        in_entity = window.rfind("&", 0, position) > window.rfind(";", 0, position)
        if not (in_tag or in_entity):
            return position
    return len(window)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _html_to_text(fragment: str) -> str:
    return html.unescape(_TAG_RE.sub("", fragment))


def _parts(message: OutgoingMessage) -> list[tuple[str, str]]:
    """(HTML, plain text) pairs to send, more than one when over Telegram's limit."""
    source = message.html or html.escape(message.text, quote=False)
    plain = message.text or _html_to_text(source)
    parts = split_message(source)
    if len(parts) == 1 and _utf16_len(plain) <= MAX_TEXT:
        return [(source, plain)]
    return [(part, _html_to_text(part)) for part in parts]


# A phone shows about this many characters across one keyboard row.
_ROW_CHARS = 28


def keyboard_rows(labels: list[str], width: int = _ROW_CHARS) -> list[list[int]]:
    """Button indexes per row for a phone screen: two short labels may share a row, a long
    one gets its own, so no label is cut off."""
    rows: list[list[int]] = []
    for i, label in enumerate(labels):
        last = rows[-1] if rows else None
        if (
            last is not None
            and len(last) == 1
            and 2 * max(len(labels[last[0]]), len(label)) <= width
        ):
            last.append(i)
        else:
            rows.append([i])
    return rows


def _keyboard(buttons: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    keys = [
        InlineKeyboardButton(label, url=data[4:])
        if data.startswith("url:")
        else InlineKeyboardButton(label, callback_data=data)
        for label, data in buttons
    ]
    rows = keyboard_rows([label for label, _ in buttons])
    return InlineKeyboardMarkup([[keys[i] for i in row] for row in rows])


def _message_id(remote_id: str | None) -> int | None:
    return int(remote_id) if remote_id and remote_id.isdigit() else None


# --- errors -----------------------------------------------------------------------------


def _says(exc: TelegramError, *phrases: str) -> bool:
    text = exc.message.lower()
    return any(phrase in text for phrase in phrases)


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait a RetryAfter asks for, in seconds."""
    value = exc.retry_after  # an int today, a timedelta with PTB_TIMEDELTA or in PTB 23
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _delivery_error(  # noqa: PLR0911
    exc: TelegramError, destination: str, token: str
) -> DeliveryError:
    """The DeliveryError for a Bot API failure, with the bot token scrubbed from it."""
    where = f"telegram {destination}"
    # A 5xx error page is not kept in the reason (it is stored and shown to admins).
    detail = _scrub(exc.message or type(exc).__name__, token).partition(_PAGE)[0]
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return DeliveryError(
            f"{where}: flood control, retry after {seconds:g}s", retry_after=seconds
        )
    if isinstance(exc, ChatMigrated):
        return DeliveryError(
            f"{where}: the group is now a supergroup; use chat id {exc.new_chat_id} instead",
            permanent=True,
        )
    if isinstance(exc, InvalidToken):
        return DeliveryError(
            f"{where}: the bot token was rejected ({detail}); check "
            f"${TOKEN_ENV} or [telegram] token_file",
            permanent=True,
        )
    if isinstance(exc, Forbidden):
        return DeliveryError(
            f"{where}: {detail} (unblock the bot or add it back to the chat)", permanent=True
        )
    if isinstance(exc, BadRequest):
        hint = (
            " (check the chat id, and that the bot is a member)"
            if _says(exc, _CHAT_NOT_FOUND)
            else ""
        )
        return DeliveryError(f"{where}: rejected: {detail}{hint}", permanent=True)
    if isinstance(exc, TimedOut):
        return DeliveryError(
            f"{where}: the Bot API did not answer in time ({detail}); it may have delivered "
            "the message, so the retry can show it twice (a longer [telegram] timeout helps "
            "on a slow link)"
        )
    return DeliveryError(f"{where}: {detail}")


_PAGE = ". Parsing the server response"


def _scrub(text: str, token: str) -> str:
    if not token:
        return text
    return text.replace(token, "<token>").replace(token.replace(":", "%3A"), "<token>")


def _quiet_http_loggers() -> None:
    # httpx logs every request URL at INFO, and the URL holds the bot token.
    for name in ("httpx", "httpcore", "telegram"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


async def _html_or_plain(
    call: Callable[[str, str | None], Awaitable[T]], html_text: str, plain: str
) -> T:
    """``call(html, HTML)``; if Telegram cannot parse the HTML, ``call(plain, None)`` once."""
    try:
        return await call(html_text, ParseMode.HTML)
    except BadRequest as exc:
        if not _says(exc, _PARSE_ERROR):
            raise
        log.warning("telegram: HTML rejected (%s); resending as plain text", exc.message)
    return await call(plain, None)


# --- the channel ------------------------------------------------------------------------


class TelegramChannel:
    """Sends alerts to Telegram chats, forum topics and channels through the Bot API."""

    name = "telegram"

    def __init__(
        self,
        token: Secret,
        *,
        api_base_url: str = DEFAULT_API_BASE_URL,
        link_previews: bool = False,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        _quiet_http_loggers()
        self._token = token.reveal()
        self._link_previews = link_previews
        self._limiter = limiter or RateLimiter()
        self._request = HTTPXRequest(
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        # One request object for both; this channel never long-polls.
        self._bot = Bot(
            self._token,
            base_url=api_base_url,
            request=self._request,
            get_updates_request=self._request,
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
    ) -> TelegramChannel:
        """The channel [telegram] describes; ConfigError if there is no token."""
        settings = config.telegram
        token = read_secret(
            TOKEN_ENV,
            config_path(settings.token_file, config.source),
            env,
            key="telegram.token_file",
        )
        if token is None:
            raise ConfigError(
                f"{config.source or '<config>'}: telegram.token_file: no bot token; set "
                f"${TOKEN_ENV} or point token_file at a file holding it"
            )
        return cls(
            token,
            api_base_url=settings.api_base_url,
            link_previews=settings.link_previews,
            timeout=settings.timeout,
            limiter=limiter,
        )

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        """Send (or edit in place) ``message``; raises DeliveryError and nothing else.

        An edit whose original is gone or too long to edit is sent as a new message, so the
        returned remote id may differ from ``edit_of``.
        """
        target = parse_destination(destination)
        try:
            if message.edit_of is not None:
                return await self._edit(target, message)
            return await self._send_new(target, message)
        except TelegramError as exc:
            raise _delivery_error(exc, destination, self._token) from None

    async def aclose(self) -> None:
        await self._request.shutdown()

    async def _send_new(self, target: Target, message: OutgoingMessage) -> Delivered:
        parts = _parts(message)
        first: int | None = None
        for i, part in enumerate(parts):
            reply_to = _message_id(message.reply_to) if i == 0 else None
            sent = await self._send_part(
                target, message, part, reply_to=reply_to, with_buttons=i == len(parts) - 1
            )
            first = first or sent.message_id
        return Delivered(str(first))

    async def _send_part(
        self,
        target: Target,
        message: OutgoingMessage,
        part: tuple[str, str],
        *,
        reply_to: int | None,
        with_buttons: bool,
    ) -> Message:
        async def call(text: str, parse_mode: str | None) -> Message:
            await self._limiter.acquire(target.chat_key)
            return await self._bot.send_message(
                chat_id=target.chat_id,
                text=text,
                parse_mode=parse_mode,
                message_thread_id=target.thread_id,
                disable_notification=message.silent,
                link_preview_options=self._preview(message),
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to
                else None,
                reply_markup=_keyboard(message.buttons) if with_buttons else None,
            )

        return await _html_or_plain(call, *part)

    async def _edit(self, target: Target, message: OutgoingMessage) -> Delivered:
        message_id, parts = _message_id(message.edit_of), _parts(message)
        as_new = replace(message, edit_of=None)
        if message_id is None or len(parts) > 1:
            return await self._send_new(target, as_new)

        async def call(text: str, parse_mode: str | None) -> Message | bool:
            await self._limiter.acquire(target.chat_key)
            return await self._bot.edit_message_text(
                text=text,
                chat_id=target.chat_id,
                message_id=message_id,
                parse_mode=parse_mode,
                link_preview_options=self._preview(message),
                reply_markup=_keyboard(message.buttons),
            )

        try:
            await _html_or_plain(call, *parts[0])
        except BadRequest as exc:
            if _says(exc, _NOT_MODIFIED):
                return Delivered(message.edit_of)
            if not _says(exc, *_EDIT_IMPOSSIBLE):
                raise
            log.info(
                "telegram %s: cannot edit message %s (%s); sending a new one",
                target.chat_key,
                message_id,
                exc.message,
            )
            return await self._send_new(target, as_new)
        return Delivered(message.edit_of)

    def _preview(self, message: OutgoingMessage) -> LinkPreviewOptions | None:
        if not self._link_previews:
            return LinkPreviewOptions(is_disabled=True)
        return LinkPreviewOptions(url=message.link) if message.link else None


def _configured(config: Config) -> bool:
    settings = config.telegram
    return bool(settings.chats or settings.token_file or os.environ.get(TOKEN_ENV))


# What rules may name: a chat id, or a public @username (5-32 of a-z, 0-9, _), optionally
# with a forum topic.
_RULE_TARGET_RE = re.compile(r"(-?\d+|@[A-Za-z][A-Za-z0-9_]{4,31})(/\d+)?")


def _accepts(target: str) -> bool:
    return _RULE_TARGET_RE.fullmatch(target) is not None


SPEC = ChannelSpec(
    kind="telegram",
    configured=_configured,
    build=TelegramChannel.from_config,
    accepts=_accepts,
    example="telegram:-1001234567890, telegram:@channel, optionally /TOPIC",
    can_edit=True,
    buttons=True,
    shared=True,
    defaults=lambda config: tuple(f"telegram:{c}" for c in config.telegram.chats),
)
