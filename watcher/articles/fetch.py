"""Fetching an article's page for extraction, or saying why it cannot be used."""

from __future__ import annotations

import codecs
from email.message import Message

from watcher.articles.extract import codec_name
from watcher.config import ArticlesSettings
from watcher.errors import FetchError
from watcher.http import HttpClient, Response

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"


async def fetch_article(
    client: HttpClient, *, url: str, settings: ArticlesSettings
) -> tuple[bytes | None, str]:
    """``(html, "")`` for an HTML page, or ``(None, reason)`` when there is no page to extract.

    The reason reads as an Article's fallback reason ("fetch failed: HTTP 403 Forbidden",
    "not an HTML page (application/pdf)"). Never raises for a failed fetch.
    """
    if not settings.fetch:
        return None, "page fetching is off (articles.fetch = false)"
    try:
        response = await client.get(url, accept=_ACCEPT)
    except FetchError as exc:
        return None, f"fetch failed: {exc.reason}"
    media = response.content_type
    if media is not None and media not in _HTML_TYPES:
        return None, f"not an HTML page ({media})"
    if not response.content.strip():
        return None, "the page is empty"
    return _self_describing(response), ""


def _self_describing(response: Response) -> bytes:
    """The body, re-encoded as UTF-8 with a BOM when the HTTP header's charset is needed.

    extract_page sees only bytes, and a header charset outranks the page's <meta>; a BOM
    outranks both, so the bytes carry the header's word with them (into caches, too).
    Valid UTF-8 needs nothing: decode_html reads it as UTF-8 whatever is declared.
    """
    body = response.content
    codec = codec_name(_header_charset(response))
    if not codec or _is_utf8(body):
        return body
    try:
        text = body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return body  # the header is wrong: let the page's own declaration speak
    return codecs.BOM_UTF8 + text.encode("utf-8")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_charset(response: Response) -> str:
    value = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    message = Message()
    message["content-type"] = value
    charset = message.get_param("charset")
    return charset if isinstance(charset, str) else ""
