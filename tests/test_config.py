"""Config loading, validation messages, and agreement between the schema and the example."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest

from watcher.config import (
    Config,
    ConfigError,
    Range,
    Secret,
    config_from_dict,
    config_path,
    lease_warning,
    load_config,
    parse_duration,
    read_secret,
    schema_keys,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), env={})
    return info.value.problems


def _keys(tmp_path: Path, text: str) -> list[str]:
    """The keys of every problem in ``text``, each problem also naming the file."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert len(info.value.keys) == len(info.value.problems)
    pairs = zip(info.value.problems, info.value.keys, strict=True)
    assert all(p.startswith(f"{path}: {k}: ") for p, k in pairs)
    return info.value.keys


def _example_keys(data: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and name not in _MAPPING_KEYS:
            keys |= _example_keys(value, name)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                keys |= _example_keys(item, name + "[]")
        else:
            keys.add(name)
    return keys


# Keys whose value is itself a free-form table (language code -> model name, ...).
_MAPPING_KEYS = {"nlp.models", "destinations", "webhook.endpoints"}


def test_example_and_schema_agree_both_ways() -> None:
    example = _example_keys(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    schema = schema_keys()
    assert sorted(schema - example) == [], "keys in the schema but not in config.example.toml"
    assert sorted(example - schema) == [], "keys in config.example.toml but not in the schema"


def test_every_example_key_has_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    in_feeds = False
    for i, line in enumerate(lines):
        if line.startswith("[[feeds]]"):
            in_feeds = True
        if in_feeds or not re.match(r"^[a-z_]+\s*=", line):
            continue
        assert lines[i - 1].startswith("#"), f"config.example.toml:{i + 1}: {line!r} has no comment"


def test_example_loads_and_matches_defaults(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    assert len(config.feeds) >= 12
    assert {t for f in config.feeds for t in f.tags} >= {"en", "es", "venezuela", "ukraine"}
    defaults = Config()
    assert config.http == defaults.http
    assert config.polling == defaults.polling
    assert config.log == defaults.log
    assert config.data_dir == (ROOT / "data").resolve()
    assert config.watcher.rules_dir == (ROOT / "rules").resolve()


def test_round_trip_of_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[watcher]
data_dir = "state"
timezone = "Europe/Madrid"
heartbeat_interval = "1m30s"
[polling]
interval = 120
jitter = 0
[[feeds]]
url = "https://example.org/feed.xml"
tags = ["a", "b"]
interval = "2h"
""",
    )
    config = load_config(path, env={})
    assert config.data_dir == tmp_path / "state"
    assert config.watcher.heartbeat_interval == 90.0
    assert config.polling.interval == 120.0
    assert config.polling.jitter == 0.0
    feed = config.feeds[0]
    assert (feed.url, feed.tags, feed.interval, feed.enabled) == (
        "https://example.org/feed.xml",
        ["a", "b"],
        7200.0,
        True,
    )
    assert config.store_url == f"sqlite:///{tmp_path / 'state' / 'watcher.db'}"


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "[http]\nuser_agnet = 'x'\n[polling]\nintervall = 5\n")
    assert problems == [
        f"{tmp_path / 'config.toml'}: http.user_agnet: unknown key; did you mean 'user_agent'?",
        f"{tmp_path / 'config.toml'}: polling.intervall: unknown key; did you mean 'interval'?",
    ]


def test_unknown_section_lists_valid_ones(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "[bogus]\nx = 1\n")
    assert "bogus: unknown key; valid keys: watcher, log" in problem


def test_wrong_types_are_all_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[http]
max_bytes = "big"
allow_private_addresses = "yes"
[log]
level = "loud"
[polling]
interval = "soon"
[[feeds]]
name = "no url"
""",
    )
    text = "\n".join(problems)
    assert "http.max_bytes: expected an integer, got string 'big'" in text
    assert "http.allow_private_addresses: expected true or false, got string 'yes'" in text
    assert "log.level: expected one of 'debug', 'info', 'warning', 'error', got 'loud'" in text
    assert "polling.interval: 'soon' is not a duration" in text
    assert "feeds[0].url: required key is missing" in text
    assert len(problems) == 5


def test_semantic_problems(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[watcher]
timezone = "Mars/Olympus"
[[feeds]]
url = "ftp://example.org/x"
[[feeds]]
url = "https://a.example/feed"
name = "A"
[[feeds]]
url = "https://a.example/feed"
name = "A"
""",
    )
    assert len(problems) == 4
    keys = _keys(tmp_path, (tmp_path / "config.toml").read_text())
    assert keys == ["watcher.timezone", "feeds[0].url", "feeds[2].url", "feeds[2].name"]


def test_a_feed_that_does_not_convert_leaves_the_others_checked(tmp_path: Path) -> None:
    """One feed without a url and another with a bad one: both are reported at once."""
    keys = _keys(
        tmp_path,
        """
[[feeds]]
url = "not a url"
[[feeds]]
name = "no url"
[[feeds]]
url = "ftp://example.org/feed"
""",
    )
    assert keys == ["feeds[1].url", "feeds[0].url", "feeds[2].url"]


_OUT_OF_RANGE = """
[watcher]
heartbeat_interval = 0
[http]
max_connections = -1
max_per_host = 0
max_bytes = 0
total_timeout = 0
connect_timeout = "0s"
max_redirects = -2
[polling]
jitter = 1e308
backfill_items = -1
silent_factor = 0.5
tick = 0
[articles]
workers = -3
min_text_chars = -1
[nlp]
ner_chars = -5
[alerts]
rate_limit = -1
develop_factor = 0.5
summary_sentences = 1000
[email]
port = 70000
[[feeds]]
url = "https://a.example/feed"
interval = -5
"""


def test_out_of_range_values_are_all_reported_with_their_keys(tmp_path: Path) -> None:
    assert sorted(_keys(tmp_path, _OUT_OF_RANGE)) == sorted(
        [
            "watcher.heartbeat_interval",
            "http.total_timeout",
            "http.max_bytes",
            "http.max_redirects",
            "http.max_connections",
            "http.max_per_host",
            "http.connect_timeout",
            "polling.jitter",
            "polling.backfill_items",
            "polling.silent_factor",
            "polling.tick",
            "articles.min_text_chars",
            "articles.workers",
            "nlp.ner_chars",
            "alerts.develop_factor",
            "alerts.summary_sentences",
            "alerts.rate_limit",
            "email.port",
            "feeds[0].interval",
        ]
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[http]\nmax_connections = -1\n", "http.max_connections"),
        ("[http]\nmax_connections = 0\n", "http.max_connections"),
        ("[http]\nmax_per_host = 0\n", "http.max_per_host"),
        ("[http]\nmax_per_host = -5\n", "http.max_per_host"),
        ("[polling]\njitter = 1e308\n", "polling.jitter"),
        ("[polling]\njitter = nan\n", "polling.jitter"),
        ("[http]\nmax_bytes = 0\n", "http.max_bytes"),
        ("[http]\ntotal_timeout = 0\n", "http.total_timeout"),
        ("[alerts]\nrate_limit = -1\n", "alerts.rate_limit"),
        ("[polling]\nbackfill_items = -1\n", "polling.backfill_items"),
    ],
)
def test_each_range_from_the_issue_is_refused(tmp_path: Path, text: str, key: str) -> None:
    assert _keys(tmp_path, text) == [key]


def test_range_and_semantic_problems_are_reported_together(tmp_path: Path) -> None:
    text = '[watcher]\ntimezone = "Mars/Olympus"\n[http]\nmax_per_host = 0\n'
    assert sorted(_keys(tmp_path, text)) == ["http.max_per_host", "watcher.timezone"]


def test_range_bounds_are_inclusive_unless_marked(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, "[http]\nmax_per_host = 1\nmax_redirects = 0\n[polling]\njitter = 1\n"),
        env={},
    )
    assert (config.http.max_per_host, config.http.max_redirects, config.polling.jitter) == (
        1,
        0,
        1.0,
    )


def _numeric_fields(cls: type = Config, prefix: str = "") -> list[tuple[str, typing.Any]]:
    found = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        hint, name = hints[f.name], f"{prefix}{f.name}"
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
        if dataclasses.is_dataclass(inner):
            found += _numeric_fields(typing.cast(type, inner), name + ".")
        elif typing.get_args(hint)[:1] in ((int,), (float,)) or hint in (int, float):
            found.append((name, hint))
    return found


def test_every_numeric_key_has_a_range() -> None:
    fields = _numeric_fields()
    assert len(fields) > 25
    missing = [
        name
        for name, hint in fields
        if not any(isinstance(m, Range) for m in getattr(hint, "__metadata__", ()))
    ]
    assert missing == []


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 1"):
        load_config(_write(tmp_path, "[http\n"), env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, env={})  # a directory, not a file


def test_environment_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    config = load_config(None, env={"WATCHER_CONFIG": str(path), "WATCHER_DATA_DIR": "/srv/w"})
    assert config.source == path
    assert config.data_dir == Path("/srv/w")


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration("250ms") == 0.25
    for bad in ("", "5 parsecs", "h", "1h-3m"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_secrets_from_env_or_file_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("123:ABCDEF-secret\n")
    from_env = read_secret("TOKEN", secret_file, env={"TOKEN": "from-env-999"})
    assert from_env is not None and from_env.reveal() == "from-env-999"
    from_file = read_secret("TOKEN", secret_file, env={})
    assert from_file is not None and from_file.reveal() == "123:ABCDEF-secret"
    assert "ABCDEF" not in repr(from_file) and "ABCDEF" not in f"{from_file}"
    assert read_secret("TOKEN", None, env={}) is None
    with pytest.raises(ConfigError, match="cannot read the secret file") as info:
        read_secret("TOKEN", tmp_path / "missing", env={})
    assert "ABCDEF" not in str(info.value)
    with pytest.raises(ConfigError) as named:  # the key naming the file, and the way out
        read_secret("TOKEN", tmp_path / "missing", env={}, key="email.password_file")
    assert str(named.value).startswith("email.password_file: ") and "$TOKEN" in str(named.value)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_secret("TOKEN", tmp_path / "empty", env={}, key="email.password_file")
    assert isinstance(from_file, Secret)


def test_config_from_dict_rejects_non_table_sections() -> None:
    with pytest.raises(ConfigError, match="http: expected a table, got integer 3"):
        config_from_dict({"http": 3})


def test_default_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[log]\nlevel = 'debug'\n"), env={})
    assert config.data_dir == tmp_path / "data"
    assert config.watcher.rules_dir == tmp_path / "rules"


def test_file_keys_expand_home_and_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every *_file and *_dir string key reads its path one way (config_path)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    source = tmp_path / "etc" / "config.toml"
    assert config_path("", source) is None
    assert config_path("~/block.yaml", source) == tmp_path / "home" / "block.yaml"
    assert config_path("rules/block.yaml", source) == (tmp_path / "etc/rules/block.yaml")
    assert config_path("/abs/token", source) == Path("/abs/token")


@pytest.mark.parametrize(
    ("store", "http", "telegram", "warned"),
    [
        ({"url": "postgresql+psycopg://w@127.0.0.1/w", "lease": "5s"}, {}, {}, "total_timeout"),
        ({"url": "postgresql+psycopg://w@127.0.0.1/w", "lease": "60s"}, {}, {}, "total_timeout"),
        (
            {"url": "postgresql+psycopg://w@127.0.0.1/w", "lease": "90s"},
            {"total_timeout": "30s"},
            {"timeout": "2m"},
            "[telegram] timeout",
        ),
        (  # Telegram's timeout counts only when Telegram is configured
            {"url": "postgresql+psycopg://w@127.0.0.1/w", "lease": "90s"},
            {"total_timeout": "30s"},
            {"timeout": "2m"},
            "",
        ),
        ({"url": "postgresql+psycopg://w@127.0.0.1/w", "lease": "2m"}, {}, {}, ""),
        ({"url": "", "lease": "5s"}, {}, {}, ""),  # SQLite: one process takes no work over
    ],
)
def test_a_lease_shorter_than_a_fetch_is_warned_about(
    store: dict[str, str], http: dict[str, str], telegram: dict[str, str], warned: str
) -> None:
    config = config_from_dict({"store": store, "http": http, "telegram": telegram})
    kinds = ["telegram"] if warned == "[telegram] timeout" else []
    warning = lease_warning(config, kinds)
    assert (warned in warning and "[store] lease" in warning) if warned else warning == ""


def test_a_feeds_problem_names_its_url_too(tmp_path: Path) -> None:
    text = (
        '[[feeds]]\nurl = "https://a.example/rss"\n'
        '[[feeds]]\nurl = "https://b.example/rss"\nenable = false\n'
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: feeds[1].enable: ") and "https://b.example/rss" in problem
