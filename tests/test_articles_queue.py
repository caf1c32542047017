"""The article queue's order: fresh first, feeds in turn, newest first, busy hosts skipped."""

from __future__ import annotations

from watcher.articles.queue import ArticleQueue, host_key


def _drain(queue: ArticleQueue[str], busy: frozenset[str] = frozenset()) -> list[str]:
    taken = []
    while (item := queue.take(lambda host: host not in busy)) is not None:
        taken.append(item)
    return taken


def test_feeds_take_turns_and_a_flood_does_not_delay_another_feed() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    for i in range(1, 1001):
        queue.add(i, 1, f"http://flood.test/{i}", f"flood-{i}", fresh=True)
    queue.add(5000, 2, "http://calm.test/story", "calm", fresh=True)
    assert _drain(queue)[:2] in (["flood-1000", "calm"], ["calm", "flood-1000"])


def test_fresh_items_come_before_backfill_and_retries() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    for i in range(1, 300):
        queue.add(i, 1, f"http://old.test/{i}", f"old-{i}", fresh=False)
    queue.add(400, 2, "http://news.test/breaking", "breaking", fresh=True)
    assert _drain(queue)[0] == "breaking"


def test_newest_first_within_a_feed_and_each_id_once() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    for i in (3, 1, 2):
        assert queue.add(i, 1, "http://a.test/", f"a{i}", fresh=True)
    assert not queue.add(2, 1, "http://a.test/", "again", fresh=True)
    assert len(queue) == 3 and 2 in queue
    assert _drain(queue) == ["a3", "a2", "a1"]
    assert len(queue) == 0


def test_a_busy_host_is_passed_over_without_losing_its_items() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    for i in range(40):
        queue.add(i, 1, f"http://silent.test/{i}", f"silent-{i}", fresh=True)
    queue.add(100, 2, "http://healthy.test/story", "story", fresh=True)
    assert _drain(queue, frozenset({"silent.test:80"})) == ["story"]
    assert len(queue) == 40
    assert len(_drain(queue)) == 40


def test_mixed_hosts_in_one_feed_skip_only_the_busy_host() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    queue.add(2, 1, "http://slow.test/x", "slow", fresh=True)
    queue.add(1, 1, "https://fast.test/y", "fast", fresh=True)
    assert queue.take(lambda host: host != "slow.test:80") == "fast"


def test_host_key() -> None:
    assert host_key("http://Example.ORG/a") == "example.org:80"
    assert host_key("https://example.org:8443/a") == "example.org:8443"
    assert host_key(None) == host_key("") == ""
    assert host_key("http://[::1]:bad/") == ""


def test_a_feed_with_enough_in_progress_waits_its_turn() -> None:
    queue: ArticleQueue[str] = ArticleQueue()
    for i in range(10):
        queue.add(i, 1, f"http://flood.test/{i}", f"flood-{i}", fresh=True)
    queue.add(100, 2, "http://other.test/a", "other", fresh=True)
    assert queue.take(lambda _: True, lambda feed: feed != 1) == "other"
    assert queue.take(lambda _: True, lambda feed: feed != 1) is None
    assert queue.take(lambda _: True) == "flood-9"


def test_fresh_only_takes_no_backfill() -> None:
    """Once the pipeline holds enough entries in progress, only fresh ones may start."""
    queue: ArticleQueue[str] = ArticleQueue()
    queue.add(1, 1, "http://old.test/1", "backfill", fresh=False)
    assert queue.take(lambda _: True, fresh_only=True) is None
    queue.add(2, 2, "http://new.test/2", "fresh", fresh=True)
    assert queue.take(lambda _: True, fresh_only=True) == "fresh"
    assert queue.take(lambda _: True) == "backfill"
