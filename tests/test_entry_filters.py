"""Rule filters on the item's own fields: categories parsed, stored, checked and applied."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher.config import FeedConfig
from watcher.errors import RuleError
from watcher.feeds.parse import MAX_CATEGORIES, MAX_CATEGORY_CHARS, parse_feed
from watcher.rules.loader import parse_rules
from watcher.rules.match import filter_reason
from watcher.store import open_store
from watcher.store.alerts import ArticleRecord
from watcher.store.feeds import PollSuccess
from watcher.types import Article, ArticleSource, Entry, NewEntry

URL = "https://news.example.org/feed"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>A</title><link>https://news.example.org/a</link>
<category>Politics</category><category domain="x">  World\n News </category>
<category>politics</category><category>&lt;b&gt;Elections&lt;/b&gt;</category><category></category>
</item><item><title>B</title><link>https://news.example.org/b</link></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:t</id>
<updated>2026-03-02T10:00:00Z</updated>
<entry><title>A</title><id>urn:a</id><link href="https://news.example.org/a"/>
<updated>2026-03-02T10:00:00Z</updated>
<category term="sports" label="Sports"/><category term="Football"/></entry>
</feed>"""


def test_rss_categories_are_plain_stripped_and_deduplicated() -> None:
    first, second = parse_feed(RSS, url=URL).entries
    assert first.categories == ("Politics", "World News", "Elections")
    assert second.categories == ()


def test_atom_categories_use_the_term() -> None:
    (entry,) = parse_feed(ATOM, url=URL).entries
    assert entry.categories == ("sports", "Football")


def test_json_feed_tags() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "T",
            "items": [
                {"id": "1", "url": "https://news.example.org/1", "tags": ["Politics", 3, " Tech "]},
                {"id": "2", "url": "https://news.example.org/2", "tags": "not a list"},
            ],
        }
    ).encode()
    first, second = parse_feed(body, url=URL).entries
    assert first.categories == ("Politics", "Tech")
    assert second.categories == ()


def test_categories_are_capped_in_number_and_length() -> None:
    tags = "".join(f"<category>tag {i} {'x' * 300}</category>" for i in range(80))
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>A</title><link>https://news.example.org/a</link>{tags}</item>"
        f"</channel></rss>"
    ).encode()
    (entry,) = parse_feed(body, url=URL).entries
    assert len(entry.categories) == MAX_CATEGORIES
    assert all(len(c) == MAX_CATEGORY_CHARS for c in entry.categories)
    assert entry.categories[0].startswith("tag 0 x")


def test_store_keeps_entry_categories(store_url: str) -> None:
    store = open_store(store_url)
    try:
        (feed,) = store.sync_feeds([FeedConfig(url="https://news.example/feed.xml")], NOW)
        tagged = Entry("g1", "https://news.example/1", "T1", "", "", "Ana", NOW, None, "en")
        tagged = dataclasses.replace(tagged, categories=("Politics", "Política"))
        plain = Entry("g2", "https://news.example/2", "T2", "", "", "", NOW, None, "en")
        new = [NewEntry(tagged, ("guid:g1",), "fp1"), NewEntry(plain, ("guid:g2",), "fp2")]
        poll = PollSuccess(NOW, NOW + timedelta(hours=1), None, None, None, new=new)
        store.record_poll_success(feed.id, poll)
        by_guid = {p.entry.guid: p.entry for p in store.pending_entries()}
        assert by_guid == {"g1": tagged, "g2": plain}
    finally:
        store.close()


def test_entries_stored_before_version_6_read_without_categories(store_url: str) -> None:
    store = open_store(store_url, migrate=False)
    try:
        store.migrate(target=5)
        (feed,) = store.sync_feeds([FeedConfig(url="https://news.example/feed.xml")], NOW)
        assert [m.version for m in store.migrate()] == [6]
        entry = Entry("g1", "https://news.example/1", "T1", "", "", "", NOW, None, "en")
        new = [NewEntry(entry, ("guid:g1",), "fp1")]
        poll = PollSuccess(NOW, NOW + timedelta(hours=1), None, None, None, new=new)
        store.record_poll_success(feed.id, poll)
        with store.transaction() as conn:  # as a row written before the column existed
            conn.exec_driver_sql("UPDATE entries SET categories = NULL")
        (pending,) = store.pending_entries()
        assert pending.entry == entry
    finally:
        store.close()


