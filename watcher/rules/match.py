"""Matching: rules against analysed articles, with evidence, a score and the reasons why.

The decisions are pure functions of the rule, the analysed article and ``now``;
``Matcher`` only wires them to the prefilter and the Analyzer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from watcher.rules.nlp import AnalyzedArticle, Analyzer, Section
from watcher.rules.schema import (
    FIELDS,
    Actor,
    AllOf,
    AnyOf,
    Keywords,
    Mentions,
    Near,
    Node,
    NoneOf,
    Pattern,
    Rule,
    RuleSet,
    Term,
    compile_regex,
)
from watcher.types import Article, Evidence, Field, Match

_SENTENCE_CHARS = 400
_MAX_REGEX_HITS = 1000


@dataclass(frozen=True)
class Verdict:
    rule: str
    matched: bool
    score: float
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    threshold: float = 0.0


class Matcher:
    """Runs every rule over articles: the prefilter first, the full analysis if needed."""

    def __init__(self, rules: RuleSet, analyzer: Analyzer) -> None:
        self.rules = rules
        self.analyzer = analyzer

    def match(self, article: Article, *, now: datetime | None = None) -> list[Match]:
        """The rules ``article`` matches. Without ``now``, max_age is not checked."""
        language = self.analyzer.language(article)
        scan = self.analyzer.scan(article, language)
        rules = [self.analyzer.prefilter.rules[i] for i in scan.candidates]
        rules = [r for r in rules if not filter_reason(r, article, language, now)]
        if not rules:
            return []
        analyzed = self.analyzer.analyze(article, scan)
        verdicts = [(rule, evaluate(rule, analyzed, now)) for rule in rules]
        return [_to_match(rule, v) for rule, v in verdicts if v.matched]

    def explain(self, article: Article, *, now: datetime | None = None) -> list[Verdict]:
        """One verdict per rule, matched or not, with its reasons (always analyses fully)."""
        if not self.rules.rules:
            return []
        analyzed = self.analyzer.analyze(article)
        candidates = {self.analyzer.prefilter.rules[i].name for i in analyzed.scan.candidates}
        return [
            _prefiltered(evaluate(r, analyzed, now), r.name in candidates) for r in self.rules.rules
        ]


def _to_match(rule: Rule, verdict: Verdict) -> Match:
    return Match(
        rule.name,
        verdict.score,
        rule.threshold,
        verdict.evidence,
        rule.priority,
        rule.destinations,
        verdict.reasons,
    )


def _prefiltered(verdict: Verdict, candidate: bool) -> Verdict:
    if candidate or not verdict.matched:
        return verdict
    note = (
        "prefilter: ruled out before the full analysis (a word form it does not know?), "
        "so no alert would be sent"
    )
    return Verdict(
        verdict.rule,
        False,
        verdict.score,
        (*verdict.reasons, note),
        verdict.evidence,
        verdict.threshold,
    )


# --- filters --------------------------------------------------------------------------


def filter_reason(rule: Rule, article: Article, language: str, now: datetime | None) -> str:
    """Why ``rule``'s filters exclude ``article``, or "" when they let it through."""
    filters = rule.filters
    if filters.feeds and not _feed_allowed(filters.feeds, article):
        return (
            f"filtered out: feed {article.feed_name or '(none)'!r} is not in {list(filters.feeds)}"
        )
    if filters.languages and language and language not in filters.languages:
        return f"filtered out: language {language!r} is not in {list(filters.languages)}"
    age = _age(article, now)
    if filters.max_age is not None and age is not None and age > filters.max_age:
        return (
            f"filtered out: published {_hours(age)} ago, more than max_age "
            f"{_hours(filters.max_age)}"
        )
    return ""


def _feed_allowed(feeds: tuple[str, ...], article: Article) -> bool:
    allowed = {f.casefold() for f in feeds}
    names = {article.feed_name.casefold()} | {f"tag:{t}".casefold() for t in article.feed_tags}
    return bool(allowed & names)


def _age(article: Article, now: datetime | None) -> float | None:
    if now is None or article.published is None:
        return None
    published = article.published
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return (now - published).total_seconds()


def _hours(seconds: float) -> str:
    return f"{seconds / 86400:.1f}d" if seconds >= 86400 else f"{seconds / 3600:.1f}h"


