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
    "a Dutch war hero": (
        "A miniature city for a hero of 1940",
        "The miniature park in The Hague is named after George Maduro, a cavalry officer from "
        "Curaçao. In May 1940 Maduro led the assault that retook a hotel from the German "
        "invasion force. He died in Dachau in 1945. The military later gave Maduro its "
        "highest decoration, and a new pavilion tells his story.",
    ),
    # "Maduro" capitalised in mid-sentence, as part of another name or beside a noun it
    # modifies, in an article that names nothing of Venezuela: NER (English) reads some of
    # them as a person, and rule-based entities (Spanish) would take every one
    "a handbag (en)": (
        "Autumn trends",
        "Shoppers loved the Maduro handbag from the new collection. It comes in brown "
        "leather, and stores in Paris sold out within a week.",
    ),
    "a collection, and the word (en)": (
        "Fall fashion: the maduro look",
        "Designers embraced a maduro palette this season: deep browns and tobacco tones. The "
        "Maduro collection by a Milan house sold out. Stylists call it grown-up elegance.",
    ),
    "cigars (es)": (
        "Los mejores puros del año",
        "El panel probó cuarenta puros. El Padrón 1964 Maduro ganó, por delante de un "
        "Connecticut. El Oliva Serie V Maduro quedó tercero.",
    ),
    "a restaurant (es)": (
        "Cena en Casa Maduro",
        "Reservamos mesa en Casa Maduro, el nuevo local cubano del centro. El cerdo estaba "
        "tierno y los mojitos, fuertes.",
    ),
    "fashion (es)": (
        "Tendencias de otoño",
        "La colección Maduro de una firma italiana se agotó en Madrid. Los tonos tabaco "
        "dominan la temporada.",
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
    # a capitalised "Cabello" opening a headline, with "transición" (a hair "transition")
    # where the minister's opposition words would corroborate him
    "hair in transition (es)": (
        "Cabello en transición: guía para dejar el alisado y lucir tus rizos",
        "Dejar la plancha no es fácil. Te contamos cómo cuidar tu melena mientras crece.",
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
    # A release of a convict in Spain or Argentina, or of prisoners in Cuba; the amnesty
    # law of Spain; a bar, a court case and a bank named Maduro.
    "a convict freed in Spain (es)": (
        "Excarcelan al violador de Pamplona tras la revisión de su condena",
        "La Audiencia de Navarra ordenó este martes la excarcelación del condenado, que "
        "cumplía nueve años de prisión. La víctima fue informada por la Guardia Civil.",
    ),
    "an Argentine court (es)": (
        "La Justicia rechazó la excarcelación del exjefe de la barra de Rosario",
        "El juez federal consideró que existe riesgo de fuga y mantuvo la prisión "
        "preventiva del acusado. Su defensa apelará ante la Cámara de Casación.",
    ),
    "releases in Cuba (es)": (
        "Cuba ha excarcelado a 553 presos tras el acuerdo con el Vaticano",
        "Las autoridades de La Habana informaron de que las excarcelaciones continuarán "
        "durante la semana. Entre los liberados hay manifestantes del 11J, según "
        "organizaciones de derechos humanos.",
    ),
    "an ETA convict (es)": (
        "Sale de prisión el etarra condenado por el atentado de Hipercor",
        "El preso fue excarcelado este viernes tras cumplir 32 años de condena. Las "
        "asociaciones de víctimas del terrorismo criticaron la excarcelación y pidieron al "
        "Gobierno explicaciones.",
    ),
    "the amnesty law of Spain beside Venezuela (es)": (
        "El Constitucional avala la Ley de Amnistía con el voto en contra de cuatro magistrados",
        "El pleno del Tribunal Constitucional respaldó este jueves la mayor parte de la Ley"
        " de Amnistía aprobada por las Cortes. Feijóo acusó a Sánchez de copiar a "
        "Venezuela. La Ley de Amnistía, dijo el líder del PP, es el precio de siete votos. "
        "Junts celebró la sentencia y pidió el regreso inmediato de Puigdemont. El Gobierno"
        " defendió la norma como una vía de reconciliación en Cataluña.",
    ),
    "a Brooklyn bar named Maduro (en)": (
        "Maduro, the Williamsburg bar, reopens after kitchen fire",
        "Maduro, a Dominican bar on Grand Street in Brooklyn, reopened on Friday after four"
        " months of repairs. Maduro will keep its late hours and its Sunday merengue "
        "nights, the owners said.",
    ),
    "a bar named Maduro in court (en)": (
        "Maduro, the Williamsburg bar, fined over late-night noise",
        "Maduro, a Dominican bar on Grand Street in Brooklyn, was fined $15,000 by the "
        "State Liquor Authority after neighbours complained for months. Maduro will have to"
        " close at midnight, the judge ruled on Tuesday. The owners said they would appeal.",
    ),
    "a Curaçao bank (en)": (
        "Curaçao court orders Maduro & Curiel's Bank to compensate clients",
        "A court in Willemstad ruled on Monday that Maduro & Curiel's Bank must repay "
        "customers charged unlawful fees on dormant accounts. Maduro & Curiel's said it "
        "would study the judgment before deciding on an appeal. The bank is the largest on "
        "the island.",
    ),
    # Names of other people, places and firms; sports, culture and markets; other
    # countries' releases.
    "a US utility called PUD (en)": (
        "Snohomish County PUD crews restore power to 40,000 after windstorm",
        "Crews from Snohomish County PUD worked through the night after gusts of 60 mph "
        "toppled trees across power lines. The utility said most customers in Everett and "
        "Lynnwood should have power by Wednesday evening.",
    ),
    "an airport named after Diosdado Macapagal (en)": (
        "Typhoon diverts Manila flights to Diosdado Macapagal airport",
        "Several international flights bound for Manila were diverted to Clark's Diosdado "
        "Macapagal International Airport on Sunday as Typhoon Kiko lashed the capital. "
        "Airport officials said passengers were bused back to the city.",
    ),
    "a Honduran president named Maduro (en)": (
        "Former Honduran president Ricardo Maduro hospitalised in Tegucigalpa",
        "Ricardo Maduro, who governed Honduras from 2002 to 2006, was admitted to a private"
        " hospital on Tuesday, his family said. The former president is in stable "
        "condition, according to a statement.",
    ),
    "releases in Nicaragua (es)": (
        "Ortega excarcela a 135 presos políticos y los envía a Guatemala",
        "El régimen de Daniel Ortega y Rosario Murillo excarceló el jueves a 135 presos "
        "políticos, que llegaron en un vuelo a Ciudad de Guatemala. Entre ellos hay "
        "estudiantes, sacerdotes y campesinos, según organismos de derechos humanos.",
    ),
    "a journalist freed in Guatemala (es)": (
        "Jueza ordena excarcelar al periodista José Rubén Zamora",
        "Una jueza de Guatemala ordenó este viernes la excarcelación del periodista José "
        "Rubén Zamora, fundador de elPeriódico, quien pasará a arresto domiciliario. Zamora"
        " llevaba más de dos años en prisión preventiva.",
    ),
    "a football qualifier (es)": (
        "Venezuela vence a Bolivia y sigue soñando con el Mundial",
        "La Vinotinto ganó 2-0 en Maturín con goles de Rondón y Savarino. El equipo de "
        "Batista queda a un punto del repechaje.",
    ),
    "a Venezuelan pitcher (en)": (
        "Venezuelan ace Pablo López strikes out 12 as Twins top Royals",
        "",
    ),
    "union members pardoned in Spain (es)": (
        "Excarcelan a las seis sindicalistas de La Suiza tras el indulto parcial",
        "Las seis sindicalistas de la CNT condenadas por las protestas frente a una "
        "pastelería de Gijón salieron este viernes de prisión. El Consejo de Ministros "
        "aprobó el martes un indulto parcial que rebaja sus penas.",
    ),
    "a Mexican midfielder named Jorge Rodríguez (en)": (
        "Midfielder Jorge Rodríguez out for three weeks with a hamstring strain",
        "",
    ),
    "Caracas's baseball club (en)": (
        "Leones del Caracas win Caribbean Series opener",
        "The Venezuelan champions scored twice in the ninth to beat the Dominican side.",
    ),
    "crime news naming the police (es)": (
        "Cicpc detiene a dos hombres por el robo de una farmacia en Petare",
        "Los detenidos fueron trasladados a la sede del cuerpo policial. Se recuperó parte "
        "de la mercancía.",
    ),
    "Miss Venezuela (en)": (
        "Miss Venezuela Stephany Abasali places in top five at Miss Universe",
        "The 24-year-old from Anzoátegui impressed judges in the evening gown round in "
        "Bangkok. Mexico's Fátima Bosch took the crown.",
    ),
    "a Venezuelan pianist (en)": (
        "Venezuelan pianist Gabriela Montero to open Proms season",
        "The Caracas-born pianist will perform Rachmaninov's third concerto with the BBC "
        "Symphony Orchestra on July 18. Montero, known for her improvisations, has lived in"
        " Spain for over a decade.",
    ),
    "an OPEC survey (en)": (
        "OPEC oil output rises in October, survey finds",
        "OPEC's oil output rose by 200,000 barrels per day in October, a survey showed on "
        "Monday, led by higher supply from Saudi Arabia and Iraq. Output in Venezuela edged"
        " up, while Libyan supply fell. Iran's production was steady. Venezuela's oil "
        "exports were little changed at around 900,000 bpd. Nigeria pumped slightly more, "
        "the survey found, while Venezuela and Iran remain exempt from OPEC+ quotas.",
    ),
    # the market's own headline words, over a line on Venezuela's politics
    "an oil market record (en)": (
        "Oil hits record on supply fears",
        "Oil prices have hit fresh record highs as worries about supplies from Russia, Iraq, "
        "Nigeria and Venezuela kept traders on edge. US light crude rose 78 cents to $46.58 a "
        "barrel. In Iraq, saboteurs attacked a southern pipeline. Analysts said Yukos's "
        "troubles in Russia could cut exports. And Venezuela holds a referendum on Sunday on "
        "whether President Hugo Chavez should be removed from office.",
    ),
    # Political prisoners and amnesty laws of other countries, in headlines alone too
    "Spain's amnesty law, the court (es)": (
        "El Constitucional avala la ley de amnistía",
        "El tribunal respaldó la norma que el Congreso aprobó para los condenados del procés.",
    ),
    "Spain's amnesty law, a headline (es)": ("Feijóo: «La ley de amnistía es una humillación»", ""),
    "Peru's amnesty law (es)": ("Boluarte promulga la ley de amnistía para militares", ""),
    "Nicaragua's prisoners, Venezuela in passing (es)": (
        "Ortega destierra a otros 30 presos políticos nicaragüenses",
        "Los opositores llegaron a Guatemala en un vuelo fletado. Organismos de derechos "
        "humanos recordaron que Nicaragua, Cuba y Venezuela concentran la mayoría de los "
        "presos políticos de la región.",
    ),
    # (the headline names only Havana; the text's political prisoners and Caracas beside
    # "gobierno" would make it Venezuela's without the headline veto)
    "Cuba's prisoners, Caracas in passing (es)": (
        "Madres de presos del 11J se concentran en La Habana",
        "Una decena de madres pidió frente a una iglesia la liberación de sus hijos, detenidos "
        "tras las protestas de 2021. Según una ONG, en la isla hay más de mil presos "
        "políticos.\n\nLas autoridades, aliadas del gobierno de Caracas, niegan que haya "
        "presos políticos.",
    ),
    "an Argentine 'presa política' (es)": (
        "Seguidores de Cristina Kirchner la llaman «presa política» frente a su casa",
        "",
    ),
    "Colombia's amnesty bill, Caracas in passing (es)": (
        "Petro presenta una ley de amnistía para los guerrilleros que firmen la paz",
        "El proyecto llegó al Congreso. Las negociaciones con el ELN, celebradas en parte "
        "en Caracas con el gobierno de Venezuela como garante, siguen suspendidas.",
    ),
    "Nicaragua's prisoners, a headline (es)": (
        "Familiares de presos políticos marchan en Managua pese a la prohibición",
        "",
    ),
    "a Venezuelan gang in Ecuador's prisons (es)": (
        "Noboa traslada a 300 presos a una nueva cárcel de máxima seguridad",
        "Entre ellos hay cabecillas de Los Lobos y miembros de la banda de origen "
        "venezolano Tren de Aragua, dijo el presidente.",
    ),
    "Belarus's prisoners (es)": ("Lukashenko indulta a 30 presos políticos", ""),
    "Nicaragua's prisoners (es)": ("Ortega destierra a 135 presos políticos a Guatemala", ""),
    "the ELN's prisoners (es)": (
        "El ELN exige liberar a sus presos políticos antes de negociar",
        "",
    ),
    "a cigar sold in the US (en)": (
        "The best Maduro of the year",
        "This Maduro is rolled in Nicaragua and sold across the U.S. for twelve dollars. "
        "Maduro smokers in the United States will find it at most tobacconists.",
    ),
    # "Machado" beside Washington or the US is a ballplayer or the poet, not María Corina
    "a ballplayer in Washington (en)": (
        "Machado homers twice as Padres beat Washington",
        "",
    ),
    "a footballer named Rubio (es)": ("Machado y Rubio, los goleadores del Sevilla Atlético", ""),
    "another country's acting president (es)": (
        "La presidenta encargada del Congreso de Perú convoca a sesión extraordinaria",
        "",
    ),
    "the poet honoured in the US (es)": (
        "Un homenaje a Machado en Estados Unidos reúne a poetas españoles",
        "",
    ),
    # A title cut short in a feed: "fanb" in lower case is not the FANB
    "a title cut short (en)": (
        "The director behind this year's hit film has a devoted fanb",
        "The director behind this year's hit film has a devoted fanbase of his own, and his "
        "next picture opens in cinemas across the country on Friday.",
    ),
    # "provea" the verb (that it provide) is not the NGO PROVEA
    "the verb provea (es)": (
        "Piden al Estado que provea de agua potable a los barrios del sur de Lima",
        "",
    ),
    # A Venezuelan place in a crime or accident headline is not yet the country's story
    # (docs/devset.md: crime blotter is `passing`), even where gasoline burns.
    "an accident in a state": (
        "Camión cisterna de gasolina vuelca en una autopista del Táchira",
        "",
    ),
    # Streets named after Caracas and Venezuela in other capitals, and the other Miraflores
    # (a district of Lima, the Panama Canal's locks): the words match, the places are not.
    "Bogotá's avenida Caracas (es)": (
        "Choque entre dos buses del SITP cierra la avenida Caracas en Chapinero",
        "Un choque entre dos buses del SITP en la avenida Caracas con calle 53 dejó cuatro "
        "heridos leves la mañana de este lunes. La Secretaría de Movilidad de Bogotá pidió "
        "a los conductores tomar la carrera Séptima mientras se despeja la Av. Caracas.",
    ),
    "Lima's avenida Venezuela (es)": (
        "Vecinos denuncian huecos en la avenida Venezuela del Cercado de Lima",
        "Los comerciantes de la avenida Venezuela reclamaron a la Municipalidad de Lima por "
        "los baches que dañan los vehículos desde hace meses. La comuna anunció que el "
        "asfaltado empezará en enero.",
    ),
    "Lima's Miraflores (es)": (
        "Municipalidad de Miraflores amplía la ciclovía del malecón",
        "La Municipalidad de Miraflores inauguró este domingo dos kilómetros nuevos de "
        "ciclovía junto al malecón Cisneros. El alcalde del distrito de Miraflores dijo que "
        "la obra costó 3 millones de soles.",
    ),
    "the Panama Canal's Miraflores Locks (en)": (
        "Cargo ship briefly stuck at the Miraflores Locks as canal traffic resumes",
        "A bulk carrier lost power while entering the Miraflores Locks on Tuesday and was "
        "towed clear within two hours, the Panama Canal Authority said. Transits resumed "
        "in the afternoon.",
    ),
}


NOT_VENEZUELAN_POLITICS.update(
    {
        # streets named after Venezuela and its capital, in Bogotá and Buenos Aires
        "a Bogotá trunk road (es)": (
            "TransMilenio cierra dos estaciones de la Caracas por obras",
            "Los buses troncales no pararán en las estaciones de la calle 45 durante seis semanas.",
        ),
        "a Buenos Aires street (es)": (
            "Incendio en la calle Venezuela deja tres heridos",
            "El fuego comenzó en un departamento del tercer piso y los bomberos evacuaron a 40 "
            "vecinos.",
        ),
        # a cheese named after its ripeness, after a possessive
        "a prize cheese (es)": (
            "Un queso de Zamora, el mejor del certamen nacional",
            "La quesería familiar se llevó el primer premio con su Maduro de leche cruda, curado "
            "seis meses en cueva.",
        ),
    }
)


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
        "Familiares de presos políticos cumplen cuatro días en huelga de hambre",
        "Excarcelan a otros diez detenidos del penal de Tocorón",
        "La Asamblea Nacional aprueba en segunda discusión la ley de amnistía",
        "Maduro llega a un tribunal de Manhattan para la audiencia de cargos",
        "Maduro es trasladado a una cárcel federal en EE. UU.",
        # Institutions and prisons named bare; a state's public services.
        "Estudiantes de la UCV marchan hasta la Defensoría del Pueblo",
        "Excarcelan a dos oficiales recluidos en Ramo Verde",
        "Gobernación del Zulia anuncia racionamiento eléctrico por bloques",
        # An acronym read as a word, written as one ("Pdvsa", "Fanb"); the currency and the
        # state's payment system; the political prisoners named alone; Southern Command's
        # strikes on boats; a release that Cabello speaks of.
        "Pdvsa firma dos contratos de servicios con empresas privadas",
        "La Fanb desmantela un campamento de minería ilegal en el sur del país",
        "El dólar oficial cierra la semana en 410 bolívares",
        "El Sistema Patria abre el registro para un nuevo bono de alimentación",
        "Perkins Rocha recibe la visita de su familia tras meses de aislamiento",
        "Comando Sur reporta dos ataques contra embarcaciones en el Caribe",
        "Cabello dice que habrá más excarcelaciones antes de fin de mes",
        # "procesos" (processes) is not Catalonia's "procés"
        "Alertan de que presos políticos excarcelados siguen bajo medidas cautelares y procesos "
        "pendientes",
        # Machado beside Trump or Rubio; a former political prisoner; the acting president;
        # the government's complaints app
        "Machado recibe en la Casa Blanca el apoyo de Trump",
        "Murió la madre de un expreso político tras la audiencia de su hijo",
        "La presidenta encargada recibe a familiares de presos políticos",
        "Condenan a un vecino que denunció una fuga de aguas negras por VenApp",
        # the press and human-rights NGOs named bare, "Provea" as the press writes PROVEA;
        # Capriles alone; the oil law under reform
        "El SNTP denuncia la detención de dos reporteros en Maracay",
        "Provea registra 40 detenciones arbitrarias en enero",
        "Capriles propone un bono financiado con ingresos petroleros",
        "Aprueban en segunda discusión la reforma de la Ley Orgánica de Hidrocarburos",
        # "junto a" is no Catalan party (Junts), and Venezuela's own supreme court (the
        # TSJ) is not Spain's Tribunal Supremo
        "Madres de presos políticos protestan junto a la sede del Ministerio Público",
        "Tribunal Supremo de Justicia ordena la excarcelación de 40 presos políticos",
    ],
)
def test_headlines_that_name_venezuela_without_its_name_alert(
    shipped: Matcher, headline: str
) -> None:
    assert alerts(shipped, headline, "") == ["venezuela"]


