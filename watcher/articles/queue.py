"""The article queue: which pending entry to fetch next, fairly across feeds and hosts."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# How deep into one feed's lane to look for an item whose host is free.
_SCAN = 32


def host_key(url: str | None) -> str:
    """The host and port an article fetch goes to ("" when there is nothing to fetch)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    return f"{(parts.hostname or '').lower()}:{port}"


@dataclass
class _Lane(Generic[T]):
    """One feed's queued items, newest (highest id) first."""

    keys: list[int] = field(default_factory=list)  # -id, ascending
    items: list[tuple[str, T]] = field(default_factory=list)  # (host, item), same order


class ArticleQueue(Generic[T]):
    """Pending work in two classes: fresh (found by this run's regular polls) before the
    rest (a new feed's first items, entries left pending by an earlier run). Within a class
    feeds take turns, newest entry first within a feed, and an item whose host is busy is
    passed over for the next one, and a feed with enough work in progress waits its turn,
    so one slow host or one flooding feed delays nobody else.

    Pure and synchronous: the pipeline adds items and asks for the next one it may start.
    """

    def __init__(self) -> None:
        self._classes: tuple[dict[int, _Lane[T]], dict[int, _Lane[T]]] = ({}, {})
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids

    def ids(self) -> list[int]:
        """The ids of every queued item."""
        return list(self._ids)

    def add(self, item_id: int, feed_id: int, url: str | None, item: T, *, fresh: bool) -> bool:
        """Queue ``item``; False (and nothing changes) when its id is already queued."""
        if item_id in self._ids:
            return False
        lanes = self._classes[0 if fresh else 1]
        lane = lanes.setdefault(feed_id, _Lane())
        at = bisect.bisect(lane.keys, -item_id)
        lane.keys.insert(at, -item_id)
        lane.items.insert(at, (host_key(url), item))
        self._ids.add(item_id)
        return True

    def take(
        self,
        host_free: Callable[[str], bool],
        feed_free: Callable[[int], bool] = lambda _: True,
        *,
        fresh_only: bool = False,
    ) -> T | None:
        """The next item to start, removed from the queue, or None when every queued item
        waits for a busy host or feed (or nothing is queued); with ``fresh_only``, only a
        fresh one."""
        for lanes in self._classes[:1] if fresh_only else self._classes:
            for feed_id in list(lanes):
                lane = lanes.pop(feed_id)
                found = self._take_from(lane, host_free) if feed_free(feed_id) else None
                if lane.items:
                    lanes[feed_id] = lane  # back in at the end: feeds take turns
                if found is not None:
                    return found
        return None

    def _take_from(self, lane: _Lane[T], host_free: Callable[[str], bool]) -> T | None:
        for index, (host, item) in enumerate(lane.items[:_SCAN]):
            if host_free(host):
                self._ids.discard(-lane.keys[index])
                del lane.keys[index], lane.items[index]
                return item
        return None
