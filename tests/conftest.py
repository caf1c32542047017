"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from botapi import BotApiServer
from httpserver import HttpServer
from pgserver import PgServer, find_bindir
from smtpserver import SmtpServer, make_certificate


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A real HTTP/1.1 server on 127.0.0.1 (see tests/httpserver.py), closed afterwards."""
    server = HttpServer()
    try:
        yield server
    finally:
        server.close()
    if server.errors:
        pytest.fail(f"a route handler raised: {server.errors[0]!r}")


# --- Telegram Bot API and SMTP doubles (tests/botapi.py, tests/smtpserver.py) -----------


@pytest.fixture
def bot_api() -> Iterator[BotApiServer]:
    """A loopback Telegram Bot API (tests/botapi.py); use ``.base_url`` and ``.token``."""
    with BotApiServer() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A loopback SMTP server without AUTH or TLS (tests/smtpserver.py)."""
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed (cert, key) pair for 127.0.0.1; skips when openssl is not installed."""
    made = make_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("the openssl command is not installed")
    return made


# --- PostgreSQL (tests/pgserver.py) and the store URL fixture for both backends --------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session on 127.0.0.1, from /usr/lib/postgresql/*/bin;
    skips (saying why) when the binaries are not installed."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found in /usr/lib/postgresql/*/bin (apt: postgresql)")
    root = Path(tempfile.mkdtemp(prefix="watcher-pg-"))
    server = PgServer(bindir, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watcher.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()
