"""The YAML rule schema: rule records, the loader, and validation with file:line:column errors.

A rule file holds one rule, or several separated by ``---`` lines. The smallest useful rule::

    actors: [Nicolás Maduro]

A fuller one (every key is optional except that a rule needs actors, keywords or a regex)::

    name: ukraine-peace                # default: the file name without .yaml
    description: Ukraine–Russia peace talks
    priority: critical                 # critical | normal (default) | low
    destinations: [telegram:-1001234567890/42, email:desk@example.org, console]
    filters:
      feeds: [Reuters World, tag:europe]   # feed names, or tag:NAME
      languages: [en, es]
      max_age: 2d
    actors:                            # canonical name: aliases, or a mapping
      Ukraine: [Ukrainian, Kyiv, Ucrania]
      Vladimir Putin:
        aliases: [Putin]
        types: [PERSON]                # named-entity labels a mention must carry
        exclude: [Putin Street]        # a mention inside one of these phrases is not the actor
        not_near: [restaurant]         # nor one in a sentence that has one of these
        weight: 2                      # each mention adds this to the score (default 1)
    keywords:                          # group name: phrases (matched on lemmas)
      talks:
        en: [peace talks, ceasefire]
        es: [conversaciones de paz, alto el fuego]
      war: [war, invasion]             # a plain list applies to every language
    regex:                             # google-re2 syntax; add (?i) to ignore case
      summit: '(?i)summit in (Riyadh|Istanbul)'
    match:                             # default: any term above
      all:
        - near: [Ukraine, talks]       # in one sentence, or `within: 10` words
        - any: [Vladimir Putin, {term: war, min: 2, in: text}]
      none: [summit]
    scope: [title, text]
    min_mentions: 3                    # mentions of the rule's terms, in all
    threshold: 5                       # score needed to alert (default 1)
    title_weight: 2                    # a mention in the title counts this many times

Actor names match case- and accent-insensitively, whole words only ("Maduro's" counts,
"Maduros" does not); aliases written in capitals, such as ``US``, match only in capitals.
The short ``keywords:`` form ``{en: [...], es: [...]}`` (only language codes as keys) is one
group named ``keywords``; a plain list is one group for every language. A list under
``match:`` means ``all``. The score adds each mention's weight (times ``title_weight`` in
the title), over every term not used only under ``none``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeAlias

import re2
import yaml

from watcher.config import parse_duration
from watcher.errors import RuleError
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
MAX_FILE_BYTES = 1_000_000
_MAX_DEPTH = 64
_MAX_NODES = 200_000
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
_TELEGRAM_RE = re.compile(r"telegram:(-?\d+|@[A-Za-z][A-Za-z0-9_]{4,})(/\d+)?")
_EMAIL_RE = re.compile(r"email:[^@\s:]+@[^@\s]+\.[^@\s]+")
_DESTINATION_KINDS = ("telegram", "email", "console", "apprise")


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

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Keywords:
    """A named group of phrases matched on lemmas; ``phrases`` are (language or "", phrase)."""

    name: str
    phrases: tuple[tuple[str, str], ...]
    weight: float = 1.0

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


@dataclass(frozen=True)
class Filters:
    feeds: tuple[str, ...] = ()  # feed names, or "tag:NAME"
    languages: tuple[str, ...] = ()
    max_age: float | None = None  # seconds


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
    path: Path = Path("<rule>")
    line: int = 1

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
        negative = _names_in(self.logic, negated=True) - _names_in(self.logic, negated=False)
        return tuple(t for t in self.terms if t.name not in negative)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    fingerprint: str = field(default="", compare=False)

    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def _names_in(node: Node, *, negated: bool, under_none: bool = False) -> set[str]:
    if isinstance(node, Mentions):
        return {node.name} if under_none == negated else set()
    if isinstance(node, Near):
        return {n for op in node.operands for n in op} if under_none == negated else set()
    inner = under_none or isinstance(node, NoneOf)
    return {n for c in node.children for n in _names_in(c, negated=negated, under_none=inner)}


# --- loading --------------------------------------------------------------------------


def load_rules(directory: Path) -> RuleSet:
    """Every rule in ``directory``'s ``*.yaml``/``*.yml`` files (hidden files are skipped).

    Raises RuleError listing every problem of every file, and duplicate rule names.
    """
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory not found (create it, or set rules_dir)")
    paths = sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
    )
    problems: list[str] = []
    rules: list[Rule] = []
    digest = hashlib.sha256()
    for path in paths:
        data = _read(path, problems)
        if data is None:
            continue
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        rules += _parse_file(path, data, problems)
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules), digest.hexdigest())


def load_rule_file(path: Path) -> list[Rule]:
    """The rules in one file; raises RuleError listing every problem."""
    problems: list[str] = []
    data = _read(path, problems)
    rules = _parse_file(path, data, problems) if data is not None else []
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return rules


def parse_rules(text: str, path: Path = Path("rules.yaml")) -> list[Rule]:
    """The rules in ``text`` as if read from ``path``; raises RuleError."""
    problems: list[str] = []
    rules = _parse_file(path, text.encode("utf-8", "surrogatepass"), problems)
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return rules


def _read(path: Path, problems: list[str]) -> bytes | None:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(f"{path}:1:1: cannot read rule file: {exc.strerror or exc}")
        return None
    if len(data) > MAX_FILE_BYTES:
        problems.append(f"{path}:1:1: rule file is larger than {MAX_FILE_BYTES:,} bytes")
        return None
    return data


def _duplicate_names(rules: list[Rule]) -> list[str]:
    first: dict[str, Rule] = {}
    problems = []
    for rule in rules:
        if rule.name in first:
            where = f"{first[rule.name].path}:{first[rule.name].line}"
            problems.append(
                f"{rule.path}:{rule.line}:1: duplicate rule name {rule.name!r} "
                f"(first defined at {where}; rule names must be unique)"
            )
        first.setdefault(rule.name, rule)
    return problems


def _parse_file(path: Path, data: bytes, problems: list[str]) -> list[Rule]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"{path}:1:1: not UTF-8 text (byte {exc.start}); save the file as UTF-8")
        return []
    documents = _compose(path, text, problems)
    if documents is None:
        return []
    documents = [d for d in documents if d.value is not None]
    if not documents:
        problems.append(f"{path}:1:1: no rule in file (a rule needs at least actors: [...])")
        return []
    found: list[str] = []
    checker = _Checker(path, found)
    many = len(documents) > 1
    rules = [checker.rule(d, default_name="" if many else path.stem) for d in documents]
    problems += sorted(found, key=_position)
    return [r for r in rules if r is not None]


def _position(problem: str) -> tuple[int, int]:
    match = re.search(r":(\d+):(\d+): ", problem)
    return (int(match[1]), int(match[2])) if match else (0, 0)


# --- YAML with positions --------------------------------------------------------------


@dataclass
class _Y:
    """A YAML value with its position (1-based); mappings keep their keys' positions."""

    value: Any  # str | int | float | bool | None | list[_Y] | dict[str, _Y]
    line: int
    column: int
    keys: dict[str, _Y] = field(default_factory=dict)
    raw: str = ""  # a scalar's text as written


