"""Explaining a URL, a file or a text against the rules: the one path the CLI, bot and web use."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from watcher.articles.extract import Extracted, article_from_file, build_article, extract_page
from watcher.articles.fetch import fetch_article
from watcher.clock import Clock
from watcher.config import Config, NlpSettings
from watcher.errors import FetchError, ParseError
from watcher.http import HttpClient
from watcher.rules.explain import explain
from watcher.rules.schema import RuleSet
from watcher.rules.worker import matcher_for
from watcher.types import Article, ArticleSource
from watcher.workers import CpuPool, InlinePool

Report = dict[str, Any]


class Explainer:
    """Loads a source, then explains it in a worker with the current rules.

    ``rules`` is called at each request, so a hot reload is seen at once. The CPU part runs
    in ``cpu`` (the daemon's pool, or an InlinePool for one-shot commands).
    """

    def __init__(
        self,
        config: Config,
        *,
        client: HttpClient,
        cpu: CpuPool | InlinePool,
        rules: Callable[[], RuleSet],
        clock: Clock,
    ) -> None:
        self._config = config
        self._client = client
        self._cpu = cpu
        self._rules = rules
        self._clock = clock

    async def url(self, url: str) -> Report:
        """Fetch the page (even with articles.fetch off) and explain it; FetchError when
        there is no page."""
        settings = dataclasses.replace(self._config.articles, fetch=True)
        html, error = await fetch_article(self._client, url=url, settings=settings)
        if html is None:
            raise FetchError(url, error)
        return await self._cpu(explain_page, url, html, self._rules(), **self._options())

    async def file(self, path: Path) -> Report:
        """An HTML page or a text file (first line the title); ParseError naming the file."""
        article = await self._cpu(article_from_file, path)
        return await self._cpu(
            explain_article, str(path), article, self._rules(), **self._options()
        )

    async def text(self, text: str, *, title: str = "", source: str = "text") -> Report:
        """Pasted text, with an optional title."""
        article = Article(url="", title=title, text=text, source=ArticleSource.FILE)
        return await self._cpu(explain_article, source, article, self._rules(), **self._options())

    async def source(self, source: str) -> Report:
        """A URL (http or https) or a file path, as `watcher explain` takes them."""
        if source.startswith(("http://", "https://")):
            return await self.url(source)
        return await self.file(Path(source))

    def _options(self) -> dict[str, Any]:
        return {
            "nlp": self._config.nlp,
            "now": self._clock.now(),
            "timezone": self._config.watcher.timezone,
            "quotes": self._config.alerts.summary_sentences,
        }


def explain_page(
    url: str,
    html: bytes,
    rules: RuleSet,
    *,
    nlp: NlpSettings,
    now: datetime,
    timezone: str,
    quotes: int,
) -> Report:
    """A fetched page, extracted and explained (picklable, top level: runs in a worker).

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
    return explain_article(url, article, rules, nlp=nlp, now=now, timezone=timezone, quotes=quotes)


def explain_article(
    source: str,
    article: Article,
    rules: RuleSet,
    *,
    nlp: NlpSettings,
    now: datetime,
    timezone: str,
    quotes: int,
) -> Report:
    """Every verdict with its evidence, and the alert that would be sent (in a worker)."""
    matcher = matcher_for(rules, nlp)
    return explain(source, article, matcher, now=now, tz=ZoneInfo(timezone), quotes=quotes)


def _extract(html: bytes, url: str) -> Extracted | None:
    try:
        return extract_page(html, url=url)
    except ParseError:
        return None
