"""Trap texts for the shipped rules: "maduro" the word never alerts, tricky real stories do.

Every text here is written for the test (none comes from the corpus).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.config import NlpSettings
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import load_rules
from watcher.types import Article, ArticleSource

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    ruleset = load_rules(REPO / "rules")
    return Matcher(ruleset, Analyzer(NlpSettings(), ruleset))


def alerts(m: Matcher, title: str, text: str) -> list[str]:
    article = Article("https://example.org/t", title, text, ArticleSource.FILE)
    return sorted(found.rule for found in m.match(article))


MADURO_THE_WORD = {
    "fruit (en)": (
        "Cooking with plantains",
        "Wait until the plantain is fully ripe: a maduro plantain is black and soft. Fry the "
        "maduro slices in butter until golden. Serve the maduros with rice and beans.",
    ),
    "fruit (es)": (
        "Receta de plátano maduro frito",
        "Pela el plátano maduro y córtalo en rodajas. Fríe el plátano en aceite caliente hasta "
        "que esté dorado. Un plátano bien maduro es más dulce.",
    ),
    "cheese (es)": (
        "Quesos de la región",
        "El queso maduro de oveja se cura durante doce meses. Un queso maduro tiene un sabor "
        "intenso; el queso fresco, en cambio, es suave.",
    ),
    "cigars": (
        "Maduro",
        "Maduro wrappers are dark and oily. This Maduro cigar from Nicaragua burns evenly, and "
        "the maduro leaf gives notes of cocoa and coffee. Maduro smokers will like it.",
    ),
    "fashion": (
        "Autumn looks",
        "This season the maduro look is everywhere: deep browns, rich leathers and a mature "
        "cut. Designers call it maduro chic, and the runway in Milan agreed.",
    ),
    "restaurant": (
        "Where to eat this weekend",
        "El Maduro, a small restaurant in Miami, serves arepas and fried plantains. The chef "
        "at El Maduro opened the place in 2019 and the queue is long on Sundays.",
    ),
    "a mature man (es)": (
        "Consejos de pareja",
        "Un hombre maduro sabe escuchar. Ser maduro no depende de la edad: una mujer madura y "
        "un hombre maduro hablan de sus problemas con calma.",
    ),
}


@pytest.mark.parametrize("case", sorted(MADURO_THE_WORD))
def test_maduro_the_word_never_alerts(shipped: Matcher, case: str) -> None:
    title, text = MADURO_THE_WORD[case]
    assert alerts(shipped, title, text) == []


# Short forms, acronyms and places of Venezuela that are also words, brands, people or other
# countries' things, and a Venezuelan in a sports or food headline: never the rule's topic.
NOT_VENEZUELAN_POLITICS = {
    "hair care (es)": (
        "Cómo cuidar el cabello en verano",
        "El sol y el cloro dañan el cabello. Un buen acondicionador protege el cabello seco, "
        "y cortar las puntas cada dos meses ayuda a que el cabello crezca sano.",
    ),
    "a used car (en)": (
        "Buying a used Saab 9-3",
        "The Saab 9-3 convertible is a comfortable used car. Look under the Saab for oil "
        "stains and ask for the service history before you buy.",
    ),
    "a defence order (en)": (
        "Saab wins radar order from the Peruvian government",
        "Swedish defence group Saab said the Peruvian government ordered radars for its "
        "military. Saab shares rose, and the president of Saab's radar unit said more orders "
        "from the region may follow.",
    ),
    "a singer (en)": (
        "Camila Cabello speaks out on deportation policy",
        "Singer Camila Cabello said the deportation of migrants breaks families. Cabello spoke "
        "at a concert in Miami; the White House did not respond.",
    ),
    "the popular will (es)": (
        "El Gobierno pide respetar la voluntad popular en Chile",
        "El presidente afirmó que la Voluntad Popular expresada en las urnas debe respetarse. "
        "La oposición denunció irregularidades en dos regiones.",
    ),
    "zone 7 of another capital (es)": (
        "Dos heridos en un robo en la zona 7 de la capital",
        "La policía de Guatemala informó de un robo en la zona 7. El gobierno anunció más "
        "patrullas y el presidente pidió calma.",
    ),
    "Honduras's regulator (es)": (
        "Conatel multa a dos operadoras por fallas en la red",
        "La Comisión Nacional de Telecomunicaciones (Conatel) de Honduras multó a dos "
        "operadoras. El gobierno hondureño dijo que Conatel vigilará el servicio.",
    ),
    "a baseball player (es)": (
        "El venezolano Luis Pérez conecta su jonrón 25 de la temporada",
        "Pérez llegó a 25 cuadrangulares y su equipo ganó 4-1 en Grandes Ligas.",
    ),
    "a chef (en)": (
        "Venezuelan chef opens a restaurant in Lisbon",
        "The chef, who left Caracas ten years ago, serves arepas and tequeños near the river.",
    ),
    # Political prisoners and amnesty laws of other countries: these words count for
    # Venezuela only beside a release ("excarcelación") or a Venezuelan name.
    "Catalan prisoners (es)": (
        "Miles de personas piden la libertad de los presos políticos catalanes",
        "La manifestación recorrió Barcelona. Los organizadores exigieron una amnistía para "
        "los presos políticos y el Gobierno respondió que respeta las sentencias.",
    ),
    "Spain's amnesty law (es)": (
        "El Congreso aprueba la Ley de Amnistía",
        "La Ley de Amnistía salió adelante con 178 votos. La oposición anunció un recurso ante "
        "el Tribunal Constitucional y el presidente defendió la reconciliación.",
    ),
    "prisoners in Oaxaca (es)": (
        "Denuncian presos políticos indígenas en un penal de Oaxaca",
        "Activistas afirmaron que hay 50 presos políticos en el penal. El gobierno estatal "
        "prometió revisar los expedientes.",
    ),
    "a cigar sold in the US (en)": (
        "The best Maduro of the year",
        "This Maduro is rolled in Nicaragua and sold across the U.S. for twelve dollars. "
        "Maduro smokers in the United States will find it at most tobacconists.",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_VENEZUELAN_POLITICS))
def test_look_alikes_of_venezuelan_names_never_alert(shipped: Matcher, case: str) -> None:
    title, text = NOT_VENEZUELAN_POLITICS[case]
    assert alerts(shipped, title, text) == []


@pytest.mark.parametrize(
    "headline",
    [
        # A Venezuelan press headline names the country by a demonym, an institution, a
        # state or a short name, and "EE. UU." ends no sentence (all written for the test).
        "ICE detiene en Texas a un venezolano con estatus de protección temporal",
        "El BCV anuncia una nueva subasta de divisas para la banca",
        "Ataque de EE. UU. contra un puerto de La Guaira deja daños en almacenes",
        "Cabello responde en Caracas a las críticas de la oposición",
        "La FANB niega divisiones internas",
        # The 2026 stories: the releases of political prisoners and Maduro's trial name
        # neither the country nor a Venezuelan institution.
        "Excarcelan a tres dirigentes sindicales detenidos desde 2023",
        "Familiares de presos políticos esperan nuevas excarcelaciones este domingo",
        "Maduro llega a un tribunal de Manhattan para la audiencia de cargos",
        "Maduro es trasladado a una cárcel federal en EE. UU.",
    ],
)
def test_headlines_that_name_venezuela_without_its_name_alert(
    shipped: Matcher, headline: str
) -> None:
    assert alerts(shipped, headline, "") == ["venezuela"]


def test_spanish_only_maduro_story_alerts(shipped: Matcher) -> None:
    text = (
        "Maduro anunció el lunes nuevas medidas económicas durante un acto en el palacio de "
        "Miraflores. El mandatario dijo que el gobierno no aceptará presiones extranjeras. "
        "Maduro acusó a la oposición de conspirar con Washington y pidió a los chavistas "
        "movilizarse. La oposición respondió que las elecciones no fueron libres."
    )
    assert alerts(shipped, "Maduro anuncia nuevas medidas", text) == ["venezuela"]


def test_kremlin_and_kyiv_negotiators_without_the_word_peace(shipped: Matcher) -> None:
    text = (
        "Negotiators from Kyiv and the Kremlin met for a second day in Istanbul on Tuesday. "
        "The Ukrainian delegation, led by Rustem Umerov, presented a draft memorandum on a "
        "ceasefire, and Russian negotiators promised an answer within a week. Both sides "
        "agreed to exchange prisoners. Umerov said the negotiation would continue next month."
    )
    assert alerts(shipped, "Ukraine and Russia negotiators meet in Istanbul", text) == [
        "ukraine-peace"
    ]


@pytest.mark.parametrize("spelling", ["Zelenskyy", "Zelenskiy", "Zelensky"])
def test_zelensky_spellings(shipped: Matcher, spelling: str) -> None:
    text = (
        f"{spelling} said on Sunday that Ukraine is ready for a ceasefire if Russia stops its "
        f"attacks. {spelling} told reporters that the peace talks in Geneva were difficult but "
        "that a peace deal was possible this year. The Kremlin did not comment."
    )
    assert alerts(shipped, f"{spelling} open to ceasefire talks", text) == ["ukraine-peace"]


@pytest.mark.parametrize(
    "headline",
    [
        # Headlines of the talks that name no "peace": an envoy meeting a party, a round,
        # a draft, a plan by its number, a counter-proposal, security guarantees.
        "Witkoff and Kushner meet Putin in Moscow for five hours",
        "Umerov heads to Miami for another round with US negotiators",
        "Kyiv and Moscow to resume direct talks in Istanbul next week",
        "Ukraine war: what is in the leaked draft accord?",
        "Europeans draft counter-proposal to US framework for ending war in Ukraine",
        "Coalition of the willing discusses security guarantees for Ukraine in Paris",
        "Ucrania y Rusia reanudan las conversaciones directas en Ginebra",
    ],
)
def test_headlines_of_the_talks_without_the_word_peace_alert(
    shipped: Matcher, headline: str
) -> None:
    assert alerts(shipped, headline, "") == ["ukraine-peace"]


@pytest.mark.parametrize(
    "headline",
    [
        # Ukraine's other talks, the same envoys on Gaza, and look-alike names.
        "Ukraine and Poland hold talks on grain imports",
        "Ukraine's central bank in talks with IMF on new loan programme",
        "Witkoff and Kushner in Cairo for Gaza ceasefire talks",
        "Witkoff meets Netanyahu in Jerusalem",
        "Kellogg's in talks to sell its snacks business",
        "Russian figure skater Dmitriev wins gold in Moscow",
        "Russia and China sign energy accord in Beijing",
        "Ukraine extends moratorium on foreign debt payments",
    ],
)
def test_other_talks_and_look_alikes_do_not_alert_ukraine_peace(
    shipped: Matcher, headline: str
) -> None:
    assert "ukraine-peace" not in alerts(shipped, headline, "")


def test_war_report_with_a_passing_mention_of_talks_does_not_alert(shipped: Matcher) -> None:
    war = (
        "Russian forces shelled Kharkiv overnight, killing four people, the regional governor "
        "said. Ukrainian drones struck an oil depot in the Bryansk region. Fighting continued "
        "near Pokrovsk, where Russian troops have advanced slowly for months. Air defences shot "
        "down 40 drones over Kyiv. Power was cut in three districts. Rescue teams worked through "
        "the night. The general staff reported 1,200 Russian losses in one day. Separately, the "
        "Kremlin said there were no plans for new peace talks. Ukraine's army said it had "
        "repelled 30 attacks near Kupiansk. Shelling also hit Kherson in the afternoon."
    )
    assert alerts(shipped, "Russia pounds Kharkiv as fighting rages in the east", war) == []


def test_links_and_addresses_are_not_matched(shipped: Matcher) -> None:
    text = (
        "Read more at https://example.com/maduro-venezuela-caracas-news or write to "
        "maduro@example.org. Our newsletter covers gardening tips, spring bulbs and pruning."
    )
    assert alerts(shipped, "Gardening in spring", text) == []


def test_mojibake_is_repaired_before_matching(shipped: Matcher) -> None:
    """Unrepaired, "Venezuelaâ" is no whole word and nothing here would match."""
    text = (
        "Venezuelaâ€™s government said on Monday that it would not attend the summit. "
        "Venezuelaâ€™s opposition called the decision a mistake."
    )
    assert alerts(shipped, "Venezuelaâ€™s government skips the summit", text) == ["venezuela"]


def test_a_lowercase_word_in_a_written_alias_is_not_lowercase_text(shipped: Matcher) -> None:
    text = "El presidente Maduro dijo que el gobierno no cederá ante las sanciones. " * 3
    assert alerts(shipped, "El presidente Maduro no cederá", text) == ["venezuela"]
