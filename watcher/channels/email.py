"""Email delivery over SMTP (STARTTLS, implicit TLS or plain): composing and sending mail."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import html
import smtplib
import socket
import ssl
from collections.abc import Mapping
from datetime import datetime
from email.errors import HeaderParseError, MessageDefect
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from watcher.channels.base import Delivered, OutgoingMessage
from watcher.channels.spec import ChannelSpec
from watcher.clock import Clock, SystemClock
from watcher.config import Config, EmailSettings, Secret, config_path, read_secret
from watcher.errors import ConfigError, DeliveryError

PASSWORD_ENV = "WATCHER_SMTP_PASSWORD"

_HEADERS = HeaderRegistry()
_HTML_TEMPLATE = """\
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><div dir="auto" style="white-space: pre-wrap; font-family: sans-serif; \
line-height: 1.45">{body}</div></body></html>
"""


# --- addresses (pure) ------------------------------------------------------------------


def is_address(text: str) -> bool:
    """Whether ``text`` is one bare address (``desk@example.org``, ``root@localhost``)."""
    try:
        address = Address(addr_spec=text)
    except (MessageDefect, HeaderParseError, ValueError, IndexError):
        return False
    return bool(address.username and address.domain) and address.addr_spec == text


def is_mailbox(text: str) -> bool:
    """Whether ``text`` is one address, with or without a display name (a From header)."""
    try:
        header = _HEADERS("From", text)
    except (MessageDefect, HeaderParseError, ValueError, IndexError):
        return False
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    return (
        not header.defects
        and len(addresses) == 1
        and bool(addresses[0].username and addresses[0].domain)
    )


# --- composing (pure) -------------------------------------------------------------------


def compose_email(
    message: OutgoingMessage, *, sender: str, recipient: str, now: datetime
) -> EmailMessage:
    """The multipart/alternative (text, HTML) email for ``message``.

    A message that replies to or replaces an earlier one (its Message-ID in ``reply_to`` or
    ``edit_of``) is threaded under it, since email cannot edit what it sent.
    """
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["Subject"] = _one_line(message.subject)
    mail["From"] = sender
    mail["To"] = recipient
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid(domain=_domain(sender))
    mail["Auto-Submitted"] = "auto-generated"
    thread = message.reply_to or message.edit_of
    if thread and thread.startswith("<") and thread.endswith(">"):
        mail["In-Reply-To"] = thread
        mail["References"] = thread
    mail.set_content(_text_body(message))
    mail.add_alternative(_html_body(message), subtype="html")
    return mail


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no subject)"


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "watcher.invalid"


def _links(message: OutgoingMessage, already: str) -> list[tuple[str, str]]:
    """(label, URL) pairs to append: the article link and URL buttons not yet in the body."""
    links = [("", message.link)] if message.link else []
    links += [(label, data[4:]) for label, data in message.buttons if data.startswith("url:")]
    return [(label, url) for label, url in links if url not in already]


def _text_body(message: OutgoingMessage) -> str:
    lines = [f"{label}: {url}" if label else url for label, url in _links(message, message.text)]
    return "\n\n".join([message.text.rstrip(), *lines]) + "\n"


def _html_body(message: OutgoingMessage) -> str:
    anchors = [
        f'<a href="{html.escape(url)}">{html.escape(label or url)}</a>'
        for label, url in _links(message, message.html)
    ]
    body = "\n\n".join([message.html.rstrip(), *anchors])
    return _HTML_TEMPLATE.format(title=html.escape(_one_line(message.subject)), body=body)


# --- errors -----------------------------------------------------------------------------


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login, but a user name or password beyond ASCII goes as UTF-8 in AUTH PLAIN
    (RFC 4616): smtplib encodes them as ASCII and raised UnicodeEncodeError on "s3crét"."""
    if (username + password).isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError(
            "a user name or password beyond ASCII needs AUTH PLAIN, which this server does not "
            "offer"
        )
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, answer = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _delivery_error(exc: Exception, where: str, secret: str) -> DeliveryError:
    """The DeliveryError for an SMTP failure: 5xx replies are permanent, the rest retryable."""
    reason, permanent = _describe(exc)
    if secret:
        reason = reason.replace(secret, "********")
    return DeliveryError(f"{where}: {reason}", permanent=permanent)


