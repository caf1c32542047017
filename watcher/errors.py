"""The exception hierarchy: every error watcher raises derives from WatcherError."""

from __future__ import annotations


class WatcherError(Exception):
    """Root of watcher's errors; its message is meant for the user, as one line."""


class ConfigError(WatcherError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` lists every problem found, each naming the file and key; ``keys`` holds
    the dotted key of each (e.g. ``http.max_per_host``, ``feeds[2].url``) when known.
    """

    def __init__(self, problems: list[str] | str, *, keys: list[str] | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.keys = list(keys or [])
        super().__init__("\n".join(self.problems))


class RuleError(WatcherError):
    """A rule file is invalid; ``problems`` are ``file:line:column: message`` strings."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(WatcherError):
    """The state store cannot be opened, migrated, read or written."""


class LockedError(WatcherError):
    """Another daemon holds the data directory."""


class FetchError(WatcherError):
    """An HTTP fetch failed; the message is the human-readable reason recorded on the feed.

    watcher.http raises one of the subclasses below (one function maps aiohttp, OS and
    decoder errors to them), so callers can tell a 410 Gone from a timeout without reading
    ``reason``; FetchError itself is raised for an invalid URL or a page with no usable body.
    """

    def __init__(self, url: str, reason: str, *, retry_after: float | None = None) -> None:
        self.url = url
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"{url}: {reason}")


class HttpStatusError(FetchError):
    """The server answered with a status other than 2xx, 304 or a followed redirect."""

    def __init__(
        self, url: str, status: int, reason: str, *, retry_after: float | None = None
    ) -> None:
        self.status = status
        super().__init__(url, reason, retry_after=retry_after)


class FetchTimeout(FetchError):
    """Connecting, a read, or the whole request took longer than its [http] timeout."""


class NetworkError(FetchError):
    """DNS, connection, TLS or protocol failure, or a body that cannot be decoded."""


class TooLarge(FetchError):
    """The body exceeded the size limit (after decompression)."""


class BlockedAddress(FetchError):
    """The host is (or resolves to) a private address, refused by the address guard."""


class TooManyRedirects(FetchError):
    """More redirects than [http] max_redirects, or a redirect loop."""


class ParseError(WatcherError):
    """A document (feed, OPML, article) could not be parsed."""


class WorkerError(WatcherError):
    """A job in a worker process did not finish: the worker died or the job was abandoned."""


class BudgetError(WorkerError):
    """A job ran over its time or memory budget; its worker was replaced, its input is at fault."""


class DeliveryError(WatcherError):
    """A channel could not deliver an alert.

    ``permanent`` errors (e.g. bot removed from a chat) will not succeed on retry;
    ``retry_after`` is the delay the remote side asked for, in seconds.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(reason)
