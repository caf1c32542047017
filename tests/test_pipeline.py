"""End to end in one process: loopback feeds and pages -> rules -> stories -> Telegram double,
console and alerts.jsonl, with the real store, HTTP client, worker pool and channels."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botapi import BotApiServer
from httpserver import HttpServer

from watcher.config import Config, load_config
from watcher.daemon import Daemon, RunOptions
from watcher.errors import StoreError
from watcher.pipeline import StoreTrouble
from watcher.store import open_store

ROOT = Path(__file__).resolve().parents[1]

# Synthetic articles written for these tests.
VENEZUELA = """US and Venezuela trade threats as warships gather in the Caribbean

Washington sent more warships to the Caribbean on Monday, and Venezuelan President Nicolás
Maduro answered by calling up militia units across the country. The Venezuelan government
said the deployment was a threat to its sovereignty and asked regional partners for support.

Maduro told supporters in Caracas that Venezuela would not accept foreign military pressure.
US officials said the ships are part of an operation against drug trafficking routes and
denied planning a strike on Venezuelan territory. Analysts in Caracas said the standoff
between the United States and Venezuela is the most serious in years, and opposition leaders
urged both sides to open talks before the tension turns into a military clash.
"""

VENEZUELA_REPRINT = VENEZUELA.replace("on Monday", "on Monday morning").replace(
    "Analysts in Caracas", "Several analysts in Caracas"
)

UNRELATED = """Local bakery wins national bread award

A family bakery in a small northern town won this year's national bread award for its sourdough
loaf. The judges praised the crust and the open crumb, and the owners said they would keep
their prices unchanged. The bakery opened forty years ago and still bakes every loaf by hand
in a wood-fired oven that the founder built himself from old bricks and river stones.
"""


def _page(text: str) -> str:
    title, _, body = text.partition("\n\n")
    paragraphs = "".join(f"<p>{p.replace(chr(10), ' ')}</p>" for p in body.split("\n\n"))
    return (
        f'<html lang="en"><head><title>{title}</title></head><body><article><h1>{title}</h1>'
        f"{paragraphs}</article></body></html>"
    )


def _rss(server: HttpServer, items: list[tuple[str, str, str]]) -> str:
    now = datetime.now(UTC)
    body = "".join(
        f"<item><title>{title}</title><link>{server.url(path)}</link><guid>{path}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=i))}</pubDate>"
        f"<description>{title}</description></item>"
        for i, (path, title, _) in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Loop</title>'
        f"<link>{server.url('/')}</link>{body}</channel></rss>"
    )


def _serve(server: HttpServer, feed: str, items: list[tuple[str, str, str]]) -> None:
    for path, _title, text in items:
        server.route(path, _page(text), headers={"Content-Type": "text/html; charset=utf-8"})
    server.route(feed, _rss(server, items), headers={"Content-Type": "application/rss+xml"})


def _config(
    tmp_path: Path, server: HttpServer, bot: BotApiServer, feeds: list[str], extra: str = ""
) -> Config:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    for path in rules.glob("*.yaml"):  # route to the configured defaults (Telegram chats)
        lines = path.read_text().splitlines()
        path.write_text("\n".join(x for x in lines if not x.startswith("destinations:")))
    feed_tables = "".join(
        f'[[feeds]]\nurl = "{server.url(f)}"\nname = "Outlet {i}"\n' for i, f in enumerate(feeds)
    )
    path = tmp_path / "config.toml"
    path.write_text(f"""
