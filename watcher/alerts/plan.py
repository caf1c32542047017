"""Pure alert decisions: mutes, rate limits, digests, quiet hours, and where each alert goes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from watcher.channels import registry
from watcher.config import Config, parse_clock, parse_window
from watcher.stories.group import Action
from watcher.types import Match, Outcome, Route


@dataclass(frozen=True)
class Plan:
    outcomes: tuple[Outcome, ...]
    routes: tuple[Route, ...]  # empty when nothing is sent

    @property
    def alerting(self) -> list[str]:
        return [o.rule for o in self.outcomes if o.outcome in ("alert", "develop", "digest")]


@dataclass(frozen=True)
class Context:
    """The state the decision reads, gathered by the caller from the store and config."""

    now: datetime
    tz: ZoneInfo
    muted: frozenset[str]  # "rule:NAME", "actor:NAME" or "all"
    recent_alerts: Mapping[str, int]  # rule -> alerts sent in the last hour
    rate_limit: int
    default_destinations: tuple[str, ...]
    local_destinations: tuple[str, ...]  # console / jsonl: every alert goes there
    quiet_hours: Mapping[str, str]  # destination -> "HH:MM-HH:MM"
    default_quiet_hours: str  # for destinations without their own ("" = none)
    critical_ignores_quiet: bool
    # Destination kinds whose sent alerts take story updates ("+3 sources").
    updatable_kinds: frozenset[str] = frozenset()


def context_from_config(
    config: Config, now: datetime, muted: frozenset[str], recent_alerts: Mapping[str, int]
) -> Context:
    quiet = {d: s.quiet_hours for d, s in config.destinations.items() if s.quiet_hours}
    return Context(
        now=now, tz=ZoneInfo(config.watcher.timezone), muted=muted, recent_alerts=recent_alerts,
        rate_limit=config.alerts.rate_limit,
        default_destinations=default_destinations(config),
        local_destinations=local_destinations(config),
        quiet_hours=quiet, default_quiet_hours=config.alerts.quiet_hours,
        critical_ignores_quiet=config.alerts.critical_ignores_quiet_hours,
        updatable_kinds=registry.updatable_kinds(),
    )  # fmt: skip


def default_destinations(config: Config) -> tuple[str, ...]:
    """Where a rule without `destinations` sends: each channel spec's configured targets
    (every Telegram chat, email recipient, webhook endpoint)."""
    return registry.default_destinations(config)


def local_destinations(config: Config) -> tuple[str, ...]:
    """Console and JSON lines: the console also whenever nothing else is configured."""
    return registry.local_destinations(config)


def plan(matches: Sequence[Match], action: Action, reason: str, ctx: Context) -> Plan:
    """Decide each match's outcome and the routes of the alert (if any) it produces."""
    outcomes = [_outcome(m, action, reason, ctx) for m in matches]
    sending = [m for m, o in zip(matches, outcomes, strict=True) if o.outcome != "muted"]
    if action is Action.JOIN or not sending:
        return Plan(tuple(outcomes), ())
    return Plan(tuple(outcomes), tuple(_routes(sending, outcomes, ctx)))


def _outcome(match: Match, action: Action, reason: str, ctx: Context) -> Outcome:
    holding = mutes_holding(match, ctx.muted)
    if holding:
        return Outcome(match.rule, "muted", f"muted: {_mute_label(holding[0])}")
    if action is Action.JOIN:
        return Outcome(match.rule, "join", reason)
    if match.priority == "low":
        return Outcome(match.rule, "digest", "low priority: sent in the digest")
    if ctx.rate_limit and ctx.recent_alerts.get(match.rule, 0) >= ctx.rate_limit:
        return Outcome(
            match.rule,
            "digest",
            f"over the rate limit ({ctx.rate_limit} per hour): sent in the digest",
        )
    return Outcome(match.rule, "develop" if action is Action.DEVELOP else "alert", reason)


