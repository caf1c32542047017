"""The cheap prefilter: one Aho-Corasick pass over folded text finds which rules could match.

Every rule's actor names and aliases, and a stem of every keyword phrase, go into ONE
automaton (plus one google-re2 set for all regexes), so its cost per article does not grow
with the number of rules. The scan also bounds each rule's score and mention count from
above; a rule whose bound cannot reach its threshold is not a candidate, and an article
without candidates never reaches the statistical NLP pipeline.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ahocorasick
import re2

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
from watcher.types import Field

_WORD_RE = re.compile(r"\w+")
# A regex that matches counts as this many mentions in the bound: it could be many.
_UNKNOWN_COUNT = 1_000_000


def _fold_char(char: str) -> str:
    lower = char.lower()
    if len(lower) != 1:
        lower = char
    if lower.isspace():
        return " "
    decomposed = unicodedata.normalize("NFKD", lower)
    base = next((c for c in decomposed if not unicodedata.combining(c)), lower).lower()
    return base if len(base) == 1 else lower


_FOLD_TABLE = {cp: _fold_char(chr(cp)) for cp in range(0x3001) if _fold_char(chr(cp)) != chr(cp)}


# The ASCII part of the table as bytes: bytes.translate is ~10x faster than str.translate,
# which looks every character up in a dict once the text holds one non-ASCII character.
_ASCII_FOLD = bytes(ord(_FOLD_TABLE.get(b, chr(b))) for b in range(128)) + bytes(range(128, 256))
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")


def fold(text: str) -> str:
    """``text`` lowercased, without accents, with every space as " ": SAME LENGTH, so offsets
    into the folded text are offsets into the original."""
    if text.isascii():
        return _fold_ascii(text)
    parts = _NON_ASCII_RUN.split(text)  # ASCII runs at even indexes, the others at odd
    parts[::2] = [_fold_ascii(part) for part in parts[::2]]
    parts[1::2] = [part.translate(_FOLD_TABLE) for part in parts[1::2]]
    return "".join(parts)


def _fold_ascii(text: str) -> str:
    return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")


# Letters from which an acronym may also be written with one capital (see _capitals).
_WORDLIKE = 4


def is_acronym(alias: str) -> bool:
    """Aliases written in capitals (US, EEUU, U.S.) match only in capitals (or, from four
    letters on, with one capital: "Pdvsa")."""
    letters = [c for c in alias if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def stem(word: str) -> str:
    """A prefix shared by the folded ``word``'s regular inflections (en/es), for the scan.

    strikes -> strik (strike, striking), conversaciones -> conversacion, negociar -> negoci.
    Irregular forms (struck) are not covered; list them as keywords if they matter.
    """
    if len(word) > 5 and word.endswith("es"):
        word = word[:-2]
    elif len(word) > 4 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 6 and word.endswith(("ar", "er", "ir")):
        return word[:-2]
    if len(word) > 4 and word[-1] in "aeiouy":
        return word[:-1]
    return word


def phrase_key(phrase: str) -> str:
    """The scan pattern for a keyword phrase: the stem of its longest word."""
    words = _WORD_RE.findall(fold(phrase)) or [fold(phrase).strip()]
    return stem(max(words, key=len))


def title_echo(title: str, text: str) -> int:
    """Where a copy of the title at the start of the text ends (0 if there is none).

    Feed summaries and some sources repeat the title as the first line (or run it into the
    text after two spaces); mentions there are counted once, in the title.
    """
    head = title.strip()
    offset = len(text) - len(text.lstrip())
    end = offset + len(head)
    rest = text[end : end + 2]
    if head and text.startswith(head, offset) and (rest[:1] in ("", "\n", "\r") or rest == "  "):
        return end
    return 0


@dataclass
class Scan:
    """What one pass over an article found; offsets are into the (folded) fields."""

    language: str
    folded: dict[Field, str]
    echo_end: int
    prefilter: Prefilter = field(repr=False)
    # pattern id -> (field, start, end) of each place it matched
    hits: dict[int, list[tuple[Field, int, int]]] = field(default_factory=dict)
    # regex term id -> the fields where one of its regexes matched
    regex_fields: dict[int, set[Field]] = field(default_factory=dict)
    # indices into Prefilter.rules of the rules that could match
    candidates: tuple[int, ...] = ()
    _spans: dict[int, list[tuple[Field, int, int]]] = field(default_factory=dict, repr=False)
    _counts: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    def field_counts(self, term_id: int) -> tuple[int, int]:
        """How often the term may be mentioned in the title and in the text: exact for
        actors, an upper bound for keywords, and "many" for a regex that matched. Worked out
        once per article: rules share terms, and every candidate rule asks."""
        found = self._counts.get(term_id)
        if found is None:
            regex = self.regex_fields.get(term_id)
            if regex is not None:
                found = (_UNKNOWN_COUNT * ("title" in regex), _UNKNOWN_COUNT * ("text" in regex))
            else:
                title = text = 0
                for i in self.prefilter.patterns_of(term_id, self.language):
                    for hit in self.hits.get(i, ()):
                        if hit[0] == "title":
                            title += 1
                        else:
                            text += 1
                found = (title, text)
            self._counts[term_id] = found
        return found

    def spans(self, term_id: int) -> list[tuple[Field, int, int]]:
        """Where an actor's names occur as whole words, longest first where they overlap."""
        if term_id not in self._spans:
            ids = self.prefilter.patterns_of(term_id, self.language)
            found = [hit for i in ids for hit in self.hits.get(i, ())]
            self._spans[term_id] = _dedupe(found)
        return self._spans[term_id]

    def actors(self) -> list[int]:
        """The term ids of the actors whose names occur."""
        found = {t for i in self.hits for t in self.prefilter.actors_of(i)}
        return sorted(found)