@pytest.mark.parametrize(
    "headline",
    [
        "Milei arremete contra Maduro en su discurso de fin de año",
        "El papa envía un mensaje a Maduro desde el Vaticano",
        "Lo que se sabe de la salud de Maduro",
        "Lula, Petro y Maduro, ausentes de la foto final",
        "Lo que respondió Maduro a la carta del papa",
    ],
)
def test_a_spanish_headline_naming_maduro_alone_alerts(shipped: Matcher, headline: str) -> None:
    # no other Venezuelan name or word: "Maduro" after a preposition, a conjunction, a verb
    # or a comma stands as a name of its own (rule-based entities: spaCy has no Spanish
    # model on PyPI)
    assert "venezuela" in alerts(shipped, headline, "")


def test_a_portuguese_preposition_is_not_an_article(shipped: Matcher) -> None:
    # "a" is the Portuguese article and the preposition "to": "telefona a Maduro"
    article = Article(
        "https://example.org/t", "Lula telefona a Maduro", "", ArticleSource.FILE, language="pt"
    )
    assert "venezuela" in [m.rule for m in shipped.match(article)]


def test_explain_names_the_word_that_makes_maduro_part_of_another_name(
    shipped: Matcher,
) -> None:
    article = Article(
        "https://example.org/t", "Cena en Casa Maduro", "", ArticleSource.FILE, language="es"
    )
    verdict = next(v for v in shipped.explain(article) if v.rule == "venezuela")
    assert not verdict.matched
    assert any("'Casa'" in reason for reason in verdict.reasons)


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
        # Headlines of the talks that name no "peace": an envoy meeting a party, a round
        # between the two sides, ending the war, security guarantees.
        "Witkoff and Kushner meet Putin in Moscow for five hours",
        "Umerov heads to Miami for another round with US negotiators",
        "Kyiv and Moscow to resume direct talks in Istanbul next week",
        "Europeans draft a plan for ending the war in Ukraine",
        "Coalition of the willing discusses security guarantees for Ukraine in Paris",
        "Ucrania y Rusia reanudan las conversaciones directas en Ginebra",
        "Kremlin rejects European changes to the 28-point plan for Ukraine",
        # frozen Russian assets in a headline that names this war's talks too
        "Zelensky urges EU to use frozen Russian assets as talks with Witkoff resume",
        # Putin's envoy by his surname alone, beside an envoy or Russia's name
        "Dmítriev llega a Miami para reunirse con Witkoff",
        "Dmitriev, the Kremlin's envoy, arrives in Washington",
        # as TASS spells him
        "Dmitriyev arrives in Miami for talks with the US team",
        "Umerov briefs Zelensky after meeting the US team in Florida",
        "Ucrania entrega a Washington su contrapropuesta al plan estadounidense",
        # Spanish verbs of talks in forms whose stems are not the infinitive's
        "Kiev y Moscú negocian en Estambul un nuevo canje de prisioneros",
        "Ucrania y Rusia negociaron durante dos horas en Estambul",
    ],
)
def test_headlines_of_the_talks_without_the_word_peace_alert(
    shipped: Matcher, headline: str
) -> None:
    assert alerts(shipped, headline, "") == ["ukraine-peace"]


