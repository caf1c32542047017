"""Per-rule Jinja2 templates: discovery by rule name, escaping, the sandbox, errors naming
the file and line, `watcher check`, the fallback to the built-in layout, and hot reload."""

from __future__ import annotations

import logging
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from botapi import BotApiServer
from daemonproc import DaemonProcess, stream_config, wait_for
from feedstream import FeedStream, Story
from httpserver import HttpServer

from watcher.alerts.compose import TELEGRAM_LIMIT, build_payload, render
from watcher.alerts.outbox import compose
from watcher.alerts.templates import (
    Templates,
    TemplatesSource,
    check_templates,
    templates_folder,
)
from watcher.channels.telegram import TelegramChannel
from watcher.cli import main
from watcher.config import Secret
from watcher.errors import ConfigError
from watcher.store.outbox import DeliveryJob
from watcher.types import Article, ArticleSource, Evidence, Match

UTC = ZoneInfo("UTC")
NOW = datetime(2026, 1, 5, tzinfo=UTC)
TEXT = "Maduro spoke in Caracas on Monday. Talks <resume> & go on. Nobody else spoke."


def write(folder: Path, rule: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{rule}.html.j2"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def payload(title: str = "Maduro <speaks> & more") -> dict[str, object]:
    article = Article(
        url="https://news.example/1?a=1&b=2",
        title=title,
        text=TEXT,
        source=ArticleSource.PAGE,
        feed_name="Outlet",
    )
    found = Evidence("actor", "Nicolás Maduro", "Maduro", "text", TEXT, 0, 6, weight=2.0)
    m = Match("venezuela", 5.0, 3.0, (found,), "critical", (), ())
    return build_payload(article, [m], source="Outlet", quotes=2)


TEMPLATE = """\
    {{ mark }} <b>{{ title }}</b> ({{ source }})
    {% for q in quotes %}
    » {{ q.html }}
    {% endfor %}
    {% for r in rules %}{{ r.name }}: {% for t in r.terms %}{{ t.shown }}{% endfor %}{% endfor %}
    <a href="{{ url }}">Open</a>
    """


def test_a_rule_template_lays_out_its_alerts_escaped(tmp_path: Path) -> None:
    write(tmp_path / "t", "venezuela", TEMPLATE)
    templates = Templates.load(tmp_path / "t")
    assert templates.names() == ["venezuela"] and templates.for_rules(["x", "venezuela"])
    msg = render(payload(), tz=UTC, template=lambda c: templates.render("venezuela", c))
    assert msg.html.startswith("🚨 <b>Maduro &lt;speaks&gt; &amp; more</b> (Outlet)")
    assert "» <b>Maduro</b> spoke in Caracas on Monday." in msg.html  # Markup kept as is
    assert "venezuela: Maduro" in msg.html
    assert 'href="https://news.example/1?a=1&amp;b=2"' in msg.html
    assert "<b>" not in msg.text and "Maduro <speaks> & more" in msg.text


def test_rules_without_a_template_keep_the_built_in_layout(tmp_path: Path) -> None:
    write(tmp_path / "t", "other-rule", TEMPLATE)
    templates = Templates.load(tmp_path / "t")
    assert templates.for_rules(["venezuela"]) is None
    assert Templates.load(None).names() == []


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t", "venezuela", "<b>{{ title }}</b>\n{% for q in quotes %}\n")
    with pytest.raises(ConfigError) as info:
        Templates.load(tmp_path / "t")
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:")
    assert check_templates(tmp_path / "t")[0].startswith(f"{path}:")


def test_check_renders_a_sample_and_names_the_line_of_an_unknown_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "t", "venezuela", "<b>{{ title }}</b>\n\n{{ nonsense.field }}\n")
    write(tmp_path / "t", "fine", TEMPLATE)
    (problem,) = check_templates(tmp_path / "t")
    assert problem.startswith(f"{path}:3:")
    assert check_templates(None) == []
    with pytest.raises(ConfigError):
        Templates.load(tmp_path / "missing")


