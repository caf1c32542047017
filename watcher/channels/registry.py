"""The registered channel specs, and what they answer together: channels, defaults, checks."""

from __future__ import annotations

from watcher.channels import apprise, console, email, telegram, webhook
from watcher.channels.base import Channel
from watcher.channels.spec import ChannelSpec, split_destination
from watcher.config import Config

# Adding a channel: its module declares SPEC, and one line here registers it.
SPECS: tuple[ChannelSpec, ...] = (
    console.CONSOLE,
    console.JSONL,
    telegram.SPEC,
    email.SPEC,
    apprise.SPEC,
    webhook.SPEC,
)
_BY_KIND = {spec.kind: spec for spec in SPECS}


def spec_for(destination: str) -> ChannelSpec | None:
    """The spec of ``destination``'s kind ("telegram:-100123" -> telegram), None if unknown."""
    return _BY_KIND.get(split_destination(destination)[0])


def build_channels(config: Config) -> dict[str, Channel]:
    """Every channel that is configured; raises ConfigError for a half-configured one."""
    return {spec.kind: spec.build(config) for spec in SPECS if spec.configured(config)}


def configured_kinds(config: Config) -> frozenset[str]:
    """The kinds of channel the config turns on (rules routing elsewhere reach nothing)."""
    return frozenset(spec.kind for spec in SPECS if spec.configured(config))


def default_destinations(config: Config) -> tuple[str, ...]:
    """Where a rule without `destinations` sends: every remote channel's configured targets."""
    return tuple(d for spec in SPECS if not spec.local for d in spec.defaults(config))


def local_destinations(config: Config) -> tuple[str, ...]:
    """The local sinks (console, JSON lines) every alert goes to; the fallback sink also
    whenever no remote channel has a destination."""
    remote = bool(default_destinations(config))
    return tuple(
        d
        for spec in SPECS
        if spec.local
        for d in (spec.defaults(config) or ((spec.kind,) if spec.fallback and not remote else ()))
    )


def updatable_kinds() -> frozenset[str]:
    """Destination kinds that get story updates ("+3 sources"): the ones that can edit."""
    return frozenset(spec.kind for spec in SPECS if spec.can_edit)


def destination_problem(destination: str) -> str:
    """Why a rule cannot name ``destination`` ("" when it can), with a well-formed example."""
    spec = spec_for(destination)
    if spec is None or not spec.routable:
        kinds = ", ".join(s.example for s in SPECS if s.routable)
        kind = split_destination(destination)[0]
        return f"unknown kind {kind!r} (use {kinds})"
    if not spec.check(destination):
        return f"{destination!r} is malformed (expected {spec.example})"
    return ""
