"""Alert composition: quotes, the stored payload, Telegram HTML within limits, digests."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.alerts.compose import (
    TELEGRAM_LIMIT,
    Extras,
    build_payload,
    choose_quotes,
    render,
    render_digest,
    split_sentences,
)
from watcher.types import Article, ArticleSource, Evidence, Match

MADRID = ZoneInfo("Europe/Madrid")
TELEGRAM_TAGS = {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}

# Synthetic article written for these tests: the lead, filler, and evidence further down.
SENTENCES = [
    "Ministers met in Geneva on Monday to discuss the crisis.",
    "The weather was mild and the streets were quiet.",
    "Maduro said the talks with Washington would continue next week.",
    "Lunch was served at noon in the main hall.",
    "Officials in Caracas confirmed that Maduro and Rubio spoke by phone about oil.",
    "The meeting ended in the evening.",
]
TEXT = " ".join(SENTENCES)


def evidence(
    term: str, matched: str, sentence: str, kind: str = "actor", where: str = "text"
) -> Evidence:
    start = sentence.find(matched)
    return Evidence(kind, term, matched, where, sentence, start, start + len(matched))  # type: ignore[arg-type]


def match(
    rule: str = "venezuela",
    *found: Evidence,
    score: float = 5.0,
    priority: str = "normal",
) -> Match:
    return Match(rule, score, 3.0, tuple(found), priority, (), ())


def article(title: str = "Talks on Venezuela", text: str = TEXT, **changes: Any) -> Article:
    values: dict[str, Any] = {
        "url": "https://news.example/a?x=1&y=2",
        "title": title,
        "text": text,
        "source": ArticleSource.PAGE,
        "language": "en",
        "published": datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        "feed_name": "Example News",
    } | changes
    return Article(**values)


MATCH = match(
    "venezuela",
    evidence("Nicolás Maduro", "Maduro", SENTENCES[2]),
    evidence("Nicolás Maduro", "Maduro", SENTENCES[4]),
    evidence("Marco Rubio", "Rubio", SENTENCES[4]),
    evidence("oil", "oil", SENTENCES[4], kind="keyword"),
)


class _TelegramHtml(HTMLParser):
    """Checks what Telegram checks: known tags, properly nested, every <, > and & outside
    tags escaped (with the named entities Telegram knows); collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, f"tag <{tag}> is not Telegram HTML"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        assert not set(data) & set("<>&"), f"unescaped markup in {data!r}"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        assert name in ("lt", "gt", "amp", "quot"), f"&{name}; is not a Telegram entity"
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def visible(html_text: str) -> str:
    """The text Telegram shows for ``html_text``; AssertionError if it is not valid."""
    parser = _TelegramHtml()
    parser.feed(html_text)
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    assert parser.rawdata == "", f"unparsed rest {parser.rawdata[:40]!r}"
    return "".join(parser.text)


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fits_telegram(html_text: str) -> str:
    shown = visible(html_text)
    assert utf16(html_text) <= TELEGRAM_LIMIT and utf16(shown) <= TELEGRAM_LIMIT
    return shown


def payload(
    a: Article | None = None, matches: tuple[Match, ...] = (MATCH,), quotes: int = 3
) -> Any:
    # Through JSON, as the payload is stored and read back before rendering.
    built = build_payload(a or article(), matches, source="Example News", quotes=quotes)
    return json.loads(json.dumps(built))


# --- quotes -----------------------------------------------------------------------------


def test_quotes_are_the_lead_and_the_strongest_evidence_in_article_order() -> None:
    quotes = choose_quotes(article(), [MATCH], 2)
    assert [q.text for q in quotes] == [SENTENCES[0], SENTENCES[4]]  # 4 carries three terms


def test_a_lead_with_evidence_does_not_cost_an_evidence_place() -> None:
    lead = match(
        "venezuela",
        evidence("oil", "oil", "Oil prices rose."),
        evidence("Nicolás Maduro", "Maduro", SENTENCES[2]),
        evidence("Marco Rubio", "Rubio", SENTENCES[4]),
    )
    quotes = choose_quotes(article(text="Oil prices rose. " + TEXT), [lead], 3)
    assert [q.text for q in quotes] == ["Oil prices rose.", SENTENCES[2], SENTENCES[4]]


def test_one_quote_is_the_lead_alone() -> None:
    assert [q.text for q in choose_quotes(article(), [MATCH], 1)] == [SENTENCES[0]]


