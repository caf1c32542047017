"""Entry identity: canonical URLs, identity keys and content fingerprints."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.feeds.identity import (
    canonical_url,
    content_fingerprint,
    entry_keys,
    feed_url_key,
)
from watcher.types import Entry

ENTRY = Entry(
    guid="tag:news.example.org,2024:42",
    link="https://news.example.org/2024/05/story.html?utm_source=rss&id=7",
    title="Talks resume",
    summary="Both sides met.",
    content="Both sides met on Monday.",
    author="Ana",
    published=datetime(2024, 5, 6, 10, 0, tzinfo=UTC),
    updated=None,
    language="en",
)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        # tracking parameters go, whatever their case; the rest are sorted
        (
            "https://e.com/a?utm_source=rss&utm_MEDIUM=x&b=2&fbclid=1&a=1&gclid=2&CMP=share",
            "https://e.com/a?a=1&b=2",
        ),
        (
            "https://e.com/a?mc_cid=1&mc_eid=2&igshid=3&ref=tw&ref_src=t&cmpid=4&ocid=5",
            "https://e.com/a",
        ),
        ("https://e.com/a?z=1&a=2&m=3", "https://e.com/a?a=2&m=3&z=1"),
        ("https://e.com/a?b=1&a=2&a=1", "https://e.com/a?a=1&a=2&b=1"),
        # keys that only look like tracking parameters stay
        ("https://e.com/a?reference=1&utm=2&page=3", "https://e.com/a?page=3&reference=1&utm=2"),
        # fragments go, except "#!" routes
        ("https://e.com/a#comments", "https://e.com/a"),
        ("https://e.com/#!/post/1", "https://e.com/#!/post/1"),
        # scheme and host case, default ports, empty path
        ("HTTPS://News.Example.ORG/Path/Case", "https://news.example.org/Path/Case"),
        ("http://e.com:80/x", "http://e.com/x"),
        ("https://e.com:443", "https://e.com/"),
        ("https://e.com:8443/x", "https://e.com:8443/x"),
        ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
        ("https://user:Pw@E.com/x", "https://user:Pw@e.com/x"),
        # an empty query, percent escapes of unreserved characters, escape case
        ("https://e.com/a?", "https://e.com/a"),
        ("https://e.com/%7euser/a%2fb?q=%7e%3d", "https://e.com/~user/a%2Fb?q=~%3D"),
        # not http(s), or not a URL: only stripped
        ("  tag:e.com,2024:1 ", "tag:e.com,2024:1"),
        ("mailto:A@B.com", "mailto:A@B.com"),
        (" not a url ", "not a url"),
        ("http://[::1/broken", "http://[::1/broken"),
        ("http://e.com:99999/", "http://e.com:99999/"),
        ("", ""),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@given(st.text())
def test_canonical_url_never_raises(text: str) -> None:
    assert canonical_url(text) == canonical_url(text).strip()


_segment = st.text(alphabet="abcXYZ019-._~%2Ff", max_size=6)


@given(
    host=st.sampled_from(["e.com", "E.COM", "[::1]", "sub.example.org"]),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    path=st.lists(_segment, max_size=3),
    query=st.lists(st.tuples(st.sampled_from(["a", "B", "utm_x", "ref", "q"]), _segment)),
    fragment=st.sampled_from(["", "#top", "#!/x"]),
)
def test_canonical_url_is_idempotent(
    host: str, port: str, path: list[str], query: list[tuple[str, str]], fragment: str
) -> None:
    url = f"https://{host}{port}/{'/'.join(path)}?{'&'.join(f'{k}={v}' for k, v in query)}"
    once = canonical_url(url + fragment)
    assert canonical_url(once) == once
    assert "utm_x=" not in once and "ref=" not in once


def test_keys_are_guid_then_canonical_link() -> None:
    assert entry_keys(ENTRY) == (
        "guid:tag:news.example.org,2024:42",
        "link:https://news.example.org/2024/05/story.html?id=7",
    )


def _same_identity(a: Entry, b: Entry) -> bool:
    return bool(set(entry_keys(a)) & set(entry_keys(b)))


def test_a_new_guid_with_the_same_link_is_the_same_entry() -> None:
    assert _same_identity(ENTRY, dataclasses.replace(ENTRY, guid="urn:uuid:changed"))


def test_a_changed_link_with_the_same_guid_is_the_same_entry() -> None:
    moved = dataclasses.replace(ENTRY, link="https://news.example.org/moved/elsewhere")
    assert _same_identity(ENTRY, moved)


def test_other_tracking_parameters_on_the_link_are_the_same_entry() -> None:
    other = dataclasses.replace(
        ENTRY,
        guid=None,
        link="HTTPS://news.example.org:443/2024/05/story.html?id=7&utm_campaign=x#top",
    )
    assert _same_identity(dataclasses.replace(ENTRY, guid=None), other)


def test_different_entries_share_no_key() -> None:
    other = dataclasses.replace(
        ENTRY, guid="tag:news.example.org,2024:43", link="https://news.example.org/other"
    )
    assert not _same_identity(ENTRY, other)


def test_a_link_to_the_site_root_is_no_identity() -> None:
    # Feeds that point every item at the home page must not collapse into one entry.
    entry = dataclasses.replace(ENTRY, link="https://news.example.org/?utm_source=rss")
    assert entry_keys(entry) == ("guid:tag:news.example.org,2024:42",)
    other = dataclasses.replace(entry, guid="tag:news.example.org,2024:43")
    assert not _same_identity(entry, other)
    same_guid = dataclasses.replace(ENTRY, guid="https://news.example.org")
    assert entry_keys(same_guid) == ("link:https://news.example.org/2024/05/story.html?id=7",)


def test_without_guid_or_link_the_key_hashes_title_and_date() -> None:
    bare = dataclasses.replace(ENTRY, guid=None, link=None)
    (key,) = entry_keys(bare)
    assert key.startswith("hash:") and len(key) == len("hash:") + 40
    assert entry_keys(dataclasses.replace(bare, summary="edited")) == (key,)
    assert entry_keys(dataclasses.replace(bare, title="Other")) != (key,)
    assert entry_keys(dataclasses.replace(bare, published=None)) != (key,)


def test_without_title_or_date_the_key_hashes_the_text() -> None:
    bare = dataclasses.replace(ENTRY, guid=None, link=None, title="", published=None)
    assert entry_keys(bare) != entry_keys(dataclasses.replace(bare, summary="another"))


def test_content_fingerprint_notices_edits_but_not_whitespace() -> None:
    fingerprint = content_fingerprint(ENTRY)
    assert len(fingerprint) == 16
    spaced = dataclasses.replace(ENTRY, content="  Both sides\n met  on Monday. ")
    assert content_fingerprint(spaced) == fingerprint
    assert content_fingerprint(dataclasses.replace(ENTRY, link="https://x/")) == fingerprint
    assert content_fingerprint(dataclasses.replace(ENTRY, summary="Updated.")) != fingerprint
    # The separator keeps text from sliding between fields unnoticed.
    moved = dataclasses.replace(ENTRY, title="Talks resume Both", summary="sides met.")
    assert content_fingerprint(moved) != fingerprint


def test_feed_url_key_keeps_queries_and_never_raises() -> None:
    assert feed_url_key("HTTPS://News.Example:443/rss?") == feed_url_key("https://news.example/rss")
    assert feed_url_key("https://a.example/f?ref=dev") != feed_url_key("https://a.example/f?ref=x")
    assert feed_url_key("http://h:99999/f") == "http://h:99999/f"  # a bad port: as written
    assert feed_url_key("http://[::1/f") == "http://[::1/f"
