"""The bot in the daemon: a python-telegram-bot Application in the daemon's loop, getting its
updates by long polling or, in webhook mode, from Telegram's posts (bot/webhook.py)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from telegram import BotCommand, CallbackQuery, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from watcher import __version__
from watcher.alerts.buttons import Press, decode
from watcher.alerts.compose import plural
from watcher.bot.access import Access, Caller, alert_chats, chat_key
from watcher.bot.replies import (
    COMMANDS,
    DEFAULT_MUTE,
    PAUSE_FOREVER,
    Status,
    Target,
    esc,
    format_feeds,
    format_mutes,
    format_rules,
    format_status,
    format_test,
    held_by_mutes,
    help_text,
    hold_reasons,
    parse_duration_arg,
    parse_mute,
    resolve_unmute,
    shown,
    unmute_reply,
    until_text,
)
from watcher.bot.webhook import UpdateReceiver, webhook_mode
from watcher.channels.telegram import TOKEN_ENV, retry_after_seconds
from watcher.clock import Clock
from watcher.config import Config, Secret, TelegramSettings, config_path, read_secret
from watcher.errors import FetchError, WatcherError
from watcher.pipeline import Pipeline
from watcher.store.botstate import ButtonAlert
from watcher.store.replicas import alive_since
from watcher.store.runner import StoreRunner

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]

# Seconds Telegram holds a getUpdates request open; a stop interrupts it at once.
POLL_TIMEOUT = 30.0
# The bot's share of the daemon's 10 s stop budget.
STOP_TIMEOUT = 2.5
# /test fetches and runs NLP; it gets this long before the user is told it timed out.
TEST_TIMEOUT = 120.0
FEEDBACK_KIND = "not_relevant"
_ALLOWED_UPDATES = ("message", "callback_query")
_RETRY_FIRST, _RETRY_CAP = 5.0, 300.0
# Polling failures (Telegram down) are logged at most this often.
_POLL_ERROR_EVERY = 300.0
_STALE_BUTTON = "This button is no longer valid."
_TAG_RE = re.compile(r"<[^>]+>")


def bot_token(config: Config, env: Mapping[str, str] | None = None) -> Secret | None:
    """The token to run the bot with: None when [telegram] bot is off or no token is set."""
    if not config.telegram.bot:
        return None
    file = config_path(config.telegram.token_file, config.source)
    return read_secret(TOKEN_ENV, file, env, key="telegram.token_file")


class TelegramBot:
    """Commands, alert buttons and admin messages, answered in the daemon's event loop.

    ``start()`` returns at once: the bot connects in the background, retrying while
    Telegram is unreachable, so the daemon never waits for Telegram to come up.
    """

    def __init__(
        self,
        config: Config,
        token: Secret,
        db: StoreRunner,
        pipeline: Pipeline,
        *,
        clock: Clock,
        started: datetime,
        poll_timeout: float = POLL_TIMEOUT,
    ) -> None:
        _quiet_http_loggers()
        self._config = config
        self._token = token.reveal()
        self._db = db
        self._pipeline = pipeline
        self._clock = clock
        self._started = started
        self._poll_timeout = poll_timeout
        self._tz = ZoneInfo(config.watcher.timezone)
        self._access = Access(config.telegram.admins)
        # Seconds between tries of an admin message that failed for a passing reason (Telegram
        # unreachable, a 5xx, a rate limit): the report of an outage must outlive the outage.
        self.admin_retry: tuple[float, ...] = (30.0, 120.0, 300.0)
        self._requests = _requests(config.telegram.timeout)
        self._app = _build_app(self._token, config.telegram, self._requests)
        self._webhook = webhook_mode(config)  # None: long polling
        self._receiver = UpdateReceiver(self._app, self._webhook) if self._webhook else None
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_poll_error = -_POLL_ERROR_EVERY
        self.ready = asyncio.Event()
        self._install_handlers()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect and start answering in the background."""
        self._starting = asyncio.create_task(self._start_loop(), name="telegram bot start")

    async def stop(self) -> None:
        """Stop polling and answering; gives up after STOP_TIMEOUT seconds."""
        try:
            await asyncio.wait_for(self._shutdown(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("telegram bot: not stopped after %g s; leaving it", STOP_TIMEOUT)
        except Exception as exc:
            log.warning("telegram bot: error while stopping: %s", self._scrub(repr(exc)))

    async def _start_loop(self) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                await self._start_once()
                return
            except InvalidToken:
                log.error(
                    "telegram bot: the bot token was rejected; check $%s or [telegram] "
                    "token_file. The bot stays off; alerts still try to send.",
                    TOKEN_ENV,
                )
                return
            except (TelegramError, RuntimeError, OSError) as exc:
                log.warning(
                    "telegram bot: cannot start (%s); retrying in %.0f s",
                    self._scrub(str(exc)),
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_CAP)

    async def _start_once(self) -> None:
        app = self._app
        await app.initialize()
        try:
            await app.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
        except TelegramError as exc:
            log.warning("telegram bot: setMyCommands failed: %s", self._scrub(str(exc)))
        if not app.running:
            await app.start()
        if self._receiver is not None and self._webhook is not None:
            await self._start_webhook(self._receiver, self._webhook.url, self._webhook.secret)
        elif app.updater is not None and not app.updater.running:
            await app.updater.start_polling(
                timeout=timedelta(seconds=self._poll_timeout),
                allowed_updates=_ALLOWED_UPDATES,
                error_callback=self._polling_error,
            )
        self.ready.set()
        log.info(
            "telegram bot @%s answers %d admins and the alert chats, %s",
            app.bot.username,
            len(self._access.admins),
            self._mode_text(),
        )

    def _mode_text(self) -> str:
        """How updates arrive, for the start log: where webhook mode listens (the port
        known once listening), or long polling."""
        address = self.webhook_address
        if self._webhook is None or address is None:
            return "by long polling"
        host, port = address
        return (
            f"in webhook mode: listening on {host}:{port}{self._webhook.path} "
            f"for {self._webhook.url}"
        )

    async def _start_webhook(self, receiver: UpdateReceiver, url: str, secret: str) -> None:
        """Listen first, then tell Telegram where to post (with the secret it must echo).
        The webhook stays set at a stop, so Telegram keeps updates until the bot is back."""
        if not receiver.running:
            await receiver.start()
        await self._app.bot.set_webhook(
            url=url, secret_token=secret, allowed_updates=_ALLOWED_UPDATES
        )

    @property
    def webhook_address(self) -> tuple[str, int] | None:
        """Where webhook mode listens, once started; None in long-polling mode."""
        return self._receiver.address if self._receiver is not None else None

    async def _shutdown(self) -> None:
        pending = [t for t in (self._starting, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        app = self._app
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if self._receiver is not None:
                await self._receiver.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
        finally:
            for request in self._requests:
                await request.shutdown()
            self.ready.clear()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run slow work (/test, admin messages) beside update handling; cancelled on stop."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- admin messages -----------------------------------------------------------------

    async def notify_admins(self, text: str) -> None:
        """Send ``text`` to every admin in the background; never raises, never waits."""
        if self._access.admins:
            self._spawn(self._send_admins(text))

    async def _send_admins(self, text: str) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), 60)
        except TimeoutError:
            log.warning("telegram bot: not connected; admin message not sent: %s", text)
            return
        message = f"⚠️ watcher: {text}"[:4000]
        # each admin on its own: one that Telegram cannot reach does not hold up the others
        await asyncio.gather(*(self._send_admin(a, message) for a in sorted(self._access.admins)))

    async def _send_admin(self, admin: str, text: str) -> None:
        for wait in (*self.admin_retry, None):
            try:
                await self._app.bot.send_message(
                    chat_id=admin,
                    text=text,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                return
            except TelegramError as exc:
                # passing: unreachable, a 5xx, a rate limit; not BadRequest (in PTB a subclass
                # of NetworkError) nor Forbidden: an unknown chat or a blocked bot stays so
                passing = isinstance(exc, NetworkError | RetryAfter) and not isinstance(
                    exc, BadRequest | Forbidden
                )
                then = "" if not passing else "; given up" if wait is None else "; trying again"
                log.warning(
                    "telegram bot: admin message to %s failed: %s%s",
                    *(admin, self._scrub(str(exc)), then),
                )
                if not passing or wait is None:
                    return
                asked = retry_after_seconds(exc) if isinstance(exc, RetryAfter) else 0.0
                await asyncio.sleep(max(wait, asked))

    # --- update routing -----------------------------------------------------------------

    def _install_handlers(self) -> None:
        app, new = self._app, filters.UpdateType.MESSAGE
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        commands: dict[str, Handler] = {
            "start": self._help,
            "help": self._help,
            "status": self._status,
            "rules": self._rules,
            "mute": self._mute_command,
            "unmute": self._unmute,
            "pause": self._pause,
            "resume": self._resume,
            "test": self._test,
            "digest": self._digest,
            "feeds": self._feeds,
        }
        for name, handler in commands.items():
            app.add_handler(CommandHandler(name, handler, filters=new))
        app.add_handler(MessageHandler(new & filters.COMMAND, self._unknown))
        app.add_handler(MessageHandler(new & filters.ChatType.PRIVATE, self._chatter))
        app.add_handler(CallbackQueryHandler(self._button))
        app.add_error_handler(self._error)

    async def _gate(self, update: Update, context: Context) -> None:
        """Let through new messages and button presses from allowed callers, nothing else."""
        caller = _caller(update)
        if caller is None:  # edited messages, channel posts, other update kinds
            raise ApplicationHandlerStop
        if self._access.allows(caller, alert_chats(self._config, self._pipeline.rules.rules)):
            return
        self._access.refuse(caller)
        if update.callback_query is not None:
            # No answer text, as README says; the empty answer only stops the client's spinner.
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        raise ApplicationHandlerStop

    async def _reply(self, update: Update, text: str) -> None:
        message = update.effective_message
        if message is None:
            return
        preview = LinkPreviewOptions(is_disabled=True)
        try:
            await message.reply_text(text, parse_mode=ParseMode.HTML, link_preview_options=preview)
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("telegram bot: reply HTML rejected (%s); sending plain text", exc.message)
            await message.reply_text(_plain(text), link_preview_options=preview)

    async def _error(self, update: object, context: Context) -> None:
        exc = context.error
        if isinstance(exc, TelegramError):  # Telegram refused or was unreachable: no bug
            log.warning("telegram bot: an update failed: %s", self._scrub(repr(exc)))
        else:
            detail = "".join(traceback.format_exception(exc)) if exc else "unknown error"
            log.error("telegram bot: an update failed:\n%s", self._scrub(detail))
        if isinstance(update, Update) and update.effective_message is not None:
            with contextlib.suppress(TelegramError):
                await update.effective_message.reply_text(
                    "Sorry, that failed. The daemon log has the details."
                )

    def _polling_error(self, exc: TelegramError) -> None:
        """PTB retries polling by itself; say so now and then, not on every attempt."""
        now = time.monotonic()
        if now - self._last_poll_error < _POLL_ERROR_EVERY:
            return
        self._last_poll_error = now
        if isinstance(exc, Conflict):
            log.error(
                "telegram bot: another program is reading this bot's updates; stop it, or "
                "set [telegram] bot = false here"
            )
        else:
            log.warning(
                "telegram bot: getting updates failed (%s); retrying", self._scrub(str(exc))
            )

    def _scrub(self, text: str) -> str:
        token = self._token
        return text.replace(token, "<token>").replace(token.replace(":", "%3A"), "<token>")

    # --- commands -----------------------------------------------------------------------

    async def _help(self, update: Update, context: Context) -> None:
        await self._reply(update, help_text())

    async def _status(self, update: Update, context: Context) -> None:
        store, now = self._db.store, self._clock.now()
        midnight = now.astimezone(self._tz).replace(hour=0, minute=0, second=0, microsecond=0)
        destinations = await self._db(store.destination_rows)
        status = Status(
            version=__version__,
            started=self._started,
            now=now,
            feeds=await self._db(store.feeds),
            alerts_today=await self._db(store.count_alerts, midnight),
            outbox=await self._db(store.outbox_depth),
            mutes=await self._db(store.active_mutes, now),
            rules=len(self._pipeline.rules.rules.rules),
            next_digest=self._next_digest(),
            failing_destinations=[d for d in destinations if d["failing_since"] is not None],
            failing_after=self._config.polling.failing_after,
            **await self._replicas(now),
        )
        await self._reply(update, format_status(status, self._tz))

    async def _replicas(self, now: datetime) -> dict[str, Any]:
        """The replicas alive and their leases, on a store they share (like `watcher status`)."""
        store = self._db.store
        if not store.shared:
            return {}
        return {
            "replicas": await self._db(store.replicas, alive_since(now, self._config.store.lease)),
            "leases": await self._db(store.lease_counts, now),
        }

    def _next_digest(self) -> datetime | None:
        if not self._config.alerts.digest_at:
            return None
        return datetime.fromisoformat(self._pipeline.next_digest())

    async def _rules(self, update: Update, context: Context) -> None:
        store, now = self._db.store, self._clock.now()
        mutes = await self._db(store.active_mutes, now)
        alerts = await self._db(store.alert_counts, now - timedelta(hours=24))
        feedback = await self._db(store.feedback_counts)
        rules = self._pipeline.rules.rules
        reply = format_rules(
            rules, mutes=mutes, alerts=alerts, not_relevant=feedback, now=now, tz=self._tz
        )
        await self._reply(update, reply)

    async def _mute_command(self, update: Update, context: Context) -> None:
        request = parse_mute(context.args or [], self._pipeline.rules.rules)
        if isinstance(request, str):
            await self._reply(update, request)
            return
        await self._reply(update, await self._mute(request.target, request.seconds, update))

    async def _mute(self, target: Target, seconds: float, update: Update) -> str:
        """Mute ``target`` for ``seconds`` from now, replacing the end of a mute it has;
        the reply states the end stored."""
        now, by = self._clock.now(), _by(update)
        asked = now + timedelta(seconds=seconds)
        until = await self._db(self._db.store.set_mute, target.key, asked, now, by)
        return self._muted(target, until, now, by) + target.note

    def _muted(self, target: Target, until: datetime, now: datetime, by: str) -> str:
        """Log a new mute; the reply saying until when it holds."""
        shown_until = until_text(until, now, self._tz)
        log.info("telegram bot: %s muted %s %s", by, target.key, shown_until)
        return f"🔕 Muted {esc(target.label)} {shown_until}."

    async def _unmute(self, update: Update, context: Context) -> None:
        now = self._clock.now()
        mutes = await self._db(self._db.store.active_mutes, now)
        if not context.args:
            await self._reply(update, format_mutes(mutes, now, self._tz))
            return
        request = resolve_unmute(" ".join(context.args), self._pipeline.rules.rules, mutes)
        if isinstance(request, str):
            await self._reply(update, request)
            return
        removed = await self._db(self._db.store.remove_mute, request.target.key, now)
        if removed:
            log.info("telegram bot: %s unmuted %s", _by(update), request.target.key)
        await self._reply(update, unmute_reply(request, bool(removed)))

    async def _pause(self, update: Update, context: Context) -> None:
        seconds: float | str = PAUSE_FOREVER
        if context.args:
            seconds = parse_duration_arg(context.args[0])
        if isinstance(seconds, str):
            await self._reply(update, seconds)
            return
        text = await self._mute(Target("all"), seconds, update)
        await self._reply(
            update,
            text.replace("🔕 Muted", "⏸ Paused")
            + "\nMatches are recorded but never sent, not even after /resume (watcher alerts "
            "lists them as muted); /resume sends new alerts again.",
        )

    async def _resume(self, update: Update, context: Context) -> None:
        removed = await self._db(self._db.store.remove_mute, "all", self._clock.now())
        log.info("telegram bot: %s resumed alerts", _by(update))
        await self._reply(
            update,
            "▶️ Alerts resumed; matches held while paused are not sent (watcher alerts lists them)."
            if removed
            else "Alerts were not paused.",
        )

    async def _test(self, update: Update, context: Context) -> None:
        args = context.args or []
        if len(args) != 1 or not _is_url(args[0]):
            await self._reply(update, "Usage: /test URL, e.g. /test https://example.org/news/1")
            return
        self._spawn(self._run_test(update, args[0]))

    async def _run_test(self, update: Update, url: str) -> None:
        try:
            report = await asyncio.wait_for(self._pipeline.explain_url(url), TEST_TIMEOUT)
            reply = format_test(report, await self._held(report))
        except FetchError as exc:
            reply = f"Could not test {shown(url)}: {esc(exc.reason[:300])}"
        except TimeoutError:
            reply = f"Testing {shown(url)} took longer than {TEST_TIMEOUT:g} s; try again."
        except WatcherError as exc:
            reply = f"Could not test {shown(url)}: {esc(str(exc)[:300])}"
        except Exception:  # a bug: the user still gets an answer, the log the traceback
            log.exception("telegram bot: /test %s failed", url)
            reply = f"Could not test {shown(url)}: internal error (see the daemon's log)"
        try:
            await self._reply(update, reply)
        except TelegramError as exc:
            log.warning("telegram bot: /test reply failed: %s", self._scrub(str(exc)))

    async def _held(self, report: dict[str, Any]) -> dict[str, str]:
        """Why the active mutes or the pause would hold the report's matches, read as the
        pipeline reads them when it decides an article."""
        now = self._clock.now()
        mutes = await self._db(self._db.store.active_mutes, now)
        return hold_reasons(held_by_mutes(report, frozenset(mutes)), mutes, now, self._tz)

    async def _digest(self, update: Update, context: Context) -> None:
        held = await self._db(self._db.store.digest_counts)
        if not held:
            await self._reply(update, "Nothing is waiting for the digest.")
            return
        await self._pipeline.send_digests()
        where = ", ".join(sorted(held))
        await self._reply(
            update, f"📰 Digest of {plural(sum(held.values()), 'alert')} queued for {esc(where)}."
        )

    async def _feeds(self, update: Update, context: Context) -> None:
        feeds = await self._db(self._db.store.feeds)
        failing_after = self._config.polling.failing_after
        await self._reply(update, format_feeds(feeds, self._clock.now(), self._tz, failing_after))

    async def _unknown(self, update: Update, context: Context) -> None:
        text = update.message.text if update.message and update.message.text else "/"
        name, _, addressee = text.split(maxsplit=1)[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the same group
        await self._reply(update, f"Unknown command /{shown(name)}. /help lists the commands.")

    async def _chatter(self, update: Update, context: Context) -> None:
        await self._reply(update, "I only understand commands: /help lists them.")

    # --- buttons ------------------------------------------------------------------------

    async def _button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        caller = _caller(update)
        if query is None or caller is None:
            return
        press = decode(query.data)
        alert = await self._db(self._db.store.button_alert, press.alert_id) if press else None
        if press is None or alert is None or not self._may_press(caller, alert, press):
            log.info("telegram bot: ignored button %r from chat %s", query.data, caller.chat_id)
            await _answer(query, _STALE_BUTTON)
            return
        if press.action == "mute":
            await self._mute_button(query, update, alert.rules[press.rule_index])
        else:
            await self._feedback_button(query, update, alert)

    def _may_press(self, caller: Caller, alert: ButtonAlert, press: Press) -> bool:
        """The press names a real rule of an alert that was sent to this chat (admins may
        press anywhere, e.g. on a forwarded alert)."""
        if not alert.rules or (press.action == "mute" and press.rule_index >= len(alert.rules)):
            return False
        if self._access.is_admin(caller):
            return True
        chats = {chat_key(d) for d in alert.destinations if d.startswith("telegram:")}
        username = f"@{caller.chat_username.lower()}" if caller.chat_username else ""
        return str(caller.chat_id) in chats or username in chats

    async def _mute_button(self, query: CallbackQuery, update: Update, rule: str) -> None:
        """Mute the rule for DEFAULT_MUTE unless it is muted already: a second press (or a
        press after /mute) says until when, changes nothing and posts nothing."""
        target, now, by = Target(f"rule:{rule}"), self._clock.now(), _by(update)
        asked = now + timedelta(seconds=DEFAULT_MUTE)
        until, new = await self._db(self._db.store.add_mute_once, target.key, asked, now, by)
        if not new:
            ends = until_text(until, now, self._tz)
            await _answer(query, f"Already muted {ends}; /mute {rule} DURATION changes it.")
            return
        text = self._muted(target, until, now, by)
        await _answer(query, _plain(text))
        who = update.effective_user.full_name if update.effective_user else "someone"
        await self._reply(update, f"{text} ({esc(who[:60])})")

    async def _feedback_button(
        self, query: CallbackQuery, update: Update, alert: ButtonAlert
    ) -> None:
        now = self._clock.now()
        rules = await self._db(
            self._db.store.add_feedback_once, alert.id, FEEDBACK_KIND, _by(update), now
        )
        if rules:
            log.info("telegram bot: %s marked alert %d not relevant", _by(update), alert.id)
            await _answer(query, f"Noted: not relevant for {', '.join(rules)}")
        else:
            await _answer(query, "Already noted. Thanks!")


# --- helpers ----------------------------------------------------------------------------


def _requests(timeout: float) -> tuple[HTTPXRequest, HTTPXRequest]:
    """One connection pool for commands and replies, one for the long poll (getUpdates adds
    its long-poll timeout to the read timeout)."""
    return (
        HTTPXRequest(
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        ),
        HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, pool_timeout=timeout),
    )


def _build_app(
    token: str, settings: TelegramSettings, requests: tuple[HTTPXRequest, HTTPXRequest]
) -> Application[Any, Any, Any, Any, Any, Any]:
    return (
        Application.builder()
        .token(token)
        .base_url(settings.api_base_url)
        .request(requests[0])
        .get_updates_request(requests[1])
        .job_queue(None)  # the daemon has its own scheduler
        .build()
    )


def _caller(update: Update) -> Caller | None:
    """Who sent a new message or pressed a button; None for every other kind of update."""
    if update.message is not None:
        user, chat = update.message.from_user, update.message.chat
    elif update.callback_query is not None and update.callback_query.message is not None:
        user, chat = update.callback_query.from_user, update.callback_query.message.chat
    else:
        return None
    return Caller(
        user_id=user.id if user else None,
        chat_id=chat.id,
        chat_username=chat.username,
        user_name=f"@{user.username}" if user and user.username else "",
    )


async def _answer(query: CallbackQuery, text: str) -> None:
    """Answer a button press with a toast; a press answered too late (e.g. made while the
    daemon was down) has already had its effect, so a refused answer is no error."""
    try:
        await query.answer(text[:200])
    except BadRequest as exc:
        log.debug("telegram bot: button answer refused: %s", exc.message)


def _by(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id}" if user else "telegram"


def _plain(text: str) -> str:
    """A reply's HTML as the plain text a button's answer shows."""
    return html.unescape(_TAG_RE.sub("", text))


def _is_url(text: str) -> bool:
    parts = urlsplit(text)
    return len(text) <= 2048 and parts.scheme in ("http", "https") and bool(parts.netloc)


def _quiet_http_loggers() -> None:
    # httpx logs every request URL at INFO, and the URL holds the bot token; their own level
    # (not the effective one) is set, so a root logger turned to debug later cannot leak it.
    for name in ("httpx", "httpcore", "telegram"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