[watcher]
data_dir = "data"
[http]
allow_private_addresses = true
total_timeout = "10s"
[polling]
backfill_items = 10
[articles]
workers = 1
[alerts]
update_throttle = 0
[telegram]
api_base_url = "{bot.base_url}"
chats = ["-1001"]
timeout = "5s"
[console]
enabled = true
{extra}
{feed_tables}
""")
    return load_config(path, env={})


@pytest.fixture
def token(bot_api: BotApiServer, monkeypatch: pytest.MonkeyPatch) -> str:
    # The token reaches watcher as users give it: through the environment.
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    return bot_api.token


async def test_matching_article_alerts_once_per_story_everywhere(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve(
        http_server,
        "/a.xml",
        [("/a/1", "US and Venezuela trade threats", VENEZUELA), ("/a/2", "Bread award", UNRELATED)],
    )
    _serve(http_server, "/b.xml", [("/b/1", "US, Venezuela trade threats", VENEZUELA_REPRINT)])
    config = _config(tmp_path, http_server, bot_api, ["/a.xml"])
    await Daemon(config).run(RunOptions(once=True))

    (sent,) = bot_api.calls("sendMessage", ok=True)
    assert sent.chat_id == "-1001" and sent.parse_mode == "HTML"
    assert "<b>Maduro</b>" in (sent.text or "") or "<b>Nicolás Maduro</b>" in (sent.text or "")
    assert "venezuela" in (sent.text or "") and http_server.url("/a/1") in (sent.text or "")
    lines = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    (record,) = [json.loads(line) for line in lines]
    assert record["rules"][0]["name"] == "venezuela" and record["url"].endswith("/a/1")
    assert "US and Venezuela trade threats" in capsys.readouterr().out

    # The same story from a second outlet joins the story: no new alert, an in-place update.
    config = _config(tmp_path / "second", http_server, bot_api, ["/a.xml", "/b.xml"])
    shutil.copytree(tmp_path / "data", tmp_path / "second" / "data")
    await Daemon(config).run(RunOptions(once=True))
    assert len(bot_api.calls("sendMessage", ok=True)) == 1
    (edit,) = bot_api.calls("editMessageText", ok=True)
    assert edit.message_id == sent.sent_id and "+1 source:" in (edit.text or "")
    store = open_store(config.store_url)
    try:
        assert store.count_entries("done") == 3
        assert store.integrity_problems() == []
    finally:
        store.close()


async def test_telegram_down_queues_alerts_until_it_is_back(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, token: str
) -> None:
    _serve(http_server, "/a.xml", [("/a/1", "US and Venezuela trade threats", VENEZUELA)])
    config = _config(tmp_path, http_server, bot_api, ["/a.xml"])
    bot_api.outage()
    await Daemon(config).run(RunOptions(once=True))
    assert bot_api.calls("sendMessage", ok=True) == []
    store = open_store(config.store_url)
    try:
        assert store.outbox_depth() == {"telegram:-1001": 1}
        store.retry_failed(datetime.now(UTC))  # skip the backoff wait for the test
    finally:
        store.close()
    bot_api.end_outage()
    await Daemon(config).run(RunOptions(once=True))
    assert len(bot_api.calls("sendMessage", ok=True)) == 1


def test_store_failures_are_logged_once_a_minute_per_kind_and_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    trouble = StoreTrouble(clock=lambda: now[0])
    error = StoreError("watcher.db: disk I/O error")
    with caplog.at_level(logging.INFO, logger="watcher.pipeline"):
        for second in range(120):  # two minutes of failures: 3 kinds, every second
            now[0] = float(second)
            for kind in ("entries", "polls", "delivery"):
                trouble.failed(kind, error)
        trouble.recovered()
        trouble.recovered()  # once only
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 6  # each kind at 0 s and at 60 s
    assert sum(r.levelno == logging.INFO for r in caplog.records) == 1


def test_a_recovery_after_one_failure_claims_no_held_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trouble = StoreTrouble(clock=lambda: 0.0)
    with caplog.at_level(logging.INFO, logger="watcher.pipeline"):
        trouble.failed("entries", StoreError("watcher.db: disk I/O error"))
        trouble.recovered()
    (back,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert "0" not in back.getMessage()  # not "(0 failures not logged ...)"


SPORTS = """Venezuela wins the Caribbean baseball series in extra innings

