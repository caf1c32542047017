"""Tests for watcher.rules.match: actors, keywords, logic, scores, filters and explanations.

Every article here is synthetic, written for these tests; the seed article is read from
../shared/seeds when present.
"""

from __future__ import annotations

import os
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher.config import NlpSettings
from watcher.rules.match import Matcher, Verdict
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import RuleSet, load_rules, parse_rules
from watcher.types import Article, ArticleSource, Evidence

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WATCHER_SHARED") or REPO.parent / "shared")
SEED = SHARED / "seeds" / "000_1e00dd681d865c74.txt"


def article(title: str, text: str = "", **fields: object) -> Article:
    return Article(url="https://example.org/a", title=title, text=text,
                   source=ArticleSource.FILE, **fields)  # type: ignore[arg-type]  # fmt: skip


def matcher(rules_yaml: str, settings: NlpSettings | None = None) -> Matcher:
    ruleset = RuleSet(tuple(parse_rules(textwrap.dedent(rules_yaml))))
    return Matcher(ruleset, Analyzer(settings or NlpSettings(), ruleset))


def names(m: Matcher, a: Article, **kwargs: datetime) -> list[str]:
    return [found.rule for found in m.match(a, **kwargs)]


def verdict(m: Matcher, a: Article, rule: str = "") -> Verdict:
    verdicts = m.explain(a)
    return next(v for v in verdicts if v.rule == rule) if rule else verdicts[0]


def matched(v: Verdict) -> list[str]:
    return [e.matched for e in v.evidence]


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    ruleset = load_rules(REPO / "rules")
    return Matcher(ruleset, Analyzer(NlpSettings(), ruleset))


# --- the seed article and the near misses ----------------------------------------------


def seed_article() -> Article:
    if not SEED.exists():
        pytest.skip("../shared/seeds is not present")
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()]
    content = [i for i, line in enumerate(lines) if line]
    # The first non-empty line is page junk ("Advertisement banner"); the title follows.
    title_at = content[1]
    return article(lines[title_at], "\n".join(lines[title_at + 1 :]).strip())


def test_seed_article_matches_both_rules_with_evidence(shipped: Matcher) -> None:
    found = {m.rule: m for m in shipped.match(seed_article())}
    assert set(found) == {"venezuela", "ukraine-peace"}

    venezuela = found["venezuela"]
    actors = {(e.term, e.matched) for e in venezuela.evidence if e.kind == "actor"}
    assert ("Nicolás Maduro", "Nicolas Maduro") in actors
    assert ("Nicolás Maduro", "Maduro") in actors
    assert ("Venezuela", "Venezuela") in actors
    maduro = next(e for e in venezuela.evidence if e.matched == "Nicolas Maduro")
    assert maduro.entity_label == "PERSON" and maduro.where == "text"
    assert "phone call with Venezuelan President Nicolas Maduro" in maduro.sentence
    assert (
        venezuela.priority == "critical" and venezuela.destinations == ()
    )  # the configured defaults
    assert venezuela.score >= venezuela.threshold

    ukraine = found["ukraine-peace"]
    terms = {(e.kind, e.term) for e in ukraine.evidence}
    assert {("actor", "Ukraine"), ("keyword", "peace talks"), ("keyword", "peace plan")} <= terms
    plan = next(e for e in ukraine.evidence if e.term == "peace plan")
    assert "Ukrainian delegations" in plan.sentence
    assert any(
        "near(Ukraine|Russia|envoys|negotiators, talks|delegates)" in r for r in ukraine.reasons
    )

    # docs/rules.md, "Worked example 3": the talks are a headed section at the end
    about = next(v for v in shipped.explain(seed_article()) if v.rule == "ukraine-peace").reasons
    assert any(r.startswith("✓ about") and "score 2.18" in r for r in about)
    assert any("(5 of 26 sentences)" in r for r in about)
    assert any("is a heading" in r and r.lstrip().startswith("heading") for r in about)


def test_near_miss_ford_car_recall_and_the_aircraft_carrier() -> None:
    m = matcher("""\
        name: gerald-ford
        actors:
          Gerald Ford:
            aliases: [Ford, President Ford, Gerald R. Ford]
            types: [PERSON]
            exclude: [USS Gerald R. Ford, Ford Motor]
        """)  # fmt: skip
    recall = article(
        "Ford recalls 240,000 SUVs over faulty rear suspension",
        "Ford Motor Co. is recalling about 240,000 Explorer SUVs in the United States because "
        "a rear suspension link can fracture. Ford said dealers will replace the part for free.",
    )
    carrier = article("Carrier arrives", "The aircraft carrier USS Gerald R. Ford arrived in the "
                      "Caribbean on Tuesday.")  # fmt: skip
    president = article("A pardon, fifty years on", "Gerald Ford pardoned Richard Nixon in 1974. "
                        "President Ford later lost the 1976 election to Jimmy Carter.")  # fmt: skip
    assert names(m, recall) == [] and names(m, carrier) == []
    assert names(m, president) == ["gerald-ford"]
    reasons = "\n".join(verdict(m, recall).reasons)
    assert "'Ford' is ORG, not PERSON" in reasons
    assert "is part of 'USS Gerald R. Ford' (exclude)" in "\n".join(verdict(m, carrier).reasons)


