"""The web page on loopback: every page, filters, search, tester, login, CSRF and escaping."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pgserver import PgServer

from watcher.alerts.compose import build_payload
from watcher.articles.extract import article_from_text
from watcher.articles.fingerprint import signature
from watcher.clock import FakeClock
from watcher.config import Config, FeedConfig, Secret, load_config
from watcher.daemon import Daemon, RunOptions
from watcher.errors import ConfigError
from watcher.explain import explain_article
from watcher.http import HttpClient
from watcher.pipeline import Pipeline
from watcher.rules.explain import format_explanation
from watcher.rules.reload import RulesSource
from watcher.store import Store, open_store
from watcher.store.alerts import ArticleRecord, StoryChange
from watcher.store.feeds import PollSuccess
from watcher.store.runner import StoreRunner
from watcher.store.views import (
    StoryFilter,
    feed_activity,
    rule_activity,
    search_articles,
    stories_page,
)
from watcher.types import Article, ArticleSource, Entry, Evidence, Match, NewEntry, Outcome, Route
from watcher.web import Backend, WebServer
from watcher.workers import InlinePool

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
TOKEN = "s3cret-web-token"
HOSTILE = 'Tom & Jerry <script>alert("x")</script> a<b && c>d'
TG, MAIL = "telegram:-1001", "email:desk@example.org"

VENEZUELA = """US and Venezuela trade threats as warships gather in the Caribbean
Washington sent more warships to the Caribbean on Monday, and Venezuelan President Nicolás
Maduro answered by calling up militia units across the country. The Venezuelan government
said the deployment was a threat to its sovereignty and asked regional partners for support.
Maduro told supporters in Caracas that Venezuela would not accept foreign military pressure.
US officials said the ships are part of an operation against drug trafficking routes and
denied planning a strike on Venezuelan territory."""


# --- a populated store ------------------------------------------------------------------


def _match(
    rule: str, sentence: str, word: str, priority: str = "normal", context: str = ""
) -> Match:
    start = sentence.find(word)
    found = [Evidence("actor", word, word, "text", sentence, start, start + len(word))]
    if context:  # a context-only term (weight 0): counted, never marked
        at = sentence.find(context)
        found.append(
            Evidence(
                "keyword", context, context, "text", sentence, at, at + len(context), weight=0.0
            )
        )
    return Match(rule, 5.0, 3.0, tuple(found), priority, (), ("matched",))


def record_story(
    store: Store,
    i: int,
    *,
    rule: str = "venezuela",
    title: str = "",
    text: str = "",
    feed: str = "Outlet",
    language: str = "en",
    priority: str = "normal",
    now: datetime = NOW,
    story_id: int | None = None,
    context: str = "",
) -> int:
    """One alerted (or, with story_id, joining) article as the pipeline records it."""
    title = title or f"Story {i}: Maduro speaks in Caracas"
    text = text or f"Maduro spoke in Caracas on day {i}. Markets were calm."
    article = Article(
        url=f"https://news.example/{i}",
        title=title,
        text=text,
        source=ArticleSource.PAGE,
        language=language,
        published=now,
        feed_name=feed,
    )
    sentence = text.split(". ")[0] + "."
    word = "Maduro" if "Maduro" in sentence else sentence.split()[0]
    m = _match(rule, sentence, word, priority, context)
    new = story_id is None
    rec = ArticleRecord(
        entry_id=None,
        feed_id=None,
        url=article.url,
        article=article,
        now=now,
        matches=[(m, Outcome(rule, "alert" if new else "join", "why"))],
        story=StoryChange(story_id, title, signature(title, text), {rule: m.score}),
        alert_kind="new" if new else None,
        payload=build_payload(article, [m], source=feed, quotes=1) if new else None,
        routes=[Route(TG, False, None), Route(MAIL, False, None)] if new else [],
    )
    article_id = store.record_article(rec)
    assert article_id is not None
    return article_id


def fill(store: Store) -> None:
    """60 Venezuela stories over 3 days, 3 Ukraine (critical, Spanish), one hostile, feeds."""
    for i in range(60):
        record_story(store, i, now=NOW - timedelta(hours=i), feed=f"Outlet {i % 3}")
    for i in range(3):
        record_story(
            store,
            100 + i,
            rule="ukraine-peace",
            title=f"Conversaciones de paz {i}",
            text=f"Zelensky habló de la tregua {i}. Rusia respondió.",
            language="es",
            priority="critical",
            feed="Diario",
        )
    record_story(store, 200, title=HOSTILE, text=f"Maduro said {HOSTILE}. Nothing else.")
    first = stories_page(store, StoryFilter(rule="venezuela"), 1, 1).items[0]
    record_story(store, 300, title="Another outlet on the same story", story_id=first.story_id)
    jobs = {j.destination: j for j in store.outbox_heads(NOW)}
    store.delivery_sent(jobs[TG].id, TG, "42", NOW)
    store.delivery_failed(jobs[MAIL].id, MAIL, "550 mailbox unavailable", NOW, retry_at=None)
    _feeds(store)


def _feeds(store: Store) -> None:
    rows = store.sync_feeds(
        [
            FeedConfig(url="https://good.example/feed.xml", name="Good Feed"),
            FeedConfig(url="https://bad.example/feed.xml", name="Broken <Feed>"),
            FeedConfig(url="https://quiet.example/feed.xml", name="Quiet Feed"),
        ],
        NOW - timedelta(days=20),
    )
    good, bad = (next(f for f in rows if f.name == name) for name in ("Good Feed", "Broken <Feed>"))
    for day in range(5):
        when = NOW - timedelta(days=day)
        new = [
            NewEntry(
                Entry(
                    f"g{day}-{n}",
                    f"https://good.example/{day}/{n}",
                    "T",
                    "",
                    "",
                    "",
                    when,
                    None,
                    "en",
                ),
                (f"guid:g{day}-{n}",),
                f"fp{day}-{n}",
            )
            for n in range(day + 1)
        ]
        store.record_poll_success(
            good.id, PollSuccess(when, when + timedelta(minutes=15), None, None, None, new=new)
        )
    store.record_poll_failure(bad.id, NOW - timedelta(days=3), "HTTP 500 <oops>", NOW)
    store.record_poll_failure(bad.id, NOW, "HTTP 500 <oops>", NOW + timedelta(hours=1))


# --- the server -------------------------------------------------------------------------


def write_config(
    tmp_path: Path,
    extra: str = "",
    *,
    private: bool = False,
    port: int = 0,
    timezone: str = "UTC",
) -> Config:
    rules = tmp_path / "rules"
    if not rules.exists():
        shutil.copytree(ROOT / "rules", rules)
    path = tmp_path / "config.toml"
    path.write_text(f"""
