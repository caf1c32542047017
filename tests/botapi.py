"""A loopback Telegram Bot API server for tests: records requests, serves updates, injects faults.

    with BotApiServer() as api:
        bot = telegram.Bot(api.token, base_url=api.base_url)
        api.fail_next("sendMessage", 429, retry_after=3)
        ...
        assert api.calls("sendMessage")[-1].parse_mode == "HTML"

Answers have real Telegram's JSON shapes (``{"ok": false, "error_code": 429, "description":
"Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}``). Bodies may be JSON,
form-encoded or multipart, as python-telegram-bot sends form data. HTML messages are checked
like Telegram does (allowed tags, balanced, 4,096 characters after parsing), so a malformed
message gets the real "can't parse entities" answer without any fault being programmed.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import html
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456789:AAH-watcher-test-token_0123456789abc"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Watcher Test",
    "username": "watcher_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
TEST_USER_ID = 1001
TEST_USER = {"id": TEST_USER_ID, "is_bot": False, "first_name": "Tester", "username": "tester"}
MAX_TEXT = 4096

_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "entities",
    "commands",
    "scope",
    "allowed_updates",
}
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: can't parse entities: Can't find end of the entity starting at byte "
    "offset 0",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>"
    b"\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class ApiRequest:
    """One request the server received, with the status it answered."""

    method: str
    params: dict[str, Any]
    status: int
    at: float  # time.monotonic() when answered
    result: Any = None  # the "result" of a successful answer, e.g. the sent Message

    @property
    def sent_id(self) -> int | None:
        """The message_id of the message this request sent or edited, if it succeeded."""
        return self.result.get("message_id") if isinstance(self.result, dict) else None

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)

    @property
    def text(self) -> str | None:
        return self.params.get("text")

    @property
    def parse_mode(self) -> str | None:
        return self.params.get("parse_mode")

    @property
    def message_thread_id(self) -> int | None:
        return _int(self.params.get("message_thread_id"))

    @property
    def message_id(self) -> int | None:
        return _int(self.params.get("message_id"))

    @property
    def reply_to(self) -> int | None:
        reply = self.params.get("reply_parameters")
        if isinstance(reply, dict):
            return _int(reply.get("message_id"))
        return _int(self.params.get("reply_to_message_id"))

    @property
    def disable_notification(self) -> bool:
        return _bool(self.params.get("disable_notification"))

    @property
    def link_preview_disabled(self) -> bool:
        options = self.params.get("link_preview_options")
        if isinstance(options, dict):
            return bool(options.get("is_disabled"))
        return _bool(self.params.get("disable_web_page_preview"))

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """Inline keyboard buttons as (label, callback data or "url:<url>"), row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [
            (b["text"], b.get("callback_data") or f"url:{b.get('url')}")
            for row in rows
            for b in row
        ]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: float | None = None
    count: int = 1


@dataclass
class _Hang:
    seconds: float
    count: int = 1


