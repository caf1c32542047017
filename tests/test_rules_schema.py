"""Tests for watcher.rules.schema: the rule format, the loader and every validation error."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.errors import RuleError
from watcher.rules.schema import (
    MAX_FILE_BYTES,
    Actor,
    AllOf,
    AnyOf,
    Filters,
    Keywords,
    Mentions,
    Near,
    NoneOf,
    Pattern,
    load_rule_file,
    load_rules,
    parse_rules,
)

REPO = Path(__file__).resolve().parents[1]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, name: str = "r.yaml") -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    return caught.value.problems


def only_warning(tmp_path: Path, text: str) -> str:
    """The one warning of a rule that loads (the rule still loads: it is a warning)."""
    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, "r.yaml", text)
    ruleset = load_rules(folder)
    assert len(ruleset.rules) == 1 and len(ruleset.warnings) == 1, ruleset.warnings
    return ruleset.warnings[0].replace(str(folder) + "/", "")


def only_problem(tmp_path: Path, text: str) -> str:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    return problems[0].replace(str(tmp_path) + "/", "")


# --- the format ------------------------------------------------------------------------


def test_full_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "ukraine.yaml", """\
        name: ukraine-peace
        description: Ukraine–Russia peace talks
        priority: critical
        destinations: [telegram:-1001234567890/42, telegram:@newsdesk, email:desk@example.org,
                       console, apprise:ntfy://topic]
        filters:
          feeds: [Reuters World, tag:europe]
          languages: [en, es]
          max_age: 2d
        actors:
          Ukraine: [Ukrainian, Kyiv, Ucrania]
          Vladimir Putin:
            aliases: [Putin]
            types: [PERSON]
            exclude: [Putin Street]
            not_near: [restaurant]
            weight: 2
        keywords:
          talks:
            en: [peace talks, ceasefire]
            es: [conversaciones de paz]
            weight: 0.5
          war: [war, invasion]
        regex:
          summit: '(?i)summit in (Riyadh|Istanbul)'
        match:
          all:
            - near: [Ukraine, [talks, war]]
              within: 10
            - any: [Vladimir Putin, {term: war, min: 2, in: text}]
          none: [summit]
        scope: [title, text]
        min_mentions: 3
        threshold: 5
        title_weight: 3
        """)  # fmt: skip
    (rule,) = load_rule_file(path)
    assert rule.name == "ukraine-peace"
    assert rule.priority == "critical"
    assert rule.destinations[0] == "telegram:-1001234567890/42"
    assert rule.filters == Filters(("Reuters World", "tag:europe"), ("en", "es"), 172800.0)
    assert rule.actors == (
        Actor("Ukraine", ("Ukrainian", "Kyiv", "Ucrania")),
        Actor("Vladimir Putin", ("Putin",), ("PERSON",), ("Putin Street",), ("restaurant",), 2.0),
    )
    talks, war = rule.keywords
    assert talks.phrases == (
        ("en", "peace talks"),
        ("en", "ceasefire"),
        ("es", "conversaciones de paz"),
    )
    assert talks.weight == 0.5
    assert talks.for_language("es") == ("conversaciones de paz",)
    assert talks.for_language("") == ("peace talks", "ceasefire", "conversaciones de paz")
    assert war == Keywords("war", (("", "war"), ("", "invasion")))
    assert rule.regexes == (Pattern("summit", ("(?i)summit in (Riyadh|Istanbul)",)),)
    assert rule.logic == AllOf((
        AllOf((
            Near((("Ukraine",), ("talks", "war")), 10),
            AnyOf((Mentions("Vladimir Putin"), Mentions("war", 2, ("text",)))),
        )),
        NoneOf((Mentions("summit"),)),
    ))  # fmt: skip
    assert (rule.min_mentions, rule.threshold, rule.title_weight) == (3, 5.0, 3.0)
    assert rule.path == path and rule.line == 1
    assert [t.name for t in rule.positive_terms] == ["Ukraine", "Vladimir Putin", "talks", "war"]


def test_smallest_rule_takes_its_name_from_the_file(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, "maduro.yaml", "actors: [Nicolás Maduro]\n"))
    assert rule.name == "maduro"
    assert rule.actors == (Actor("Nicolás Maduro"),)
    assert rule.logic == AnyOf((Mentions("Nicolás Maduro"),))
    assert (rule.priority, rule.threshold, rule.destinations) == ("normal", 1.0, ())


def test_short_forms(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", """\
        actors:
          Caracas:
          Nicolás Maduro: [Maduro]
        keywords:
          en: [peace talks]
          es: [conversaciones de paz]
        regex: 'Cartel de los Soles'
        match: [Caracas, keywords]
        """))  # fmt: skip
    assert rule.actors == (Actor("Caracas"), Actor("Nicolás Maduro", ("Maduro",)))
    assert rule.keywords == (
        Keywords("keywords", (("en", "peace talks"), ("es", "conversaciones de paz"))),
    )
    assert rule.regexes == (Pattern("regex", ("Cartel de los Soles",)),)
    assert rule.logic == AllOf((Mentions("Caracas"), Mentions("keywords")))


def test_actor_list_form_and_yaml_merge_keys(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", """\
        actors:
          - Caracas
          - name: Nicolás Maduro
            aliases: [Maduro]
            types: [PERSON]
        keywords:
          base: &base {en: [strike]}
          more:
            <<: *base
            es: [ataque]
        """))  # fmt: skip
    assert rule.actors == (Actor("Caracas"), Actor("Nicolás Maduro", ("Maduro",), ("PERSON",)))
    assert rule.keywords[1].phrases == (("es", "ataque"), ("en", "strike"))


def test_texts_are_read_as_written(tmp_path: Path) -> None:
    """YAML 1.1 would read `no` as false and 1984 as a number; names are text."""
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", "actors: [no, 1984, 'yes']\n"))
    assert [a.name for a in rule.actors] == ["no", "1984", "yes"]


def test_several_rules_in_one_file(tmp_path: Path) -> None:
    rules = load_rule_file(write(tmp_path, "r.yaml", """\
        name: one
        actors: [A1]
        ---
        name: two
        actors: [B2]
        """))  # fmt: skip
    assert [(r.name, r.line) for r in rules] == [("one", 1), ("two", 4)]


def test_load_rules_reads_every_yaml_file_and_skips_hidden_ones(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "actors: [Bb]\n")
    write(tmp_path, "a.yml", "actors: [Aa]\n")
    write(tmp_path, ".#a.yaml", "broken: [")
    write(tmp_path, "notes.txt", "not a rule")
    ruleset = load_rules(tmp_path)
    assert ruleset.names() == ["a", "b"]
    assert ruleset.get("b") is ruleset.rules[1]
    assert ruleset.get("zzz") is None


def test_fingerprint_follows_the_contents(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "actors: [Aa]\n")
    first = load_rules(tmp_path).fingerprint
    assert load_rules(tmp_path).fingerprint == first
    write(tmp_path, "a.yaml", "actors: [Ab]\n")
    assert load_rules(tmp_path).fingerprint != first


def test_shipped_rules_are_valid() -> None:
    ruleset = load_rules(REPO / "rules")
    assert ruleset.names() == ["ukraine-peace", "venezuela"]


def test_load_rules_warns_about_rule_files_it_does_not_read(tmp_path: Path) -> None:
    """A folder of only `top.YAML` and `sub/a.yaml` loaded no rule and passed the check
    without a word; they are warnings, not errors: the daemon still starts on what loads."""
    write(tmp_path, "top.YAML", "actors: [Aa]\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "a.yaml", "actors: [Bb]\n")
    (tmp_path / ".archive").mkdir()  # a hidden folder keeps rules unread without a word
    write(tmp_path / ".archive", "old.yaml", "actors: [Cc]\n")
    write(tmp_path, "ok.yaml", "actors: [Dd]\n")
    ruleset = load_rules(tmp_path)
    assert ruleset.names() == ["ok"]
    located = [p.replace(f"{tmp_path}/", "").split(": ")[0] for p in ruleset.warnings]
    assert located == ["top.YAML:1:1", "sub/a.yaml:1:1"]


def test_rule_files_in_subfolders_are_named_up_to_a_cap(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for i in range(30):
        write(tmp_path / "sub", f"r{i:02}.yaml", "actors: [Aa]\n")
    warnings = load_rules(tmp_path).warnings
    assert 1 <= len(warnings) <= 10
    assert all(p.startswith(f"{tmp_path}/sub/r") for p in warnings)


def test_docs_example_is_valid() -> None:
    """The rule in the schema's docstring and docs/rules.md parse as documented."""
    from watcher.rules import schema

    doc = schema.__doc__ or ""
    example = doc.split("A fuller one")[1].split("::\n", 1)[1].split("\n\n")[0]
    (rule,) = parse_rules(textwrap.dedent(example))
    assert rule.name == "ukraine-peace"
    guide = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = guide.split("```yaml\n")[1:]
    assert parse_rules(blocks[0].split("```")[0]) and parse_rules(blocks[1].split("```")[0])
    documented = parse_rules(blocks[1].split("```")[0])[0]
    assert dataclasses.replace(documented, line=rule.line) == rule


# The terms each fragment of docs/rules.md names without declaring them, by its first line.
DOCS_FRAGMENT_TERMS = {
    "match:": "actors: [A, B, C]\n",
    "window: 1": "actors:\n  Ukraine:\n  envoys: [Witkoff]\n  negotiators: [Umerov]\n"
    "keywords:\n  talks: [peace talks]\n  rounds: [direct talks]\n",
}


def docs_yaml_blocks() -> list[str]:
    guide = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    return re.findall(r"^```yaml\n(.*?)^```", guide, flags=re.S | re.M)


def test_every_yaml_example_in_the_docs_loads() -> None:
    blocks = docs_yaml_blocks()
    assert len(blocks) >= 7
    for block in blocks:
        first = block.split("\n", 1)[0].split("#", 1)[0].strip()
        # A fragment gets the terms it names declared before it.
        assert parse_rules(DOCS_FRAGMENT_TERMS.get(first, "") + block), block


def test_the_docs_full_rule_passes_check_with_the_channels_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/rules.md says its destinations need [telegram] and [email] turned on."""
    from watcher.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ukraine.yaml").write_text(docs_yaml_blocks()[1], encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[watcher]\ndata_dir = "data"\n')
    assert main(["check", "--config", str(config), "--rules", str(rules)]) == 1
    assert "no telegram channel is configured" in capsys.readouterr().err
    (tmp_path / "token").write_text("123456:test-token-for-the-check\n")
    config.write_text(
        '[watcher]\ndata_dir = "data"\n[telegram]\ntoken_file = "token"\n'
        '[email]\nhost = "localhost"\nsender = "watcher@example.org"\n'
        'recipients = ["desk@example.org"]\n'
    )
    assert main(["check", "--config", str(config), "--rules", str(rules)]) == 0, (
        capsys.readouterr().err
    )
    assert "1 rule: ukraine-peace" in capsys.readouterr().out


# --- validation: every problem, with file:line:column ----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "actors: [a\n  b: c",
            "r.yaml:2:4: YAML syntax error: ",
        ),
        (
            "actors: [Aa]\nactor: [Bb]\n",
            "r.yaml:2:1: rule: unknown key 'actor'; did you mean 'actors'?",
        ),
        (
            "actors:\n  Aa: {aliass: [Bb]}\n",
            "r.yaml:2:8: actor 'Aa': unknown key 'aliass'; did you mean 'aliases'?",
        ),
        (
            "keywords:\n  deal:\n    es: [acuerdo]\n    exlude: [de acuerdo con]\n",
            "r.yaml:4:5: keywords 'deal': unknown key 'exlude'; did you mean 'exclude'?",
        ),
        (
            "keywords:\n  deal:\n    es: [acuerdo]\n    exclude: {a: b}\n",
            "r.yaml:4:14: keywords 'deal' exclude: expected a list of texts, got a mapping",
        ),
        (
            "keywords:\n  deal:\n    es: [acuerdo]\n    not_nearr: [FMI]\n",
            "r.yaml:4:5: keywords 'deal': unknown key 'not_nearr'; did you mean 'not_near'?",
        ),
        (
            "keywords:\n  deal:\n    es: [acuerdo]\n    not_near: {a: b}\n",
            "r.yaml:4:15: keywords 'deal' not_near: expected a list of texts, got a mapping",
        ),
        (
            "actors: [Aa]\nthreshold: high\n",
            "r.yaml:2:12: threshold: expected a number of at least 0, got text ('high')",
        ),
        (
            "actors: [Aa]\nthreshold: -1\n",
            "r.yaml:2:12: threshold: expected a number of at least 0",
        ),
        (
            "actors: Aa\n",
            "r.yaml:1:9: actors: expected a mapping of names or a list, got text ('Aa')",
        ),
        (
            "actors:\n  Aa: {types: [PERSN]}\n",
            "r.yaml:2:15: actor 'Aa' types: unknown entity type 'PERSN'; did you mean 'PERSON'?",
        ),
        (
            "description: nothing to match\n",
            "r.yaml:1:1: empty rule: it needs actors, keywords or regex",
        ),
        (
            "actors: [Aa]\nregex: '(a'\n",
            "r.yaml:2:8: regex 'regex': invalid regular expression '(a': missing ): (a",
        ),
        (
            "actors: [Aa]\nregex: {r: '(?<=a)b'}\n",
            "r.yaml:2:12: regex 'r': invalid regular expression",
        ),
        (
            "actors: [Aa]\nfilters: {max_age: 2 days}\n",
            "r.yaml:2:20: filters.max_age: '2 days' is not a duration",
        ),
        (
            "actors: [Aa]\nfilters: {max_age: -5}\n",
            "r.yaml:2:20: filters.max_age: expected a duration such as 6h or 2d",
        ),
        (
            "actors: [Aa]\nfilters: {languages: [en, english]}\n",
            "r.yaml:2:27: filters.languages: 'english' is not an ISO 639-1 code",
        ),
        (
            "actors: [Aa]\nfilters: {feed: [x]}\n",
            "r.yaml:2:11: filters: unknown key 'feed'; did you mean 'feeds'?",
        ),
        (
            "actors: [Aa]\npriority: urgent\n",
            "r.yaml:2:11: priority: 'urgent' is not valid (valid: critical, normal, low)",
        ),
        (
            "actors: [Aa]\ndestinations: [telegram:chat]\n",
            "r.yaml:2:16: destinations: 'telegram:chat' is malformed",
        ),
        (
            "actors: [Aa]\ndestinations: [email:bob]\n",
            "r.yaml:2:16: destinations: 'email:bob' is malformed (expected email:desk@example.org)",
        ),
        (
            "actors: [Aa]\ndestinations: [telegran:-100]\n",
            "r.yaml:2:16: destinations: unknown kind 'telegran'",
        ),
        (
            "actors: [Aa]\nmatch: [Ab]\n",
            "r.yaml:2:9: match: unknown term 'Ab' (declare it under actors, keywords or regex); "
            "known terms: Aa",
        ),
        (
            "actors: [Maduro]\nmatch: [Madura]\n",
            "did you mean 'Maduro'?",
        ),
        (
            "actors: [Aa]\nmatch: {none: [Aa]}\n",
            "r.yaml:2:8: match: needs a condition outside 'none'",
        ),
        (
            "actors: [Aa, Bb]\nmatch: {all: [{near: [Aa, Bb]}], none: [Bb]}\n",
            "r.yaml:2:8: match: 'none' excludes 'Bb' on any mention, but every match needs",
        ),
        (
            "actors: [Aa, Bb]\nmatch: [{any: [Aa, {term: Aa, in: title}]}, {none: [Bb, Aa]}]\n",
            "r.yaml:2:8: match: 'none' excludes 'Aa' on any mention",
        ),
        (
            "actors: [Aa]\nmatch: {near: [Aa]}\n",
            "r.yaml:2:15: match: near needs a list of at least two terms",
        ),
        (
            "actors: [Aa, Bb]\nmatch: {near: [Aa, Bb], within: paragraph}\n",
            "r.yaml:2:33: match: within: ",
        ),
        (
            "actors: [Aa]\nmatch: {any: [Aa], within: 3}\n",
            "r.yaml:2:20: match: 'within' goes with 'near'",
        ),
        (
            "actors: [Aa]\nmatch: {term: Aa, min: 0}\n",
            "r.yaml:2:24: match: min: expected a whole number of at least 1",
        ),
        (
            "actors: [Aa]\nmatch: {term: Aa, in: body}\n",
            "r.yaml:2:23: match: in: 'body' is not valid",
        ),
        (
            "actors: [Aa]\nmatch: {}\n",
            "r.yaml:2:8: match: expected all, any, none, near or term",
        ),
        (
            "actors: [Aa]\nmatch: {any: []}\n",
            "r.yaml:2:14: match: empty list",
        ),
        (
            "actors: [Aa]\nmatch: {alll: [Aa]}\n",
            "r.yaml:2:9: match: unknown key 'alll'; did you mean 'all'?",
        ),
        (
            "actors: [Aa]\nkeywords: {talks: []}\n",
            "r.yaml:2:19: keywords 'talks': no phrases",
        ),
        (
            "actors: [Aa]\nkeywords: {talks: {english: [x]}}\n",
            "r.yaml:2:20: keywords 'talks': 'english' is not an ISO 639-1 code",
        ),
        (
            "actors:\n  Aa: [B]\n",
            "r.yaml:2:7: actor 'Aa' aliases: 'B' is too short to match reliably",
        ),
        (
            "actors: [Aa]\nkeywords: {Aa: [x]}\n",
            "r.yaml:2:12: keyword group 'Aa': the name is already used by actor 'Aa'",
        ),
        (
            "actors: [Aa, Bb, Aa]\n",
            "r.yaml:1:18: actor 'Aa': the name is already used by actor 'Aa'",
        ),
        (
            'actors:\n  Aa:\n    aliases: ""\n',
            "r.yaml:3:14: actor 'Aa' aliases: expected text, got empty text",
        ),
        (
            "actors: [Aa]\nmatch:\n",
            "r.yaml:2:7: match: needs a term name, a list or a mapping (all, any, none, near, "
            "term), got nothing",
        ),
        (
            "actors: [Aa, Bb, Cc]\nmatch: {near: [Aa, [Bb, [Cc]]]}\n",
            "r.yaml:2:25: match: a near operand is a term or a list of terms, got a list",
        ),
        (
            "actors: [Gaza, Hamas, Israel]\nmatch:\n  any: Gaza, Hamas, Israel\n",
            "write a list: [Gaza, Hamas, Israel]",
        ),
        (
            "actors:\n  Aa:\n    ambiguous: [Aa]\n    corroborate: Bb, Cc\n",
            "write a list: [Bb, Cc]",
        ),
        (
            "actors: [Aa]\nabout:\n  min_score: 2,5\n",
            "r.yaml:3:14: about.min_score: expected a number of at least 0, got text ('2,5'); "
            "use a decimal point: 2.5",
        ),
        (
            "actors: [Aa]\nthreshold: 1,25\n",
            "use a decimal point: 1.25",
        ),
        (
            "actors: [Aa]\nwindow: -1\n",
            "r.yaml:2:9: window: 0 to 5 sentences, got -1",
        ),
        (
            "name: señal\nactors: [Aa]\n",
            "r.yaml:1:7: name: 'señal' is not valid (use ASCII letters,",
        ),
        (
            "actors: [Aa]\nregex: {r: []}\nmatch: [Aa, r]\n",
            "r.yaml:2:12: regex 'r': no patterns",
        ),
        (
            "name: 'bad name!'\nactors: [Aa]\n",
            "r.yaml:1:7: name: 'bad name!' is not valid",
        ),
        (
            "actors: [Aa]\nactors: [Bb]\n",
            "r.yaml:2:1: duplicate key 'actors'",
        ),
        (
            "actors: !!python/object:os.system [Aa]\n",
            "r.yaml:1:9: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
        (
            "actors: !custom Aa\n",
            "r.yaml:1:9: unsupported YAML tag '!custom'",
        ),
        (
            "- actors: [Aa]\n",
            "r.yaml:1:1: rule: expected a mapping (key: value lines), got a list",
        ),
        (
            "actors: [Aa]\nthreshold: .inf\n",
            "r.yaml:2:12: threshold: expected a finite number",
        ),
        (
            "actors: [Aa]\nabout: {weights: {share: .nan}}\n",
            "r.yaml:2:26: about.weights.share: expected a finite number",
        ),
        (
            "actors: [Aa]\nabout: {require: {density: 25}}\n",
            "r.yaml:2:28: about.require.density: at most 20",
        ),
        (
            "actors: [Aa]\nfilters: {languages: [en, xx]}\n",
            "r.yaml:2:27: filters.languages: 'xx' is not a known ISO 639-1",
        ),
        (
            "actors: [Aa]\nfilters: {languages: [eng]}\n",
            "r.yaml:2:23: filters.languages: 'eng' is not an ISO 639-1 code",
        ),
        (
            "keywords: {k: {en: [war], zz: [guerra]}}\n",
            "r.yaml:1:27: keywords 'k': 'zz' is not a known ISO 639-1",
        ),
        (
            "actors: [Aa]\nabout: {min_score: 11}\n",
            "r.yaml:2:20: about.min_score: 11 can never be reached",
        ),
        (
            "actors: [Aa]\nabout:\n  weights: {title: 1, lead: 0.5, share: 0, density: 0, first: 0}"
            "\n",
            "r.yaml:3:12: about.min_score: 2 can never be reached",
        ),
        (
            "actors:\n  Aa: {ambiguous: [Aa], corroborate: [Aa]}\n",
            "r.yaml:2:38: actor 'Aa' corroborate: an actor cannot vouch for itself",
        ),
        (
            "# only a comment\n",
            "r.yaml:1:1: no rule in the file",
        ),
        (
            "actors: [Aa]\nscope: []\n",
            "r.yaml:2:8: scope: expected title, text or both",
        ),
        (
            "actors: [Aa]\nmin_mentions: 1.5\n",
            "r.yaml:2:15: min_mentions: expected a whole number of at least 1",
        ),
        (
            "actors: [Aa]\n[x]: 1\n",
            "r.yaml:2:1: a key must be plain text",
        ),
    ],
)
def test_each_problem_is_reported_with_its_position(
    tmp_path: Path, text: str, expected: str
) -> None:
    problem = only_problem(tmp_path, text)
    assert problem.startswith(expected) if expected.startswith("r.yaml") else expected in problem


@pytest.mark.parametrize(
    "logic",
    [
        "{all: [Aa], none: [{term: Aa, in: title}]}",  # only a headline mention excludes
        "{all: [Aa], none: [{term: Aa, min: 3}]}",  # only many mentions exclude
        "{any: [Aa, Bb], none: [Aa]}",  # Bb alone can match
        "{near: [[Aa, Bb], Bb], none: [Aa]}",  # the operand [Aa, Bb] is met by Bb
        "{any: [{all: [Aa]}, {none: [Aa]}], none: [Bb]}",
    ],
)
def test_a_none_that_some_match_can_avoid_is_valid(tmp_path: Path, logic: str) -> None:
    rule = load_rule_file(write(tmp_path, "r.yaml", f"actors: [Aa, Bb]\nmatch: {logic}\n"))
    assert [r.name for r in rule] == ["r"]


@pytest.mark.parametrize(
    ("text", "where", "written"),
    [
        ("keywords:\n  crash: crash, accident, grounding\n", "2:10", "crash, accident"),
        ("actors:\n  Boeing: Boeing Co, Boeing Company\n", "2:11", "Boeing Co, Boeing"),
        ("actors:\n  Boeing:\n    aliases: Boeing Co, Boeing Company\n", "3:14", "Boeing Co,"),
        ("actors:\n  Aa:\n    exclude: Aa Street, Aa Road\n", "3:14", "Aa Street, Aa Road"),
        ("keywords:\n  talks:\n    en: peace talks, ceasefire\n", "3:9", "talks, ceasefire"),
        ("actors: [Aa]\nfilters:\n  authors: Reuters Staff, AP\n", "3:12", "Staff, AP"),
    ],
)
def test_an_unquoted_text_with_commas_where_a_list_goes_is_a_warning(
    tmp_path: Path, text: str, where: str, written: str
) -> None:
    """It loads as one phrase, matched only as those words in a row, which is rarely what was
    meant ("Smith, John" and "Washington, D.C." are): the rule loads, with a warning."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and written in warning


def test_an_ambiguous_name_without_a_capital_is_a_warning(tmp_path: Path) -> None:
    """An ambiguous name counts only where the text capitalises it, so a lowercase one is
    almost never counted: the rule loads, and a warning names the file, line and name."""
    text = (
        "actors:\n  Venezuela:\n  prisoners:\n    aliases: [excarcelación]\n"
        "    ambiguous: [presos políticos, Foro Penal]\n"
    )
    warning = only_warning(tmp_path, text)
    assert warning.startswith("r.yaml:5:17: ") and "'presos políticos'" in warning
    assert "Foro Penal" not in warning
    block = tmp_path / "block"
    block.mkdir()
    text = text.replace(
        "[presos políticos, Foro Penal]", "\n      - Foro Penal\n      - presos políticos"
    )
    assert only_warning(block, text).startswith("r.yaml:7:9: ")  # the name's own line


@pytest.mark.parametrize(
    ("text", "where", "phrase"),
    [
        ("actors:\n  Nicolás Maduro:\n    aliases: [Maduro]\n    not_near: [cigar, Maduro]\n",
         "4:23", "'Maduro'"),
        ("actors:\n  Georgia:\n    exclude:\n      - Georgia Avenue\n      - georgia\n",
         "5:9", "'georgia'"),
        ("keywords:\n  talks:\n    en: [peace talks]\n    not_near: talk\n", "4:15", "'talk'"),
        ("keywords:\n  talks:\n    es: [conversaciones de paz]\n"
         "    exclude: [Conversación de paz]\n", "4:15", "'Conversación de paz'"),
        ("actors:\n  Georgia:\n    exclude: [Georgias]\n", "3:15", "'Georgias'"),  # stems: es
        ("actors:\n  Boeing 737:\n    not_near: [737]\n", "3:16", "'737'"),  # a number too
    ],
)  # fmt: skip
def test_an_exclude_or_not_near_that_silences_its_own_term_is_a_warning(
    tmp_path: Path, text: str, where: str, phrase: str
) -> None:
    """An ``exclude`` that is one of the term's own names or phrases, or a ``not_near``
    inside one, drops every mention of it (tests/test_rules_match.py): it loads, with a
    warning at the phrase's own line and column."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and phrase in warning


@pytest.mark.parametrize(
    "text",
    [
        "actors:\n  Maduro:\n    exclude: [George Maduro, plátano maduro]\n    not_near: [cigar]\n",
        "actors:\n  Georgia:\n    not_near: [Georgia Tech]\n",
        "actors:\n  al-Assad:\n    not_near: [al Assad]\n",
        "keywords:\n  strikes:\n    en: [strikes]\n    not_near: [striker]\n",
        "keywords:\n  deal:\n    es: [acuerdo]\n    exclude: [de acuerdo con]\n",
        "keywords:\n  talks:\n    en: [talks]\n    not_near: [peace talks, Patriot]\n",
    ],
)  # fmt: skip
def test_an_exclude_or_not_near_that_holds_more_than_the_name_is_no_warning(
    tmp_path: Path, text: str
) -> None:
    """Longer phrases holding the name are what the keys are for; a word that only shares
    a stem ("striker" beside "strikes": lemmas tell them apart) or splits otherwise ("al
    Assad" beside "al-Assad") silences nothing."""
    write(tmp_path, "r.yaml", text)
    assert load_rules(tmp_path).warnings == ()


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("actors:\n  Israel:\n  aliases: [Israeli]\n", "3:3", "under 'Israel' (the actor above)"),
        ("actors:\n  Israel: [Israeli]\n  types: [ORG]\n", "3:3", "'types'"),
        ("actors:\n  ambiguous: [Maduro]\n", "2:3", "under the actor it belongs to"),
        ("keywords:\n  hostages:\n    en: [hostage]\n  es: [rehén]\n", "4:3",
         "under 'hostages' (the keyword group above)"),
        ("keywords:\n  talks: [peace talks]\n  exclude: [talks show]\n", "3:3", "'exclude'"),
    ],
)  # fmt: skip
def test_a_key_indented_as_a_term_of_its_own_is_a_warning(
    tmp_path: Path, text: str, where: str, said: str
) -> None:
    """``aliases:`` one step short of its actor is an actor named "aliases", silently."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and said in warning


def test_terms_named_like_keys_in_their_place_are_no_warning(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", """\
        name: one
        actors:
          Israel:
            aliases: [Israeli]
            types: [GPE]
          weights: [Weights and Measures]
        keywords:
          en: [ceasefire]
          es: [alto el fuego]
          weight: 2
        ---
        name: two
        keywords:
          talks: [peace talks]
          exports: [exports]
        """)  # fmt: skip
    assert load_rules(tmp_path).warnings == ()


@pytest.mark.parametrize(
    "text",
    [
        "actors:\n  mediators:\n    aliases: []\n",
        "actors:\n  mediators: []\n",
    ],
)
def test_an_empty_aliases_list_on_a_lowercase_actor_is_a_warning(tmp_path: Path, text: str) -> None:
    """A lowercase name with aliases is a group label; with none it matches its own word."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith("r.yaml:") and "'mediators'" in warning and "empty" in warning
    (rule,) = load_rules(tmp_path / "rules").rules
    assert rule.actors[0].names == ("mediators",)  # what the warning is about