GEORGIA_RULE = """\
    name: georgia
    actors:
      Georgia:
        types: [GPE]
        not_near: [Atlanta, county, Raffensperger, Kemp]
      Tbilisi:
    keywords:
      election: [election, vote, ballot, polling station]
      us-state: [Atlanta, Fulton County, Brian Kemp, Peach State, Senate race]
    match:
      all:
        - near: [[Georgia, Tbilisi], election]
        - {term: Georgia, min: 2}
      none: [us-state]
    """


def test_near_miss_election_in_the_us_state_of_georgia() -> None:
    m = matcher(GEORGIA_RULE)
    country = article(
        "Georgia holds parliamentary election amid protests",
        "Voters in Georgia cast ballots on Saturday in a parliamentary election seen as a test "
        "of the country's path toward the European Union. In Tbilisi, long queues formed "
        "outside polling stations.",
    )
    state = article(
        "Georgia voters head to the polls in tight Senate race",
        "Voters across Georgia lined up on Tuesday in a closely watched election. In Fulton "
        "County, which includes most of Atlanta, officials reported long lines. Georgia "
        "Secretary of State Brad Raffensperger said turnout was high.",
    )
    assert names(m, country) == ["georgia"]
    assert names(m, state) == []
    reasons = verdict(m, state).reasons
    assert "  not counted: 'Georgia' is in a sentence with 'Raffensperger' (not_near)" in reasons
    assert any(r.startswith("match: ✗ all(") and "✗ none(✓ us-state)" in r for r in reasons)


def test_near_miss_spanish_recipe_with_platano_maduro(shipped: Matcher) -> None:
    recipe = article(
        "Plátanos maduros fritos con queso",
        "Pela dos plátanos maduros y córtalos en rodajas. Calienta aceite en una sartén y fríe "
        "el plátano maduro hasta que esté dorado. Sirve con queso rallado. Es una receta "
        "típica de Venezuela y de Colombia.",
    )
    titled = article("Tortilla de Plátano Maduro", "Una receta con cuatro huevos y un Plátano "
                     "Maduro bien dorado.")  # fmt: skip
    assert names(shipped, recipe) == []
    assert names(shipped, titled) == []
    reasons = "\n".join(verdict(shipped, titled, "venezuela").reasons)
    assert "'Maduro' is part of 'plátano maduro' (exclude)" in reasons


def test_near_miss_peace_in_an_unrelated_context(shipped: Matcher) -> None:
    yoga = article(
        "Finding inner peace: a beginner's guide to yoga",
        "Yoga teachers say regular practice brings inner peace and calm. Olena, a "
        "Ukrainian-born instructor in Lisbon, starts every class with ten minutes of breathing. "
        "The Russian twist, a core exercise, comes later. Students say the peace they find on "
        "the mat lasts all day.",
    )
    assert names(shipped, yoga) == []


def test_near_miss_passing_mention_of_venezuela(shipped: Matcher) -> None:
    oil = article(
        "Oil prices climb as OPEC+ extends output cuts",
        "Oil prices rose on Monday after OPEC+ agreed to extend its output cuts into next "
        "year. Brent crude gained 1.2% to $84 a barrel, while US crude rose 1.1%.\n\n"
        "Analysts said demand from China remains the main uncertainty. The US government "
        "reported a larger than expected draw in crude stockpiles last week.\n\n"
        "Supply disruptions in Libya and lower exports from Venezuela also supported prices. "
        "Traders will watch the Federal Reserve's meeting later this week.",
    )
    assert names(shipped, oil) == []
    assert verdict(shipped, oil, "venezuela").reasons[-1].startswith("no alert: ")


# --- Spanish, on the blank pipeline -------------------------------------------------------


def test_spanish_peace_talks_and_ceasefire(shipped: Matcher) -> None:
    text = article(
        "Rusia y Ucrania reanudan las conversaciones de paz en Estambul",
        "Las delegaciones de Rusia y Ucrania se reunieron este lunes en Estambul para una nueva "
        "ronda de conversaciones de paz. Ambas partes discutieron un posible alto el fuego de "
        "treinta días. Kiev insiste en que cualquier acuerdo respete su integridad territorial.",
    )
    (found,) = shipped.match(text)
    assert found.rule == "ukraine-peace"
    keywords = {e.matched for e in found.evidence if e.kind == "keyword"}
    assert {"conversaciones de paz", "alto el fuego"} <= keywords
    assert {"Ucrania", "Kiev"} <= {e.matched for e in found.evidence if e.term == "Ukraine"}


