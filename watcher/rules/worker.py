"""The CPU job run in worker processes: extract an entry's article and match it against rules."""

from __future__ import annotations

import copyreg
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.articles.extract import Extracted, build_article, extract_page
from watcher.articles.fingerprint import signature
from watcher.config import NlpSettings
from watcher.errors import ParseError
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import RuleSet
from watcher.types import Article, Match, Signature


@dataclass(frozen=True)
class EntryJob:
    url: str
    html: bytes | None
    fetch_error: str
    feed_title: str
    feed_content: str
    feed_summary: str
    published: datetime | None
    feed_name: str
    feed_tags: tuple[str, ...]
    language_hint: str
    min_text_chars: int


@dataclass(frozen=True)
class Processed:
    article: Article
    matches: tuple[Match, ...]
    signature: Signature | None  # only for matching articles: what story grouping needs


# One Matcher per process, rebuilt only when the rules change: spaCy pipelines and the
# prefilter automaton are expensive to build and cheap to reuse.
_MATCHERS: dict[tuple[str, str], Matcher] = {}


def matcher_for(rules: RuleSet, nlp: NlpSettings) -> Matcher:
    key = (rules.fingerprint, repr(nlp))  # NlpSettings holds a dict: not hashable
    if key not in _MATCHERS:
        _MATCHERS.clear()
        _MATCHERS[key] = Matcher(rules, Analyzer(nlp, rules))
    return _MATCHERS[key]


# Every call sends the rules along (the pool cannot know which worker has which version).
# Pickling 1,000 rules takes ~25 ms and unpickling ~55 ms, more than extracting the article,
# so a RuleSet crosses the process boundary as its fingerprint plus bytes pickled once, and a
# worker that already holds that fingerprint reuses its copy instead of unpickling again.
_SENT: dict[str, bytes] = {}
_RECEIVED: dict[str, RuleSet] = {}


def _reduce_rules(rules: RuleSet) -> tuple[Callable[..., RuleSet], tuple[Any, ...]]:
    if not rules.fingerprint:  # built in code, not loaded from files: no identity to cache by
        return RuleSet, (rules.rules, rules.fingerprint)
    data = _SENT.get(rules.fingerprint)
    if data is None:  # (pickled on the pool's feeder thread: read the dict once)
        data = pickle.dumps(rules.rules, pickle.HIGHEST_PROTOCOL)
        _SENT.clear()
        _SENT[rules.fingerprint] = data
    return _received_rules, (rules.fingerprint, data)


def _received_rules(fingerprint: str, data: bytes) -> RuleSet:
    rules = _RECEIVED.get(fingerprint)
    if rules is None:
        rules = RuleSet(pickle.loads(data), fingerprint)
        _RECEIVED.clear()
        _RECEIVED[fingerprint] = rules
    return rules


copyreg.pickle(RuleSet, _reduce_rules)


def process_entry(job: EntryJob, rules: RuleSet, nlp: NlpSettings, now: datetime) -> Processed:
    """Extract (falling back to the feed's text), then match. Pure apart from the caches."""
    article = build_article(
        url=job.url,
        extracted=_extract(job),
        feed_title=job.feed_title,
        feed_content=job.feed_content,
        feed_summary=job.feed_summary,
        published=job.published,
        feed_name=job.feed_name,
        feed_tags=job.feed_tags,
        language_hint=job.language_hint,
        min_text_chars=job.min_text_chars,
        fetch_error=job.fetch_error,
    )
    found = tuple(matcher_for(rules, nlp).match(article, now=now))
    sig = signature(article.title, article.text) if found else None
    return Processed(article, found, sig)


def _extract(job: EntryJob) -> Extracted | None:
    if job.html is None:
        return None
    try:
        return extract_page(job.html, url=job.url)
    except ParseError:
        return None
