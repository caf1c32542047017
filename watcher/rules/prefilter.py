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

from watcher.rules.schema import (
    FIELDS,
    Actor,
    AllOf,
    AnyOf,
    Field,
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

_WORD_RE = re.compile(r"\w+")
# A regex that matches counts as this many mentions in the bound: it could be many.
_UNKNOWN_COUNT = 1_000_000
_ACTOR, _STEM = 0, 1


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


def fold(text: str) -> str:
    """``text`` lowercased, without accents, with every space as " ": SAME LENGTH, so offsets
    into the folded text are offsets into the original."""
    return text.translate(_FOLD_TABLE)


def is_acronym(alias: str) -> bool:
    """Aliases written in capitals (US, EEUU, U.S.) match only in capitals."""
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
    # term id -> [mentions in title, mentions in text] (an upper bound for keywords)
    counts: dict[int, list[int]] = field(default_factory=dict)
    # actor term id -> (field, start, end) of each whole-word, case-checked name or alias
    actor_spans: dict[int, list[tuple[Field, int, int]]] = field(default_factory=dict)
    # indices into Prefilter.rules of the rules that could match
    candidates: tuple[int, ...] = ()

    def count(self, term_id: int, scope: Iterable[Field]) -> int:
        counts = self.counts.get(term_id, (0, 0))
        return sum(counts[FIELDS.index(f)] for f in scope)


class Prefilter:
    """The automaton over every rule's names and keyword stems, and the regex set."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules.rules
        self.terms: list[Term] = []
        self.term_ids: dict[Term, int] = {}
        self.rules_of: list[set[int]] = []
        for index, rule in enumerate(self.rules):
            for term in rule.terms:
                self.rules_of[self._intern(term)].add(index)
        self._automaton = _build_automaton(self.terms)
        self._regexes, self._regex_terms = _build_regex_set(self.terms)

    def _intern(self, term: Term) -> int:
        if term not in self.term_ids:
            self.term_ids[term] = len(self.terms)
            self.terms.append(term)
            self.rules_of.append(set())
        return self.term_ids[term]

    def term_id(self, term: Term) -> int:
        return self.term_ids[term]

    def scan(self, title: str, text: str, language: str) -> Scan:
        """One pass over ``title`` and ``text``; ``scan.candidates`` are rules that could match."""
        folded: dict[Field, str] = {"title": fold(title), "text": fold(text)}
        scan = Scan(language, folded, title_echo(title, text))
        originals: dict[Field, str] = {"title": title, "text": text}
        for name in FIELDS:
            self._scan_field(scan, name, originals[name])
            self._scan_regexes(scan, name, originals[name])
        _dedupe_spans(scan.actor_spans)
        scan.candidates = self._candidates(scan)
        return scan

    def _scan_field(self, scan: Scan, name: Field, original: str) -> None:
        folded = scan.folded[name]
        skip = scan.echo_end if name == "text" else 0
        slot = FIELDS.index(name)
        if not self._automaton:
            return
        for last, (length, targets) in self._automaton.iter(folded, skip):
            start, end = last + 1 - length, last + 1
            if start > 0 and folded[start - 1].isalnum() and folded[start].isalnum():
                continue
            whole = end == len(folded) or not (folded[end].isalnum() and folded[end - 1].isalnum())
            for term_id, mode, extra in targets:
                acronym_ok = not extra or _capitals(original, start, end)
                if mode == _ACTOR and not (whole and acronym_ok):
                    continue
                if mode == _STEM and extra and scan.language and extra != scan.language:
                    continue
                scan.counts.setdefault(term_id, [0, 0])[slot] += 1
                if mode == _ACTOR:
                    scan.actor_spans.setdefault(term_id, []).append((name, start, end))

    def _scan_regexes(self, scan: Scan, name: Field, original: str) -> None:
        if self._regexes is None:
            return
        body = original if name == "title" else original[scan.echo_end :]
        for index in self._regexes.Match(body) or ():
            for term_id in self._regex_terms[index]:
                scan.counts.setdefault(term_id, [0, 0])[FIELDS.index(name)] = _UNKNOWN_COUNT

    def _candidates(self, scan: Scan) -> tuple[int, ...]:
        touched = {r for term_id in scan.counts for r in self.rules_of[term_id]}
        return tuple(sorted(r for r in touched if self.could_match(self.rules[r], scan)))

    def could_match(self, rule: Rule, scan: Scan) -> bool:
        """False when ``rule`` cannot match whatever the full analysis finds (pure)."""

        def count(name: str, scope: Iterable[Field] = FIELDS) -> int:
            in_scope = [f for f in scope if f in rule.scope]
            return scan.count(self.term_ids[rule.term(name)], in_scope)

        positive = rule.positive_terms
        mentions = sum(count(t.name) for t in positive)
        score = sum(
            t.weight * (rule.title_weight * count(t.name, ["title"]) + count(t.name, ["text"]))
            for t in positive
        )
        return (
            mentions >= rule.min_mentions
            and score >= rule.threshold
            and _possible(rule.logic, count)
        )


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
    return all(c.isupper() for c in original[start:end] if c.isalpha())


def _dedupe_spans(spans: dict[int, list[tuple[Field, int, int]]]) -> None:
    """Keep the longest of overlapping spans of one actor ("Nicolás Maduro" over "Maduro")."""
    for term_id, found in spans.items():
        kept: list[tuple[Field, int, int]] = []
        for span in sorted(found, key=lambda s: (FIELDS.index(s[0]), s[1], -s[2])):
            if kept and kept[-1][0] == span[0] and span[1] < kept[-1][2]:
                continue
            kept.append(span)
        spans[term_id] = kept


def _build_automaton(terms: list[Term]) -> Any:
    targets: dict[str, set[tuple[int, int, Any]]] = defaultdict(set)
    for term_id, term in enumerate(terms):
        if isinstance(term, Actor):
            for name in term.names:
                targets[fold(name).strip()].add((term_id, _ACTOR, is_acronym(name)))
        elif isinstance(term, Keywords):
            for language, phrase in term.phrases:
                targets[phrase_key(phrase)].add((term_id, _STEM, language))
    automaton = ahocorasick.Automaton()
    for key, found in targets.items():
        if key:
            automaton.add_word(key, (len(key), tuple(sorted(found))))
    if len(automaton):
        automaton.make_automaton()
    return automaton


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