[watcher]
data_dir = "data"
timezone = "{timezone}"
[http]
allow_private_addresses = {str(private).lower()}
total_timeout = "10s"
[articles]
workers = 1
[web]
enabled = true
port = {port}
{extra}
""")
    return load_config(path, env={})


@dataclass
class Site:
    base: str
    config: Config
    store: Store
    db: StoreRunner
    server: WebServer

    def url(self, path: str) -> str:
        return self.base + path


@contextlib.asynccontextmanager
async def serve(
    tmp_path: Path,
    *,
    token: str | None = None,
    private: bool = False,
    populate: bool = True,
    timezone: str = "UTC",
) -> AsyncIterator[Site]:
    """The web page over a populated store, on 127.0.0.1 and a free port."""
    config = write_config(tmp_path, private=private, timezone=timezone)
    config.data_dir.mkdir(exist_ok=True)
    store = open_store(config.store_url)
    if populate:
        fill(store)
    db = StoreRunner(store)
    clock = FakeClock(NOW)
    rules = RulesSource(config.watcher.rules_dir)
    rules.load()
    client = HttpClient(config.http, clock=clock)
    pipeline = Pipeline(
        config, db, clock=clock, client=client, cpu=InlinePool(), feeds=[], rules=rules
    )
    backend = Backend(
        config,
        db,
        clock,
        rules=lambda: rules.rules,
        explainer=pipeline.explainer,
        cpu=InlinePool(),
        token=Secret(token) if token else None,
    )
    server = WebServer(backend)
    await server.start()
    try:
        yield Site(f"http://127.0.0.1:{server.port}", config, store, db, server)
    finally:
        await server.aclose()
        await pipeline.aclose(grace=0)
        db.shutdown()
        store.close()


@contextlib.asynccontextmanager
async def browser_session() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str, status: int = 200) -> str:
    async with session.get(url, allow_redirects=False) as r:
        text = await r.text()
        assert r.status == status, text[:2000]
        return text


async def post(
    session: aiohttp.ClientSession, url: str, data: dict[str, Any], status: int = 200
) -> tuple[str, aiohttp.ClientResponse]:
    async with session.post(url, data=data, allow_redirects=False) as r:
        text = await r.text()
        assert r.status == status, text[:2000]
        return text, r


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def notes(page: str) -> list[str]:
    """The page's notes on what it ignored or why nothing matches."""
    return [html.unescape(n) for n in re.findall(r'<p class="problem">([^<]*)</p>', page)]


