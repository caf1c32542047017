"""Telegram channel against the loopback Bot API double: sends, edits, faults, limits."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botapi import TEST_USER_ID, BotApiServer
from hypothesis import given
from hypothesis import strategies as st

from watcher.channels.base import OutgoingMessage
from watcher.channels.telegram import (
    MAX_TEXT,
    RateLimiter,
    SlidingWindow,
    TelegramChannel,
    TelegramLimits,
    parse_destination,
    split_message,
)
from watcher.clock import FakeClock
from watcher.config import Secret, config_from_dict
from watcher.errors import ConfigError, DeliveryError

GROUP = "-1001234567890"
ALERT = OutgoingMessage(
    subject="Port strike in Rotterdam",
    html='<b>Port strike in Rotterdam</b>\nDockers walked out. <a href="https://news.example/a">'
    "Read</a> &amp; more",
    text="Port strike in Rotterdam\nDockers walked out. Read & more",
    link="https://news.example/a",
)


def virtual_limiter(limits: TelegramLimits | None = None) -> tuple[RateLimiter, FakeClock]:
    """A limiter whose waits advance a fake clock instead of taking real time."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return RateLimiter(limits, clock=clock, sleep=sleep), clock


def make_channel(
    api: BotApiServer,
    *,
    token: str | None = None,
    timeout: float = 2.0,
    link_previews: bool = False,
) -> TelegramChannel:
    limiter, _ = virtual_limiter()
    return TelegramChannel(
        Secret(token or api.token),
        api_base_url=api.base_url,
        timeout=timeout,
        link_previews=link_previews,
        limiter=limiter,
    )


@pytest.fixture
async def channel(bot_api: BotApiServer) -> AsyncIterator[TelegramChannel]:
    channel = make_channel(bot_api)
    yield channel
    await channel.aclose()


async def fails(
    channel: TelegramChannel, destination: str, message: OutgoingMessage = ALERT
) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await channel.send(destination, message)
    return caught.value


# --- sending ----------------------------------------------------------------------------


