"""What `watcher explain` prints: the about header, keyword groups, JSON and JSONL inputs.

Every rule and article here is synthetic, written for these tests.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watcher.articles.extract import article_from_file, article_from_json
from watcher.bot.replies import held_by_mutes
from watcher.cli import main
from watcher.config import NlpSettings
from watcher.errors import ParseError
from watcher.rules.about import Part, about_lines, aboutness
from watcher.rules.explain import explain, format_explanation
from watcher.rules.match import Matcher
from watcher.rules.model import About
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import RuleSet, parse_rules
from watcher.types import Article, ArticleSource

NOW = datetime(2026, 12, 7, tzinfo=UTC)

CAPTIVES = """\
name: captives
actors:
  Red Cross: {}
keywords:
  captivity:
    en: [hostage, ransom]
match:
  any: [captivity]
"""


def matcher(rules_yaml: str) -> Matcher:
    ruleset = RuleSet(tuple(parse_rules(textwrap.dedent(rules_yaml))))
    return Matcher(ruleset, Analyzer(NlpSettings(), ruleset))


def report(rules_yaml: str, title: str, text: str) -> dict[str, Any]:
    article = Article("https://example.org/a", title, text, ArticleSource.FILE, language="en")
    return explain("a.txt", article, matcher(rules_yaml), now=NOW)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "captives.yaml").write_text(CAPTIVES)
    path = tmp_path / "config.toml"
    path.write_text('[watcher]\ndata_dir = "data"\nrules_dir = "rules"\n')
    return path


def run(config: Path, *inputs: Path, json_out: bool = True) -> int:
    flags = ["--json"] if json_out else []
    return main(["explain", "--config", str(config), *flags, *map(str, inputs)])


# --- 1. the about header names a failed requirement -------------------------------------


def test_about_header_names_the_failed_requirement() -> None:
    about = About(min_score=1, require=(("title", 0.5),))
    result = aboutness(about, [Part(False, (0, 1, 2))], window=0, sentences=3, words=60)
    assert result.score >= result.min_score and not result.ok

    header, *features = about_lines(result, "hostages")

    assert header.startswith("✗ about hostages:")
    assert re.search(r"title 0\.00 < required 0\.5", header)
    assert not any("required" in line for line in features)  # said once, where it decides


def test_about_header_without_requirements_shows_the_score() -> None:
    result = aboutness(About(min_score=5), [Part(True, ())], window=0, sentences=3, words=60)
    header = about_lines(result, "hostages")[0]
    assert header.startswith("✗ about hostages: score 2.00") and "< min_score 5" in header


# --- 2. a term's matched forms ----------------------------------------------------------


def test_a_term_line_says_more_forms_were_matched() -> None:
    """The line is written by watcher/rules/match.py's _term_lines (its forms were cut to 5)."""
    crimes = "[arson, bribery, fraud, heist, looting, murder, theft]"
    rules = f"name: r\nkeywords:\n  crime:\n    en: {crimes}\n"
    text = "Arson. Bribery. Fraud. A heist. Looting. Murder. Theft."
    reasons = report(rules, "Police log", text)["verdicts"][0]["reasons"]
    line = next(r for r in reasons if r.startswith("keyword crime: 7 mentions"))
    assert "2 more" in line


# --- 3. keyword groups and phrases ------------------------------------------------------


def test_json_evidence_names_the_group_and_keeps_the_phrase() -> None:
    text = "The hostages were freed by the Red Cross. No ransom was paid."
    out = report(CAPTIVES, "Talks", text)

    (verdict,) = out["verdicts"]
    assert [(e["kind"], e["group"], e["term"], e["matched"]) for e in verdict["evidence"]] == [
        ("keyword", "captivity", "hostage", "hostages"),
        ("actor", "Red Cross", "Red Cross", "Red Cross"),
        ("keyword", "captivity", "ransom", "ransom"),
    ]
    assert out["matches"][0]["evidence"] == verdict["evidence"]


def test_a_phrase_in_two_groups_is_credited_to_each() -> None:
    rules = CAPTIVES.replace("match:", "  money:\n    en: [ransom]\nmatch:")
    out = report(rules, "Talks", "No ransom was paid.")
    evidence = out["verdicts"][0]["evidence"]
    assert [(e["group"], e["term"]) for e in evidence] == [
        ("captivity", "ransom"),
        ("money", "ransom"),
    ]


def test_text_evidence_names_the_group_and_the_phrase() -> None:
    text = format_explanation(report(CAPTIVES, "Talks", "The hostages were freed."))
    (line,) = [x for x in text.splitlines() if x.strip().startswith("- keyword")]
    assert "captivity" in line and "'hostage'" in line and "'hostages'" in line