def test_an_empty_aliases_list_on_a_capitalised_actor_is_no_warning(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "actors:\n  Mediators:\n    aliases: []\n  envoys: [Witkoff]\n")
    assert load_rules(tmp_path).warnings == ()


@pytest.mark.parametrize(
    ("text", "where", "phrase"),
    [
        ("keywords:\n  deal:\n    es: [acuerdo]\n    exclude: [“de acuerdo con”]\n", "4:15",
         "'“de acuerdo con”'"),
        ("keywords:\n  deal:\n    es: [«acuerdo de paz»]\n", "3:10", "«acuerdo de paz»"),
        ("keywords:\n  deal:\n    de: [„Friedensabkommen“]\n", "3:10", "„Friedensabkommen“"),
        ("actors:\n  Aa:\n    aliases:\n      - ‘Ab Cd’\n", "4:9", "‘Ab Cd’"),
        ("actors:\n  “Hamas”: [Hamás]\n", "2:3", "“Hamas”"),
        ("actors: [“Hamas”]\n", "1:10", "“Hamas”"),
    ],
)  # fmt: skip
def test_a_phrase_in_typographic_quotes_is_a_warning(
    tmp_path: Path, text: str, where: str, phrase: str
) -> None:
    """YAML quotes with ' and " only: “...” stay part of the phrase, which then never matches."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and phrase in warning
    assert "straight quotes" in warning


def test_typographic_quotes_inside_a_phrase_are_no_warning(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", 'actors:\n  Aa: [“Ab” Cd, rock ’n’ roll, "“Ef”", Gh’]\n')
    (warning,) = load_rules(tmp_path).warnings  # only the one quoted straight around them
    assert "“Ef”" in warning


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("actors:\n  Pedro Sánchez:\n  Pedro Sanchez:\n", "3:3", "actor 'Pedro Sánchez'"),
        ("actors: [OTAN, Otan]\n", "1:16", "actor 'OTAN'"),
    ],
)  # fmt: skip
def test_actor_names_differing_only_in_case_or_accents_are_a_warning(
    tmp_path: Path, text: str, where: str, said: str
) -> None:
    """Matching folds case and accents: the two actors are likely one written twice."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and said in warning


