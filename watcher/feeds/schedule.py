"""Pure polling decisions: intervals, feed hints, backoff with jitter, and health reports."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher.config import PollingSettings

# Retry-After is honoured, but a hostile or broken server cannot park a feed forever.
_MAX_RETRY_AFTER = 7 * 86400.0


def effective_interval(
    feed_interval: float, settings: PollingSettings, hint: float | None
) -> float:
    """Seconds between successful polls: the feed's or default interval, floored by the
    feed's own hints (ttl, sy:updatePeriod, max-age) and by ``min_interval``."""
    interval = feed_interval or settings.interval
    if settings.respect_feed_hints and hint:
        interval = max(interval, min(hint, settings.max_hint))
    return max(interval, settings.min_interval)


def next_poll_after_success(
    now: datetime, interval: float, settings: PollingSettings, rng: random.Random
) -> datetime:
    spread = interval * settings.jitter * rng.random()
    return now + timedelta(seconds=interval + spread)


def backoff_delay(
    failures: int, interval: float, settings: PollingSettings, rng: random.Random
) -> float:
    """Exponential backoff from the feed's interval, capped, with jitter in its upper half."""
    ceiling = min(settings.backoff_cap, interval * 2.0 ** max(failures - 1, 0))
    return max(settings.min_interval, ceiling * (0.5 + 0.5 * rng.random()))


def next_poll_after_failure(
    now: datetime,
    failures: int,
    interval: float,
    settings: PollingSettings,
    *,
    rng: random.Random,
    retry_after: float | None = None,
) -> datetime:
    delay = backoff_delay(failures, interval, settings, rng)
    if retry_after:
        delay = max(delay, min(retry_after, _MAX_RETRY_AFTER))
    return now + timedelta(seconds=delay)


def feed_hint(
    ttl: float | None, update_period: float | None, max_age: float | None
) -> float | None:
    """The longest interval the publisher asks for, from any of its hints."""
    hints = [h for h in (ttl, update_period, max_age) if h and h > 0]
    return max(hints) if hints else None


@dataclass(frozen=True)
class FeedHealth:
    failing_since: datetime | None
    last_error: str | None
    last_new_item_at: datetime | None
    cadence: float | None  # typical seconds between new items, None if unknown
    added_at: datetime


def health_problem(health: FeedHealth, now: datetime, settings: PollingSettings) -> str | None:
    """Why a feed deserves a report ("failing" or "silent" and the reason), or None."""
    if health.failing_since:
        failing_for = (now - health.failing_since).total_seconds()
        if failing_for > settings.failing_after:
            return f"failing for {_human(failing_for)}: {health.last_error}"
        return None
    if health.cadence:
        since = health.last_new_item_at or health.added_at
        silent_for = (now - since).total_seconds()
        if silent_for > settings.silent_factor * max(health.cadence, settings.interval):
            return (
                f"silent for {_human(silent_for)} "
                f"(usually a new item every {_human(health.cadence)})"
            )
    return None


def feed_status(problem: str | None, *, enabled: bool, failures: int) -> str:
    """One word for a feed's health, the same in every view: disabled; failing or silent
    (``problem``, by the admin report's thresholds); erroring (its last polls failed, for less
    than failing_after); ok."""
    if not enabled:
        return "disabled"
    if problem:
        return "failing" if problem.startswith("failing") else "silent"
    return "erroring" if failures else "ok"


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