def test_spanish_maduro_without_accents_and_in_capitals(shipped: Matcher) -> None:
    text = article(
        "Nicolas Maduro rechaza las nuevas sanciones de Washington",
        "El presidente de Venezuela rechazó el lunes las sanciones anunciadas por Estados "
        "Unidos. MADURO afirmó que el gobierno no aceptará presiones.",
    )
    (found,) = shipped.match(text)
    maduro = [e for e in found.evidence if e.term == "Nicolás Maduro"]
    assert [(e.matched, e.where) for e in maduro] == [("Nicolas Maduro", "title"),
                                                      ("MADURO", "text")]  # fmt: skip
    assert maduro[0].entity_label == "PERSON"  # a rule-based entity: no Spanish model


# --- actors ----------------------------------------------------------------------------

MADURO_RULE = """\
    name: maduro
    actors:
      Nicolás Maduro: {aliases: [Maduro], types: [PERSON]}
      United States: [US]
    """


def test_actor_aliases_accents_possessives_and_case() -> None:
    m = matcher(MADURO_RULE)
    text = "Nicolas Maduro's government replied. MADURO spoke. Maduro's aides agreed. "
    v = verdict(m, article("Talks", text + "The Maduros of the world disagree."))
    assert matched(v) == ["Nicolas Maduro", "MADURO", "Maduro"]
    assert all(e.term == "Nicolás Maduro" for e in v.evidence)


def test_acronym_aliases_match_only_in_capitals() -> None:
    m = matcher(MADURO_RULE)
    v = verdict(m, article("Tell us", "Tell us what you think. US troops arrived."))
    assert matched(v) == ["US"]


def test_names_match_whole_words_only() -> None:
    m = matcher("actors: [Caracas]\n")
    assert names(m, article("Caracasian food", "Not Caracas-like at all.")) == ["rules"]
    assert verdict(m, article("Caracasian food", "Nothing here.")).matched is False


def test_type_constraint_gives_untagged_capitalised_names_the_benefit_of_the_doubt() -> None:
    m = matcher(MADURO_RULE)
    v = verdict(m, article("Maduro Amid Rising Tensions", "The maduro fruit is sweet."))
    assert matched(v) == ["Maduro"]
    assert "  not counted: 'maduro' is lowercase, not a name" in v.reasons


# --- keywords ---------------------------------------------------------------------------


def test_keywords_match_on_lemmas() -> None:
    m = matcher("keywords: [strike, peace talks]\n")
    v = verdict(m, article("Peace Talks", "The strikes continued. Workers were striking. "
                           "A peace talk was held."))  # fmt: skip
    assert matched(v) == ["Peace Talks", "strikes", "striking", "peace talk"]
    assert [e.term for e in v.evidence] == ["peace talks", "strike", "strike", "peace talks"]


def test_keywords_per_language() -> None:
    m = matcher("keywords:\n  en: [ceasefire]\n  es: [alto el fuego]\n")
    english = article("Ceasefire holds", "The ceasefire held overnight, officials said.")
    spanish = article("Se mantiene el alto el fuego", "El alto el fuego se mantuvo durante la "
                      "noche, según las autoridades.")  # fmt: skip
    assert matched(verdict(m, english)) == ["Ceasefire", "ceasefire"]
    assert matched(verdict(m, spanish)) == ["alto el fuego", "alto el fuego"]
    # an English article quoting the Spanish phrase does not count it
    quoted = article("Ceasefire holds", "The ceasefire, or alto el fuego, held, officials said.")
    assert matched(verdict(m, quoted)) == ["Ceasefire", "ceasefire"]


def test_a_keyword_inside_an_exclude_phrase_is_not_counted() -> None:
    m = matcher(
        """\
        keywords:
          deal:
            en: [agreement]
            es: [acuerdo]
            exclude: [de acuerdo con, in agreement with]
        """
    )
    spanish = article(
        "Rusia y Ucrania firman un acuerdo",
        "Murieron cuatro personas, de acuerdo con el alcalde. El acuerdo llegó después. "
        "De acuerdo con la policía, nadie más resultó herido.",
    )
    v = verdict(m, spanish)
    assert matched(v) == ["acuerdo", "acuerdo"]  # the title's and "El acuerdo", not the others
    assert any("'acuerdo' is part of 'de acuerdo con' (exclude)" in r for r in v.reasons)
    english = article("Talks", "The envoy was in agreement with the minister. No agreement yet.")
    assert matched(verdict(m, english)) == ["agreement"]


