"""Explaining a URL, a file or a text against the rules: the one path the CLI, bot and web use."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from watcher.alerts.blocklist import Blocklist, blocked
from watcher.alerts.compose import build_payload, render
from watcher.articles.extract import (
    JSON_LINES,
    Extracted,
    article_from_file,
    article_from_line,
    article_from_text,
    article_lines,
    build_article,
    extract_page,
)
from watcher.articles.fetch import fetch_article
from watcher.clock import Clock
from watcher.config import Config, NlpSettings
from watcher.errors import FetchError, ParseError, WatcherError
from watcher.http import HttpClient
from watcher.rules.explain import Summarize, explain
from watcher.rules.schema import RuleSet
from watcher.rules.worker import matcher_for
from watcher.types import Article, ArticleSource, Match
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
        blocklist: Callable[[], Blocklist] | None = None,
    ) -> None:
        self._config = config
        self._blocklist = blocklist
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

    async def text(self, text: str, *, source: str = ArticleSource.PASTED.value) -> Report:
        """Pasted text: the first line is the title, the rest the body (as in a text file)."""
        article = article_from_text(text, source=ArticleSource.PASTED)
        rules = self._rules()
        return await self._cpu(explain_article, source, article, rules, **self._options())

    async def source(self, source: str) -> Report:
        """A URL (http or https) or a file path, as `watcher explain` takes them."""
        if source.startswith(("http://", "https://")):
            return await self.url(source)
        return await self.file(Path(source))

    async def each(self, source: str) -> AsyncIterator[Report | WatcherError]:
        """The reports on a source: one for a URL or a file, one per record of a ``.jsonl``
        file, in order. A source or record that cannot be read comes as its WatcherError in
        its place, so the records after a bad line are still explained."""
        path = Path(source)
        if path.suffix.lower() != JSON_LINES or source.startswith(("http://", "https://")):
            try:
                yield await self.source(source)
            except WatcherError as exc:
                yield exc
            return
        try:
            lines = await self._cpu(article_lines, path)
        except WatcherError as exc:
            yield exc
            return
        for number, line in lines:
            try:
                yield await self._record(path, number, line)
            except WatcherError as exc:
                yield exc

    async def _record(self, path: Path, number: int, line: bytes) -> Report:
        return await self._cpu(explain_line, path, number, line, self._rules(), **self._options())

    def _options(self) -> dict[str, Any]:
        return {
            "blocklist": self._blocklist() if self._blocklist else None,
            "nlp": self._config.nlp,
            "now": self._clock.now(),
            "timezone": self._config.watcher.timezone,
            "quotes": self._config.alerts.summary_sentences,
        }


def explain_line(path: Path, number: int, line: bytes, rules: RuleSet, **options: Any) -> Report:
    """A line of a JSON lines file read and explained in one worker call (options as for
    explain_article); ParseError naming FILE:LINE."""
    source, article = article_from_line(path, number, line)
    return explain_article(source, article, rules, **options)


def explain_page(
    url: str,
    html: bytes,
    rules: RuleSet,
    *,
    nlp: NlpSettings,
    now: datetime,
    timezone: str,
    quotes: int,
    blocklist: Blocklist | None = None,
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
    return explain_article(
        url, article, rules, nlp=nlp, now=now, timezone=timezone, quotes=quotes, blocklist=blocklist
    )


def explain_article(
    source: str,
    article: Article,
    rules: RuleSet,
    *,
    nlp: NlpSettings,
    now: datetime,
    timezone: str,
    quotes: int,
    blocklist: Blocklist | None = None,
) -> Report:
    """Every verdict with its evidence, the alert that would be sent, and whether the
    blocklist stops it (in a worker)."""
    matcher = matcher_for(rules, nlp)
    summarize = summarizer(ZoneInfo(timezone), quotes)
    report = explain(source, article, matcher, now=now, summarize=summarize)
    reason = blocked(blocklist, article, article.url) if blocklist is not None else ""
    if reason and blocklist is not None:
        report["blocked"] = reason + (f" in {blocklist.path.name}" if blocklist.path else "")
    return report


def summarizer(tz: ZoneInfo, quotes: int) -> Summarize:
    """The alert text a report shows for the rules an article matches."""

    def summarize(article: Article, matches: list[Match], source: str) -> str:
        outlet = article.site_name or _outlet(source, article.url)
        payload = build_payload(article, matches, source=outlet, quotes=quotes)
        return render(payload, tz=tz).text

    return summarize


def _outlet(source: str, url: str = "") -> str:
    """Where an article given to explain comes from, as an alert names its outlet: the host
    of a URL (the article's own, as a JSON record gives it), the name of a file (the link
    itself ends the alert)."""
    host = urlsplit(url).hostname if url.startswith(("http://", "https://")) else None
    return host or urlsplit(source).hostname or Path(source).name or source


def _extract(html: bytes, url: str) -> Extracted | None:
    try:
        return extract_page(html, url=url)
    except ParseError:
        return None