@pytest.mark.parametrize(
    "text",
    [
        # only actors' names are matched as text: a group's or a regex's name is a label
        "keywords:\n  negociación: [negociación]\n  negociacion: [negociación de paz]\n",
        "actors: [Boeing]\nkeywords:\n  boeing: [737 MAX]\n",
        "actors: [Maduro]\nregex:\n  maduro: ['Maduro Moros']\n",
    ],
)
def test_labels_differing_only_in_case_are_no_warning(tmp_path: Path, text: str) -> None:
    write(tmp_path, "r.yaml", text)
    assert load_rules(tmp_path).warnings == ()


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        ("actors: {Boeing: Boeing Co, Boeing Company}\n", "1:29", "Boeing Company"),
    ],
)
def test_a_value_a_comma_cut_short_in_braces_is_a_warning(
    tmp_path: Path, text: str, where: str, key: str
) -> None:
    """Inside {...} a comma ends the value: the rest become keys (actors or keyword groups
    of their own name, silently). It loads so; a warning says what was likely meant."""
    warning = only_warning(tmp_path, text)
    assert warning.startswith(f"r.yaml:{where}: ") and repr(key) in warning


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ("actors: [Aa]\ndestinations: console, email:d@example.org\n", "2:15", "[console, email"),
        ("keywords: {crash: crash, accident, grounding}\n", "1:26", "'accident'"),
        ("actors:\n  Boeing: {aliases: Boeing Co, Boeing Company}\n", "2:32", "'Boeing Company'"),
    ],
)
def test_a_comma_that_makes_a_rule_invalid_comes_with_its_hint(
    tmp_path: Path, text: str, where: str, hint: str
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, "r.yaml", text)
    with pytest.raises(RuleError) as caught:
        load_rules(folder)
    problems = [p.replace(f"{folder}/", "") for p in caught.value.problems]
    assert any(p.startswith(f"r.yaml:{where}: ") and hint in p for p in problems), problems