def selected(page: str, menu: str) -> str:
    """The value a filter menu shows as chosen ("" for any)."""
    block = re.search(rf'<select name="{menu}">(.*?)</select>', page, re.S)
    assert block, f"no {menu} menu"
    chosen = re.findall(r'<option value="([^"]*)" selected>', block.group(1))
    return html.unescape(chosen[0]) if chosen else ""


def story_titles(page: str) -> list[str]:
    return [
        html.unescape(t) for t in re.findall(r'<h2><a href="[^"]*"[^>]*>([^<]*)</a></h2>', page)
    ]


# --- pages ------------------------------------------------------------------------------


async def test_stories_list_newest_first_with_sources_evidence_and_delivery(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/stories"))
        titles = story_titles(page)
        assert len(titles) == 50  # one page
        assert titles[0] == HOSTILE  # recorded last, at NOW
        assert "64 alerted" in page and "page 1 of 2" in page
        assert "+1" in page and "Another outlet on the same story" in page
        assert "<mark>Maduro</mark>" in page
        assert 'class="state sent">sent</span> telegram:-1001' in page
        assert "550 mailbox unavailable" in page
        older = await get(s, site.url("/stories?page=2"))
        assert len(story_titles(older)) == 14
        assert set(story_titles(older)).isdisjoint(titles)


async def test_hostile_markup_is_escaped_on_every_page(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        for path in (
            "/stories",
            "/search?q=Jerry",
            "/feeds",
            "/rules",
            "/stories?feed=%3Cscript%3E",
        ):
            page = await get(s, site.url(path))
            assert "<script>alert" not in page and "<Feed>" not in page and "<oops>" not in page
        stories = await get(s, site.url("/stories"))
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in stories
        assert "Broken &lt;Feed&gt;" in await get(s, site.url("/feeds"))
        found = await get(s, site.url("/search?q=Jerry"))
        assert "<mark>Jerry</mark>" in found and "&lt;script&gt;" in found


async def test_story_filters_narrow_the_timeline(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        ukraine = story_titles(await get(s, site.url("/stories?rule=ukraine-peace")))
        assert sorted(ukraine) == [f"Conversaciones de paz {i}" for i in range(3)]
        assert story_titles(await get(s, site.url("/stories?priority=critical"))) == ukraine
        assert story_titles(await get(s, site.url("/stories?language=es"))) == ukraine
        assert story_titles(await get(s, site.url("/stories?feed=Diario"))) == ukraine
        day = (NOW - timedelta(days=2)).date().isoformat()
        old = story_titles(await get(s, site.url(f"/stories?until={day}")))
        assert old and all(int(t.split()[1].rstrip(":")) >= 34 for t in old)
        page = await get(s, site.url("/stories?since=yesterday&rule=ukraine-peace"))
        assert "not a date" in page and len(story_titles(page)) == 3
        nothing = await get(s, site.url("/stories?rule=ukraine-peace&language=en"))
        assert "No alerted stories" in nothing and notes(nothing) == []
        # The filter form offers what the store holds.
        assert '<option value="ukraine-peace"' in await get(s, site.url("/stories"))


@pytest.mark.parametrize(
    ("query", "timezone"),
    [
        ("until=9999-12-31", "UTC"),  # the date picker's last day: the day after overflows
        ("since=99999-01-01", "UTC"),
        ("since=0001-01-01", "Asia/Tokyo"),  # before year 1 in UTC, where the store compares
    ],
)
async def test_dates_out_of_range_are_noted_and_ignored(
    tmp_path: Path, query: str, timezone: str
) -> None:
    async with serve(tmp_path, timezone=timezone) as site, browser_session() as s:
        page = await get(s, site.url(f"/stories?{query}&rule=ukraine-peace"))
        key, _, value = query.partition("=")
        assert re.search(rf'class="problem">{key}: &#39;{value}&#39;[^<]*ignored', page)
        assert len(story_titles(page)) == 3  # the other filter still applies


async def test_an_alert_id_past_the_stores_integers_is_a_400(tmp_path: Path) -> None:
    async with serve(tmp_path, token=TOKEN) as site, browser_session() as s:
        login = await get(s, site.url("/login"))
        await post(s, site.url("/login"), {"csrf": csrf_of(login), "token": TOKEN}, 303)
        csrf = csrf_of(await get(s, site.url("/stories")))
        for alert in ("9" * 30, "-1", "0", "1e3"):
            await post(s, site.url("/feedback"), {"csrf": csrf, "alert": alert}, 400)
        assert await site.db(site.store.feedback_counts) == {}


async def test_a_page_number_out_of_range_is_noted(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        first = story_titles(await get(s, site.url("/stories")))
        last = story_titles(await get(s, site.url("/stories?page=2")))
        for bad in ("-1", "0", "abc", "1e9"):
            page = await get(s, site.url(f"/stories?page={bad}"))
            assert story_titles(page) == first and any(n.startswith("page") for n in notes(page))
        for past in ("3", "9" * 40):
            page = await get(s, site.url(f"/stories?page={past}"))
            assert story_titles(page) == last and "page 2 of 2" in page
            assert any(n.startswith("page") and "2" in n for n in notes(page)), notes(page)
        assert notes(await get(s, site.url("/stories?page=2"))) == []
        found = await get(s, site.url("/search?q=Caracas&page=7"))
        assert "page 3 of 3" in found and len(notes(found)) == 1


async def test_an_unknown_filter_value_is_noted_and_the_menus_show_the_filter(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        everything = story_titles(await get(s, site.url("/stories")))
        for key, value in (("rule", "nosuch"), ("priority", "urgent"), ("language", "xx")):
            page = await get(s, site.url(f"/stories?{key}={value}"))
            assert story_titles(page) == everything and selected(page, key) == ""
            assert [n.split(":")[0] for n in notes(page)] == [key] and value in notes(page)[0]
        # A priority the rules define but no story has yet is applied and shown as chosen.
        low = await get(s, site.url("/stories?priority=low"))
        assert story_titles(low) == [] and selected(low, "priority") == "low"
        assert notes(low) == []
        page = await get(s, site.url("/stories?rule=ukraine-peace&language=es"))
        assert (selected(page, "rule"), selected(page, "language")) == ("ukraine-peace", "es")
        # An ignored value is not carried into the pager's links.
        page = await get(s, site.url("/stories?rule=nosuch&page=1"))
        pager = re.search(r'<nav class="pager".*?</nav>', page, re.S)
        assert pager and "page=2" in pager.group(0) and "nosuch" not in pager.group(0)


async def test_since_after_until_says_why_nothing_matches(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/stories?since=2026-01-14&until=2026-01-10"))
        assert story_titles(page) == [] and len(notes(page)) == 1
        same_day = await get(s, site.url("/stories?since=2026-01-14&until=2026-01-14"))
        assert story_titles(same_day) and notes(same_day) == []


async def test_search_finds_words_with_prefixes_and_pages(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/search?q=tregua"))
        assert "3 articles match" in page and "<mark>tregua</mark>" in page
        assert "61 articles match" in await get(s, site.url("/search?q=Carac"))  # prefix
        assert "page 1 of 3" in await get(s, site.url("/search?q=Caracas"))
        assert "0 articles match" in await get(s, site.url('/search?q="NEAR(x)" OR *'))
        assert "articles match" not in await get(s, site.url("/search?q="))


async def test_rules_page_charts_hits_feedback_mutes_and_reload_errors(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/rules"))
        chart = re.search(r'id="rule-venezuela".*?(<svg class="chart".*?</svg>)', page, re.S)
        assert chart and chart.group(1).count("<rect") == 30
        # 11 stories from 00:00 to 10:00, the hostile one and the joining article
        assert "<title>2026-01-14: 13</title>" in chart.group(1)
        assert "broken.yaml" not in page
        (site.config.watcher.rules_dir / "broken.yaml").write_text("name: x\nmatch: [\n")
        page = await get(s, site.url("/rules"))
        assert 'id="reload-error"' in page and re.search(r"broken\.yaml:\d+:\d+", page)
        # a rule sending to a channel the config does not turn on: the daemon refuses it too
        (site.config.watcher.rules_dir / "broken.yaml").write_text(
            "name: x\nactors: [Aa]\ndestinations: [email:desk@example.org]\n"
        )
        page = await get(s, site.url("/rules"))
        assert 'id="reload-error"' in page and "no email channel is configured" in page


async def test_feeds_page_puts_failing_and_silent_first_and_sorts(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/feeds"))
        order = re.findall(r'<tr class="status-(\w+)">', page)
        assert order[0] == "failing" and order[-1] == "ok", order
        assert "HTTP 500 &lt;oops&gt;" in page and "backoff" in page
        good = re.search(r"Good Feed.*?(<svg.*?</svg>)", page, re.S)
        assert good and good.group(1).count("<rect") == 14 and "zero" in good.group(1)
        by_name = await get(s, site.url("/feeds?sort=name"))
        names = re.findall(r'target="_blank">([^<]+)</a>', by_name)
        assert names == sorted(names, key=str.casefold)
        assert 'href="/feeds?sort=name&amp;desc=1"' in by_name  # the header flips the order
        by_name_desc = await get(s, site.url("/feeds?sort=name&desc=1"))
        assert re.findall(r'target="_blank">([^<]+)</a>', by_name_desc) == names[::-1]


# --- the tester -------------------------------------------------------------------------


async def test_tester_explains_pasted_text_like_watcher_explain(tmp_path: Path) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        form = await get(s, site.url("/tester"))
        page, _ = await post(s, site.url("/tester"), {"csrf": csrf_of(form), "text": VENEZUELA})
        assert "MATCH</span> venezuela" in page and "no match</span> ukraine-peace" in page
        assert "and <mark>Venezuelan</mark> <mark>President</mark>" in page  # whole words
        # a keyword's evidence names its group and the phrase, as `watcher explain` does
        terms = re.findall(r'<span class="term">(.*?)</span>', html.unescape(page))
        assert any(re.fullmatch(r"keyword \w+ \(phrase '[^']+'\)", t) for t in terms), terms
        config = site.config
        rules = RulesSource(config.watcher.rules_dir)
        report = explain_article(
            "pasted text",
            article_from_text(VENEZUELA),
            rules.load(),
            nlp=config.nlp,
            now=NOW,
            timezone="UTC",
            quotes=config.alerts.summary_sentences,
        )
        assert report["text_source"] == "file"  # explain reads it as a text file
        cli = format_explanation({**report, "text_source": "pasted text"})
        shown = re.search(r"<pre>(.*?)</pre>", page, re.S)
        assert shown and html.unescape(shown.group(1)) == cli
        meta = re.search(r'<p class="meta">(.*?)</p>', page, re.S)
        assert meta and "pasted" in meta.group(1) and "file" not in meta.group(1)


async def test_tester_rejects_empty_and_hostile_input_clearly(tmp_path: Path) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        token = csrf_of(await get(s, site.url("/tester")))
        page, _ = await post(s, site.url("/tester"), {"csrf": token}, status=400)
        assert "Paste a URL" in page
        page, _ = await post(
            s, site.url("/tester"), {"csrf": token, "url": "file:///etc/passwd"}, 400
        )
        assert "must start with http" in page
        text = f"{HOSTILE}\nMaduro and {HOSTILE} in Caracas."
        page, _ = await post(s, site.url("/tester"), {"csrf": token, "text": text})
        assert "<script>alert" not in page and "&lt;script&gt;" in page


async def test_tester_url_goes_through_the_address_guard(tmp_path: Path, http_server: Any) -> None:
    http_server.route("/story", "<html><body><p>Maduro</p></body></html>")
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        token = csrf_of(await get(s, site.url("/tester")))
        page, _ = await post(
            s, site.url("/tester"), {"csrf": token, "url": http_server.url("/story")}, 422
        )
        assert "private address" in page
        assert http_server.hits("/story") == 0


async def test_tester_fetches_a_url_when_private_addresses_are_allowed(
    tmp_path: Path, http_server: Any
) -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in VENEZUELA.split("\n")[1:])
    title = VENEZUELA.split("\n", maxsplit=1)[0]
    http_server.route(
        "/story",
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{paragraphs}</article></body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    async with serve(tmp_path, populate=False, private=True) as site, browser_session() as s:
        token = csrf_of(await get(s, site.url("/tester")))
        page, _ = await post(
            s, site.url("/tester"), {"csrf": token, "url": http_server.url("/story")}
        )
        assert "MATCH</span> venezuela" in page and http_server.hits("/story") == 1


async def test_backtest_compares_the_rule_with_what_alerted(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        token = csrf_of(await get(s, site.url("/tester")))
        page, _ = await post(
            s, site.url("/backtest"), {"csrf": token, "rule": "venezuela", "days": "30"}
        )
        stats = dict(re.findall(r"<dt>([a-z ]+)</dt><dd>(\d+)</dd>", page))
        assert int(stats["did match"]) == 62  # 60 stories, the hostile one and the joiner
        assert (
            int(stats["would match"]) + int(stats["new"]) >= 0 and "Backtest of venezuela" in page
        )
        page, _ = await post(
            s, site.url("/backtest"), {"csrf": token, "rule": "nope", "days": "3"}, 400
        )
        assert "Pick one of the rules" in page


# --- login, CSRF and write actions ------------------------------------------------------


async def test_without_a_token_pages_read_but_nothing_writes(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        page = await get(s, site.url("/stories"))
        assert "Not relevant</button>" not in page and "read-only" in page
        tester = await get(s, site.url("/tester"))  # a form of the same session
        data = {"csrf": csrf_of(tester), "rule": "venezuela", "hours": "24"}
        await post(s, site.url("/mute"), data, 403)
        assert await site.db(site.store.active_mutes, NOW) == {}


async def test_without_a_token_login_says_the_page_is_read_only_and_how_to_set_one(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        page = await get(s, site.url("/login"))
        assert 'name="token"' not in page and 'id="read-only"' in page
        assert "token_file" in page and "WATCHER_WEB_TOKEN" in page  # the keys to set
        csrf = csrf_of(await get(s, site.url("/tester")))  # a form of the same session
        started = asyncio.get_running_loop().time()
        again, _ = await post(s, site.url("/login"), {"csrf": csrf, "token": "x"}, 403)
        assert asyncio.get_running_loop().time() - started < 0.9  # no wait: nothing to guess
        assert 'id="read-only"' in again and 'name="token"' not in again


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_a_method_a_page_does_not_take_is_405_before_login_and_csrf(
    tmp_path: Path, token: str | None
) -> None:
    async with serve(tmp_path, token=token, populate=False) as site, browser_session() as s:
        for method, path, allowed in (("POST", "/stories", "GET"), ("PUT", "/mute", "POST")):
            async with s.request(method, site.url(path), allow_redirects=False) as r:
                assert r.status == 405 and allowed in r.headers["Allow"]
                assert r.headers["Content-Type"].startswith("text/html")
        await get(s, site.url("/nope"), 404)


async def test_control_characters_in_a_query_never_reach_the_page(tmp_path: Path) -> None:
    async with serve(tmp_path) as site, browser_session() as s:
        for path in ("/search?q=%00", "/search?q=a%01%7F%C2%85b", "/stories?since=%00&%00=1"):
            page = await get(s, site.url(path))
            assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page), path
        assert "3 articles match" in await get(s, site.url("/search?q=tregua%00"))
        token = csrf_of(await get(s, site.url("/tester")))
        page, _ = await post(s, site.url("/tester"), {"csrf": token, "text": "Maduro\x00\x07 x"})
        assert "\x00" not in page and "\x07" not in page and 'id="report"' in page


async def test_a_trailing_slash_redirects_to_the_page(tmp_path: Path) -> None:
    async with serve(tmp_path, token=TOKEN, populate=False) as site, browser_session() as s:
        for path, target in (
            ("/stories/", "/stories"),
            ("/rules//?x=1", "/rules?x=1"),
            ("/stories/?rule=a%20b", "/stories?rule=a%20b"),
        ):
            for method in ("GET", "HEAD"):
                async with s.request(method, site.url(path), allow_redirects=False) as r:
                    assert (r.status, r.headers["Location"]) == (301, target)
        await get(s, site.url("//evil.example/"), 404)
        await get(s, site.url("/nope/"), 404)
        async with s.post(site.url("/stories/"), allow_redirects=False) as r:
            assert r.status == 404  # a form is not sent again to another address


async def test_posts_need_the_csrf_token_of_the_session(tmp_path: Path) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        await post(s, site.url("/tester"), {"text": VENEZUELA}, 403)  # no session yet
        token = csrf_of(await get(s, site.url("/tester")))
        await post(s, site.url("/tester"), {"csrf": "forged", "text": VENEZUELA}, 403)
        async with s.post(
            site.url("/tester"),
            data={"csrf": token, "text": VENEZUELA},
            headers={"Origin": "https://evil.example"},
        ) as r:
            assert r.status == 403
        async with browser_session() as other:
            await get(other, site.url("/tester"))
            await post(other, site.url("/tester"), {"csrf": token, "text": VENEZUELA}, 403)


async def test_with_a_token_every_page_needs_login_and_writes_work(tmp_path: Path) -> None:
    async with serve(tmp_path, token=TOKEN) as site, browser_session() as s:
        async with s.get(site.url("/rules"), allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login?next=%2Frules")
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        login = await get(s, site.url("/login?next=/rules"))
        await post(s, site.url("/login"), {"csrf": csrf_of(login), "token": "wrong"}, 403)
        _, r = await post(
            s,
            site.url("/login"),
            {"csrf": csrf_of(login), "token": TOKEN, "next": "//evil.example/"},
            303,
        )
        assert r.headers["Location"] == "/stories"
        page = await get(s, site.url("/stories?rule=ukraine-peace"))
        assert csrf_of(page) != csrf_of(login)  # a new session at login
        alert = int(re.findall(r'name="alert" value="(\d+)"', page)[0])
        csrf = csrf_of(page)
        await post(s, site.url("/feedback"), {"csrf": csrf, "alert": str(alert)}, 303)
        await post(s, site.url("/feedback"), {"csrf": csrf, "alert": str(alert)}, 303)  # once
        assert await site.db(site.store.feedback_counts) == {"ukraine-peace": 1}
        assert "1 × not relevant" in await get(s, site.url("/stories?rule=ukraine-peace"))
        rules = await get(s, site.url("/rules"))
        await post(s, site.url("/mute"), {"csrf": csrf, "rule": "venezuela", "hours": "8"}, 303)
        mutes = await site.db(site.store.active_mutes, NOW)
        assert mutes == {"rule:venezuela": NOW + timedelta(hours=8)}
        await post(s, site.url("/mute"), {"csrf": csrf, "rule": "venezuela", "hours": "1"}, 303)
        mutes = await site.db(site.store.active_mutes, NOW)
        assert mutes == {"rule:venezuela": NOW + timedelta(hours=1)}  # shortened
        assert "muted until" in await get(s, site.url("/rules")) and "Mute</button>" in rules
        await post(s, site.url("/unmute"), {"csrf": csrf, "target": "rule:venezuela"}, 303)
        assert await site.db(site.store.active_mutes, NOW) == {}
        await post(s, site.url("/mute"), {"csrf": csrf, "rule": "nope", "hours": "8"}, 400)
        await post(s, site.url("/logout"), {"csrf": csrf}, 303)
        async with s.get(site.url("/stories"), allow_redirects=False) as r:
            assert r.status == 303


async def test_security_headers_and_static_assets(tmp_path: Path) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:
        async with s.get(site.url("/stories")) as r:
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert (
                "HttpOnly" in r.headers["Set-Cookie"]
                and "SameSite=Strict" in r.headers["Set-Cookie"]
            )
        async with s.get(site.url("/static/style.css")) as r:
            assert r.status == 200 and ".chart" in await r.text()
        assert "No such page" in await get(s, site.url("/nope"), 404)


async def raw_request(site: Site, head: bytes) -> tuple[int, bytes]:
    """A request written byte for byte (no client would send it): the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", site.server.port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /stories?page=" + b"A" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /stories HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * 9_000 + b"\r\n\r\n", 400),
        (b"GET /stories HTTP/1.1\r\nHost: x\r\nBad AAAA: 1\r\n\r\n", 400),
    ],
    ids=["long-address", "long-header", "bad-header"],
)
async def test_an_unreadable_request_is_a_400_and_one_log_line_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, head: bytes, status: int
) -> None:
    async with serve(tmp_path, populate=False) as site:
        with caplog.at_level(logging.DEBUG):
            caplog.clear()
            got, _ = await raw_request(site, head)
            assert got == status
            records = [r for r in caplog.records if r.name.startswith(("aiohttp", "watcher.web"))]
            assert len(records) == 1 and records[0].levelno < logging.WARNING, records
            assert records[0].exc_info is None and "AAAA" not in records[0].getMessage()
        async with browser_session() as s:  # and the page still answers
            await get(s, site.url("/stories"))


async def test_a_crash_in_a_page_still_logs_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(tmp_path, populate=False) as site, browser_session() as s:

        def broken() -> Any:
            raise KeyError("a bug")

        site.server.backend.rules = broken
        await get(s, site.url("/rules"), 500)
        assert any(r.exc_info and r.levelno == logging.ERROR for r in caplog.records)


# --- store: search index ----------------------------------------------------------------


def test_the_search_index_covers_articles_stored_before_the_migration(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", migrate=False)
    try:
        store.migrate(target=3)
        record_story(store, 1, title="Before the index", text="Quetzal sighting. More.")
        store.migrate()
        record_story(store, 2, title="After the index", text="Quetzal again. More.")
        hits = search_articles(store, "quetzal")
        assert sorted(h.title for h in hits.items) == ["After the index", "Before the index"]
        assert hits.items[0].snippet.marks  # the word is marked
        assert store.integrity_problems() == []
    finally:
        store.close()


# --- config and the daemon --------------------------------------------------------------


def test_a_page_on_the_network_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_config(tmp_path, 'host = "0.0.0.0"')
    path = tmp_path / "config.toml"
    assert load_config(path, env={"WATCHER_WEB_TOKEN": "t"}).web.host == "0.0.0.0"
    (tmp_path / "web.token").write_text("t\n")
    assert write_config(tmp_path, 'host = "0.0.0.0"\ntoken_file = "web.token"').web.enabled
    with pytest.raises(ConfigError):
        write_config(tmp_path, 'host = "::"\ntoken_file = "missing.token"')
    assert write_config(tmp_path, 'host = "::1"').web.host == "::1"
    with pytest.raises(ConfigError):
        write_config(tmp_path, port=70000)


async def test_the_daemon_serves_the_page_and_stops_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    daemon = Daemon(config)
    run = asyncio.create_task(daemon.run(RunOptions(tick=0.5)))
    try:
        for _ in range(600):
            if daemon.web is not None and daemon.web.port:
                break
            assert not run.done(), run
            await asyncio.sleep(0.1)
        assert daemon.web is not None
        base = f"http://127.0.0.1:{daemon.web.port}"
        async with browser_session() as s:
            page = await get(s, base + "/stories")
            assert "No alerted stories" in page
            # The tester's NLP runs in the page's own worker process (spawned on first use).
            form = await get(s, base + "/tester")
            page, _ = await post(s, base + "/tester", {"csrf": csrf_of(form), "text": VENEZUELA})
            assert "MATCH</span> venezuela" in page
    finally:
        daemon.stop()
        await asyncio.wait_for(run, 30)


# --- PostgreSQL (the session's server, tests/pgserver.py) ------------------------------


@pytest.fixture
def pg_store(pg_server: PgServer) -> Iterator[Store]:
    """A store in a fresh database on the tests' own PostgreSQL server."""
    store = open_store(pg_server.new_database())
    try:
        yield store
    finally:
        store.close()


def test_postgresql_search_rule_and_feed_activity(pg_store: Store) -> None:
    for i in range(3):
        record_story(pg_store, i)
    for i in range(2):
        record_story(
            pg_store,
            10 + i,
            rule="ukraine-peace",
            title=f"Conversaciones {i}",
            text=f"Zelensky habló de la tregua {i}. Rusia.",
            language="es",
        )
    _feeds(pg_store)
    hits = search_articles(pg_store, "tregu")  # the last word is a prefix, as on SQLite
    assert hits.total == 2 and all(h.snippet.marks for h in hits.items)
    assert search_articles(pg_store, "habló de la", per_page=1).pages == 2
    assert search_articles(pg_store, "' & ! :*").total == 0
    activity = {a.rule: a for a in rule_activity(pg_store, NOW)}
    assert activity["venezuela"].hits == 3 and activity["ukraine-peace"].per_day[-1] == 2
    assert sorted(sum(v) for v in feed_activity(pg_store, NOW).values()) == [15]
    with pg_store.transaction() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN SELECT id FROM articles WHERE to_tsvector('simple', title || ' ' || text)"
            " @@ to_tsquery('simple', 'tregua')"
        ).all()
    assert "ix_articles_search" in str(plan)


def test_the_evidence_of_a_story_marks_only_the_scoring_words(tmp_path: Path) -> None:
    """As in the alerts: a context-only term (weight 0) is neither quoted nor marked."""
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        record_story(store, 1, text="Maduro spoke in Caracas today. Calm.", context="Caracas")
        (story,) = stories_page(store, StoryFilter()).items
        (line,) = story.evidence
        assert [line.sentence.text[a:b] for a, b in line.sentence.marks] == ["Maduro"]
    finally:
        store.close()
