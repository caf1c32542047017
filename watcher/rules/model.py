"""The rule model: actors, keywords, regexes, the match logic and a rule set (plain records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeAlias

from watcher.types import Field

Priority = Literal["critical", "normal", "low"]


PRIORITIES: tuple[Priority, ...] = ("critical", "normal", "low")
FIELDS: tuple[Field, ...] = ("title", "text")
# OntoNotes labels, as spaCy's English models use them.
ENTITY_TYPES = (
    "PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
    "LANGUAGE", "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL",
)  # fmt: skip
# Language codes accepted as keys of the short `keywords: {en: [...], es: [...]}` form.
SHORT_FORM_LANGUAGES = frozenset(
    "ar ca da de el en es eu fi fr gl he hi hr hu id it ja ko nb nl pl pt ro ru sv tr uk zh".split()  # noqa: SIM905
)

# --- the records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A person, place or organisation, found by its name and aliases."""

    name: str
    aliases: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    not_near: tuple[str, ...] = ()
    weight: float = 1.0
    ambiguous: tuple[str, ...] = ()  # names that are common words too: need corroboration
    corroborate: tuple[str, ...] = ()  # the rule's terms that corroborate them (default: actors)

    @property
    def names(self) -> tuple[str, ...]:
        """The names matched: a lowercase name with aliases ("envoys") is a group label."""
        if self.aliases and self.name[:1].islower():  # "3M" is a name, "envoys" a label
            return tuple(dict.fromkeys((*self.aliases, *self.ambiguous)))
        return tuple(dict.fromkeys((self.name, *self.aliases, *self.ambiguous)))


@dataclass(frozen=True)
class Keywords:
    """A named group of phrases matched on lemmas; ``phrases`` are (language or "", phrase)."""

    name: str
    phrases: tuple[tuple[str, str], ...]
    weight: float = 1.0
    # phrases, in any language, that contain a keyword without being it ("de acuerdo con",
    # "according to", for the keyword "acuerdo", an agreement)
    exclude: tuple[str, ...] = ()
    # phrases that, in the same sentence, show a mention is about something else
    # ("negotiate" beside "Patriot systems": a purchase, not the peace talks)
    not_near: tuple[str, ...] = ()

    def for_language(self, language: str) -> tuple[str, ...]:
        """The phrases that apply to an article in ``language`` ("" = unknown: all of them)."""
        return tuple(p for lang, p in self.phrases if not lang or not language or lang == language)


@dataclass(frozen=True)
class Pattern:
    """A named group of google-re2 regular expressions, for power users."""

    name: str
    patterns: tuple[str, ...]
    weight: float = 1.0


Term: TypeAlias = Actor | Keywords | Pattern


@dataclass(frozen=True)
class Mentions:
    """Logic leaf: at least ``min`` mentions of the term ``name`` in ``scope``."""

    name: str
    min: int = 1
    scope: tuple[Field, ...] = FIELDS


@dataclass(frozen=True)
class Near:
    """Logic leaf: a mention of every operand (each a set of term names) close together.

    ``within`` is a number of words from a mention of the first operand; None means the
    same sentence.
    """

    operands: tuple[tuple[str, ...], ...]
    within: int | None = None


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class NoneOf:
    children: tuple[Node, ...]


Node: TypeAlias = Mentions | Near | AllOf | AnyOf | NoneOf


# Aboutness features, each a number a rule writer can check by reading the article.
DENSITY_CAP = 20.0  # topic mentions per 1,000 words counted at most
FEATURES = ("title", "lead", "share", "density", "first", "section", "heading")
FEATURE_RANGES = {
    "title": 1.0, "lead": 1.0, "share": 1.0, "density": DENSITY_CAP, "first": 1.0, "section": 1.0,
    "heading": 1.0,
}  # fmt: skip
DEFAULT_WEIGHTS = (
    ("title", 2.0), ("lead", 1.0), ("share", 4.0), ("density", 0.1), ("first", 1.0),
    ("section", 0.0), ("heading", 0.0),
)  # fmt: skip
SECTION_RUN = 5  # topic sentences in a row that make a section about the topic


