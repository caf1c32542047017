"""Pure polling decisions: intervals with hints, backoff with jitter and cap, health reports."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from watcher.config import PollingSettings
from watcher.feeds.schedule import (
    FeedHealth,
    backoff_delay,
    effective_interval,
    feed_hint,
    health_problem,
    next_poll_after_failure,
    next_poll_after_success,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
S = PollingSettings(interval=900, min_interval=60, jitter=0.1, backoff_cap=21600, max_hint=7200)


def test_interval_uses_feed_then_default_and_floor() -> None:
    assert effective_interval(0, S, None) == 900
    assert effective_interval(300, S, None) == 300
    assert effective_interval(5, S, None) == 60  # never below min_interval


def test_feed_hints_are_a_floor_capped_by_max_hint() -> None:
    assert effective_interval(300, S, 1800) == 1800
    assert effective_interval(300, S, 86400) == 7200
    assert effective_interval(3600, S, 600) == 3600  # a hint never speeds polling up
    ignoring = PollingSettings(interval=900, respect_feed_hints=False)
    assert effective_interval(300, ignoring, 1800) == 300


def test_feed_hint_takes_the_longest() -> None:
    assert feed_hint(None, None, None) is None
    assert feed_hint(3600, 1800, 60) == 3600
    assert feed_hint(0, None, -5) is None


def test_success_schedule_spreads_within_jitter() -> None:
    rng = random.Random(1)
    times = {next_poll_after_success(NOW, 900, S, rng) for _ in range(200)}
    offsets = [(t - NOW).total_seconds() for t in times]
    assert min(offsets) >= 900 and max(offsets) <= 990
    assert len(times) > 150  # 1,000 feeds do not land on the same second


def test_backoff_grows_exponentially_to_the_cap_and_never_gives_up() -> None:
    rng = random.Random(2)
    delays = [backoff_delay(n, 900, S, rng) for n in range(1, 30)]
    assert 450 <= delays[0] <= 900
    assert 900 <= delays[1] <= 1800
    assert all(d <= 21600 for d in delays)
    assert all(d >= 10800 for d in delays[6:])  # at the cap, jitter stays in its upper half


def test_retry_after_is_honoured_but_bounded() -> None:
    rng = random.Random(3)
    soon = next_poll_after_failure(NOW, 1, 900, S, rng=rng, retry_after=5000)
    assert soon - NOW >= timedelta(seconds=5000)
    forever = next_poll_after_failure(NOW, 1, 900, S, rng=rng, retry_after=10**9)
    assert forever - NOW == timedelta(days=7)


def _health(**kw: object) -> FeedHealth:
    base: dict[str, object] = {
        "failing_since": None,
        "last_error": None,
        "last_new_item_at": NOW,
        "cadence": None,
        "added_at": NOW,
    }
    return FeedHealth(**{**base, **kw})  # type: ignore[arg-type]


def test_failing_feed_reported_after_threshold() -> None:
    recent = _health(failing_since=NOW - timedelta(hours=2), last_error="HTTP 503")
    assert health_problem(recent, NOW, S) is None
    old = _health(failing_since=NOW - timedelta(hours=30), last_error="HTTP 503")
    assert health_problem(old, NOW, S) == "failing for 1 d: HTTP 503"


def test_silent_feed_reported_far_beyond_its_cadence() -> None:
    hourly = _health(cadence=3600.0, last_new_item_at=NOW - timedelta(hours=5))
    assert health_problem(hourly, NOW, S) is None
    silent = _health(cadence=3600.0, last_new_item_at=NOW - timedelta(hours=11))
    assert health_problem(silent, NOW, S) == "silent for 11 h (usually a new item every 1 h)"
    unknown = _health(last_new_item_at=NOW - timedelta(days=30))
    assert health_problem(unknown, NOW, S) is None
