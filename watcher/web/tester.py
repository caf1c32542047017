"""The rule tester's CPU work, run in a worker process: explain pasted text, backtest a rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from watcher.articles.model import Article, ArticleSource
from watcher.config import NlpSettings
from watcher.rules.backtest import RuleResult, compare
from watcher.rules.explain import explain
from watcher.rules.schema import RuleSet
from watcher.rules.worker import matcher_for

PASTED = "pasted text"


def article_from_text(text: str) -> Article:
    """Pasted text as an article: the first line is the title, the rest the body (like a
    plain-text file given to `watcher explain`)."""
    title, _, body = text.strip().partition("\n")
    return Article(url="", title=title.strip(), text=body.strip(), source=ArticleSource.FILE)


def explain_text(
    text: str,
    rules: RuleSet,
    nlp: NlpSettings,
    *,
    now: datetime,
    timezone: str,
    quotes: int,
) -> dict[str, Any]:
    """What `watcher explain FILE` reports for ``text`` (picklable, top level)."""
    matcher = matcher_for(rules, nlp)
    return explain(
        PASTED, article_from_text(text), matcher, now=now, tz=ZoneInfo(timezone), quotes=quotes
    )


def backtest_rule(
    rule: str,
    stored: Sequence[tuple[int, Article]],
    did: dict[int, set[str]],
    rules: RuleSet,
    nlp: NlpSettings,
) -> RuleResult:
    """`watcher backtest --rule`: the current rule over stored articles vs what alerted then."""
    matcher = matcher_for(rules, nlp)
    would = {i: {m.rule for m in matcher.match(a)} for i, a in stored}
    results = [r for r in compare(would, did, [rule]) if r.rule == rule]
    return results[0] if results else RuleResult(rule)
