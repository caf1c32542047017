"""What the bot says: parsing command arguments and formatting replies (Telegram HTML); pure."""

from __future__ import annotations

import difflib
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher.alerts.compose import plural
from watcher.alerts.plan import mutes_holding
from watcher.config import PollingSettings, parse_duration
from watcher.feeds.schedule import feed_status
from watcher.rules.explain import evidence_name
from watcher.rules.schema import RuleSet
from watcher.store.feeds import FeedRow
from watcher.store.replicas import LeaseCount, ReplicaRow
from watcher.types import Evidence, Match

# Replies are cut well inside Telegram's 4,096 characters, between whole lines.
REPLY_LIMIT = 3800
DEFAULT_MUTE = 86400.0
MAX_MUTE = 365 * 86400.0
MIN_MUTE = 60.0
# /pause without a duration lasts until /resume; the store needs an end, so: ten years.
PAUSE_FOREVER = 3650 * 86400.0
_SHOWN_INPUT = 60  # characters of user input echoed back
_ALIASES_SHOWN = 4  # an actor's other names listed when it is muted

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "feeds, last poll, alerts today, outbox"),
    ("rules", "rules with state, alerts in 24 h, not relevant"),
    ("mute", "RULE-or-ACTOR [duration]: mute (default 24h)"),
    ("unmute", "RULE-or-ACTOR: unmute; no argument lists mutes"),
    ("pause", "[duration]: pause all alerts"),
    ("resume", "resume all alerts"),
    ("test", "URL: how the rules judge a page"),
    ("digest", "send the pending digest now"),
    ("feeds", "failing feeds and why"),
    ("help", "this list"),
)


def esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def shown(text: str) -> str:
    """User input as it may be echoed: clipped and escaped."""
    clipped = text if len(text) <= _SHOWN_INPUT else text[: _SHOWN_INPUT - 1] + "…"
    return esc(clipped)


def help_text() -> str:
    lines = ["<b>watcher bot</b>", ""]
    lines += [f"/{name} — {esc(description)}" for name, description in COMMANDS]
    lines += [
        "",
        "Durations: 30m, 2h, 3d, 1w. Under each alert: <i>Mute rule 24h</i>, "
        "<i>Not relevant</i> (counted per rule in /rules and <code>watcher backtest</code>) and "
        "<i>Open article</i>.",
    ]
    return "\n".join(lines)