def test_a_dateline_or_byline_is_not_the_lead() -> None:
    for head in (
        "Tue, February 24, 2026 at 10:50 AM UTC",
        "By Ana Pérez, Reuters",
        "Issued on: 04/02/2026",
    ):
        a = article(text=f"{head}\n{TEXT}")
        assert choose_quotes(a, [MATCH], 1)[0].text == SENTENCES[0], head


def test_a_short_real_lead_is_still_the_lead() -> None:
    a = article(text=f"Maduro resigns.\n{TEXT}")
    assert choose_quotes(a, [MATCH], 1)[0].text == "Maduro resigns."


def test_one_name_written_with_and_without_accents_is_one_name_in_why() -> None:
    written = match(
        "venezuela",
        evidence("Nicolás Maduro", "Nicolás Maduro", "Nicolás Maduro spoke."),
        evidence("Nicolás Maduro", "Nicolas Maduro", "Nicolas Maduro left."),
    )
    assert "Nicolás Maduro ×2" in render(payload(matches=(written,)), tz=MADRID).text


def test_the_headline_repeated_in_the_text_is_not_quoted() -> None:
    a = article(title="Talks on Venezuela", text="Talks on Venezuela\n" + TEXT)
    assert choose_quotes(a, [MATCH], 1)[0].text == SENTENCES[0]


def test_no_text_no_quotes() -> None:
    assert choose_quotes(article(text=""), [MATCH], 3) == []


def test_matched_words_are_marked_whatever_their_case() -> None:
    (q,) = [q for q in choose_quotes(article(), [MATCH], 3) if "Rubio" in q.text]
    assert {q.text[a:b] for a, b in q.marks} == {"Maduro", "Rubio", "oil"}
    title_only = match("t", evidence("Oil", "OIL", "OIL SHOCK", where="title"))
    (lead,) = choose_quotes(article(text="Oil and oil again."), [title_only], 1)
    assert [lead.text[a:b] for a, b in lead.marks] == ["Oil", "oil"]


def test_marks_stay_on_the_word_after_characters_that_casefold_longer() -> None:
    sentence = "Die Straße nach Caracas: Maduro sprach."
    found = match("v", evidence("Nicolás Maduro", "Maduro", sentence))
    (q,) = choose_quotes(article(text=sentence), [found], 1)
    assert [q.text[a:b] for a, b in q.marks] == ["Maduro"]


def test_very_long_sentences_are_clipped_at_a_word() -> None:
    (q,) = choose_quotes(article(text="word " * 400 + "end."), [MATCH], 1)
    assert len(q.text) <= 501 and q.text.endswith("word…")


def test_sentences_split_at_ends_and_paragraphs() -> None:
    text = "First one. ¿Second one? «Third» one!\nNo end here"
    assert split_sentences(text) == ["First one.", "¿Second one?", "«Third» one!", "No end here"]


# --- the payload ------------------------------------------------------------------------


def test_payload_holds_what_the_alert_shows() -> None:
    low = match("oil", evidence("oil", "oil", SENTENCES[4], kind="keyword"), priority="low")
    p = payload(matches=(low, MATCH, match("x", score=2.0, priority="critical")))
    assert p["title"] == "Talks on Venezuela" and p["source"] == "Example News"
    assert p["published"] == "2026-01-05T12:00:00+00:00"
    assert [r["name"] for r in p["rules"]] == ["oil", "venezuela", "x"]  # by score
    assert p["priority"] == "critical"  # the most urgent rule decides
    (rule,) = [r for r in p["rules"] if r["name"] == "venezuela"]
    assert rule["terms"][0] == {
        "term": "Nicolás Maduro",
        "kind": "actor",
        "count": 2,
        "matched": "Maduro",  # the alias the article used, never a raw entity label
        "names": ["Maduro"],
    }


def test_why_does_not_put_a_groups_count_on_one_of_its_names() -> None:
    """ "envoys" met as Witkoff and as Umerov is "envoys (…) ×2", not "Steve Witkoff ×2";
    "Maduro" and "Nicolás Maduro" are one name written two ways."""
    group = match(
        "ukraine",
        evidence("envoys", "Steve Witkoff", "Steve Witkoff flew in."),
        evidence("envoys", "Rustem Umerov", "Rustem Umerov met him."),
        evidence("Nicolás Maduro", "Maduro", SENTENCES[2]),
        evidence("Nicolás Maduro", "Nicolás Maduro", "Nicolás Maduro spoke."),
    )
    why = render(payload(matches=(group,)), tz=MADRID).text
    assert "envoys (Rustem Umerov, Steve Witkoff) ×2" in why
    assert "Nicolás Maduro ×2" in why