def test_a_keyword_in_a_sentence_with_a_not_near_phrase_is_not_counted() -> None:
    """``not_near`` rules out the group's mentions in a sentence that says they are about
    something else; other sentences, and other groups in that sentence, still count."""
    m = matcher(
        """\
        actors: [Ukraine]
        keywords:
          negotiating:
            en: [negotiate]
            not_near: [Patriot systems, grain import]
          talks:
            en: [ceasefire]
        match:
          near: [Ukraine, [negotiating, talks]]
        """
    )
    purchase = article(
        "Arms",
        "Ukraine negotiates the purchase of Patriot systems. "
        "Ukraine and Poland negotiated over grain imports.",
    )
    v = verdict(m, purchase)
    assert not v.matched
    assert matched(v) == ["Ukraine", "Ukraine"]
    assert any("'negotiates' is in a sentence with 'Patriot systems' (not_near)" in r
               for r in v.reasons)  # fmt: skip
    assert any("'grain import'" in r and "(not_near)" in r for r in v.reasons)  # lemma: imports
    talks = article(
        "Talks",
        "Ukraine negotiates a ceasefire and the purchase of Patriot systems. "
        "Ukraine will negotiate again next week.",
    )
    v = verdict(m, talks)
    assert v.matched
    # the first sentence's ceasefire counts; its "negotiates" does not; the second's does
    assert matched(v) == ["Ukraine", "ceasefire", "Ukraine", "negotiate"]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("actors:\n  Nicolás Maduro:\n    aliases: [Maduro]\n    not_near: [Maduro]\n",
         "Nicolás Maduro spoke in Caracas. Maduro left."),
        ("actors:\n  Georgia:\n    exclude: [georgia]\n", "Georgia votes. GEORGIA counts."),
        ("keywords:\n  talks:\n    en: [peace talks]\n    not_near: [talk]\n",
         "Peace talks resume. The peace talk failed."),
        ("keywords:\n  talks:\n    en: [peace talks]\n    exclude: [Peace Talk]\n",
         "Peace talks resume. The peace talk failed."),
        ("actors:\n  Boeing 737:\n    not_near: [737]\n",
         "A Boeing 737 landed. A Boeing 737 flew."),
    ],
)  # fmt: skip
def test_what_the_checker_calls_self_silencing_drops_every_mention(term: str, text: str) -> None:
    """The checker warns about an ``exclude`` that is the term's own name or phrase, and a
    ``not_near`` inside one (tests/test_rules_schema.py): they do silence every mention,
    which the same term without that key counts."""
    loose = "\n".join(line for line in term.split("\n") if "exclude" not in line
                      and "not_near" not in line)  # fmt: skip
    assert len(matched(verdict(matcher(loose), article("Today", text)))) == 2
    v = verdict(matcher(term), article("Today", text))
    assert not v.matched and matched(v) == []


def test_longest_phrase_wins_within_a_group() -> None:
    m = matcher("keywords: [peace, peace talks]\n")
    assert matched(verdict(m, article("x", "The peace talks resumed in peace."))) == [
        "peace talks",
        "peace",
    ]


def test_regex() -> None:
    m = matcher("regex: {cartel: '(?i)cartel de los soles'}\n")
    v = verdict(m, article("Indictment", "Prosecutors named the CARTEL DE LOS SOLES again."))
    assert v.matched and v.evidence[0] == Evidence(
        "regex", "cartel", "CARTEL DE LOS SOLES", "text",
        "Prosecutors named the CARTEL DE LOS SOLES again.", 22, 41, None, group="cartel",
    )  # fmt: skip


# --- logic, proximity, mentions, scope, score ---------------------------------------------

NEAR_RULE = """\
    actors: [Ukraine]
    keywords: {talks: [peace talks]}
    match:
      near: [Ukraine, talks]
      within: {within}
    """


@pytest.mark.parametrize(
    ("within", "text", "expected"),
    [
        ("sentence", "Ukraine said so on Monday. Peace talks resume soon.", False),
        ("sentence", "Ukraine and Russia began peace talks on Monday.", True),
        ("sentence", "Ukraine\nPeace talks begin", False),  # a heading is its own sentence
        ("3", "Ukraine and Russia began peace talks on Monday.", False),
        ("4", "Ukraine and Russia began peace talks on Monday.", True),
        ("4", "Peace talks, they said; Ukraine agreed.", True),
    ],
)  # fmt: skip
def test_proximity(within: str, text: str, expected: bool) -> None:
    m = matcher(NEAR_RULE.replace("{within}", within))
    assert verdict(m, article("Headline", text)).matched is expected


def test_explain_says_how_close_a_failed_near_came() -> None:
    def near_line(within: str, text: str) -> str:
        reasons = verdict(matcher(NEAR_RULE.replace("{within}", within)), article("H", text))
        return next(r for r in reasons.reasons if "near(" in r)

    assert "closest: talks 4 words away" in near_line(
        "3", "Ukraine and Russia began peace talks on Monday."
    )
    assert "closest: talks 1 sentence away" in near_line(
        "sentence", "Ukraine said so on Monday. Peace talks resume soon."
    )
    assert "no mention of talks" in near_line("3", "Ukraine said so on Monday.")
    # three terms: the distances are those of one mention of the first, the closest overall
    m = matcher("""\
        keywords: {a: [alpha], b: [bravo], c: [charlie]}
        match: {near: [a, b, c], within: 3}
        """)
    text = "alpha bravo one two three four five six seven eight alpha charlie"
    (line,) = [r for r in verdict(m, article("H", text)).reasons if "near(" in r]
    assert "✗" in line and "closest: b 9 words away, c 1 word away" in line