def test_the_bot_still_reads_the_report_evidence() -> None:
    """The bot rebuilds Evidence from each evidence dict of the shared report."""
    shared = report(CAPTIVES, "Talks", "The hostages were freed.")
    assert shared["matches"] and held_by_mutes(shared, frozenset()) == {}


# --- 4. JSON and JSON lines inputs; a text file without text ----------------------------


def test_jsonl_explains_each_record_in_order(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    records = [
        {
            "id": "a1",
            "title": "Hostage freed",
            "text": "A hostage was freed.",
            "url": "https://news.example.org/1",
            "lang": "en",
        },
        {"title": "Budget", "text": "The council passed a budget.", "url": "https://x.org/b"},
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in records) + "\n")

    assert run(config, corpus) == 0

    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in out] == [f"{corpus}#a1", f"{corpus}:2"]
    assert [r["title"] for r in out] == ["Hostage freed", "Budget"]
    assert out[0]["language"] == "en" and out[0]["length"] == len("A hostage was freed.")
    assert [m["rule"] for m in out[0]["matches"]] == ["captives"] and not out[1]["matches"]
    assert out[1]["url"] == "https://x.org/b"
    # the alert names the record's site as its outlet, as an alert from a feed would
    assert out[0]["summary"].split("\n\n")[1].startswith("news.example.org")


def test_a_bad_jsonl_line_is_named_and_the_rest_explained(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    good = json.dumps({"id": 7, "title": "Hostage freed"})
    corpus.write_text(f"{good}\nnot json\n\n[1, 2]\n{json.dumps({'id': 9})}\n{good}\n")

    assert run(config, corpus) == 1

    captured = capsys.readouterr()
    assert [json.loads(line)["source"] for line in captured.out.splitlines()] == [
        f"{corpus}#7",
        f"{corpus}#7",
    ]
    errors = captured.err.splitlines()
    assert [e.split(": ")[1] for e in errors] == [f"{corpus}:{n}" for n in (2, 4, 5)]


def test_hostile_jsonl_lines_are_named_and_the_rest_explained(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nesting past the recursion limit, a number past int's digit limit and a byte that is
    not UTF-8 are errors of their own line; a line separator inside a record's text (JSON
    writers leave U+2028 unescaped) does not split the record."""
    corpus = tmp_path / "corpus.jsonl"
    good = json.dumps({"id": "g", "title": "Hostage freed"}).encode()
    cafe = b'{"title": "caf'  # then a Latin-1 é
    lines = [
        json.dumps(
            {"id": "ls", "title": "Two\u2028lines", "text": "A\u2028B"}, ensure_ascii=False
        ).encode(),
        b"[" * 100_000,
        b'{"title": "T", "n": ' + b"7" * 5000 + b"}",
        cafe + b'\xe9"}',
        good,
    ]
    corpus.write_bytes(b"\r\n".join(lines) + b"\r\n")

    assert run(config, corpus) == 1

    captured = capsys.readouterr()
    sources = [json.loads(line)["source"] for line in captured.out.splitlines()]
    assert sources == [f"{corpus}#ls", f"{corpus}#g"]
    errors = captured.err.splitlines()
    assert [e.split(": ")[1] for e in errors] == [
        f"{corpus}:2",
        f"{corpus}:3",
        f"{corpus}:4:{len(cafe) + 1}",
    ]


def test_a_json_file_is_one_article(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "story.json"
    path.write_text(json.dumps({"title": "Hostage freed", "text": "Ransom paid.", "lang": "es"}))
    article = article_from_file(path)
    assert (article.title, article.text, article.language) == (
        "Hostage freed",
        "Ransom paid.",
        "es",
    )
    assert article.url == path.resolve().as_uri()


@pytest.mark.parametrize(
    "text",
    ['{"title": "T"', "[]", '"a title"', '{"id": 1}', '{"title": ["T"]}', '{"text": "   "}'],
)
def test_not_an_article_object_is_a_parse_error_naming_where(text: str) -> None:
    with pytest.raises(ParseError, match=r"^corpus\.jsonl:3: "):
        article_from_json(text, where="corpus.jsonl:3")


def test_a_json_file_that_is_not_an_object_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "story.json"
    path.write_text('[{"title": "T"}]')
    with pytest.raises(ParseError, match=re.escape(str(path))):
        article_from_file(path)


def test_a_text_file_with_only_a_title_says_so(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "title.txt"
    path.write_text("Hostage talks resume\n\n")

    assert run(config, path) == 0
    assert "no text" in json.loads(capsys.readouterr().out)["note"]

    assert run(config, path, json_out=False) == 0
    assert "note: the file has a title line and no text" in capsys.readouterr().out


def test_a_text_file_with_a_body_has_no_note(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("Hostage talks resume\nNegotiators met on Monday.\n")
    assert "note" not in article_from_file(path).extra
