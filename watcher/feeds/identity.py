"""Entry identity: canonical URLs, the keys that say two entries are the same, content hashes."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

from watcher.types import Entry

# Query parameters that identify the visitor, the campaign or the click, never the resource:
# Google Analytics (utm_*), the click ids of the big ad networks, those on Firefox's
# query-stripping list, and the share/referrer tags news sites add to their links.
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_PARAMS = frozenset(
    {
        # click ids: Facebook, Google Ads, DoubleClick, Microsoft, Yandex, Twitter, TikTok
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "ysclid", "twclid", "ttclid", "li_fat_id", "igshid", "wickedid", "rb_clickid",
        # e-mail and marketing automation: Mailchimp, HubSpot, Marketo, Omeda, Vero, Adobe
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp",
        "hsctatracking", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv",
        "s_cid", "_openstat", "__s",
        # Google cross-domain linker; news-site share and referrer tags
        "_ga", "_gl", "ref", "ref_src", "ref_url", "cmpid", "cmp", "ocid", "icid", "ncid",
        "smid", "at_medium", "at_campaign", "sr_share",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def canonical_url(url: str) -> str:
    """The form of an http(s) URL that compares equal across tracking and spelling variants.

    Lower-cases scheme and host, drops the default port, the fragment (unless it is a
    "#!" route) and tracking parameters, sorts the query, spells "" as "/". Anything that
    is not an http(s) URL comes back only stripped; this never raises.
    """
    stripped = url.strip()
    try:
        return _canonical(stripped)
    except ValueError:  # unbalanced IPv6 brackets, a port out of range, ...
        return stripped


def _canonical(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url
    netloc = parts.hostname.lower()
    if ":" in netloc:
        netloc = f"[{netloc}]"  # urlsplit unwraps IPv6 literals
    if parts.port is not None and parts.port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{parts.port}"
    if parts.username is not None:
        netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    path = _normalise_percent(parts.path) or "/"
    return urlunsplit((scheme, netloc, path, _canonical_query(parts.query), fragment))


def _canonical_query(query: str) -> str:
    # Sort the raw "name=value" pairs: decoding and re-encoding would change the spelling.
    kept = [
        _normalise_percent(pair)
        for pair in query.split("&")
        if pair and not _is_tracking(pair.partition("=")[0])
    ]
    return "&".join(sorted(kept))


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def feed_url_key(url: str) -> str:
    """A feed's URL as it compares to another feed's: scheme and host in lower case, no
    default port, no empty query or fragment; the rest as written, query included. Unlike
    ``canonical_url`` (for article links) nothing is dropped as tracking: ``?ref=dev`` and
    ``?ref=main`` are two feeds."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port if parts.port not in (None, 80, 443) else None
    except ValueError:  # an unbalanced IPv6 bracket, a port out of range: compared as written
        return url.strip()
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{port}" if port else host
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}{query}"


def _normalise_percent(text: str) -> str:
    """Upper-case percent escapes and decode those of unreserved characters (RFC 3986 6.2.2)."""
    if "%" not in text:
        return text
    return _PERCENT.sub(_fix_escape, text)


def _fix_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group()[1:], 16))
    return char if char in _UNRESERVED else match.group().upper()


def entry_keys(entry: Entry) -> tuple[str, ...]:
    """Identity keys, most specific first; an entry is known when ANY key is.

    A GUID or link that is a site's home page ("https://example.com/") is no key: feeds
    that point every item there would otherwise make all their items one entry.
    """
    keys = []
    if entry.guid and not _is_home_page(entry.guid):
        keys.append(f"guid:{entry.guid}")
    if entry.link:
        canonical = canonical_url(entry.link)
        if not _is_home_page(entry.link, canonical):
            keys.append(f"link:{canonical}")
    if not keys:
        published = entry.published.isoformat() if entry.published else ""
        basis = f"{entry.title}\x1f{published}"
        if not entry.title and not published:
            basis = f"{entry.summary}\x1f{entry.content}"
        keys.append(f"hash:{_sha1(basis)}")
    return tuple(keys)


def _is_home_page(url: str, canonical: str | None = None) -> bool:
    """``canonical``: ``canonical_url(url)``, when the caller has it already."""
    if not url[:8].lower().startswith(("http://", "https://")):
        return False
    parts = urlsplit(canonical_url(url) if canonical is None else canonical)
    return parts.path == "/" and not (parts.query or parts.fragment)


def content_fingerprint(entry: Entry) -> str:
    """A short hash of the entry's text, to notice an entry edited after publication."""
    text = "\x1f".join(
        " ".join(part.split()) for part in (entry.title, entry.summary, entry.content)
    )
    return _sha1(text)[:16]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
