"""The outbox sender: drains each destination's queue in order, retrying until delivered."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from watcher.alerts.buttons import alert_buttons
from watcher.alerts.compose import (
    SHOWN_SOURCES,
    Extras,
    alert_subject,
    plural,
    render,
    render_digest,
)
from watcher.alerts.templates import Templates, TemplatesSource
from watcher.channels.base import Channel, OutgoingMessage
from watcher.channels.registry import spec_for
from watcher.channels.spec import split_destination
from watcher.clock import Clock
from watcher.errors import ConfigError, DeliveryError, StoreError
from watcher.store.outbox import DeliveryJob
from watcher.store.runner import StoreRunner

if TYPE_CHECKING:
    from watcher.metrics import Metrics

log = logging.getLogger(__name__)

_FIRST_RETRY = 5.0
# A drain call stops after this many rounds so one busy destination cannot hog the loop.
_MAX_ROUNDS = 200


class Delivery(Enum):
    """What one attempt at the head of a destination's queue came to."""

    SENT = "sent"  # delivered, or nothing left to send
    FAILED = "failed"  # failed for good: `watcher alerts retry` resends it
    RETRYING = "retrying"  # failed for now: tried again after a backoff


@dataclass(frozen=True)
class SendResult:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    # destinations reported failing that delivered again in this drain
    recovered: tuple[str, ...] = ()

    @classmethod
    def of(cls, outcomes: Counter[Delivery], recovered: Iterable[str] = ()) -> SendResult:
        counts = outcomes[Delivery.SENT], outcomes[Delivery.FAILED], outcomes[Delivery.RETRYING]
        return cls(*counts, tuple(sorted(recovered)))