async def test_sends_html_to_a_forum_topic_silently_without_preview(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    message = OutgoingMessage(
        **{
            **ALERT.__dict__,
            "silent": True,
            "buttons": (("Mute rule", "mute:r1"), ("Open", "url:https://news.example/a")),
        }
    )
    delivered = await channel.send(f"{GROUP}/42", message)

    [request] = bot_api.calls("sendMessage")
    assert request.ok
    assert request.chat_id == GROUP
    assert request.message_thread_id == 42
    assert request.text == ALERT.html
    assert request.parse_mode == "HTML"
    assert request.disable_notification is True
    assert request.link_preview_disabled is True
    assert request.buttons == [("Mute rule", "mute:r1"), ("Open", "url:https://news.example/a")]
    assert delivered.remote_id is not None
    sent = bot_api.message(GROUP, int(delivered.remote_id))
    assert sent is not None
    assert sent["message"]["text"] == "Port strike in Rotterdam\nDockers walked out. Read & more"


async def test_loud_message_to_a_private_chat(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    await channel.send("987654321", ALERT)

    [request] = bot_api.calls("sendMessage")
    assert request.chat_id == "987654321"
    assert request.message_thread_id is None
    assert request.disable_notification is False
    assert request.reply_markup is None


async def test_channel_usernames_are_destinations(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    await channel.send("@watcher_alerts", ALERT)
    assert bot_api.calls("sendMessage")[0].chat_id == "@watcher_alerts"


async def test_replies_to_an_earlier_message(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    first = await channel.send(GROUP, ALERT)
    follow_up = OutgoingMessage(
        "More",
        "+3 sources: <i>AP, Reuters, AFP</i>",
        "+3 sources: AP, Reuters, AFP",
        None,
        reply_to=first.remote_id,
    )
    second = await channel.send(GROUP, follow_up)

    request = bot_api.calls("sendMessage")[-1]
    assert request.reply_to == int(first.remote_id or 0)
    assert request.params["reply_parameters"]["allow_sending_without_reply"] is True
    assert second.remote_id != first.remote_id


async def test_edits_in_place(channel: TelegramChannel, bot_api: BotApiServer) -> None:
    first = await channel.send(GROUP, ALERT)
    update = OutgoingMessage(
        "s",
        ALERT.html + "\n<i>+2 sources</i>",
        ALERT.text + "\n+2 sources",
        None,
        edit_of=first.remote_id,
    )
    edited = await channel.send(GROUP, update)

    assert edited.remote_id == first.remote_id
    [request] = bot_api.calls("editMessageText")
    assert request.ok and request.message_id == int(first.remote_id or 0)
    assert request.parse_mode == "HTML"
    assert len(bot_api.calls("sendMessage")) == 1
    sent = bot_api.message(GROUP, int(first.remote_id or 0))
    assert sent is not None and sent["message"]["text"].endswith("+2 sources")


async def test_an_unchanged_edit_counts_as_delivered(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    first = await channel.send(GROUP, ALERT)
    again = OutgoingMessage(**{**ALERT.__dict__, "edit_of": first.remote_id})

    assert (await channel.send(GROUP, again)).remote_id == first.remote_id
    assert not bot_api.calls("editMessageText")[0].ok
    assert len(bot_api.calls("sendMessage")) == 1


async def test_editing_a_vanished_message_sends_a_new_one(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    update = OutgoingMessage(**{**ALERT.__dict__, "edit_of": "999"})
    delivered = await channel.send(GROUP, update)

    assert [r.method for r in bot_api.requests] == ["editMessageText", "sendMessage"]
    assert delivered.remote_id == str(bot_api.calls("sendMessage")[0].sent_id)


async def test_link_previews_show_the_article(bot_api: BotApiServer) -> None:
    channel = make_channel(bot_api, link_previews=True)
    await channel.send(GROUP, ALERT)
    await channel.aclose()

    options = bot_api.calls("sendMessage")[0].params["link_preview_options"]
    assert options == {"url": "https://news.example/a"}


async def test_a_long_message_goes_in_parts_cut_between_paragraphs(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    paragraphs = [f"<b>Part {i}</b> " + "word " * 500 for i in range(4)]  # ~2,500 chars each
    message = OutgoingMessage(
        "Long", "\n\n".join(paragraphs), "plain", None, reply_to="7", buttons=(("Mute", "mute:r1"),)
    )
    delivered = await channel.send(GROUP, message)

    requests = bot_api.calls("sendMessage")
    assert len(requests) == 4 and all(r.ok and r.parse_mode == "HTML" for r in requests)
    assert [r.text.split("</b>")[0] for r in requests if r.text] == [
        f"<b>Part {i}" for i in range(4)
    ]
    assert [r.reply_to for r in requests] == [7, None, None, None]
    assert [bool(r.buttons) for r in requests] == [False, False, False, True]
    assert delivered.remote_id == str(requests[0].sent_id)


# --- faults -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*`retry_after`:telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_reports_retry_after(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    bot_api.fail_next("sendMessage", 429, retry_after=3)
    error = await fails(channel, GROUP)

    assert error.retry_after == 3
    assert not error.permanent
    assert "retry after 3s" in str(error)
    assert await channel.send(GROUP, ALERT)  # the next attempt goes through


async def test_unparsable_html_is_resent_once_as_plain_text(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    bot_api.fail_next("sendMessage", 400)  # "can't parse entities"
    delivered = await channel.send(GROUP, ALERT)

    first, second = bot_api.calls("sendMessage")
    assert (first.ok, first.parse_mode) == (False, "HTML")
    assert (second.ok, second.parse_mode, second.text) == (True, None, ALERT.text)
    assert delivered.remote_id == str(second.sent_id)


async def test_html_the_real_api_would_reject_falls_back_too(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    broken = OutgoingMessage("s", "<b>unclosed & <div>odd</div>", "unclosed & odd", None)
    await channel.send(GROUP, broken)

    assert [(r.ok, r.parse_mode) for r in bot_api.calls("sendMessage")] == [
        (False, "HTML"),
        (True, None),
    ]


async def test_plain_text_is_tried_only_once(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    bot_api.fail_next("sendMessage", 400, count=2)
    error = await fails(channel, GROUP)

    assert error.permanent
    assert len(bot_api.calls("sendMessage")) == 2


async def test_blocked_bot_is_permanent(channel: TelegramChannel, bot_api: BotApiServer) -> None:
    bot_api.fail_next("sendMessage", 403)
    error = await fails(channel, "987654321")

    assert error.permanent
    assert "blocked" in str(error) and "987654321" in str(error)


async def test_unknown_chat_is_permanent_and_not_retried(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    bot_api.fail_next("sendMessage", 400, "Bad Request: chat not found")
    error = await fails(channel, GROUP)

    assert error.permanent and "chat not found" in str(error).lower()
    assert len(bot_api.calls("sendMessage")) == 1


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_are_retryable(
    channel: TelegramChannel, bot_api: BotApiServer, status: int
) -> None:
    bot_api.fail_next("sendMessage", status)
    error = await fails(channel, GROUP)

    assert not error.permanent and error.retry_after is None


async def test_an_outage_is_retryable_until_it_ends(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    bot_api.outage()
    assert not (await fails(channel, GROUP)).permanent
    bot_api.end_outage()
    assert (await channel.send(GROUP, ALERT)).remote_id


async def test_a_hanging_api_times_out_retryably(bot_api: BotApiServer) -> None:
    channel = make_channel(bot_api, timeout=0.3)
    bot_api.hang_next("sendMessage", 5)
    started = time.monotonic()
    error = await fails(channel, GROUP)
    await channel.aclose()

    assert not error.permanent
    assert time.monotonic() - started < 4.9  # before the 5 s hang ends: the timeout cut it
    assert "did not answer in time" in str(error) and "twice" in str(error)


async def test_an_unreachable_api_is_retryable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter, _ = virtual_limiter()
    channel = TelegramChannel(
        Secret("1:x"), api_base_url=f"http://127.0.0.1:{port}/bot", timeout=1, limiter=limiter
    )
    error = await fails(channel, GROUP)
    await channel.aclose()

    assert not error.permanent


async def test_a_wrong_token_is_permanent_and_never_shown(
    bot_api: BotApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "555000111:AAE-the-wrong-secret-token-xyz"
    channel = make_channel(bot_api, token=secret)
    error = await fails(channel, GROUP)
    await channel.aclose()

    assert error.permanent
    assert "token" in str(error)
    assert secret not in str(error) and secret not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert bot_api.requests[0].status == 401


async def test_a_malformed_destination_is_permanent(
    channel: TelegramChannel, bot_api: BotApiServer
) -> None:
    error = await fails(channel, "general chat")

    assert error.permanent and "@channelname" in str(error)
    assert bot_api.requests == []


# --- configuration ----------------------------------------------------------------------


def test_token_comes_from_the_environment(tmp_path: Path) -> None:
    config = config_from_dict(
        {"telegram": {"api_base_url": "http://127.0.0.1:9/bot"}}, source=tmp_path / "config.toml"
    )
    channel = TelegramChannel.from_config(config, env={"WATCHER_TELEGRAM_TOKEN": "1:abc"})
    assert channel.name == "telegram"


def test_token_file_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("1:abc\n")
    config = config_from_dict(
        {"telegram": {"token_file": "token"}}, source=tmp_path / "config.toml"
    )
    assert TelegramChannel.from_config(config, env={}).name == "telegram"


def test_missing_token_names_the_key_and_the_variable(tmp_path: Path) -> None:
    config = config_from_dict({}, source=tmp_path / "config.toml")
    with pytest.raises(ConfigError, match=r"telegram\.token_file.*WATCHER_TELEGRAM_TOKEN"):
        TelegramChannel.from_config(config, env={})


@pytest.mark.parametrize(
    ("destination", "chat", "thread"),
    [
        ("123", 123, None),
        ("-1001234567890/42", -1001234567890, 42),
        ("@news_bot", "@news_bot", None),
    ],
)
def test_parse_destination(destination: str, chat: int | str, thread: int | None) -> None:
    target = parse_destination(destination)
    assert (target.chat_id, target.thread_id) == (chat, thread)


# --- rate limits ------------------------------------------------------------------------


def test_window_allows_limit_events_per_period() -> None:
    window = SlidingWindow(2, 1.0)
    assert window.wait(0.0) == 0
    window.record(0.0)
    window.record(0.2)
    assert window.wait(0.5) == pytest.approx(0.5)
    assert window.wait(1.0) == 0


async def test_five_messages_to_one_chat_take_four_seconds() -> None:
    limiter, clock = virtual_limiter()
    start = clock.now()
    waits = [await limiter.acquire("42") for _ in range(5)]

    assert waits == [0, 1, 1, 1, 1]
    assert (clock.now() - start).total_seconds() == pytest.approx(4.0)


async def test_the_overall_limit_spans_chats() -> None:
    limiter, _ = virtual_limiter()
    waits = [await limiter.acquire(str(chat)) for chat in range(31)]

    assert sum(waits[:30]) == 0 and waits[30] == pytest.approx(1.0)


async def test_groups_get_twenty_messages_a_minute() -> None:
    limiter, clock = virtual_limiter()
    start = clock.now()
    for _ in range(21):
        await limiter.acquire(GROUP)
    assert (clock.now() - start).total_seconds() == pytest.approx(60.0)
    assert await limiter.acquire("777") == 0  # private chats are unaffected


async def test_the_channel_waits_for_the_limiter(bot_api: BotApiServer) -> None:
    limiter, clock = virtual_limiter()
    channel = TelegramChannel(Secret(bot_api.token), api_base_url=bot_api.base_url, limiter=limiter)
    start = clock.now()
    for _ in range(3):
        await channel.send("42", ALERT)
    await channel.aclose()

    assert (clock.now() - start).total_seconds() == pytest.approx(2.0)
    assert len(bot_api.sent("42")) == 3


# --- splitting --------------------------------------------------------------------------


def test_split_prefers_paragraphs_then_lines() -> None:
    assert split_message("aaaa\n\nbb\ncc", 9) == ["aaaa", "bb\ncc"]
    assert split_message("aaaa\nbb cc dd", 8) == ["aaaa", "bb cc dd"]


def test_split_never_cuts_inside_a_tag_or_an_element() -> None:
    text = 'one <a href="https://x.example/a b">two three</a> four'
    link = '<a href="https://x.example/a b">two three</a>'
    assert split_message(text, 50) == [f"one {link}", "four"]
    assert split_message(text, 45) == ["one", link, "four"]


def test_split_counts_utf16_units_like_telegram() -> None:
    emoji = "🚨" * 3000  # 6,000 UTF-16 units
    parts = split_message(emoji)
    assert len(parts) == 2 and "".join(parts) == emoji
    assert all(len(p.encode("utf-16-le")) // 2 <= MAX_TEXT for p in parts)


@given(st.text(st.sampled_from("ab <>/&;\n🚨ع"), max_size=300), st.integers(8, 60))
def test_split_keeps_everything_within_the_limit(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(len(p.encode("utf-16-le")) // 2 <= limit for p in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)


# --- the Bot API double, as later bot tests will use it ---------------------------------


async def test_the_double_drives_a_polling_application(bot_api: BotApiServer) -> None:
    from telegram import Update
    from telegram.ext import (
        Application,
        CallbackQueryHandler,
        CommandHandler,
        ContextTypes,
    )

    pressed: list[str | None] = []

    async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("all good")

    async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("muted")
        pressed.append(update.callback_query.data)

    app = Application.builder().token(bot_api.token).base_url(bot_api.base_url).build()
    app.add_handler(CommandHandler("status", status))
    app.add_handler(CallbackQueryHandler(press))
    async with app:
        await app.bot.set_my_commands([("status", "Show the daemon's status")])
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        await app.start()
        bot_api.push_message("/status")
        await asyncio.to_thread(bot_api.wait_for, "sendMessage")
        bot_api.push_callback("mute:r1")
        await asyncio.to_thread(bot_api.wait_for, "answerCallbackQuery")
        commands = await app.bot.get_my_commands()
        await app.updater.stop()
        await app.stop()

    assert [r.text for r in bot_api.sent(TEST_USER_ID)] == ["all good"]
    assert pressed == ["mute:r1"]
    assert [c.command for c in commands] == ["status"]


async def test_get_updates_confirms_with_offset(bot_api: BotApiServer) -> None:
    from telegram import Bot

    first = bot_api.push_message("hello")
    bot_api.push_message("/help")
    async with Bot(bot_api.token, base_url=bot_api.base_url) as bot:
        updates = await bot.get_updates(timeout=0)
        assert [u.update_id for u in updates] == [first, first + 1]
        assert updates[1].message is not None and updates[1].message.text == "/help"
        assert [u.update_id for u in await bot.get_updates(offset=first + 1)] == [first + 1]
        started = time.monotonic()
        assert await bot.get_updates(offset=first + 2, timeout=5) == ()
        assert time.monotonic() - started < bot_api.max_poll + 0.5