@pytest.mark.parametrize(
    "headline",
    [
        # The talks in the words of 2024-25: Zelensky's peace formula and the Swiss
        # conference, Orbán's "peace mission", ending "the Ukraine war", freezing the front
        "Zelensky's peace formula gains backing at Swiss summit",
        "Orbán arrives in Moscow on 'peace mission' after Kyiv visit",
        "China and Brazil float six-point plan to end Ukraine war",
        "Kellogg plan would freeze the front lines in Ukraine",
        # headlinese without the article, and Moscow's "conflict" and "settlement" when
        # they name Ukraine
        "Putin sets out his terms to end war in Ukraine",
        "Peskov: Moscow's view on a settlement of the Ukrainian conflict has not changed",
        "Lavrov ve posible resolver el conflicto en Ucrania si Washington cumple lo pactado",
        # the two presidents' meeting, proposed, hosted or put off: the talks' summit
        "Erdogan says Turkey ready to host a meeting between Putin and Zelensky",
        "Kremlin: a Putin-Zelensky summit can only come at the end of the process",
        "Zelensky says he would meet Russian President Vladimir Putin in Istanbul",
        "Zelenski pide una reunión cara a cara con Putin",
        "Putin dice estar dispuesto a reunirse con el presidente ucraniano, Volodímir Zelenski",
        "Zelenski y Putin podrían reunirse en Ginebra",
    ],
)
def test_headlines_of_the_talks_of_2024_and_2025_alert(shipped: Matcher, headline: str) -> None:
    assert alerts(shipped, headline, "") == ["ukraine-peace"]