# How a pattern must sit in the text: at a word start (a keyword stem, any ending), as a
# whole word (an actor's name), or as a whole word written in capitals (an acronym; from
# four letters on, also with one capital: see _capitals).
_STEM, _WORD, _CAPITALS = 0, 1, 2


class Prefilter:
    """The automaton over every rule's names and keyword stems, and the regex set.

    Each rule is indexed under the terms it cannot match without (its trigger terms: the
    actor of ``all: [actor, keywords]``, every branch of ``any``), so a keyword that 1,000
    rules share but none needs on its own costs nothing extra per article.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules.rules
        self.terms: list[Term] = []
        self.term_ids: dict[Term, int] = {}
        self._patterns: dict[tuple[str, int], int] = {}
        self._term_patterns: list[list[tuple[int, str]]] = []  # term -> (pattern, language)
        self._pattern_actors: list[list[int]] = []
        self._pattern_rules: list[set[int]] = []
        self._regex_rules: dict[int, set[int]] = {}
        self._always: set[int] = set()
        self._rule_patterns: dict[str, frozenset[int]] = {}
        self._rule_terms: list[dict[str, int]] = []  # per rule: term name -> term id
        for index, rule in enumerate(self.rules):
            self._index(index, rule)
        self._automaton = self._build_automaton()
        self._regexes, self._regex_terms = _build_regex_set(self.terms)

    def term_id(self, term: Term) -> int:
        return self.term_ids[term]

    def patterns_of(self, term_id: int, language: str) -> list[int]:
        found = self._term_patterns[term_id]
        return [i for i, lang in found if not lang or not language or lang == language]

    def actors_of(self, pattern_id: int) -> list[int]:
        return self._pattern_actors[pattern_id]

    def rule_patterns(self, rules: Iterable[Rule]) -> frozenset[int]:
        """The patterns of every term of ``rules``: the hits their evaluation can read."""
        found: set[int] = set()
        for rule in rules:
            found |= self._rule_patterns[rule.name]
        return frozenset(found)

    def _index(self, index: int, rule: Rule) -> None:
        ids = {term.name: self._intern(term) for term in rule.terms}
        self._rule_terms.append(ids)
        self._rule_patterns[rule.name] = frozenset(
            pattern for term_id in ids.values() for pattern, _ in self._term_patterns[term_id]
        )
        triggers = _triggers(rule.logic, rule)
        if triggers is None:
            self._always.add(index)
            return
        for name in triggers:
            term_id = ids[name]
            if isinstance(rule.term(name), Pattern):
                self._regex_rules.setdefault(term_id, set()).add(index)
            for pattern, _ in self._term_patterns[term_id]:
                self._pattern_rules[pattern].add(index)

    def _intern(self, term: Term) -> int:
        if term not in self.term_ids:
            term_id = self.term_ids[term] = len(self.terms)
            self.terms.append(term)
            self._term_patterns.append([])
            for key, kind, language in _patterns(term):
                pattern = self._pattern(key, kind)
                self._term_patterns[term_id].append((pattern, language))
                if kind != _STEM:
                    self._pattern_actors[pattern].append(term_id)
        return self.term_ids[term]

    def _pattern(self, key: str, kind: int) -> int:
        if (key, kind) not in self._patterns:
            self._patterns[key, kind] = len(self._patterns)
            self._pattern_actors.append([])
            self._pattern_rules.append(set())
        return self._patterns[key, kind]

    def _build_automaton(self) -> Any:
        kinds: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for (key, kind), pattern in self._patterns.items():
            kinds[key].append((kind, pattern))
        automaton = ahocorasick.Automaton()
        for key, found in kinds.items():
            automaton.add_word(key, (len(key), tuple(found)))
        if len(automaton):
            automaton.make_automaton()
        return automaton

    def scan(self, title: str, text: str, language: str) -> Scan:
        """One pass over ``title`` and ``text``; ``scan.candidates`` are rules that could match."""
        folded: dict[Field, str] = {"title": fold(title), "text": fold(text)}
        scan = Scan(language, folded, title_echo(title, text), self)
        originals: dict[Field, str] = {"title": title, "text": text}
        for name in FIELDS:
            self._scan_field(scan, name, originals[name])
            self._scan_regexes(scan, name, originals[name])
        scan.candidates = self._candidates(scan)
        return scan

    def _scan_field(self, scan: Scan, name: Field, original: str) -> None:
        folded = scan.folded[name]
        skip = scan.echo_end if name == "text" else 0
        if not len(self._automaton):
            return
        hits, size = scan.hits, len(folded)
        # Per automaton hit, most of them inside a word with many rules: locals only.
        for last, (length, kinds) in self._automaton.iter(folded, skip):
            start, end = last + 1 - length, last + 1
            if start > 0 and folded[start - 1].isalnum() and folded[start].isalnum():
                continue
            whole = end == size or not (folded[end].isalnum() and folded[last].isalnum())
            for kind, pattern in kinds:
                if kind == _STEM or (whole and (kind == _WORD or _capitals(original, start, end))):
                    found = hits.get(pattern)
                    if found is None:
                        hits[pattern] = [(name, start, end)]
                    else:
                        found.append((name, start, end))

    def _scan_regexes(self, scan: Scan, name: Field, original: str) -> None:
        if self._regexes is None:
            return
        body = original if name == "title" else original[scan.echo_end :]
        for index in self._regexes.Match(body) or ():
            for term_id in self._regex_terms[index]:
                scan.regex_fields.setdefault(term_id, set()).add(name)

    def _candidates(self, scan: Scan) -> tuple[int, ...]:
        touched = set(self._always)
        for pattern in scan.hits:
            touched |= self._pattern_rules[pattern]
        for term_id in scan.regex_fields:
            touched |= self._regex_rules.get(term_id, set())
        return tuple(
            sorted(r for r in touched if _reachable(self.rules[r], self._rule_terms[r], scan))
        )


def _reachable(rule: Rule, ids: dict[str, int], scan: Scan) -> bool:
    """Whether the scan's counts of ``rule``'s terms (by name -> term id) can reach its
    threshold, minimum mentions and logic: an upper bound, so False rules the rule out."""
    title_in, text_in = "title" in rule.scope, "text" in rule.scope
    by_name: dict[str, tuple[int, int]] = {}  # term -> (title, text) counts in scope

    def count(name: str, scope: Iterable[Field] = FIELDS) -> int:
        counts = by_name.get(name)
        if counts is None:
            title, text = scan.field_counts(ids[name])
            counts = by_name[name] = (title if title_in else 0, text if text_in else 0)
        title, text = counts
        return (title if "title" in scope else 0) + (text if "text" in scope else 0)

    positive = rule.positive_terms
    mentions = sum(count(t.name) for t in positive)
    score = sum(
        t.weight * (rule.title_weight * count(t.name, ["title"]) + count(t.name, ["text"]))
        for t in positive
    )
    reached = mentions >= rule.min_mentions and score >= rule.threshold
    return reached and _possible(rule.logic, count)


def _patterns(term: Term) -> list[tuple[str, int, str]]:
    """(folded key, kind, language or "") of each pattern that finds the term."""
    if isinstance(term, Actor):
        return [(fold(n).strip(), _CAPITALS if is_acronym(n) else _WORD, "") for n in term.names]
    if isinstance(term, Keywords):
        return [(phrase_key(p), _STEM, lang) for lang, p in term.phrases if phrase_key(p)]
    return []


# Rough cost of indexing a rule under a term: actors are rarer in text than keywords.
_COST = {Actor: 1, Pattern: 2, Keywords: 3}


def _triggers(node: Node, rule: Rule) -> frozenset[str] | None:
    """Names of which at least one must be mentioned for ``node`` to hold (None: no such set)."""
    if isinstance(node, Mentions):
        return frozenset({node.name})
    if isinstance(node, NoneOf):
        return None
    if isinstance(node, Near):
        options: list[frozenset[str] | None] = [frozenset(op) for op in node.operands]
    else:
        options = [_triggers(child, rule) for child in node.children]
    if isinstance(node, AnyOf):
        return None if None in options else frozenset().union(*options)  # type: ignore[arg-type]
    usable = [o for o in options if o is not None]
    return min(usable, key=lambda o: sum(_COST[type(rule.term(n))] for n in o), default=None)


def _possible(node: Node, count: Any) -> bool:
    if isinstance(node, Mentions):
        return bool(count(node.name, node.scope) >= node.min)
    if isinstance(node, Near):
        return all(any(count(n) > 0 for n in operand) for operand in node.operands)
    if isinstance(node, AllOf):
        return all(_possible(c, count) for c in node.children)
    if isinstance(node, AnyOf):
        return any(_possible(c, count) for c in node.children)
    assert isinstance(node, NoneOf)
    return True  # only the full analysis can tell whether a 'none' term is really there


def _capitals(original: str, start: int, end: int) -> bool:
    """Whether an acronym's match is written as one: in capitals, or, from four letters on,
    with only its first letter capitalised, as Spanish and British style write an acronym
    read as a word ("Pdvsa", "Fanb", "Nato"); never in lower case ("fanb", a word cut short)."""
    word = original[start:end]
    if word.isupper():
        return True
    return word[:1].isupper() and word[1:].islower() and sum(c.isalpha() for c in word) >= _WORDLIKE


def _dedupe(spans: list[tuple[Field, int, int]]) -> list[tuple[Field, int, int]]:
    """The longest of overlapping spans ("Nicolás Maduro" over "Maduro"), in text order."""
    kept: list[tuple[Field, int, int]] = []
    for span in sorted(spans, key=lambda s: (FIELDS.index(s[0]), s[1], -s[2])):
        if not (kept and kept[-1][0] == span[0] and span[1] < kept[-1][2]):
            kept.append(span)
    return kept


def _build_regex_set(terms: list[Term]) -> tuple[Any, list[list[int]]]:
    patterns: dict[str, list[int]] = defaultdict(list)
    for term_id, term in enumerate(terms):
        if isinstance(term, Pattern):
            for pattern in term.patterns:
                patterns[pattern].append(term_id)
    if not patterns:
        return None, []
    options = re2.Options()
    options.log_errors = False
    regex_set = re2.Set.SearchSet(options)
    for pattern in patterns:
        regex_set.Add(pattern)
    regex_set.Compile()
    return regex_set, list(patterns.values())
