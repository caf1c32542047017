"""Hot reload of rules: the directory stamp, and valid and invalid edits in a running daemon."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from watcher.config import FeedConfig, load_config
from watcher.daemon import Daemon, RunOptions
from watcher.errors import RuleError
from watcher.pipeline import Pools
from watcher.rules.reload import RulesSource

ROOT = Path(__file__).resolve().parents[1]
BAKERY = "name: bakery\nactors: [sourdough]\n"


def test_reload_keeps_previous_rules_on_an_invalid_edit(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BAKERY)
    source = RulesSource(tmp_path)
    assert source.load().names() == ["bakery"]
    assert source.reload() is None  # nothing changed
    (tmp_path / "b.yaml").write_text("name: broken\nactors:\n  X: {typez: [PERSON]}\n")
    error = source.reload()
    assert error is not None and "b.yaml:3:" in error.problems[0]
    assert source.rules.names() == ["bakery"]  # still active
    assert source.reload() is None  # reported once, not on every check
    (tmp_path / "b.yaml").write_text("name: fixed\nkeywords: {bread: [bread]}\n")
    assert source.reload() is None and source.fixed
    assert source.rules.names() == ["bakery", "fixed"]
    assert source.reload() is None and not source.fixed  # said once


TO_EMAIL = "name: desk\nactors: [sourdough]\ndestinations: [email:desk@example.org]\n"
FEED_FILTER = "name: wire\nactors: [sourdough]\nfilters: {feeds: [Reuters World]}\n"


def test_rules_sending_to_a_channel_not_configured_are_refused_at_load_and_reload(
    tmp_path: Path,
) -> None:
    """As `watcher check` refuses them: every alert of such a rule would fail for good."""
    (tmp_path / "a.yaml").write_text(BAKERY)
    source = RulesSource(tmp_path, channels={"console", "jsonl"})
    assert source.load().names() == ["bakery"]
    (tmp_path / "b.yaml").write_text(TO_EMAIL)
    error = source.reload()
    assert isinstance(error, RuleError) and "b.yaml:3:16: " in error.problems[0]  # the item
    assert source.rules.names() == ["bakery"]  # the previous rules stay
    with pytest.raises(RuleError):
        RulesSource(tmp_path, channels={"console", "jsonl"}).load()
    # Once the channel is configured, the same rule loads.
    assert "desk" in RulesSource(tmp_path, channels={"console", "email"}).load().names()
    assert "desk" in RulesSource(tmp_path).load().names()  # no channels given: not checked


def test_rules_filtering_on_an_unknown_feed_are_loaded_with_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[feeds]]\nurl = "http://127.0.0.1:9/feed"\nname = "Wire"\n')
    feeds = load_config(config, env={}).feeds
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(BAKERY)
    source = RulesSource(tmp_path / "rules", feeds=feeds)
    source.load()
    assert source.warnings == []
    (tmp_path / "rules" / "b.yaml").write_text(FEED_FILTER)
    assert source.reload() is None
    assert source.rules.names() == ["bakery", "wire"]
    assert len(source.warnings) == 1 and "b.yaml:3:19: " in source.warnings[0]  # the item


def test_a_destination_or_feed_the_config_lacks_is_named_at_its_own_item(
    tmp_path: Path,
) -> None:
    """Not at the rule's first line: a file of several rules, block lists over lines."""
    (tmp_path / "a.yaml").write_text(
        "name: one\nactors: [sourdough]\n---\nname: two\nactors: [rye]\n"
        "destinations:\n  - console\n  - email:desk@example.org\n"
        "filters:\n  feeds:\n    - Wire\n    - tag:latam\n"
    )
    feeds = [FeedConfig(url="http://127.0.0.1:9/feed", name="Wire")]
    source = RulesSource(tmp_path, feeds=feeds)
    source.load()
    (warning,) = source.warnings
    assert warning.startswith(f"{tmp_path / 'a.yaml'}:12:7: ") and "'tag:latam'" in warning
    with pytest.raises(RuleError) as caught:
        RulesSource(tmp_path, channels={"console"}).load()
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:8:5: ") and "no email channel" in problem


