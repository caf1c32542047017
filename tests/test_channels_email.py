"""Email channel against a loopback aiosmtpd server: composition, AUTH, TLS, faults, restarts."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from smtpserver import SmtpServer, server_tls_context

from watcher.channels.base import OutgoingMessage
from watcher.channels.email import EmailChannel, compose_email
from watcher.clock import FakeClock
from watcher.config import EmailSettings, Secret, config_from_dict
from watcher.errors import ConfigError, DeliveryError

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
SENDER = "Watcher <watcher@alerts.example>"
RECIPIENT = "analyst@example.org"
ALERT = OutgoingMessage(
    subject="Port strike in Rotterdam",
    html="<b>Port strike in Rotterdam</b>\nDockers walked out &amp; ships wait.",
    text="Port strike in Rotterdam\nDockers walked out & ships wait.",
    link="https://news.example/a",
)


def make_channel(
    server: SmtpServer,
    *,
    password: str | None = None,
    context: ssl.SSLContext | None = None,
    **settings: object,
) -> EmailChannel:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "sender": SENDER,
        "timeout": 2.0,
    } | settings
    return EmailChannel(
        EmailSettings(**values),  # type: ignore[arg-type]
        Secret(password) if password else None,
        clock=FakeClock(NOW),
        ssl_context=context,
    )


async def fails(channel: EmailChannel, message: OutgoingMessage = ALERT) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await channel.send(RECIPIENT, message)
    return caught.value


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# --- delivery ---------------------------------------------------------------------------


async def test_delivers_multipart_mail_with_proper_headers(smtp_server: SmtpServer) -> None:
    delivered = await make_channel(smtp_server).send(RECIPIENT, ALERT)

    [received] = smtp_server.received
    mail = received.message
    assert received.rcpt_tos == [RECIPIENT]
    assert received.mail_from == "watcher@alerts.example"
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Message-ID"] == delivered.remote_id
    assert str(mail["Message-ID"]).endswith("@alerts.example>")
    assert parsedate_to_datetime(str(mail["Date"])) == NOW
    assert mail["From"] == SENDER and mail["To"] == RECIPIENT
    assert mail["Subject"] == ALERT.subject
    assert mail["Auto-Submitted"] == "auto-generated"
    assert body(mail, "plain").startswith(ALERT.text)
    assert "https://news.example/a" in body(mail, "plain")
    assert ALERT.html in body(mail, "html")
    assert '<a href="https://news.example/a">' in body(mail, "html")


async def test_utf8_subject_and_right_to_left_emoji_body(smtp_server: SmtpServer) -> None:
    subject = "Alerta: ¡Protestas en Caracas! — احتجاجات 🚨"
    text = "שלום עולם — مرحبا بالعالم 🌍🔥 Ñandú"
    message = OutgoingMessage(subject, f"<i>{text}</i>", text, None)
    await make_channel(smtp_server).send(RECIPIENT, message)

    [received] = smtp_server.received
    assert received.message["Subject"] == subject
    assert body(received.message, "plain").strip() == text
    assert f"<i>{text}</i>" in body(received.message, "html")
    assert 'dir="auto"' in body(received.message, "html")
    headers = received.raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii() and b"=?utf-8?" in headers


async def test_replies_thread_under_the_first_mail(smtp_server: SmtpServer) -> None:
    channel = make_channel(smtp_server)
    first = await channel.send(RECIPIENT, ALERT)
    update = OutgoingMessage("Update", "+3 sources", "+3 sources", None, edit_of=first.remote_id)
    await channel.send(RECIPIENT, update)

    second = smtp_server.messages[1]
    assert second["In-Reply-To"] == first.remote_id == second["References"]


async def test_logs_in_when_the_server_requires_it() -> None:
    with SmtpServer(users={"watcher": "s3cret pass"}) as server:
        await make_channel(server, username="watcher", password="s3cret pass").send(
            RECIPIENT, ALERT
        )
        assert server.received[0].login == "watcher"


async def test_a_password_beyond_ascii_logs_in_as_utf8() -> None:
    """smtplib sends credentials as ASCII: "s3crét" failed every mail with an encoding error."""
    with SmtpServer(users={"watcher": "s3crét ñ"}) as server:
        await make_channel(server, username="watcher", password="s3crét ñ").send(RECIPIENT, ALERT)
        assert server.received[0].login == "watcher"
        error = await fails(make_channel(server, username="watcher", password="s3crét wrong"))
    assert error.permanent and "login failed" in str(error) and "wrong" not in str(error)


async def test_a_wrong_password_is_permanent_and_never_shown() -> None:
    with SmtpServer(users={"watcher": "right"}) as server:
        error = await fails(make_channel(server, username="watcher", password="hunter2-wrong"))
    assert error.permanent
    assert "login failed" in str(error) and "password" in str(error)
    assert "hunter2-wrong" not in str(error)


# --- faults -----------------------------------------------------------------------------


async def test_a_server_that_is_down_is_retryable(smtp_server: SmtpServer) -> None:
    channel = make_channel(smtp_server)
    smtp_server.stop()
    error = await fails(channel)

    assert not error.permanent
    assert f"127.0.0.1:{smtp_server.port}" in str(error)


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
async def test_550_is_permanent(smtp_server: SmtpServer, stage: str) -> None:
    smtp_server.fail_next(stage, "550 5.1.1 No such user here")
    error = await fails(make_channel(smtp_server))

    assert error.permanent and "550" in str(error)
    assert smtp_server.received == []


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
async def test_451_is_retryable(smtp_server: SmtpServer, stage: str) -> None:
    channel = make_channel(smtp_server)
    smtp_server.fail_next(stage, "451 4.3.0 Try again later")
    error = await fails(channel)

    assert not error.permanent and "451" in str(error)
    await channel.send(RECIPIENT, ALERT)
    assert len(smtp_server.received) == 1


async def test_a_dropped_connection_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.drop_next("DATA")
    error = await fails(make_channel(smtp_server))
    assert not error.permanent


async def test_restart_mid_test_then_success(smtp_server: SmtpServer) -> None:
    channel = make_channel(smtp_server)
    await channel.send(RECIPIENT, ALERT)
    smtp_server.stop()
    assert not (await fails(channel)).permanent
    smtp_server.start()
    await channel.send(RECIPIENT, ALERT)

    assert len(smtp_server.received) == 2


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield listener.getsockname()[1]


async def test_a_silent_server_times_out_retryably(silent_port: int) -> None:
    settings = EmailSettings(
        host="127.0.0.1", port=silent_port, security="none", sender=SENDER, timeout=0.3
    )
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await EmailChannel(settings).send(RECIPIENT, ALERT)

    assert not caught.value.permanent and "timed out" in str(caught.value)
    assert time.monotonic() - started < 30  # bounded by the timeout; margin for a loaded machine


async def test_a_malformed_address_is_permanent(smtp_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        await make_channel(smtp_server).send("not an address\r\nBcc: x@y.z", ALERT)
    assert caught.value.permanent and smtp_server.received == []


# --- TLS --------------------------------------------------------------------------------


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


async def test_starttls_with_auth(tls_certificate: tuple[Path, Path]) -> None:
    cert, key = tls_certificate
    with SmtpServer(users={"watcher": "pw"}, starttls=server_tls_context(cert, key)) as server:
        channel = make_channel(
            server,
            security="starttls",
            username="watcher",
            password="pw",
            context=client_context(cert),
        )
        await channel.send(RECIPIENT, ALERT)
        assert server.received[0].login == "watcher"


async def test_implicit_tls(tls_certificate: tuple[Path, Path]) -> None:
    cert, key = tls_certificate
    with SmtpServer(implicit_tls=server_tls_context(cert, key)) as server:
        channel = make_channel(server, security="tls", context=client_context(cert))
        await channel.send(RECIPIENT, ALERT)
        assert len(server.received) == 1


async def test_an_untrusted_certificate_is_permanent(tls_certificate: tuple[Path, Path]) -> None:
    cert, key = tls_certificate
    with SmtpServer(starttls=server_tls_context(cert, key)) as server:
        error = await fails(make_channel(server, security="starttls"))  # system trust store
    assert error.permanent and "certificate" in str(error)


async def test_starttls_against_a_server_without_it_is_permanent(
    smtp_server: SmtpServer,
) -> None:
    error = await fails(make_channel(smtp_server, security="starttls"))
    assert error.permanent and "email.security" in str(error)


# --- composing and configuration --------------------------------------------------------


def test_subject_is_one_line_whatever_the_composer_sent() -> None:
    message = OutgoingMessage("Breaking:\r\nBcc: everyone@example.org", "x", "x", None)
    mail = compose_email(message, sender=SENDER, recipient=RECIPIENT, now=NOW)
    assert mail["Subject"] == "Breaking: Bcc: everyone@example.org"
    assert mail["Bcc"] is None


def test_url_buttons_become_links() -> None:
    message = OutgoingMessage(
        "s", "x", "x", None, buttons=(("Open", "url:https://e.example/"), ("Mute", "mute:1"))
    )
    mail = compose_email(message, sender=SENDER, recipient=RECIPIENT, now=NOW)
    assert "Open: https://e.example/" in body(mail, "plain")
    assert "mute:1" not in body(mail, "plain")


def test_config_problems_name_their_keys(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "email": {
                "host": "smtp.example.org",
                "username": "me",
                "recipients": ["ok@example.org", "nope"],
            }
        },
        source=tmp_path / "config.toml",
    )
    with pytest.raises(ConfigError) as caught:
        EmailChannel.from_config(config, env={})
    text = str(caught.value)
    assert "email.sender" in text and "email.recipients[1]" in text
    assert "email.password_file" in text and "WATCHER_SMTP_PASSWORD" in text


def test_password_from_the_environment_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "smtp-password").write_text("from-file\n")
    settings = {"host": "smtp.example.org", "username": "me", "sender": "me@example.org"}
    with_env = config_from_dict({"email": settings}, source=tmp_path / "config.toml")
    with_file = config_from_dict(
        {"email": settings | {"password_file": "smtp-password"}}, source=tmp_path / "config.toml"
    )
    assert EmailChannel.from_config(with_env, env={"WATCHER_SMTP_PASSWORD": "x"}).name == "email"
    assert EmailChannel.from_config(with_file, env={}).name == "email"