def mutes_holding(match: Match, muted: frozenset[str]) -> tuple[str, ...]:
    """The active mutes (store keys) that hold ``match``'s alert, the pause first, then the
    rule's, then its actors'. An actor mute applies when that actor weighs most in the
    match's evidence (mentions times the actor's weight; a tie counts for each):
    context-only actors (weight 0, such as "United States" in a Venezuela rule) never
    outweigh the one the article is about."""
    keys = [k for k in ("all", f"rule:{match.rule}") if k in muted]
    weights: dict[str, float] = {}
    for e in match.evidence:
        if e.kind == "actor" and e.weight > 0:
            weights[e.term] = weights.get(e.term, 0.0) + e.weight
    top = max(weights.values(), default=0.0)
    for name in sorted(weights):
        if math.isclose(weights[name], top) and f"actor:{name}" in muted:  # 3 x 0.1 == 0.3
            keys.append(f"actor:{name}")
    return tuple(keys)


def _mute_label(key: str) -> str:
    if key == "all":
        return "all alerts are paused"
    kind, _, name = key.partition(":")
    return f"{kind} {name}"


def _routes(matches: Sequence[Match], outcomes: Sequence[Outcome], ctx: Context) -> list[Route]:
    immediate: dict[str, bool] = {}
    by_rule = {o.rule: o for o in outcomes}
    for match in matches:
        now = by_rule[match.rule].outcome != "digest"
        for dest in match.destinations or ctx.default_destinations:
            immediate[dest] = immediate.get(dest, False) or now
    for dest in ctx.local_destinations:
        immediate[dest] = True  # local sinks record everything at once, digest or not
    critical = any(m.priority == "critical" for m in matches)
    return [
        Route(dest, not now, None if not now else _quiet_until(dest, critical, ctx))
        for dest, now in immediate.items()
    ]


def _quiet_until(destination: str, critical: bool, ctx: Context) -> datetime | None:
    if destination in ctx.local_destinations or (critical and ctx.critical_ignores_quiet):
        return None
    window = ctx.quiet_hours.get(destination, ctx.default_quiet_hours)
    return quiet_until(window, ctx.now, ctx.tz)


def quiet_until(window: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet window containing ``now`` ends, or None if ``now`` is outside it."""
    parsed = parse_window(window) if window else None
    if parsed is None:
        return None
    (sh, sm), (eh, em) = parsed
    local = now.astimezone(tz)
    start, end = time(sh, sm), time(eh, em)
    t = local.time()
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1 if start > end and t >= start else 0)
    return datetime.combine(end_day, end, tzinfo=tz)


def last_digest_time(times: Sequence[str], now: datetime, tz: ZoneInfo) -> datetime | None:
    """The last configured time of day at or before ``now`` (None without times)."""
    past = [
        at for at in _digest_times(times, now, tz, (-1, 0)) if at.timestamp() <= now.timestamp()
    ]
    return max(past, key=datetime.timestamp) if past else None


def next_digest_time(times: Sequence[str], after: datetime, tz: ZoneInfo) -> datetime:
    """The first configured time of day strictly after ``after``."""
    later = [
        a for a in _digest_times(times, after, tz, (0, 1)) if a.timestamp() > after.timestamp()
    ]
    return min(later, key=datetime.timestamp)


def _digest_times(
    times: Sequence[str], when: datetime, tz: ZoneInfo, days: tuple[int, ...]
) -> list[datetime]:
    """Each configured time of day on the local days ``days`` away from ``when``'s. Callers
    compare them as instants (``timestamp()``): aware datetimes sharing a tzinfo compare by
    wall time, which is wrong in the hour repeated when DST ends."""
    today = when.astimezone(tz).date()
    clock = [time(*hm) for hm in map(parse_clock, times) if hm is not None]  # validated
    return [datetime.combine(today + timedelta(days=d), t, tz) for d in days for t in clock]
