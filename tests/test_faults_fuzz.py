"""Hostile config and rules: property-based fuzzing of both loaders. Whatever the input, they
answer with a Config or rules, or with watcher's own ConfigError or RuleError naming the file
(and, for rules, the line and column) of every problem; never another exception, never a hang."""

from __future__ import annotations

import dataclasses
import re
import signal
import tempfile
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import Config, config_from_dict, load_config
from watcher.errors import ConfigError, RuleError
from watcher.rules.schema import load_rule_file, parse_rules

pytestmark = pytest.mark.fault

# No per-example deadline (a loaded machine would trip it); a hang is cut off by an alarm.
_FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_HANG_SECONDS = 10.0


class _Hang(AssertionError):
    pass


@contextmanager
def _bounded(seconds: float = _HANG_SECONDS) -> Iterator[None]:
    """Fail, rather than hang the suite, when the code under test does not return."""

    def hung(_signum: int, _frame: object) -> None:
        raise _Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- values as TOML and YAML produce them ------------------------------------------------

_TRICKY = [
    "", " ", "15m", "1h30m", "0s", "-1s", "90", "1e9h", "1.5.2s", "08:00", "25:61", "8",
    "22:00-07:00", "07:00-07:00", "UTC", "Mars/Olympus_Mons", "../../etc", "~", "~nobody/x",
    "~no-such-user-here/data", "/dev/null", "127.0.0.1:0", "[::1]:9464", "::1", "host:99999",
    "http://127.0.0.1/feed", "https://", "ftp://x/y", "debug", "json", "starttls", "none",
    "telegram:-100123", "email:desk@example.org", "console", "PERSON", "GPE", "title", "text",
    "critical", "low", "(?i)x", "a(", "(a+)+$", "[", "\x00", "\ud7ff", "é", "Nicolás", "x" * 300,
]  # fmt: skip
_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(_TRICKY),
    st.datetimes(),
    st.dates(),
    st.times(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _schema_values(hint: Any) -> st.SearchStrategy[Any]:
    """Values near what the schema expects for ``hint`` (often valid), or anything at all."""
    return st.one_of(_typed(hint), _VALUES)


def _typed(hint: Any) -> st.SearchStrategy[Any]:  # noqa: PLR0911
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _table(typing.cast(type, hint))
    if origin is Annotated:  # a duration
        return st.one_of(st.floats(min_value=0, max_value=1e7), st.sampled_from(_TRICKY[:9]))
    if origin is list:
        return st.lists(st.deferred(lambda: _schema_values(args[0])), max_size=3)
    if origin is dict:
        values = st.deferred(lambda: _schema_values(args[1]))
        return st.dictionaries(st.text(max_size=8), values, max_size=3)
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return _typed(next(a for a in args if a is not type(None)))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(min_value=-5, max_value=10**7),
        float: st.floats(min_value=-1, max_value=1e6),
        str: st.sampled_from(_TRICKY) | st.text(max_size=12),
        Path: st.sampled_from(["data", "~", "~nobody/x", "~no-such-user-here/x", "a\x00b", ""]),
    }
    return simple.get(hint, _VALUES)


def _later(hint: Any) -> st.SearchStrategy[Any]:
    # Deferred, as the schema nests: each section's strategy is built when first drawn.
    return st.deferred(lambda: _schema_values(hint))


