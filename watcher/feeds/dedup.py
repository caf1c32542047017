"""Pure decisions on a polled feed's entries: new, updated or known, and first-poll backfill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher.feeds.identity import content_fingerprint, entry_keys
from watcher.types import Entry, Known, NewEntry, UpdatedEntry


@dataclass(frozen=True)
class Classified:
    new: tuple[NewEntry, ...]
    updated: tuple[UpdatedEntry, ...]
    unchanged: tuple[int, ...]  # entry ids seen again


@dataclass(frozen=True)
class Identity:
    """What ``classify`` needs of one entry; computed where parsing runs, off the event loop."""

    keys: tuple[str, ...]
    fingerprint: str


def all_keys(entries: Sequence[Entry]) -> set[str]:
    return {key for entry in entries for key in entry_keys(entry)}


def identify(entries: Sequence[Entry]) -> tuple[Identity, ...]:
    """Each entry's identity keys, without links several distinct GUIDs share or GUIDs
    several distinct links share, and its content fingerprint, in document order."""
    keys = [entry_keys(entry) for entry in entries]
    shared = _shared(keys, "link:", "guid:") | _shared(keys, "guid:", "link:")
    return tuple(
        Identity(_unshared(entry, shared), content_fingerprint(e))
        for e, entry in zip(entries, keys, strict=True)
    )


def _unshared(keys: tuple[str, ...], shared: set[str]) -> tuple[str, ...]:
    """``keys`` without the shared ones; all of them when every one is shared (an entry
    with no key at all would be new on every poll)."""
    return tuple(k for k in keys if k not in shared) or keys


def classify(
    entries: Sequence[Entry],
    known: Mapping[str, Known],
    identities: Sequence[Identity] | None = None,
) -> Classified:
    """Split entries into new, updated (known, but content changed) and unchanged.

    An entry is known when ANY of its keys (GUID, canonical link) is, so a publisher that
    changes GUIDs or link tracking parameters causes no repeat. Duplicates inside one
    document count once. ``identities`` is ``identify(entries)``, when already computed.
    """
    new: list[NewEntry] = []
    updated: list[UpdatedEntry] = []
    unchanged: list[int] = []
    batch: set[str] = set()
    for entry, identity in zip(entries, identities or identify(entries), strict=True):
        keys, fingerprint = identity.keys, identity.fingerprint
        if batch.intersection(keys):
            continue
        batch.update(keys)
        hit = next((known[k] for k in keys if k in known), None)
        if hit is None:
            new.append(NewEntry(entry, keys, fingerprint))
        elif hit.fingerprint != fingerprint:
            updated.append(UpdatedEntry(hit.entry_id, entry, keys, fingerprint))
        else:
            unchanged.append(hit.entry_id)
    return Classified(tuple(new), tuple(updated), tuple(unchanged))


def _shared(keys: Sequence[tuple[str, ...]], kind: str, other: str) -> set[str]:
    """Keys of ``kind`` that several entries with distinct keys of the ``other`` kind share:
    a link every item points at (a section page), or a GUID a broken feed gives every item.
    Such a key identifies nothing, so only the other kind counts for those entries."""
    others_by_key: dict[str, set[str]] = {}
    for entry in keys:
        others = {k for k in entry if k.startswith(other)}
        for key in entry:
            if key.startswith(kind) and others:
                others_by_key.setdefault(key, set()).update(others)
    return {key for key, others in others_by_key.items() if len(others) > 1}


def split_backfill(
    new: Sequence[NewEntry], now: datetime, *, items: int, window: float
) -> tuple[list[NewEntry], list[NewEntry]]:
    """On a feed's first poll, keep only its newest ``items`` entries published within
    ``window`` seconds; the rest are recorded as seen, so adding a feed does not flood."""
    cutoff = now - timedelta(seconds=window)
    ranked = sorted(enumerate(new), key=lambda pair: _recency(pair, cutoff), reverse=True)
    keep_ids = {i for i, n in ranked[:items] if _recent(n.entry, cutoff)}
    keep = [n for i, n in enumerate(new) if i in keep_ids]
    skip = [n for i, n in enumerate(new) if i not in keep_ids]
    return keep, skip


def _date(entry: Entry) -> datetime | None:
    return entry.published or entry.updated


def _recent(entry: Entry, cutoff: datetime) -> bool:
    when = _date(entry)
    return when is None or when >= cutoff


def _recency(pair: tuple[int, NewEntry], cutoff: datetime) -> tuple[datetime, int]:
    # Undated entries keep document order (feeds list newest first) and count as recent.
    index, item = pair
    return (_date(item.entry) or cutoff, -index)
