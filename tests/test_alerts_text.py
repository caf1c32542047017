"""What a reader sees: alert text on the seed story and on real corpus articles, sent through
the Bot API double and the SMTP server (bold, labels, aliases, quotes, plurals, buttons).

The seed and the corpus are read from /work/shared (or ../shared) when present; nothing of
their text is kept here.
"""

from __future__ import annotations

import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botapi import BotApiServer
from smtpserver import SmtpServer

from watcher.alerts.compose import (
    Extras,
    build_payload,
    choose_quotes,
    near_duplicate,
    plural,
    render,
)
from watcher.alerts.outbox import _with_bot_buttons
from watcher.channels.email import EmailChannel, compose_email, is_address, is_mailbox
from watcher.channels.telegram import TelegramChannel, keyboard_rows
from watcher.config import EmailSettings, NlpSettings, Secret, config_from_dict
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import load_rules
from watcher.types import Article, ArticleSource, Evidence, Match

REPO = Path(__file__).resolve().parents[1]
SHARED = next(
    (p for p in (Path("/work/shared"), REPO.parent / "shared") if p.is_dir()), REPO / "missing"
)
SEED = SHARED / "seeds" / "000_1e00dd681d865c74.txt"
UKRAINE_DEV = SHARED / "corpus" / "news" / "articles_ukraine_dev.jsonl"
UTC_ZONE = ZoneInfo("UTC")
RAW_LABEL = re.compile(r"\[(PERSON|NORP|GPE|ORG|LOC|FAC|EVENT|PER|MISC)\]")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    ruleset = load_rules(REPO / "rules")
    return Matcher(ruleset, Analyzer(NlpSettings(), ruleset))


def seed_article() -> Article:
    if not SEED.exists():
        pytest.skip("the seed article is not present")
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()]
    title_at = [i for i, line in enumerate(lines) if line][1]  # after the page junk line
    return Article(
        url="https://news.example/seed",
        title=lines[title_at],
        text="\n".join(lines[title_at + 1 :]).strip(),
        source=ArticleSource.FILE,
        feed_name="Clash Report",
    )


def corpus_articles(limit: int) -> Iterator[Article]:
    if not UKRAINE_DEV.exists():
        pytest.skip("the corpus is not present")
    with UKRAINE_DEV.open(encoding="utf-8") as f:
        for line in list(f)[:limit]:
            row = json.loads(line)
            yield Article(
                url=row["url"] or f"https://news.example/{row['id']}",
                title=row["title"] or "",
                text=row["text"],
                source=ArticleSource.FILE,
                feed_name=row["dataset"],
            )