def test_an_untitled_article_gets_a_placeholder_title() -> None:
    assert payload(article(title=""))["title"] == "(untitled)"


# --- rendering --------------------------------------------------------------------------


def test_alert_names_title_source_time_quotes_rule_and_link() -> None:
    msg = render(payload(), tz=MADRID)
    shown = fits_telegram(msg.html)
    assert "🔔 Talks on Venezuela" in shown
    assert "Example News · 05 Jan 2026 13:00 CET" in shown  # in the configured zone
    assert SENTENCES[0] in shown and "venezuela (score 5 ≥ 3)" in shown
    assert "<b>Maduro</b>" in msg.html and "<b>Rubio</b>" in msg.html
    assert '<a href="https://news.example/a?x=1&amp;y=2">' in msg.html
    assert msg.link == "https://news.example/a?x=1&y=2" and not msg.silent
    assert "Talks on Venezuela" in msg.text and "<b>" not in msg.text


def test_markup_in_titles_quotes_sources_and_urls_is_escaped() -> None:
    hostile = 'Tom & Jerry <script>alert("x")</script> a<b && c>d'
    a = article(
        title=hostile,
        text='Maduro <i>said</i> "a<b && c>d" & left. Then more.',
        url='https://news.example/?q=<b>&r="x"',
    )
    found = match(
        "v<&>", evidence("Maduro <&>", "Maduro", 'Maduro <i>said</i> "a<b && c>d" & left.')
    )
    p = json.loads(json.dumps(build_payload(a, [found], source="A&B <News>", quotes=2)))
    msg = render(p, tz=MADRID, extras=Extras((("<evil> & co", 'https://x.example/"><b>'),)))
    shown = fits_telegram(msg.html)
    assert hostile in shown and "A&B <News>" in shown and "<evil> & co" in shown
    assert '<i>said</i> "a<b && c>d" & left.' in shown
    assert "<script>" not in msg.html and "&lt;script&gt;" in msg.html
    assert 'href="https://news.example/?q=&lt;b&gt;&amp;r=&quot;x&quot;"' in msg.html
    assert "<b>Maduro</b>" in msg.html


def test_highlights_next_to_escaped_characters_keep_tags_whole() -> None:
    sentence = "<Maduro>&Maduro&amp; said <b>Maduro</b>."
    found = match("v", evidence("Nicolás Maduro", "Maduro", sentence))
    msg = render(payload(article(text=sentence), (found,), quotes=1), tz=MADRID)
    shown = fits_telegram(msg.html)
    assert sentence in shown
    assert msg.html.count("<b>Maduro</b>") == 3


def test_emoji_and_right_to_left_text_are_kept_intact() -> None:
    arabic = "قال مادورو إن المحادثات ستستمر."
    hebrew = "מדורו אמר שהשיחות יימשכו."
    text = f"🚢🚢 Warships 🇻🇪 near Caracas. {arabic} {hebrew} Maduro 👍🏽 spoke."
    found = match("v", evidence("Nicolás Maduro", "Maduro", "Maduro 👍🏽 spoke."))
    msg = render(payload(article(title="🚨 عاجل: Maduro 🇻🇪", text=text), (found,)), tz=MADRID)
    shown = fits_telegram(msg.html)
    assert "🚨 عاجل: Maduro 🇻🇪" in shown and arabic in shown and hebrew in shown
    assert "<b>Maduro</b> 👍🏽 spoke." in msg.html


