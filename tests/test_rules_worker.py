"""The worker job's plumbing: rules cross into workers once per version; workers preload."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import NlpSettings
from watcher.rules import worker
from watcher.rules.schema import RuleSet, load_rules, parse_rules
from watcher.rules.worker import EntryJob, process_entry, ship_rules
from watcher.workers import CpuPool

ROOT = Path(__file__).resolve().parents[1]


def test_loaded_rules_are_pickled_once_and_unpickled_once(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    rules = load_rules(tmp_path / "rules")
    first, second = pickle.dumps(rules), pickle.dumps(rules)
    assert first == second
    received = pickle.loads(first)
    assert received == rules and received.fingerprint == rules.fingerprint
    assert pickle.loads(second) is received  # same version: the copy already held is reused

    (tmp_path / "rules" / "extra.yaml").write_text("actors: [Caracas]\n")
    edited = load_rules(tmp_path / "rules")
    assert sorted(pickle.loads(pickle.dumps(edited)).names()) == sorted([*rules.names(), "extra"])


def test_rules_without_fingerprint_pickle_as_plain_values() -> None:
    rules = RuleSet(tuple(parse_rules("actors: [Caracas]\n")))
    copy = pickle.loads(pickle.dumps(rules))
    assert copy == rules and copy is not rules and copy.fingerprint == ""


async def test_worker_process_matches_with_rules_sent_by_fingerprint() -> None:
    rules = load_rules(ROOT / "rules")
    job = EntryJob(
        url="https://example.org/a",
        html=None,
        fetch_error="the entry has no link",
        feed_title="Maduro answers US warships off Venezuela",
        feed_content="",
        feed_summary="Venezuelan President Nicolás Maduro called up militia units in Caracas "
        "after the United States sent warships to the Caribbean.",
        published=None,
        feed_name="Loop",
        feed_tags=(),
        language_hint="en",
        min_text_chars=300,
    )
    pool = CpuPool(1)
    try:
        for _ in range(2):  # the second call finds the rules already in the worker
            done = await pool(process_entry, job, rules, NlpSettings(), datetime.now(UTC))
            assert [m.rule for m in done.matches] == ["venezuela"]
    finally:
        pool.shutdown()


def test_a_rule_set_crosses_to_workers_as_a_reference_not_its_rules(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    rules = load_rules(tmp_path / "rules")
    whole = pickle.dumps(rules.rules)
    sent = pickle.dumps(rules)
    # The rules are written to a file once per version; each job carries its path only.
    assert len(sent) < 1024 < len(whole)


def preloaded_state(fingerprint: str) -> tuple[bool, bool]:
    import sys

    from watcher.rules import worker

    built = any(key[0] == fingerprint for key in worker._MATCHERS)
    return "spacy" in sys.modules, built


async def test_article_workers_load_models_and_rules_before_their_first_job() -> None:
    rules = load_rules(ROOT / "rules")
    pool = CpuPool(
        1, preload="watcher.rules.worker:preload", preload_args=(NlpSettings(), ship_rules(rules))
    )
    try:
        spacy_loaded, matcher_built = await pool(preloaded_state, rules.fingerprint)
    finally:
        pool.shutdown()
    assert spacy_loaded and matcher_built


_DATED_PAGE = (
    b"<html><head><title>Caracas</title>"
    b'<meta property="article:published_time" content="2024-03-02T10:00:00Z"></head>'
    b"<body><article><h1>Caracas</h1>"
    + b"<p>Officials met in Caracas on Monday to talk about the oil trade and prices.</p>" * 8
    + b"</article></body></html>"
)


def test_the_page_date_is_a_fallback_for_an_entry_without_one() -> None:
    """The worker skips the page's date search when the feed gave a date: the feed's wins."""
    fed = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    job = EntryJob(
        url="https://example.org/caracas", html=_DATED_PAGE, fetch_error="", feed_title="",
        feed_content="", feed_summary="", published=fed, feed_name="Loop", feed_tags=(),
        language_hint="en", min_text_chars=100,
    )  # fmt: skip
    rules, now = RuleSet(()), datetime.now(UTC)
    assert process_entry(job, rules, NlpSettings(), now).article.published == fed
    undated = dataclasses.replace(job, published=None)
    page_date = datetime(2024, 3, 2, tzinfo=UTC)
    assert process_entry(undated, rules, NlpSettings(), now).article.published == page_date


def test_an_article_without_a_declared_language_is_stored_with_the_detected_one() -> None:
    """The page declares no language and the feed none: the detected one is the article's
    (the web page's language filter and alerts.jsonl read it); a declared one is kept."""
    text = (
        "<p>El gobierno anunció el lunes que las conversaciones con la oposición se "
        "reanudarán en la capital, según dijeron los negociadores a la prensa.</p>"
    )
    page = f"<html><head><title>Noticias</title></head><body><article>{text * 4}</article>"
    job = EntryJob(
        url="https://example.org/es", html=page.encode(), fetch_error="", feed_title="",
        feed_content="", feed_summary="", published=None, feed_name="Loop", feed_tags=(),
        language_hint="", min_text_chars=100,
    )  # fmt: skip
    rules, now = RuleSet(()), datetime.now(UTC)
    assert process_entry(job, rules, NlpSettings(), now).article.language == "es"
    declared = dataclasses.replace(job, language_hint="pt")
    assert process_entry(declared, rules, NlpSettings(), now).article.language == "pt"


def test_rules_folders_of_dead_daemons_are_removed_and_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon killed by SIGKILL leaves its rules folder behind; the next one removes it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where gettempdir() looks
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"watcher-rules-{gone.pid}-abc"
    live = tmp_path / f"watcher-rules-{os.getpid()}-def"
    other = tmp_path / "watcher-rules-xyz"  # an older name without a pid: not ours to judge
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "0-rules.pickle").write_bytes(b"x")
    worker._remove_orphans()
    assert not dead.exists() and live.exists() and other.exists()


def test_preload_without_spacy_says_so_and_warms_up() -> None:
    """A worker whose spaCy cannot be imported logs why once and still matches without it."""
    script = (
        "import sys; sys.modules['spacy'] = None\n"
        "from watcher.config import NlpSettings\n"
        "from watcher.rules.worker import preload\n"
        "preload(NlpSettings(), None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "spaCy cannot be imported (ModuleNotFoundError" in done.stderr
    assert "preload failed" not in done.stderr
