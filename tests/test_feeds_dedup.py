"""Pure entry decisions: new, updated or known, and the first-poll backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.feeds.dedup import classify, split_backfill
from watcher.feeds.identity import content_fingerprint, entry_keys
from watcher.types import Entry, Known

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _entry(
    n: int,
    *,
    guid: str | None = None,
    link: str | None = None,
    title: str = "",
    hours_ago: float | None = 1,
) -> Entry:
    published = NOW - timedelta(hours=hours_ago) if hours_ago is not None else None
    return Entry(
        guid=guid if guid is not None else f"g{n}",
        link=link if link is not None else f"https://news.example/a/{n}",
        title=title or f"Story {n}",
        summary="s",
        content="",
        author="",
        published=published,
        updated=None,
        language="en",
    )


def _known(*entries: Entry) -> dict[str, Known]:
    return {
        k: Known(i, content_fingerprint(e)) for i, e in enumerate(entries, 1) for k in entry_keys(e)
    }


def test_new_and_unchanged() -> None:
    old = _entry(1)
    result = classify([_entry(2), old], _known(old))
    assert [n.entry.guid for n in result.new] == ["g2"]
    assert result.unchanged == (1,)


def test_changed_guid_with_same_link_is_not_new() -> None:
    old = _entry(1)
    result = classify([_entry(1, guid="new-guid")], _known(old))
    assert result.new == ()


def test_tracking_parameters_on_link_are_not_new() -> None:
    old = _entry(1, guid="")
    moved = _entry(1, guid="", link="https://NEWS.example/a/1?utm_source=rss#top")
    assert classify([moved], _known(old)).new == ()


def test_edited_entry_is_updated_not_new() -> None:
    old = _entry(1)
    result = classify([_entry(1, title="Story 1, corrected")], _known(old))
    assert result.new == () and [u.entry_id for u in result.updated] == [1]


def test_duplicates_inside_one_document_count_once() -> None:
    assert len(classify([_entry(1), _entry(1)], {}).new) == 1


def test_items_sharing_a_section_link_stay_distinct() -> None:
    section = "https://news.example/live"
    items = [_entry(n, link=section) for n in range(3)]
    assert len(classify(items, {}).new) == 3


def test_items_sharing_one_guid_stay_distinct_by_their_links() -> None:
    # A broken feed that gives every item the same GUID: the links tell them apart, now
    # and on the next poll, when the first item is known by its link.
    items = [_entry(n, guid="same-for-all") for n in range(3)]
    first = classify(items, {})
    assert len(first.new) == 3
    known = {k: Known(i, n.fingerprint) for i, n in enumerate(first.new, 1) for k in n.keys}
    again = classify([*items, _entry(3, guid="same-for-all")], known)
    assert [n.entry.link for n in again.new] == ["https://news.example/a/3"]
    assert sorted(again.unchanged) == [1, 2, 3]


def test_an_entry_whose_every_key_is_shared_keeps_them_and_is_not_new_again() -> None:
    tangled = [
        _entry(1, guid="G", link="https://news.example/L"),
        _entry(2, guid="G", link="https://news.example/L2"),
        _entry(3, guid="G2", link="https://news.example/L"),
    ]
    first = classify(tangled, {})
    assert all(n.keys for n in first.new)
    known = {k: Known(i, n.fingerprint) for i, n in enumerate(first.new, 1) for k in n.keys}
    assert classify(tangled, known).new == ()


def test_backfill_keeps_only_newest_recent_items() -> None:
    items = [_entry(n, hours_ago=h) for n, h in enumerate([1, 2, 30, 3, 4])]
    new = classify(items, {}).new
    keep, skip = split_backfill(new, NOW, items=3, window=86400)
    assert [k.entry.guid for k in keep] == ["g0", "g1", "g3"]
    assert [s.entry.guid for s in skip] == ["g2", "g4"]
    old_only = classify([_entry(9, hours_ago=48)], {}).new
    assert split_backfill(old_only, NOW, items=3, window=86400)[0] == []


def test_backfill_of_undated_items_keeps_document_order() -> None:
    items = [_entry(n, hours_ago=None) for n in range(5)]
    keep, _ = split_backfill(classify(items, {}).new, NOW, items=2, window=86400)
    assert [k.entry.guid for k in keep] == ["g0", "g1"]
