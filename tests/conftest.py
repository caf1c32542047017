"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botapi import BotApiServer
from httpserver import HttpServer
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