@pytest.mark.parametrize(
    ("headline", "expected"),
    [
        # What the peace plan holds, in words that are also Ukraine's other negotiations:
        # the headline names the plan, so the `other talks` veto spares it ...
        ("US peace plan would bar Ukraine's NATO accession, cap its army", ["ukraine-peace"]),
        (
            "Zelensky says US peace framework envisions EU membership for Ukraine by 2027",
            ["ukraine-peace"],
        ),
        (
            "Peace plan proposes US-led investment fund for Ukraine's reconstruction",
            ["ukraine-peace"],
        ),
        # ... but the verbs of talks are no peace plan: these stay vetoed
        ("Ukraine and US negotiate minerals deal", []),
        ("Ucrania y EE.UU. negocian el acuerdo de minerales", []),
        ("Ukraine begins EU accession negotiations", []),
    ],
)
def test_the_other_talks_veto_spares_only_the_peace_talks(
    shipped: Matcher, headline: str, expected: list[str]
) -> None:
    assert alerts(shipped, headline, "") == expected


# The negotiators' other offices, the envoys' other talks, and Ukraine's or Russia's talks
# with others: none is the peace process.
NOT_THE_PEACE_TALKS = {
    # the surname of Putin's envoy, borne by a footballer and a chess player
    "a footballer named Dmitriev": ("Dmitriev scores twice as Zenit beat Spartak", ""),
    "a footballer named Dmitriyev": ("Dmitriyev scores twice as Zenit beat Spartak", ""),
    "a chess player named Dmitriev": (
        "Dmitriev leads the Russian team after round five of the chess olympiad",
        "",
    ),
    # The EU's own talks on lending Ukraine the frozen Russian assets, with a paragraph on
    # the US plan further down (docs/devset.md: passing at most)
    "an EU summit on the assets loan": (
        "EU leaders agree €90bn loan for Kyiv after talks on the frozen Russian assets fail",
        "EU leaders agreed early on Friday to borrow €90bn on the markets to fund Ukraine for "
        "two years, after 16 hours of talks in Brussels failed to win Belgium over to a "
        "reparations loan backed by the frozen Russian assets held at Euroclear. Hungary, "
        "Slovakia and the Czech Republic will not take part. The summit came as US envoys "
        "pressed Kyiv and Moscow to accept a plan to end the war, which European leaders "
        "said must not reward Russia's aggression.",
    ),
    # A war report saying the fighting never paused: no truce in it
    "no pause in the fighting": (
        "Russia presses assault on Pokrovsk",
        "Russian forces kept up their assault on Pokrovsk overnight. Ukraine's General Staff "
        "said there was no pause in the fighting along the eastern front. Drones struck "
        "Kharkiv, injuring four people. Air defences downed 40 drones over Kyiv. Russia "
        "claimed another village near Kupiansk; Ukrainian officials did not confirm it.",
    ),
    "no pause in the fighting (es)": (
        "Rusia intensifica su ofensiva en Pokrovsk",
        "Las fuerzas rusas mantuvieron el asalto durante la noche. El Estado Mayor de Ucrania "
        "dijo que no hubo pausa en los combates en el frente oriental. Los drones golpearon "
        "Járkov y dejaron cuatro heridos.",
    ),
    # A strike report by the Spanish press's special correspondent ("enviada especial")
    "a special correspondent's byline (es)": (
        "Un misil ruso mata a 12 personas en Kryvyi Rih",
        "MARÍA R. SAHUQUILLO\nEnviada especial a Kiev\nUn ataque con misiles rusos contra un "
        "barrio residencial de Kryvyi Rih, la ciudad natal de Zelenski, mató este viernes a 12 "
        "personas, entre ellas seis niños. Las autoridades regionales declararon tres días de "
        "luto. Los equipos de rescate siguen buscando supervivientes entre los escombros.",
    ),
    # North Korea's troops in Kursk, in a war report: its armistice is the Korean War's
    "the Korean War armistice": (
        "North Korean troops now fighting alongside Russians in Kursk",
        "Thousands of North Korean soldiers have begun combat operations against Ukrainian "
        "forces in Russia's Kursk region, marking the first time Pyongyang's troops have "
        "fought in a major war since the Korean War armistice in 1953. Ukraine's military "
        "intelligence said the units had suffered heavy losses. Russian forces pressed on "
        "near Pokrovsk. Air defences shot down 30 drones over Kyiv overnight.",
    ),
    # Headlines alone: Ukraine's other talks, the same envoys on Gaza, look-alike names.
    "grain talks with Poland": ("Ukraine and Poland hold talks on grain imports", ""),
    "a central bank and the IMF": (
        "Ukraine's central bank in talks with IMF on new loan programme",
        "",
    ),
    "the envoys in Cairo for Gaza": ("Witkoff and Kushner in Cairo for Gaza ceasefire talks", ""),
    "Russia on Gaza": (
        "Russia backs Gaza ceasefire resolution at the UN",
        "Russia's ambassador said the text was a step towards a lasting truce in Gaza. China "
        "also voted in favour. The United States abstained.",
    ),
    "Witkoff and Netanyahu": ("Witkoff meets Netanyahu in Jerusalem", ""),
    "Kellogg's in talks": ("Kellogg's in talks to sell its snacks business", ""),
    "a skater named Dmitriev": ("Russian figure skater Dmitriev wins gold in Moscow", ""),
    "a Russian-Chinese energy accord": ("Russia and China sign energy accord in Beijing", ""),
    "a debt moratorium": ("Ukraine extends moratorium on foreign debt payments", ""),
    "a search of Yermak's home": (
        "Anti-corruption agents search Yermak's home in Kyiv",
        "Ukraine's National Anti-Corruption Bureau searched the apartment of Andriy Yermak,"
        " the head of the presidential office, on Friday morning. The search is part of the"
        " Energoatom kickback investigation that has already cost two ministers their jobs."
        " Yermak said he was cooperating fully with investigators. Opposition lawmakers "
        "demanded his resignation.",
    ),
    "Umerov buys fighter jets": (
        "Umerov signs deal for 100 Gripen fighters during visit to Sweden",
        "Ukraine's Rustem Umerov and Swedish officials signed a letter of intent in "
        "Linkoping for up to 100 Gripen E jets. Deliveries could begin within three years, "
        "Saab said. Umerov called the agreement historic for the Ukrainian air force.",
    ),
    "Dmitriev's fund invests": (
        "Russian wealth fund to co-invest in Arctic rare earths project",
        "The Russian Direct Investment Fund will put 40 billion roubles into a rare-earth "
        "mine on the Kola peninsula, its chief executive Kirill Dmitriev said on Wednesday."
        " Dmitriev told reporters in Moscow that Chinese and Emirati partners would join "
        "the project. Production is expected to start in 2029.",
    ),
    "Medinsky's textbook": (
        "New Russian history textbook rewrites the 1990s",
        "The textbook for final-year pupils, co-written by presidential aide Vladimir "
        "Medinsky, will be used in all Russian schools from September. Medinsky said the "
        "book corrects what he called Western myths about the collapse of the Soviet Union."
        " Teachers received training in Moscow last week. Critics say the chapters on "
        "Stalin play down the repressions.",
    ),
    "another Umerov": (
        "Crimean Tatar leader Ilmi Umerov dies at 68",
        "Ilmi Umerov, a former deputy chairman of the Mejlis who was jailed by Russian-"
        "installed authorities in Crimea in 2017, died in Ankara on Sunday, his family "
        "said. Umerov had been sent to a psychiatric hospital by a Russian court for "
        "denouncing the annexation. He was released after Turkish mediation and moved to "
        "Kyiv.",
    ),
    "Witkoff on Iran": (
        "Witkoff to meet Araghchi in Muscat on Saturday",
        "Steve Witkoff will hold a second round with Abbas Araghchi in Oman this weekend, "
        "the White House said. Witkoff, who has also met Putin four times this year, is "
        "expected to press Tehran on uranium enrichment. Omani mediators will shuttle "
        "between the two delegations.",
    ),
    "Ukraine and Hungary, direct talks": (
        "Ukraine and Hungary agree to direct talks on minority language rights",
        "Foreign ministers Andrii Sybiha and Peter Szijjarto met in Uzhhorod on Monday and "
        "agreed to hold direct talks on schooling in Hungarian in the Zakarpattia region. "
        "Budapest has blocked Ukraine's EU accession talks over the issue. A first meeting "
        "of experts is planned for next month.",
    ),
    "Ukraine and the IMF, a round of talks": (
        "Ukraine, IMF start new round of talks on $8bn loan review",
        "An IMF mission arrived in Kyiv on Tuesday for the fourth review of the extended "
        "fund facility. Finance minister Serhiy Marchenko said the talks would focus on tax"
        " increases and the budget gap for next year. A staff-level agreement could come "
        "within two weeks.",
    ),
    "Ukraine and the EU, a round (es)": (
        "Ucrania y la UE celebran en Bruselas la primera ronda de conversaciones de adhesión",
        "La viceprimera ministra ucraniana presentó el calendario de reformas judiciales y "
        "agrícolas. Hungría mantiene su veto a la apertura formal de los capítulos. La "
        "Comisión espera avances antes del verano.",
    ),
    "Russia and the US on arms control": (
        "Russia and US to hold direct talks on nuclear arms limits in Geneva",
        "Deputy foreign minister Sergei Ryabkov said the delegations would discuss what "
        "replaces the New START treaty, which expired in February. He said the arms control"
        " track was separate from the discussions about Ukraine. Washington confirmed the "
        "date but gave no agenda.",
    ),
    "the 20-point plan for Gaza (es)": (
        "Hamás acepta negociar el plan de 20 puntos de Trump para Gaza",
        "El movimiento islamista respondió por escrito a los mediadores egipcios y "
        "cataríes. Steve Witkoff, que también lleva las conversaciones con Rusia, llegará a"
        " El Cairo el jueves con Jared Kushner. Israel no ha comentado la respuesta. La "
        "liberación de los rehenes sería el primer paso.",
    ),
    "the Cossack Yermak": (
        "Tobolsk unveils restored monument to Yermak, conqueror of Siberia",
        "The statue of the Cossack ataman Yermak, who led the Russian campaign against the "
        "Khanate of Sibir in 1582, was reopened on the banks of the Irtysh. Regional "
        "officials and Orthodox clergy attended the ceremony. Yermak drowned in the river "
        "in 1585, according to the chronicles.",
    ),
    "Hungary summons a Ukrainian envoy": (
        "Hungary summons Ukrainian envoy over strikes on Druzhba pipeline",
        "Hungary summoned Ukraine's ambassador on Monday after a drone attack halted oil "
        "flows through the Druzhba pipeline. Budapest said the strikes threatened its "
        "energy security. Kyiv said the pipeline fed the Russian war machine.",
    ),
    "EU accession negotiations": (
        "Ukraine, Moldova open EU accession negotiations in Luxembourg",
        "The European Union formally opened membership negotiations with Ukraine and "
        "Moldova on Tuesday at an intergovernmental conference in Luxembourg. Ukrainian "
        "Deputy Prime Minister Olha Stefanishyna called it a historic day. Hungary has "
        "warned it could still block progress on individual chapters.",
    ),
    "an Olympic delegation": (
        "Ukrainian delegation marches in Milan as Winter Olympics open",
        "Ukraine's 46 athletes entered San Siro behind flag-bearer Oleksandr Abramenko. The"
        " team is competing despite the war, with many athletes training abroad.",
    ),
    "a fighter-jet acuerdo (es)": (
        "Ucrania y Suecia firman un acuerdo para la compra de hasta 150 cazas Gripen",
        "El presidente ucraniano, Volodímir Zelenski, y el primer ministro sueco, Ulf "
        "Kristersson, firmaron en Linköping una carta de intención para adquirir los "
        "aviones de Saab. Las primeras entregas podrían llegar en tres años, según el "
        "Gobierno sueco.",
    ),
    "a deal with bondholders": (
        "Ukraine reaches deal with bondholders after months of negotiation over GDP warrants",
        "Kyiv said on Monday it had agreed terms with holders of its GDP-linked warrants, "
        "removing the last obstacle to its debt restructuring. The finance ministry said "
        "the deal would save the budget billions of dollars over the next decade.",
    ),
    "a grain compromise": (
        "Poland and Ukraine reach compromise on grain imports",
        "Warsaw will allow Ukrainian grain to transit its territory under a licensing "
        "system, the two agriculture ministers said on Thursday. Polish farmers had blocked"
        " border crossings for weeks in protest at cheap imports.",
    ),
    "Witkoff in Tel Aviv": (
        "Witkoff and Kushner land in Tel Aviv to shore up the truce",
        "The two US envoys were due to meet Prime Minister Benjamin Netanyahu on Monday. "
        "Hamas has handed over the remains of 15 of the 28 hostages who died in captivity.",
    ),
    "a ceasefire in Southeast Asia": (
        "Trump claims credit as Thailand and Cambodia sign ceasefire in Kuala Lumpur",
        "Thai and Cambodian leaders signed a ceasefire declaration on Sunday in the "
        "presence of Donald Trump. The US president, who has struggled to end the war in "
        "Ukraine, said he had ended eight wars in eight months. The truce follows five days"
        " of border fighting in July that killed more than 40 people. Malaysia's prime "
        "minister Anwar Ibrahim hosted the ceremony.",
    ),
    "an Armenia-Azerbaijan deal": (
        "Armenia and Azerbaijan initial peace deal at White House",
        "Armenian Prime Minister Nikol Pashinyan and Azerbaijani President Ilham Aliyev "
        "initialled a peace agreement in Washington on Friday, ending nearly four decades "
        "of conflict. The peace deal sidelines Russia, which is bogged down in its war in "
        "Ukraine and has long been the region's power broker. It grants the United States "
        "development rights to a transit corridor through southern Armenia.",
    ),
    "the minerals deal": (
        "U.S. and Ukraine sign minerals deal, set up reconstruction investment fund",
        "The United States and Ukraine signed an agreement giving Washington access to new "
        "Ukrainian minerals deals, after months of tense negotiations. The Treasury "
        "Secretary said it signals to Russia that the US is committed to Ukraine.",
    ),
    "fighter jets (es)": (
        "Ucrania y Suecia negocian la compra de hasta 150 cazas Gripen",
        "El presidente ucraniano, Volodímir Zelenski, y el primer ministro sueco firmaron una "
        "carta de intenciones que abre las negociaciones para la compra de los cazas.",
    ),
    "a US team in sport": (
        "US team beats Ukraine 3-1 to reach the Davis Cup finals",
        "The American team won both singles on Sunday in Bologna. Ukraine's captain said "
        "his players had been unable to train at home because of the war.",
    ),
    "an IMF programme (es)": (
        "Ucrania negocia con el FMI un nuevo programa de 8.000 millones",
        "Una misión del Fondo Monetario Internacional llegó a Kiev para negociar un "
        "programa de financiación de cuatro años. El Gobierno ucraniano espera cerrar un "
        "acuerdo técnico antes de fin de mes.",
    ),
    # The two presidents' other business: a call on something else, an oil market, a
    # campaign.
    "a hockey series floated in a call": (
        "NHL cool on Putin's idea of games against the KHL",
        "The league said on Wednesday it had no plans to play Russian teams, a day after the "
        "Kremlin said Vladimir Putin had suggested the games to Donald Trump during a phone "
        "call. Russian teams have been banned from international hockey since 2022. The "
        "players' union said it had not been consulted.",
    ),
    "oil after a postponed summit (es)": (
        "El crudo sube un 4 % tras las sanciones a las petroleras rusas",
        "El barril de Brent subió este jueves en Londres después de que Washington sancionara "
        "a dos grandes petroleras rusas. La medida llegó un día después de que Trump aplazara "
        "la cumbre prevista con Putin. Los analistas esperan menos compras de la India.",
    ),
    # Briefs of three sentences: the talks are the last line, the context of a strike.
    "a strike brief ending on the talks": (
        "Three killed as Russian missiles hit Zaporizhzhia apartment block",
        "Three people were killed and twelve wounded when two missiles struck a nine-storey "
        "building in Zaporizhzhia overnight, the regional governor said. Rescuers were still "
        "searching the rubble on Tuesday morning. The strike came as Ukrainian and American "
        "negotiators prepared for another round of talks in Geneva.",
    ),
    "a strike brief ending on the talks (es)": (
        "Un muerto en un ataque con drones rusos contra Járkov",
        "Una mujer murió y cuatro personas resultaron heridas en un ataque nocturno con "
        "drones rusos contra un barrio residencial de Járkov, informó el alcalde. Los "
        "bomberos sofocaron varios incendios. El ataque coincide con los preparativos de una "
        "nueva ronda de negociaciones entre Ucrania y Rusia en Estambul.",
    ),
    # "de acuerdo con" is "according to": the casualty figures of a war report are no deal.
    "a strike report quoting officials (es)": (
        "Rusia lanza un ataque masivo con drones contra Ucrania y deja cortes de luz en Leópolis",
        "Rusia atacó Ucrania durante la noche con más de 400 drones y 30 misiles, de acuerdo "
        "con la Fuerza Aérea ucraniana. En Leópolis, dos personas murieron y 15 resultaron "
        "heridas, de acuerdo con el alcalde Andrí Sadovi. Las defensas antiaéreas derribaron "
        "la mayoría de los drones. Varias subestaciones eléctricas quedaron dañadas y miles de "
        "hogares se quedaron sin luz. De acuerdo a la compañía Ukrenergo, el suministro se "
        "restablecerá en las próximas horas. Polonia activó sus aviones de combate como "
        "medida de precaución.",
    ),
    "EU accession jargon in the headline": (
        "Hungary again blocks opening of Ukraine's first negotiating cluster",
        "Budapest refused on Tuesday to let the EU open the first negotiating cluster with "
        "Ukraine, citing the rights of the Hungarian minority. Kyiv has completed the "
        "screening of its laws. Officials in Brussels noted that a US draft peace plan "
        "mentions Ukraine's EU membership. Moldova is waiting too.",
    ),
    # Ukraine's other negotiations, which a sentence names beside the bare verb of talks
    # (`negotiating`'s not_near) or beside a word of talks between both sides (`rounds`')
    "a drone export deal": (
        "Ukraine and US negotiating drone deal, Zelensky says",
        "Ukraine is negotiating a drone deal under which American forces would buy "
        "Ukrainian interceptors, President Volodymyr Zelensky said in his evening address. "
        "He said the first contracts could be signed next month.",
    ),
    "a debt restructuring": (
        "Ukraine opens negotiations on $2.6bn of GDP warrants",
        "Ukraine's finance ministry said it had started negotiations with holders of its "
        "GDP warrants, the last piece of its debt restructuring. A committee of investors "
        "said it was ready to talk.",
    ),
    "a Hungarian minority's schools": (
        "Kyiv and Budapest resume negotiations on Hungarian minority's schools",
        "Ukraine and Hungary resumed negotiations on Monday over teaching in Hungarian in "
        "the schools of Transcarpathia, the Hungarian minority's main demand.",
    ),
    "a football transfer (es)": (
        "El Girona negocia el fichaje del delantero ucraniano Dovbyk",
        "El club catalán negocia con el Dnipro el fichaje del delantero ucraniano Artem "
        "Dovbyk, según la prensa local. El jugador tiene contrato hasta 2026.",
    ),
    "a boxing rematch": (
        "Usyk's promoters open negotiations for a rematch in Riyadh",
        "The Ukrainian heavyweight champion's promoters said on Monday they had opened "
        "negotiations for a rematch in Riyadh in the spring.",
    ),
    "gas transit talks with Slovakia": (
        "Fico and Zelensky hold talks on the transit of Russian gas",
        "Slovakia's prime minister met Ukraine's president on Friday for talks on the "
        "transit of Russian gas through Ukraine, which stopped on January 1.",
    ),
    "an Olympic delegation beside Russian athletes": (
        "Ukraine's Olympic delegation protests as Russian athletes cleared to compete",
        "The Ukrainian delegation at the Winter Games lodged a protest on Saturday after the "
        "IOC cleared 13 Russian athletes to compete as neutrals.",
    ),
    "UN ambassadors after a strike": (
        "Russia's UN envoy accuses Ukraine over Sumy strike",
        "Russia's envoy to the United Nations told the Security Council that Ukraine had "
        "used civilians as shields in Sumy, a claim Kyiv's ambassador called cynical.",
    ),
    "hacked accounts": (
        "Russian hackers compromise Ukrainian officers' messenger accounts",
        "Hackers working for Russian military intelligence have compromised the messenger "
        "accounts of Ukrainian officers with fake QR codes, researchers said on Wednesday.",
    ),
    # an end to "the conflict" as investors, firms and other conflicts use it: the words of
    # a settlement count only where they name Ukraine
    "investors on an end to the conflict": (
        "Ukraine's bonds jump to a two-year high",
        "Ukraine's dollar bonds rose for a fifth day on Tuesday as investors priced in an end "
        "to the conflict with Russia next year. The finance ministry said it would not "
        "comment on market moves.",
    ),
    "Moscow on Transnistria": (
        "Russia says it wants a peaceful settlement in Transnistria",
        "Russia's foreign ministry said on Friday that Moscow favoured a peaceful settlement "
        "in Transnistria and accused Chisinau and Kyiv of pressure on the region.",
    ),
    "a carmaker waiting for the end (es)": (
        "Renault descarta volver a Rusia hasta el fin del conflicto en Ucrania",
        "El grupo francés dijo este jueves que no estudiará regresar al mercado ruso hasta el "
        "fin del conflicto. Sus ventas en Europa subieron un 4 %.",
    ),
    # Zelensky and Putin in one sentence is the war, not the talks; with a meeting word, the
    # meeting must be theirs and to come: not the one of 2019, nor Putin's with another
    "the 2019 meeting in a profile": (
        "Zelensky at 48: from sitcom star to wartime leader",
        "Volodymyr Zelensky turns 48 on Saturday, his fourth birthday in wartime. In December "
        "2019 Zelensky met Putin in Paris, the only time the two sat at one table. He had "
        "played a president on television before becoming one. Friends say he sleeps four "
        "hours a night. His wife Olena runs a foundation for children of the war. He rarely "
        "leaves Kyiv except for the front.",
    ),
    "Putin meets Xi as Zelensky tours the front": (
        "Putin meets Xi in Beijing as Zelensky tours the front",
        "The two leaders signed agreements on gas and grain. Chinese state media called the "
        "visit a milestone.",
    ),
    # (the meeting word and the names in one clause)
    "a summit of others, then Putin": ("Zelensky at G7 summit: Putin's strikes test NATO", ""),
    "a summit of others, then Putin (…)": ("Zelensky at G7 summit… Putin's strikes test NATO", ""),
    "one skips the summit, the other attends": ("Putin to skip G20 summit, Zelensky to attend", ""),
    "a speaker's colon": ("Zelensky: Putin's army will meet fierce resistance in Kharkiv", ""),
    "Zelensky on Putin's offensive (en)": (
        "Zelensky says Putin will never take Kharkiv",
        "The president spoke to soldiers near the front line. Russian forces shelled the "
        "city overnight, killing two people.",
    ),
    "a campaign attack": (
        "Harris says Trump 'admires dictators' like Putin",
        "The vice-president told a rally in Wisconsin that her opponent would cut aid to "
        "allies and praise strongmen. The Trump campaign called the remarks desperate. The "
        "election is in three weeks.",
    ),
    # Ukraine's other negotiations, named by the verb alone (no headline word of `other
    # talks`), and Russia only as the invader: "negotiate" beside Ukraine needs other words
    # of talks in the article
    "EU membership negotiations": (
        "EU opens membership negotiations with Ukraine in Luxembourg",
        "The European Union formally opened membership negotiations with Ukraine on Tuesday "
        "at an intergovernmental conference. Kyiv applied to join days after Russia's full-"
        "scale invasion and must first reform its courts.",
    ),
    "a grain deal with a neighbour": (
        "Ukraine and Romania negotiate new rules for grain transport",
        "Ukraine and Romania are negotiating a licensing scheme for Ukrainian grain trucks, "
        "the Romanian transport minister said. The two ministers met in Bucharest.",
    ),
    "air defence purchases": (
        "Ukraine negotiating purchase of 10 more NASAMS batteries, defence minister says",
        "Ukraine is negotiating with Norway and the United States to buy ten more NASAMS "
        "batteries, the defence minister said on Monday. Deliveries could take two years.",
    ),
    "an IMF loan, spelled out (es)": (
        "Ucrania y el Fondo Monetario Internacional alcanzan un acuerdo para un préstamo",
        "El Gobierno de Ucrania y el Fondo Monetario Internacional alcanzaron un acuerdo "
        "técnico para un nuevo programa, en plena guerra con Rusia. El directorio del fondo "
        "deberá aprobarlo.",
    ),
    # the two presidents' call about another war: its "conflict" is not this one
    "a call about another war": (
        "Trump and Putin discuss Israel-Iran conflict in phone call",
        "Donald Trump and Vladimir Putin spoke by phone on Saturday about the fighting between "
        "Israel and Iran, the Kremlin said. Putin offered to mediate.",
    ),
    # talks between a federation and a league, with a Ukrainian and a Russian word nearby
    "a football federation's talks": (
        "UEFA holds talks on Russia's return as Ukraine threatens a boycott",
        "UEFA has held talks with the Russian football union on letting its youth teams "
        "return, and the Ukrainian association threatened to boycott any match against them.",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_PEACE_TALKS))