def retry_delay(failures: int, retry_after: float | None, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter, at least what the remote side asked for."""
    backoff = min(cap, _FIRST_RETRY * 2.0 ** max(failures - 1, 0)) * (0.75 + 0.25 * rng.random())
    return max(backoff, retry_after or 0.0)


def compose(
    job: DeliveryJob,
    tz: ZoneInfo,
    now: datetime,
    *,
    bot_buttons: bool = False,
    templates: Templates | None = None,
) -> OutgoingMessage | None:
    """The message for a queued delivery; None when there is nothing left to send (an
    update of an alert that was never delivered). ``bot_buttons`` adds the Telegram bot's
    "Mute rule 24h" and "Not relevant" buttons to alerts whose channel carries buttons;
    ``templates`` lay out the alerts of rules that have one."""
    spec = spec_for(job.destination)
    if job.kind == "digest":
        digest = render_digest(job.payload["items"], tz=tz, now=now)
        data = {"alert_id": job.alert_id, "kind": "digest", "items": job.payload["items"]}
        return replace(digest, data=data)
    if job.kind == "edit":
        return _compose_update(job, tz, bot_buttons, templates)
    silent = job.payload.get("priority") == "low"
    # story_id: a receiver (webhook, alerts.jsonl) threads a story's developments by it
    data = {"alert_id": job.alert_id, "kind": job.alert_kind, "story_id": job.story_id}
    data |= job.payload
    if job.kind == "reply":
        rules = ", ".join(r["name"] for r in job.payload["rules"])
        extras = Extras(headline=f"Story develops ({rules})")
        msg = _render(job.payload, tz, extras, silent, templates)
        msg = replace(msg, reply_to=job.target_remote_id, data=data)
        if job.original_payload and job.destination.startswith("email:"):
            # mail clients that thread by subject (Gmail) need "Re:" and the first subject;
            # other channels' titles (Apprise, webhooks) keep the new article's
            msg = replace(msg, subject=f"Re: {alert_subject(job.original_payload)}")
    else:
        msg = replace(_render(job.payload, tz, Extras(), silent, templates), data=data)
    if bot_buttons and spec is not None and spec.buttons:
        return _with_bot_buttons(msg, job.alert_id, job.payload)
    return msg


def _render(
    payload: dict[str, Any],
    tz: ZoneInfo,
    extras: Extras,
    silent: bool,
    templates: Templates | None,
) -> OutgoingMessage:
    """The alert in its rule's template, or in the built-in layout if it has none or the
    template fails (the alert still goes out; the error names the template's line)."""
    name = templates.for_rules([r["name"] for r in payload["rules"]]) if templates else None
    if templates is None or name is None:
        return render(payload, tz=tz, extras=extras, silent=silent)
    template = functools.partial(templates.render, name)
    try:
        return render(payload, tz=tz, extras=extras, silent=silent, template=template)
    except ConfigError as exc:
        log.error("%s; sent in the built-in layout instead", exc)
        return render(payload, tz=tz, extras=extras, silent=silent)


def _with_bot_buttons(
    msg: OutgoingMessage, alert_id: int, payload: dict[str, Any]
) -> OutgoingMessage:
    return replace(msg, buttons=(*alert_buttons(alert_id, payload["rules"]), *msg.buttons))


def _compose_update(
    job: DeliveryJob, tz: ZoneInfo, bot_buttons: bool, templates: Templates | None
) -> OutgoingMessage | None:
    spec = spec_for(job.destination)
    edits = spec is not None and spec.can_edit and not spec.local
    original = job.original_payload
    if original is None or (edits and job.target_remote_id is None):
        return None
    data: dict[str, Any] = {
        "alert_id": job.alert_id,
        "kind": "sources",
        "story_id": job.story_id,
        "sources": [{"source": s, "url": u} for s, u in job.sources],
        # the story's alert, so a line of alerts.jsonl reads on its own
        **{key: original[key] for key in ("title", "url", "rules", "priority") if key in original},
    }
    if edits:
        msg = _render(original, tz, Extras(sources=job.sources), False, templates)
        msg = replace(msg, edit_of=job.target_remote_id, data=data)
        if bot_buttons and spec is not None and spec.buttons and job.original_alert_id is not None:
            # An edit replaces the keyboard too: keep the original alert's buttons.
            return _with_bot_buttons(msg, job.original_alert_id, original)
        return msg
    names = ", ".join(
        f"{name} ×{count}" if count > 1 else name
        for name, count in Counter(s for s, _ in job.sources).items()
    )
    head = f"↻ {original['title']}: {plural(len(job.sources), 'source', '+')} ({names})"
    # A channel that cannot edit the alert shows the update alone: name the new links (the
    # first few, as the edited alert does).
    links = [(s, u) for s, u in job.sources if u]
    if len(links) > SHOWN_SOURCES:
        more = len(links) - SHOWN_SOURCES
        links = [*links[:SHOWN_SOURCES], (f"and {more} more", "")]
    text = "\n".join([head, *(f"  {s}: {u}" if u else f"  {s}" for s, u in links)])
    html = "\n".join(  # Telegram-flavoured HTML: line breaks, not <br>
        [
            escape(head),
            *(
                f'{escape(s)}: <a href="{escape(u)}">{escape(u)}</a>' if u else escape(s)
                for s, u in links
            ),
        ]
    )
    return OutgoingMessage(
        subject=head,
        html=html,
        text=text,
        link=original["url"],
        edit_of=job.target_remote_id or "story",
        data=data,
    )


def _is_local(destination: str) -> bool:
    spec = spec_for(destination)
    return spec is not None and spec.local


class Sender:
    """Sends the head of every destination's queue, one at a time per destination and
    in order; a failing destination waits with backoff, the others go on."""

    def __init__(
        self,
        db: StoreRunner,
        channels: Mapping[str, Channel],
        *,
        clock: Clock,
        tz: ZoneInfo,
        retry_cap: float,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        bot_buttons: bool = False,
        templates: TemplatesSource | None = None,
    ) -> None:
        self._db = db
        self._templates = templates  # read at each message: a reload takes effect at once
        self._channels = channels
        self._bot_buttons = bot_buttons
        self._metrics = metrics
        self._clock = clock
        self._tz = tz
        self._retry_cap = retry_cap
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        # Destinations in a backoff after a retryable failure, and those of them the service
        # told to wait (retry_after): a delivery through the same service wakes the rest.
        self._backing_off: set[str] = set()
        self._told_to_wait: set[str] = set()
        # Sent, but the store failed to record it (disk full, read-only): job id -> (remote
        # id, when sent). Only the recording is retried, so a store outage does not send the
        # same message again every round; a crash meanwhile sends it once more at most.
        self._unrecorded: dict[int, tuple[DeliveryJob, str | None, datetime]] = {}
        self._stopping = False
        self._recovered: set[str] = set()  # of the drain under way (see SendResult)

    def stop(self) -> None:
        """Start no more sends: a drain under way ends once its current sends are recorded."""
        self._stopping = True

    async def drain(self) -> SendResult:
        """Send until every queue is empty, held, or waiting to retry."""
        return await self._drain(local=False)

    async def drain_local(self) -> SendResult:
        """At a stop, after stop(): write what is queued for the local sinks (console,
        alerts.jsonl). They cannot hang, and a user who stops the daemon for good would
        otherwise never see the alerts its last articles made; remote destinations keep
        theirs for the next start."""
        return await self._drain(local=True)

    async def _drain(self, *, local: bool) -> SendResult:
        totals: Counter[Delivery] = Counter()
        # The local sinks' destinations are their kinds ("console", "jsonl"): named so, the
        # store claims no other (with replicas, a stopping one leaves the rest alone).
        only = [k for k in self._channels if _is_local(k)] if local else None
        async with self._lock:
            self._recovered = set()
            for _ in range(_MAX_ROUNDS):
                if self._stopping and not local:
                    break
                jobs = await self._db(self._db.store.outbox_heads, self._clock.now(), only)
                if not jobs:
                    break
                totals.update(await asyncio.gather(*(self._deliver(job) for job in jobs)))
        return SendResult.of(totals, self._recovered)

    async def _deliver(self, job: DeliveryJob) -> Delivery:
        if job.id in self._unrecorded:
            return await self._record_sent(*self._unrecorded[job.id])
        now = self._clock.now()
        kind, target = split_destination(job.destination)
        try:
            message = compose(
                job,
                self._tz,
                now,
                bot_buttons=self._bot_buttons,
                templates=self._templates.templates if self._templates else None,
            )
            if message is None:
                await self._record_sent(job, None, now)
                return Delivery.SENT
            channel = self._channels.get(kind)
            if channel is None:
                raise DeliveryError(f"no {kind} channel is configured", permanent=True)
            delivered = await channel.send(target, message)
        except DeliveryError as exc:
            return await self._failed(job, exc)
        except Exception as exc:
            # A bug in composing or in a channel must not block the destination's queue.
            log.exception("alert %d to %s: unexpected error", job.alert_id, job.destination)
            reason = f"internal error: {exc.__class__.__name__}: {exc}"
            return await self._failed(job, DeliveryError(reason, permanent=True))
        self._unrecorded[job.id] = (job, delivered.remote_id, self._clock.now())
        sent = await self._record_sent(*self._unrecorded[job.id])
        await self._wake_others(job)
        return sent

    async def _wake_others(self, job: DeliveryJob) -> None:
        """A delivery through a shared service (every Telegram chat goes through one Bot
        API) shows the service works: the other destinations waiting out a backoff (up to
        retry_cap) are tried now, except those the service itself asked to wait."""
        destination = job.destination
        recovered = job.attempts > 0 or destination in self._backing_off
        self._backing_off.discard(destination)
        self._told_to_wait.discard(destination)
        spec = spec_for(destination)
        if spec is None or not spec.shared:
            return
        prefix = f"{spec.kind}:"
        if not recovered and not any(d.startswith(prefix) for d in self._backing_off):
            return  # nothing of this service known to wait: no store call per delivery
        woken: list[str] = []
        # Only a shortcut: the message is sent and recorded, and a store that fails now is
        # reported by the next call that needs it; the others then wait out their backoff.
        with contextlib.suppress(StoreError):
            woken = await self._db(
                self._db.store.wake_destinations,
                spec.kind,
                self._clock.now(),
                frozenset(self._told_to_wait),  # read in the store thread: not the live set
            )
        self._backing_off.difference_update(woken)
        if woken:
            log.info("%s works: retrying %s now", destination, ", ".join(woken))

    async def record_unrecorded(self) -> list[int]:
        """Record the sends the store refused earlier (at a stop, so a restart does not send
        them again); returns the ids of outbox jobs still unrecorded (StoreError each)."""
        async with self._lock:
            for job, remote_id, when in list(self._unrecorded.values()):
                with contextlib.suppress(StoreError):
                    await self._record_sent(job, remote_id, when)
            return sorted(self._unrecorded)

    async def _record_sent(
        self, job: DeliveryJob, remote_id: str | None, when: datetime
    ) -> Delivery:
        if await self._db(self._db.store.delivery_sent, job.id, job.destination, remote_id, when):
            self._recovered.add(job.destination)
        self._unrecorded.pop(job.id, None)
        if self._metrics is not None:
            await self._count_sent(job, self._metrics)
        return Delivery.SENT

    async def _count_sent(self, job: DeliveryJob, metrics: Metrics) -> None:
        latency = None
        if job.kind in ("send", "reply"):  # edits and digests are late by design
            first_seen = await self._db(self._db.store.alert_first_seen, job.alert_id)
            if first_seen is not None:
                latency = (self._clock.now() - first_seen).total_seconds()
        metrics.delivered(job.destination, latency)

    async def _failed(self, job: DeliveryJob, exc: DeliveryError) -> Delivery:
        now = self._clock.now()
        if self._metrics is not None:
            self._metrics.delivery_failed(job.destination, final=exc.permanent)
        if exc.permanent:
            self._backing_off.discard(job.destination)
            await self._db(
                self._db.store.delivery_failed,
                job.id,
                job.destination,
                exc.reason,
                now,
                retry_at=None,
            )
            log.error(
                "alert %d to %s failed for good: %s (watcher alerts retry resends it)",
                job.alert_id,
                job.destination,
                exc.reason,
            )
            return Delivery.FAILED
        failures = job.attempts + 1
        self._backing_off.add(job.destination)
        if exc.retry_after is not None:  # flood control: the service told this one to wait
            self._told_to_wait.add(job.destination)
        delay = retry_delay(failures, exc.retry_after, self._retry_cap, self._rng)
        retry_at = now + timedelta(seconds=delay)
        await self._db(
            self._db.store.delivery_failed,
            job.id,
            job.destination,
            exc.reason,
            now,
            retry_at=retry_at,
        )
        log.warning(
            "alert %d to %s: %s; retrying in %.0f s",
            job.alert_id,
            job.destination,
            exc.reason,
            delay,
        )
        return Delivery.RETRYING