# --- finding mentions -----------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """One mention of a term, with where it sits for proximity."""

    evidence: Evidence
    term: str  # the rule's name for the term (an actor, keyword group or regex group)
    sentence: int
    word: int

    @property
    def where(self) -> Field:
        return self.evidence.where


@dataclass
class _Article:
    """An analysed article plus the caches evaluation fills (per call, never shared)."""

    analyzed: AnalyzedArticle
    found: dict[Term, tuple[list[_Found], list[str]]] = field(default_factory=dict)
    indexes: dict[Field, dict[str, list[int]]] = field(default_factory=dict)

    def mentions(self, term: Term) -> tuple[list[_Found], list[str]]:
        """The term's mentions, and notes on mentions that were not counted."""
        if term not in self.found:
            self.found[term] = _find(term, self)
        return self.found[term]

    def index(self, name: Field) -> dict[str, list[int]]:
        """Folded token text and lemma -> token positions, to find phrases fast."""
        if name not in self.indexes:
            index: dict[str, list[int]] = {}
            for i, keys in enumerate(self.analyzed.section(name).keys):
                for key in set(keys):
                    index.setdefault(key, []).append(i)
            self.indexes[name] = index
        return self.indexes[name]

    def phrase_matches(self, phrase: str, name: Field) -> list[tuple[int, int]]:
        """(first, last) token of each place ``phrase`` matches, on text or lemma."""
        forms = self.analyzed.phrases.get(phrase, ())
        if not forms:
            return []
        keys = self.analyzed.section(name).keys
        index = self.index(name)
        starts = sorted({i for form in forms[0] for i in index.get(form, ())})
        return [(i, i + len(forms) - 1) for i in starts if _phrase_at(keys, forms, i)]


def _phrase_at(keys: list[tuple[str, str]], forms: tuple[frozenset[str], ...], i: int) -> bool:
    if i + len(forms) > len(keys):
        return False
    return all(not forms[j].isdisjoint(keys[i + j]) for j in range(len(forms)))


def _find(term: Term, article: _Article) -> tuple[list[_Found], list[str]]:
    if isinstance(term, Actor):
        return _actor_mentions(term, article)
    if isinstance(term, Keywords):
        return _keyword_mentions(term, article), []
    return _regex_mentions(term, article), []


def _actor_mentions(actor: Actor, article: _Article) -> tuple[list[_Found], list[str]]:
    """The actor's mentions, and notes on the occurrences of its names that were not counted.

    One sense per article: when at least as many mentions carry one of the actor's types as
    carry another, those NER labelled otherwise ("Maduro's aides" as ORG) are counted too.
    """
    analyzed = article.analyzed
    found, conflicts, notes = [], [], []
    term_id = analyzed.term_ids.get(actor)
    spans = analyzed.scan.spans(term_id) if term_id is not None else []
    for name, start, end in spans:
        section = analyzed.section(name)
        problem, label = _actor_problem(actor, article, section, start, end)
        mention = _found(section, actor, actor.name, (start, end), label)
        if not problem:
            found.append(mention)
        elif label is not None:
            conflicts.append((mention, problem))
        else:
            notes.append(f"not counted: {problem}")
    majority = bool(found) and len(found) >= len(conflicts)
    found += [mention for mention, _ in conflicts if majority]
    types = "/".join(actor.types)
    prefix = f"counted anyway (most mentions are {types}):" if majority else "not counted:"
    notes += [f"{prefix} {problem}" for _, problem in conflicts]
    return sorted(found, key=_order), notes


def _actor_problem(
    actor: Actor, article: _Article, section: Section, start: int, end: int
) -> tuple[str, str | None]:
    """Why a name's occurrence is not the actor ("" if it is), and its entity label."""
    surface = section.text[start:end]
    first, last = section.token_at(start), section.token_at(end - 1)
    for phrase in actor.exclude:
        if any(a <= first and last <= b for a, b in article.phrase_matches(phrase, section.name)):
            return f"{surface!r} is part of {phrase!r} (exclude)", None
    sentence = section.sentence_of[first] if section.sentence_of else 0
    for phrase in actor.not_near:
        matches = article.phrase_matches(phrase, section.name)
        if any(section.sentence_of[a] == sentence for a, _ in matches):
            return f"{surface!r} is in a sentence with {phrase!r} (not_near)", None
    return _type_problem(actor, section, start, end, surface)


