"""Rule validation: YAML values with positions into Rules, every problem as file:line:col."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import langcodes

from watcher.channels.registry import destination_problem, spec_for
from watcher.config import parse_duration
from watcher.rules.model import (
    ENTITY_TYPES,
    FEATURE_RANGES,
    FEATURES,
    FIELDS,
    PRIORITIES,
    SHORT_FORM_LANGUAGES,
    About,
    Actor,
    AllOf,
    AnyOf,
    Filters,
    Keywords,
    Mentions,
    Near,
    Node,
    NoneOf,
    Pattern,
    Rule,
    Term,
    names_in,
    never_met,
)
from watcher.rules.prefilter import fold
from watcher.rules.regex import regex_problem
from watcher.rules.text import capitalised, token_texts
from watcher.rules.yamlpos import Y
from watcher.types import Field

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_COMMA_RE = re.compile(r",\s")  # "crash, accident": a list written as one text
_DECIMAL_COMMA_RE = re.compile(r"[-+]?\d+,\d+")  # "2,5": a decimal written the Spanish way
# Quotes YAML does not take for quotes: around a phrase, they become part of it.
_TYPOGRAPHIC_QUOTES = "“”„‟«»‘’‚‛‹›「」『』"
_DESTINATION_KINDS = ("telegram", "email", "console", "apprise")

_RULE_KEYS = (
    "name",
    "description",
    "priority",
    "destinations",
    "filters",
    "actors",
    "keywords",
    "regex",
    "match",
    "scope",
    "min_mentions",
    "threshold",
    "title_weight",
    "about",
    "window",
)
_ACTOR_KEYS = (
    "name", "aliases", "types", "exclude", "not_near", "weight", "ambiguous", "corroborate",
)  # fmt: skip
_TERM_KEYS = ("actors", "keywords", "regex")
_ABOUT_KEYS = ("topic", "min_score", "weights", "require", "lead")
_MAX_WINDOW = 5
_FILTER_KEYS = ("feeds", "languages", "max_age", "categories", "authors", "url")
_LOGIC_KEYS = ("all", "any", "none", "near", "within", "term", "min", "in")


def language_problem(code: str) -> str:
    """Why ``code`` is not an ISO 639-1 language code, as articles carry ("" if it is one):
    a filter on "xx" or "eng" would silently drop every article."""
    if not _LANGUAGE_RE.fullmatch(code):
        return f"{code!r} is not an ISO 639-1 code (two lowercase letters, e.g. en, es)"
    if not langcodes.tag_is_valid(code):
        return f"{code!r} is not a known ISO 639-1 language code (e.g. en, es, uk)"
    return ""


def _describe(y: Y) -> str:
    value = y.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, str) and not y.raw.strip():
        return "empty text"
    kind = {bool: "true/false", int: "a number", float: "a number"}.get(type(value), "text")
    return f"{kind} ({y.raw!r})" if len(y.raw) <= 40 else kind


def _closest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The choice ``word`` is most likely a slip for, compared folded ("título" for
    "title", "negociacion" for "negociación"), or None."""
    folded = {fold(c): c for c in reversed(choices)}
    close = difflib.get_close_matches(fold(word), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = _closest(word, choices)
    if close is not None:
        return f"; did you mean {close!r}?"
    return f" (valid: {', '.join(choices)})" if choices else ""


class Checker:
    """Validates Y documents into Rules, collecting every problem with its position."""

    def __init__(self, path: Path, problems: list[str], warnings: list[str] | None = None) -> None:
        self.path = path
        self.problems = problems
        self.warnings = [] if warnings is None else warnings  # loads, but likely not meant
        self.term_refs: list[tuple[Y, str, str]] = []  # (where, what, name): checked once known
        # Names of terms declared but refused, their error said: an unknown-term error at each
        # use would repeat it. True for all names when a misspelled key hides the terms.
        self.refused: set[str] = set()
        self.terms_unread = False
        self.positions: dict[tuple[str, str], tuple[int, int]] = {}  # see Rule.positions

    def fail(self, y: Y, message: str) -> None:
        self.problems.append(f"{self.path}:{y.line}:{y.column}: {message}")

    def warn(self, y: Y, message: str) -> None:
        self.warnings.append(f"{self.path}:{y.line}:{y.column}: {message}")

    def said(self, name: str) -> bool:
        """Whether an unknown-term error for ``name`` would only repeat an error already said."""
        return name in self.refused or self.terms_unread

    # generic shapes

    def mapping(
        self,
        y: Y,
        what: str,
        allowed: tuple[str, ...] | None,
        note: Callable[[str], str] = lambda key: "",
    ) -> dict[str, Y] | None:
        """The keys of a mapping, each unknown one refused (``note`` adds to its message)."""
        if not isinstance(y.value, dict):
            self.fail(y, f"{what}: expected a mapping (key: value lines), got {_describe(y)}")
            return None
        for key in y.value:
            if allowed is not None and key not in allowed:
                hint = _suggest(key, allowed) + note(key)
                self.fail(y.keys[key], f"{what}: unknown key {key!r}{hint}")
        return {k: v for k, v in y.value.items() if allowed is None or k in allowed}

    def text(self, y: Y, what: str) -> str | None:
        if isinstance(y.value, str | int | float | bool) and y.raw.strip():
            return y.raw.strip()
        self.fail(y, f"{what}: expected text, got {_describe(y)}{_colon_hint(y)}")
        return None

    def phrases(self, y: Y, what: str) -> tuple[str, ...]:
        """Texts where a list is meant; one text alone is a list of one."""
        self.comma_list(y, what)
        for item in _items(y):
            self.typographic_quotes(item, what)
        return self.texts(y, what)

    def typographic_quotes(self, y: Y, what: str) -> None:
        """Warns about a phrase in typographic quotes (“...”, «...»): YAML quotes only with
        straight ones, so these are part of the phrase, which then matches nothing meant."""
        text = y.raw.strip()
        if len(text) > 2 and text[0] in _TYPOGRAPHIC_QUOTES and text[-1] in _TYPOGRAPHIC_QUOTES:
            self.warn(
                y,
                f"{what}: {text!r} is in typographic quotes ({text[0]}...{text[-1]}), which YAML "
                f"keeps as part of the phrase, so it does not match as meant; use straight "
                f'quotes or none: "{text[1:-1]}"',
            )

    def comma_list(self, y: Y, what: str) -> None:
        """Warns when ``y`` is an unquoted text with ", " where a list is meant: YAML reads
        ``crash, accident`` as one phrase, matched only as those words together. It loads as
        written ("Washington, D.C." and "Smith, John" are meant so), hence a warning."""
        if isinstance(y.value, str) and not y.quoted and _COMMA_RE.search(y.raw):
            self.warn(
                y,
                f"{what}: {y.raw!r} is one phrase with commas; if you meant several, write a "
                f'list: [{y.raw}]; if one, quote it to silence this: "{y.raw}"',
            )

    def texts(self, y: Y, what: str) -> tuple[str, ...]:
        """A list of texts; one text alone is a list of one."""
        items = y.value if isinstance(y.value, list) else [y]
        if isinstance(y.value, dict):
            self.fail(y, f"{what}: expected a list of texts, got a mapping")
            return ()
        found = (self.text(item, what) for item in items)
        return tuple(t for t in found if t is not None)

    def number(self, y: Y, what: str, *, minimum: float = 0.0) -> float | None:
        ok = isinstance(y.value, int | float) and not isinstance(y.value, bool)
        if ok and not math.isfinite(y.value):  # YAML's .inf and .nan: a rule that never fires
            self.fail(y, f"{what}: expected a finite number, got {y.raw!r}")
            return None
        if ok and y.value >= minimum:
            return float(y.value)
        hint = _number_hint(y) if isinstance(y.value, str) else ""
        self.fail(y, f"{what}: expected a number of at least {minimum:g}, got {_describe(y)}{hint}")
        return None

    def integer(self, y: Y, what: str, *, minimum: int = 1) -> int | None:
        ok = isinstance(y.value, int) and not isinstance(y.value, bool)
        if ok and y.value >= minimum:
            return int(y.value)
        self.fail(y, f"{what}: expected a whole number of at least {minimum}, got {_describe(y)}")
        return None

    def choice(self, y: Y, what: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(y, what)
        if value is not None and value not in choices:
            self.fail(y, f"{what}: {value!r} is not valid{_suggest(value, choices)}")
            return None
        return value

    # the rule

    def rule(self, doc: Y, default_name: str) -> Rule | None:
        start = len(self.problems)
        self.refused, self.positions = set(), {}
        present = set(doc.value) if isinstance(doc.value, dict) else set()
        self.terms_unread = any(_taken_for_terms(k, present) for k in present - set(_RULE_KEYS))
        keys = self.mapping(doc, "rule", _RULE_KEYS, lambda key: _unread_note(key, present))
        if keys is None:
            return None
        name = self.rule_name(keys, doc, default_name)
        terms = self.terms(keys)
        if not any(terms) and start == len(self.problems):
            self.fail(doc, "empty rule: it needs actors, keywords or regex to match anything")
        logic = self.logic_or_default(keys, terms)
        options = self.options(keys)
        names = [t.name for group in terms for t in group]
        if "about" in keys:
            options["about"] = self.about(keys["about"], names)
        self.check_term_refs(names)
        if len(self.problems) > start or name is None or logic is None:
            return None
        actors, keywords, regexes = terms
        return Rule(
            name,
            options.pop("description", ""),
            actors,
            keywords,
            regexes,
            logic,
            path=self.path,
            line=doc.line,
            positions=self.positions,
            **options,
        )

    def rule_name(self, keys: dict[str, Y], doc: Y, default: str) -> str | None:
        if "name" not in keys:
            if not default:
                self.fail(doc, "name: required when a file holds several rules")
            elif not _NAME_RE.fullmatch(default):
                self.fail(
                    doc,
                    f"name: the file name {default!r} is not a valid rule name; "
                    "add name: with ASCII letters, digits, '-', '_' or '.'",
                )
            return default or None
        name = self.text(keys["name"], "name")
        if name is not None and not _NAME_RE.fullmatch(name):
            self.fail(
                keys["name"],
                f"name: {name!r} is not valid (use ASCII letters, digits, "
                "'-', '_' or '.', up to 64, starting with a letter or digit)",
            )
        return name

    def options(self, keys: dict[str, Y]) -> dict[str, Any]:
        handlers: dict[str, Callable[[Y], Any]] = {
            "description": lambda y: self.text(y, "description") or "",
            "priority": lambda y: self.choice(y, "priority", PRIORITIES),
            "destinations": self.destinations,
            "filters": self.filters,
            "scope": lambda y: self.scope(y, "scope"),
            "min_mentions": lambda y: self.integer(y, "min_mentions"),
            "threshold": lambda y: self.number(y, "threshold"),
            "title_weight": lambda y: self.number(y, "title_weight"),
            "window": self.window,
        }
        return {key: handler(keys[key]) for key, handler in handlers.items() if key in keys}

    def destinations(self, y: Y) -> tuple[str, ...]:
        if not isinstance(y.value, list):
            self.comma_list(y, "destinations")
        found = []
        for item in y.value if isinstance(y.value, list) else [y]:
            if _one_pair(item):  # `telegram:` in [...]
                self.fail(item, f"destinations: {_split_destination(item)}")
                continue
            value = self.text(item, "destinations")
            if value is not None and self.destination_ok(item, value):
                found.append(value)
                self.positions.setdefault(("destinations", value), (item.line, item.column))
        return tuple(found)

    def destination_ok(self, y: Y, value: str) -> bool:
        # The channel specs know each kind's destinations (watcher/channels/registry.py).
        problem = destination_problem(value)
        if problem:
            self.fail(y, f"destinations: {problem}")
        return not problem

    def filters(self, y: Y) -> Filters:
        keys = self.mapping(y, "filters", _FILTER_KEYS) or {}
        feeds = self.phrases(keys["feeds"], "filters.feeds") if "feeds" in keys else ()
        for item in _items(keys["feeds"]) if feeds else ():
            self.positions.setdefault(("filters.feeds", item.raw.strip()), (item.line, item.column))
        languages = self.languages(keys["languages"]) if "languages" in keys else ()
        max_age = self.duration(keys["max_age"]) if "max_age" in keys else None
        categories = (
            self.phrases(keys["categories"], "filters.categories") if "categories" in keys else ()
        )
        authors = self.phrases(keys["authors"], "filters.authors") if "authors" in keys else ()
        url = self.url_pattern(keys["url"]) if "url" in keys else ""
        return Filters(feeds, languages, max_age, categories, authors, url)

    def url_pattern(self, y: Y) -> str:
        if isinstance(y.value, list | dict):
            self.fail(y, f"filters.url: expected one regular expression, got {_describe(y)}")
            return ""
        pattern = self.text(y, "filters.url")
        if pattern is None:
            return ""
        problem = regex_problem(pattern)
        if problem:
            self.fail(y, f"filters.url: invalid regular expression {pattern!r}: {problem}")
            return ""
        return pattern

    def languages(self, y: Y) -> tuple[str, ...]:
        codes = []
        for item in y.value if isinstance(y.value, list) else [y]:
            code = self.text(item, "filters.languages")
            problem = language_problem(code) if code is not None else ""
            if problem:
                self.fail(item, f"filters.languages: {problem}")
            elif code is not None:
                codes.append(code)
        return tuple(codes)

    def duration(self, y: Y) -> float | None:
        number = isinstance(y.value, int | float) and not isinstance(y.value, bool)
        if number and 0 < y.value < math.inf:
            return float(y.value)
        try:
            seconds = parse_duration(y.raw) if isinstance(y.value, str) else None
        except ValueError as exc:
            self.fail(y, f"filters.max_age: {exc}")
            return None
        if not seconds:
            self.fail(
                y, f"filters.max_age: expected a duration such as 6h or 2d, got {_describe(y)}"
            )
        return seconds

    def scope(self, y: Y, what: str) -> tuple[Field, ...]:
        found: list[Field] = []
        before = len(self.problems)
        for item in y.value if isinstance(y.value, list) else [y]:
            value = self.choice(item, what, FIELDS)
            found += [f for f in FIELDS if f == value]
        if not found and isinstance(y.value, list) and len(self.problems) == before:
            self.fail(y, f"{what}: expected title, text or both")
        return tuple(found) or FIELDS

    # terms

    def terms(
        self, keys: dict[str, Y]
    ) -> tuple[tuple[Actor, ...], tuple[Keywords, ...], tuple[Pattern, ...]]:
        actors = self.actors(keys["actors"]) if "actors" in keys else ()
        keywords = self.keyword_groups(keys["keywords"]) if "keywords" in keys else ()
        regexes = self.regexes(keys["regex"]) if "regex" in keys else ()
        seen: dict[str, str] = {}
        folded: dict[str, str] = {}  # folded actor name -> the actor name first seen
        for kind, y, term in self._term_sources(keys, actors, keywords, regexes):
            if term.name in seen:
                self.fail(
                    y,
                    f"{kind} {term.name!r}: the name is already used by "
                    f"{seen[term.name]} {term.name!r} (term names must be unique)",
                )
            # only actors' names are matched as text; other term names are labels
            elif (
                kind == "actor"
                and (first := folded.setdefault(fold(term.name), term.name)) != term.name
            ):
                self.warn(
                    y,
                    f"{kind} {term.name!r}: differs from actor {first!r} only in case or "
                    "accents, which matching ignores: likely one term written twice; keep "
                    "one, with what each lists",
                )
            seen.setdefault(term.name, kind)
        return actors, keywords, regexes

    def _term_sources(
        self, keys: dict[str, Y], *groups: tuple[Term, ...]
    ) -> Iterator[tuple[str, Y, Term]]:
        for kind, key, group in zip(
            ("actor", "keyword group", "regex"), _TERM_KEYS, groups, strict=True
        ):
            before: dict[str, int] = {}  # a name's copies so far in this group (a list's)
            for term in group:
                nth = before[term.name] = before.get(term.name, -1) + 1
                yield kind, _term_at(keys[key], term.name, nth), term

    def actors(self, y: Y) -> tuple[Actor, ...]:
        if isinstance(y.value, list):
            found = [self.actor_item(item) for item in y.value]
        elif isinstance(y.value, dict):
            self.misplaced(y, "actors", "actor", _like_actor_key)
            found = [self.actor(y.keys[name], name, spec) for name, spec in y.value.items()]
        else:
            self.fail(y, f"actors: expected a mapping of names or a list, got {_describe(y)}")
            return ()
        return tuple(a for a in found if a is not None)

    def actor_item(self, y: Y) -> Actor | None:
        if isinstance(y.value, dict):
            keys = self.mapping(y, "actors", _ACTOR_KEYS) or {}
            if "name" not in keys:
                self.fail(y, "actors: an actor given as a mapping needs name:")
                return None
            name = self.text(keys["name"], "actors: name")
            return self.actor(keys["name"], name, y) if name else None
        name = self.text(y, "actors")
        self.typographic_quotes(y, "actors")
        return Actor(name) if name else None

    def misplaced(self, y: Y, what: str, kind: str, looks_like: Callable[[str], str]) -> None:
        """Warns about a term named like a key of the term above (``aliases:`` or ``en:``
        indented one step short): YAML reads it as a term of its own, and it loads."""
        above = ""
        for name, spec in y.value.items():
            # a mapping under it is a term's own spec ("eu: {en: [...]}"): a real term
            like = "" if isinstance(spec.value, dict) else looks_like(name)
            if not like:
                above = name
                continue
            under = f"{above!r} (the {kind} above)" if above else f"the {kind} it belongs to"
            self.warn(
                y.keys[name],
                f"{what}: {name!r} is read as {kind} {name!r}, but it is named like {like}; "
                f"did you mean to indent it under {under}?",
            )

    def actor(self, at: Y, name: str, spec: Y) -> Actor | None:
        what = f"actor {name!r}"
        self.typographic_quotes(at, what)
        if spec.value is None:
            return Actor(name)
        if not isinstance(spec.value, dict):
            self.empty_aliases(spec, name)
            return Actor(name, self.aliases(spec, what))
        keys = self.mapping(spec, what, _ACTOR_KEYS) or {}
        if "aliases" in keys:
            self.empty_aliases(keys["aliases"], name)
        aliases = self.aliases(keys["aliases"], what) if "aliases" in keys else ()
        types = self.entity_types(keys["types"], what) if "types" in keys else ()
        exclude = self.phrases(keys["exclude"], f"{what} exclude") if "exclude" in keys else ()
        not_near = self.phrases(keys["not_near"], f"{what} not_near") if "not_near" in keys else ()
        weight = self.number(keys["weight"], f"{what} weight") if "weight" in keys else 1.0
        ambiguous = self.aliases(keys["ambiguous"], what) if "ambiguous" in keys else ()
        if ambiguous:
            self.lowercase_ambiguous(keys["ambiguous"], what)
        corroborate = self.term_names(keys.get("corroborate"), f"{what} corroborate")
        if name in corroborate:  # its own name would corroborate every ambiguous mention
            self.fail(keys["corroborate"], f"{what} corroborate: an actor cannot vouch for itself")
        self.self_silencing(keys, what, (name, *aliases, *ambiguous), "name")
        return Actor(
            name,
            aliases,
            types,
            exclude,
            not_near,
            1.0 if weight is None else weight,
            ambiguous,
            corroborate,
        )

    def empty_aliases(self, y: Y, name: str) -> None:
        """Warns about ``aliases: []`` on a lowercase name: with aliases it would be a group
        label (``Actor.names``), without them it is a word matched itself ("mediators")."""
        if y.value == [] and name[:1].islower():
            self.warn(
                y,
                f"actor {name!r} aliases: empty, so {name!r} is matched as a word itself (a "
                "lowercase name with aliases is only a label for them); list its aliases, or "
                "drop the empty list if the word is meant",
            )

    def term_names(self, y: Y | None, what: str) -> tuple[str, ...]:
        """Names of the rule's terms, checked once every term is known (each at its item)."""
        if y is None:
            return ()
        if isinstance(y.value, dict):
            return self.texts(y, what)  # refused, as a list of texts
        names = []
        for item in y.value if isinstance(y.value, list) else [y]:
            name = self.text(item, what)
            if name is not None:
                self.term_refs.append((item, what, name))
                names.append(name)
        return tuple(names)

    def check_term_refs(self, names: list[str]) -> None:
        for y, what, name in self.term_refs:
            if name not in names and not self.said(name):
                hint = _list_hint(y, name) or _suggest(name, names)
                self.fail(y, f"{what}: unknown term {name!r}{hint}")
        self.term_refs.clear()

    def window(self, y: Y) -> int | None:
        if isinstance(y.value, int) and not isinstance(y.value, bool) and y.value < 0:
            self.fail(y, f"window: 0 to {_MAX_WINDOW} sentences, got {y.value}")
            return None
        value = self.integer(y, "window", minimum=0)
        if value is not None and value > _MAX_WINDOW:
            self.fail(y, f"window: at most {_MAX_WINDOW} sentences, got {value}")
            return None
        return value

    def about(self, y: Y, names: list[str]) -> About | None:
        keys = self.mapping(y, "about", _ABOUT_KEYS)
        if keys is None:
            return None
        about = About()
        if "topic" in keys:
            about = replace(about, topic=self.topic(keys["topic"]))
        if "min_score" in keys:
            about = replace(about, min_score=self.number(keys["min_score"], "about.min_score") or 0)
        if "lead" in keys:
            about = replace(about, lead=self.integer(keys["lead"], "about.lead") or 3)
        if "weights" in keys:
            weights = dict(about.weights) | self.features(keys["weights"], "about.weights", None)
            about = replace(about, weights=tuple(weights.items()))
        if "require" in keys:
            require = self.features(keys["require"], "about.require", FEATURE_RANGES)
            about = replace(about, require=tuple(require.items()))
        best = sum(weight * FEATURE_RANGES[name] for name, weight in about.weights)
        if about.min_score > best and ("min_score" in keys or "weights" in keys):
            self.fail(
                keys["min_score" if "min_score" in keys else "weights"],
                f"about.min_score: {about.min_score:g} can never be reached; the weights give "
                f"at most {best:g} (every feature at its top)",
            )
        return about

    def topic(self, y: Y) -> tuple[tuple[str, ...], ...]:
        operands = y.value if isinstance(y.value, list) else [y]
        found = []
        for operand in operands:
            items = operand.value if isinstance(operand.value, list) else [operand]
            found.append(tuple(n for i in items for n in self.term_names(i, "about.topic")))
        return tuple(o for o in found if o)

    def features(self, y: Y, what: str, ranges: dict[str, float] | None) -> dict[str, float]:
        """feature: number pairs; ``ranges`` bounds each value (weights: any number >= 0)."""
        keys = self.mapping(y, what, FEATURES) or {}
        found = {}
        for name, value in keys.items():
            number = self.number(value, f"{what}.{name}")
            top = ranges[name] if ranges else None
            if number is not None and top is not None and number > top:
                self.fail(value, f"{what}.{name}: at most {top:g}, got {number:g}")
            elif number is not None:
                found[name] = number
        return found

    def aliases(self, y: Y, what: str) -> tuple[str, ...]:
        aliases = self.phrases(y, f"{what} aliases")
        for alias in aliases:
            if sum(c.isalnum() for c in alias) < 2:
                self.fail(y, f"{what} aliases: {alias!r} is too short to match reliably")
        return aliases

    def lowercase_ambiguous(self, y: Y, what: str) -> None:
        """Warns about an ambiguous name written without a capital: an ambiguous name counts
        only where the text capitalises it (``capitalised``, as matching asks), so a lowercase
        one such as "presos políticos" almost never counts. It loads, hence a warning."""
        for item in y.value if isinstance(y.value, list) else [y]:
            name = item.raw.strip()
            if isinstance(item.value, str) and not capitalised(name):
                self.warn(
                    item,
                    f"{what} ambiguous: {name!r} has no capital letter, and an ambiguous name "
                    "counts only where the text capitalises it; to match the words, list them "
                    "under aliases or in a keyword group (and use `near` or `none` for the "
                    "context)",
                )

    def self_silencing(
        self, keys: dict[str, Y], what: str, own: tuple[str, ...], kind: str
    ) -> None:
        """Warns about an ``exclude`` phrase that is one of the term's own names or phrases,
        and a ``not_near`` phrase found inside one: the mentions it should count would be
        dropped. Tokens as matching splits them, folded, a plural counting as the same word
        (what lemmas and stems both join). It loads, as a rule being tried out should."""
        forms = [(_tokens(o), o) for o in own]
        for key in ("exclude", "not_near"):
            if key not in keys:
                continue
            for item in _items(keys[key]):
                tokens = _tokens(item.raw)
                same = next((o for f, o in forms if tokens and _within(tokens, f, key)), None)
                if same is None:
                    continue
                hint = _silencing_hint(key, item.raw.strip(), same, kind)
                self.warn(item, f"{what} {key}: {hint}")

    def entity_types(self, y: Y, what: str) -> tuple[str, ...]:
        types = self.texts(y, f"{what} types")
        for label in types:
            if label not in ENTITY_TYPES:
                hint = _suggest(label.upper(), ENTITY_TYPES)
                self.fail(y, f"{what} types: unknown entity type {label!r}{hint}")
        return tuple(t for t in types if t in ENTITY_TYPES)

    def keyword_groups(self, y: Y) -> tuple[Keywords, ...]:
        if isinstance(y.value, list) or _is_language_map(y):
            group = self.keyword_group(y, "keywords")
            return (group,) if group else ()
        if not isinstance(y.value, dict):
            self.fail(y, f"keywords: expected a list or a mapping of groups, got {_describe(y)}")
            return ()
        self.misplaced(y, "keywords", "keyword group", _like_group_key)
        found = (self.keyword_group(spec, name) for name, spec in y.value.items())
        return tuple(g for g in found if g is not None)

    def keyword_group(self, y: Y, name: str) -> Keywords | None:
        what = f"keywords {name!r}"
        before = len(self.problems)
        if not isinstance(y.value, dict):
            phrases = tuple(("", p) for p in self.phrases(y, what))
            weight: float | None = 1.0
            exclude: tuple[str, ...] = ()
            not_near: tuple[str, ...] = ()
        else:
            phrases, weight, exclude, not_near = self.language_phrases(y, what)
            self.self_silencing(y.value, what, tuple(p for _, p in phrases), "phrase")
        if not phrases:
            if len(self.problems) == before:
                self.fail(y, f"{what}: no phrases")
            self.refused.add(name)
            return None
        return Keywords(name, phrases, 1.0 if weight is None else weight, exclude, not_near)

    def language_phrases(
        self, y: Y, what: str
    ) -> tuple[tuple[tuple[str, str], ...], float | None, tuple[str, ...], tuple[str, ...]]:
        """A group's phrases per language, its weight, and its exclude and not_near phrases."""
        phrases: list[tuple[str, str]] = []
        weight: float | None = 1.0
        lists: dict[str, tuple[str, ...]] = {"exclude": (), "not_near": ()}
        for key, value in y.value.items():
            if key == "weight":
                weight = self.number(value, f"{what} weight")
            elif key in lists:
                lists[key] = self.phrases(value, f"{what} {key}")
            elif close := _closest(key, _GROUP_KEYS):
                self.fail(y.keys[key], f"{what}: unknown key {key!r}; did you mean {close!r}?")
            elif problem := language_problem(key):
                self.fail(y.keys[key], f"{what}: {problem}, nor {_GROUP_KEYS_TEXT}")
            else:
                phrases += [(key, p) for p in self.phrases(value, f"{what} {key}")]
        return tuple(phrases), weight, lists["exclude"], lists["not_near"]

    def regexes(self, y: Y) -> tuple[Pattern, ...]:
        if not isinstance(y.value, dict):
            group = self.regex_group(y, "regex")
            return (group,) if group else ()
        found = (self.regex_group(spec, name) for name, spec in y.value.items())
        return tuple(g for g in found if g is not None)

    def regex_group(self, y: Y, name: str) -> Pattern | None:
        what = f"regex {name!r}"
        before = len(self.problems)
        patterns = self.texts(y, what)
        for pattern in patterns:
            problem = regex_problem(pattern)
            if problem:
                self.fail(y, f"{what}: invalid regular expression {pattern!r}: {problem}")
                patterns = ()
                break
        if not patterns and len(self.problems) == before:
            self.fail(y, f"{what}: no patterns")
        if not patterns:
            self.refused.add(name)
            return None
        return Pattern(name, patterns)

    # logic

    def logic_or_default(
        self, keys: dict[str, Y], terms: tuple[tuple[Term, ...], ...]
    ) -> Node | None:
        names = [t.name for group in terms for t in group]
        if "match" not in keys:
            return AnyOf(tuple(Mentions(n) for n in names))
        logic = _LogicChecker(self, names).node(keys["match"])
        if logic is not None and not names_in(logic, negated=False):
            self.fail(
                keys["match"],
                "match: needs a condition outside 'none' "
                "(a rule of only 'none' would match every article)",
            )
            return None
        contradicted = sorted(never_met(logic)) if logic is not None else []
        if contradicted:
            self.fail(
                keys["match"],
                f"match: 'none' excludes {', '.join(map(repr, contradicted))} on any mention, "
                "but every match needs a mention of it: the rule can never alert (give the "
                "'none' item an 'in' or a 'min', or drop it)",
            )
            return None
        return logic


class _LogicChecker:
    """Validates the ``match:`` tree against the rule's term names."""

    def __init__(self, checker: Checker, names: list[str]) -> None:
        self.checker = checker
        self.names = names

    def node(self, y: Y) -> Node | None:
        if isinstance(y.value, list):
            return self.group(AllOf, y)
        if isinstance(y.value, dict):
            return self.mapping(y)
        if y.value is None:
            self.checker.fail(
                y,
                "match: needs a term name, a list or a mapping (all, any, none, near, term), "
                "got nothing",
            )
            return None
        return self.term(y)

    def term(self, y: Y) -> Mentions | None:
        name = self.checker.text(y, "match")
        if name is None:
            return None
        if name not in self.names and self.checker.said(name):
            return None
        if name not in self.names:
            known = f"; known terms: {', '.join(self.names)}" if self.names else ""
            close = _closest(name, self.names)
            hint = _list_hint(y, name) or (f"; did you mean {close!r}?" if close else known)
            self.checker.fail(
                y,
                f"match: unknown term {name!r} (declare it under actors, keywords or regex){hint}",
            )
            return None
        return Mentions(name)

    def group(self, kind: type[AllOf | AnyOf | NoneOf], y: Y) -> Node | None:
        items = y.value if isinstance(y.value, list) else [y]
        children = [self.node(item) for item in items]
        if not items:
            self.checker.fail(y, "match: empty list")
        if not items or any(c is None for c in children):
            return None
        return kind(tuple(c for c in children if c is not None))

    def mapping(self, y: Y) -> Node | None:
        keys = self.checker.mapping(y, "match", _LOGIC_KEYS)
        if keys is None:
            return None
        parts: list[Node | None] = []
        kinds: dict[str, type[AllOf | AnyOf | NoneOf]] = {
            "all": AllOf,
            "any": AnyOf,
            "none": NoneOf,
        }
        parts += [self.group(kinds[k], keys[k]) for k in ("all", "any", "none") if k in keys]
        if "near" in keys:
            parts.append(self.near(keys["near"], keys.get("within")))
        if "term" in keys:
            parts.append(self.leaf(keys))
        self.orphans(y, keys)
        if not parts or any(p is None for p in parts):
            if not parts and len(keys) == len(y.value):
                self.checker.fail(y, "match: expected all, any, none, near or term")
            return None
        nodes = tuple(p for p in parts if p is not None)
        return nodes[0] if len(nodes) == 1 else AllOf(nodes)

    def orphans(self, y: Y, keys: dict[str, Y]) -> None:
        if "within" in keys and "near" not in keys:
            self.checker.fail(y.keys["within"], "match: 'within' goes with 'near'")
        for key in ("min", "in"):
            if key in keys and "term" not in keys:
                self.checker.fail(y.keys[key], f"match: {key!r} goes with 'term'")

    def leaf(self, keys: dict[str, Y]) -> Mentions | None:
        term = self.term(keys["term"])
        minimum = self.checker.integer(keys["min"], "match: min") if "min" in keys else 1
        scope = self.checker.scope(keys["in"], "match: in") if "in" in keys else FIELDS
        if term is None or minimum is None:
            return None
        return Mentions(term.name, minimum, scope)

    def near(self, y: Y, within: Y | None) -> Near | None:
        operands = y.value if isinstance(y.value, list) else []
        if len(operands) < 2:
            self.checker.fail(y, "match: near needs a list of at least two terms")
            return None
        found = [self.operand(o) for o in operands]
        words = self.within(within) if within is not None else None
        if any(o is None for o in found) or words == -1:
            return None
        return Near(tuple(o for o in found if o is not None), words)

    def operand(self, y: Y) -> tuple[str, ...] | None:
        items = y.value if isinstance(y.value, list) else [y]
        terms = [self.operand_term(item, item is not y) for item in items]
        if not items or any(t is None for t in terms):
            return None
        return tuple(t.name for t in terms if t is not None)

    def operand_term(self, y: Y, nested: bool) -> Mentions | None:
        """One name of a near operand, which is a term or a list of terms, no deeper."""
        if not isinstance(y.value, list | dict):
            return self.term(y)
        inside = " inside the operand's list" if nested else ""
        self.checker.fail(
            y,
            f"match: a near operand is a term or a list of terms, got {_describe(y)}{inside}"
            f"{_colon_hint(y)}",
        )
        return None

    def within(self, y: Y) -> int | None:
        """Words apart, None for "sentence", -1 when invalid."""
        if y.value == "sentence":
            return None
        value = y.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.checker.fail(
            y,
            "match: within: expected a number of words of at least 1, or 'sentence' (the "
            f"default: in one sentence), got {_describe(y)}",
        )
        return -1


def _items(y: Y) -> list[Y]:
    """The phrases of a list as ``Checker.text`` takes them (a number is its text too)."""
    items = y.value if isinstance(y.value, list) else [y]
    return [i for i in items if isinstance(i.value, str | int | float | bool) and i.raw.strip()]


def _tokens(phrase: str) -> tuple[str, ...]:
    """The phrase's tokens as matching splits and folds them (nlp's phrase forms)."""
    return tuple(map(fold, token_texts(phrase)))


def _same(a: str, b: str) -> bool:
    """One word, or a word and its plural: the forms any lemma table or stem joins."""
    return a == b or a in (b + "s", b + "es") or b in (a + "s", a + "es")


def _within(tokens: tuple[str, ...], own: tuple[str, ...], key: str) -> bool:
    """Whether a mention of ``own`` always holds ``tokens``: as all of it (``exclude``
    drops a mention inside the phrase) or anywhere in it (``not_near`` reads the sentence)."""
    n = len(tokens)
    if key == "exclude":
        return n == len(own) and all(map(_same, tokens, own))
    return any(all(map(_same, tokens, own[i : i + n])) for i in range(len(own) - n + 1))


def _silencing_hint(key: str, phrase: str, own: str, kind: str) -> str:
    if key == "exclude":
        return (
            f"{phrase!r} is its own {kind} {own!r} (or its plural), so the mentions it should "
            f'count would be dropped; exclude a longer phrase that holds it ("USS Gerald Ford" '
            f'for "Ford")'
        )
    return (
        f"{phrase!r} is in its own {kind} {own!r}: a sentence that mentions {own!r} has it, "
        f"so those mentions would not count; list the words that show another sense "
        f'("Atlanta" for "Georgia")'
    )


def _term_at(y: Y, name: str, nth: int) -> Y:
    """Where the term ``name`` is declared in ``y`` (actors, keywords or regex): its key, its
    ``nth`` list item of that name, or ``y`` itself for a short form."""
    if isinstance(y.value, dict):
        return y.keys.get(name, y)
    items = y.value if isinstance(y.value, list) else []
    specs = [i.value.get("name") if isinstance(i.value, dict) else i for i in items]
    named = [spec for spec in specs if spec is not None and spec.raw.strip() == name]
    return named[nth] if nth < len(named) else y


def _like_actor_key(name: str) -> str:
    """What an actor's name looks like, if a key of the actor above ("" if not)."""
    return "an actor's key" if name in _ACTOR_KEYS[1:] else ""


def _like_group_key(name: str) -> str:
    """What a keyword group's name looks like, if a key of the group above ("" if not)."""
    if name in _GROUP_KEYS:
        return "a keyword group's key"
    return "" if language_problem(name) else "a language code"


def _list_hint(y: Y, name: str) -> str:
    """For an unknown term name with ", " in it: several names meant as a list."""
    if y.quoted or not _COMMA_RE.search(name):
        return ""
    return f"; to name several, write a list: [{name}]"


def _number_hint(y: Y) -> str:
    """For "2,5" (a decimal comma) or "1,000" (a thousands separator): how to write it."""
    raw = y.raw.strip()
    if not _DECIMAL_COMMA_RE.fullmatch(raw):
        return ""
    whole, part = raw.split(",")
    if len(part) == 3:  # 1,000 or 1,500: a thousand and a half, or one and a half?
        return f"; write {whole}{part} or {whole}.{part}: no thousands separator, a decimal point"
    return f"; use a decimal point: {whole}.{part}"


def _taken_for_terms(key: str, present: set[str]) -> bool:
    """Whether an unknown rule key is suggested as actors, keywords or regex (``actores``)
    and the rule has no key of that name: its terms are then what the rule lacks."""
    close = _closest(key, _RULE_KEYS)
    return close in _TERM_KEYS and close not in present


def _unread_note(key: str, present: set[str]) -> str:
    """Said once at a misspelled actors, keywords or regex key, instead of an unknown-term
    error at every name that refers to a term under it."""
    if not _taken_for_terms(key, present):
        return ""
    return (
        " (until it is renamed, the terms under it are not read, and the names that refer "
        "to them are not checked)"
    )


def _one_pair(y: Y) -> bool:
    """A mapping of one key: what YAML makes of ``telegram:`` or ``a: b`` in a flow list."""
    return isinstance(y.value, dict) and len(y.value) == 1


def _colon_hint(y: Y) -> str:
    if not _one_pair(y):
        return ""
    key, value = next(iter(y.value.items()))
    if isinstance(value.value, list | dict):
        return ""
    written = f"{key}: {value.raw}" if value.raw else f"{key}:"
    return f" ({written!r}: a colon before a space or the end makes a key: quote the text)"


def _split_destination(y: Y) -> str:
    """Why ``telegram:`` or ``telegram: 42`` in a list is a mapping, with the fix."""
    kind, target = next(iter(y.value.items()))
    spec = spec_for(f"{kind}:")
    example = spec.example if spec else f"{kind}:TARGET"
    if target.raw:
        return (
            f"'{kind}: {target.raw}' has a space after the colon, so YAML reads a key and a "
            f"value; write {kind}:{target.raw}, or quote it"
        )
    return f"'{kind}:' needs a target after the colon, with no space ({example}), or quote it"


_GROUP_KEYS = ["weight", "exclude", "not_near"]  # a keyword group's keys besides its languages
_GROUP_KEYS_TEXT = ", ".join(map(repr, _GROUP_KEYS[:-1])) + f" or {_GROUP_KEYS[-1]!r}"


def _is_language_map(y: Y) -> bool:
    keys = set(y.value) - set(_GROUP_KEYS) if isinstance(y.value, dict) else set()
    return bool(keys) and keys <= SHORT_FORM_LANGUAGES