def test_nested_logic() -> None:
    m = matcher("""\
        actors: [Ukraine, Russia, Belarus]
        keywords: {talks: [peace talks], sport: [football]}
        match:
          all:
            - any: [Ukraine, Russia]
            - any: [talks, {all: [Belarus, Russia]}]
          none: [sport]
        """)  # fmt: skip
    assert verdict(m, article("x", "Ukraine wants peace talks.")).matched
    assert verdict(m, article("x", "Russia and Belarus met.")).matched
    assert not verdict(m, article("x", "Ukraine and Belarus met.")).matched
    assert not verdict(m, article("x", "Ukraine wants peace talks after football.")).matched
    reasons = verdict(m, article("x", "Ukraine and Belarus met.")).reasons
    assert ("match: ✗ all(✗ all(✓ any(✓ Ukraine, ✗ Russia), ✗ any(✗ talks, ✗ all(✓ Belarus, "
            "✗ Russia))), ✓ none(✗ sport))") in reasons  # fmt: skip


def test_minimum_mentions() -> None:
    m = matcher("actors: [Caracas]\nmatch: {term: Caracas, min: 2}\n")
    assert not verdict(m, article("x", "Caracas is hot.")).matched
    assert verdict(m, article("x", "Caracas is hot. Caracas is far.")).matched
    m = matcher("actors: [Caracas, Maracaibo]\nmin_mentions: 3\n")
    assert not verdict(m, article("x", "Caracas and Maracaibo.")).matched
    v = verdict(m, article("x", "Caracas and Maracaibo. And Caracas."))
    assert v.matched and "score 3 (threshold 1), 3 mentions (min_mentions 3)" in v.reasons


def test_scope() -> None:
    m = matcher("actors: [Caracas]\nmatch: {term: Caracas, in: title}\n")
    assert not verdict(m, article("News", "Caracas is hot.")).matched
    assert verdict(m, article("Caracas today", "Hot.")).matched
    m = matcher("actors: [Caracas]\nscope: title\n")
    assert verdict(m, article("News", "Caracas is hot.")).score == 0


def test_score_threshold_weights_and_title_weight() -> None:
    m = matcher("""\
        actors:
          Caracas: {weight: 2}
          Maracaibo:
        title_weight: 3
        threshold: 7
        """)  # fmt: skip
    assert verdict(m, article("Caracas", "Maracaibo.")).score == 7
    assert verdict(m, article("Caracas", "Maracaibo.")).matched
    v = verdict(m, article("News", "Caracas and Maracaibo."))
    assert (v.score, v.matched) == (3, False)
    assert v.reasons[-1] == "no alert: score 3 < threshold 7"


def test_title_repeated_at_the_start_of_the_text_counts_once() -> None:
    m = matcher("actors: [Caracas]\ntitle_weight: 1\n")
    assert verdict(m, article("Caracas blackout", "Caracas blackout\nPower is back.")).score == 1
    assert verdict(m, article("Caracas blackout", "Caracas blackout  Power is back.")).score == 1
    assert verdict(m, article("Caracas blackout", "Caracas blackout ends.")).score == 2


# --- filters -----------------------------------------------------------------------------

FILTERED_RULE = """\
    actors: [Caracas]
    filters:
      feeds: [Wire, tag:latam]
      languages: [es]
      max_age: 1d
    """


def test_filters() -> None:
    m = matcher(FILTERED_RULE)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    ok = article("Caracas hoy", "Caracas amaneció con lluvia en la ciudad.", feed_name="Wire",
                 published=now - timedelta(hours=2))  # fmt: skip
    assert names(m, ok, now=now) == ["rules"]
    tagged = article(ok.title, ok.text, feed_name="Other", feed_tags=("latam",))
    assert names(m, tagged, now=now) == ["rules"]
    for wrong, reason in [
        (article(ok.title, ok.text, feed_name="Other"), "feed 'Other' is not in"),
        (article("Caracas today", "Caracas woke up to rain in the city.", feed_name="Wire"),
         "language 'en' is not in ['es']"),
        (article(ok.title, ok.text, feed_name="Wire", published=now - timedelta(days=3)),
         "published 3.0d ago, more than max_age 1.0d"),
    ]:  # fmt: skip
        assert names(m, wrong, now=now) == []
        assert verdict(m, wrong).rule == "rules"
        assert reason in m.explain(wrong, now=now)[0].reasons[0]
    # without `now`, the age is not checked
    assert names(m, article(ok.title, ok.text, feed_name="Wire",
                            published=now - timedelta(days=3))) == ["rules"]  # fmt: skip