def test_quoted_phrases_with_commas_and_regexes_load(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", """\
        actors:
          Washington: ["Washington, D.C.", DC]
          Seattle: 'Seattle, WA'
          Jordan:
            aliases:
              - Amman, Jordan
        keywords:
          k: {en: ["peace, now"]}
        regex:
          r: (?i)crash, accident
        """))  # fmt: skip
    assert [a.aliases for a in rule.actors] == [
        ("Washington, D.C.", "DC"),
        ("Seattle, WA",),
        ("Amman, Jordan",),
    ]
    assert rule.keywords[0].phrases == (("en", "peace, now"),)
    assert rule.regexes[0].patterns == ("(?i)crash, accident",)


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ("actors:\n\t- Aa\n", "2:1", "tab"),
        ("actors:\n  Aa:\n  \taliases: [Ab]\n", "3:3", "tab"),
        ("actors:\n  Aa:\n    aliases: [Ab]\n   types: [PERSON]\n", "4:4", "indentation"),
        ("actors:\n  - Aa\n - Bb\n", "3:2", "indentation"),
        ("actors:\n  Aa: x\n    Bb: [Bc]\n", "3:7", "indentation"),
        ("actors:\n  Aa: [Ab]\n    Bb: [Bc]\n", "3:5", "indentation"),
        # An unclosed bracket surfaces at the next key: where it opened is the news.
        ("keywords:\n  k:\n    en: [hostage, captive, captivity\n    es: [rehén]\n", "4:7",
         "the list opened at 3:9 is not closed: add ']'"),
        ("actors: [Aa, Bb\n", "2:1", "the list opened at 1:9 is not closed"),
        ("actors:\n  Aa: {aliases: [Ab]\n  Bb: [Bc]\n", "3:3",
         "the mapping opened at 2:7 is not closed: add '}'"),
        ("actors:\n  Aa: ['Ab]\n  Bb: [Bc]\n", "4:1", "quoted text opened at 2:8 is not closed"),
        # A tab after the text, before a comment, is no indentation.
        ("actors:\n  Aa:\n    weight: 2\t# peso\n", "3:14", "a tab before a comment"),
        ("actors:\n  Aa:\n    weight: 2\t \t# peso\n", "3:14", "a tab before a comment"),
    ],
)  # fmt: skip
def test_yaml_syntax_errors_say_what_to_do(
    tmp_path: Path, text: str, where: str, hint: str
) -> None:
    problem = only_problem(tmp_path, text)
    assert problem.startswith(f"r.yaml:{where}: YAML syntax error: ") and hint in problem


@pytest.mark.parametrize(
    "text",
    [
        "actors: [Aa, 'Bb' Cc]\n",  # closed on its line: a missing comma, not a bracket
        "actors:\n  - Aa\t# x\n",
    ],
)
def test_a_syntax_error_is_not_blamed_on_what_it_is_not(tmp_path: Path, text: str) -> None:
    problem = only_problem(tmp_path, text)
    assert "is not closed" not in problem and "indent with spaces" not in problem


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("actors:\n  Aa:\n\u2007   aliases: [Ab]\n    Ac: [Ad]\n", "3:1", "(U+2007)"),
        ("actors:\n  Aa:\n  \u00a0  aliases: [Ab]\n    Ac: [Ad]\n", "3:3", "(U+00A0)"),
    ],
)  # fmt: skip
def test_a_space_yaml_reads_as_text_is_named_where_it_breaks_the_file(
    tmp_path: Path, text: str, where: str, said: str
) -> None:
    """Alt+Space on a Mac types a non-breaking space: in the indentation YAML reads it as
    text and fails on another line, so the space is named where it is instead."""
    problem = only_problem(tmp_path, text)
    assert problem.startswith(f"r.yaml:{where}: ") and said in problem
    assert "replace it with a plain space" in problem


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("actors:\n  Aa:\n    weight:\u00a02\n", "3:12", "(U+00A0) after 'weight:'"),
        ("actors:\n  Aa:\n  \u00a0 aliases: [Ab]\n", "3:3", "(U+00A0) at its start"),
        ("actors:\n\u00a0\u00a0Aa: [Ab]\n", "2:1", "(U+00A0) at its start"),
        ("actors:\n  Aa: \u00a0[Ab, Ac]\n", "2:7", "(U+00A0) at its start"),
        ("actors:\n  - \u202fAa\n", "2:5", "narrow non-breaking space (U+202F)"),
        ("actors:\n  Aa: [Ab,\n\u00a0Ac]\n", "3:1", "(U+00A0) at its start"),
    ],
)  # fmt: skip
def test_a_space_yaml_reads_as_text_in_a_file_that_loads_is_a_warning(
    tmp_path: Path, text: str, where: str, said: str
) -> None:
    """Where the file still parses (``weight:\u00a02`` is one text), it is read as before,
    with a warning beside whatever else that reading gives: the space may be the text's own."""
    write(tmp_path, "r.yaml", text)
    try:
        said_all = list(load_rules(tmp_path).warnings)
    except RuleError as exc:  # an actor named "\u00a0\u00a0Aa" is an unknown key at the top
        said_all = list(exc.problems)
    assert any(f"/r.yaml:{where}: " in w and said in w for w in said_all), said_all


@pytest.mark.parametrize(
    "text",
    [
        "regex:\n  m:\n    - 'Nicol[aá]s(?:\u00a0| )Maduro'\n",
        'keywords:\n  k:\n    - "Ley 2:\u00a0amnistía"\n',
        "keywords:\n  k:\n    - |\n      a\n      x:\u00a0y\n",
    ],
)
def test_a_quoted_or_block_text_keeps_its_odd_spaces_silently(tmp_path: Path, text: str) -> None:
    write(tmp_path, "r.yaml", text)
    assert load_rules(tmp_path).warnings == ()


def test_a_non_breaking_space_inside_a_text_is_the_texts_own(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, "r.yaml", """\
        description: >
          Egypt\u00a0talks: at Sharm el\u00a0Sheikh
        actors:
          Sharm el\u00a0Sheikh: [Sharm, "el\u00a0Sheikh: resort"]
          Egypt:
            aliases: [Cairo\u00a0talks, "\u00a0Egipto"]  # a comment:\u00a0with one
        regex:
          r: (?i)talks:\u00a0now
        """))  # fmt: skip
    assert rule.actors[0].name == "Sharm el\u00a0Sheikh"
    assert rule.regexes[0].patterns == ("(?i)talks:\u00a0now",)


