"""The command line as users type it: explain, check, backtest, alerts, feeds import/export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.cli import main
from watcher.config import load_config
from watcher.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "000_1e00dd681d865c74.txt"

GEORGIA = """Georgia voters head to the polls in Atlanta suburbs

Voters across the US state of Georgia lined up early on Tuesday in Atlanta and its suburbs for a
runoff election. County officials in Georgia said turnout was strong and that results would be
counted by evening. Candidates spent the last days of the campaign visiting churches and
diners in Savannah, Macon and Athens, promising lower property taxes and better schools.
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    path = tmp_path / "config.toml"
    path.write_text('[watcher]\ndata_dir = "data"\n')
    return path


def test_explain_json_on_the_seed_article_matches_both_rules(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not SEED.exists():
        pytest.skip("../shared/seeds is not present")
    assert main(["explain", "--config", str(config), "--json", str(SEED)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    report = json.loads(line)
    assert {m["rule"] for m in report["matches"]} == {"venezuela", "ukraine-peace"}
    assert report["source"] == str(SEED) and report["language"] == "en"
    venezuela = next(m for m in report["matches"] if m["rule"] == "venezuela")
    assert any(e["term"] == "Nicolás Maduro" for e in venezuela["evidence"])
    assert "Maduro" in report["summary"]
    # the outlet line names the file, as an alert names its outlet; the link ends the alert
    assert report["summary"].split("\n\n")[1].startswith(SEED.name)


def test_explain_text_for_a_near_miss(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    article = tmp_path / "georgia.txt"
    article.write_text(GEORGIA)
    assert main(["explain", "--config", str(config), str(article)]) == 0
    out = capsys.readouterr().out
    assert "== Georgia voters head to the polls" in out
    assert "venezuela: no match" in out and "ukraine-peace: no match" in out
    assert "no alert would be sent" in out


def test_explain_missing_file_is_one_clear_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "--config", str(config), "/nonexistent/a.txt"]) == 1
    assert "/nonexistent/a.txt" in capsys.readouterr().err


def test_check_lists_every_problem(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(config)]) == 0
    assert "OK (0 feeds, 2 rules" in capsys.readouterr().out
    rules = config.parent / "rules"
    (rules / "broken.yaml").write_text("name: broken\nactors:\n  X:\n    typez: [PERSON]\n")
    (rules / "routed.yaml").write_text(
        "name: routed\ndestinations: [email:desk@example.org]\nactors: {Y: {}}\n"
    )
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml:4:5" in err and "typez" in err
    assert "rule routed sends to email:desk@example.org, but no email channel" in err


def test_check_validates_a_rules_folder_given_on_the_command_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule writer checks a scratch folder without writing a config for it."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "jordan.yaml").write_text("actors:\n  Jordan: {ambiguous: [Jordan]}\n")
    assert main(["check", "--config", str(config), "--rules", str(scratch)]) == 0
    assert "1 rule: jordan" in capsys.readouterr().out
    (scratch / "bad.yaml").write_text("actors: [Aa]\nfilters: {languages: [xx]}\n")
    assert main(["check", "--config", str(config), "--rules", str(scratch)]) == 1
    assert "bad.yaml:2:23" in capsys.readouterr().err


def test_config_toml_in_the_current_folder_is_read_without_flags(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README says: copy config.example.toml to config.toml and edit it."""
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    monkeypatch.chdir(config.parent)
    assert main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{config}: OK")
    other = config.parent / "other.toml"
    other.write_text('[watcher]\ndata_dir = "data2"\n')
    monkeypatch.setenv("WATCHER_CONFIG", str(other))  # the environment wins over the folder
    assert main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{other}: OK")
    assert main(["check", "--config", str(config)]) == 0  # and --config over both
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{config}: OK")


def test_check_warns_when_a_telegram_token_has_no_chat_to_alert(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", "123456:test-token-for-the-check")
    assert main(["check", "--config", str(config)]) == 0  # a warning, not a failure
    assert "no chat gets alerts" in capsys.readouterr().err
    config.write_text(config.read_text() + '[telegram]\nchats = ["-1001"]\n')
    assert main(["check", "--config", str(config)]) == 0
    assert "no chat gets alerts" not in capsys.readouterr().err


def test_check_warns_when_a_rule_filter_names_no_configured_feed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(
        config.read_text()
        + '[[feeds]]\nurl = "https://news.example/rss"\nname = "Desk"\ntags = ["latam"]\n'
    )
    rules = config.parent / "rules"
    (rules / "filtered.yaml").write_text(
        "actors: [Aa]\nfilters: {feeds: [desk, tag:LATAM, Old Desk, tag:europe]}\n"
    )
    assert main(["check", "--config", str(config)]) == 0  # warnings, not failures
    warned = [line for line in capsys.readouterr().err.splitlines() if "filters.feeds" in line]
    assert len(warned) == 2  # a renamed feed and a tag nobody has; case does not matter
    assert "'Old Desk'" in warned[0] and "'tag:europe'" in warned[1]


def test_check_warns_when_a_feed_interval_is_below_the_floor(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(
        config.read_text()
        + '[[feeds]]\nurl = "https://news.example/rss"\ninterval = "5s"\n'
        + '[[feeds]]\nurl = "https://news.example/slow"\ninterval = "2h"\n'
        + '[[feeds]]\nurl = "https://news.example/off"\ninterval = "5s"\nenabled = false\n'
    )
    assert main(["check", "--config", str(config)]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "min_interval" in line]
    assert len(warned) == 1 and "https://news.example/rss" in warned[0]
    config.write_text(config.read_text() + '[polling]\ninterval = "30s"\n')
    assert main(["check", "--config", str(config)]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "min_interval" in line]
    assert len(warned) == 2 and "polling.interval" in warned[0]  # every default feed too


def _cli_without_spacy(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a process where `import spacy` fails, as it did in a fresh install
    once typer stopped bringing click (sys.modules[name] = None makes importing it fail)."""
    script = "import sys; sys.modules['spacy'] = None; from watcher.cli import main; "
    return subprocess.run(
        [sys.executable, "-c", f"{script}sys.exit(main(sys.argv[1:]))", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_check_fails_when_spacy_cannot_be_imported(config: Path) -> None:
    ok = _cli_without_spacy("check", "--config", str(config))
    assert ok.returncode == 1
    assert "spaCy cannot be imported (ModuleNotFoundError" in ok.stderr


def test_explain_without_spacy_warns_and_still_matches(config: Path, tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text(
        "Venezuela's opposition rejects the election result\n\nNicolás Maduro's government "
        "in Caracas said on Monday that the election was fair. The opposition said the vote "
        "was stolen and called for protests across Venezuela.\n"
    )
    done = _cli_without_spacy("explain", "--config", str(config), "--json", str(story))
    assert done.returncode == 0, done.stderr
    assert "warning: spaCy cannot be imported" in done.stderr
    report = json.loads(done.stdout)
    assert [m["rule"] for m in report["matches"]] == ["venezuela"]


def test_alerts_and_backtest_on_an_empty_store(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "--config", str(config)]) == 0
    assert "(no alerts yet)" in capsys.readouterr().out
    assert main(["backtest", "--config", str(config), "--since", "2d"]) == 0
    assert "backtest over 0 stored articles" in capsys.readouterr().out
    assert main(["backtest", "--config", str(config), "--since", "soon"]) == 1
    assert "--since: 'soon' is not a duration" in capsys.readouterr().err
    assert main(["backtest", "--config", str(config), "--rule", "venezuelaa"]) == 1
    assert "did you mean 'venezuela'" in capsys.readouterr().err
    for limit in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as refused:
            main(["alerts", "--config", str(config), "--limit", limit])
        assert refused.value.code == 2 and "--limit" in capsys.readouterr().err


def test_feeds_import_export_round_trip(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text("""<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head>
<body><outline text="Venezuela"><outline type="rss" text="Efecto Cocuyo"
 xmlUrl="https://efectococuyo.com/feed/"/></outline>
<outline type="rss" text="BBC" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"
 category="en,world"/></body></opml>""")
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    assert "added 2 feeds" in capsys.readouterr().out
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    assert "added 0 feeds" in capsys.readouterr().out
    assert main(["feeds", "export", "--config", str(config)]) == 0
    exported = capsys.readouterr().out
    assert 'xmlUrl="https://efectococuyo.com/feed/"' in exported and "Venezuela" in exported
    assert main(["feeds", "import", "--config", str(config)]) == 1


def test_an_export_imported_again_keeps_disabled_feeds_and_intervals(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(
        config.read_text()
        + '[[feeds]]\nurl = "https://a.example/rss"\nname = "A"\ninterval = "2h"\n'
        + '[[feeds]]\nurl = "https://b.example/rss"\nname = "B"\nenabled = false\n'
        + '[[feeds]]\nurl = "https://c.example/rss"\nname = "C"\ninterval = "30d"\n'
    )
    assert main(["feeds", "export", "--config", str(config)]) == 0
    exported = tmp_path / "out.opml"
    exported.write_text(capsys.readouterr().out)
    other = tmp_path / "other.toml"
    other.write_text(f'[watcher]\ndata_dir = "{tmp_path / "data2"}"\n')
    assert main(["feeds", "import", str(exported), "--config", str(other)]) == 0
    feeds = {f.name: f for f in load_config(other).feeds}
    assert (feeds["A"].interval, feeds["A"].enabled) == (7200.0, True)
    assert (feeds["B"].interval, feeds["B"].enabled) == (0.0, False)
    assert feeds["C"].interval == 30 * 86400  # no exponent in the OPML or the config
    before = other.read_text()
    bad = tmp_path / "bad.opml"
    bad.write_text(exported.read_text().replace('interval="7200s"', 'interval="-5"'))
    assert main(["feeds", "import", str(bad), "--config", str(other)]) == 1
    huge = tmp_path / "huge.opml"  # parses, but the config refuses it: the file stays as it was
    huge.write_text(
        exported.read_text().replace("https://a.example/rss", "https://d.example/rss")
        .replace('interval="7200s"', 'interval="99999w"')
    )  # fmt: skip
    assert main(["feeds", "import", str(huge), "--config", str(other)]) == 1
    assert other.read_text() == before


def test_import_skips_spelling_variants_and_renames_a_name_clash(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(
        config.read_text() + '[[feeds]]\nurl = "https://a.example/rss"\nname = "Desk"\n'
    )
    opml = tmp_path / "more.opml"
    opml.write_text("""<opml version="2.0"><body>
<outline text="Desk again" xmlUrl="HTTPS://A.example:443/rss?"/>
<outline text="Desk" xmlUrl="https://b.example/rss" category="one"/>
<outline text="Desk" xmlUrl="https://c.example/rss"/>
<outline text="B twice" xmlUrl="https://B.example/rss" category="two"/>
<outline text="Branch" xmlUrl="https://a.example/rss?ref=dev"/>
</body></opml>""")
    assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
    said = capsys.readouterr().out
    assert "added 3 feeds" in said and "(1 already there)" in said
    feeds = {f.url: f for f in load_config(config).feeds}
    assert {url: f.name for url, f in feeds.items()} == {
        "https://a.example/rss": "Desk",
        "https://b.example/rss": "Desk (2)",
        "https://c.example/rss": "Desk (3)",
        "https://a.example/rss?ref=dev": "Branch",  # a query makes another feed
    }
    assert feeds["https://b.example/rss"].tags == ["one", "two"]  # listed twice: both tags


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_feeds_and_alerts_action_has_its_own_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pages = {
        action: _help(action.split(), capsys)
        for action in (
            "feeds",
            "feeds list",
            "feeds import",
            "feeds export",
            "feeds discover",
            "alerts",
            "alerts list",
            "alerts retry",
        )
    }
    assert len(set(pages.values())) == len(pages)  # no generic page shared
    for action, page in pages.items():
        assert page.startswith(f"usage: watcher {action} "), action
    assert "REWRITES the --config FILE" in pages["feeds import"]
    assert "OPML file to import" in pages["feeds import"]
    assert "web page to look at" in pages["feeds discover"]
    for action in ("alerts", "alerts list"):
        assert "--limit N" in pages[action] and "most recent rows" in pages[action]
    assert "failed" in pages["alerts retry"]


def test_feeds_lists_the_configs_feeds_before_the_daemon_reads_them(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(
        config.read_text()
        + '[[feeds]]\nurl = "https://news.example/rss"\nname = "Desk"\n'
        + '[[feeds]]\nurl = "https://news.example/off"\nname = "Off"\nenabled = false\n'
    )
    assert main(["feeds", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    desk = next(line for line in out.splitlines() if line.startswith("Desk "))
    off = next(line for line in out.splitlines() if line.startswith("Off "))
    assert desk.split()[1] == "new" and off.split()[1] == "disabled"
    assert "restart it" in out  # the daemon polls the feeds it read at start
    assert "nothing is polled now" in out  # no daemon has run with this data directory
    read = load_config(config)  # as the daemon reads it at start
    store = open_store(read.store_url)
    store.sync_feeds(read.feeds, datetime.now(UTC))
    store.close()
    assert main(["feeds", "--config", str(config)]) == 0
    assert "restart it" not in capsys.readouterr().out
    config.write_text(
        config.read_text().replace('name = "Desk"\n', 'name = "Desk"\nenabled = false\n')
    )
    assert main(["feeds", "--config", str(config)]) == 0
    assert "restart it" in capsys.readouterr().out  # a setting changed, not only the urls


def test_actions_keep_options_given_before_or_after_them(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeds", "--config", str(config)]) == 0
    before = capsys.readouterr().out
    assert main(["feeds", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out == before
    assert main(["alerts", "--config", str(config), "list"]) == 0
    assert "(no alerts yet)" in capsys.readouterr().out
    assert main(["alerts", "list", "--config", str(config), "--limit", "5"]) == 0
    assert main(["alerts", "--limit", "5", "retry", "--config", str(config)]) == 0
    assert "0 failed deliveries queued again" in capsys.readouterr().out


def test_status_says_whether_the_daemon_runs(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from watcher.health import Heartbeat, write_heartbeat

    assert main(["status", "--config", str(config)]) == 0
    assert "daemon: no heartbeat" in capsys.readouterr().out
    data = load_config(config, env={}).data_dir
    now = datetime.now(UTC)
    write_heartbeat(data, Heartbeat(pid=4242, time=now, started=now, interval=30, state="running"))
    assert main(["status", "--config", str(config)]) == 0
    assert "daemon: running (pid 4242" in capsys.readouterr().out
    write_heartbeat(data, Heartbeat(pid=4242, time=now, started=now, interval=30, state="stopped"))
    assert main(["status", "--config", str(config)]) == 0
    assert "daemon: not running (stopped at" in capsys.readouterr().out


def test_alerts_table_cuts_long_titles_and_reasons_at_a_word_with_an_ellipsis() -> None:
    from zoneinfo import ZoneInfo

    from watcher.cli import format_alerts
    from watcher.store.alerts import AlertRow, DeliveryState

    long = "Maduro faces new sanctions from the US as the government tightens its grip"
    rows = [
        AlertRow(1, "new", "critical", datetime.now(UTC), long, ("venezuela",)),
        AlertRow(2, "new", "normal", datetime.now(UTC), "A" * 80, ("venezuela",)),
        AlertRow(3, "new", "normal", datetime.now(UTC), "Short title", ("venezuela",)),
    ]
    reason = "telegram:-1001: Forbidden: bot was kicked from the group chat (add it back)"
    rows.append(
        AlertRow(
            4,
            "new",
            "normal",
            datetime.now(UTC),
            "Kicked",
            ("venezuela",),
            deliveries=(DeliveryState("telegram:-1001", "failed", reason),),
        )
    )
    table = format_alerts(rows, ZoneInfo("UTC"))
    assert "(telegram:-1001: Forbidden: bot was kicked from the group…)" in table
    assert "Maduro faces new sanctions from the US as the…" in table
    assert "A" * 49 + "…" in table and "Short title" in table
    assert long not in table


def test_check_warns_about_alert_settings_that_never_apply(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "venezuala.html.j2").write_text("<b>{{ title }}</b>")
    config.write_text(
        '[watcher]\ndata_dir = "data"\n'
        '[alerts]\ndigest_at = []\ntemplates_dir = "templates"\n'
        '[destinations."jsnol"]\nquiet_hours = "22:00-07:00"\n'
    )
    assert main(["check", "--config", str(config)]) == 0  # warnings, not errors
    err = capsys.readouterr().err
    assert "alerts.digest_at is empty" in err
    assert '[destinations."jsnol"]' in err and "did you mean 'jsonl'" in err
    assert "'venezuala' is named after no rule" in err and "did you mean 'venezuela'" in err
    config.write_text('[watcher]\ndata_dir = "data"\n[destinations."jsonl"]\nquiet_hours = ""\n')
    assert main(["check", "--config", str(config)]) == 0
    assert "warning" not in capsys.readouterr().err
