"""`/test URL` in a worker process: extract the fetched page and explain it against the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from watcher.alerts.compose import build_payload, render
from watcher.articles.extract import Extracted, build_article, extract_page
from watcher.articles.model import Article
from watcher.config import NlpSettings
from watcher.errors import ParseError
from watcher.rules.explain import Summarize, explain
from watcher.rules.match import Match
from watcher.rules.schema import RuleSet
from watcher.rules.worker import matcher_for


def explain_page(
    url: str,
    html: bytes,
    rules: RuleSet,
    nlp: NlpSettings,
    *,
    now: datetime,
    timezone: str,
    quotes: int,
) -> dict[str, Any]:
    """What `watcher explain URL` reports, for a page already fetched (picklable, top level).

    Shares the worker's cached Matcher with the article stage, so it costs no model load.
    """
    article = build_article(
        url=url,
        extracted=_extract(html, url),
        feed_title="",
        feed_content="",
        feed_summary="",
        published=None,
        feed_name="",
        feed_tags=(),
        language_hint="",
        min_text_chars=0,
    )
    matcher = matcher_for(rules, nlp)
    summarize = summarizer(ZoneInfo(timezone), quotes)
    return explain(url, article, matcher, now=now, summarize=summarize)


def summarizer(tz: ZoneInfo, quotes: int) -> Summarize:
    """The alert text `explain` shows for the rules an article matches."""

    def summarize(article: Article, matches: list[Match], source: str) -> str:
        payload = build_payload(article, matches, source=article.site_name or source, quotes=quotes)
        return render(payload, tz=tz).text

    return summarize


def _extract(html: bytes, url: str) -> Extracted | None:
    try:
        return extract_page(html, url=url)
    except ParseError:
        return None