def fit(lines: Sequence[str], limit: int = REPLY_LIMIT) -> str:
    """Whole lines up to ``limit`` characters; each line is balanced HTML on its own."""
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit:
            out.append("… (cut to fit one message)")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def when(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d %b %H:%M %Z")


def ago(moment: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def until_text(until: datetime, now: datetime, tz: ZoneInfo) -> str:
    return "until /resume" if _open_ended(until, now) else f"until {when(until, tz)}"


def _open_ended(until: datetime, now: datetime) -> bool:
    """A pause without a duration (PAUSE_FOREVER): longer than any mute one can ask for."""
    return until - now > timedelta(seconds=MAX_MUTE)


# --- mute targets and durations ---------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a mute applies to: ``key`` as the store and the alert decision know it."""

    key: str  # "rule:NAME", "actor:NAME" or "all"
    note: str = ""  # e.g. that an actor has the same name as the rule

    @property
    def label(self) -> str:
        if self.key == "all":
            return "all alerts"
        kind, _, name = self.key.partition(":")
        return f"{kind} {name}"


@dataclass(frozen=True)
class MuteRequest:
    target: Target
    seconds: float


def parse_duration_arg(text: str) -> float | str:
    """Seconds, or the reply explaining what is wrong with ``text``."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return f"‘{shown(text)}’ is not a duration: use e.g. 30m, 2h, 3d or 1w."
    if not MIN_MUTE <= seconds <= MAX_MUTE:
        return "Durations go from 1m to 365d."
    return seconds


def parse_mute(
    args: Sequence[str], rules: RuleSet, default: float = DEFAULT_MUTE
) -> MuteRequest | str:
    """``/mute TARGET [duration]``; the reply to send instead when the arguments are wrong."""
    if not args:
        return _mute_usage(rules)
    text, seconds = " ".join(args), default
    if len(args) > 1 and args[-1][:1].isdigit():
        parsed = parse_duration_arg(args[-1])
        whole = resolve_target(text, rules)
        if isinstance(parsed, str):
            return MuteRequest(whole, default) if isinstance(whole, Target) else parsed
        text, seconds = " ".join(args[:-1]), parsed
    target = resolve_target(text, rules)
    if isinstance(target, Target):
        return MuteRequest(target, seconds)
    return _name_then_duration(args, rules) or _too_many(args, rules) or target


def _mute_usage(rules: RuleSet) -> str:
    return "Usage: /mute RULE-or-ACTOR [duration], e.g. /mute venezuela 3d\n" + _known(rules)


def _too_many(args: Sequence[str], rules: RuleSet) -> str | None:
    """The reply when a known name is followed by more than a duration ("ukraine-peace 2h
    extra"): the name was right, so "no rule or actor" would mislead. None otherwise."""
    for end in range(len(args) - 1, 0, -1):  # names may have spaces: the longest first
        if isinstance(resolve_target(" ".join(args[:end]), rules), Target):
            too_many = "Too many arguments: /mute takes one name and one duration."
            return f"{too_many}\n{_mute_usage(rules)}"
    return None


_SPACED_DURATION = re.compile(r"\d+ [a-z]+")


def _name_then_duration(args: Sequence[str], rules: RuleSet) -> MuteRequest | str | None:
    """A known name followed by a duration written otherwise ("2 h"), or the reply saying the
    duration is wrong ("venezuela soon", "venezuela -5m"); a duration alone ("3d") gets the
    usage. None when the name itself is unknown."""
    if len(args) == 1 and not isinstance(parse_duration_arg(args[0]), str):
        return _mute_usage(rules)
    for split in (1, 2):
        head, tail = args[:-split], " ".join(args[-split:])
        if split == 2 and not _SPACED_DURATION.fullmatch(tail):
            continue  # only "2 h" reads as one duration, not "2 3d" (23 days)
        target = resolve_target(" ".join(head), rules) if head else None
        if isinstance(target, Target):
            seconds = parse_duration_arg(tail)
            return seconds if isinstance(seconds, str) else MuteRequest(target, seconds)
    return None


def resolve_target(text: str, rules: RuleSet) -> Target | str:
    """The rule or actor ``text`` names ("rule:"/"actor:" force one); else a reply that
    suggests the closest names."""
    text = " ".join(text.split())
    if _fold(text) in ("all", "*"):
        return Target("all")
    wanted, name = _kind_and_name(text)
    names = _names(rules)
    rule = names["rule"].get(_fold(name)) if wanted != "actor" else None
    actor = names["actor"].get(_fold(name)) if wanted != "rule" else None
    if rule is not None:
        note = f" (to mute the actor instead: actor:{esc(actor)})" if actor else ""
        return Target(f"rule:{rule}", note)
    if actor is not None:
        return Target(f"actor:{actor}", _aliases_note(actor, name, rules))
    return _unknown(name, names, rules, actors=wanted == "actor")


def _kind_and_name(text: str) -> tuple[str, str]:
    """("rule" or "actor" when ``text`` starts with "rule:"/"actor:", else "", the name)."""
    kind, sep, name = text.partition(":")
    wanted = kind.strip().lower() if sep and kind.strip().lower() in ("rule", "actor") else ""
    return (wanted, name.strip()) if wanted else ("", text.strip())


def _aliases_note(actor: str, typed: str, rules: RuleSet) -> str:
    """The actor's other names, which its mute covers too (the name typed first): muting
    "Putin" mutes Russia, and so Moscow and the Kremlin."""
    others: dict[str, str] = {}
    for rule in rules.rules:
        for name in (n for a in rule.actors if a.name == actor for n in a.names):
            others.setdefault(_fold(name), name)
    others.pop(_fold(actor), None)
    # The name typed first; forms of the actor's own name ("Russians") say least, so last.
    names = sorted(
        others.values(),
        key=lambda n: (_fold(n) != _fold(typed), _fold(n).startswith(_fold(actor))),
    )
    if not names:
        return ""
    listed = ", ".join(names[:_ALIASES_SHOWN])
    more = f" and {len(names) - _ALIASES_SHOWN} more" if len(names) > _ALIASES_SHOWN else ""
    return f" The mute covers its other names too: {esc(listed)}{more}."


def _names(rules: RuleSet) -> dict[str, dict[str, str]]:
    """Folded name -> canonical name, for rules and for actors (with their aliases)."""
    actors: dict[str, str] = {}
    for rule in rules.rules:
        for actor in rule.actors:
            for alias in actor.names:
                actors.setdefault(_fold(alias), actor.name)
    return {"rule": {_fold(r.name): r.name for r in rules.rules}, "actor": actors}


def _unknown(
    name: str, names: Mapping[str, Mapping[str, str]], rules: RuleSet, *, actors: bool = False
) -> str:
    every = names["actor"] if actors else {**names["actor"], **names["rule"]}
    close = difflib.get_close_matches(_fold(name)[:200], list(every), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(every[c] for c in close))
    head = f"No {'actor' if actors else 'rule or actor'} ‘{shown(name)}’."
    if suggestions:
        return f"{head} Did you mean {' or '.join(esc(s) for s in suggestions)}?"
    if actors:  # asked for an actor: list actors, not rules
        listed = sorted(set(names["actor"].values()))
        more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
        shown_actors = esc(", ".join(listed[:20])[:1000]) or "(no rule names an actor)"
        return f"{head}\nActors: {shown_actors}{more}"
    return f"{head}\n{_known(rules)}"


def _known(rules: RuleSet) -> str:
    names = ", ".join(rules.names()) or "(none loaded)"
    return f"Rules: {esc(names[:1000])}"


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, as rules match actor names."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


@dataclass(frozen=True)
class Unmute:
    """What /unmute lifts, and the other muted target its bare name names too, if any."""

    target: Target
    other: Target | None = None


def resolve_unmute(text: str, rules: RuleSet, mutes: Mapping[str, datetime]) -> Unmute | str:
    """``/unmute NAME`` resolves NAME as /mute does (a rule before an actor; "rule:" and
    "actor:" pick one), then a mute whose rule or actor is gone from the rules; else the
    reply that suggests names."""
    target = resolve_target(text, rules)
    if isinstance(target, str):
        gone = _muted_named(text, mutes)
        return Unmute(gone) if gone else target
    return Unmute(Target(target.key), _other_muted(text, target, rules, mutes))


def _muted_named(text: str, mutes: Mapping[str, datetime]) -> Target | None:
    """The active mute ``text`` names exactly, a rule before an actor."""
    wanted, name = _kind_and_name(" ".join(text.split()))
    for kind in (wanted,) if wanted else ("rule", "actor"):
        for key in sorted(mutes):
            if key.startswith(f"{kind}:") and _fold(key.partition(":")[2]) == _fold(name):
                return Target(key)
    return None


def _other_muted(
    text: str, target: Target, rules: RuleSet, mutes: Mapping[str, datetime]
) -> Target | None:
    """The muted target of the other kind that a bare name also names ("venezuela": the rule
    and the actor Venezuela), so the reply can say how to lift it."""
    kind = {"rule": "actor", "actor": "rule"}.get(target.key.partition(":")[0])
    if kind is None or _kind_and_name(text)[0]:
        return None
    other = resolve_target(f"{kind}:{text}", rules)
    found = other if isinstance(other, Target) else _muted_named(f"{kind}:{text}", mutes)
    return found if found is not None and found.key in mutes else None


def unmute_reply(request: Unmute, removed: bool) -> str:
    label = esc(request.target.label)
    head = f"🔔 Unmuted {label}." if removed else f"{label} was not muted."
    other = request.other
    if other is None:
        return head
    still = "still " if removed else ""
    return (
        f"{head} The {esc(other.label)} is {still}muted: "
        f"<code>/unmute {esc(other.key)}</code> lifts it."
    )


def format_mutes(mutes: Mapping[str, datetime], now: datetime, tz: ZoneInfo) -> str:
    if not mutes:
        return "Nothing is muted."
    lines = ["<b>Muted</b>"]
    lines += [
        f"• {esc(Target(key).label)} {until_text(until, now, tz)}"
        for key, until in sorted(mutes.items())
    ]
    return fit(lines)


# --- /status, /rules, /feeds ------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Everything /status shows, gathered by the bot from the store and the pipeline."""

    version: str
    started: datetime
    now: datetime
    feeds: Sequence[FeedRow]
    alerts_today: int
    outbox: Mapping[str, int]
    mutes: Mapping[str, datetime]
    rules: int
    next_digest: datetime | None = None
    failing_after: float = PollingSettings.failing_after  # "failing" past it, else "erroring"
    failing_destinations: Sequence[Mapping[str, Any]] = field(default_factory=list)
    # On a store shared by replicas (PostgreSQL): those alive, the elected one first, and
    # the leases each holds. Empty on SQLite, where there is one replica.
    replicas: Sequence[ReplicaRow] = ()
    leases: Sequence[LeaseCount] = ()


def format_status(s: Status, tz: ZoneInfo) -> str:
    enabled = [f for f in s.feeds if f.enabled]
    words = [_feed_word(f, s.now, s.failing_after) for f in enabled]
    failing, erroring, silent = (words.count(w) for w in ("failing", "erroring", "silent"))
    healthy = len(enabled) - failing - erroring - silent
    polls = [f.last_poll_at for f in enabled if f.last_poll_at is not None]
    lines = [
        f"<b>watcher {esc(s.version)}</b> · running since {when(s.started, tz)}",
        f"Feeds: {healthy} healthy, {failing} failing, {erroring} erroring, {silent} silent"
        + (f", {len(s.feeds) - len(enabled)} disabled" if len(s.feeds) > len(enabled) else "")
        + (" (/feeds)" if failing or erroring or silent else ""),
        f"Last poll: {when(max(polls), tz)} ({ago(max(polls), s.now)})"
        if polls
        else "Last poll: none yet",
        f"Alerts today: {s.alerts_today}",
        f"Outbox: {_backlog(s.outbox)}",
        f"Rules: {s.rules}" + _mute_summary(s.mutes, s.now, tz),
    ]
    if s.next_digest is not None:
        lines.append(f"Next digest: {when(s.next_digest, tz)}")
    lines += _replica_lines(s)
    lines += [
        f"⚠️ {esc(d['name'])} failing since {when(d['failing_since'], tz)}: "
        f"{shown(str(d.get('last_error') or ''))}"
        for d in s.failing_destinations
    ]
    return fit(lines)


def _replica_lines(s: Status) -> list[str]:
    """One line per replica alive: its role, the leases it holds and how soon they end."""
    if not s.replicas:
        return []
    lines = [f"Replicas: {len(s.replicas)} alive"]
    for r in s.replicas:
        held = [c for c in s.leases if c.owner == r.id]
        leases = ", ".join(
            f"{c.held} {c.kind} (next ends in {max(0, int((c.oldest - s.now).total_seconds()))}s)"
            for c in held
        )
        role = "elected" if r.leader else "replica"
        lines.append(
            f"· {esc(r.host)} pid {r.pid} ({role}, seen {ago(r.seen_at, s.now)})"
            + (f": {leases}" if leases else "")
        )
    return lines


def _backlog(outbox: Mapping[str, int]) -> str:
    total = sum(outbox.values())
    if not total:
        return "empty"
    waiting = {d: n for d, n in outbox.items() if n}
    if len(waiting) == 1:
        return f"{total} waiting for {esc(next(iter(waiting)))}"
    parts = ", ".join(f"{n} for {esc(d)}" for d, n in sorted(waiting.items()))
    return f"{total} waiting: {parts}"


def _mute_summary(mutes: Mapping[str, datetime], now: datetime, tz: ZoneInfo) -> str:
    rules = sum(k.startswith("rule:") for k in mutes)
    actors = sum(k.startswith("actor:") for k in mutes)
    parts = [f"{rules} muted"] if rules else []
    parts += [f"{plural(actors, 'actor')} muted"] if actors else []
    if "all" in mutes:
        parts.append(f"⏸ all alerts paused {until_text(mutes['all'], now, tz)}")
    return "".join(f" · {p}" for p in parts)


def _silent(feed: FeedRow) -> bool:
    return (feed.reported or "").startswith("silent")


def _feed_word(feed: FeedRow, now: datetime, failing_after: float) -> str:
    """feed_status's word, from what the bot has: how long the feed has failed, and the last
    health report for silence."""
    since = feed.failing_since
    past = since is not None and (now - since).total_seconds() > failing_after
    problem = "failing" if past else (feed.reported if since is None and _silent(feed) else None)
    return feed_status(problem, enabled=feed.enabled, failures=int(since is not None))


def format_rules(
    rules: RuleSet,
    *,
    mutes: Mapping[str, datetime],
    alerts: Mapping[str, int],
    not_relevant: Mapping[str, int],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    if not rules.rules:
        return "No rules are loaded. Add YAML files to the rules folder."
    lines = ["<b>Rules</b> (alerts in the last 24 h · marked not relevant)"]
    if "all" in mutes:
        lines.append(f"⏸ All alerts are paused {until_text(mutes['all'], now, tz)}.")
    for rule in rules.rules:
        until = mutes.get(f"rule:{rule.name}")
        state = f"🔕 muted {until_text(until, now, tz)}" if until else "active"
        lines.append(
            f"• <b>{esc(rule.name)}</b> ({rule.priority}): {state} · "
            f"{plural(alerts.get(rule.name, 0), 'alert')} · "
            f"{not_relevant.get(rule.name, 0)} not relevant"
        )
    actors = sorted((k[6:], u) for k, u in mutes.items() if k.startswith("actor:"))
    lines += [f"🔕 actor {esc(name)} {until_text(u, now, tz)}" for name, u in actors]
    return fit(lines)


def format_feeds(
    feeds: Iterable[FeedRow],
    now: datetime,
    tz: ZoneInfo,
    failing_after: float = PollingSettings.failing_after,
) -> str:
    enabled = [f for f in feeds if f.enabled]
    bad = [(f, w) for f in enabled if (w := _feed_word(f, now, failing_after)) != "ok"]
    if not bad:
        return _all_healthy(len(enabled))
    need = "needs" if len(bad) == 1 else "need"
    lines = [f"<b>{len(bad)} of {plural(len(enabled), 'feed')} {need} attention</b>"]
    lines += [_feed_line(f, word, tz) for f, word in bad]
    return fit(lines)


def _all_healthy(count: int) -> str:
    if count == 0:
        return "No feed is enabled."
    return "The 1 feed is healthy." if count == 1 else f"All {count} feeds are healthy."


def _feed_line(feed: FeedRow, word: str, tz: ZoneInfo) -> str:
    name = f'<a href="{html.escape(feed.url, quote=True)}">{esc(feed.name)}</a>'
    if feed.failing_since is None:
        return f"• {name}: {shown(feed.reported or 'silent')}"
    failures = f"{feed.failures} failure{'s' * (feed.failures != 1)}"
    return (
        f"• {name}: {word} since {when(feed.failing_since, tz)} "
        f"({failures}): {esc((feed.last_error or 'unknown error')[:300])}"
    )


# --- /test ------------------------------------------------------------------------------

_EVIDENCE_PER_RULE = 6


def held_by_mutes(report: Mapping[str, Any], muted: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Each matched rule of an explain() report whose alert the active mutes (the pause
    among them) would hold, with every mute that holds it, decided as the pipeline decides
    (alerts.plan.mutes_holding)."""
    matched = (v for v in report["verdicts"] if v["matched"])
    held = {v["rule"]: mutes_holding(_report_match(v), muted) for v in matched}
    return {rule: keys for rule, keys in held.items() if keys}


def _report_match(verdict: Mapping[str, Any]) -> Match:
    """A report's verdict as the Match the pipeline decides on (priority and destinations do
    not change whether a mute holds it)."""
    evidence = tuple(Evidence(**e) for e in verdict["evidence"])
    return Match(
        verdict["rule"], verdict["score"], verdict["threshold"], evidence, "normal", (),
        tuple(verdict["reasons"]),
    )  # fmt: skip


def hold_reasons(
    held: Mapping[str, Sequence[str]], mutes: Mapping[str, datetime], now: datetime, tz: ZoneInfo
) -> dict[str, str]:
    """Rule -> why its alert would be held, with the end of each mute and how to lift it."""
    return {
        rule: "; ".join(_hold(key, mutes[key], now, tz) for key in keys)
        for rule, keys in held.items()
    }


def _hold(key: str, until: datetime, now: datetime, tz: ZoneInfo) -> str:
    if key == "all":
        how = "" if _open_ended(until, now) else " (/resume)"  # else until_text says /resume
        return f"all alerts are paused {until_text(until, now, tz)}{how}"
    return (
        f"{esc(Target(key).label)} is muted {until_text(until, now, tz)} "
        f"(<code>/unmute {esc(key)}</code>)"
    )


def format_test(report: Mapping[str, Any], held: Mapping[str, str] | None = None) -> str:
    """An explain() report as a reply: the verdict first (with the mutes that would hold an
    alert: ``held``, rule -> why, from hold_reasons), then each rule's evidence."""
    source = str(report["text_source"]) + (
        f" ({report['fallback_reason']})" if report.get("fallback_reason") else ""
    )
    lines = [
        f"🧪 <b>{esc((report['title'] or '(untitled)')[:300])}</b>",
        f"language {esc(report['language'] or '?')} · {report['length']:,} characters "
        f"from {esc(source[:200])}",
        *(
            [f"page capped before extraction: {esc(report['page_cap'])}"]
            if report.get("page_cap")
            else []
        ),
        *_verdict(report, held or {}),
    ]
    for v in sorted(report["verdicts"], key=lambda v: not v["matched"]):  # matches first
        lines += _verdict_lines(v)
    return fit(lines)


def _verdict(report: Mapping[str, Any], held: Mapping[str, str]) -> list[str]:
    matched = [v["rule"] for v in report["verdicts"] if v["matched"]]
    if matched and report.get("blocked"):
        return [f"<b>🚫 blocked by {esc(report['blocked'])}: no alert would be sent</b>"]
    if not matched:
        return ["<b>❌ no rule matched: no alert would be sent</b>"]
    sending = [r for r in matched if r not in held]
    if sending:
        head = f"✅ would alert: {', '.join(sending)}"
    else:
        head = f"🔕 matched {', '.join(matched)}, but no alert would be sent"
    return [f"<b>{esc(head)}</b>"] + [
        f"🔕 {esc(rule)} held: {held[rule]}" for rule in matched if rule in held
    ]


def _cap_line(report: Mapping[str, Any]) -> list[str]:
    cap = report.get("page_cap")
    return [f"page capped before extraction: {esc(cap)}"] if cap else []


def _verdict_lines(v: Mapping[str, Any]) -> list[str]:
    head = "MATCH" if v["matched"] else "no match"
    lines = [
        "",
        f"<b>{esc(v['rule'])}</b>: {head} (score {v['score']:g}, threshold {v['threshold']:g})",
    ]
    lines += [f"  {esc(str(reason)[:300])}" for reason in v["reasons"][:5]]
    seen: set[str] = set()
    for e in v["evidence"]:  # one quote per term
        if e["term"] in seen or len(seen) >= _EVIDENCE_PER_RULE:
            continue
        seen.add(e["term"])
        sentence = _clip(str(e["sentence"]), 140)
        lines.append(
            f"  • <b>{esc(evidence_name(e))}</b>: ‘{esc(_clip(str(e['matched']), 60))}’"
            f" in {esc(e['where'])}: <i>{esc(sentence)}</i>"
        )
    return lines


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