@dataclass(frozen=True)
class About:
    """When an article is *about* the rule's topic: a score of salience features.

    ``topic`` lists operands like ``near``: a topic sentence has a mention of every operand
    within ``window`` sentences (empty: the rule's actors, any of them).
    """

    topic: tuple[tuple[str, ...], ...] = ()
    min_score: float = 2.0
    weights: tuple[tuple[str, float], ...] = DEFAULT_WEIGHTS
    require: tuple[tuple[str, float], ...] = ()  # feature -> minimum value
    lead: int = 3  # sentences of text that make the lead


@dataclass(frozen=True)
class Filters:
    feeds: tuple[str, ...] = ()  # feed names, or "tag:NAME"
    languages: tuple[str, ...] = ()
    max_age: float | None = None  # seconds
    categories: tuple[str, ...] = ()  # any of the item's categories/tags, ignoring case
    authors: tuple[str, ...] = ()  # any of these within the author's name, ignoring case
    url: str = ""  # a google-re2 pattern searched in the article URL; "" for none


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    actors: tuple[Actor, ...]
    keywords: tuple[Keywords, ...]
    regexes: tuple[Pattern, ...]
    logic: Node
    filters: Filters = Filters()
    priority: Priority = "normal"
    destinations: tuple[str, ...] = ()
    threshold: float = 1.0
    min_mentions: int = 1
    title_weight: float = 2.0
    scope: tuple[Field, ...] = FIELDS
    about: About | None = None
    window: int = 0  # sentences around a mention that count as "together" (about, corroboration)
    path: Path = Path("<rule>")
    line: int = 1
    # (key, item) -> (line, column) of a destination or filters.feeds item, for the problems
    # only the config reveals (rules/reload.py); where, not what: no part of equality
    positions: Mapping[tuple[str, str], tuple[int, int]] = field(
        default_factory=dict, compare=False
    )

    def position(self, key: str, item: str) -> str:
        """Where ``item`` of ``key`` is written, as "line:column" (the rule's line if unknown)."""
        line, column = self.positions.get((key, item), (self.line, 1))
        return f"{line}:{column}"

    @property
    def terms(self) -> tuple[Term, ...]:
        return (*self.actors, *self.keywords, *self.regexes)

    def term(self, name: str) -> Term:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Term]:
        return {t.name: t for t in self.terms}

    @cached_property
    def positive_terms(self) -> tuple[Term, ...]:
        """The terms that add to the score: all but those used only under ``none``."""
        negative = names_in(self.logic, negated=True) - names_in(self.logic, negated=False)
        return tuple(t for t in self.terms if t.name not in negative)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    fingerprint: str = field(default="", compare=False)
    # what loads but was likely not meant (file:line:col: message), for check and the log
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def names_in(node: Node, *, negated: bool, under_none: bool = False) -> set[str]:
    """The term names used in ``node``: under a ``none`` when ``negated``, else outside."""
    if isinstance(node, Mentions):
        return {node.name} if under_none == negated else set()
    if isinstance(node, Near):
        return {n for op in node.operands for n in op} if under_none == negated else set()
    inner = under_none or isinstance(node, NoneOf)
    return {n for c in node.children for n in names_in(c, negated=negated, under_none=inner)}


def never_met(node: Node) -> set[str]:
    """Term names that ``node`` both requires and forbids, so it can never hold: a name every
    match mentions (a ``term``, a one-name ``near`` operand, through ``all`` and through every
    branch of ``any``) that a ``none`` which must also hold excludes on one mention anywhere."""
    conjuncts = _conjuncts(node)
    required = set().union(*(_required(n) for n in conjuncts))
    forbidden = {
        child.name
        for n in conjuncts
        if isinstance(n, NoneOf)
        for child in n.children
        if isinstance(child, Mentions) and child.min == 1 and set(child.scope) == set(FIELDS)
    }
    return required & forbidden


def _conjuncts(node: Node) -> list[Node]:
    """The nodes that must all hold for ``node`` to hold (``all`` flattened)."""
    if isinstance(node, AllOf):
        return [n for child in node.children for n in _conjuncts(child)]
    return [node]


def _required(node: Node) -> set[str]:
    """Term names mentioned at least once in every article where ``node`` holds."""
    if isinstance(node, Mentions):
        return {node.name}
    if isinstance(node, Near):
        return {operand[0] for operand in node.operands if len(operand) == 1}
    if isinstance(node, AllOf):
        return set().union(*(_required(c) for c in node.children))
    if isinstance(node, AnyOf):
        return set.intersection(*(_required(c) for c in node.children))
    return set()  # a none requires no mention
