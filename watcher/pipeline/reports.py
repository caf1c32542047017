"""Admin reports shared by the stages: the notifier and the throttled log of store failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

# Every stage logs as "watcher.pipeline", as before the split: log filters and tests name it.
log = logging.getLogger("watcher.pipeline")

# Store failures of one kind are logged at most once per this many seconds.
STORE_LOG_SECONDS = 60.0

# Sends an admin message (plain text); the Telegram bot provides one.
Notify = Callable[[str], Awaitable[None]]
# What a stage calls to tell the admins of a problem (already logged by the stage).
Report = Callable[[str], Awaitable[None]]


class StoreTrouble:
    """Logs store failures (disk full, read-only) once per kind of work every
    STORE_LOG_SECONDS, with the number held back meanwhile, and the recovery once: a failing
    store must not write a line per entry, feed and second to a disk that may be full."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def failed(self, what: str, exc: Exception | str) -> None:
        now = self._clock()
        last = self._last.get(what)
        if last is not None and now - last < STORE_LOG_SECONDS:
            self._held[what] = self._held.get(what, 0) + 1
            return
        held = self._held.pop(what, 0)
        more = f" ({held} more like it in {now - last:.0f} s)" if held and last is not None else ""
        log.error("%s: %s%s", what, exc, more)
        self._last[what] = now

    def recovered(self) -> None:
        if self._last:
            held = sum(self._held.values())
            more = f" ({held} failures not logged since the last report)" if held else ""
            log.info("the store works again%s", more)
            self._last.clear()
            self._held.clear()


class Reports:
    """Where admin messages go (rejected rule files, failing feeds and destinations); every
    problem is logged by its stage as well, so a missing or failing notifier loses nothing."""

    def __init__(self) -> None:
        self._notify: Notify | None = None
        self.store_trouble = StoreTrouble()

    def set_notifier(self, notify: Notify | None) -> None:
        self._notify = notify

    async def report(self, text: str) -> None:
        if self._notify is None:
            return
        try:
            await self._notify(text)
        except Exception:
            log.exception("could not send an admin message")