def test_corroborate_names_each_unknown_term_at_its_item(tmp_path: Path) -> None:
    text = (
        "actors:\n  Podemos:\n    ambiguous: [Podemos]\n"
        "    corroborate: [Podemos2, Pedro Sanchez, Gobierno]\n"
    )
    problems = [p.replace(f"{tmp_path}/", "") for p in problems_of(tmp_path, text)]
    assert [p.split(": ")[0] for p in problems] == ["r.yaml:4:19", "r.yaml:4:29", "r.yaml:4:44"]
    assert all("unknown term" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # A group refused for its own reason is declared: match and about name it rightly.
        ("actors: [Aa]\nkeywords:\n  hostages:\nmatch: [Aa, hostages]\n"
         "about: {topic: [hostages]}\n", "3:12"),
        ("actors: [Aa]\nkeywords:\n  hostages: {english: [x]}\nmatch: [Aa, hostages]\n", "3:14"),
        ("actors: [Aa]\nkeywords:\n  hostages: []\nmatch: {any: [Aa, hostages]}\n", "3:13"),
        ("actors:\n  Aa: {ambiguous: [Aa], corroborate: [r]}\nregex: {r: '(a'}\n", "3:12"),
        # A misspelled terms key: said once, at the key, not at every name under it.
        ("actores:\n  Aa: [Ab]\n  Bb: [Bc]\nkeywords: {k: [x]}\nmatch: {all: [Aa, Bb, k]}\n"
         "about: {topic: [Aa]}\n", "1:1"),
        ("actors: [Aa]\nkeyword: {k: [x]}\nmatch: [Aa, k]\n", "2:1"),
    ],
)  # fmt: skip
def test_a_term_refused_or_unread_is_not_reported_again_where_it_is_named(
    tmp_path: Path, text: str, where: str
) -> None:
    """One error, the first: the rule is refused, without an unknown-term error per use."""
    problem = only_problem(tmp_path, text)
    assert problem.startswith(f"r.yaml:{where}: ") and "unknown term" not in problem