def test_other_offices_and_other_talks_do_not_alert_ukraine_peace(
    shipped: Matcher, case: str
) -> None:
    title, text = NOT_THE_PEACE_TALKS[case]
    assert "ukraine-peace" not in alerts(shipped, title, text)


# True stories in words the rules had to learn: each alerts on its rule.
TRUE_STORIES = {
    # The verbs of talks beside words Ukraine's other negotiations use too: `negotiating`'s
    # not_near must not list them (counter-probes found each of these silenced)
    "the Senate on the negotiations": (
        "ukraine-peace",
        "Senate hawks warn Trump against pressuring Kyiv in negotiations with Moscow",
        "Leaders of both parties in the Senate told the White House on Tuesday that Ukraine "
        "must not be pushed into negotiations on Russia's terms. A vote on new sanctions "
        "could come next week.",
    ),
    "Patriots on the negotiators' list": (
        "ukraine-peace",
        "Ukrainian negotiators press US for more Patriots as part of any settlement",
        "Ukraine's negotiators asked the American side for more Patriot systems to be part of "
        "any settlement with Russia, two officials said after the meeting in Miami.",
    ),
    "debt in the negotiations": (
        "ukraine-peace",
        "Russia wants Ukraine's debt to Moscow on the table in negotiations, Kremlin says",
        "The Kremlin said on Thursday that the $3bn debt Ukraine has owed Russia since 2013 "
        "must be settled in the negotiations with Kyiv.",
    ),
    # The negotiators as the Spanish press spells them
    "Medinski leads the delegation (es)": (
        "ukraine-peace",
        "Medinski vuelve a encabezar la delegación rusa",
        "El asesor del Kremlin viajará a Estambul con dos viceministros para la nueva ronda "
        "con los representantes de Kiev.",
    ),
    "Ushakov on Donbas (es)": (
        "ukraine-peace",
        "Ushakov: no habrá acuerdo mientras Kiev no se retire del Donbás",
        "",
    ),
    # A Venezuelan outlet's national items name a state company or agency, not the country
    "pensioners at the IVSS (es)": (
        "venezuela",
        "Pensionados protestan frente al IVSS por pensiones que no alcanzan",
        "",
    ),
    "a month without water (es)": (
        "venezuela",
        "Hidrocapital promete agua a vecinos de Catia tras un mes sin servicio",
        "",
    ),
    "teachers strike over wages (es)": (
        "venezuela",
        "Maestros de Zulia y Carabobo se suman al paro de 48 horas",
        "La Federación Venezolana de Maestros exige salarios de al menos 300 dólares.",
    ),
    # Feed items in the talks' own shorthand (2025-26): an envoy, a place, a document
    "the Army secretary in Kyiv (en)": (
        "ukraine-peace",
        "Driscoll arrives in Kyiv with a revised draft",
        "",
    ),
    "Zelensky and Trump to meet (en)": (
        "ukraine-peace",
        "Zelensky and Trump to meet in Florida on Sunday",
        "",
    ),
    "a round on Donbas (en)": (
        "ukraine-peace",
        "Delegations leave Geneva with no deal on Donbas",
        "Ukrainian and American officials ended two days of meetings without agreeing on a "
        "demilitarised zone in the east. They will talk again next week.",
    ),
    "the Kremlin studies a document (en)": (
        "ukraine-peace",
        "Kremlin studies revised document",
        "Dmitry Peskov said Moscow had received updated US proposals through Kirill Dmitriev "
        "and was studying them. He would not discuss the contents.",
    ),
    "a border shooting taken to the world court (en)": (
        "venezuela",
        "Guyana says its soldiers were shot at from across the river",
        "Armed men on the Venezuelan bank fired at a patrol on Sunday, wounding one soldier. "
        "Georgetown said it would raise "
        "the shooting at the International Court of Justice, which is hearing Venezuela's "
        "claim to the Essequibo region.",
    ),
    "a boat strike briefing (en)": (
        "venezuela",
        "Hegseth defends second boat strike as lawmakers demand the video",
        "",
    ),
    # A market headline that names Venezuela itself is Venezuela's oil story (an OPEC
    # survey naming no Venezuelan thing in its headline is not: "an OPEC survey" above).
    "Venezuela's oil in an energy brief (en)": (
        "venezuela",
        "Energy brief: Venezuela's output stalls as OPEC+ keeps quotas",
        "Venezuela's crude production has stalled at about 950,000 barrels a day, PDVSA "
        "officials said, as power cuts in Zulia idle upgraders and Chevron waits for the "
        "terms of its new licence. The interim government of Delcy Rodríguez had promised a "
        "million barrels by March. Elsewhere, OPEC+ kept its quotas unchanged.",
    ),
    # A scraped page: a section name, the title again, a byline and a dateline before the
    # lead, which is the body's first sentence.
    "a scraped page's lead after its byline": (
        "ukraine-peace",
        "Kremlin says it is still talking to Washington, gives no date for envoys' visit",
        "\n\n".join(
            [
                "World | Europe",
                "# Kremlin says it is still talking to Washington, gives no date for envoys' visit",
                "By Staff Reporter",
                "March 3, 2026 9:40 AM GMT · Updated an hour ago",
                "MOSCOW (Wire) - The Kremlin said on Tuesday it remained in contact with "
                "Washington about a settlement of the war in Ukraine, but that no date had been "
                "fixed for another visit by U.S. envoys Steve Witkoff and Jared Kushner.",
                '"The dialogue goes on, quietly, as it should," spokesman Dmitry Peskov told '
                "reporters.",
                "He declined to say whether President Vladimir Putin would receive the two men "
                "again this month.",
                "Peskov said Moscow had studied the latest proposals carefully and that some "
                "points still needed serious work.",
                "The Russian president's aide Yuri Ushakov said Moscow's demands on territory had "
                "not changed.",
                "Ukraine says it will not give up land it still holds.",
                "European capitals have said they are ready to help secure any future truce.",
                "Air raid alerts sounded across eastern Ukraine overnight.",
                "Officials in Kharkiv said a drone damaged a warehouse.",
                "Rail traffic resumed in the south after repairs.",
                "Reporting by Wire staff; editing by the desk",
                "Our standards: the Wire trust principles",
            ]
        ),
    ),
    # A brief whose lead is the talks still alerts however short it is.
    "a brief on the next round": (
        "ukraine-peace",
        "Kremlin says no date yet for next round with Ukraine",
        "Russian and Ukrainian negotiators have not agreed when to meet again in Istanbul, "
        "Kremlin spokesman Dmitry Peskov said. Kyiv wants the prisoner exchanges to go on. "
        "Officials in Moscow gave no further detail.",
    ),
    "Delcy Rodríguez in Havana (es)": (
        "venezuela",
        "Delcy Rodríguez viaja a Cuba para renegociar el suministro de petróleo",
        "La presidenta encargada llegó a La Habana este lunes acompañada por el ministro de"
        " Petróleo. En La Habana se reunirá con Miguel Díaz-Canel para revisar los envíos "
        "de crudo, que Washington amenaza con sancionar. Caracas envió a la isla 30.000 "
        "barriles diarios en 2025.",
    ),
    "Dmitriev meets Witkoff (en)": (
        "ukraine-peace",
        "Kirill Dmitriev meets Witkoff in Miami to discuss revised plan",
        "",
    ),
    "Machado to lead the transition": (
        "venezuela",
        "Machado says she will return home to lead transition",
        "",
    ),
    "Maduro's lawyers": (
        "venezuela",
        "Maduro's lawyers ask judge to toss drug charges",
        "",
    ),
    "Cabello and the mercenaries (es)": (
        "venezuela",
        "Cabello anuncia captura de 'mercenarios' en la frontera",
        "",
    ),
    "Essequibo": (
        "venezuela",
        "Guyana's Ali says army will defend Essequibo after border ambush",
        "",
    ),
    "a boat strike off Venezuela": (
        "venezuela",
        "US strikes another alleged drug boat in Caribbean, killing three",
        "The US military struck a vessel it said was carrying narcotics in international "
        "waters on Tuesday, Defense Secretary Pete Hegseth said. It was the fifth such "
        "strike since the Navy built up forces off the coast of Venezuela. Hegseth posted a"
        " video of the boat exploding. Democrats in Congress have questioned the legal "
        "basis for the attacks.",
    ),
    "officials meet in Istanbul": (
        "ukraine-peace",
        "Russian and Ukrainian officials meet in Istanbul, first face-to-face talks since 2022",
        "",
    ),
    "the Alaska summit": (
        "ukraine-peace",
        "Alaska summit ends without deal on Ukraine",
        "",
    ),
    "a 30-day ceasefire": (
        "ukraine-peace",
        "Kremlin rejects European call for 30-day ceasefire",
        "",
    ),
    "the coalition of the willing": (
        "ukraine-peace",
        "Coalition of the willing agrees to deploy reassurance force after any peace deal",
        "Leaders of 26 countries meeting in Paris pledged to send troops to Ukraine or "
        "provide support once fighting stops, Emmanuel Macron said. The force would not be "
        "deployed on the front line.",
    ),
    "an envoy from the Gaza deal to Moscow (en)": (
        "ukraine-peace",
        "Witkoff, fresh from the Hamas hostage deal, heads to Moscow",
        "Steve Witkoff will meet Vladimir Putin in the Kremlin on Thursday, Russian officials "
        "said. Kyiv said it had not been shown the latest draft. The envoy spent the weekend "
        "in Egypt.",
    ),
    "Russia and Ukraine meet (es)": (
        "ukraine-peace",
        "Rusia y Ucrania se reúnen en Estambul por primera vez desde 2022",
        "",
    ),
    # Since 2025 the two presidents' calls and summits are the talks, named or not.
    "a call to stop the bloodbath": (
        "ukraine-peace",
        "Trump says he will speak to Putin on Monday to stop the 'bloodbath'",
        "The US president said he would then talk to Volodymyr Zelensky and to several NATO "
        "leaders. He said he hoped for a productive day. The Kremlin confirmed the call.",
    ),
    "disappointed after a call": (
        "ukraine-peace",
        "Trump 'very disappointed' after call with Putin",
        "President Donald Trump said on Thursday that his call with Vladimir Putin had made "
        "no progress and that the Russian leader did not want to stop the war. The call "
        "lasted nearly an hour, the Kremlin said.",
    ),
    "a summit in Budapest (es)": (
        "ukraine-peace",
        "Trump y Putin se reunirán en Budapest para buscar el fin de la guerra",
        "",
    ),
    # The market's words in a headline on Venezuela's own crude
    "Venezuelan crude seized (en)": (
        "venezuela",
        "US seizes tanker carrying Venezuelan crude oil",
        "",
    ),
    # The Latin American press's "alto al fuego"
    "an Easter ceasefire (es)": (
        "ukraine-peace",
        "Putin anuncia un alto al fuego por Pascua en Ucrania",
        "",
    ),
    # The two sides negotiating, beside the EU's assets in one headline: the verbs of talks
    # spare a headline from the EU-financing veto as the peace words do
    "the two sides negotiate beside the assets": (
        "ukraine-peace",
        "Kyiv and Moscow negotiate as EU debates frozen Russian assets",
        "",
    ),
    # The EU's own loan beside this war's talks in one headline: the talks are news
    "the EU loan and the next round": (
        "ukraine-peace",
        "Putin says EU loan to Ukraine is theft as Abu Dhabi talks near",
        "",
    ),
    # A local truce for repairs at the nuclear plant, worded as a halt in fighting
    "a local halt in fighting for repairs": (
        "ukraine-peace",
        "Crews reconnect backup line to Zaporizhzhia nuclear plant under local truce",
        "Repair crews on Saturday reconnected a backup power line to the Zaporizhzhia "
        "nuclear power plant after Russia and Ukraine agreed to a localised halt in fighting "
        "brokered by the UN nuclear watchdog. The IAEA said the work took four days. The "
        "plant's six reactors are in cold shutdown. It was the agency's fourth such "
        "arrangement since October.",
    ),
    # Ukraine's negotiators, by the word, with no other word of talks
    "the negotiators in Miami": (
        "ukraine-peace",
        "Zelensky says his negotiators raised air defence, not territory, in Miami",
        "Ukraine's negotiators spent two days with the American side in Florida, President "
        "Volodymyr Zelensky said in his evening address.",
    ),
    # Moscow's words for the talks, and Trump's ultimatum
    "a settlement with Ukraine": (
        "ukraine-peace",
        "Lavrov says summit understandings remain the basis for a settlement with Ukraine",
        "Russian Foreign Minister Sergei Lavrov said on Tuesday that Moscow had not changed "
        "its position. He said a new meeting of the two presidents needed preparation.",
    ),
    "stop the fighting in Ukraine": (
        "ukraine-peace",
        "Trump gives Putin 50 days or faces tariffs",
        "President Donald Trump threatened Russia with severe tariffs unless Vladimir Putin "
        "agrees within 50 days to stop the fighting in Ukraine.",
    ),
    # a bare "Maduro" beside the US president, in a headline with no other Venezuelan word
    "a call with Trump": (
        "venezuela",
        "Trump says he spoke with Maduro by phone, calls the talks productive",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(TRUE_STORIES))
def test_true_stories_alert(shipped: Matcher, case: str) -> None:
    rule, title, text = TRUE_STORIES[case]
    assert rule in alerts(shipped, title, text)


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


def test_related_headlines_and_tags_of_a_page_are_not_its_story(shipped: Matcher) -> None:
    """A scraped page keeps the links around the article: about Venezuela, on a page about
    Colombia's election."""
    text = "\n\n".join(
        [
            "BOGOTA (Wire) - Colombia's presidential race enters its final week with the two "
            "front-runners level in the polls, and a fifth of voters still undecided.",
            "Security has dominated the campaign after attacks by armed groups in Cauca. Both "
            "candidates promise to retake territory from guerrilla dissidents.",
            "The economy is the other worry: the deficit is near 7 % of GDP and the next "
            "president must cut spending. Candidates have said little about neighbouring "
            "Venezuela.",
            "If no one wins half the vote, a runoff will be held on June 21.",
            "## Related coverage",
            "* [Maduro trial date set for early 2027](https://example.com/1)",
            "* [Venezuela's Rodríguez meets US envoy in Caracas](https://example.com/2)",
            "* [Venezuelan oil exports hit highest since 2019](https://example.com/3)",
            "* [Machado says Venezuela's opposition is ready to vote](https://example.com/4)",
            "Read also: Caracas and Bogotá reopen border crossings",
            "Tags: Colombia, Elections, Venezuela, Maduro, Caracas",
        ]
    )
    assert alerts(shipped, "Colombia's race tightens in final week", text) == []


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
