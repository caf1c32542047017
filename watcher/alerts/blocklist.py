"""The global blocklist: terms, feeds and domains that never alert, loaded from one YAML file.

The file (``[alerts] blocklist_file``) looks like::

    terms: [horoscope, sponsored content]   # words or phrases in the title or text
    feeds: [Tabloid Daily]                  # feed names or URLs, as in [[feeds]]
    domains: [example-spam.com]             # article hosts; subdomains included

Terms match whole words, ignoring case and accents. ``blocked`` is the pure decision the
pipeline asks before planning an alert.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from watcher.config import Config, FeedConfig, config_path, feed_name
from watcher.errors import ConfigError
from watcher.rules.prefilter import fold
from watcher.types import Article

log = logging.getLogger(__name__)

KEYS = ("terms", "feeds", "domains")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Blocklist:
    terms: tuple[str, ...] = ()  # as written
    feeds: frozenset[str] = frozenset()  # feed names (URLs are mapped to names when loaded)
    domains: tuple[str, ...] = ()  # lower-case hosts
    path: Path | None = None
    warnings: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.terms))

    def __len__(self) -> int:
        return len(self.terms) + len(self.feeds) + len(self.domains)


def blocked(blocklist: Blocklist, article: Article, url: str = "") -> str:
    """Why ``article`` must not alert ("term 'x'", "feed 'y'", "domain 'z'"), or "" (pure)."""
    if article.feed_name and article.feed_name in blocklist.feeds:
        return f"feed {article.feed_name!r}"
    host = (urlsplit(url or article.url).hostname or "").lower().rstrip(".")
    for domain in blocklist.domains:
        if host == domain or host.endswith("." + domain):
            return f"domain {domain!r}"
    if blocklist.pattern is not None:
        for text in (article.title, article.text):
            found = blocklist.pattern.search(fold(text))
            if found:
                return f"term {_term_for(blocklist, found.group(0))!r}"
    return ""


def _term_for(blocklist: Blocklist, folded: str) -> str:
    wanted = " ".join(folded.split())
    return next((t for t in blocklist.terms if _fold_term(t) == wanted), folded)


def _fold_term(term: str) -> str:
    return " ".join(fold(term).split())


def _compile(terms: Sequence[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # Whole words only; any run of spaces inside a phrase matches any other.
    alternatives = sorted({_fold_term(t) for t in terms}, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in t.split()) for t in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def blocklist_path(config: Config) -> Path | None:
    """The configured blocklist file, relative paths against the config file's folder."""
    return config_path(config.alerts.blocklist_file, config.source)


def load_blocklist(config: Config) -> Blocklist:
    """The configured blocklist (empty when none); ConfigError lists every problem."""
    path = blocklist_path(config)
    if path is None:
        return Blocklist()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: blocklist file not found (create it, or empty [alerts] blocklist_file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the blocklist: {exc}") from None
    return parse_blocklist(text, path, config.feeds)


def parse_blocklist(text: str, path: Path, feeds: Sequence[FeedConfig] = ()) -> Blocklist:
    """Validate the YAML ``text`` read from ``path``; problems say ``file:line: ...``."""
    problems: list[str] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{line} invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    values: dict[str, list[tuple[str, int]]] = {k: [] for k in KEYS}
    if root is not None:
        _read_root(root, path, values, problems)
    terms = [t for t, _ in values["terms"]]
    domains = [d for d, _ in values["domains"]]
    names, warnings = _feed_names(values["feeds"], path, feeds)
    if problems:
        raise ConfigError(problems)
    return Blocklist(tuple(terms), frozenset(names), tuple(domains), path, tuple(warnings))


def _read_root(
    root: yaml.Node, path: Path, values: dict[str, list[tuple[str, int]]], problems: list[str]
) -> None:
    if not isinstance(root, yaml.MappingNode):
        problems.append(
            f"{path}:{root.start_mark.line + 1}: expected a mapping with keys {', '.join(KEYS)}"
        )
        return
    for key_node, value_node in root.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(KEYS)})"
            problems.append(f"{path}:{line}: unknown key {key!r}{hint}")
            continue
        values[key] += _strings(key, value_node, path, problems)


def _strings(key: str, node: yaml.Node, path: Path, problems: list[str]) -> list[tuple[str, int]]:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.append(f"{path}:{line}: {key}: expected a list, e.g. {key}: [one, two]")
        return []
    out = []
    for item in node.value:
        item_line = item.start_mark.line + 1
        if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
            problems.append(f"{path}:{item_line}: {key}: expected a non-empty string")
            continue
        value = str(item.value).strip()
        problem = _domain_problem(value) if key == "domains" else ""
        if problem:
            problems.append(f"{path}:{item_line}: domains: {problem}")
            continue
        if key == "terms" and not any(c.isalnum() for c in value):
            problems.append(f"{path}:{item_line}: terms: {value!r} has no letters or digits")
            continue
        out.append((value.lower().rstrip(".") if key == "domains" else value, item_line))
    return out


def _domain_problem(value: str) -> str:
    if "://" in value or "/" in value:
        host = urlsplit(value if "://" in value else "//" + value).hostname or "example.com"
        return f"{value!r} is a URL; write the host name only, e.g. {host!r}"
    if not _HOST_RE.match(value.lower().rstrip(".")):
        return f"{value!r} is not a host name (e.g. example.com; subdomains are included)"
    return ""


def _feed_names(
    entries: Sequence[tuple[str, int]], path: Path, feeds: Sequence[FeedConfig]
) -> tuple[list[str], list[str]]:
    """Feed entries as feed names (a URL becomes its feed's name); unknown ones warn."""
    by_url = {f.url: feed_name(f) for f in feeds}
    known = set(by_url.values())
    names, warnings = [], []
    for value, line in entries:
        name = by_url.get(value, value)
        if feeds and name not in known:
            warnings.append(
                f"{path}:{line}: feeds: {value!r} is not the name or URL of a configured feed"
            )
        names.append(name)
    return names, warnings


class BlocklistSource:
    """The blocklist in force: reloaded when its file changes; a bad edit keeps the old one."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.path = blocklist_path(config)
        self.blocklist = Blocklist()
        self._stamp: tuple[int, int] | None = None

    def load(self) -> Blocklist:
        """Load at start-up; raises ConfigError."""
        self._stamp = self._file_stamp()
        self.blocklist = load_blocklist(self._config)
        return self.blocklist

    def reload(self) -> ConfigError | None:
        """Load again if the file changed; on error keep the old list and return the error."""
        stamp = self._file_stamp()
        if self.path is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            self.blocklist = load_blocklist(self._config)
        except ConfigError as exc:
            return exc
        return None

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return (-1, -1)
        return (st.st_mtime_ns, st.st_size)