# --- the prefilter and the pipeline counter ---------------------------------------------------


def test_articles_without_terms_never_reach_the_pipeline() -> None:
    m = matcher(textwrap.dedent(MADURO_RULE) + "threshold: 3\n")
    m.match(article("Snails at the airport", "Ninety giant African snails were seized."))
    m.match(article("Maduro", "Only a passing mention."))  # a bound of 2 < threshold 3
    assert m.analyzer.pipeline_runs == 0
    speech = article("Maduro speaks", "President Nicolás Maduro spoke to reporters on Monday.")
    assert names(m, speech) == ["maduro"]
    assert m.analyzer.pipeline_runs == 1


def test_explain_notes_when_the_prefilter_would_skip_a_match() -> None:
    """Irregular forms are not in the prefilter: explain says so instead of disagreeing."""
    m = matcher("keywords: [strike]\n")
    v = verdict(m, article("Storm", "Lightning struck the tower."))
    assert v.matched is False
    assert v.reasons[-1].startswith("prefilter: ruled out before the full analysis")
    assert m.match(article("Storm", "Lightning struck the tower.")) == []


def test_a_thousand_rules_build_and_match() -> None:
    rules = "\n---\n".join(
        f"name: r{i}\nactors: [Zorblax{i}]\nkeywords: {{deal: [quux{i} treaty]}}\n"
        f"match: [Zorblax{i}, deal]"
        for i in range(1000)
    )
    m = matcher(rules)
    hit = article("Zorblax517 signs", "Zorblax517 signed two quux517 treaties. Zorblax12 did not.")
    assert names(m, hit) == ["r517"]
    miss = article("Nothing", "No generated term appears in this text at all.")
    assert m.match(miss) == [] and m.analyzer.pipeline_runs == 1
    start = time.perf_counter()
    for _ in range(200):
        m.match(miss)
    assert time.perf_counter() - start < 1.0  # the scan alone: well under 5 ms an article


# --- long texts, fallback, explain ------------------------------------------------------------


def test_long_text_keywords_are_counted_past_the_ner_limit() -> None:
    m = matcher("keywords: [ceasefire]\nactors: [Gaza]\n", NlpSettings(ner_chars=200))
    filler = "The weather was calm and the markets were quiet. " * 20
    v = verdict(m, article("Report", filler + "A ceasefire in Gaza began."))
    assert matched(v) == ["ceasefire", "Gaza"]
    assert v.evidence[0].sentence == "A ceasefire in Gaza began."


def test_fallback_when_the_model_is_not_installed() -> None:
    settings = NlpSettings(model="xx_watcher_missing_model")
    m = matcher(MADURO_RULE, settings)
    assert m.analyzer.warnings() == [
        "spaCy model 'xx_watcher_missing_model' is not installed; English uses a blank pipeline "
        "with lookup lemmas and rule-based entities (pip install xx_watcher_missing_model)"
    ]
    v = verdict(m, article("Talks", "Nicolás Maduro spoke. The maduro fruit was sweet."))
    assert v.matched and matched(v) == ["Nicolás Maduro"]
    assert v.evidence[0].entity_label == "PERSON"


def test_explain_gives_one_verdict_per_rule() -> None:
    m = matcher("""\
        name: one
        actors: [Caracas]
        ---
        name: two
        actors: [Maracaibo]
        filters: {languages: [es]}
        """)  # fmt: skip
    one, two = m.explain(article("Caracas", "Caracas is hot in the summer."))
    assert (one.rule, one.matched, two.rule, two.matched) == ("one", True, "two", False)
    assert one.reasons[0].startswith("analysis: 1 of 1 sentences read")
    assert one.reasons[1] == "actor Caracas: 2 mentions (1 in the title): 'Caracas'"
    assert two.reasons == ("filtered out: language 'en' is not in ['es']",)


def test_a_page_of_one_repeated_name_is_matched_in_linear_time() -> None:
    """1 MB of "Maduro " once took minutes (exclusions re-matched per mention): now bounded."""
    m = matcher("""\
        name: venezuela
        actors:
          Nicolás Maduro:
            ambiguous: [Maduro]
            exclude: [plátano maduro]
            not_near: [cigar]
        """)  # fmt: skip
    page = article("t", "Maduro " * 150_000)
    started = time.process_time()
    assert names(m, page) == []  # ambiguous, never corroborated
    v = verdict(m, page)
    seconds = time.process_time() - started
    assert seconds < 60  # generous for a busy machine: about 1 s on one core
    assert any(r.startswith("input capped: matched the first") for r in v.reasons)
    assert any("only the first 1,000 of" in r for r in v.reasons)


AMBIGUOUS_RULE = """\
    name: maduro
    actors:
      Nicolás Maduro:
        ambiguous: [Maduro]
        corroborate: [Caracas, politics]
      Caracas:
      envoys: [Witkoff, Kushner]
    keywords:
      politics: [government, president]
    """


