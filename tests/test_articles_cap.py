"""Pages too long for extraction in bounded time are cut, and the article records it."""

from __future__ import annotations

import time

from watcher.articles.extract import MAX_PAGE_CHARS, PAGE_CAP, build_article, cap_page, extract_page
from watcher.types import ArticleSource

_STORY = (
    "<p>" + "The harbour council met on Tuesday and agreed to repair the old pier. " * 8 + "</p>"
)


def _page(body: str) -> str:
    return f"<html><head><title>Pier</title></head><body><article>{body}</article></body></html>"


def test_short_pages_pass_unchanged() -> None:
    html = _page(_STORY)
    assert cap_page(html) == (html, "")


def test_scripts_and_styles_go_before_any_text() -> None:
    bulk = "<script>var x = 1;</script><STYLE>p{}</STYLE ><svg><path/></svg>" * 20_000
    html = _page(_STORY + bulk)
    assert len(html) > MAX_PAGE_CHARS
    capped, note = cap_page(html)
    assert note == ""
    assert "script" not in capped.lower() and _STORY in capped


def test_an_unclosed_script_keeps_the_rest_and_is_not_rescanned() -> None:
    html = _page(_STORY) + "<script>" * 300_000
    started = time.process_time()
    capped, note = cap_page(html)
    assert time.process_time() - started < 10.0  # linear: a quadratic scan would take hours
    assert len(capped) == MAX_PAGE_CHARS and note


def test_a_huge_page_is_extracted_from_its_first_part_and_the_cut_is_recorded() -> None:
    soup = '<div class="c"><span>word</span> <a href="/x">link</a></div>\n' * 80_000  # 4.9 MB
    extracted = extract_page(_page(_STORY + soup).encode(), url="http://news.test/pier")
    assert extracted is not None and extracted.capped
    article = build_article(
        url="http://news.test/pier",
        extracted=extracted,
        feed_title="Pier",
        feed_content="",
        feed_summary="",
        published=None,
        feed_name="News",
        feed_tags=(),
        language_hint="en",
        min_text_chars=10,
    )
    assert article.source is ArticleSource.PAGE
    assert article.extra[PAGE_CAP] == extracted.capped
    assert "harbour council" in article.text
