"""What the log and `watcher alerts` / `backtest` say, on real daemon runs against loopback
feeds and the Bot API double: Bot API error pages, the queue, no network, mutes, updates."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botapi import BotApiServer
from httpserver import HttpServer
from test_pipeline import VENEZUELA, VENEZUELA_REPRINT, _config, _serve

from watcher.cli import main
from watcher.config import load_config
from watcher.daemon import Daemon, RunOptions
from watcher.logs import setup_logging
from watcher.store import open_store

_NOISY = ("httpx", "httpcore", "telegram", "apscheduler", "trafilatura", "htmldate")
Logs = Callable[[str], io.StringIO]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Route logging through watcher's own setup into a buffer; restore pytest's after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _NOISY}

    def start(level: str = "info") -> io.StringIO:
        buffer = io.StringIO()
        setup_logging(level, stream=buffer)
        return buffer

    yield start
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


@pytest.fixture
def token(bot_api: BotApiServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    return bot_api.token


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_a_bot_api_5xx_is_one_line_per_attempt_and_the_queue_is_counted(
    tmp_path: Path,
    *,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    logs: Logs,
    level: str,
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    config = _config(tmp_path, http_server, bot_api, ["/a.xml"])
    bot_api.outage()  # nginx's 502 HTML page for every request
    out = logs(level)
    await Daemon(config).run(RunOptions(once=True))
    lines = out.getvalue().splitlines()
    attempts = [ln for ln in lines if "502" in ln and "WARNING" in ln]
    assert len(attempts) == len(bot_api.calls("sendMessage")) == 1
    assert "Bad Gateway (502)" in attempts[0] and "<html>" not in attempts[0]
    assert not any("Traceback" in ln for ln in lines)
    pages = [ln for ln in lines if "<title>502 Bad Gateway</title>" in ln]
    if level == "debug":
        assert len(pages) == 1 and pages[0].split()[2] == "DEBUG"
    else:
        assert pages == []
    # Delivered to the console and alerts.jsonl; the Telegram message waits in the queue.
    (summary,) = [ln for ln in lines if "delivered" in ln]
    assert "delivered 2 messages" in summary and "1 still queued: 1 for telegram:-1001" in summary
    # The stored reason (shown by `watcher alerts`, sent to admins) has no page either.
    store = open_store(config.store_url)
    try:
        assert "<html>" not in str(store.destination_rows())
    finally:
        store.close()


def test_an_error_page_in_any_warning_is_cut(logs: Logs) -> None:
    out = logs("info")
    logging.getLogger("watcher.bot.app").warning(
        "telegram bot: getting updates failed (%s); retrying",
        "Bad Gateway (502). Parsing the server response b'<html>\\r\\n<body>x</body>' failed",
    )
    (line,) = out.getvalue().splitlines()
    assert "Bad Gateway (502)" in line and "<html>" not in line and line.endswith("retrying")


def test_a_telegram_error_with_a_traceback_is_one_line_without_the_page(logs: Logs) -> None:
    """python-telegram-bot's Updater logs its last getUpdates at stop with the exception: in
    an outage, that is a traceback holding the proxy's HTML page ("never a traceback")."""
    out = logs("info")
    page = "Bad Gateway (502). Parsing the server response b'<html>\\r\\n<body>x</body>' failed"
    try:
        raise ConnectionError(page)
    except ConnectionError:
        logging.getLogger("telegram.ext.Updater").exception(
            "Error while calling `get_updates` one more time to mark all fetched updates."
        )
    (line,) = out.getvalue().splitlines()
    assert "ConnectionError: Bad Gateway (502)" in line
    assert "<html>" not in line and "Traceback" not in out.getvalue()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_feed_reachable_is_said_once(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, token: str, logs: Logs
) -> None:
    port = _closed_port()
    config = _config(tmp_path, http_server, bot_api, [])
    text = config.source.read_text() if config.source else ""
    for i in range(3):
        text += f'\n[[feeds]]\nurl = "http://127.0.0.1:{port}/{i}.xml"\nname = "Down {i}"\n'
    assert config.source is not None
    config.source.write_text(text)
    out = logs("info")
    await Daemon(load_config(config.source, env={})).run(RunOptions(once=True))
    said = [ln for ln in out.getvalue().splitlines() if "feeds reachable" in ln]
    assert len(said) == 1 and "0 of 3 feeds reachable: is the network up?" in said[0]

    # One feed that answers: the network is up, nothing is said.
    _serve(http_server, "/a.xml", [("/a/1", "Bread", "Bread\n\nA bakery won an award.")])
    config.source.write_text(text + f'\n[[feeds]]\nurl = "{http_server.url("/a.xml")}"\n')
    out = logs("info")
    await Daemon(load_config(config.source, env={})).run(RunOptions(once=True))
    assert "feeds reachable" not in out.getvalue()


async def test_a_muted_match_is_logged_listed_and_not_a_new_hit(
    tmp_path: Path,
    *,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    logs: Logs,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    config = _config(tmp_path, http_server, bot_api, ["/a.xml"])
    now = datetime.now(UTC)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.store_url)
    try:
        store.add_mute("rule:venezuela", now + timedelta(hours=1), now, by="test")
    finally:
        store.close()
    out = logs("info")
    await Daemon(config).run(RunOptions(once=True))
    assert bot_api.calls("sendMessage") == []
    assert "rule venezuela: muted: rule venezuela (score" in out.getvalue()

    assert config.source is not None
    assert main(["alerts", "--config", str(config.source)]) == 0
    listed = capsys.readouterr().out
    (row,) = [ln for ln in listed.splitlines() if "US and Venezuela" in ln]
    assert row.split()[3] == "muted" and "venezuela" in row and "not sent" in row

    assert main(["backtest", "--config", str(config.source), "--since", "1d"]) == 0
    report = capsys.readouterr().out
    assert ": new hits" not in report and "1 match was muted or blocked then" in report
    (row,) = [ln for ln in report.splitlines() if ln.startswith("venezuela ")]
    assert row.split()[1:4] == ["1", "0", "0"]  # would match, did match, new


async def test_a_sources_update_is_listed_as_an_update_of_its_story(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    config = _config(tmp_path, http_server, bot_api, ["/a.xml"])
    await Daemon(config).run(RunOptions(once=True))
    _serve(http_server, "/b.xml", [("/b/1", "US, Venezuela trade threats", VENEZUELA_REPRINT)])
    config = _config(tmp_path / "again", http_server, bot_api, ["/a.xml", "/b.xml"])
    # The same data directory: the reprint joins the story the first run alerted.
    assert config.source is not None
    config.source.write_text(
        config.source.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path}/data"')
    )
    await Daemon(load_config(config.source, env={})).run(RunOptions(once=True))
    assert main(["alerts", "--config", str(config.source)]) == 0
    listed = capsys.readouterr().out.splitlines()
    (update,) = [ln for ln in listed if " update " in ln]
    assert "0 alerts" not in update and "story 1: US and Venezuela" in update
    assert update.split()[5] == "venezuela"  # the story's rules, not "-"