def test_an_ambiguous_name_needs_corroboration() -> None:
    m = matcher(AMBIGUOUS_RULE)

    def counted(title: str, text: str) -> list[str]:
        v = verdict(m, article(title, text))
        return [e.matched for e in v.evidence if e.term == "Nicolás Maduro"]

    assert counted("Cigars", "The Maduro wrapper is dark. Maduro smokers love it.") == []
    reasons = "\n".join(verdict(m, article("Cigars", "Maduro wrappers are dark.")).reasons)
    assert "'Maduro' in the text is ambiguous and nothing corroborates it" in reasons
    # the full name earlier corroborates every later mention, not the ones before it
    assert counted("t", "Maduro left. Nicolás Maduro spoke. Then Maduro ate.") == [
        "Nicolás Maduro",
        "Maduro",
    ]
    # a corroborating term within the window (here: the same sentence)
    assert counted("t", "Maduro spoke in Caracas on Monday.") == ["Maduro"]
    assert counted("t", "The government said Maduro would speak.") == ["Maduro"]
    assert counted("t", "Maduro ate lunch. It rained in Caracas.") == []  # window 0
    # lowercase is the word, whatever surrounds it
    assert counted("t", "In Caracas, a maduro plantain costs more.") == []


def test_a_headline_surname_is_corroborated_by_the_full_name_in_the_text() -> None:
    """Headlines name people by surname and the text introduces the full name."""
    m = matcher(AMBIGUOUS_RULE)

    def title_mentions(title: str, text: str) -> int:
        v = verdict(m, article(title, text))
        return sum(e.where == "title" for e in v.evidence if e.term == "Nicolás Maduro")

    assert title_mentions("Maduro faces sanctions", "Nicolás Maduro spoke on Monday.") == 1
    assert title_mentions("Maduro faces sanctions", "Officials spoke on Monday.") == 0
    assert title_mentions("Maduro cigars reviewed", "The wrapper is dark and oily.") == 0
    reasons = "\n".join(verdict(m, article("Maduro", "The wrapper is dark.")).reasons)
    assert "in the title" in reasons and "no full name in the article" in reasons


def test_an_excluded_full_name_corroborates_nothing() -> None:
    m = matcher("""\
        name: ford
        actors:
          Gerald Ford:
            ambiguous: [Ford]
            exclude: [USS Gerald Ford]
        """)
    text = "The carmaker found the fault in testing. The USS Gerald Ford was in port."
    assert not verdict(m, article("Ford recalls 50,000 pickups", text)).matched
    assert not verdict(m, article("t", f"{text} Ford said so.")).matched
    assert verdict(m, article("Ford dies at 93", "Gerald Ford led the country.")).matched


SURNAMES_RULE = """\
    name: gobierno
    actors:
      Pedro Sánchez:
        ambiguous: [Sánchez]
        corroborate: [Pablo Iglesias, Podemos party, Venezuela, talks]
      Pablo Iglesias:
        ambiguous: [Iglesias]
      Podemos party:
        aliases: [Podemos]
        types: [ORG]
      Venezuela:
        exclude: [avenida Venezuela]
    keywords:
      talks:
        es: [acuerdo]
        exclude: [de acuerdo con]
    """


@pytest.mark.parametrize(
    "text",
    [
        # two ambiguous names: neither vouches for the other
        "Chava Iglesias y Hugo Sánchez protagonizarán una serie sobre el fútbol.",
        # a typed actor's lowercase mention is a word ("podemos": we can), not the party
        "El entrenador Sánchez dijo que podemos ganar el domingo.",
        # a mention inside an actor's exclude or a keyword group's exclude
        "El guía Sánchez vive en la avenida Venezuela desde 2010.",
        "De acuerdo con el guía, Sánchez llegó tarde al museo.",
    ],
)
def test_only_a_mention_that_counts_corroborates_an_ambiguous_name(text: str) -> None:
    """A corroborating term's mention must be one matching would count: not an ambiguous
    name (two would confirm each other), not lowercase where the actor has types, and not
    inside an exclude."""
    m = matcher(SURNAMES_RULE)
    v = verdict(m, article("Crónica", text))
    assert not {e.term for e in v.evidence} & {"Pedro Sánchez", "Pablo Iglesias"}


def test_a_counted_mention_still_corroborates_an_ambiguous_name() -> None:
    m = matcher(SURNAMES_RULE)
    for text in (
        "Sánchez y Podemos firmaron el programa de gobierno.",
        "Sánchez viajó a Venezuela el lunes.",
        "Sánchez defendió el acuerdo ante el Congreso.",
        # an ambiguous name the full name confirmed before it vouches like the full name
        "Pablo Iglesias habló primero. Después Iglesias y Sánchez firmaron el pacto.",
    ):
        v = verdict(m, article("Crónica", text))
        assert "Pedro Sánchez" in {e.term for e in v.evidence}, text


