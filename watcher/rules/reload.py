"""The rules directory as the daemon sees it: loaded at start, reloaded when files change."""

from __future__ import annotations

from pathlib import Path

from watcher.errors import RuleError
from watcher.rules.loader import load_rules
from watcher.rules.model import RuleSet

Stamp = tuple[tuple[str, int, int], ...]


class RulesSource:
    """Holds the active rules; a reload that fails keeps the previous rules active."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rules = RuleSet()
        self._stamp: Stamp = ()
        # Whether the files were rejected at the last change, and were fixed at this one
        # (then the active rules may well be the same: the user still wants to hear it).
        self.rejected = False
        self.fixed = False

    def load(self) -> RuleSet:
        """Load the rules now; raises RuleError listing every problem."""
        stamp = self._current_stamp()
        self.rules = load_rules(self.directory)
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
            rules = load_rules(self.directory)
        except RuleError as exc:
            self.rejected = True
            return exc
        self.fixed, self.rejected = self.rejected, False
        if rules.fingerprint != self.rules.fingerprint:
            self.rules = rules
        return None

    def _current_stamp(self) -> Stamp:
        try:
            files = sorted(p for p in self.directory.iterdir() if p.suffix in (".yaml", ".yml"))
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