def test_a_misspelled_terms_key_says_its_terms_were_not_read(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "actores:\n  Aa: [Ab]\nmatch: [Aa]\n")
    assert "did you mean 'actors'?" in problem and "not read" in problem
    other = only_problem(tmp_path, "actors: [Aa]\nthreshhold: 2\n")  # not a terms key
    assert "not read" not in other


@pytest.mark.parametrize(
    ("text", "where", "written"),
    [
        ("destinations: [slack:news, telegram:]\n", "2:28", "'telegram:'"),
        ("destinations: [console, email: d@example.org]\n", "2:25", "email:d@example.org"),
        ("filters: {feeds: [tag: latam]}\n", "2:19", "'tag: latam'"),
    ],
)
def test_a_colon_that_makes_a_key_in_a_list_is_named(
    tmp_path: Path, text: str, where: str, written: str
) -> None:
    """`telegram:` in a flow list is a mapping to YAML: "expected text, got a mapping"."""
    problems = problems_of(tmp_path, "actors: [Aa]\n" + text)
    located = [p.replace(f"{tmp_path}/", "") for p in problems]
    (problem,) = [p for p in located if p.startswith(f"r.yaml:{where}: ")]
    assert written in problem


def test_every_problem_is_reported_in_order(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, """\
        actors:
          Aa: {types: [PERSN]}
        priority: urgent
        match: [Zz]
        threshold: x
        """)  # fmt: skip
    positions = [p.split(": ")[0].rsplit(":", 2)[1:] for p in problems]
    assert positions == [["2", "15"], ["3", "11"], ["4", "9"], ["5", "12"]]