def test_an_article_naming_an_excluded_namesake_keeps_the_name_for_it() -> None:
    """One sense per article: when the text names a thing ``exclude`` lists and never the
    actor unambiguously, the bare name is that thing, whatever corroborates it nearby."""
    m = matcher("""\
        name: maduro
        actors:
          Nicolás Maduro:
            ambiguous: [Maduro]
            corroborate: [politics]
            exclude: [George Maduro]
        keywords:
          politics: [military, government]
        match:
          all: [Nicolás Maduro]
        """)
    hero = (
        "The museum honours George Maduro, a cavalry officer. Maduro led the military "
        "assault on the hotel in 1940."
    )
    v = verdict(m, article("A museum for a hero", hero))
    assert not v.matched
    assert any("names 'George Maduro' (exclude)" in r for r in v.reasons)
    # without the namesake, the nearby term corroborates the bare name
    assert verdict(m, article("t", "Maduro sent the military to the border.")).matched
    # the actor's full name anywhere settles it the other way
    both = f"{hero} Nicolás Maduro spoke of the government."
    assert verdict(m, article("t", both)).matched


CHAD_RULE = """\
    name: chad
    actors:
      Chad:
        aliases: [N'Djamena]
        ambiguous: [Chad]
        corroborate: [sahel]
        types: [GPE]
    keywords:
      sahel: [Sahel, Sudan, Niger]
    window: 2
    match:
      all: [Chad]
    """


def test_ner_reading_another_type_outvotes_a_nearby_corroborating_term() -> None:
    """One sense per article: NER reads the drummer in the headline as a PERSON, so the
    mention that "Niger" corroborates nearby does not count either; the country does."""
    m = matcher(CHAD_RULE)
    drummer = article(
        "Chad Smith talks drums",
        "Chad Smith, the rock drummer, discussed his new album in an interview.\n"
        "He said he never liked playing in Niger or anywhere hot.",
    )
    v = verdict(m, drummer)
    assert not v.matched and not [e for e in v.evidence if e.term == "Chad"]
    assert names(m, drummer) == []  # the daemon's path (NER only where it decides) agrees
    country = article(
        "Chad closes its border",
        "The government of Chad closed its eastern border on Monday. Refugees from Sudan "
        "had crossed into Chad for weeks, officials in N'Djamena said.",
    )
    assert names(m, country) == ["chad"]
    # a person named Chad further on does not unmake the country twice vouched for by Sudan
    both = article(
        "Border closed",
        "Chad closed its eastern border with Sudan on Monday, officials said. Refugees from "
        "Sudan had crossed into Chad for weeks. The rains came early. Roads were cut. Prices "
        "rose. Schools closed. Aid worker Chad Miller said the camps were full.",
    )
    v = verdict(m, both)
    assert v.matched and len([e for e in v.evidence if e.term == "Chad"]) >= 2
    assert names(m, both) == ["chad"]


def test_window_widens_corroboration_and_group_labels_do_not_match() -> None:
    m = matcher(AMBIGUOUS_RULE.rstrip(" ") + "    window: 1\n")
    v = verdict(m, article("t", "Maduro ate lunch. It rained in Caracas. Envoys met."))
    assert [e.matched for e in v.evidence if e.term == "Nicolás Maduro"] == ["Maduro"]
    assert not [e for e in v.evidence if e.term == "envoys"]  # "Envoys" is the word
    v = verdict(m, article("t", "Witkoff and Kushner flew in."))
    assert [e.matched for e in v.evidence if e.term == "envoys"] == ["Witkoff", "Kushner"]


def test_a_group_labels_ambiguous_names_match_when_corroborated() -> None:
    m = matcher(
        """
        name: talks
        actors:
          envoys: {aliases: [Witkoff]}
          negotiators:
            aliases: [Kirill Dmitriev]
            ambiguous: [Dmitriev]
            corroborate: [envoys]
        match: {any: [negotiators]}
        threshold: 1
        """
    )
    v = verdict(m, article("t", "Dmitriev met Witkoff in Miami."))
    assert [e.matched for e in v.evidence if e.term == "negotiators"] == ["Dmitriev"]
    v = verdict(m, article("t", "Dmitriev won the chess championship."))
    assert not v.matched  # nothing corroborates the surname


def test_explain_says_how_many_matched_forms_it_does_not_list() -> None:
    m = matcher("keywords: {weather: [rain, snow, hail, sleet, fog, wind, frost]}\n")
    text = "Rain, snow, hail, sleet, fog, wind and frost hit the coast."
    line = next(r for r in verdict(m, article("Storm", text)).reasons if "weather" in r)
    assert "and 2 more forms" in line


def test_explain_names_what_corroborated_an_ambiguous_name() -> None:
    m = matcher(AMBIGUOUS_RULE)
    reasons = verdict(m, article("t", "Maduro spoke in Caracas on Monday.")).reasons
    note = next(r for r in reasons if "counted: 'Maduro'" in r)
    assert "Caracas" in note
