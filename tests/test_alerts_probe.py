"""`watcher send-test`: a test message to each destination, through the real channels, to a
loopback Bot API, an aiosmtpd server and a loopback webhook receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botapi import BotApiServer
from httpserver import HttpServer, RecordedRequest, Reply
from smtpserver import SmtpServer

from watcher.alerts import probe
from watcher.channels.webhook import EVENT_HEADER, SECRET_ENV, SIGNATURE_HEADER, verify
from watcher.cli import main
from watcher.config import config_from_dict
from watcher.rules.schema import parse_rules

CHAT, DESK_CHAT = "-1001", "-1002"
MAILBOX = "desk@example.org"
SECRET = "probe-signing-secret"

RULES = {
    "venezuela.yaml": "name: venezuela\nkeywords: {k: [Maduro]}\nmatch: {term: k}\n",
    "ukraine.yaml": "name: ukraine\nkeywords: {k: [Kyiv]}\nmatch: {term: k}\n",
    # routed to one chat only, besides the defaults of the other rules
    "desk.yaml": (
        "name: desk\nkeywords: {k: [Caracas]}\nmatch: {term: k}\n"
        f'destinations: ["telegram:{DESK_CHAT}"]\n'
    ),
}


class Hook:
    """A webhook receiver that records each verified POST with its event header."""

    def __init__(self, server: HttpServer, status: int = 204) -> None:
        self.status = status
        self.posts: list[tuple[str, dict[str, object]]] = []
        self.url = server.route_handler("/hook", self._handle)

    def _handle(self, request: RecordedRequest) -> Reply:
        if not verify(request.body, SECRET, request.header(SIGNATURE_HEADER)):
            return Reply(401)
        self.posts.append((request.header(EVENT_HEADER) or "", json.loads(request.body)))
        return Reply(self.status)


def _setup(
    tmp_path: Path,
    bot_api: BotApiServer,
    smtp: SmtpServer,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in RULES.items():
        (rules / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", bot_api.token)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[watcher]
data_dir = "data"
rules_dir = "rules"
timezone = "Europe/Madrid"

[telegram]
chats = ["{CHAT}"]
api_base_url = "{bot_api.base_url}"
timeout = "5s"

{smtp.email_config(MAILBOX)}
[webhook]
endpoints = {{ desk = "{hook.url}" }}
timeout = "5s"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def hook(http_server: HttpServer) -> Hook:
    return Hook(http_server)


@pytest.fixture
def config(
    tmp_path: Path,
    bot_api: BotApiServer,
    smtp_server: SmtpServer,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    return _setup(tmp_path, bot_api, smtp_server, hook, monkeypatch)


def test_every_destination_gets_one_test_message_naming_its_rules(
    config: Path,
    bot_api: BotApiServer,
    smtp_server: SmtpServer,
    hook: Hook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["send-test", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    for destination in (f"telegram:{CHAT}", f"email:{MAILBOX}", "webhook:desk"):
        assert f"{destination}: delivered" in out
    assert f"telegram:{DESK_CHAT}: delivered" in out
    # Telegram: one message per chat; the default chat names the two rules without
    # destinations, the desk chat only its own rule.
    (default,) = bot_api.sent(CHAT)
    (desk,) = bot_api.sent(DESK_CHAT)
    assert default.text is not None and desk.text is not None
    assert "ukraine" in default.text and "venezuela" in default.text
    assert "desk" not in default.text.replace("watcher send-test", "")
    assert "desk" in desk.text and "venezuela" not in desk.text
    # Email: one mail to the recipient, a test subject, the rules in the plain text.
    (mail,) = smtp_server.wait_for(1)
    assert mail.rcpt_tos == [MAILBOX]
    assert "test" in str(mail.message["Subject"]).lower()
    body = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "venezuela" in body and "ukraine" in body
    # Webhook: a signed POST whose event is "test", so a receiver can tell it from an alert.
    ((event, document),) = hook.posts
    assert event == "test" and document["event"] == "test"
    assert document["data"] == {  # rule files are read in name order
        "kind": "test", "rules": ["ukraine", "venezuela"], "host": document["data"]["host"],  # type: ignore[index]
    }  # fmt: skip


def test_named_destinations_only_and_a_failing_one_exits_1_after_the_others(
    config: Path,
    bot_api: BotApiServer,
    smtp_server: SmtpServer,
    hook: Hook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot_api.fail_chat(CHAT, 403, "Forbidden: bot was kicked from the group chat")
    argv = ["send-test", "--config", str(config), f"telegram:{CHAT}", "webhook:desk"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"telegram:{CHAT}: not delivered" in captured.err
    assert "kicked" in captured.err
    assert "webhook:desk: delivered" in captured.out
    assert len(hook.posts) == 1
    assert smtp_server.received == []  # not named: not sent
    assert bot_api.sent(DESK_CHAT) == []
    assert bot_api.token not in captured.err + captured.out  # the token is never printed


def test_a_destination_that_is_down_is_reported_as_retryable(
    config: Path, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_server.stop()
    assert main(["send-test", "--config", str(config), f"email:{MAILBOX}"]) == 1
    err = capsys.readouterr().err
    assert f"email:{MAILBOX}: not delivered" in err and "try again later" in err


def test_a_refused_recipient_prints_the_servers_answer_and_is_final(
    config: Path, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp_server.fail_next("RCPT", "550 5.1.1 No such user here")
    assert main(["send-test", "--config", str(config), f"email:{MAILBOX}"]) == 1
    err = capsys.readouterr().err
    assert "No such user here" in err and "try again later" not in err


@pytest.mark.parametrize(
    "destination",
    ["pager:duty", "telegram:not a chat", "email:no-at-sign", "webhook:nowhere", "console"],
)
def test_a_destination_that_cannot_be_tested_sends_nothing(
    config: Path,
    bot_api: BotApiServer,
    hook: Hook,
    destination: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["send-test", "--config", str(config), f"telegram:{CHAT}", destination])
    err = capsys.readouterr().err
    if destination in ("webhook:nowhere", "console"):
        # well formed and configured: tried, and the unknown endpoint is the one failure;
        # the console takes it (a local sink is tested only when named)
        assert code == (1 if destination == "webhook:nowhere" else 0), err
        return
    assert code == 1
    assert destination in err
    assert bot_api.sent(CHAT) == [] and hook.posts == []  # nothing half-sent


def test_without_a_remote_destination_it_says_what_to_configure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[watcher]\ndata_dir = "data"\n')
    assert main(["send-test", "--config", str(config)]) == 1
    assert "[telegram] chats" in capsys.readouterr().err


def test_a_channel_the_config_does_not_turn_on_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[watcher]\ndata_dir = "data"\n')
    assert main(["send-test", "--config", str(config), "email:desk@example.org"]) == 1
    assert "no email channel is configured" in capsys.readouterr().err


def test_routes_send_rules_without_destinations_to_the_defaults_and_skip_local_sinks(
    tmp_path: Path,
) -> None:
    config = config_from_dict(
        {
            "telegram": {"chats": ["-1001", "-1003"]},
            "email": {
                "host": "127.0.0.1",
                "sender": "w@example.org",
                "recipients": ["a@example.org"],
            },
        }
    )
    rules = parse_rules(
        "name: a\nkeywords: {k: [x]}\nmatch: {term: k}\n---\n"
        "name: b\nkeywords: {k: [y]}\nmatch: {term: k}\ndestinations: [telegram:-1003, console]\n",
        tmp_path / "r.yaml",
    )
    assert probe.routes(config, rules) == {
        "telegram:-1001": ("a",),
        "telegram:-1003": ("a", "b"),
        "email:a@example.org": ("a",),
    }