def test_a_rules_folder_without_rules_is_a_warning_in_check_and_the_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from watcher.cli import main

    (tmp_path / "rules").mkdir()
    source = RulesSource(tmp_path / "rules")
    source.load()
    assert len(source.warnings) == 1 and "no rules" in source.warnings[0]
    assert main(["check", "--rules", str(tmp_path / "rules")]) == 0
    assert "warning:" in capsys.readouterr().err
    (tmp_path / "rules" / "a.yaml").write_text(BAKERY)
    assert source.reload() is None and source.warnings == []


def test_the_daemon_refuses_to_start_with_a_rule_sending_to_an_unconfigured_channel(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "desk.yaml").write_text(TO_EMAIL)
    config_path = tmp_path / "config.toml"
    config_path.write_text('[watcher]\ndata_dir = "data"\nrules_dir = "rules"\n')
    with pytest.raises(RuleError):
        Pools.start(load_config(config_path, env={}))


@pytest.mark.slow
async def test_running_daemon_picks_up_valid_edits_and_rejects_invalid_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    config_path = tmp_path / "config.toml"
    config_path.write_text('[watcher]\ndata_dir = "data"\n[articles]\nworkers = 1\n')
    daemon = Daemon(load_config(config_path, env={}))
    task = asyncio.create_task(daemon.run(RunOptions()))
    caplog.set_level(logging.INFO)

    async def until(predicate: object) -> None:
        deadline = asyncio.get_running_loop().time() + 15.0
        while not predicate():  # type: ignore[operator]
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.1)

    try:
        await until(lambda: daemon.pipeline is not None)
        assert daemon.pipeline is not None
        assert daemon.pipeline.rules.rules.names() == ["ukraine-peace", "venezuela"]
        (tmp_path / "rules" / "bad.yaml").write_text("name: bad\nactors: [X]\nthreshhold: 3\n")
        await until(lambda: "rules not reloaded" in caplog.text)
        assert "bad.yaml:3:1" in caplog.text and "did you mean 'threshold'" in caplog.text
        assert daemon.pipeline.rules.rules.names() == ["ukraine-peace", "venezuela"]
        (tmp_path / "rules" / "bad.yaml").write_text(BAKERY)
        await until(lambda: "rules reloaded" in caplog.text)
        assert daemon.pipeline.rules.rules.names() == ["bakery", "ukraine-peace", "venezuela"]
        # A rejected file removed: the rules are the same, and the log says all is well again.
        (tmp_path / "rules" / "worse.yaml").write_text("name: worse\nactors: [X]\nscope: [x]\n")
        await until(lambda: "worse.yaml:3:" in caplog.text)
        (tmp_path / "rules" / "worse.yaml").unlink()
        await until(lambda: "rule files valid again" in caplog.text)
        assert daemon.pipeline.rules.rules.names() == ["bakery", "ukraine-peace", "venezuela"]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 60)


def test_a_fifo_named_yaml_is_refused_without_hanging(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the loader must not open it so."""
    import os

    from watcher.errors import RuleError
    from watcher.rules.loader import load_rules

    (tmp_path / "a.yaml").write_text(BAKERY)
    source = RulesSource(tmp_path)
    assert source.load().names() == ["bakery"]
    os.mkfifo(tmp_path / "x.yaml")
    error = source.reload()  # would block for ever if the FIFO were opened blocking
    assert isinstance(error, RuleError) and "x.yaml:1:1" in error.problems[0]
    assert source.rules.names() == ["bakery"]  # the old rules stay
    with pytest.raises(RuleError):
        load_rules(tmp_path)
    (tmp_path / "x.yaml").unlink()
    (tmp_path / "d.yaml").mkdir()  # a directory named like a rule file: refused too
    with pytest.raises(RuleError):
        load_rules(tmp_path)


def test_watcher_check_reports_a_fifo_rule_file_instead_of_hanging(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    os.mkfifo(tmp_path / "rules" / "x.yaml")
    config = tmp_path / "config.toml"
    config.write_text('[watcher]\ndata_dir = "data"\n')
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,  # generous for a busy machine: it returns in about a second
        check=False,
    )
    assert done.returncode == 1
    assert "x.yaml:1:1" in done.stderr
