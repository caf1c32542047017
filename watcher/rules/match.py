"""Matching: rules against analysed articles, with evidence, a score and the reasons why.

The decisions are pure functions of the rule, the analysed article and ``now``;
``Matcher`` only wires them to the prefilter and the Analyzer.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from watcher.rules.about import Aboutness, Part, about_lines, aboutness
from watcher.rules.model import (
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
)
from watcher.rules.nlp import AnalyzedArticle, Analyzer, Section
from watcher.rules.prefilter import fold
from watcher.rules.regex import compile_regex
from watcher.rules.text import (
    DETERMINERS,
    blank_noise,
    cap,
    capitalised,
    headings,
    repair,
    title_lines,
)
from watcher.types import Article, Evidence, Field, Match

_SENTENCE_CHARS = 400
_MAX_REGEX_HITS = 1000
_MAX_MENTIONS = 1000  # per term: more say nothing new, and would cost time and memory
_NER_PER_ACTOR = 1  # sentences per actor through NER; its sense holds for the rest
_UNREAD = "\0unread"  # a typed mention in a sentence NER did not read
_LOOK_BACK = 80  # characters
# The last one or two words before a name, and what separates them from it and each other.
_WORDS_BEFORE = re.compile(r"(?:(?P<before>\w+)(?P<sep>\W*?))?(?P<last>\w+)(?P<gap>\W*)\Z")


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

    def match(
        self, article: Article, *, now: datetime | None = None, language: str | None = None
    ) -> list[Match]:
        """The rules ``article`` matches. Without ``now``, max_age is not checked; without
        ``language`` (the caller's detection), it is detected here."""
        article, notes = prepare(article)
        language = self.analyzer.language(article) if language is None else language
        scan = self.analyzer.scan(article, language)
        rules = [self.analyzer.prefilter.rules[i] for i in scan.candidates]
        rules = [r for r in rules if not filter_reason(r, article, language, now)]
        if not rules:
            return []
        hopeless: set[str] = set()
        analyzed = self._analyze(article, rules, notes, scan, hopeless=hopeless)
        rules = [r for r in rules if r.name not in hopeless]
        verdicts = [(rule, evaluate(rule, analyzed, now, reasons=False)) for rule in rules]
        return [_to_match(rule, v) for rule, v in verdicts if v.matched]

    def explain(self, article: Article, *, now: datetime | None = None) -> list[Verdict]:
        """One verdict per rule, matched or not, with its reasons (analyses for every rule)."""
        if not self.rules.rules:
            return []
        article, notes = prepare(article)
        analyzed = self._analyze(article, list(self.rules.rules), notes, everything=True)
        candidates = {self.analyzer.prefilter.rules[i].name for i in analyzed.scan.candidates}
        return [
            _prefiltered(evaluate(r, analyzed, now), r.name in candidates) for r in self.rules.rules
        ]

    def _analyze(
        self,
        article: Article,
        rules: list[Rule],
        notes: tuple[str, ...],
        scan: Any = None,
        *,
        everything: bool = False,
        hopeless: set[str] | None = None,
    ) -> AnalyzedArticle:
        """Windows around the mentions, then NER on the sentences the rules need it for;
        adds to ``hopeless`` the rules that cannot match whatever NER says."""
        radius = max((r.window for r in rules), default=0)
        # Windows only around the hits of these rules' terms: other rules' terms are never
        # read, with many rules they would make most sentences windows, and they would make
        # a verdict depend on the other rules loaded (an irregular form such as "struck" for
        # the keyword "strike" is only seen in a window).
        patterns = None if everything else self.analyzer.prefilter.rule_patterns(rules)
        analyzed = self.analyzer.analyze(
            article, scan, radius=radius, everything=everything, patterns=patterns
        )
        analyzed.notes = notes
        wanted: dict[Field, set[int]] = {}
        for rule in rules:
            asked = ner_wanted(rule, analyzed) if any(a.types for a in rule.actors) else {}
            if not asked:
                continue  # no typed actor, or none whose sense NER would decide
            certain = everything or _negative_types(rule)
            if not certain and not evaluate(rule, analyzed, optimistic=True, reasons=False).matched:
                if hopeless is not None:
                    hopeless.add(rule.name)
                continue  # cannot match even if NER confirmed every name
            for name, sentences in asked.items():
                wanted.setdefault(name, set()).update(sentences)
        if wanted:
            self.analyzer.add_entities(analyzed, wanted)
        return analyzed


def _negative_types(rule: Rule) -> bool:
    """Whether a typed actor is only under ``none``: NER could make such a rule match."""
    positive = set(rule.positive_terms)
    return any(a.types and a not in positive for a in rule.actors)


def prepare(article: Article) -> tuple[Article, tuple[str, ...]]:
    """The article as matching reads it: mojibake repaired, URLs, e-mail addresses and
    markup blanked, the text capped; and a note for each cap applied."""
    text, note = cap(repair(article.text))
    title, title_note = cap(repair(article.title), 2000)
    cleaned = dataclasses.replace(article, title=blank_noise(title), text=blank_noise(text))
    return cleaned, tuple(n for n in (note, title_note.replace("text", "title")) if n)


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
    """Why ``rule``'s filters exclude ``article`` (the first filter that does), or "" when
    they let it through."""
    return next(filter_reasons(rule, article, language, now), "")


def filter_reasons(
    rule: Rule, article: Article, language: str, now: datetime | None
) -> Iterator[str]:
    """Each of ``rule``'s filters that excludes ``article``, and why (lazily: matching reads
    the first; explain lists them all, so a user fixes them in one go)."""
    filters = rule.filters
    if filters.feeds and not _feed_allowed(filters.feeds, article):
        feed = article.feed_name or "(none)"
        yield f"filtered out: feed {feed!r} is not in {list(filters.feeds)}"
    if filters.languages and language and language not in filters.languages:
        yield f"filtered out: language {language!r} is not in {list(filters.languages)}"
    age = _age(article, now)
    if filters.max_age is not None and age is not None and age > filters.max_age:
        yield (
            f"filtered out: published {_hours(age)} ago, more than max_age "
            f"{_hours(filters.max_age)}"
        )
    if filters.categories and not _category_allowed(filters.categories, article.categories):
        yield (
            f"filtered out: categories {list(article.categories)} have none of "
            f"{list(filters.categories)}"
        )
    author = article.author.casefold()
    if filters.authors and not any(a.casefold() in author for a in filters.authors):
        yield (
            f"filtered out: author {article.author or '(none)'!r} has none of "
            f"{list(filters.authors)}"
        )
    if filters.url and not _regex(filters.url).search(article.url):
        yield f"filtered out: URL {article.url!r} does not match {filters.url!r}"


def _category_allowed(wanted: tuple[str, ...], categories: tuple[str, ...]) -> bool:
    return bool({c.casefold() for c in wanted} & {c.casefold() for c in categories})


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
    """An analysed article plus the caches evaluation fills: per rule where the answer
    depends on the rule, else in ``analyzed.memo``, shared by every rule."""

    analyzed: AnalyzedArticle
    rule: Rule | None = None
    collect: bool = False  # note the sentences that need NER instead of deciding without it
    optimistic: bool = False  # count what only NER could rule out: an upper bound
    requests: dict[Field, set[int]] = field(default_factory=dict)
    found: dict[Term, tuple[list[_Found], list[str]]] = field(default_factory=dict)
    scoped: dict[tuple[str, tuple[Field, ...]], list[_Found]] = field(default_factory=dict)

    def mentions(self, term: Term) -> tuple[list[_Found], list[str]]:
        """The term's mentions, and notes on mentions that were not counted."""
        if term not in self.found:
            self.found[term] = self._shared(term)
        return self.found[term]

    def _shared(self, term: Term) -> tuple[list[_Found], list[str]]:
        """Mentions of a term that does not depend on the rule are found once per article."""
        actor = isinstance(term, Actor)
        ambiguous = isinstance(term, Actor) and term.ambiguous
        # only an actor's mentions depend on NER (optimism, labels): keywords and regexes
        # are found once per article
        key = ("mentions", term, self.optimistic and actor)
        memo = self.analyzed.memo
        if self.collect or ambiguous:
            found = _find(term, self)
            if self.collect and not ambiguous:
                # Collecting only notes which sentences to ask NER about: it finds what a
                # later pass finds as long as NER has not run (add_entities clears this).
                memo.setdefault(key, found)
            return found
        if key not in memo:
            memo[key] = _find(term, self)
        return memo[key]  # type: ignore[no-any-return]

    def index(self, name: Field) -> dict[str, list[int]]:
        """Folded token text and lemma -> token positions, to find phrases fast."""
        key = ("index", name)
        memo = self.analyzed.memo
        if key not in memo:
            # a defaultdict: this runs over every token of the windows (no .get would add)
            index: defaultdict[str, list[int]] = defaultdict(list)
            for i, (text, lemma) in enumerate(self.analyzed.section(name).keys):
                index[text].append(i)
                if lemma != text:
                    index[lemma].append(i)
            memo[key] = index
        return memo[key]  # type: ignore[no-any-return]

    def phrase_matches(self, phrase: str, name: Field) -> list[tuple[int, int]]:
        """(first, last) token of each place ``phrase`` matches, on text or lemma (cached:
        exclusions are asked about once per mention, keywords once per article)."""
        key = ("phrase", phrase, name)
        memo = self.analyzed.memo
        if key not in memo:
            memo[key] = self._phrase_matches(phrase, name)
        return memo[key]  # type: ignore[no-any-return]

    def _phrase_matches(self, phrase: str, name: Field) -> list[tuple[int, int]]:
        forms = self.analyzed.phrases.get(phrase, ())
        if not forms:
            return []
        keys = self.analyzed.section(name).keys
        index = self.index(name)
        starts = sorted({i for form in forms[0] for i in index.get(form, ())})
        return [(i, i + len(forms) - 1) for i in starts if _phrase_at(keys, forms, i)]

    def layout(self) -> tuple[frozenset[int], frozenset[int]]:
        """The text's headings and the lines that repeat the title, for aboutness (the
        same for every rule)."""
        key = ("layout",)
        memo = self.analyzed.memo
        if key not in memo:
            text = self.analyzed.text
            memo[key] = (
                headings(text.text, text.sentences),
                title_lines(text.text, text.sentences, self.analyzed.article.title),
            )
        return memo[key]  # type: ignore[no-any-return]

    def phrase_sentences(self, phrase: str, name: Field) -> set[int]:
        key = ("phrase-sentences", phrase, name)
        memo = self.analyzed.memo
        if key not in memo:
            section = self.analyzed.section(name)
            memo[key] = {section.sentence_of[a] for a, _ in self.phrase_matches(phrase, name)}
        return memo[key]  # type: ignore[no-any-return]

    def context(self, name: str, where: Field) -> set[int]:
        """Sentences of ``where`` where the rule's term ``name`` is mentioned in a way that
        can vouch for an ambiguous name (see ``_vouches``; no NER or corroboration of its
        own, which would make two names vouch for each other)."""
        assert self.rule is not None
        term = self.rule.term(name)
        key = ("context", term, where)
        memo = self.analyzed.memo
        if key not in memo:
            memo[key] = self._context(name, where)
        return memo[key]  # type: ignore[no-any-return]

    def _context(self, name: str, where: Field) -> set[int]:
        assert self.rule is not None
        term = self.rule.term(name)
        section = self.analyzed.section(where)
        if isinstance(term, Actor):
            term_id = self.analyzed.term_ids.get(term)
            spans = self.analyzed.scan.spans(term_id) if term_id is not None else []
            senses = _Senses(term, self, spans)
            return {
                section.sentence_at(s)
                for f, s, e in spans
                if f == where and _vouches(senses, section, (s, e))
            }
        if isinstance(term, Keywords):
            # counted mentions: not inside the group's exclude or beside its not_near
            return {f.sentence for f in self.mentions(term)[0] if f.evidence.where == where}
        return set()


def _vouches(senses: _Senses, section: Section, span: tuple[int, int]) -> bool:
    """Whether a mention of ``senses.actor`` can corroborate another actor's ambiguous name:
    capitalised where the actor has types or the name is ambiguous ("iglesias" the churches
    is not a name), not ruled out by its exclude or not_near, and, for one of its ambiguous
    names, confirmed by its full name before it ("Chava Iglesias y Hugo Sánchez" confirms
    neither politician; after "Nicolás Maduro" in the title, "Maduro" vouches for "Saab")."""
    actor, (start, end) = senses.actor, span
    surface = section.text[start:end]
    ambiguous = section.folded[start:end] in senses.ambiguous
    if (actor.types or ambiguous) and not (section.caseless or capitalised(surface)):
        return False
    if ambiguous and not _after_full_name(senses, section, start):
        return False
    return not _excluded(actor, senses.article, section, start, end, surface=surface)


def _after_full_name(senses: _Senses, section: Section, start: int) -> bool:
    """Whether the actor's unambiguous name comes before ``start``, or either is in the
    title (a headline's surname and the text's full name confirm each other)."""
    full = senses.full_name_at
    if full is None:
        return False
    return full[0] == "title" or section.name == "title" or full[1] < start


def _phrase_at(keys: list[tuple[str, str]], forms: tuple[frozenset[str], ...], i: int) -> bool:
    if i + len(forms) > len(keys):
        return False
    return all(not forms[j].isdisjoint(keys[i + j]) for j in range(len(forms)))


def _find(term: Term, article: _Article) -> tuple[list[_Found], list[str]]:
    if isinstance(term, Actor):
        return _actor_mentions(term, article)
    if isinstance(term, Keywords):
        return _keyword_mentions(term, article)
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
    if len(spans) > _MAX_MENTIONS:
        notes.append(f"only the first {_MAX_MENTIONS:,} of {len(spans):,} mentions were read")
    senses = _Senses(actor, article, spans)
    unread = []
    # the text before the title: a headline is poor context for NER
    for name, start, end in sorted(spans[:_MAX_MENTIONS], key=lambda s: s[0] == "title"):
        section = analyzed.section(name)
        problem, label = _actor_problem(actor, article, section, start, end, senses=senses)
        mention = _found(article, section, actor, actor.name, (start, end), label=label)
        if problem == _UNREAD:
            unread.append(mention)
        elif not problem:
            found.append(mention)
        elif label is not None:
            conflicts.append((mention, problem))
        else:
            notes.append(f"not counted: {problem}")
    found = _without_vetoed(found, senses, notes)
    notes += _vouched_notes(found, senses)
    majority = len(found) >= len(conflicts)
    found += [mention for mention, _ in conflicts if majority and found]
    types = "/".join(actor.types)
    prefix = f"counted anyway (most mentions are {types}):" if majority else "not counted:"
    notes += [f"{prefix} {problem}" for _, problem in conflicts]
    if unread and majority:
        found += unread  # one sense per article: the mentions NER read speak for the rest
    elif unread:
        notes.append(f"not counted: {len(unread)} more, as the mentions NER read are not {types}")
    return sorted(found, key=_order), notes


def _vouched_notes(found: list[_Found], senses: _Senses) -> list[str]:
    """What corroborated each counted ambiguous mention that a nearby term vouched for."""
    near = _within_window(senses)
    return [
        f"counted: {m.evidence.matched!r} in the {m.where} (ambiguous), {by} {near}"
        for m in found
        if (by := senses.nearby_only.get((m.where, m.evidence.start), ("", ""))[1])
    ]


def _without_vetoed(found: list[_Found], senses: _Senses, notes: list[str]) -> list[_Found]:
    """``found`` without the ambiguous names that only a nearby term corroborated, when NER
    read the same name elsewhere as another type at least as often as a nearby term vouched
    for it, and more often than as the actor's: "Chad" in "Chad Smith talks drums" (PERSON)
    is not the country in the next sentence, whatever "Niger" there says; two mentions of
    Chad beside "Sudan" stay the country when one "Chad Miller" further on is a PERSON."""
    if not senses.read_as_other:
        return found
    vouched = Counter(name for name, _ in senses.nearby_only.values())
    vetoed = {
        name
        for name, (times, _) in senses.read_as_other.items()
        if times > senses.read_as_actor[name] and times >= vouched[name]
    }
    kept = []
    for mention in found:
        name, _ = senses.nearby_only.get((mention.where, mention.evidence.start), ("", ""))
        if name in vetoed:
            label = senses.read_as_other[name][1]
            notes.append(f"not counted: {mention.evidence.matched!r}, read as {label} elsewhere")
        else:
            kept.append(mention)
    return kept


@dataclass
class _Senses:
    """What disambiguates an actor's mentions in one article."""

    actor: Actor
    article: _Article
    spans: list[tuple[Field, int, int]]
    ner_asked: set[tuple[Field, int]] = field(default_factory=set)
    # ambiguous names (folded): how often NER read them as one of the actor's types, and how
    # often as another (with the last such label)
    read_as_actor: Counter[str] = field(default_factory=Counter)
    read_as_other: dict[str, tuple[int, str]] = field(default_factory=dict)
    # (field, start) -> (folded name, the term that vouched), of the ambiguous mentions only
    # a nearby term corroborated
    nearby_only: dict[tuple[Field, int], tuple[str, str]] = field(default_factory=dict)

    @functools.cached_property
    def ambiguous(self) -> frozenset[str]:
        return frozenset(fold(a) for a in self.actor.ambiguous)

    @functools.cached_property
    def full_name_at(self) -> tuple[Field, int] | None:
        """Where an unambiguous name of the actor first occurs (the title comes first), not
        counting one its ``exclude`` or ``not_near`` rules out ("USS Gerald Ford")."""
        analyzed = self.article.analyzed
        for where, start, end in self.spans:
            if analyzed.scan.folded[where][start:end] in self.ambiguous:
                continue
            section = analyzed.section(where)
            surface = section.text[start:end]
            if not _excluded(self.actor, self.article, section, start, end, surface=surface):
                return where, start
        return None

    @functools.cached_property
    def other_named(self) -> str:
        """The first of the actor's ``exclude`` phrases the article holds ("George Maduro"),
        or "": another thing or person with the actor's name."""
        for phrase in self.actor.exclude:
            if any(self.article.phrase_matches(phrase, where) for where in FIELDS):
                return phrase
        return ""

    @functools.cached_property
    def full_name_seen(self) -> bool:
        """Whether a name of two or more capitalised words ("Gerald Ford", not "Ford") of
        the actor occurs: it tells the actor from a same-named thing without NER."""
        for where, start, end in self.spans:
            words = self.article.analyzed.section(where).text[start:end].split()
            if len(words) >= 2 and all(w[:1].isupper() for w in words):
                return True
        return False

    @functools.cached_property
    def corroborators(self) -> tuple[str, ...]:
        rule = self.article.rule
        if rule is None:
            return ()
        if self.actor.corroborate:
            return self.actor.corroborate
        return tuple(a.name for a in rule.actors if a.name != self.actor.name)

    def context_near(self, where: Field, sentence: int) -> str:
        """A corroborating term within the rule's window of ``sentence`` ("" if none)."""
        window = self.article.rule.window if self.article.rule else 0
        for name in self.corroborators:
            near = self.article.context(name, where)
            if any(sentence + d in near for d in range(-window, window + 1)):
                return name
        return ""

    def context_anywhere(self) -> bool:
        return any(self.article.context(n, f) for n in self.corroborators for f in FIELDS)

    def ner(self, section: Section, sentence: int) -> bool:
        """Whether NER saw ``sentence``; when collecting, asks for it (a few per actor)."""
        analyzed = self.article.analyzed
        if not analyzed.statistical or sentence in section.ner_sentences:
            return True
        key = (section.name, sentence)
        if self.article.collect and (key in self.ner_asked or len(self.ner_asked) < _NER_PER_ACTOR):
            self.ner_asked.add(key)
            self.article.requests.setdefault(section.name, set()).add(sentence)
        return False


def _actor_problem(
    actor: Actor, article: _Article, section: Section, start: int, end: int, *, senses: _Senses
) -> tuple[str, str | None]:
    """Why a name's occurrence is not the actor ("" if it is), and its entity label."""
    surface = section.text[start:end]
    excluded = _excluded(actor, article, section, start, end, surface=surface)
    if excluded:
        return excluded, None
    if section.folded[start:end] in senses.ambiguous:
        return _ambiguity(actor, section, start, end, senses=senses)
    sentence = section.sentence_at(start)
    if actor.types and not (section.caseless or capitalised(surface)):
        return f"{surface!r} is lowercase, not a name", None
    unread = senses.article.analyzed.statistical and sentence not in section.ner_sentences
    if actor.types and unread and senses.full_name_seen:
        return "", actor.types[0]  # "Gerald Ford" in the article: the person, without NER
    if actor.types and not senses.ner(section, sentence):
        return ("", None) if senses.article.optimistic else (_UNREAD, None)
    return _type_problem(actor, section, start, end, surface)


def _excluded(
    actor: Actor, article: _Article, section: Section, start: int, end: int, *, surface: str
) -> str:
    if not (actor.exclude or actor.not_near):
        return ""
    first, last = section.token_at(start), section.token_at(end - 1)
    for phrase in actor.exclude:
        matches = article.phrase_matches(phrase, section.name)
        at = bisect.bisect_right(matches, (first, len(section.starts))) - 1
        if any(a <= first and last <= b for a, b in matches[max(0, at - 8) : at + 1]):
            return f"{surface!r} is part of {phrase!r} (exclude)"
    near = _near_phrase(actor.not_near, article, section, section.sentence_at(start))
    return "" if near is None else f"{surface!r} is in a sentence with {near!r} (not_near)"


def _near_phrase(
    phrases: tuple[str, ...], article: _Article, section: Section, sentence: int
) -> str | None:
    """The first of a term's ``not_near`` ``phrases`` in the ``sentence``, or None."""
    return next((p for p in phrases if sentence in article.phrase_sentences(p, section.name)), None)


def _ambiguity(
    actor: Actor, section: Section, start: int, end: int, *, senses: _Senses
) -> tuple[str, str | None]:
    """An ambiguous name is the actor only when corroborated: by the full name before it,
    by a corroborating term nearby, or by its entity type (see ``_by_type``)."""
    surface = section.text[start:end]
    if not (section.caseless or capitalised(surface)):
        return f"{surface!r} is lowercase: the word, not the name", None
    sentence = section.sentence_at(start)
    # A headline names a person by surname and the text introduces the full name: for a
    # mention in the title, the full name anywhere in the article corroborates it.
    if _after_full_name(senses, section, start):
        return "", None
    if senses.full_name_at is None and senses.other_named:
        # One sense per article: a text about the Dutch war hero George Maduro calls him
        # "Maduro" further on, beside "military" and "invasion".
        return (
            f"{surface!r} is ambiguous and the article names {senses.other_named!r} (exclude),"
            f" never {actor.name!r} by an unambiguous name"
        ), None
    vouching = senses.context_near(section.name, sentence)
    if vouching:
        senses.nearby_only[section.name, start] = (section.folded[start:end], vouching)
        return "", None
    return _by_type(actor, section, start, end, senses=senses)


def _by_type(
    actor: Actor, section: Section, start: int, end: int, *, senses: _Senses
) -> tuple[str, str | None]:
    """An ambiguous name no nearby term corroborates: its entity type decides, when a
    corroborating term is elsewhere in the article or the name stands alone (``_joined_to``)."""
    joined: str | None = ""
    if actor.types:
        joined = None if senses.context_anywhere() else _joined_to(senses, section, start)
        if joined is None:
            return _ner_sense(actor, section, start, end, senses=senses)
    uncorroborated = _uncorroborated(section.text[start:end], senses, section.name)
    if joined:
        return f"{uncorroborated}; after {joined!r} it is part of another name", None
    return uncorroborated, None


def _joined_to(senses: _Senses, section: Section, start: int) -> str | None:
    """None when an ambiguous name no term corroborates may still be the actor by its type
    alone; else the word joining it to another name ("" when there is none to show).

    Only where no statistical NER reads the language (rule-based entities), and only a name
    in mid-sentence that stands as its own noun phrase ("la detención de Maduro", "Trump y
    Maduro", "dijo Maduro"): not one after an article or a possessive, a capitalised word or
    a number, or after an article and a noun, which make it part of another name or a
    modifier ("un Maduro", "Casa Maduro", "Padrón 1964 Maduro", "la colección Maduro"). Where
    NER runs, its type needs a corroborating term somewhere in the article: the small English
    model reads "the Maduro handbag" as a person."""
    analyzed = senses.article.analyzed
    if analyzed.statistical:
        return ""
    begin = section.sentences[section.sentence_at(start)][0] if section.sentences else 0
    # the two words before: a bounded look back, as a sentence can be a whole page
    words = _WORDS_BEFORE.search(section.folded, max(begin, start - _LOOK_BACK), start)
    if words is None:
        return ""  # the sentence's first word: its capital says nothing
    if words["gap"].strip():
        return None  # after punctuation: "Lula, Petro y Maduro", "«Maduro»"
    determiners = DETERMINERS.get(analyzed.language, frozenset())
    previous = section.text[words.start("last") : words.end("last")]
    capital = not section.caseless and previous[:1].isupper()
    if words["last"] in determiners or previous.isdigit() or capital:
        return previous
    if words["before"] in determiners and not words["sep"].strip():
        return section.text[words.start("before") : words.end("last")]
    return None


def _ner_sense(
    actor: Actor, section: Section, start: int, end: int, *, senses: _Senses
) -> tuple[str, str | None]:
    """An ambiguous name NER decides; its reading is kept for the name's other mentions."""
    surface, name = section.text[start:end], section.folded[start:end]
    if not senses.ner(section, section.sentence_at(start)):
        if senses.article.optimistic:
            return "", None
        return (
            f"{surface!r} in the {section.name} is ambiguous and NER did not read its sentence"
            " (NER reads one sentence per actor, nlp.ner_chars characters at most)"
        ), None
    problem, label = _type_problem(actor, section, start, end, surface)
    if label is None:
        return problem or _uncorroborated(surface, senses, section.name), None
    if problem:
        senses.read_as_other[name] = (senses.read_as_other.get(name, (0, ""))[0] + 1, label)
        return problem, None
    senses.read_as_actor[name] += 1
    return "", label


def _uncorroborated(surface: str, senses: _Senses, where: Field) -> str:
    full = "no full name in the article" if where == "title" else "no full name before it"
    if not senses.corroborators:  # a rule with one actor and no `corroborate`
        return (
            f"{surface!r} in the {where} is ambiguous and nothing corroborates it ({full}; "
            "the rule names no other term: list some under `corroborate`)"
        )
    near = _within_window(senses)
    names = ", ".join(senses.corroborators)
    return (
        f"{surface!r} in the {where} is ambiguous and nothing corroborates it ({full}, "
        f"no {names} {near})"
    )


def _within_window(senses: _Senses) -> str:
    """How near a corroborating term must be, in words: "within 1 sentence"."""
    window = senses.article.rule.window if senses.article.rule else 0
    return f"within {window} sentence{'s' * (window != 1)}" if window else "in its sentence"


def _type_problem(
    actor: Actor, section: Section, start: int, end: int, surface: str
) -> tuple[str, str | None]:
    """An actor with types needs an entity of one of them; where NER saw no entity at all
    (it misses many in headlines), a capitalised name is given the benefit of the doubt."""
    overlapping = section.entities_at(start, end)
    if not actor.types:
        return "", overlapping[0].label if overlapping else None
    if not (section.caseless or capitalised(surface)):
        return f"{surface!r} is lowercase, not a name", None
    good = next((e for e in overlapping if e.types & set(actor.types)), None)
    if good is not None:
        return "", good.label
    if not overlapping:
        return "", None
    labels = ", ".join(sorted({e.label for e in overlapping}))
    return f"{surface!r} is {labels}, not {'/'.join(actor.types)}", overlapping[0].label


def _keyword_mentions(group: Keywords, article: _Article) -> tuple[list[_Found], list[str]]:
    """The group's mentions (the longest phrase where two overlap), and notes on those
    inside one of its ``exclude`` phrases ("acuerdo" in "de acuerdo con")."""
    analyzed = article.analyzed
    found: list[_Found] = []
    notes: list[str] = []
    forms = analyzed.phrases
    for name in FIELDS:
        section = analyzed.section(name)
        index = article.index(name)
        # most of a group's phrases are not in an article: their first word says so at once
        spans = [
            (a, b, p)
            for p in group.for_language(analyzed.language)
            if (first := forms.get(p)) and not index.keys().isdisjoint(first[0])
            for a, b in article.phrase_matches(p, name)
        ]
        excluded = [(a, b, p) for p in group.exclude for a, b in article.phrase_matches(p, name)]
        taken: set[int] = set()
        for a, b, phrase in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
            if not taken.isdisjoint(range(a, b + 1)) or not _after_echo(analyzed, name, section, a):
                continue
            taken.update(range(a, b + 1))
            start, end = section.starts[a], section.ends[b]
            problem = _keyword_problem(group, article, section, excluded, (a, b))
            if not problem:
                found.append(_found(article, section, group, phrase, (start, end)))
            else:
                notes.append(f"not counted: {section.text[start:end]!r} {problem}")
    return sorted(found, key=_order), notes


def _keyword_problem(
    group: Keywords,
    article: _Article,
    section: Section,
    excluded: list[tuple[int, int, str]],
    tokens: tuple[int, int],
) -> str:
    """Why the mention over ``tokens`` does not count ("" if it does): it is inside one of
    the group's ``exclude`` phrases, or its sentence has one of its ``not_near`` phrases."""
    a, b = tokens
    inside = next((p for ea, eb, p in excluded if ea <= a and b <= eb), None)
    if inside is not None:
        return f"is part of {inside!r} (exclude)"
    phrase = _near_phrase(group.not_near, article, section, section.sentence_of[a])
    return "" if phrase is None else f"is in a sentence with {phrase!r} (not_near)"


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
                    found.append(_found(article, section, group, group.name, hit.span()))
    return found


@functools.cache
def _regex(pattern: str) -> Any:
    return compile_regex(pattern)


def _found(
    article: _Article,
    section: Section,
    term: Term,
    shown: str,
    span: tuple[int, int],
    *,
    label: str | None = None,
) -> _Found:
    """The mention, made once per article: an actor's mentions are found again by each
    pass (NER requests, the optimistic bound, the verdict) and for each rule naming it."""
    key = ("found", section.name, _KINDS[type(term)], term.name, term.weight, shown, span, label)
    memo = article.analyzed.memo
    found = memo.get(key)
    if found is None:
        found = memo[key] = _make_found(section, term, shown, span, label)
    return found


def _make_found(
    section: Section, term: Term, shown: str, span: tuple[int, int], label: str | None
) -> _Found:
    start, end = span
    token = section.token_at(start) if section.starts else 0
    sentence = section.sentence_of[token] if section.sentence_of else 0
    matched = section.text[start:end]
    text = _excerpt(section.sentence_text(sentence), matched)
    kind = _KINDS[type(term)]
    evidence = Evidence(
        kind, shown, matched, section.name, text, start, end, label, term.weight, term.name
    )
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
    render: Callable[[], str]  # the node with ✓/✗: only reasons need it, so on demand

    @property
    def text(self) -> str:
        return self.render()


def evaluate(
    rule: Rule,
    analyzed: AnalyzedArticle,
    now: datetime | None = None,
    *,
    optimistic: bool = False,
    reasons: bool = True,
) -> Verdict:
    """The verdict of ``rule`` on ``analyzed``, with evidence and reasons (pure).

    ``optimistic`` counts every mention only NER could rule out (NER has not run yet): a
    rule that does not match so cannot match at all, and needs no NER (without ``reasons``,
    such a bound has no reasons or evidence either: only ``matched`` is read). Without ``reasons``
    (matching, where only alerts are kept), a verdict that does not match has no reasons,
    evidence or score: they are not worked out.
    """
    excluded = filter_reasons(rule, analyzed.article, analyzed.language, now)
    filtered = tuple(excluded) if reasons else tuple(itertools.islice(excluded, 1))
    if filtered:
        return Verdict(rule.name, False, 0.0, filtered, (), rule.threshold)
    article = _Article(analyzed, rule, optimistic=optimistic)
    logic = _node(rule.logic, rule, article)
    if not (logic.ok or reasons):
        return Verdict(rule.name, False, 0.0, (), (), rule.threshold)
    positive = [f for t in rule.positive_terms for f in _in_scope(rule, article, t.name)]
    score = sum(_weight(rule, f) for f in positive)
    about = _aboutness(rule, article) if rule.about is not None else None
    about_ok = about is None or about.ok
    matched = (
        logic.ok and about_ok and score >= rule.threshold and len(positive) >= rule.min_mentions
    )
    if not (matched or reasons):
        return Verdict(rule.name, False, 0.0, (), (), rule.threshold)
    if optimistic and not reasons:  # a bound: only whether it matches is read
        return Verdict(rule.name, matched, score, (), (), rule.threshold)
    lines = [*_analysis_lines(analyzed), *_term_lines(rule, article), f"match: {logic.text}"]
    if about is not None:
        lines += about_lines(about, _topic_name(rule))
    lines += _verdict_lines(rule, logic.ok, score, len(positive), about_ok)
    evidence = tuple(f.evidence for f in sorted(positive, key=_order))
    return Verdict(rule.name, matched, score, tuple(lines), evidence, rule.threshold)


def ner_wanted(rule: Rule, analyzed: AnalyzedArticle) -> dict[Field, set[int]]:
    """The sentences whose entities would decide ``rule``'s actors (pure)."""
    article = _Article(analyzed, rule, collect=True)
    for actor in rule.actors:
        if actor.types:
            article.mentions(actor)
    return article.requests


def _topic(rule: Rule) -> tuple[tuple[str, ...], ...]:
    assert rule.about is not None
    if rule.about.topic:
        return rule.about.topic
    return (tuple(a.name for a in rule.actors if a.weight > 0) or (rule.terms[0].name,),)


def _topic_name(rule: Rule) -> str:
    return " + ".join("|".join(op) for op in _topic(rule))


def _aboutness(rule: Rule, article: _Article) -> Aboutness:
    assert rule.about is not None
    parts = []
    for operand in _topic(rule):
        found = [f for n in operand for f in _in_scope(rule, article, n)]
        text = tuple(sorted(f.sentence for f in found if f.where == "text"))
        parts.append(Part(any(f.where == "title" for f in found), text))
    section = article.analyzed.text
    heads, preamble = article.layout()
    return aboutness(
        rule.about,
        parts,
        window=rule.window,
        sentences=len(section.sentences),
        words=section.words,
        headings=heads,
        preamble=preamble,
    )


def _analysis_lines(analyzed: AnalyzedArticle) -> list[str]:
    text = analyzed.text
    ner = analyzed.ner_count()
    how = "NER" if analyzed.statistical else "rule-based entities (no model for the language)"
    lines = [
        f"analysis: {text.tokenized_sentences()} of {len(text.sentences)} sentences read "
        f"(windows around mentions), {ner} through {how}"
        if analyzed.statistical
        else f"analysis: {text.tokenized_sentences()} of {len(text.sentences)} sentences read "
        f"(windows around mentions), {how}"
    ]
    return lines + list(analyzed.notes)


def _order(found: _Found) -> tuple[int, int]:
    return FIELDS.index(found.where), found.evidence.start


def _weight(rule: Rule, found: _Found) -> float:
    weight = rule.term(found.term).weight
    return weight * (rule.title_weight if found.where == "title" else 1.0)


def _in_scope(
    rule: Rule, article: _Article, name: str, scope: tuple[Field, ...] = FIELDS
) -> list[_Found]:
    """The term's mentions in ``scope`` and the rule's scope (a rule asks several times)."""
    key = (name, scope)
    if key not in article.scoped:
        fields = set(scope) & set(rule.scope)
        found = article.mentions(rule.term(name))[0]
        article.scoped[key] = found if len(fields) == 2 else [f for f in found if f.where in fields]
    return article.scoped[key]


def _term_lines(rule: Rule, article: _Article) -> Iterator[str]:
    for term in rule.terms:
        found, dropped = article.mentions(term)
        kind = _KINDS[type(term)]
        titled = sum(f.where == "title" for f in found)
        counts = f"{len(found)} mention{'s' * (len(found) != 1)}" + (
            f" ({titled} in the title)" if titled else ""
        )
        forms = sorted({f.evidence.matched for f in found})
        shown = f": {', '.join(map(repr, forms[:5]))}" if forms else ""
        if len(forms) > 5:
            shown += f" and {len(forms) - 5} more form{'s' * (len(forms) > 6)}"
        yield f"{kind} {term.name}: {counts}{shown}"
        notes = Counter(dropped)  # the same reason for many mentions is said once
        for note, times in list(notes.items())[:5]:
            yield f"  {note}" + (f" ({times} times)" if times > 1 else "")
        if len(notes) > 5:
            yield f"  and {len(notes) - 5} more notes ({sum(list(notes.values())[5:])} mentions)"


def _verdict_lines(
    rule: Rule, logic: bool, score: float, mentions: int, about: bool = True
) -> list[str]:
    plural = "s" * (mentions != 1)
    lines = [
        f"score {score:g} (threshold {rule.threshold:g}), "
        f"{mentions} mention{plural} (min_mentions {rule.min_mentions})"
    ]
    problems = []
    if not logic:
        problems.append("the match conditions are not met")
    if not about:
        problems.append("the article is not about the topic (see about)")
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
    if isinstance(node, AllOf):
        ok, name = all(c.ok for c in children), "all"
    elif isinstance(node, AnyOf):
        ok, name = any(c.ok for c in children), "any"
    else:
        assert isinstance(node, NoneOf)
        ok, name = not any(c.ok for c in children), "none"
    return _Outcome(ok, lambda: f"{_mark(ok)} {name}({', '.join(c.text for c in children)})")


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _mentions_node(node: Mentions, rule: Rule, article: _Article) -> _Outcome:
    count = len(_in_scope(rule, article, node.name, node.scope))
    ok = count >= node.min

    def render() -> str:
        details = []
        if node.min > 1:
            details.append(f"{count}/{node.min}")
        if set(node.scope) != set(FIELDS):
            details.append(f"in {'+'.join(node.scope)}")
        suffix = f" [{', '.join(details)}]" if details else ""
        return f"{_mark(ok)} {node.name}{suffix}"

    return _Outcome(ok, render)


def _near_node(node: Near, rule: Rule, article: _Article) -> _Outcome:
    groups = [[f for n in op for f in _in_scope(rule, article, n)] for op in node.operands]
    indexes = [_NearIndex(g, node.within) for g in groups[1:]]
    hits = [a for a in groups[0] if all(i.close(a) for i in indexes)]
    ok = bool(hits)

    def render() -> str:
        names = ", ".join("|".join(op) for op in node.operands)
        where = "one sentence" if node.within is None else f"{node.within} words"
        text = f"{_mark(ok)} near({names}) within {where}"
        if hits:
            text += f" ×{len(hits)}: {hits[0].evidence.sentence!r}"
        else:
            text += f" ({_closest(node, groups)})"
        return text

    return _Outcome(ok, render)


def _closest(node: Near, groups: list[list[_Found]]) -> str:
    """For explain, why a ``near`` failed: a term without mentions, or how close the other
    terms came to the one mention of the first that has them all nearest (in words or
    sentences, as ``within`` counts)."""
    for op, group in zip(node.operands, groups, strict=True):
        if not group:
            return f"no mention of {'|'.join(op)}"
    best: list[int] | None = None
    for a in groups[0]:
        found = [_gap(a, group, node.within) for group in groups[1:]]
        gaps = [g for g in found if g is not None]
        if len(gaps) == len(found) and (best is None or max(gaps) < max(best)):
            best = gaps
    if best is None:
        return "closest: never all in the same field"
    unit = "sentence" if node.within is None else "word"
    return "closest: " + ", ".join(
        f"{'|'.join(op)} {gap} {unit}{'' if gap == 1 else 's'} away"
        for op, gap in zip(node.operands[1:], best, strict=True)
    )


def _gap(a: _Found, group: list[_Found], within: int | None) -> int | None:
    """The distance from ``a`` to the nearest of ``group`` in its field (None if none)."""
    return min(
        (
            abs(a.sentence - b.sentence) if within is None else abs(a.word - b.word)
            for b in group
            if b.where == a.where and b.evidence != a.evidence
        ),
        default=None,
    )


class _NearIndex:
    """Mentions by sentence, or by word position when ``within`` counts words, so ``near``
    is linear in the mentions (only the one ``within`` needs is built: it is built once
    per near node and rule, for every candidate rule)."""

    def __init__(self, group: list[_Found], within: int | None) -> None:
        self.within = within
        self.by_sentence: dict[tuple[Field, int], list[_Found]] = {}
        by_field: dict[Field, list[_Found]] = {}
        for f in group:
            if within is None:
                self.by_sentence.setdefault((f.where, f.sentence), []).append(f)
            else:
                by_field.setdefault(f.where, []).append(f)
        self.by_word = {k: sorted(v, key=lambda f: f.word) for k, v in by_field.items()}
        self.words = {k: [f.word for f in v] for k, v in self.by_word.items()}

    def close(self, a: _Found) -> bool:
        within = self.within
        if within is None:
            return any(_close(a, b, None) for b in self.by_sentence.get((a.where, a.sentence), ()))
        words, found = self.words.get(a.where, []), self.by_word.get(a.where, [])
        lo = bisect.bisect_left(words, a.word - within)
        hi = bisect.bisect_right(words, a.word + within)
        return any(_close(a, found[i], within) for i in range(lo, hi))


def _close(a: _Found, b: _Found, within: int | None) -> bool:
    if a.where != b.where or a.evidence == b.evidence:
        return False
    if within is None:
        return a.sentence == b.sentence
    return abs(a.word - b.word) <= within