def _table(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """A TOML table for the dataclass ``cls``: some of its keys, plus a stray one at times."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f.name for f in dataclasses.fields(cls) if f.metadata.get("toml", True)]
    known = st.fixed_dictionaries({}, optional={name: _later(hints[name]) for name in fields})
    stray = st.dictionaries(st.text(max_size=12) | st.sampled_from(fields), _VALUES, max_size=1)
    return st.builds(lambda k, s: {**s, **k}, known, stray)


# --- the config loader ---------------------------------------------------------------------

_SOURCE = Path("/nonexistent/fuzz/config.toml")


@_FUZZ
@given(_table(Config))
def test_config_from_dict_raises_only_config_errors(data: dict[str, Any]) -> None:
    with _bounded():
        try:
            config = config_from_dict(data, source=_SOURCE)
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.startswith(f"{_SOURCE}: "), problem
        else:
            # What the loader accepts must not crash the daemon later: every duration works
            # in the date arithmetic of schedules, backoffs and windows.
            for seconds in _durations(config):
                assert datetime.now(UTC) + timedelta(seconds=seconds)


def _durations(settings: Any) -> Iterator[float]:
    hints = typing.get_type_hints(type(settings), include_extras=True)
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            yield from _durations(value)
        elif isinstance(value, list | dict):
            items = value.values() if isinstance(value, dict) else value
            for item in items:
                if dataclasses.is_dataclass(item):
                    yield from _durations(item)
        elif get_origin(hints[f.name]) is Annotated:
            yield value


_TOMLISH = st.lists(
    st.sampled_from([
        "[watcher]\n", "[polling]\n", "[[feeds]]\n", "[telegram]\n", "[alerts]\n", "[email]\n",
        "[nlp.models]\n", '[destinations."telegram:1"]\n', "[metrics]\n", "[log]\n", "[http]\n",
        "data_dir", "rules_dir", "interval", "url", "chats", "digest_at", "quiet_hours",
        "timezone", "tick", "heartbeat_interval", "max_bytes", "level", "listen", "enabled",
        " = ", "=", '"', "'", "'''", '"""', "[", "]", "{", "}", ",", ".", "\n", "#", "\\",
        "\\u0000", "\\uD800", "1", "-1", "0x1F", "1.5", "1e400", "inf", "nan", "true", "false",
        '"15m"', '"1h30m"', '"~nobody/x"', '"http://127.0.0.1/feed"', "1979-05-27T07:32:00Z",
        "07:32:00", "1979-05-27", "é", "\x00", "\t", " ", "\r\n", "\ufeff",
    ]),
    max_size=50,
).map("".join)  # fmt: skip


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@_FUZZ
@given(st.one_of(_TOMLISH, st.text(max_size=200), st.binary(max_size=200)))
def test_load_config_raises_only_config_errors(folder: Path, text: str | bytes) -> None:
    path = folder / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with _bounded():
        try:
            load_config(path, env={})
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.startswith(f"{path}: "), problem
                if "invalid TOML" in problem:  # tomllib's own position
                    assert re.search(r"\(at (line \d+, column \d+|end of document)\)", problem)


# --- the rules loader ----------------------------------------------------------------------

_RULE_WORDS = [
    "name", "description", "priority", "destinations", "filters", "actors", "keywords",
    "regex", "match", "scope", "min_mentions", "threshold", "title_weight", "aliases", "types",
    "exclude", "not_near", "weight", "feeds", "languages", "max_age", "all", "any", "none",
    "near", "within", "term", "min", "in", "en", "es", "Maduro", "Ukraine", "peace talks",
]  # fmt: skip
_KEYS = st.one_of(
    st.sampled_from(_RULE_WORDS), st.text(max_size=8), st.integers(), st.booleans(), st.none()
)
_YAML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(_TRICKY + _RULE_WORDS),
    st.datetimes(),
    st.dates(),
    st.none(),
)
_YAML_VALUES = st.recursive(
    _YAML_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)
_RULE = st.fixed_dictionaries({}, optional=dict.fromkeys(_RULE_WORDS[:13], _YAML_VALUES)) | (
    st.dictionaries(_KEYS, _YAML_VALUES, max_size=4)
)
_POSITIONED = re.compile(r"^fuzz\.yaml:\d+:\d+: \S")


def _assert_rule_errors_positioned(text: str) -> None:
    with _bounded():
        try:
            rules = parse_rules(text, Path("fuzz.yaml"))
        except RuleError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert _POSITIONED.match(problem), problem
        else:
            assert rules


@_FUZZ
@given(st.lists(_RULE | _YAML_VALUES, min_size=1, max_size=3))
def test_parse_rules_on_structured_documents(documents: list[Any]) -> None:
    text = yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)
    _assert_rule_errors_positioned(text)


_YAMLISH = st.lists(
    st.sampled_from([
        *_RULE_WORDS, ":", ": ", "- ", "[", "]", "{", "}", ",", "\n", "  ", "    ", "&a ", "*a",
        "*b", "!!python/object/apply:os.system ", "!!binary ", "!!set ", "!x ", "<<: ", "<<: *a",
        "'", '"', "---\n", "...\n", "1", "-1", "2d", "(a", "a(", "~", "null", "yes", "#", "\t",
        "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "? ", "|\n", ">-\n", "\\", "\x00", "\x85", "é",
        "\ufeff", "PERSON", "telegram:-100123", "2000-01-01",
    ]),
    max_size=60,
).map("".join)  # fmt: skip


@_FUZZ
@given(st.one_of(_YAMLISH, st.text(max_size=300)))
def test_parse_rules_on_yamlish_text(text: str) -> None:
    _assert_rule_errors_positioned(text)


@_FUZZ
@given(st.binary(max_size=300))
def test_rule_files_of_random_bytes(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.yaml"
    path.write_bytes(data)
    with _bounded():
        try:
            load_rule_file(path)
        except RuleError as exc:
            for problem in exc.problems:
                assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: \S", problem), problem