def test_names_are_required_when_a_file_has_several_rules(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "actors: [Aa]\n---\nname: two\nactors: [Bb]\n")
    assert problems == [f"{tmp_path}/r.yaml:1:1: name: required when a file holds several rules"]


def test_file_name_must_make_a_valid_rule_name(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "actors: [Aa]\n", name="my rule.yaml")
    assert problem.endswith("name: the file name 'my rule' is not a valid rule name; add name: "
                            "with ASCII letters, digits, '-', '_' or '.'")  # fmt: skip


def test_duplicate_rule_names_in_one_file(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "name: x\nactors: [Aa]\n---\nname: x\nactors: [Bb]\n")
    assert problem.startswith(f"{tmp_path}/r.yaml:4:1: ") and f"{tmp_path}/r.yaml:1" in problem


def duplicate_problems(directory: Path) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_rules(directory)
    return [p.replace(f"{directory}/", "") for p in caught.value.problems]


def test_duplicate_rule_names_across_files_blame_the_later_name_on_a_tie(
    tmp_path: Path,
) -> None:
    a = write(tmp_path, "a.yaml", "name: same\nactors: [Aa]\n")
    b = write(tmp_path, "b.yaml", "\n\nname: same\nactors: [Bb]\n")
    os.utime(b, ns=(os.stat(a).st_mtime_ns,) * 2)
    (problem,) = duplicate_problems(tmp_path)
    assert problem.startswith("b.yaml:3:1: ") and "a.yaml:1" in problem


def test_duplicate_rule_name_is_blamed_on_the_file_changed_last(tmp_path: Path) -> None:
    """Adding georgia-copy.yaml put the problem on georgia-elections.yaml, read first."""
    old = write(tmp_path, "georgia-elections.yaml", "name: georgia\nactors: [Georgia]\n")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    write(tmp_path, "georgia-copy.yaml", "\nname: georgia\nactors: [Atlanta]\n")
    (problem,) = duplicate_problems(tmp_path)
    assert problem.startswith("georgia-copy.yaml:2:1: ") and "georgia-elections.yaml:1" in problem


def test_rule_names_differing_only_in_case_are_duplicates(tmp_path: Path) -> None:
    """/mute boeing finds a rule ignoring case: Boeing and boeing would be one to it."""
    old = write(tmp_path, "a.yaml", "name: Boeing\nactors: [Boeing]\n")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    write(tmp_path, "b.yaml", "name: boeing\nactors: [Airbus]\n")
    (problem,) = duplicate_problems(tmp_path)
    assert problem.startswith("b.yaml:1:1: ") and "a.yaml:1" in problem


def test_load_rules_reports_problems_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "actors: [Aa]\npriority: urgent\n")
    write(tmp_path, "b.yaml", "actors: [Bb\n")
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert [p.split(": ")[0].rsplit("/", 1)[1] for p in caught.value.problems] == [
        "a.yaml:2:11",
        "b.yaml:2:1",
    ]


def test_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="rules directory not found"):
        load_rules(tmp_path / "nope")
    with pytest.raises(RuleError, match=r"nope.yaml:1:1: cannot read rule file"):
        load_rule_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("data", "where", "byte"),
    [
        (b"actors: [Caf\xe9]\n", "1:13", "byte 12: 0xe9"),
        ("# Noticias\nactors: [Pol\u00edtica]\n".encode("cp1252"), "2:13", "byte 23: 0xed"),
        (b"\xef\xbb\xbf# \xc3\xa9\nactors: [\xc3\xa9 Caf\xe9]\n", "2:15", "byte 23: 0xe9"),  # a BOM
    ],
)  # fmt: skip
def test_not_utf8_names_the_first_bad_byte_where_an_editor_shows_it(
    tmp_path: Path, data: bytes, where: str, byte: str
) -> None:
    """A file saved as Windows-1252 or Latin-1: its line and column (in characters), and its
    offset in the file."""
    path = tmp_path / "r.yaml"
    path.write_bytes(data)
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:{where}: not UTF-8 text") and byte in problem


def test_file_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES)
    with pytest.raises(RuleError, match=r"r.yaml:1:1: rule file is larger than 1,000,000 bytes"):
        load_rule_file(path)