def test_check_renders_a_new_alert_and_an_update_both(tmp_path: Path) -> None:
    """A template reading sources[0] passed the check (its sample had sources) and failed on
    every new alert, which has none."""
    body = "<b>{{ title }}</b>\nAlso: {{ sources[0].name }}\n"
    path = write(tmp_path / "t", "venezuela", body)
    (problem,) = check_templates(tmp_path / "t")
    assert problem.startswith(f"{path}:2:")
    write(tmp_path / "t", "venezuela", "{% if sources %}{{ sources[0].name }}{% endif %}")
    assert check_templates(tmp_path / "t") == []


def test_the_sandbox_refuses_to_reach_outside_the_alert(tmp_path: Path) -> None:
    write(tmp_path / "t", "venezuela", "{{ title.__class__.__mro__[1].__subclasses__() }}")
    templates = Templates.load(tmp_path / "t")
    with pytest.raises(ConfigError):
        templates.render("venezuela", {"title": "x"})
    assert check_templates(tmp_path / "t")


def test_a_template_rendering_too_much_is_cut_to_fit(tmp_path: Path) -> None:
    write(tmp_path / "t", "venezuela", "{% for i in range(3000) %}<b>{{ title }}</b> {% endfor %}")
    templates = Templates.load(tmp_path / "t")
    msg = render(payload(), tz=UTC, template=lambda c: templates.render("venezuela", c))
    assert len(msg.html.encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT


def _job() -> DeliveryJob:
    return DeliveryJob(
        id=1, alert_id=1, destination="telegram:-1001", kind="send", attempts=0,
        alert_kind="new", payload=payload(), story_id=1,
    )  # fmt: skip


async def test_the_outbox_sends_the_template_and_falls_back_when_it_fails(
    tmp_path: Path, bot_api: BotApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "good", "venezuela", TEMPLATE)
    good = compose(_job(), UTC, NOW, templates=Templates.load(tmp_path / "good"))
    assert good is not None and good.html.startswith("🚨 <b>Maduro")
    channel = TelegramChannel(Secret(bot_api.token), api_base_url=bot_api.base_url)
    try:
        await channel.send("-1001", good)
    finally:
        await channel.aclose()
    (sent,) = bot_api.sent("-1001")
    assert sent.parse_mode == "HTML" and "» <b>Maduro</b>" in (sent.text or "")

    write(tmp_path / "bad", "venezuela", "{{ 1 // 0 }}")
    caplog.set_level(logging.ERROR)
    fallback = compose(_job(), UTC, NOW, templates=Templates.load(tmp_path / "bad"))
    assert fallback is not None and "Why:" in fallback.html  # the built-in layout
    assert "venezuela.html.j2:1" in caplog.text


def test_the_folder_is_relative_to_the_config(tmp_path: Path) -> None:
    assert templates_folder("", tmp_path / "c.toml") is None
    assert templates_folder("tpl", tmp_path / "c.toml") == (tmp_path / "tpl").resolve()


def test_watcher_check_reports_templates_senders_and_webhooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "name: venezuela\ndestinations: [webhook:desk]\nkeywords: {k: [oil]}\n"
    )
    (tmp_path / "hook.secret").write_text("s3cret\n")
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent("""\
        [watcher]
        data_dir = "data"
        rules_dir = "rules"
        [alerts]
        templates_dir = "templates"
        [email]
        host = "127.0.0.1"
        security = "none"
        sender = "watcher <watcher@localhost>"
        recipients = ["me@localhost"]
        [webhook]
        endpoints = { desk = "https://hooks.example.org/watcher" }
        secret_file = "hook.secret"
        """)
    )
    write(tmp_path / "templates", "venezuela", TEMPLATE)
    assert main(["check", "--config", str(config)]) == 0, capsys.readouterr().err
    broken = write(tmp_path / "templates", "venezuela", "<b>{{ title }}</b>\n{{ oops(1) }}\n")
    assert main(["check", "--config", str(config)]) == 1
    assert f"{broken}:2:" in capsys.readouterr().err


# --- reload -------------------------------------------------------------------------------


