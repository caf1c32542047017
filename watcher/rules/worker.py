"""The CPU job run in worker processes: extract an entry's article and match it against rules."""

from __future__ import annotations

import atexit
import contextlib
import copyreg
import dataclasses
import gc
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.articles.extract import Extracted, build_article, extract_page
from watcher.articles.fingerprint import signature
from watcher.config import NlpSettings
from watcher.errors import ParseError
from watcher.rules.match import Matcher
from watcher.rules.model import RuleSet
from watcher.rules.nlp import Analyzer, spacy_problem
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
    categories: tuple[str, ...] = ()  # the feed item's categories/tags
    feed_author: str = ""  # the feed item's author


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
        # A build leaves long-lived objects and the previous version's garbage: collected
        # now, with the build, they do not set off a full collection amid the next
        # articles (one walks every object in the process, spaCy's too: ~50 ms).
        gc.collect()
    return _MATCHERS[key]


# The pool cannot know which worker holds which rules version, and pickling 1,000 rules
# (740 KB) with every article costs more than extracting it. So a RuleSet crosses the
# process boundary as its fingerprint and the path of a file holding it, written once per
# version; a worker reads that file once per version and keeps its copy.
_SHIPPED: dict[str, str] = {}  # in the daemon: fingerprint -> file
_RECEIVED: dict[str, RuleSet] = {}  # in a worker: fingerprint -> rules
_KEEP_VERSIONS = 2  # a job queued with the previous version can still find its file
_SHIP_DIR: list[str] = []  # created on first use, removed at exit
_SHIP_PREFIX = "watcher-rules-"  # then the daemon's pid: whose folder it is


def _reduce_rules(rules: RuleSet) -> tuple[Callable[..., RuleSet], tuple[Any, ...]]:
    if not rules.fingerprint:  # built in code, not loaded from files: no identity to cache by
        return RuleSet, (rules.rules, rules.fingerprint)
    path = _SHIPPED.get(rules.fingerprint) or _ship(rules)
    return _received_rules, (rules.fingerprint, path)


def _ship(rules: RuleSet) -> str:
    if not _SHIP_DIR:
        _remove_orphans()
        _SHIP_DIR.append(tempfile.mkdtemp(prefix=f"{_SHIP_PREFIX}{os.getpid()}-"))
        atexit.register(shutil.rmtree, _SHIP_DIR[0], True)
    path = os.path.join(_SHIP_DIR[0], f"{len(_SHIPPED)}-{rules.fingerprint[:16]}.pickle")
    with open(path, "wb") as out:
        pickle.dump(rules.rules, out, pickle.HIGHEST_PROTOCOL)
    _SHIPPED[rules.fingerprint] = path
    while len(_SHIPPED) > _KEEP_VERSIONS:
        with contextlib.suppress(OSError):
            os.unlink(_SHIPPED.pop(next(iter(_SHIPPED))))
    return path


def _remove_orphans() -> None:
    """Remove the rules folders of daemons that died without their exit handlers (SIGKILL,
    the OOM killer): a daemon restarted after each crash would otherwise leave one a time."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_SHIP_PREFIX}*-*"):
        pid = folder.name.removeprefix(_SHIP_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _received_rules(fingerprint: str, path: str) -> RuleSet:
    rules = _RECEIVED.get(fingerprint)
    if rules is None:
        with open(path, "rb") as data:
            rules = RuleSet(pickle.load(data), fingerprint)
        _RECEIVED.clear()
        _RECEIVED[fingerprint] = rules
    return rules


copyreg.pickle(RuleSet, _reduce_rules)


def ship_rules(rules: RuleSet) -> tuple[str, str] | None:
    """(fingerprint, file) for a worker's ``preload``: plain strings, so a worker started
    after that file is gone still starts (and loads the rules with its first job)."""
    if not rules.fingerprint:
        return None
    return rules.fingerprint, _SHIPPED.get(rules.fingerprint) or _ship(rules)


_WARM_HTML = (
    b"<html><head><title>Warm up</title></head><body><article><h1>Warm up</h1>"
    b"<p>The minister met the president in Paris on Monday to talk about trade.</p>"
    b"</article></body></html>"
)


def preload(nlp: NlpSettings, shipped: tuple[str, str] | None) -> None:
    """Worker initializer: import the extractor, load the NLP models and build the matcher
    before the first article, so the first alert after start-up does not wait for them."""
    try:
        rules = _received_rules(*shipped) if shipped else RuleSet(())
        job = EntryJob(
            url="http://127.0.0.1/warm", html=_WARM_HTML, fetch_error="", feed_title="Warm up",
            feed_content="", feed_summary="", published=None, feed_name="", feed_tags=(),
            language_hint="en", min_text_chars=0,
        )  # fmt: skip
        article = build_article(
            url=job.url, extracted=_extract(job), feed_title=job.feed_title, feed_content="",
            feed_summary="", published=None, feed_name="", feed_tags=(), language_hint="en",
            min_text_chars=0,
        )  # fmt: skip
        matcher_for(rules, nlp).analyzer.analyze(article)  # spaCy models and rule phrases
    except Exception:  # never fatal: the first job loads what it needs, the slow way
        logging.getLogger(__name__).exception("worker preload failed")
    if spacy_problem():  # the daemon's own process never imports spaCy: said from here
        logging.getLogger(__name__).error("%s", spacy_problem())


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
        categories=job.categories,
        feed_author=job.feed_author,
    )
    matcher = matcher_for(rules, nlp)
    language = matcher.analyzer.language(article)  # the declared one, else detected ("": unsure)
    if language and not article.language:  # stored for the web page's filter and alerts.jsonl
        article = dataclasses.replace(article, language=language)
    found = tuple(matcher.match(article, now=now, language=language))
    sig = signature(article.title, article.text) if found else None
    return Processed(article, found, sig)


def _extract(job: EntryJob) -> Extracted | None:
    if job.html is None:
        return None
    try:
        # The feed's date wins over the page's (build_article): no need to look for it.
        return extract_page(job.html, url=job.url, date=job.published is None)
    except ParseError:
        return None
