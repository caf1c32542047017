"""Feed discovery: the feeds a web page links to, and the paths sites usually serve them at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.etree

from watcher.errors import FetchError, ParseError
from watcher.feeds.parse import parse_feed

# Plain application/json is left out: WordPress puts its REST API (not a feed) on every page
# as <link rel="alternate" type="application/json">.
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/x-rss+xml",
        "application/x-atom+xml",
        "text/xml",
        "application/xml",
    }
)

# WordPress, Blogger, Ghost, Hugo, Jekyll, Pelican, Substack, Medium and plain conventions.
COMMON_FEED_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
    "/feeds/posts/default",
    "/?feed=rss2",
    "/feed.json",
    "/index.rss",
    "/atom",
    "/feeds/all.atom.xml",
)

_HTML_PARSER = lxml.etree.HTMLParser(remove_comments=True, no_network=True)


def find_feed_links(html: bytes, base_url: str) -> list[str]:
    """Absolute URLs of the feeds a page advertises with <link rel="alternate">, in order."""
    try:
        root = lxml.etree.fromstring(html, _HTML_PARSER)
    except (lxml.etree.LxmlError, ValueError):
        return []
    if root is None:  # nothing but whitespace or comments
        return []
    base, base_seen = base_url, False
    links: list[str | None] = []
    for element in root.iter("base", "link"):
        href = (element.get("href") or "").strip()
        if href and element.tag == "base" and not base_seen:
            base, base_seen = _join(base_url, href) or base_url, True  # only the first counts
        elif href and element.tag == "link" and _is_feed_link(element):
            links.append(_join(base, href))
    return [link for link in dict.fromkeys(links) if link]


def _is_feed_link(element: lxml.etree._Element) -> bool:
    rel = (element.get("rel") or "").lower().split()
    media = (element.get("type") or "").partition(";")[0].strip().lower()
    return "alternate" in rel and media in FEED_TYPES


def _join(base: str, href: str) -> str | None:
    """``href`` made absolute, if it is then an http(s) URL."""
    try:
        url = urljoin(base, href)
        return url if urlsplit(url).scheme in ("http", "https") else None
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def candidate_urls(base_url: str) -> list[str]:
    """Where a site's feed usually is: the common paths, under the page's folder and the root."""
    try:
        parts = urlsplit(base_url.strip())
    except ValueError:
        return []
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    folder, _, last = parts.path.rpartition("/")
    if last and "." not in last:  # "/blog" is a folder, "/blog/post.html" a page in one
        folder = f"{folder}/{last}"
    prefixes = [root + folder, root] if folder else [root]
    return list(dict.fromkeys(prefix + path for prefix in prefixes for path in COMMON_FEED_PATHS))


class FetchedPage(Protocol):
    """What ``discover`` needs of a response (watcher.http.Response has it)."""

    @property
    def url(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_type(self) -> str | None: ...


class Fetcher(Protocol):
    """What ``discover`` needs of an HTTP client (watcher.http.HttpClient has it)."""

    async def get(self, url: str) -> FetchedPage: ...


async def discover(client: Fetcher, url: str) -> list[str]:
    """The feeds for ``url``: itself if it is one, those its page links to, else common paths.

    FetchError when ``url`` itself cannot be fetched; failing candidates are skipped.
    The linked feeds are not fetched (``check_feeds`` does that).
    """
    return list(await _discover(client, url))


async def discover_checked(client: Fetcher, url: str) -> list[Checked]:
    """``discover``'s feeds, each with its title or why it does not work: the linked ones
    are fetched; one discover parsed already (``url`` itself, a common path) is not."""
    found = await _discover(client, url)
    fetched = {
        c.url: c for c in await check_feeds(client, [u for u, t in found.items() if t is None])
    }
    return [fetched[u] if t is None else Checked(u, t) for u, t in found.items()]


async def _discover(client: Fetcher, url: str) -> dict[str, str | None]:
    """Feed URL -> its title when it was parsed here, None for a link not fetched yet."""
    page = await client.get(url)
    if (title := _feed_title(page)) is not None:
        return {page.url: title}
    linked = find_feed_links(page.content, page.url)
    if linked:
        return dict.fromkeys(linked)
    found: dict[str, str | None] = {}
    for candidate in candidate_urls(page.url):
        try:
            response = await client.get(candidate)
        except FetchError:
            continue
        if response.url not in found and (title := _feed_title(response)) is not None:
            found[response.url] = title
    return found


@dataclass(frozen=True)
class Checked:
    """A discovered feed, fetched: its title, or why it does not work."""

    url: str
    title: str = ""
    problem: str = ""  # "" when it is a feed


async def check_feeds(client: Fetcher, urls: list[str]) -> list[Checked]:
    """Each of ``urls`` fetched and parsed: a page may advertise feeds that are gone."""
    checked = []
    for url in urls:
        try:
            response = await client.get(url)
        except FetchError as exc:
            checked.append(Checked(url, problem=exc.reason))
            continue
        title = _feed_title(response)
        problem = "" if title is not None else "not a feed"
        checked.append(Checked(url, title or "", problem))
    return checked


def _feed_title(response: FetchedPage) -> str | None:
    """The feed's title ("" when it has none), or None when ``response`` is no feed."""
    try:
        parsed = parse_feed(response.content, url=response.url, content_type=response.content_type)
    except ParseError:
        return None
    return parsed.title or ""
