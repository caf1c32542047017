"""Test alerts: one message to each destination the alerts go to, proving the setup works."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from watcher.channels.base import Channel, OutgoingMessage
from watcher.channels.registry import default_destinations, destination_problem, spec_for
from watcher.channels.spec import split_destination
from watcher.config import Config
from watcher.errors import DeliveryError
from watcher.rules.model import Rule

TEST_KIND = "test"  # data["kind"] of a test message: webhooks post it as event "test"


@dataclass(frozen=True)
class Probe:
    """What happened to one destination's test message."""

    destination: str
    delivered: bool
    detail: str  # the remote id when delivered ("" if the channel has none), else the error
    retryable: bool = False  # the error may pass by itself (a timeout, a 5xx)


def routes(config: Config, rules: Iterable[Rule]) -> dict[str, tuple[str, ...]]:
    """Each remote destination alerts go to -> the rules sending there, in the order the
    config and rules name them. A rule without ``destinations`` sends to the defaults; the
    local sinks (console, alerts.jsonl) are left out: a test line there would read as an
    alert to whatever consumes the file."""
    defaults = default_destinations(config)
    found: dict[str, list[str]] = {d: [] for d in defaults}
    for rule in rules:
        for destination in rule.destinations or defaults:
            spec = spec_for(destination)
            if spec is not None and not spec.local:
                found.setdefault(destination, []).append(rule.name)
    return {d: tuple(names) for d, names in found.items()}


def problems(destinations: Sequence[str], configured: frozenset[str]) -> list[str]:
    """Why each named destination cannot be tested: malformed, an unknown kind, or a
    channel the config does not turn on."""
    found = []
    for destination in destinations:
        problem = destination_problem(destination)
        kind = split_destination(destination)[0]
        if problem:
            found.append(f"{destination}: {problem}")
        elif kind not in configured:
            found.append(f"{destination}: no {kind} channel is configured (see README, {kind})")
    return found


def message(rules: Sequence[str], *, host: str, now: datetime) -> OutgoingMessage:
    """The test message for a destination that ``rules`` send to."""
    when = now.strftime("%Y-%m-%d %H:%M %Z").strip()
    if rules:
        which = f"Alerts of {len(rules)} rule{'s' if len(rules) != 1 else ''} come here: "
        routed = which + ", ".join(rules) + "."
    else:
        routed = "No rule sends its alerts here yet (rule `destinations`, or the defaults)."
    lines = (
        f"Sent by watcher send-test from {host} at {when}.",
        routed,
        "Quiet hours, mutes and the rate limit do not apply to this message.",
    )
    title = "watcher test alert"
    return OutgoingMessage(
        subject=title,
        html="\n".join([f"<b>{title}</b>", *(html.escape(line, quote=False) for line in lines)]),
        text="\n".join([title, *lines]),
        link=None,
        data={"kind": TEST_KIND, "rules": list(rules), "host": host},
    )


async def send_each(
    channels: Mapping[str, Channel], messages: Mapping[str, OutgoingMessage]
) -> list[Probe]:
    """Send each destination its message, one after the other (a chat's rate limit and the
    order of the report); every outcome is returned, none raised."""
    results = []
    for destination, outgoing in messages.items():
        kind, target = split_destination(destination)
        channel = channels.get(kind)
        if channel is None:
            results.append(Probe(destination, False, f"no {kind} channel is configured"))
            continue
        try:
            delivered = await channel.send(target, outgoing)
        except DeliveryError as exc:
            results.append(Probe(destination, False, exc.reason, retryable=not exc.permanent))
            continue
        results.append(Probe(destination, True, delivered.remote_id or ""))
    return results
