"""A loopback SMTP server for tests (aiosmtpd): records mail, optional AUTH/TLS, faults, restarts.

with SmtpServer(users={"watcher": "s3cret"}) as smtp:
    smtp.fail_next("RCPT", "451 4.3.0 Try again later")
    ...
    smtp.restart()          # down and up again on the same port
    assert smtp.messages[0]["Subject"] == "..."
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# aiosmtpd logs every session on "mail.log", and warns about its own deprecated login_data.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope, the parsed message, and who logged in."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    raw: bytes  # the DATA as sent, to check wire encoding


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before aiosmtpd connects to check readiness.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in its own thread.

    ``users`` turns on AUTH (required; allowed over plain text unless ``starttls`` is given);
    ``starttls`` offers STARTTLS with that server context; ``implicit_tls`` wraps the whole
    connection in TLS.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.users = dict(users or {})
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self.host = "127.0.0.1"
        self.port = 0
        self._received: list[Received] = []
        self._faults: dict[str, deque[list[Any]]] = {}
        self._cond = threading.Condition()
        self._controller: _Controller | None = None

    def email_config(self, recipient: str) -> str:
        """An `[email]` config section sending to ``recipient`` through this server (plain
        SMTP, no AUTH), as a daemon under test uses it."""
        return f"""
[email]
host = "{self.host}"
port = {self.port}
security = "none"
sender = "watcher@example.org"
recipients = ["{recipient}"]
timeout = "5s"
"""

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "ssl_context": self._implicit_tls,
            "ready_timeout": 5.0,
        }
        if self.users:
            # AUTH over plain text is what tests without certificates need; pytest resets
            # filters around each test, so this cannot be done once at import.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            kwargs |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": self._starttls is not None,
            }
        if self._starttls is not None:
            kwargs["tls_context"] = self._starttls
        self._controller = _Controller(_Handler(self), **kwargs)
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        """Stop listening and drop open sessions; ``start()`` again reuses the port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._cond:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    def wait_for(self, count: int = 1, timeout: float = 60.0) -> list[Received]:
        """Block until ``count`` messages arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._received) < count:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise AssertionError(
                        f"{len(self._received)} messages after {timeout}s, wanted {count}"
                    )
            return list(self._received)

    # --- faults -------------------------------------------------------------------------

    def fail_next(
        self, stage: str, reply: str = "451 4.3.0 Try again later", *, count: int = 1
    ) -> None:
        """Answer the next ``count`` MAIL, RCPT or DATA commands with ``reply``
        (e.g. "550 5.1.1 No such user here") instead of accepting them."""
        self._push(stage, reply, count)

    def drop_next(self, stage: str, *, count: int = 1) -> None:
        """Close the connection, unanswered, at the next ``count`` MAIL, RCPT or DATA."""
        self._push(stage, None, count)

    def _push(self, stage: str, reply: str | None, count: int) -> None:
        with self._cond:
            self._faults.setdefault(stage.upper(), deque()).append([reply, count])

    def take_fault(self, stage: str) -> tuple[bool, str | None]:
        """(whether a fault is due, its reply or None to drop the connection)."""
        with self._cond:
            queue = self._faults.get(stage)
            if not queue:
                return False, None
            fault = queue[0]
            fault[1] -= 1
            if fault[1] <= 0:
                queue.popleft()
            return True, fault[0]

    def record(self, received: Received) -> None:
        with self._cond:
            self._received.append(received)
            self._cond.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if login in self.users and self.users[login] == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)


class _Handler:
    """aiosmtpd hooks: faults first, then the default behaviour, recording DATA."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    def _fault(self, server: SMTP, stage: str) -> str | None:
        due, reply = self.owner.take_fault(stage)
        if due and reply is None:
            assert server.transport is not None
            server.transport.close()
            return "421 4.3.0 Closing connection"
        return reply

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if fault := self._fault(server, "MAIL"):
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if fault := self._fault(server, "RCPT"):
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if fault := self._fault(server, "DATA"):
            return fault
        raw = envelope.original_content or b""
        # Parsed with \n line ends, so bodies compare equal to the text that was sent.
        parser = email.parser.BytesParser(policy=email.policy.default)
        parsed = parser.parsebytes(raw.replace(b"\r\n", b"\n"))
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.owner.record(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, login, raw)
        )
        return "250 2.0.0 Message accepted for delivery"


def make_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed (certificate, key) for 127.0.0.1 and localhost, made with the openssl
    command; None when it is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
