"""The global blocklist: the file's validation, the pure decision, hot reload, `watcher check`
and `explain`, and real daemon runs on loopback feeds where a blocked article never alerts."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botapi import BotApiServer
from httpserver import HttpServer
from test_pipeline import VENEZUELA, _config, _serve

from watcher.alerts.blocklist import Blocklist, BlocklistSource, blocked, parse_blocklist
from watcher.cli import main
from watcher.config import Config, FeedConfig, load_config
from watcher.daemon import Daemon, RunOptions
from watcher.errors import ConfigError
from watcher.logs import setup_logging
from watcher.types import Article, ArticleSource

GOOD = """\
# never alert on these
terms:
  - horoscope
  - sponsored   content
  - Señal
feeds: [Tabloid Daily, "https://spam.example/feed.xml"]
domains:
  - Example-Spam.com
"""
FEEDS = (
    FeedConfig(url="https://tabloid.example/rss", name="Tabloid Daily"),
    FeedConfig(url="https://spam.example/feed.xml", name="Spam Feed"),
)


def _article(title: str = "Talks resume", text: str = "Envoys met.", **kw: str) -> Article:
    fields = {"url": "https://news.example/1", "feed_name": "Wire", **kw}
    return Article(title=title, text=text, source=ArticleSource.PAGE, **fields)  # type: ignore[arg-type]


def _blocklist(text: str = GOOD) -> Blocklist:
    return parse_blocklist(text, Path("/etc/watcher/blocklist.yaml"), FEEDS)


def test_terms_match_whole_words_ignoring_case_accents_and_spacing() -> None:
    bl = _blocklist()
    assert blocked(bl, _article(text="Today's HOROSCOPE for Leo.")) == "term 'horoscope'"
    assert blocked(bl, _article(title="Sponsored\ncontent: a new car")) == (
        "term 'sponsored   content'"
    )
    assert blocked(bl, _article(text="Sin senal en la zona.")) == "term 'Señal'"
    assert blocked(bl, _article(text="Horoscopes are a different word.")) == ""
    assert blocked(bl, _article(text="Sponsored by nobody; content elsewhere.")) == ""


def test_feeds_by_name_or_url_and_domains_with_subdomains() -> None:
    bl = _blocklist()
    assert blocked(bl, _article(feed_name="Tabloid Daily")) == "feed 'Tabloid Daily'"
    assert blocked(bl, _article(feed_name="Spam Feed")) == "feed 'Spam Feed'"  # given by URL
    assert blocked(bl, _article(url="https://www.example-spam.com/a")) == (
        "domain 'example-spam.com'"
    )
    assert blocked(bl, _article(url="https://notexample-spam.com/a")) == ""
    assert blocked(bl, _article()) == "" and blocked(Blocklist(), _article()) == ""


def test_every_problem_is_reported_with_its_line() -> None:
    text = "terms: [ok, '  ']\nfeed: [x]\ndomains:\n  - https://spam.example/page\n  - a b\n"
    with pytest.raises(ConfigError) as caught:
        _blocklist(text)
    problems = caught.value.problems
    where = [p.split(": ", 1)[0] for p in problems]
    path = "/etc/watcher/blocklist.yaml"
    assert where == [f"{path}:1", f"{path}:2", f"{path}:4", f"{path}:5"]
    assert "'feeds'" in problems[1]  # the suggestion
    assert "'spam.example'" in problems[2]
    for bad in ("terms: [a\n", "terms: horoscope\n", "- a\n- b\n", "terms: [[a]]\n"):
        with pytest.raises(ConfigError) as caught:
            _blocklist(bad)
        assert all(p.startswith(f"{path}:") for p in caught.value.problems), bad


def test_an_unknown_feed_is_a_warning_and_empty_files_are_fine() -> None:
    bl = _blocklist("feeds: [Gone Feed]\n")
    assert bl.warnings and bl.warnings[0].startswith("/etc/watcher/blocklist.yaml:1:")
    assert len(_blocklist("")) == 0 and len(_blocklist("terms:\n")) == 0


def _write_config(tmp_path: Path, blocklist: str | None) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text('[watcher]\ndata_dir = "data"\n[alerts]\nblocklist_file = "blocklist.yaml"\n')
    if blocklist is not None:
        (tmp_path / "blocklist.yaml").write_text(blocklist)
    return path


def test_a_bad_edit_keeps_the_previous_list(tmp_path: Path) -> None:
    config = load_config(_write_config(tmp_path, "terms: [horoscope]\n"), env={})
    source = BlocklistSource(config)
    assert source.load().terms == ("horoscope",)
    (tmp_path / "blocklist.yaml").write_text("terms: [horoscope, lottery]\nfeedz: []\n")
    error = source.reload()
    assert isinstance(error, ConfigError) and ":2:" in error.problems[0]
    assert source.blocklist.terms == ("horoscope",)
    assert source.reload() is None  # the same bad file is not reported again
    (tmp_path / "blocklist.yaml").write_text("terms: [lottery]\n")
    os.utime(tmp_path / "blocklist.yaml", ns=(1, 1))  # a new stamp whatever the clock
    assert source.reload() is None and source.blocklist.terms == ("lottery",)


def test_check_validates_the_blocklist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, "terms: [horoscope]\ndomain: [x.com]\n")
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'blocklist.yaml'}:2: unknown key 'domain'" in err
    (tmp_path / "blocklist.yaml").write_text("terms: [horoscope]\n")
    assert main(["check", "--config", str(path)]) == 0
    assert "blocklist: 1 entry" in capsys.readouterr().out
    (tmp_path / "blocklist.yaml").unlink()
    assert main(["check", "--config", str(path)]) == 1
    assert "blocklist file not found" in capsys.readouterr().err


def test_explain_says_blocked_by(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, "terms: [warships]\n")
    (tmp_path / "rules" / "venezuela.yaml").write_text(
        (Path(__file__).resolve().parents[1] / "rules" / "venezuela.yaml").read_text()
    )
    article = tmp_path / "article.txt"
    article.write_text(VENEZUELA)
    assert main(["explain", "--config", str(path), str(article)]) == 0
    out = capsys.readouterr().out
    assert "venezuela: MATCH" in out
    assert "blocked by term 'warships' in blocklist.yaml: no alert would be sent" in out
    assert main(["explain", "--json", "--config", str(path), str(article)]) == 0
    assert '"blocked": "term \'warships\' in blocklist.yaml"' in capsys.readouterr().out


# --- real daemon runs -------------------------------------------------------------------


@pytest.fixture
def token(bot_api: BotApiServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    return bot_api.token


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "telegram")}
    buffer = io.StringIO()
    setup_logging("info", stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def _with_blocklist(config: Config) -> Config:
    assert config.source is not None
    text = config.source.read_text()
    config.source.write_text(
        text.replace("[alerts]\n", '[alerts]\nblocklist_file = "blocklist.yaml"\n')
    )
    return load_config(config.source, env={})


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ("terms: [warships]", "term 'warships'"),
        ("feeds: [Outlet 0]", "feed 'Outlet 0'"),
        ("domains: [127.0.0.1]", "domain '127.0.0.1'"),
    ],
)
async def test_a_blocked_article_never_alerts(
    tmp_path: Path,
    *,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    log_text: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    entries: str,
    reason: str,
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    (tmp_path / "blocklist.yaml").write_text(entries + "\n")
    config = _with_blocklist(_config(tmp_path, http_server, bot_api, ["/a.xml"]))
    await Daemon(config).run(RunOptions(once=True))
    assert bot_api.calls("sendMessage") == []
    assert f"rule venezuela: blocked by {reason} (score" in log_text.getvalue()
    assert not (config.data_dir / "alerts.jsonl").exists() or (
        (config.data_dir / "alerts.jsonl").read_text() == ""
    )
    capsys.readouterr()
    assert main(["alerts", "--config", str(config.source)]) == 0
    (row,) = [ln for ln in capsys.readouterr().out.splitlines() if "US and Venezuela" in ln]
    assert row.split()[3] == "blocked"


async def test_without_a_blocklist_the_same_article_alerts(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, token: str
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    (tmp_path / "blocklist.yaml").write_text("terms: [bakery]\n")
    config = _with_blocklist(_config(tmp_path, http_server, bot_api, ["/a.xml"]))
    await Daemon(config).run(RunOptions(once=True))
    assert len(bot_api.calls("sendMessage", ok=True)) == 1


async def test_a_running_daemon_reloads_the_list_and_keeps_it_on_a_bad_edit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write_config(tmp_path, "terms: [horoscope]\n")
    path.write_text(path.read_text() + "[articles]\nworkers = 1\n")
    daemon = Daemon(load_config(path, env={}))
    task = asyncio.create_task(daemon.run(RunOptions()))
    caplog.set_level(logging.INFO)

    async def until(predicate: Callable[[], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + 30.0
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.1)

    try:
        await until(lambda: daemon.pipeline is not None)
        assert daemon.pipeline is not None
        source = daemon.pipeline.blocklist
        assert source.blocklist.terms == ("horoscope",)
        (tmp_path / "blocklist.yaml").write_text("terms: [horoscope]\ndomains: [http://x.com/]\n")
        await until(lambda: "blocklist not reloaded" in caplog.text)
        assert "blocklist.yaml:2: domains:" in caplog.text
        assert source.blocklist.terms == ("horoscope",)
        (tmp_path / "blocklist.yaml").write_text("terms: [horoscope, lottery]\n")
        await until(lambda: "blocklist reloaded" in caplog.text)
        assert source.blocklist.terms == ("horoscope", "lottery")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)


def test_run_refuses_to_start_on_an_invalid_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_text: io.StringIO
) -> None:
    # log_text: `watcher run` sets up logging; the fixture puts pytest's back afterwards.
    path = _write_config(tmp_path, "terms: [horoscope]\nfeedz: [x]\n")
    assert main(["run", "--once", "--config", str(path)]) == 1
    assert f"{tmp_path / 'blocklist.yaml'}:2: unknown key 'feedz'" in capsys.readouterr().err