class _Bold(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth, self.current = 0, ""
        self.bold: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.depth += tag == "b"

    def handle_endtag(self, tag: str) -> None:
        if tag == "b":
            self.depth -= 1
            self.bold.append(self.current)
            self.current = ""

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.current += data


def bold_in_quotes(html_text: str, payload: dict[str, Any]) -> set[str]:
    """Bold words of the rendered alert, less the title, rule names and the sources line
    (bold by design)."""
    parser = _Bold()
    parser.feed(html_text)
    by_design = {payload["title"], *(r["name"] for r in payload["rules"])}
    return {b for b in parser.bold if b not in by_design and not b.startswith("+")}


def scoring_surfaces(matches: list[Match]) -> set[str]:
    return {e.matched.casefold() for m in matches for e in m.evidence if e.weight > 0}


def check_alert_text(matches: list[Match], payload: dict[str, Any], html_text: str) -> None:
    """The issue 16 properties every alert must have."""
    assert not RAW_LABEL.search(html_text)
    bold = {s.casefold() for s in bold_in_quotes(html_text, payload)}
    assert bold <= scoring_surfaces(matches), bold - scoring_surfaces(matches)
    quotes = [q["text"] for q in payload["quotes"]]
    assert not any(near_duplicate(a, b) for i, a in enumerate(quotes) for b in quotes[i + 1 :])
    assert not any(q.rstrip().endswith("[") for q in quotes)
    assert "+1 sources" not in html_text and "1 alerts" not in html_text


# --- the seed story ---------------------------------------------------------------------


def test_seed_alert_bolds_only_scoring_terms_and_quotes_each_rule(matcher: Matcher) -> None:
    article = seed_article()
    matches = matcher.match(article)
    assert {m.rule for m in matches} == {"venezuela", "ukraine-peace"}
    payload = build_payload(article, matches, source="Clash Report", quotes=3)
    msg = render(payload, tz=UTC_ZONE, extras=Extras(sources=(("Other", "https://o.example"),)))
    check_alert_text(matches, payload, msg.html)
    # The zero-weight context terms are never bold.
    for context in ("<b>US</b>", "<b>President</b>", "<b>Trump</b>", "<b>attack</b>"):
        assert context not in msg.html
    # Both rules' evidence is quoted, not only the top rule's.
    for m in matches:
        surfaces = {e.matched for e in m.evidence if e.weight > 0}
        assert any(s in q["text"] for q in payload["quotes"] for s in surfaces), m.rule
    # The alias that matched, not the actor group's name or a spaCy label.
    assert "Steve Witkoff ×1" in msg.text and "envoys" not in msg.text
    assert "+1 source:" in msg.text


async def test_seed_alert_through_the_bot_api_and_smtp(
    matcher: Matcher, bot_api: BotApiServer, smtp_server: SmtpServer
) -> None:
    article = seed_article()
    matches = matcher.match(article)
    payload = build_payload(article, matches, source="Clash Report", quotes=3)
    msg = _with_bot_buttons(render(payload, tz=UTC_ZONE), 7, payload)
    telegram = TelegramChannel(Secret(bot_api.token), api_base_url=bot_api.base_url)
    mail = EmailChannel(
        EmailSettings(
            host=smtp_server.host, port=smtp_server.port, security="none",
            sender="watcher <watcher@localhost>", timeout=5.0,
        )
    )  # fmt: skip
    try:
        await telegram.send("-1001", msg)
        await mail.send("desk@localhost", msg)
    finally:
        await telegram.aclose()
    (sent,) = bot_api.sent("-1001")
    check_alert_text(matches, payload, sent.text or "")
    rows = (sent.reply_markup or {})["inline_keyboard"]
    assert all(sum(len(b["text"]) for b in row) <= 28 or len(row) == 1 for row in rows)
    (received,) = smtp_server.messages
    assert received["Subject"] == msg.subject and not received["Subject"].startswith(" ")


# --- real corpus articles ---------------------------------------------------------------


async def test_corpus_alerts_keep_the_properties_through_the_bot_api(
    matcher: Matcher, bot_api: BotApiServer
) -> None:
    telegram = TelegramChannel(Secret(bot_api.token), api_base_url=bot_api.base_url)
    checked = 0
    try:
        for article in corpus_articles(16):
            matches = matcher.match(article)
            if not matches:
                continue
            payload = build_payload(article, matches, source="corpus", quotes=3)
            msg = render(payload, tz=UTC_ZONE)
            await telegram.send("-1002", msg)
            check_alert_text(matches, payload, bot_api.sent("-1002")[-1].text or "")
            checked += 1
    finally:
        await telegram.aclose()
    assert checked >= 3  # the Ukraine set matches ukraine-peace often


# --- pieces -----------------------------------------------------------------------------


def test_near_duplicates_are_a_standfirst_and_its_first_paragraph() -> None:
    standfirst = (
        "The minister confirmed a phone call with the president of the neighbouring "
        "country, citing rising tensions at the border."
    )
    paragraph = (
        "The minister confirmed a phone call with the president of the neighbouring "
        "country as tensions reach new heights."
    )
    assert near_duplicate(standfirst, paragraph)
    assert not near_duplicate(standfirst, "Talks on the border resume on Monday in Geneva.")


def test_near_duplicates_are_judged_on_a_sentences_first_words() -> None:
    shared = " ".join(f"word{i}" for i in range(150))
    a = shared + " " + " ".join(f"alpha{i}" for i in range(5_000))
    b = shared + " " + " ".join(f"beta{i}" for i in range(5_000))
    assert near_duplicate(a, b)  # the first 120 words are the same
    assert not near_duplicate("alpha " + a, "beta gamma delta " + b[:40])


def test_quotes_of_a_page_without_full_stops_stay_cheap() -> None:
    # Two 100,000-word "sentences": comparing them whole with difflib took minutes of the
    # event loop (the daemon's decision step) before near_duplicate read only their starts.
    first = " ".join(f"Russia{i % 7} w{i}" for i in range(100_000))
    second = " ".join(f"Russia{i % 5} v{i}" for i in range(100_000))
    text = f"{first}.\n\n{second}."
    at = text.index("Russia", len(first))
    found = Evidence("actor", "Russia", "Russia", "text", "Russia", at, at + 6)
    early = Evidence("actor", "Russia", "Russia", "text", "Russia", 0, 6)
    m = Match("r", 3.0, 1.0, (early, found), "normal", (), ())
    article = Article(url="https://x.example", title="T", text=text, source=ArticleSource.FILE)
    quotes = choose_quotes(article, [m], 3)
    assert 1 <= len(quotes) <= 2


def test_an_evidence_sentence_cut_at_a_bracket_is_quoted_whole() -> None:
    text = "Talks began. “We think Russia wants this [war] to end,” he said. Nothing else."
    cut = "“We think Russia wants this ["  # how the NLP sentence splitter ends it
    at = text.index("Russia")
    found = Evidence("actor", "Russia", "Russia", "text", cut, at, at + 6)
    m = Match("r", 3.0, 1.0, (found,), "normal", (), ())
    article = Article(url="https://x.example", title="T", text=text, source=ArticleSource.FILE)
    quotes = [q.text for q in choose_quotes(article, [m], 2)]
    assert "“We think Russia wants this [war] to end,” he said." in quotes


def test_plurals() -> None:
    assert [plural(1, "source", "+"), plural(2, "source", "+"), plural(1, "alert")] == [
        "+1 source",
        "+2 sources",
        "1 alert",
    ]
    assert plural(0, "alert") == "0 alerts"


def test_keyboard_rows_fit_a_phone() -> None:
    labels = ["🔕 Mute ukraine-peace 24h", "🔕 Mute venezuela 24h", "👎 Not relevant", "Open"]
    rows = keyboard_rows(labels)
    assert rows[0] == [0] and rows[1] == [1]  # long labels get a row of their own
    assert rows[-1] == [2, 3]  # two short ones share
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3]


