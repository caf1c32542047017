"""What differs between SQLite and PostgreSQL: JSON types, upserts, engine options, URLs, errors."""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import SQLAlchemyError


class _Json(sa.types.TypeDecorator[Any]):
    """``impl`` on SQLite, JSONB on PostgreSQL: SQLAlchemy's PostgreSQL dialect (a few MB)
    is imported only by a store on PostgreSQL."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB  # noqa: PLC0415

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(self.impl_instance)


class _JsonText(_Json):
    impl = sa.Text
    cache_ok = True  # SQLAlchemy reads it from each class's own namespace


class _JsonValue(_Json):
    impl = sa.JSON
    cache_ok = True


# JSON as JSONB on PostgreSQL (read back as dicts and lists), as TEXT holding JSON on SQLite.
# Migrations create columns with JSON_COLUMN; queries read and write them through JSON_VALUE.
JSON_COLUMN: sa.types.TypeEngine[Any] = _JsonText()
JSON_VALUE: sa.types.TypeEngine[Any] = _JsonValue()


def insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT for ``table`` in ``conn``'s dialect, with ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (both backends spell them ``ON CONFLICT``)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415  (see _Json)

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    return sqlite.insert(table)


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def engine_options(url: str) -> dict[str, Any]:
    """create_engine options for ``url``: PostgreSQL connections are checked before use,
    so a server restart costs one failed call, not a pool of dead connections."""
    if url.startswith("postgresql"):
        connect: dict[str, Any] = {"connect_timeout": 10}
        if "application_name=" not in url and not os.environ.get("PGAPPNAME"):
            # A DBA sees which replica holds a connection (unless the user named them).
            connect["application_name"] = f"watcher {socket.gethostname()[:40]}:{os.getpid()}"
        return {
            "pool_pre_ping": True,
            "pool_size": 5,
            "connect_args": connect,
            "json_serializer": _json_dumps,
        }
    return {}


def _json_dumps(value: Any) -> str:
    """json.dumps whose failure is a SQLAlchemy error, as it is on SQLite (where SQLAlchemy
    serialises JSON itself), so the store turns it into a StoreError on both backends."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise sa.exc.StatementError(f"value is not JSON: {exc}", None, None, exc) from exc


# For a URL SQLAlchemy cannot parse: hide from the user part's ":" to the last "@" before
# the path (a password may hold "@", "#" or "?"), and password-like query parameters.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:).*@(?=[^@]*$)")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|sslpassword)=)[^&]*")


def redact_url(url: str) -> str:
    """``url`` with any password shown as ``***``: safe to log and to print in errors."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):  # unparsed, or "@" cut the password short
        return _QUERY_SECRET.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))
    if parsed.password is None and not _QUERY_SECRET.search(url):
        return url  # nothing to hide: shown as written
    return _QUERY_SECRET.sub(r"\1***", parsed.render_as_string(hide_password=True))


def store_url_hint(url: str, exc: BaseException) -> str:
    """One line on why ``url`` cannot be opened, with what to do where the fix is known."""
    shown = f"store url {redact_url(url)!r}"
    scheme = url.partition("://")[0].lower()
    if scheme == "postgres":
        return f"{shown}: write it postgresql+psycopg://user@host/db (SQLAlchemy has no 'postgres')"
    if isinstance(exc, ImportError) and scheme.startswith("postgresql"):
        if scheme != "postgresql+psycopg":
            return f"{shown}: watcher uses psycopg 3; write it postgresql+psycopg://user@host/db"
        return f"{shown} needs the PostgreSQL driver: pip install 'watcher[postgres]' (psycopg 3)"
    return f"{shown}: {exc}"


def url_problem(url: str) -> str:
    """Why ``url`` cannot be a store URL as written, before anything connects ("" if none):
    an unencoded "@" in the password would send the rest of the password to DNS as a host."""
    try:
        host = sa.engine.make_url(url).host or ""
    except (sa.exc.ArgumentError, ValueError):
        return ""  # create_engine says what is wrong with it
    if "@" in host:
        return (
            f"store url {redact_url(url)!r}: a password with @, :, / or % must be URL-encoded "
            "(%40 for @), or left out of the URL (PGPASSWORD or ~/.pgpass: README, Scaling out)"
        )
    return ""


# SQLite's words for a failing disk ("disk I/O error") do not say what to do about it.
_DISK_HINTS = {
    "SQLITE_FULL": "the disk holding the data directory is full; free some space",
    "SQLITE_IOERR": "the data directory cannot be written (read-only or failing disk?)",
    "SQLITE_READONLY": "the database or its data directory is read-only; make them writable",
}


def error_reason(exc: SQLAlchemyError) -> str:
    """What the database said, on one line, with what to do about a failing disk."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return str(exc).splitlines()[0]
    code = str(getattr(orig, "sqlite_errorname", ""))
    hint = next((h for prefix, h in _DISK_HINTS.items() if code.startswith(prefix)), "")
    # One line: psycopg adds a tab-indented second line ("Is the server running ...?").
    said = "; ".join(line.strip() for line in str(orig).splitlines() if line.strip())
    return f"{said} ({code}): {hint}" if hint else said