def _compose(path: Path, text: str, problems: list[str]) -> list[_Y] | None:
    try:
        _check_depth(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        problems.append(f"{path}:{where}: YAML syntax error: {exc.problem or exc.context}")
        return None
    except (yaml.YAMLError, RecursionError) as exc:
        problems.append(f"{path}:1:1: YAML error: {exc}")
        return None
    converter = _Converter(path, problems)
    documents = [converter.convert(n, 0) for n in nodes]
    return None if converter.failed else documents


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"nested more than {_MAX_DEPTH} levels deep",
                    problem_mark=event.start_mark,  # type: ignore[arg-type]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class _Converter:
    """Turns composed YAML nodes into _Y values, refusing exotic tags and alias bombs."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.nodes = 0
        self.failed = False
        self.constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, message: str) -> _Y:
        mark = node.start_mark
        self.problems.append(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {message}")
        self.failed = True
        return _Y(None, mark.line + 1, mark.column + 1)

    def convert(self, node: yaml.Node, depth: int) -> _Y:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            return self.fail(node, "document too large or too deeply nested (aliases?)")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
            return self.at(node, [self.convert(n, depth + 1) for n in node.value])
        if isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
            return self.mapping(node, depth)
        return self.fail(node, f"unsupported YAML tag {node.tag!r}")

    def at(self, node: yaml.Node, value: Any, raw: str = "") -> _Y:
        return _Y(value, node.start_mark.line + 1, node.start_mark.column + 1, raw=raw)

    def scalar(self, node: yaml.ScalarNode) -> _Y:
        if node.tag not in _SCALAR_TAGS:
            return self.fail(node, f"unsupported YAML tag {node.tag!r}")
        if node.tag == "tag:yaml.org,2002:timestamp":
            return self.at(node, node.value, node.value)
        try:
            value = self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            return self.fail(node, f"invalid value {node.value!r}: {exc}")
        return self.at(node, value, node.value)

    def mapping(self, node: yaml.MappingNode, depth: int) -> _Y:
        result = self.at(node, {})
        for key_node, value_node in self._merged(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "a key must be plain text")
                continue
            key = self.at(key_node, key_node.value, key_node.value)
            if key_node.value in result.value:
                self.fail(key_node, f"duplicate key {key_node.value!r}")
                continue
            result.value[key_node.value] = self.convert(value_node, depth + 1)
            result.keys[key_node.value] = key
        return result

    def _merged(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """The node's pairs, with ``<<: *anchor`` merges expanded (own keys win)."""
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        yield from own
        for k, v in node.value:
            if k.tag != "tag:yaml.org,2002:merge":
                continue
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fail(source, "'<<' merges only mappings")
                    continue
                for sk, sv in source.value:
                    if isinstance(sk, yaml.ScalarNode) and sk.value not in own_keys:
                        own_keys.add(sk.value)
                        yield sk, sv


# --- validation -----------------------------------------------------------------------


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
)
_ACTOR_KEYS = ("name", "aliases", "types", "exclude", "not_near", "weight")
_FILTER_KEYS = ("feeds", "languages", "max_age")
_LOGIC_KEYS = ("all", "any", "none", "near", "within", "term", "min", "in")