def _type_problem(
    actor: Actor, section: Section, start: int, end: int, surface: str
) -> tuple[str, str | None]:
    """An actor with types needs an entity of one of them; where NER saw no entity at all
    (it misses many in headlines), a capitalised name is given the benefit of the doubt."""
    overlapping = [e for e in section.entities if e.start < end and start < e.end]
    if not actor.types:
        return "", overlapping[0].label if overlapping else None
    if not (section.caseless or _capitalised(surface)):
        return f"{surface!r} is lowercase, not a name", None
    good = next((e for e in overlapping if e.types & set(actor.types)), None)
    if good is not None:
        return "", good.label
    if not overlapping:
        return "", None
    labels = ", ".join(sorted({e.label for e in overlapping}))
    return f"{surface!r} is {labels}, not {'/'.join(actor.types)}", overlapping[0].label


def _capitalised(surface: str) -> bool:
    return next((c.isupper() for c in surface if c.isalpha()), False)


def _keyword_mentions(group: Keywords, article: _Article) -> list[_Found]:
    analyzed = article.analyzed
    found: list[_Found] = []
    for name in FIELDS:
        section = analyzed.section(name)
        spans = [
            (a, b, p)
            for p in group.for_language(analyzed.language)
            for a, b in article.phrase_matches(p, name)
        ]
        taken: set[int] = set()
        for a, b, phrase in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
            if taken.isdisjoint(range(a, b + 1)) and _after_echo(analyzed, name, section, a):
                taken.update(range(a, b + 1))
                start, end = section.starts[a], section.ends[b]
                found.append(_found(section, group, phrase, (start, end), None))
    return sorted(found, key=_order)


def _after_echo(analyzed: AnalyzedArticle, name: Field, section: Section, token: int) -> bool:
    return name == "title" or section.starts[token] >= analyzed.scan.echo_end


def _regex_mentions(group: Pattern, article: _Article) -> list[_Found]:
    analyzed = article.analyzed
    found: list[_Found] = []
    for name in FIELDS:
        section = analyzed.section(name)
        skip = analyzed.scan.echo_end if name == "text" else 0
        for pattern in group.patterns:
            for hit in _regex(pattern).finditer(section.text, skip):
                if hit.end() > hit.start() and len(found) < _MAX_REGEX_HITS:
                    found.append(_found(section, group, group.name, hit.span(), None))
    return found


@functools.cache
def _regex(pattern: str) -> Any:
    return compile_regex(pattern)


def _found(
    section: Section, term: Term, shown: str, span: tuple[int, int], label: str | None
) -> _Found:
    start, end = span
    token = section.token_at(start) if section.starts else 0
    sentence = section.sentence_of[token] if section.sentence_of else 0
    matched = section.text[start:end]
    text = _excerpt(section.sentence_text(sentence), matched)
    kind = _KINDS[type(term)]
    evidence = Evidence(kind, shown, matched, section.name, text, start, end, label, term.weight)
    word = section.word_of[token] if section.word_of else 0
    return _Found(evidence, term.name, sentence, word)


_KINDS: dict[type, Literal["actor", "keyword", "regex"]] = {
    Actor: "actor",
    Keywords: "keyword",
    Pattern: "regex",
}