def test_a_50000_character_article_fits_one_message() -> None:
    sentence = "Maduro spoke again about the long talks in Caracas today. "
    text = (sentence * (50_000 // len(sentence) + 1))[:50_000]
    quoted = [evidence("Nicolás Maduro", "Maduro", sentence.strip())]
    msg = render(payload(article(text=text), (match("v", *quoted),), quotes=10), tz=MADRID)
    fits_telegram(msg.html)
    assert "<b>Maduro</b>" in msg.html


def test_quotes_are_dropped_from_the_end_counting_emoji_twice() -> None:
    # ~2,500 code points: under the budget by len(), over it in UTF-16 units as Telegram
    # counts them.
    topics = ["oil exports to Asia", "the border crossing at Cucuta", "elections next July",
              "new sanctions from Brussels", "prisoners held in Caracas"]  # fmt: skip
    said = [f"Wave {i} {'🌊' * 420} Maduro spoke about {t}." for i, t in enumerate(topics)]
    quoted = [evidence("Nicolás Maduro", "Maduro", sentence) for sentence in said]
    p = payload(article(title="🌊" * 150, text=" ".join(said)), (match("v", *quoted),), quotes=5)
    assert len(p["quotes"]) == 5
    msg = render(p, tz=MADRID)
    assert len(msg.html) < 3000
    shown = fits_telegram(msg.html)
    assert "Wave 0 " in shown and "Wave 4 " not in shown  # the lead stays, the last goes


def test_an_absurdly_long_title_is_trimmed_as_plain_text() -> None:
    title = "<Maduro & Rubio> " * 3000
    msg = render(payload(article(title=title)), tz=MADRID)
    fits_telegram(msg.html)
    assert msg.html.startswith("🔔 &lt;Maduro &amp; Rubio&gt;")


def test_many_sources_with_long_urls_stay_within_the_limit() -> None:
    sources = tuple((f"Outlet {i} <&>", "https://x.example/" + "p" * 900) for i in range(20))
    msg = render(payload(), tz=MADRID, extras=Extras(sources=sources))
    fits_telegram(msg.html)


def test_story_sources_and_headline_are_shown() -> None:
    sources = tuple((f"Outlet {i}", f"https://o{i}.example/a") for i in range(10))
    extras = Extras(sources=sources, headline="Story develops (oil)")
    msg = render(payload(), tz=MADRID, extras=extras)
    shown = fits_telegram(msg.html)
    assert shown.startswith("Story develops (oil)")
    assert "+10 sources: Outlet 0, Outlet 1" in shown and "and 2 more" in shown
    assert '<a href="https://o7.example/a">Outlet 7</a>' in msg.html
    assert "https://o8.example/a" not in msg.html


def test_low_priority_renders_silent_with_its_own_mark() -> None:
    low = match("v", evidence("oil", "oil", SENTENCES[4]), priority="low")
    msg = render(payload(matches=(low,)), tz=MADRID, silent=True)
    assert msg.silent and visible(msg.html).startswith("📰 ")


_HOSTILE = st.text(st.sampled_from(list("ab <>&\"'/;#é🙂ש\n.")), max_size=120)


@settings(max_examples=150, deadline=None)
@given(title=_HOSTILE, quotes=st.lists(_HOSTILE, max_size=4), url=_HOSTILE, data=st.data())
def test_any_payload_renders_valid_html_within_the_limit(
    title: str, quotes: list[str], url: str, data: st.DataObject
) -> None:
    rendered_quotes = []
    for text in quotes:
        cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
        marks = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
        rendered_quotes.append({"text": text * 40, "marks": marks})
    p = {
        "title": title * 30,
        "url": url,
        "source": title,
        "published": None,
        "quotes": rendered_quotes,
        "rules": [{"name": title, "score": 1.0, "threshold": 1.0, "terms": []}],
        "priority": "normal",
    }
    fits_telegram(render(p, tz=MADRID, extras=Extras(((title, url),), title)).html)


# --- digests ----------------------------------------------------------------------------


def test_digest_lists_held_alerts_with_links() -> None:
    items = [payload(), payload(article(title="Oil <&> prices", url="https://b.example/?a=1&b=2"))]
    msg = render_digest(items, tz=MADRID, now=datetime(2026, 7, 1, 6, 0, tzinfo=UTC))
    shown = fits_telegram(msg.html)
    assert shown.startswith("📰 Digest: 2 alerts (01 Jul 08:00 CEST)")
    assert "• Oil <&> prices — Example News (venezuela)" in shown
    assert '<a href="https://b.example/?a=1&amp;b=2">Oil &lt;&amp;&gt; prices</a>' in msg.html
    assert "https://b.example/?a=1&b=2" in msg.text and msg.silent


def test_digest_of_one_alert_is_singular() -> None:
    msg = render_digest([payload()], tz=MADRID, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert msg.subject.startswith("[watcher] Digest: 1 alert (")
