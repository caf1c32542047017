"""Tests for watcher.rules.prefilter: folding, stems, the one-pass scan and its bounds."""

from __future__ import annotations

import random
import textwrap

import pytest

from watcher.rules.prefilter import (
    _FOLD_TABLE,
    Prefilter,
    fold,
    is_acronym,
    phrase_key,
    stem,
    title_echo,
)
from watcher.rules.schema import RuleSet, parse_rules


def prefilter(rules_yaml: str) -> Prefilter:
    return Prefilter(RuleSet(tuple(parse_rules(textwrap.dedent(rules_yaml)))))


def test_fold_by_runs_is_the_table_applied_to_every_character() -> None:
    """ASCII runs are folded as bytes, the rest through the table: the same text."""
    rnd = random.Random(5)
    samples = ["", "ASCII Only\tText\x1c", "Ünïcode ÀND\u00a0ASCII “mixed” İstanbul"]
    samples += ["".join(chr(rnd.randrange(0x3100)) for _ in range(30)) for _ in range(500)]
    samples += ["".join(chr(rnd.randrange(140)) for _ in range(30)) for _ in range(500)]
    for text in samples:
        assert fold(text) == text.translate(_FOLD_TABLE)


def test_fold_keeps_length_and_drops_case_accents_and_odd_spaces() -> None:
    text = "Nicolás MADURO’s\u00a0İstanbul\nÑandú"
    assert fold(text) == "nicolas maduro’s istanbul nandu"
    assert len(fold(text)) == len(text)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("strike", "strik"), ("strikes", "strik"), ("negociar", "negoci"), ("paz", "paz"),
     ("conversaciones", "conversacion"), ("talks", "talk"), ("envoy", "envo")],
)  # fmt: skip
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_phrase_key_is_the_stem_of_the_longest_word() -> None:
    assert phrase_key("Conversaciones de paz") == "conversacion"
    assert phrase_key("alto el fuego") == "fueg"


def test_acronyms() -> None:
    assert is_acronym("US") and is_acronym("EE.UU.") and not is_acronym("Maduro")
    assert not is_acronym("A")


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Caracas blackout", "Caracas blackout\nPower is back.", 16),
        ("Caracas blackout", "  Caracas blackout", 18),
        ("tv future", "tv future  plasma screens", 9),  # title run into the text
        ("Caracas blackout", "Caracas blackout ends.", 0),
        ("", "Anything", 0),
    ],
)
def test_title_echo(title: str, text: str, expected: int) -> None:
    assert title_echo(title, text) == expected


RULES = """\
    name: maduro
    actors:
      Nicolás Maduro: [Maduro]
      United States: [US]
    threshold: 3
    ---
    name: talks
    keywords:
      en: [peace talks]
      es: [conversaciones de paz]
    regex: {soles: '(?i)cartel de los soles'}
    match: {any: [keywords, soles]}
    """


def test_scan_counts_whole_words_and_case_checked_acronyms() -> None:
    p = prefilter(RULES)
    scan = p.scan("Maduro speaks", "Nicolas Maduro's men. Maduros. Tell us. US troops.", "en")
    maduro = p.term_id(p.rules[0].actors[0])
    us = p.term_id(p.rules[0].actors[1])
    # "Nicolas Maduro" and "Maduro" overlap: both count in the bound, one is a mention
    assert scan.field_counts(maduro) == (1, 2)
    assert scan.field_counts(us) == (0, 1)
    assert scan.spans(maduro) == [("title", 0, 6), ("text", 0, 14)]
    assert scan.actors() == [maduro, us]
    assert scan.candidates == (0,)


def test_a_long_acronym_also_matches_written_as_a_word_but_never_in_lower_case() -> None:
    p = prefilter("""
    name: oil
    actors: {PDVSA: {}, US: {}}
    match: {any: [PDVSA]}
    """)
    pdvsa = p.term_id(p.rules[0].actors[0])
    us = p.term_id(p.rules[0].actors[1])
    scan = p.scan("Pdvsa signs", "PDVSA and Pdvsa, not pdvsa or PDVsa. Us, US, Us.", "es")
    assert scan.field_counts(pdvsa) == (1, 2)
    assert scan.field_counts(us) == (0, 1)  # two letters: only in capitals
    three = prefilter("""
    name: usa
    actors: {USA: {}}
    match: {any: [USA]}
    """)
    usa = three.term_id(three.rules[0].actors[0])
    assert three.scan("", "Usa, usa, USA.", "en").field_counts(usa) == (0, 1)  # three: likewise


def test_scan_bounds_the_score() -> None:
    p = prefilter(RULES)
    assert p.scan("Maduro speaks", "Nothing else.", "en").candidates == ()  # 2 < 3
    assert p.scan("Maduro speaks", "Maduro said.", "en").candidates == (0,)


def test_scan_keyword_stems_per_language_and_regexes() -> None:
    p = prefilter(RULES)
    assert p.scan("x", "The peace talk was short.", "en").candidates == (1,)
    assert p.scan("x", "Las conversaciones de paz.", "en").candidates == ()
    assert p.scan("x", "Las conversaciones de paz.", "es").candidates == (1,)
    assert p.scan("x", "Las conversaciones de paz.", "").candidates == (1,)
    assert p.scan("x", "The CARTEL DE LOS SOLES again.", "en").candidates == (1,)


def test_scan_skips_the_title_repeated_in_the_text() -> None:
    p = prefilter(RULES)
    scan = p.scan("Maduro speaks", "Maduro speaks\nMore later.", "en")
    assert scan.echo_end == 13
    assert scan.field_counts(p.term_id(p.rules[0].actors[0]))[1] == 0


def test_only_none_terms_do_not_make_a_candidate() -> None:
    p = prefilter("""\
        actors: [Caracas]
        keywords: {sport: [baseball]}
        match: {all: [Caracas], none: [sport]}
        """)  # fmt: skip
    assert p.scan("Baseball", "Baseball tonight.", "en").candidates == ()
    assert p.scan("Caracas", "Baseball tonight.", "en").candidates == (0,)


def test_rules_sharing_terms_share_one_entry() -> None:
    rules = "\n---\n".join(f"name: r{i}\nactors: [Caracas]" for i in range(50))
    p = prefilter(rules)
    assert len(p.terms) == 1
    assert p.scan("Caracas", "", "en").candidates == tuple(range(50))


def test_rules_are_indexed_under_the_terms_they_need() -> None:
    """A keyword 1,000 rules share, but none needs alone, wakes none of them up."""
    rules = "\n---\n".join(
        f"name: r{i}\nactors: [Zorblax{i}]\nkeywords: [talks, {i}-plan]\n"
        f"match: {{all: [Zorblax{i}, keywords]}}"
        for i in range(1000)
    )
    p = prefilter(rules)
    assert p.scan("Talks", "The talks went on and on: talks, talks.", "en").candidates == ()
    assert p.scan("Talks", "Zorblax7 joined the talks.", "en").candidates == (7,)


def test_a_rule_that_needs_no_term_is_always_checked() -> None:
    p = prefilter("actors: [Caracas, Maracaibo]\nmatch: {any: [Caracas, {none: [Maracaibo]}]}\n")
    assert p.scan("Caracas", "", "en").candidates == (0,)
    assert p.scan("Nothing", "at all", "en").candidates == ()  # min_mentions 1