def test_stored_articles_carry_their_entry_categories(store_url: str) -> None:
    """`watcher backtest` reruns rules on stored articles: their filters see the categories."""
    store = open_store(store_url)
    try:
        (feed,) = store.sync_feeds([FeedConfig(url="https://news.example/feed.xml")], NOW)
        entry = Entry("g1", "https://news.example/1", "T1", "", "", "", NOW, None, "en")
        entry = dataclasses.replace(entry, categories=("Politics",))
        new = [NewEntry(entry, ("guid:g1",), "fp1")]
        poll = PollSuccess(NOW, NOW + timedelta(hours=1), None, None, None, new=new)
        (entry_id,) = store.record_poll_success(feed.id, poll)
        stored = article(categories=entry.categories)
        store.record_article(ArticleRecord(entry_id, feed.id, stored.url, stored, NOW))
        orphan = article(url="https://news.example/2", categories=())
        store.record_article(ArticleRecord(None, feed.id, orphan.url, orphan, NOW))
        found = [a for _, a in store.articles_since(NOW - timedelta(days=1))]
        assert [(a.url, a.categories) for a in found] == [
            (stored.url, ("Politics",)),
            (orphan.url, ()),
        ]
    finally:
        store.close()


# --- the rule keys ----------------------------------------------------------------------


def rule(filters: str) -> str:
    return f"name: r\nactors: [Maduro]\nfilters:\n{textwrap.indent(filters, '  ')}"


def test_filters_are_read() -> None:
    (r,) = parse_rules(
        rule("categories: [Politics, World]\nauthors: Ana Pérez\nurl: '/politica/'\n")
    )
    assert r.filters.categories == ("Politics", "World")
    assert r.filters.authors == ("Ana Pérez",)
    assert r.filters.url == "/politica/"


@pytest.mark.parametrize(
    ("filters", "position", "key"),
    [
        ("url: '(unclosed'\n", "4:8", "filters.url"),
        ("url: [a, b]\n", "4:8", "filters.url"),
        ("categories: {a: 1}\n", "4:15", "filters.categories"),
        ("authors: [Ana, [x]]\n", "4:18", "filters.authors"),
        ("categorys: [x]\n", "4:3", "filters"),
    ],
)
def test_bad_filters_are_errors_with_positions(filters: str, position: str, key: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(rule(filters), Path("r.yaml"))
    (problem,) = caught.value.problems
    assert problem.startswith(f"r.yaml:{position}: {key}"), problem


# --- the decisions ------------------------------------------------------------------------


def article(**fields: object) -> Article:
    values: dict[str, object] = {
        "url": "https://news.example.org/politica/2026/maduro",
        "title": "T",
        "text": "x",
        "source": ArticleSource.FEED_SUMMARY,
        "author": "Ana Pérez, Luis Gómez",
        "categories": ("Politics", "World"),
    }
    return Article(**(values | fields))  # type: ignore[arg-type]


def test_explain_lists_every_filter_that_excludes_an_article_matching_keeps_the_first() -> None:
    from watcher.config import NlpSettings
    from watcher.rules.match import Matcher
    from watcher.rules.model import RuleSet
    from watcher.rules.nlp import Analyzer

    text = "feeds: [Wire]\ncategories: [Sports]\nauthors: [Smith]\nurl: '/deportes/'\n"
    ruleset = RuleSet(tuple(parse_rules(rule(text))))
    matcher = Matcher(ruleset, Analyzer(NlpSettings(), ruleset))
    (verdict,) = matcher.explain(article(text="Maduro spoke."), now=NOW)
    assert not verdict.matched
    assert [r.split(":")[1].split()[0] for r in verdict.reasons] == [
        "feed", "categories", "author", "URL",
    ]  # fmt: skip
    (first,) = parse_rules(rule(text))
    assert filter_reason(first, article(), "en", NOW).startswith("filtered out: feed")


@pytest.mark.parametrize(
    ("filters", "fields", "excluded_by"),
    [
        ("categories: [politics]", {}, ""),
        ("categories: [Sports, WORLD]", {}, ""),
        ("categories: [Sports]", {}, "categories"),
        ("categories: [Politics]", {"categories": ()}, "categories"),
        ("authors: [pérez]", {}, ""),
        ("authors: [Smith, GÓMEZ]", {}, ""),
        ("authors: [Smith]", {}, "author"),
        ("authors: [Ana]", {"author": ""}, "author"),
        ("url: '/politica/'", {}, ""),
        ("url: '^https://news\\.example\\.org/'", {}, ""),
        ("url: '/deportes/'", {}, "URL"),
        ("categories: [Politics]\nauthors: [Ana]\nurl: '/deportes/'", {}, "URL"),
        ("categories: [Sports]\nurl: '/politica/'", {}, "categories"),
    ],
)
def test_each_filter_that_is_set_must_pass(
    filters: str, fields: dict[str, object], excluded_by: str
) -> None:
    (r,) = parse_rules(rule(filters + "\n"))
    reason = filter_reason(r, article(**fields), "en", NOW)
    if excluded_by:
        assert reason.startswith(f"filtered out: {excluded_by}"), reason
    else:
        assert reason == ""