def test_deep_nesting_is_refused_without_recursion(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "actors: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "r.yaml:1:" in problem and "nested more than 64 levels deep" in problem


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    problems = problems_of(tmp_path, "keywords:\n" + "".join(f"  {line}\n" for line in lines))
    too_big = [p for p in problems if "document too large or too deeply nested" in p]
    assert len(too_big) == 1  # said once, not once per node past the limit


def test_two_groups_share_a_not_near_list_through_an_anchor(tmp_path: Path) -> None:
    # docs/rules.md, Keywords: a list written once, with a YAML anchor, for two groups
    (tmp_path / "r.yaml").write_text(
        "actors: [Ukraine]\n"
        "keywords:\n"
        "  verbs:\n    en: [negotiate]\n    not_near: &other [drone deal, transfer fee]\n"
        "  nouns:\n    en: [negotiator]\n    not_near: *other\n"
        "match: {near: [Ukraine, [verbs, nouns]]}\n",
        encoding="utf-8",
    )
    groups = load_rules(tmp_path).rules[0].keywords
    assert [g.not_near for g in groups] == [("drone deal", "transfer fee")] * 2


def test_recursive_aliases_are_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "actors: &a [Aa, *a]\n")
    assert problems  # a RuleError, not a RecursionError


# --- fuzzing ------------------------------------------------------------------------------

_YAMLISH = st.lists(
    st.sampled_from([
        "actors", "keywords", "match", "all", "any", "none", "near", "within", "term", "min",
        "filters", "max_age", "regex", "name", "types", "PERSON", "aliases", ":", ": ", "- ",
        "[", "]", "{", "}", ",", "\n", "  ", "    ", "&a ", "*a", "!!python/object ", "!x ",
        "<<: ", "'", '"', "---\n", "Maduro", "1", "-1", "2d", "(a", "~", "null", "yes", "#",
        "\t", "%YAML 1.1\n", "? ", "|\n", ">\n", "\\", "\x00", "é",
    ]),
    max_size=60,
).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_YAMLISH, st.text(max_size=200)))
def test_fuzz_only_rule_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            rules = load_rule_file(path)
        except RuleError as exc:
            assert exc.problems
            assert all(p.startswith(f"{path}:") for p in exc.problems), exc.problems
        else:
            assert rules


ABOUT_RULE = """\
name: talks
actors:
  Ukraine: [Kyiv]
  Nicolás Maduro: {ambiguous: [Maduro], corroborate: [Ukraine, talks], types: [PERSON]}
keywords:
  talks: [peace talks]
window: 1
about:
  topic: [[Ukraine, Nicolás Maduro], talks]
  min_score: 2.5
  weights: {title: 3, share: 5}
  require: {share: 0.1}
"""


def test_about_window_and_ambiguous_names_parse() -> None:
    (rule,) = parse_rules(ABOUT_RULE)
    assert rule.window == 1 and rule.about is not None
    assert rule.about.topic == (("Ukraine", "Nicolás Maduro"), ("talks",))
    assert rule.about.min_score == 2.5 and dict(rule.about.weights)["title"] == 3
    assert dict(rule.about.weights)["lead"] == 1.0  # defaults kept for the others
    assert rule.about.require == (("share", 0.1),)
    maduro = rule.actors[1]
    assert maduro.ambiguous == ("Maduro",) and maduro.corroborate == ("Ukraine", "talks")
    assert "Maduro" in maduro.names


@pytest.mark.parametrize(
    ("edit", "where", "fragment"),
    [
        ("  weights: {title: 3, share: 5}", "11:13", "about.weights: unknown key 'titel'"),
        ("  require: {share: 0.1}", "12:20", "about.require.share: at most 1"),
        ("  min_score: 2.5", "10:14", "about.min_score: expected a number"),
        ("  topic: [[Ukraine, Nicolás Maduro], talks]", "9:38", "unknown term 'talk'"),
        ("window: 1", "7:9", "window: at most 5"),
    ],
)
def test_about_errors_name_file_line_and_column(
    tmp_path: Path, edit: str, where: str, fragment: str
) -> None:
    broken = {
        "  weights: {title: 3, share: 5}": "  weights: {titel: 3, share: 5}",
        "  require: {share: 0.1}": "  require: {share: 1.5}",
        "  min_score: 2.5": "  min_score: high",
        "  topic: [[Ukraine, Nicolás Maduro], talks]": "  topic: [[Ukraine, Nicolás Maduro], talk]",
        "window: 1": "window: 9",
    }[edit]
    problems = problems_of(tmp_path, ABOUT_RULE.replace(edit, broken))
    assert len(problems) == 1 and f"r.yaml:{where}: " in problems[0] and fragment in problems[0]


def test_group_labels_never_match_as_words() -> None:
    (rule,) = parse_rules("actors:\n  envoys: [Witkoff, Kushner]\n  Caracas: [CCS]\n")
    assert rule.actors[0].names == ("Witkoff", "Kushner")
    assert rule.actors[1].names == ("Caracas", "CCS")


def test_a_misspelled_key_beside_the_real_one_hides_no_error(tmp_path: Path) -> None:
    """`actions:` beside `actors:` is a stray key, not the actors misspelled: the terms are
    read, so an unknown term in `match` is still reported."""
    text = "actors: [Maduro]\nactions: y\nmatch: {any: [Maduro, Mduro]}\n"
    problems = [p.replace(str(tmp_path) + "/", "") for p in problems_of(tmp_path, text)]
    assert any(p.startswith("r.yaml:3:") and "'Mduro'" in p for p in problems)
    assert not any("not read" in p for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        "actors:\n  Aa:\n    aliases: [Ab, Ac,\n      'Maduro's regime', Ad]\n",
        'actors:\n  Aa:\n    aliases: [Ab, Ac,\n      "X" "Y"]\n',
        "actors: [Aa]\nabout:\n  weights: {title: 2,\n    lead: 1 first: 0.5}\n",
    ],
)
def test_an_error_inside_a_closed_bracket_is_not_blamed_on_it(tmp_path: Path, text: str) -> None:
    problem = only_problem(tmp_path, text)
    assert "is not closed" not in problem


def test_a_group_named_like_a_language_with_its_own_languages_is_no_warning(
    tmp_path: Path,
) -> None:
    write(tmp_path, "r.yaml", "keywords:\n  eu:\n    en: [European Union]\n  no: {en: [nope]}\n")
    assert load_rules(tmp_path).warnings == ()


@pytest.mark.parametrize(("raw", "said"), [("2,5", "2.5"), ("1,000", "1000 or 1.000")])
def test_a_number_with_a_comma_says_how_to_write_it(tmp_path: Path, raw: str, said: str) -> None:
    problem = only_problem(tmp_path, f"actors: [Aa]\nthreshold: {raw}\n")
    assert problem.startswith("r.yaml:2:12: ") and said in problem


def test_a_name_starting_with_a_digit_is_a_name_not_a_group_label(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "actors:\n  3M:\n    aliases: []\n")
    ruleset = load_rules(tmp_path)
    assert ruleset.warnings == ()
    assert ruleset.rules[0].actors[0].names == ("3M",)


def test_a_feature_name_with_an_accent_gets_a_suggestion(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "actors: [Aa]\nabout:\n  weights: {título: 2}\n")
    assert problem.startswith("r.yaml:3:13: ") and "did you mean 'title'?" in problem
