"""The rules directory as the daemon sees it: loaded at start, reloaded when files change."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from watcher.config import FeedConfig, feed_name
from watcher.errors import RuleError
from watcher.rules.loader import SUFFIXES, load_rules
from watcher.rules.model import Rule, RuleSet

Stamp = tuple[tuple[str, int, int], ...]


class RulesSource:
    """Holds the active rules; a reload that fails keeps the previous rules active.

    With ``channels`` (the kinds of channel the config turns on), rules sending to any other
    kind are refused, as `watcher check` refuses them: their alerts could never be sent.
    ``warnings`` lists what the active rules do that the user probably did not mean, given
    ``feeds`` (the configured feeds).
    """

    def __init__(
        self,
        directory: Path,
        *,
        channels: Collection[str] | None = None,
        feeds: Sequence[FeedConfig] = (),
    ) -> None:
        self.directory = directory
        self.channels = channels
        self.feeds = feeds
        self.rules = RuleSet()
        self.warnings: list[str] = []
        self._stamp: Stamp = ()
        # Whether the files were rejected at the last change, and were fixed at this one
        # (then the active rules may well be the same: the user still wants to hear it).
        self.rejected = False
        self.fixed = False

    def load(self) -> RuleSet:
        """Load the rules now; raises RuleError listing every problem."""
        stamp = self._current_stamp()
        self._accept(self._load())
        self._stamp = stamp
        return self.rules

    def reload(self) -> RuleError | None:
        """Reload if any rule file changed; the error if the new rules are invalid.

        An invalid edit is remembered, so it is reported once, not on every check.
        """
        stamp = self._current_stamp()
        self.fixed = False
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            rules = self._load()
        except RuleError as exc:
            self.rejected = True
            return exc
        self.fixed, self.rejected = self.rejected, False
        if rules.fingerprint != self.rules.fingerprint:
            self._accept(rules)
        return None

    def _load(self) -> RuleSet:
        return load_checked(self.directory, self.channels)

    def _accept(self, rules: RuleSet) -> None:
        self.rules = rules
        self.warnings = rules_warnings(self.directory, rules, self.feeds)

    def _current_stamp(self) -> Stamp:
        return rules_stamp(self.directory)


def load_checked(directory: Path, channels: Collection[str] | None = None) -> RuleSet:
    """The rules as the daemon loads them: load_rules, and with ``channels`` (the kinds the
    config turns on) no rule routing elsewhere; raises RuleError."""
    rules = load_rules(directory)
    if channels is not None and (problems := routing_problems(rules.rules, channels)):
        raise RuleError(problems)
    return rules


def rules_warnings(directory: Path, rules: RuleSet, feeds: Sequence[FeedConfig]) -> list[str]:
    """What the daemon logs and `watcher check` prints about rules that load."""
    return [
        *rules.warnings,
        *empty_warnings(directory, rules),
        *feed_filter_warnings(rules.rules, feeds),
    ]


def rules_stamp(directory: Path) -> Stamp:
    """The rule files' names, modification times and sizes: a change means a reload."""
    return files_stamp(directory, lambda path: path.suffix in SUFFIXES)


def files_stamp(directory: Path, wanted: Callable[[Path], bool]) -> Stamp:
    """Names, modification times and sizes of the ``wanted`` files directly in ``directory``
    (rules, alert templates): a change means a reload; () if it cannot be read."""
    try:
        files = sorted(p for p in directory.iterdir() if wanted(p))
    except OSError:
        return ()
    stamps = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        stamps.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def empty_warnings(directory: Path, rules: RuleSet) -> list[str]:
    """A rules folder without a rule: the daemon runs, and nothing can ever alert."""
    if rules.rules:
        return []
    return [f"{directory}: no rules (*.yaml, *.yml): no article can alert until one is added"]


def routing_problems(rules: Sequence[Rule], channels: Collection[str]) -> list[str]:
    """Rules sending to a kind of channel that is not among ``channels`` (configured)."""
    return [
        f"{rule.path}:{rule.position('destinations', dest)}: rule {rule.name} sends to {dest}, "
        f"but no {kind} channel is configured (see [{kind}])"
        for rule in rules
        for dest in rule.destinations
        if (kind := dest.split(":", 1)[0]) not in channels
    ]


def feed_filter_warnings(rules: Sequence[Rule], feeds: Sequence[FeedConfig]) -> list[str]:
    """Rule filters naming a feed or tag no configured feed has (a feed renamed or removed):
    such an item lets nothing through. Nothing is said when no feed is configured."""
    if not feeds:
        return []
    known = {feed_name(f).casefold() for f in feeds}
    known |= {f"tag:{t}".casefold() for f in feeds for t in f.tags}
    return [
        f"{rule.path}:{rule.position('filters.feeds', item)}: rule {rule.name}: filters.feeds "
        f"names {item!r}, which no configured feed has (names and tags are in [[feeds]]); it "
        "lets no article through"
        for rule in rules
        for item in rule.filters.feeds
        if item.casefold() not in known
    ]