def _describe(y: _Y) -> str:
    value = y.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    kind = {bool: "true/false", int: "a number", float: "a number"}.get(type(value), "text")
    return f"{kind} ({y.raw!r})" if len(y.raw) <= 40 else kind


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(choices)})"


class _Checker:
    """Validates _Y documents into Rules, collecting every problem with its position."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems

    def fail(self, y: _Y, message: str) -> None:
        self.problems.append(f"{self.path}:{y.line}:{y.column}: {message}")

    # generic shapes

    def mapping(self, y: _Y, what: str, allowed: tuple[str, ...] | None) -> dict[str, _Y] | None:
        if not isinstance(y.value, dict):
            self.fail(y, f"{what}: expected a mapping (key: value lines), got {_describe(y)}")
            return None
        for key in y.value:
            if allowed is not None and key not in allowed:
                self.fail(y.keys[key], f"{what}: unknown key {key!r}{_suggest(key, allowed)}")
        return {k: v for k, v in y.value.items() if allowed is None or k in allowed}

    def text(self, y: _Y, what: str) -> str | None:
        if isinstance(y.value, str | int | float | bool) and y.raw.strip():
            return y.raw.strip()
        self.fail(y, f"{what}: expected text, got {_describe(y)}")
        return None

    def texts(self, y: _Y, what: str) -> tuple[str, ...]:
        """A list of texts; one text alone is a list of one."""
        items = y.value if isinstance(y.value, list) else [y]
        if isinstance(y.value, dict):
            self.fail(y, f"{what}: expected a list of texts, got a mapping")
            return ()
        found = (self.text(item, what) for item in items)
        return tuple(t for t in found if t is not None)

    def number(self, y: _Y, what: str, *, minimum: float = 0.0) -> float | None:
        ok = isinstance(y.value, int | float) and not isinstance(y.value, bool)
        if ok and y.value >= minimum:
            return float(y.value)
        self.fail(y, f"{what}: expected a number of at least {minimum:g}, got {_describe(y)}")
        return None

    def integer(self, y: _Y, what: str, *, minimum: int = 1) -> int | None:
        ok = isinstance(y.value, int) and not isinstance(y.value, bool)
        if ok and y.value >= minimum:
            return int(y.value)
        self.fail(y, f"{what}: expected a whole number of at least {minimum}, got {_describe(y)}")
        return None

    def choice(self, y: _Y, what: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(y, what)
        if value is not None and value not in choices:
            self.fail(y, f"{what}: {value!r} is not valid{_suggest(value, choices)}")
            return None
        return value

    # the rule

    def rule(self, doc: _Y, default_name: str) -> Rule | None:
        start = len(self.problems)
        keys = self.mapping(doc, "rule", _RULE_KEYS)
        if keys is None:
            return None
        name = self.rule_name(keys, doc, default_name)
        terms = self.terms(keys)
        if not any(terms) and start == len(self.problems):
            self.fail(doc, "empty rule: it needs actors, keywords or regex to match anything")
        logic = self.logic_or_default(keys, terms)
        options = self.options(keys)
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
            **options,
        )

    def rule_name(self, keys: dict[str, _Y], doc: _Y, default: str) -> str | None:
        if "name" not in keys:
            if not default:
                self.fail(doc, "name: required when a file holds several rules")
            elif not _NAME_RE.fullmatch(default):
                self.fail(
                    doc,
                    f"name: the file name {default!r} is not a valid rule name; "
                    "add name: with letters, digits, '-', '_' or '.'",
                )
            return default or None
        name = self.text(keys["name"], "name")
        if name is not None and not _NAME_RE.fullmatch(name):
            self.fail(
                keys["name"],
                f"name: {name!r} is not valid (use letters, digits, "
                "'-', '_' or '.', up to 64, starting with a letter or digit)",
            )
        return name

    def options(self, keys: dict[str, _Y]) -> dict[str, Any]:
        handlers: dict[str, Callable[[_Y], Any]] = {
            "description": lambda y: self.text(y, "description") or "",
            "priority": lambda y: self.choice(y, "priority", PRIORITIES),
            "destinations": self.destinations,
            "filters": self.filters,
            "scope": lambda y: self.scope(y, "scope"),
            "min_mentions": lambda y: self.integer(y, "min_mentions"),
            "threshold": lambda y: self.number(y, "threshold"),
            "title_weight": lambda y: self.number(y, "title_weight"),
        }
        return {key: handler(keys[key]) for key, handler in handlers.items() if key in keys}

    def destinations(self, y: _Y) -> tuple[str, ...]:
        found = []
        for item in y.value if isinstance(y.value, list) else [y]:
            value = self.text(item, "destinations")
            if value is not None and self.destination_ok(item, value):
                found.append(value)
        return tuple(found)

    def destination_ok(self, y: _Y, value: str) -> bool:
        kind = value.split(":", 1)[0]
        ok = {
            "console": value == "console",
            "telegram": bool(_TELEGRAM_RE.fullmatch(value)),
            "email": bool(_EMAIL_RE.fullmatch(value)),
            "apprise": len(value) > len("apprise:"),
        }.get(kind)
        if ok is None:
            self.fail(
                y,
                f"destinations: unknown kind {kind!r} (use telegram:-1001234567890, "
                "telegram:-1001234567890/42 for a topic, email:desk@example.org, console "
                "or apprise:TAG)",
            )
        elif not ok:
            examples = {
                "telegram": "telegram:-1001234567890 or telegram:@channel, optionally /TOPIC",
                "email": "email:desk@example.org",
                "console": "console",
                "apprise": "apprise:TAG (a tag in [apprise] config_file)",
            }
            self.fail(y, f"destinations: {value!r} is malformed (expected {examples[kind]})")
        return bool(ok)

    def filters(self, y: _Y) -> Filters:
        keys = self.mapping(y, "filters", _FILTER_KEYS) or {}
        feeds = self.texts(keys["feeds"], "filters.feeds") if "feeds" in keys else ()
        languages = self.languages(keys["languages"]) if "languages" in keys else ()
        max_age = self.duration(keys["max_age"]) if "max_age" in keys else None
        return Filters(feeds, languages, max_age)

    def languages(self, y: _Y) -> tuple[str, ...]:
        codes = []
        for item in y.value if isinstance(y.value, list) else [y]:
            code = self.text(item, "filters.languages")
            if code is not None and not _LANGUAGE_RE.fullmatch(code):
                self.fail(item, f"filters.languages: {code!r} is not an ISO 639-1 code (e.g. en)")
            elif code is not None:
                codes.append(code)
        return tuple(codes)

    def duration(self, y: _Y) -> float | None:
        if isinstance(y.value, int | float) and not isinstance(y.value, bool) and y.value > 0:
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

    def scope(self, y: _Y, what: str) -> tuple[Field, ...]:
        found: list[Field] = []
        for item in y.value if isinstance(y.value, list) else [y]:
            value = self.choice(item, what, FIELDS)
            found += [f for f in FIELDS if f == value]
        if not found and isinstance(y.value, list):
            self.fail(y, f"{what}: expected title, text or both")
        return tuple(found) or FIELDS

    # terms

    def terms(
        self, keys: dict[str, _Y]
    ) -> tuple[tuple[Actor, ...], tuple[Keywords, ...], tuple[Pattern, ...]]:
        actors = self.actors(keys["actors"]) if "actors" in keys else ()
        keywords = self.keyword_groups(keys["keywords"]) if "keywords" in keys else ()
        regexes = self.regexes(keys["regex"]) if "regex" in keys else ()
        seen: dict[str, str] = {}
        for kind, y, term in self._term_sources(keys, actors, keywords, regexes):
            if term.name in seen:
                self.fail(
                    y,
                    f"{kind} {term.name!r}: the name is already used by "
                    f"{seen[term.name]} {term.name!r} (term names must be unique)",
                )
            seen.setdefault(term.name, kind)
        return actors, keywords, regexes

    def _term_sources(
        self, keys: dict[str, _Y], *groups: tuple[Term, ...]
    ) -> Iterator[tuple[str, _Y, Term]]:
        for kind, key, group in zip(
            ("actor", "keyword group", "regex"),
            ("actors", "keywords", "regex"),
            groups,
            strict=True,
        ):
            for term in group:
                yield kind, keys[key], term

    def actors(self, y: _Y) -> tuple[Actor, ...]:
        if isinstance(y.value, list):
            found = [self.actor_item(item) for item in y.value]
        elif isinstance(y.value, dict):
            found = [self.actor(y.keys[name], name, spec) for name, spec in y.value.items()]
        else:
            self.fail(y, f"actors: expected a mapping of names or a list, got {_describe(y)}")
            return ()
        return tuple(a for a in found if a is not None)

    def actor_item(self, y: _Y) -> Actor | None:
        if isinstance(y.value, dict):
            keys = self.mapping(y, "actors", _ACTOR_KEYS) or {}
            if "name" not in keys:
                self.fail(y, "actors: an actor given as a mapping needs name:")
                return None
            name = self.text(keys["name"], "actors: name")
            return self.actor(keys["name"], name, y) if name else None
        name = self.text(y, "actors")
        return Actor(name) if name else None

    def actor(self, at: _Y, name: str, spec: _Y) -> Actor | None:
        what = f"actor {name!r}"
        if spec.value is None:
            return Actor(name)
        if not isinstance(spec.value, dict):
            return Actor(name, self.aliases(spec, what))
        keys = self.mapping(spec, what, _ACTOR_KEYS) or {}
        aliases = self.aliases(keys["aliases"], what) if "aliases" in keys else ()
        types = self.entity_types(keys["types"], what) if "types" in keys else ()
        exclude = self.texts(keys["exclude"], f"{what} exclude") if "exclude" in keys else ()
        not_near = self.texts(keys["not_near"], f"{what} not_near") if "not_near" in keys else ()
        weight = self.number(keys["weight"], f"{what} weight") if "weight" in keys else 1.0
        return Actor(name, aliases, types, exclude, not_near, 1.0 if weight is None else weight)

    def aliases(self, y: _Y, what: str) -> tuple[str, ...]:
        aliases = self.texts(y, f"{what} aliases")
        for alias in aliases:
            if sum(c.isalnum() for c in alias) < 2:
                self.fail(y, f"{what} aliases: {alias!r} is too short to match reliably")
        return aliases

    def entity_types(self, y: _Y, what: str) -> tuple[str, ...]:
        types = self.texts(y, f"{what} types")
        for label in types:
            if label not in ENTITY_TYPES:
                hint = _suggest(label.upper(), ENTITY_TYPES)
                self.fail(y, f"{what} types: unknown entity type {label!r}{hint}")
        return tuple(t for t in types if t in ENTITY_TYPES)

    def keyword_groups(self, y: _Y) -> tuple[Keywords, ...]:
        if isinstance(y.value, list) or _is_language_map(y):
            group = self.keyword_group(y, "keywords")
            return (group,) if group else ()
        if not isinstance(y.value, dict):
            self.fail(y, f"keywords: expected a list or a mapping of groups, got {_describe(y)}")
            return ()
        found = (self.keyword_group(spec, name) for name, spec in y.value.items())
        return tuple(g for g in found if g is not None)

    def keyword_group(self, y: _Y, name: str) -> Keywords | None:
        what = f"keywords {name!r}"
        before = len(self.problems)
        if not isinstance(y.value, dict):
            phrases = tuple(("", p) for p in self.texts(y, what))
            weight: float | None = 1.0
        else:
            phrases, weight = self.language_phrases(y, what)
        if not phrases:
            if len(self.problems) == before:
                self.fail(y, f"{what}: no phrases")
            return None
        return Keywords(name, phrases, 1.0 if weight is None else weight)

    def language_phrases(
        self, y: _Y, what: str
    ) -> tuple[tuple[tuple[str, str], ...], float | None]:
        phrases: list[tuple[str, str]] = []
        weight: float | None = 1.0
        for key, value in y.value.items():
            if key == "weight":
                weight = self.number(value, f"{what} weight")
            elif not _LANGUAGE_RE.fullmatch(key):
                self.fail(
                    y.keys[key], f"{what}: {key!r} is not a language code (e.g. en, es) or 'weight'"
                )
            else:
                phrases += [(key, p) for p in self.texts(value, f"{what} {key}")]
        return tuple(phrases), weight

    def regexes(self, y: _Y) -> tuple[Pattern, ...]:
        if not isinstance(y.value, dict):
            group = self.regex_group(y, "regex")
            return (group,) if group else ()
        found = (self.regex_group(spec, name) for name, spec in y.value.items())
        return tuple(g for g in found if g is not None)

    def regex_group(self, y: _Y, name: str) -> Pattern | None:
        what = f"regex {name!r}"
        patterns = self.texts(y, what)
        for pattern in patterns:
            problem = regex_problem(pattern)
            if problem:
                self.fail(y, f"{what}: invalid regular expression {pattern!r}: {problem}")
                return None
        return Pattern(name, patterns) if patterns else None

    # logic

    def logic_or_default(
        self, keys: dict[str, _Y], terms: tuple[tuple[Term, ...], ...]
    ) -> Node | None:
        names = [t.name for group in terms for t in group]
        if "match" not in keys:
            return AnyOf(tuple(Mentions(n) for n in names))
        logic = _LogicChecker(self, names).node(keys["match"])
        if logic is not None and not _names_in(logic, negated=False):
            self.fail(
                keys["match"],
                "match: needs a condition outside 'none' "
                "(a rule of only 'none' would match every article)",
            )
            return None
        return logic


class _LogicChecker:
    """Validates the ``match:`` tree against the rule's term names."""

    def __init__(self, checker: _Checker, names: list[str]) -> None:
        self.checker = checker
        self.names = names

    def node(self, y: _Y) -> Node | None:
        if isinstance(y.value, list):
            return self.group(AllOf, y)
        if isinstance(y.value, dict):
            return self.mapping(y)
        return self.term(y)

    def term(self, y: _Y) -> Mentions | None:
        name = self.checker.text(y, "match")
        if name is None:
            return None
        if name not in self.names:
            known = f"; known terms: {', '.join(self.names)}" if self.names else ""
            close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else known
            self.checker.fail(
                y,
                f"match: unknown term {name!r} (declare it under actors, keywords or regex){hint}",
            )
            return None
        return Mentions(name)

    def group(self, kind: type[AllOf | AnyOf | NoneOf], y: _Y) -> Node | None:
        items = y.value if isinstance(y.value, list) else [y]
        children = [self.node(item) for item in items]
        if not items:
            self.checker.fail(y, "match: empty list")
        if not items or any(c is None for c in children):
            return None
        return kind(tuple(c for c in children if c is not None))

    def mapping(self, y: _Y) -> Node | None:
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

    def orphans(self, y: _Y, keys: dict[str, _Y]) -> None:
        if "within" in keys and "near" not in keys:
            self.checker.fail(y.keys["within"], "match: 'within' goes with 'near'")
        for key in ("min", "in"):
            if key in keys and "term" not in keys:
                self.checker.fail(y.keys[key], f"match: {key!r} goes with 'term'")

    def leaf(self, keys: dict[str, _Y]) -> Mentions | None:
        term = self.term(keys["term"])
        minimum = self.checker.integer(keys["min"], "match: min") if "min" in keys else 1
        scope = self.checker.scope(keys["in"], "match: in") if "in" in keys else FIELDS
        if term is None or minimum is None:
            return None
        return Mentions(term.name, minimum, scope)

    def near(self, y: _Y, within: _Y | None) -> Near | None:
        operands = y.value if isinstance(y.value, list) else []
        if len(operands) < 2:
            self.checker.fail(y, "match: near needs a list of at least two terms")
            return None
        found = [self.operand(o) for o in operands]
        words = self.within(within) if within is not None else None
        if any(o is None for o in found) or words == -1:
            return None
        return Near(tuple(o for o in found if o is not None), words)

    def operand(self, y: _Y) -> tuple[str, ...] | None:
        items = y.value if isinstance(y.value, list) else [y]
        terms = [self.term(item) for item in items]
        if not items or any(t is None for t in terms):
            return None
        return tuple(t.name for t in terms if t is not None)

    def within(self, y: _Y) -> int | None:
        """Words apart, None for "sentence", -1 when invalid."""
        if y.value == "sentence":
            return None
        value = y.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.checker.fail(
            y, f"match: within: expected 'sentence' or a number of words, got {_describe(y)}"
        )
        return -1


def _is_language_map(y: _Y) -> bool:
    keys = set(y.value) - {"weight"} if isinstance(y.value, dict) else set()
    return bool(keys) and keys <= SHORT_FORM_LANGUAGES


def regex_problem(pattern: str) -> str:
    """Why google-re2 refuses ``pattern``, or "" when it compiles."""
    try:
        compile_regex(pattern)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return ""


def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by google-re2 (linear time: no catastrophic backtracking)."""
    return re2.compile(pattern, _re2_options())


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options