@dataclass
class _State:
    requests: list[ApiRequest] = field(default_factory=list)
    faults: dict[str, deque[_Fault]] = field(default_factory=dict)
    hangs: dict[str, deque[_Hang]] = field(default_factory=dict)
    chat_faults: dict[str, _Fault] = field(default_factory=dict)
    outage_until: float = 0.0
    messages: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100_000
    commands: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)  # setWebhook's url, secret_token


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up before its answer (a daemon killed mid-request, a send
        # timed out) is what the fault tests do on purpose: not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class BotApiServer:
    """The Bot API on 127.0.0.1 with one valid token; thread-safe, started by ``start()``."""

    def __init__(self, token: str = TOKEN, *, max_poll: float = 0.5) -> None:
        self.token = token
        self.max_poll = max_poll  # getUpdates long polls are cut to this many seconds
        self._state = _State()
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> BotApiServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> BotApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """What to pass as python-telegram-bot's ``base_url`` (the token is appended)."""
        return f"{self.url}/bot"

    # --- what happened ------------------------------------------------------------------

    @property
    def requests(self) -> list[ApiRequest]:
        with self._cond:
            return list(self._state.requests)

    def calls(self, method: str, *, ok: bool | None = None) -> list[ApiRequest]:
        """Requests to ``method`` (case-insensitive), optionally only (un)successful ones."""
        return [
            r
            for r in self.requests
            if r.method.lower() == method.lower() and (ok is None or r.ok == ok)
        ]

    def sent(self, chat_id: str | int | None = None) -> list[ApiRequest]:
        """Successful sendMessage requests, optionally to one chat."""
        return [
            r
            for r in self.calls("sendMessage", ok=True)
            if chat_id is None or r.chat_id == str(chat_id)
        ]

    def message(self, chat_id: str | int, message_id: int) -> dict[str, Any] | None:
        """The current state of a message the bot sent (after edits), or None."""
        with self._cond:
            return self._state.messages.get((str(chat_id), message_id))

    def wait_for(self, method: str, count: int = 1, timeout: float = 60.0) -> list[ApiRequest]:
        """Block until ``count`` requests to ``method`` arrived (from async code, call it via
        asyncio.to_thread); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := self._matching(method)) < count:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise AssertionError(
                        f"{len(found)} {method} requests after {timeout}s, wanted {count}"
                    )
            return found

    def reset(self) -> None:
        """Forget requests, faults, messages and updates."""
        with self._cond:
            self._state = _State()

    # --- faults -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        *,
        retry_after: float | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests to ``method`` with an error.

        ``description`` defaults to Telegram's usual text for ``status`` (400: can't parse
        entities, 403: bot was blocked, 429: retry after ``retry_after``, default 1 s).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        fault = _Fault(status, text.format(retry_after=_num(retry_after)), retry_after, count)
        with self._cond:
            self._state.faults.setdefault(method.lower(), deque()).append(fault)

    def hang_next(self, method: str, seconds: float, *, count: int = 1) -> None:
        """Delay the next ``count`` answers to ``method`` by ``seconds``. The request is then
        handled normally, as Telegram may deliver a message whose answer never arrived."""
        with self._cond:
            self._state.hangs.setdefault(method.lower(), deque()).append(_Hang(seconds, count))

    def fail_chat(
        self, chat_id: str | int, status: int = 403, description: str | None = None
    ) -> None:
        """Answer every request for ``chat_id`` with an error until ``clear_faults()``."""
        text = description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        with self._cond:
            self._state.chat_faults[str(chat_id)] = _Fault(status, text)

    def outage(self, seconds: float | None = None) -> None:
        """Answer every request with nginx's 502 page for ``seconds`` (None: until ended)."""
        with self._cond:
            self._state.outage_until = (
                float("inf") if seconds is None else time.monotonic() + seconds
            )

    def end_outage(self) -> None:
        with self._cond:
            self._state.outage_until = 0.0

    def clear_faults(self) -> None:
        with self._cond:
            self._state.faults.clear()
            self._state.hangs.clear()
            self._state.chat_faults.clear()
            self._state.outage_until = 0.0

    # --- updates for getUpdates --------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update (``update_id`` is assigned if missing); returns its id."""
        with self._cond:
            update = dict(update)
            if "update_id" not in update:
                update["update_id"] = self._state.next_update_id
            self._state.next_update_id = max(self._state.next_update_id, update["update_id"]) + 1
            self._state.updates.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    def push_message(
        self,
        text: str,
        *,
        chat_id: int = TEST_USER_ID,
        user: dict[str, Any] | None = None,
        thread_id: int | None = None,
    ) -> int:
        """Queue a text message from a user, with a bot_command entity if it starts with /."""
        update = self.message_update(text, chat_id=chat_id, user=user)
        if thread_id is not None:
            update["message"] |= {"message_thread_id": thread_id, "is_topic_message": True}
        return self.push_update(update)

    def push_callback(
        self,
        data: str,
        *,
        chat_id: int = TEST_USER_ID,
        message_id: int | None = None,
        user: dict[str, Any] | None = None,
    ) -> int:
        """Queue an inline-button press on a message the bot sent (default: its last one)."""
        with self._cond:
            message_id = message_id or self._state.next_message_id - 1
            sent = self._state.messages.get((str(chat_id), message_id))
            number = self._state.next_update_id
        message = (
            sent["message"]
            if sent
            else {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": _chat(str(chat_id)),
                "from": BOT_USER,
                "text": "",
            }
        )
        query = {
            "id": f"cb{number}",
            "from": user or TEST_USER,
            "chat_instance": "1",
            "data": data,
            "message": message,
        }
        return self.push_update({"callback_query": query})

    # --- webhook mode -------------------------------------------------------------------

    @property
    def webhook(self) -> dict[str, Any]:
        """What the last setWebhook asked for ({} after deleteWebhook or none)."""
        with self._cond:
            return dict(self._state.webhook)

    def deliver_webhook(self, update: dict[str, Any], to: str, *, secret: str | None = None) -> int:
        """POST ``update`` to ``to`` as Telegram does in webhook mode, with the secret token
        setWebhook registered (or ``secret``); returns the HTTP status (0 if unreachable).

        ``to`` stands for the webhook URL: tests reach the bot on loopback, not through the
        public URL it registered."""
        with self._cond:
            token = self._state.webhook.get("secret_token") if secret is None else secret
            update = dict(update)
            number = update.setdefault("update_id", self._state.next_update_id)
            if isinstance(number, int):
                self._state.next_update_id = max(self._state.next_update_id, number) + 1
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(token)
        request = urllib.request.Request(
            to, data=json.dumps(update).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def message_update(
        self, text: str, *, chat_id: int = TEST_USER_ID, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A text-message update (as push_message makes) without queueing it."""
        with self._cond:
            message_id = self._new_message_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(str(chat_id)),
            "from": user or TEST_USER,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        return {"message": message}

    # --- request handling (called from server threads) ---------------------------------

    def _matching(self, method: str) -> list[ApiRequest]:
        return [r for r in self._state.requests if r.method.lower() == method.lower()]

    def _new_message_id(self) -> int:
        self._state.next_message_id += 1
        return self._state.next_message_id - 1

    def handle(self, path: str, params: dict[str, Any]) -> tuple[int, bytes, str]:
        """(status, body, content type) for one request."""
        token, _, method = path.removeprefix("/bot").partition("/")
        if not path.startswith("/bot") or not method:
            return self._record(method or path, params, 404, _error(404, "Not Found"))
        if token != self.token:
            return self._record(method, params, 401, _error(401, "Unauthorized"))
        hang = self._take_hang(method)
        if hang and self._stopped.wait(hang):
            return 0, b"", ""
        fault = self._take_fault(method, params)
        if fault is not None:
            return self._record(method, params, fault.status, _fault_body(fault))
        if method.lower() == "getupdates":
            return self._poll(method, params)
        with self._cond:
            status, body = self._answer(method.lower(), params)
        return self._record(method, params, status, body)

    def _poll(self, method: str, params: dict[str, Any]) -> tuple[int, bytes, str]:
        if self.webhook:  # as Telegram: no polling while a webhook is set
            conflict = "Conflict: can't use getUpdates method while webhook is active"
            return self._record(method, params, 409, _error(409, conflict))
        return self._record(method, params, 200, _ok(self._get_updates(params)))

    def _record(
        self, method: str, params: dict[str, Any], status: int, body: bytes
    ) -> tuple[int, bytes, str]:
        result = json.loads(body).get("result") if status == 200 else None
        with self._cond:
            self._state.requests.append(
                ApiRequest(method, params, status, time.monotonic(), result)
            )
            self._cond.notify_all()
        kind = "text/html" if body.startswith(b"<html>") else "application/json"
        return status, body, kind

    def hangs_left(self, method: str) -> int:
        """How many answers to ``method`` hang_next still has to delay (0 once the last
        delayed request has arrived)."""
        with self._cond:
            return sum(hang.count for hang in self._state.hangs.get(method.lower(), ()))

    def _take_hang(self, method: str) -> float:
        with self._cond:
            queue = self._state.hangs.get(method.lower())
            if not queue:
                return 0.0
            hang = queue[0]
            hang.count -= 1
            if hang.count <= 0:
                queue.popleft()
            return hang.seconds

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        with self._cond:
            if time.monotonic() < self._state.outage_until:
                return _Fault(502, "Bad Gateway")
            queue = self._state.faults.get(method.lower())
            if queue:
                fault = queue[0]
                fault.count -= 1
                if fault.count <= 0:
                    queue.popleft()
                return fault
            return self._state.chat_faults.get(str(params.get("chat_id")))

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        handler = _METHODS.get(method)
        if handler is None:
            return 200, _ok(True)
        return handler(self, params)

    def _send_message(self, params: dict[str, Any]) -> tuple[int, bytes]:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id in (None, ""):
            return 400, _error(400, "Bad Request: chat_id is empty")
        problem, plain = _check_text(text, params.get("parse_mode"))
        if problem:
            return 400, _error(400, problem)
        message_id = self._new_message_id()
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(str(chat_id)),
            "from": BOT_USER,
            "text": plain,
        }
        if params.get("message_thread_id") is not None:
            message |= {
                "message_thread_id": _int(params["message_thread_id"]),
                "is_topic_message": True,
            }
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        self._state.messages[(str(chat_id), message_id)] = {
            "message": message,
            "source": text,
            "parse_mode": params.get("parse_mode"),
            "reply_markup": params.get("reply_markup"),
        }
        return 200, _ok(message)

    def _edit_message_text(self, params: dict[str, Any]) -> tuple[int, bytes]:
        key = (str(params.get("chat_id")), _int(params.get("message_id")) or 0)
        stored = self._state.messages.get(key)
        if stored is None:
            return 400, _error(400, "Bad Request: message to edit not found")
        problem, plain = _check_text(params.get("text"), params.get("parse_mode"))
        if problem:
            return 400, _error(400, problem)
        new = (params.get("text"), params.get("parse_mode"), params.get("reply_markup"))
        if new == (stored["source"], stored["parse_mode"], stored["reply_markup"]):
            return 400, _error(
                400,
                "Bad Request: message is not modified: specified new "
                "message content and reply markup are exactly the same as a "
                "current content and reply markup of the message",
            )
        message = dict(stored["message"], text=plain, edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if isinstance(new[2], dict):
            message["reply_markup"] = new[2]
        stored.update(message=message, source=new[0], parse_mode=new[1], reply_markup=new[2])
        return 200, _ok(message)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int(params.get("offset")) or 0
        limit = _int(params.get("limit")) or 100
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), self.max_poll)
        with self._cond:
            if offset > 0:
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
            while not self._state.updates and not self._stopped.is_set():
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    break
            updates = self._state.updates
            return (updates[offset:] if offset < 0 else updates)[:limit]

    def _delete_webhook(self, params: dict[str, Any]) -> tuple[int, bytes]:
        if _bool(params.get("drop_pending_updates")):
            self._state.updates.clear()
        self._state.webhook = {}
        return 200, _ok(True)

    def _set_webhook(self, params: dict[str, Any]) -> tuple[int, bytes]:
        url, secret = str(params.get("url") or ""), params.get("secret_token")
        if url and not url.startswith("https://"):
            return 400, _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return 400, _error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self._state.webhook = (
            {"url": url, "secret_token": secret, "allowed_updates": allowed} if url else {}
        )
        return 200, _ok(True)

    def _set_my_commands(self, params: dict[str, Any]) -> tuple[int, bytes]:
        commands = params.get("commands")
        self._state.commands = list(commands) if isinstance(commands, list) else []
        return 200, _ok(True)

    def _get_my_commands(self, params: dict[str, Any]) -> tuple[int, bytes]:
        return 200, _ok(self._state.commands)

    def _get_me(self, params: dict[str, Any]) -> tuple[int, bytes]:
        return 200, _ok(BOT_USER | {"id": int(self.token.split(":")[0])})

    def _get_webhook_info(self, params: dict[str, Any]) -> tuple[int, bytes]:
        return 200, _ok(
            {
                "url": self._state.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._state.updates),
            }
        )


_METHODS: dict[str, Callable[[BotApiServer, dict[str, Any]], tuple[int, bytes]]] = {
    "sendmessage": BotApiServer._send_message,
    "editmessagetext": BotApiServer._edit_message_text,
    "deletewebhook": BotApiServer._delete_webhook,
    "setwebhook": BotApiServer._set_webhook,
    "setmycommands": BotApiServer._set_my_commands,
    "getmycommands": BotApiServer._get_my_commands,
    "getme": BotApiServer._get_me,
    "getwebhookinfo": BotApiServer._get_webhook_info,
    "deletemycommands": lambda api, params: (200, _ok(True)),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        params |= _parse_body(body, self.headers.get("Content-Type", ""))
        api: BotApiServer = self.server.api  # type: ignore[attr-defined]
        status, payload, kind = api.handle(url.path, _decode_json_fields(params))
        if status == 0:  # stopped while hanging: drop the connection unanswered
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # the tests stay quiet
        pass


# --- helpers ----------------------------------------------------------------------------


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        return {
            str(part.get_param("name", header="content-disposition")): part.get_content()
            for part in form.iter_parts()
        }
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(params)
    for name in _JSON_FIELDS & params.keys():
        if isinstance(params[name], str):
            with contextlib.suppress(ValueError):
                decoded[name] = json.loads(params[name])
    return decoded


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode: a few tags, properly nested; collects the visible text."""

    ALLOWED = frozenset(
        {
            "b",
            "strong",
            "i",
            "em",
            "u",
            "ins",
            "s",
            "strike",
            "del",
            "a",
            "code",
            "pre",
            "blockquote",
            "span",
            "tg-spoiler",
            "tg-emoji",
        }
    )

    def __init__(self) -> None:
        # Entities are decoded by hand: an escaped "&lt;" is text, not a tag, as in Telegram.
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self._fail(f'Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self._fail(f'Unmatched end tag "{tag}"')
        elif self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self._fail("Unsupported start tag")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self._fail(f'Unsupported HTML entity "&{name};"')
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def _fail(self, what: str) -> None:
        line, column = self.getpos()
        self.problem = self.problem or f"{what} at byte offset {column} of line {line}"


def _check_text(text: Any, parse_mode: Any) -> tuple[str, str]:
    """(problem or "", visible text) as Telegram would judge a message's text."""
    if not isinstance(text, str) or not text.strip():
        return "Bad Request: message text is empty", ""
    plain = text
    if str(parse_mode).lower() == "html":
        parser = _TelegramHtml()
        parser.feed(text)
        parser.close()
        if parser.stack and not parser.problem:
            parser.problem = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
        if parser.problem:
            return f"Bad Request: can't parse entities: {parser.problem}", ""
        plain = "".join(parser.text)
    if _utf16_len(plain) > MAX_TEXT:
        return "Bad Request: message is too long", ""
    return "", plain


def _chat(chat_id: str) -> dict[str, Any]:
    if chat_id.startswith("@"):
        return {
            "id": -1_000_000_000_000 - sum(map(ord, chat_id)),
            "type": "channel",
            "title": chat_id[1:],
            "username": chat_id[1:],
        }
    number = int(chat_id)
    if number > 0:
        return {"id": number, "type": "private", "first_name": "Tester"}
    kind = "supergroup" if number < -1_000_000_000_000 else "group"
    return {"id": number, "type": kind, "title": f"Test {kind} {number}"}


def _ok(result: Any) -> bytes:
    return json.dumps({"ok": True, "result": result}).encode()


def _error(status: int, description: str, retry_after: float | None = None) -> bytes:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": _num(retry_after)}
    return json.dumps(body).encode()


def _fault_body(fault: _Fault) -> bytes:
    if fault.status == 502:
        return _NGINX_502
    return _error(fault.status, fault.description, fault.retry_after)


def _num(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