def test_addresses_are_checked_by_the_email_package() -> None:
    assert is_mailbox("watcher <watcher@localhost>") and is_mailbox("watcher@example.org")
    assert is_mailbox('"Desk, News" <desk@example.org>')
    assert not is_mailbox("watcher") and not is_mailbox("a@b.org, c@d.org")
    assert not is_mailbox("watcher <watcher>")
    assert is_address("root@localhost") and not is_address("x@") and not is_address("a b@c")


def test_check_accepts_a_local_sender(tmp_path: Path) -> None:
    config = config_from_dict(
        {"email": {"host": "127.0.0.1", "sender": "watcher <watcher@localhost>",
                   "recipients": ["me@localhost"], "security": "none"}},
        source=tmp_path / "config.toml",
    )  # fmt: skip
    assert isinstance(EmailChannel.from_config(config, env={}), EmailChannel)


@pytest.mark.parametrize(
    "subject",
    [
        "[watcher] venezuela, ukraine-peace: Trump Confirms Call with Maduro Amid Rising Tensions",
        "[watcher] ukraine-peace: Zelensky says “peace plan” talks went well; Kremlin disagrees",
        "[watcher] x: " + "averyveryverylongwordwithoutanyspacesatall" * 3,
    ],
)
def test_long_subjects_read_back_exactly(subject: str) -> None:
    from watcher.channels.base import OutgoingMessage

    msg = OutgoingMessage(subject=subject, html="x", text="x", link=None)
    mail = compose_email(msg, sender="watcher <w@localhost>", recipient="a@localhost",
                         now=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    raw = mail.as_bytes()
    assert not raw.startswith(b"Subject:\r\n") and not raw.startswith(b"Subject: \r\n")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