def _excerpt(sentence: str, matched: str) -> str:
    """The sentence, or a window of it around the match when it is very long."""
    if len(sentence) <= _SENTENCE_CHARS:
        return sentence
    at = max(0, sentence.find(matched))
    start = max(0, at - _SENTENCE_CHARS // 2)
    return "…" + sentence[start : start + _SENTENCE_CHARS].strip() + "…"


# --- evaluating a rule ----------------------------------------------------------------


@dataclass
class _Outcome:
    ok: bool
    text: str  # the node, rendered with ✓/✗


def evaluate(rule: Rule, analyzed: AnalyzedArticle, now: datetime | None = None) -> Verdict:
    """The verdict of ``rule`` on ``analyzed``, with evidence and reasons (pure)."""
    reason = filter_reason(rule, analyzed.article, analyzed.language, now)
    if reason:
        return Verdict(rule.name, False, 0.0, (reason,), (), rule.threshold)
    article = _Article(analyzed)
    logic = _node(rule.logic, rule, article)
    positive = [f for t in rule.positive_terms for f in _in_scope(rule, article, t.name)]
    score = sum(_weight(rule, f) for f in positive)
    lines = [*_term_lines(rule, article), f"match: {logic.text}"]
    lines += _verdict_lines(rule, logic.ok, score, len(positive))
    matched = logic.ok and score >= rule.threshold and len(positive) >= rule.min_mentions
    evidence = tuple(f.evidence for f in sorted(positive, key=_order))
    return Verdict(rule.name, matched, score, tuple(lines), evidence, rule.threshold)


def _order(found: _Found) -> tuple[int, int]:
    return FIELDS.index(found.where), found.evidence.start


def _weight(rule: Rule, found: _Found) -> float:
    weight = rule.term(found.term).weight
    return weight * (rule.title_weight if found.where == "title" else 1.0)


def _in_scope(
    rule: Rule, article: _Article, name: str, scope: Iterable[Field] = FIELDS
) -> list[_Found]:
    fields = set(scope) & set(rule.scope)
    return [f for f in article.mentions(rule.term(name))[0] if f.where in fields]


def _term_lines(rule: Rule, article: _Article) -> Iterator[str]:
    for term in rule.terms:
        found, dropped = article.mentions(term)
        kind = _KINDS[type(term)]
        titled = sum(f.where == "title" for f in found)
        counts = f"{len(found)} mention{'s' * (len(found) != 1)}" + (
            f" ({titled} in the title)" if titled else ""
        )
        forms = sorted({f.evidence.matched for f in found})[:5]
        shown = f": {', '.join(map(repr, forms))}" if forms else ""
        yield f"{kind} {term.name}: {counts}{shown}"
        for note in dropped[:5]:
            yield f"  {note}"
        if len(dropped) > 5:
            yield f"  and {len(dropped) - 5} more not counted or counted anyway"


def _verdict_lines(rule: Rule, logic: bool, score: float, mentions: int) -> list[str]:
    plural = "s" * (mentions != 1)
    lines = [
        f"score {score:g} (threshold {rule.threshold:g}), "
        f"{mentions} mention{plural} (min_mentions {rule.min_mentions})"
    ]
    problems = []
    if not logic:
        problems.append("the match conditions are not met")
    if score < rule.threshold:
        problems.append(f"score {score:g} < threshold {rule.threshold:g}")
    if mentions < rule.min_mentions:
        problems.append(f"{mentions} mentions < min_mentions {rule.min_mentions}")
    lines.append("no alert: " + "; ".join(problems) if problems else "alert")
    return lines


def _node(node: Node, rule: Rule, article: _Article) -> _Outcome:
    if isinstance(node, Mentions):
        return _mentions_node(node, rule, article)
    if isinstance(node, Near):
        return _near_node(node, rule, article)
    children = [_node(c, rule, article) for c in node.children]
    inner = ", ".join(c.text for c in children)
    if isinstance(node, AllOf):
        ok, name = all(c.ok for c in children), "all"
    elif isinstance(node, AnyOf):
        ok, name = any(c.ok for c in children), "any"
    else:
        assert isinstance(node, NoneOf)
        ok, name = not any(c.ok for c in children), "none"
    return _Outcome(ok, f"{_mark(ok)} {name}({inner})")


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _mentions_node(node: Mentions, rule: Rule, article: _Article) -> _Outcome:
    count = len(_in_scope(rule, article, node.name, node.scope))
    ok = count >= node.min
    details = []
    if node.min > 1:
        details.append(f"{count}/{node.min}")
    if set(node.scope) != set(FIELDS):
        details.append(f"in {'+'.join(node.scope)}")
    suffix = f" [{', '.join(details)}]" if details else ""
    return _Outcome(ok, f"{_mark(ok)} {node.name}{suffix}")


def _near_node(node: Near, rule: Rule, article: _Article) -> _Outcome:
    groups = [[f for n in op for f in _in_scope(rule, article, n)] for op in node.operands]
    hits = [
        a for a in groups[0] if all(any(_close(a, b, node.within) for b in g) for g in groups[1:])
    ]
    ok = bool(hits)
    names = ", ".join("|".join(op) for op in node.operands)
    where = "one sentence" if node.within is None else f"{node.within} words"
    text = f"{_mark(ok)} near({names}) within {where}"
    if hits:
        text += f" ×{len(hits)}: {hits[0].evidence.sentence!r}"
    return _Outcome(ok, text)


def _close(a: _Found, b: _Found, within: int | None) -> bool:
    if a.where != b.where or a.evidence == b.evidence:
        return False
    if within is None:
        return a.sentence == b.sentence
    return abs(a.word - b.word) <= within