def _describe(exc: Exception) -> tuple[str, bool]:  # noqa: PLR0911
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients.items()
        detail = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in refused)
        return f"recipient refused: {detail}", all(code >= 500 for _, (code, _m) in refused)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"login failed: {exc.smtp_code} {_text(exc.smtp_error)} (check email.username "
            f"and ${PASSWORD_ENV} or email.password_file)",
            exc.smtp_code >= 500,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}", exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{exc} (check email.security and email.username)", True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}", True
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason} (check email.security and email.port)", True
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the server (email.timeout)", False
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)", False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})", False
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}", False
    return f"{type(exc).__name__}: {exc}", False


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


# --- the channel ------------------------------------------------------------------------


class EmailChannel:
    """Sends each alert as one email over a fresh SMTP connection (in a worker thread)."""

    name = "email"

    def __init__(
        self,
        settings: EmailSettings,
        password: Secret | None = None,
        *,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._password = password
        self._clock = clock or SystemClock()
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._where = f"smtp {settings.host}:{settings.port}"

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> EmailChannel:
        """The channel [email] describes; ConfigError naming the key at fault."""
        settings, label = config.email, str(config.source or "<config>")
        password = read_secret(
            PASSWORD_ENV,
            config_path(settings.password_file, config.source),
            env,
            key="email.password_file",
        )
        problems = _settings_problems(settings, password, label)
        if problems:
            raise ConfigError(problems)
        return cls(settings, password, clock=clock, ssl_context=ssl_context)

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        """Email ``message`` to ``destination``; raises DeliveryError and nothing else."""
        if not is_address(destination):
            raise DeliveryError(
                f"email {destination!r}: not an email address (use e.g. someone@example.org)",
                permanent=True,
            )
        mail = compose_email(
            message, sender=self._settings.sender, recipient=destination, now=self._clock.now()
        )
        await asyncio.to_thread(self._deliver, destination, mail)
        return Delivered(str(mail["Message-ID"]))

    async def aclose(self) -> None:
        """Nothing to release: every message uses its own connection."""

    def _deliver(self, recipient: str, mail: EmailMessage) -> None:
        secret = self._password.reveal() if self._password else ""
        try:
            with self._connect() as smtp:
                if self._settings.username:
                    _login(smtp, self._settings.username, secret)
                smtp.send_message(mail, to_addrs=[recipient])
        except (smtplib.SMTPException, OSError) as exc:
            raise _delivery_error(exc, self._where, secret) from None

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        # An explicit EHLO name: smtplib's default (getfqdn) may wait on reverse DNS.
        name = socket.gethostname()
        if s.security == "tls":
            return smtplib.SMTP_SSL(
                s.host, s.port, local_hostname=name, timeout=s.timeout, context=self._ssl_context
            )
        smtp = smtplib.SMTP(s.host, s.port, local_hostname=name, timeout=s.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=self._ssl_context)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _settings_problems(settings: EmailSettings, password: Secret | None, label: str) -> list[str]:
    problems = []
    if not settings.host:
        problems.append(f"{label}: email.host: empty, so email delivery is off")
    if not is_mailbox(settings.sender):
        problems.append(
            f"{label}: email.sender: {settings.sender!r} is not an address such "
            "as 'watcher <watcher@example.org>'"
        )
    problems += [
        f"{label}: email.recipients[{i}]: {r!r} is not an email address"
        for i, r in enumerate(settings.recipients)
        if not is_address(r)
    ]
    if settings.username and password is None:
        problems.append(
            f"{label}: email.password_file: email.username is set but there is "
            f"no password; set ${PASSWORD_ENV} or point password_file at a file"
        )
    return problems


def _defaults(config: Config) -> tuple[str, ...]:
    return tuple(f"email:{r}" for r in config.email.recipients) if config.email.host else ()


SPEC = ChannelSpec(
    kind="email",
    configured=lambda config: bool(config.email.host),
    build=EmailChannel.from_config,
    accepts=is_address,
    example="email:desk@example.org",
    defaults=_defaults,
    shared=True,
)