def test_an_edit_is_picked_up_and_a_bad_one_keeps_the_previous_templates(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    write(folder, "venezuela", "FIRST {{ title }}")
    source = TemplatesSource(folder)
    assert source.load().names() == ["venezuela"]
    assert source.reload() is None  # nothing changed
    first = source.templates

    write(folder, "venezuela", "SECOND VERSION {{ title }}")
    assert source.reload() is None
    assert source.templates is not first
    assert source.templates.render("venezuela", {"title": "t"}) == "SECOND VERSION t"

    # A syntax error, then a template that compiles but fails on a sample alert (an unknown
    # variable): both refused with file and line, the working templates stay.
    second = source.templates
    for broken in ("{% if %}", "ok\n{{ no_such_thing.at_all }}"):
        path = write(folder, "venezuela", broken)
        error = source.reload()
        assert isinstance(error, ConfigError), broken
        assert any(p.startswith(f"{path}:") for p in error.problems), error.problems
        assert source.templates is second
        assert source.reload() is None  # the same bad edit is reported once

    write(folder, "ukraine-peace", "PEACE {{ title }}")
    (folder / "venezuela.html.j2").unlink()
    assert source.reload() is None
    assert source.templates.names() == ["ukraine-peace"]
    (folder / "ukraine-peace.html.j2").unlink()
    assert source.reload() is None
    assert source.templates.names() == []  # the built-in layout again


def test_start_up_keeps_a_template_failing_the_sample_and_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    write(folder, "ukraine-peace", "PEACE {{ title }}")
    broken = write(folder, "venezuela", "ok\n{{ sources[0] }}")  # no sources on a new alert
    source = TemplatesSource(folder)
    assert source.load().names() == ["ukraine-peace", "venezuela"]  # it still starts
    assert [p.partition(" ")[0] for p in source.problems] == [f"{broken}:2:"]
    write(folder, "venezuela", "VENEZUELA {{ title }}")
    assert source.load().names() == ["ukraine-peace", "venezuela"] and source.problems == []


def test_without_a_folder_there_is_nothing_to_reload() -> None:
    source = TemplatesSource(None)
    assert source.load().names() == []
    assert source.reload() is None


def test_a_running_daemon_sends_with_the_edited_template_and_keeps_it_on_a_bad_edit(
    tmp_path: Path, http_server: HttpServer, bot_api: BotApiServer
) -> None:
    stream = FeedStream(http_server, seed=11, total=3)
    stream.auto = False
    folder = tmp_path / "templates"
    write(folder, "lighthouses", '<a href="{{ url }}">FIRST</a> {{ title }}')
    config = stream_config(tmp_path, stream, bot_api, data_dir=tmp_path / "data")
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[alerts]\n", f'[alerts]\ntemplates_dir = "{folder}"\n'
        ),
        encoding="utf-8",
    )

    def alert_of(story: Story, daemon: DaemonProcess) -> str:
        def sent() -> list[str]:
            return [
                r.text or ""
                for r in bot_api.sent("1001")
                if stream.numbers_in([r.text]) == [story.number]
            ]

        wait_for(lambda: bool(sent()), 60, f"the alert of story {story.number}", daemon)
        return sent()[0]

    data = tmp_path / "data"
    with DaemonProcess.start(
        config, token=bot_api.token, log=tmp_path / "log", data_dir=data
    ) as daemon:
        daemon.wait_running()
        assert "FIRST" in alert_of(stream.publish(), daemon)
        write(folder, "lighthouses", '<a href="{{ url }}">SECOND</a> {{ title }}')
        wait_for(lambda: "templates reloaded" in daemon.output(), 60, "the reload", daemon)
        assert "SECOND" in alert_of(stream.publish(), daemon)
        broken = write(folder, "lighthouses", "{{ title }} {{ no_such_thing.at_all }}")
        wait_for(lambda: "templates not reloaded" in daemon.output(), 60, "the refusal", daemon)
        assert f"{broken}:1" in daemon.output()
        assert "SECOND" in alert_of(stream.publish(), daemon)
        assert daemon.stop() == 0, daemon.tail()
    # Started with that template, the daemon names it at once, and runs.
    with DaemonProcess.start(
        config, token=bot_api.token, log=tmp_path / "log2", data_dir=data
    ) as daemon:
        daemon.wait_running()
        assert f"{broken}:1" in daemon.output()
        assert daemon.stop() == 0, daemon.tail()