Venezuela won the Caribbean baseball series on Sunday night after eleven innings in a packed
stadium in Caracas. The Venezuelan team came back from three runs down in the ninth inning and
sealed the title with a long double down the left field line. Fans in Caracas celebrated in the
streets until dawn, and the players dedicated the trophy to the coaches who trained them as
children. Venezuela last won the series six years ago and will host the next edition as well.
"""


async def test_category_filter_alerts_only_on_items_in_that_category(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, token: str
) -> None:
    items = [("/c/1", "US and Venezuela trade threats", VENEZUELA), ("/c/2", "Baseball", SPORTS)]
    for path, _title, text in items:
        http_server.route(path, _page(text), headers={"Content-Type": "text/html; charset=utf-8"})
    rss = _rss(http_server, items)
    for path, category in (("/c/1", "Politics"), ("/c/2", "Sports")):
        rss = rss.replace(
            f"<guid>{path}</guid>", f"<guid>{path}</guid><category>{category}</category>"
        )
    http_server.route("/c.xml", rss, headers={"Content-Type": "application/rss+xml"})
    config = _config(tmp_path, http_server, bot_api, ["/c.xml"])
    for path in config.watcher.rules_dir.glob("*.yaml"):
        path.unlink()
    # The same terms twice: only the filter differs, so the Sports item matching the
    # unfiltered rule shows the filter (not the text) kept it from the filtered one.
    (config.watcher.rules_dir / "politics.yaml").write_text(
        "actors: [Venezuela]\nfilters: {categories: [politics]}\n"
    )
    (config.watcher.rules_dir / "any.yaml").write_text("actors: [Venezuela]\n")
    await Daemon(config).run(RunOptions(once=True))

    lines = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    rules_by_url = {
        urlsplit(r["url"]).path: sorted(m["name"] for m in r["rules"])
        for r in map(json.loads, lines)
    }
    assert rules_by_url == {"/c/1": ["any", "politics"], "/c/2": ["any"]}


async def test_atom_updated_dates_the_alert_and_an_unusable_page_is_logged(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Atom requires <updated> only: it dates the alert. An entry whose page is missing is
    read from its summary, and the log says the page was not used."""
    updated = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    title = VENEZUELA.partition("\n\n")[0]
    http_server.route("/u/1", _page(VENEZUELA), headers={"Content-Type": "text/html"})
    http_server.route("/u/2", "gone", status=404)
    entries = "".join(
        f"<entry><id>tag:loop,2026:{i}</id><title>{t}</title>"
        f'<link href="{http_server.url(path)}"/><updated>{updated.isoformat()}</updated>'
        f"<summary>{summary}</summary></entry>"
        for i, (path, t, summary) in enumerate(
            [("/u/1", title, title), ("/u/2", "Bread award", UNRELATED.replace("\n", " "))]
        )
    )
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title>'
        f"<id>tag:loop,2026:feed</id><updated>{updated.isoformat()}</updated>{entries}</feed>"
    )
    http_server.route("/u.xml", atom, headers={"Content-Type": "application/atom+xml"})
    config = _config(tmp_path, http_server, bot_api, ["/u.xml"])
    with caplog.at_level(logging.INFO, logger="watcher.pipeline"):
        await Daemon(config).run(RunOptions(once=True))

    (line,) = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    alert = json.loads(line)
    assert urlsplit(alert["url"]).path == "/u/1"
    assert datetime.fromisoformat(alert["published"]) == updated
    unused = [r for r in caplog.records if "page not used" in r.getMessage()]
    assert len(unused) == 1 and "/u/2" in unused[0].getMessage()
    assert unused[0].getMessage().startswith("feed ")  # named by its feed, not an id


async def test_a_feed_that_failed_is_logged_when_it_works_again(
    tmp_path: Path,
    http_server: HttpServer,
    bot_api: BotApiServer,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_server.route("/f.xml", "down", status=500)
    config = _config(tmp_path, http_server, bot_api, ["/f.xml"])
    with caplog.at_level(logging.INFO, logger="watcher.pipeline"):
        await Daemon(config).run(RunOptions(once=True))
        assert "reachable again" not in caplog.text
        _serve(http_server, "/f.xml", [("/f/1", "Bread award", UNRELATED)])
        await Daemon(config).run(RunOptions(once=True))
    (back,) = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert back == "feed Outlet 0: reachable again (it had failed once)"


async def test_a_stop_writes_the_alerts_queued_for_the_local_sinks(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer, token: str
) -> None:
    """Alerts made by the last articles before a stop reach the console and alerts.jsonl;
    Telegram's wait for the next start (a stop sends nothing remote)."""
    from watcher.clock import SystemClock
    from watcher.pipeline import Pipeline
    from watcher.store.alerts import ArticleRecord
    from watcher.store.runner import StoreRunner
    from watcher.types import Article, ArticleSource, Match, Outcome, Route

    config = _config(tmp_path, http_server, bot_api, [])
    config.data_dir.mkdir()
    store = open_store(config.store_url)
    db = StoreRunner(store)
    pipeline = await Pipeline.start(config, db, clock=SystemClock())
    try:
        pipeline.stop_sending()  # the daemon's stop: no more delivery rounds
        url = "https://news.example.org/1"
        article = Article(url=url, title="Maduro speaks", text="Text.", source=ArticleSource.PAGE)
        match = Match("venezuela", 5.0, 1.0, (), "normal", (), ())
        payload = {
            "title": article.title, "url": url, "source": "Example", "published": None,
            "language": "en", "text_source": "page", "quotes": [], "priority": "normal",
            "rules": [{"name": "venezuela", "score": 5.0, "threshold": 1.0, "terms": []}],
        }  # fmt: skip
        routes = [Route(d, False, None) for d in ("telegram:-1001", "jsonl", "console")]
        record = ArticleRecord(
            entry_id=None, feed_id=None, url=url, article=article, now=datetime.now(UTC),
            matches=[(match, Outcome("venezuela", "alert", ""))], alert_kind="new",
            payload=payload, routes=routes,
        )  # fmt: skip
        assert store.record_article(record) is not None
    finally:
        await pipeline.aclose(grace=0)
    try:
        assert store.outbox_depth() == {"telegram:-1001": 1}
    finally:
        db.shutdown()
        store.close()
    (line,) = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line)["title"] == "Maduro speaks"
    assert bot_api.calls("sendMessage") == []
