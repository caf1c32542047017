"""NLP for matching: language detection, analysed articles, and NER on sentence windows.

Analysis is cheap by default: sentences come from a rule-based splitter, and only the
sentences around the prefilter's hits of the candidate rules' terms (the windows) are
tokenized, with English lemmas from the lookup table of spacy-lookups-data and stems for
other languages. The statistical model
(``nlp.model`` for English, ``nlp.models`` for others), reduced to its NER component, runs
only on the few sentences whose entity types a rule needs (``add_entities``), batched with
``nlp.pipe``. A language without a model (Spanish: spaCy 3.8 has no Spanish model on PyPI)
gets entities from the rules' actor names: a capitalised mention of an actor is an entity of
the actor's first type. Pipelines are loaded lazily, once per process.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config import NlpSettings
from watcher.rules.model import FIELDS, Actor, RuleSet, Term
from watcher.rules.prefilter import Prefilter, Scan, fold, stem
from watcher.rules.text import (
    capitalised,
    sentence_index,
    split_sentences,
    token_texts,
    tokenize,
    windows,
    words_before,
)
from watcher.types import Article, Field

_LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
}
# Components matching never needs: lemmas and sentences come from lookups and rules.
_UNUSED = [
    "parser", "tagger", "morphologizer", "senter", "attribute_ruler", "lemmatizer", "textcat",
    "textcat_multilabel", "entity_linker", "spancat",
]  # fmt: skip
_LEMMA_CACHE = 200_000
# WikiNER labels (spaCy's Spanish, French, ... models) and the OntoNotes types they cover.
_LABEL_TYPES = {
    "PER": frozenset({"PERSON"}),
    "LOC": frozenset({"LOC", "GPE", "FAC"}),
    "MISC": frozenset({"NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE"}),
}
_WORD_RE = re.compile(r"[^\W\d_]+")
_STOPWORDS = {
    "en": "the and of to in is that for on with was as by at from his have are be it this has "
    "will said not an which who were been their after its they but",
    "es": "el la los las de del y en que por con para una un es se al lo su sus como más pero "
    "fue ha este esta sobre entre tras ante según desde también",
    "fr": "le les des du et est une dans pour pas qui sur au avec ce il elle sont été aux "
    "cette ont mais",
    "de": "der die das und ist nicht mit den von zu sich des auf für ein eine dem im auch "
    "wird wurde",
    "pt": "o os do da dos das em não uma com para por ao no na foi mais pelo pela seu sua "
    "também",
    "it": "il gli della delle di che è per non con sono del nel alla anche più questo",
}  # fmt: skip
_PROFILES = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}


def detect_language(text: str, hint: str = "") -> str:
    """The ISO 639-1 code of ``text``: ``hint`` (page metadata such as "es-VE") when it is
    one, else the language whose common words ``text`` uses most; "" when unsure."""
    code = hint.strip().lower().replace("_", "-").split("-")[0]
    if re.fullmatch(r"[a-z]{2,3}", code):
        return code
    words = _WORD_RE.findall(text[:3000].lower())
    scores = sorted(
        ((sum(w in p for w in words), lang) for lang, p in _PROFILES.items()), reverse=True
    )
    (best, lang), (second, _) = scores[0], scores[1]
    return lang if best >= 2 and best > second else ""


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    label: str
    types: frozenset[str]  # the rule entity types this label satisfies


@dataclass
class Section:
    """One analysed field (title or text): every sentence, and the tokens and entities of
    the sentences analysed (the windows), by char offset."""

    name: Field
    text: str
    folded: str
    sentences: list[tuple[int, int]] = field(default_factory=list)
    words_before: list[int] = field(default_factory=list)  # per sentence: words before it
    starts: list[int] = field(default_factory=list)  # per token (in windows only)
    ends: list[int] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (folded text, folded lemma)
    sentence_of: list[int] = field(default_factory=list)  # per token
    word_of: list[int] = field(default_factory=list)  # per token: words up to it
    windows: list[tuple[int, int]] = field(default_factory=list)  # sentence ranges tokenized
    entities: list[Entity] = field(default_factory=list)  # sorted by start
    ner_sentences: set[int] = field(default_factory=set)  # sentences the statistical NER saw
    ner_chars: int = 0  # characters it read (the parts of those sentences around the names)
    caseless: bool = False  # all lowercase or all capitals: capitals tell nothing
    words: int = 0
    _entity_starts: list[int] = field(default_factory=list, repr=False)

    @functools.cached_property
    def sentence_starts(self) -> list[int]:
        return [s for s, _ in self.sentences]

    def token_at(self, offset: int) -> int:
        """The index of the token holding char ``offset`` (or the next one)."""
        return max(0, bisect.bisect_right(self.starts, offset) - 1)

    def sentence_at(self, offset: int) -> int:
        return sentence_index(self.sentence_starts, offset)

    def sentence_text(self, index: int) -> str:
        if not self.sentences:
            return self.text.strip()
        start, end = self.sentences[index]
        return self.text[start:end].strip()

    def entities_at(self, start: int, end: int) -> list[Entity]:
        """The entities overlapping [start, end) (entities are sorted and short)."""
        if len(self._entity_starts) != len(self.entities):
            self._entity_starts = [e.start for e in self.entities]
        first = bisect.bisect_left(self._entity_starts, start - 200)
        last = bisect.bisect_left(self._entity_starts, end)
        return [e for e in self.entities[first:last] if start < e.end]

    def tokenized_sentences(self) -> int:
        return sum(last - first + 1 for first, last in self.windows)


@dataclass
class AnalyzedArticle:
    article: Article
    language: str
    title: Section
    text: Section
    scan: Scan
    # keyword, exclude and not_near phrase -> per token, the folded forms that match it
    phrases: Mapping[str, tuple[frozenset[str], ...]]
    statistical: bool  # a statistical NER model exists for the language
    term_ids: Mapping[Term, int]  # the prefilter's ids, to look terms up in the scan
    notes: tuple[str, ...] = ()  # caps and other limits applied to the input
    memo: dict[Any, Any] = field(default_factory=dict)  # matching's caches, for every rule

    def section(self, name: Field) -> Section:
        return self.title if name == "title" else self.text

    def ner_count(self) -> int:
        return len(self.title.ner_sentences) + len(self.text.ner_sentences)


class Analyzer:
    """Owns the prefilter and the spaCy pipelines; analyses articles for matching."""

    def __init__(self, settings: NlpSettings, rules: RuleSet) -> None:
        self.settings = settings
        self.rules = rules
        self.prefilter = Prefilter(rules)
        self.pipeline_runs = 0  # articles analysed: the prefilter spares the rest
        self.ner_runs = 0  # articles that reached the statistical NER
        self._warnings = [
            _missing_warning(m, lang)
            for lang, m in self._models().items()
            if not model_installed(m)
        ]
        self._phrases: dict[str, dict[str, tuple[frozenset[str], ...]]] = {}

    def _models(self) -> dict[str, str]:
        return {"en": self.settings.model, **self.settings.models}

    def warnings(self) -> list[str]:
        """Problems to show at start-up and in ``watcher check`` (missing models)."""
        return list(dict.fromkeys(self._warnings))

    def language(self, article: Article) -> str:
        return detect_language(f"{article.title}\n{article.text[:3000]}", article.language)

    def scan(self, article: Article, language: str | None = None) -> Scan:
        """The cheap pass: ``scan.candidates`` lists the rules that could match."""
        language = self.language(article) if language is None else language
        return self.prefilter.scan(article.title, article.text, language)

    def analyze(
        self,
        article: Article,
        scan: Scan | None = None,
        *,
        radius: int = 0,
        everything: bool = False,
        patterns: frozenset[int] | None = None,
    ) -> AnalyzedArticle:
        """Sentences everywhere; tokens and lemmas in the windows of ``radius`` sentences
        around the prefilter's hits (those of ``patterns`` only, when given: the terms of the
        rules to evaluate), or ``everything``, for explain. No statistical NER yet: see
        ``add_entities``."""
        scan = self.scan(article) if scan is None else scan
        self.pipeline_runs += 1
        lemma = self._lemma(scan.language)
        title = _section("title", article.title, scan, lemma, radius, everything=True)
        body = _section(
            "text", article.text, scan, lemma, radius, everything=everything, patterns=patterns
        )
        statistical = self._pipeline(scan.language or "en") is not None
        analyzed = AnalyzedArticle(
            article,
            scan.language,
            title,
            body,
            scan,
            self.phrases(scan.language),
            statistical,
            self.prefilter.term_ids,
        )
        if not statistical:
            for section in (title, body):
                section.entities = sorted(self._rule_entities(scan, section), key=lambda e: e.start)
        return analyzed

    def add_entities(self, analyzed: AnalyzedArticle, wanted: Mapping[Field, set[int]]) -> int:
        """Run the statistical NER on the ``wanted`` sentences not seen yet (within the
        ``ner_chars`` budget per article); returns how many sentences it ran on.

        NER reads the part of each sentence that holds the actors' names, with
        ``NER_CONTEXT`` tokens either side, not the whole sentence: the model's features
        reach four tokens either side, and NER time grows with every token it reads.
        """
        nlp = self._pipeline(analyzed.language or "en")
        if nlp is None:
            return 0
        budget = self.settings.ner_chars - analyzed.title.ner_chars - analyzed.text.ner_chars
        names = self._actor_names(analyzed.scan)
        jobs: list[tuple[Section, int, int, int]] = []
        for name in FIELDS:
            section = analyzed.section(name)
            for index in sorted(wanted.get(name, set()) - section.ner_sentences):
                start, end = ner_span(section.text, section.sentences[index], names.get(name, []))
                if end - start > budget:
                    break
                budget -= end - start
                jobs.append((section, index, start, end))
        if not jobs:
            return 0
        if not analyzed.ner_count():
            self.ner_runs += 1
        texts = [s.text[a:b] for s, _, a, b in jobs]
        for (section, index, start, end), doc in zip(jobs, nlp.pipe(texts), strict=True):
            section.entities += [_entity(e, start) for e in doc.ents]
            section.ner_sentences.add(index)
            section.ner_chars += end - start
        for key in [k for k in analyzed.memo if k[0] == "mentions" and isinstance(k[1], Actor)]:
            del analyzed.memo[key]  # an actor's mentions found before NER depend on entities
        for section in (analyzed.title, analyzed.text):
            section.entities.sort(key=lambda e: e.start)
        return len(jobs)

    def _actor_names(self, scan: Scan) -> dict[Field, list[tuple[int, int]]]:
        """Where the actors' names occur, per field, sorted: those of actors with types,
        which NER decides, and the others, whose entity labels evidence shows."""
        found: dict[Field, list[tuple[int, int]]] = {}
        for term_id in scan.actors():
            actor = self.prefilter.terms[term_id]
            if isinstance(actor, Actor):
                for name, start, end in scan.spans(term_id):
                    found.setdefault(name, []).append((start, end))
        for spans in found.values():
            spans.sort()
        return found

    def _pipeline(self, language: str) -> Any:
        name = self._models().get(language, "")
        nlp = _statistical(name) if name else None
        warning = _missing_warning(name, language, loaded=False)
        if nlp is None and name and model_installed(name) and warning not in self._warnings:
            self._warnings.append(warning)
        return nlp

    def _rule_entities(self, scan: Scan, section: Section) -> list[Entity]:
        """Entities from actor names where no statistical NER runs: capitalised mentions."""
        caseless = section.caseless
        found = []
        for term_id in scan.actors():
            actor = self.prefilter.terms[term_id]
            assert isinstance(actor, Actor)
            for name, start, end in scan.spans(term_id):
                if name != section.name or not actor.types:
                    continue
                if caseless or capitalised(section.text[start:end]):
                    found.append(Entity(start, end, actor.types[0], frozenset(actor.types)))
        return found

    def phrases(self, language: str) -> Mapping[str, tuple[frozenset[str], ...]]:
        """Every rule phrase that applies in ``language``, as the forms each token accepts."""
        if language not in self._phrases:
            lemma = self._lemma(language)
            self._phrases[language] = {
                text: _phrase_forms(text, lemma)
                for text in sorted(set(self._phrase_texts(language)))
            }
        return self._phrases[language]

    def _lemma(self, language: str) -> Callable[[str], str]:
        """English lemmas from spacy-lookups-data's table; other languages use the
        prefilter's stem (plurals and regular endings), since their tables are large (the
        Spanish one alone adds ~150 MB to every worker)."""
        return _lemmatizer("en") if language in ("", "en") else _stem_folded

    def _phrase_texts(self, language: str) -> Iterator[str]:
        for rule in self.rules.rules:
            for group in rule.keywords:
                yield from (*group.for_language(language), *group.exclude, *group.not_near)
            for actor in rule.actors:
                yield from (*actor.exclude, *actor.not_near)


@functools.cache
def spacy_problem() -> str:
    """Why spaCy cannot be imported, or "" when it can. Without it, matching still runs, as
    for a language without a model: lemmas are folded words and entities come from rules.
    Imports spaCy (about a second): for the command line and worker processes, not the
    daemon's own process."""
    try:
        import spacy  # noqa: F401, PLC0415
    except Exception as exc:  # ImportError, or anything a broken install raises on import
        return (
            f"spaCy cannot be imported ({type(exc).__name__}: {exc}); matching runs without "
            "its entities and lemmas. Install what is missing, or reinstall watcher with its "
            "dependencies (pip install --force-reinstall watcher; in a checkout: pip install .)"
        )
    return ""


def model_installed(name: str) -> bool:
    """Whether spaCy can load the model ``name`` (a package or a directory)."""
    try:
        return importlib.util.find_spec(name) is not None or Path(name).is_dir()
    except (ImportError, ValueError):
        return Path(name).is_dir()


def _missing_warning(model: str, language: str, *, loaded: bool = True) -> str:
    problem = "is not installed" if loaded else "could not be loaded"
    name = _LANGUAGE_NAMES.get(language, f"language {language!r}")
    return (
        f"spaCy model {model!r} {problem}; {name} uses a blank pipeline with lookup lemmas "
        f"and rule-based entities (pip install {model})"
    )


@functools.cache
def _statistical(name: str) -> Any:
    """The statistical pipeline ``name`` reduced to NER (and what NER listens to), or None."""
    if spacy_problem():
        return None
    import spacy  # noqa: PLC0415  (slow import: only when a pipeline is needed)

    try:
        nlp = spacy.load(name, exclude=_UNUSED)
    except Exception:  # any load failure means: use the fallback
        return None
    if "ner" not in nlp.pipe_names:
        return None
    listens = "Listener" in str(nlp.get_pipe_config("ner").get("model", {}).get("tok2vec", {}))
    for pipe in list(nlp.pipe_names):
        if pipe != "ner" and not (pipe == "tok2vec" and listens):
            nlp.remove_pipe(pipe)
    return nlp


@functools.cache
def _lemmatizer(language: str) -> Callable[[str], str]:
    """Word -> folded lemma from spacy-lookups-data's table for ``language`` (the folded word
    without one).

    The table is read directly (no pipeline is built); a language's table can hold hundreds
    of thousands of forms, so only the languages the rules' phrases are written in get one.
    """
    if spacy_problem():
        return fold
    from spacy.lookups import load_lookups  # noqa: PLC0415  (slow import)

    try:
        table = load_lookups(language, ["lemma_lookup"]).get_table("lemma_lookup")
    except Exception:  # an unknown language code, or no lookup table for it
        return fold
    cache: dict[str, str] = {}

    def lemma(word: str) -> str:
        found = cache.get(word)
        if found is None:
            found = fold(table.get(word) or table.get(word.lower()) or word)
            if len(cache) > _LEMMA_CACHE:
                cache.clear()
            cache[word] = found
        return found

    return lemma


def _stem_folded(word: str) -> str:
    return stem(fold(word))


def _section(
    name: Field,
    text: str,
    scan: Scan,
    lemma: Callable[[str], str],
    radius: int,
    *,
    everything: bool = False,
    patterns: frozenset[int] | None = None,
) -> Section:
    """The field's sentences, and tokens in the windows around its hits (or everywhere)."""
    section = Section(name, text, scan.folded[name], caseless=text.islower() or text.isupper())
    section.sentences = split_sentences(text)
    section.words_before, section.words = words_before(text, section.sentences)
    count = len(section.sentences)
    if everything:
        hits: set[int] = set(range(count))
    else:
        starts = section.sentence_starts
        hits = {
            sentence_index(starts, s)
            for pattern, spans in scan.hits.items()
            if patterns is None or pattern in patterns
            for f, s, _ in spans
            if f == name
        }
    section.windows = windows(hits, radius, count)
    for first, last in section.windows:
        for index in range(first, last + 1):
            _tokens(section, index, lemma)
    return section


def _tokens(section: Section, index: int, lemma: Callable[[str], str]) -> None:
    # Per token, in list comprehensions: this runs on every token of every window.
    start, end = section.sentences[index]
    text = section.text
    spans = tokenize(text, start, end)
    tokens = [text[a:b] for a, b in spans]
    section.starts += [a for a, _ in spans]
    section.ends += [b for _, b in spans]
    section.keys += _keys(tokens, lemma)
    words = itertools.accumulate(
        (t[0].isalnum() for t in tokens), initial=section.words_before[index]
    )
    next(words)  # the initial value: words before the sentence
    section.word_of += words
    section.sentence_of += [index] * len(tokens)


# Token -> (folded token, folded lemma), per lemma function: most tokens of news repeat.
_KEYS: dict[Callable[[str], str], dict[str, tuple[str, str]]] = {}
_KEYS_CACHE = 50_000


def _keys(tokens: list[str], lemma: Callable[[str], str]) -> list[tuple[str, str]]:
    cache = _KEYS.setdefault(lemma, {})
    keys = [cache.get(t) for t in tokens]
    if None in keys:
        if len(cache) > _KEYS_CACHE:
            cache.clear()
        for i, token in enumerate(tokens):
            if keys[i] is None:
                keys[i] = cache[token] = (fold(token), lemma(token))
    return keys  # type: ignore[return-value]


# Tokens of context NER reads either side of the names in a sentence (see ner_span).
NER_CONTEXT = 4


def ner_span(
    text: str, sentence: tuple[int, int], names: Sequence[tuple[int, int]]
) -> tuple[int, int]:
    """The part of ``sentence`` NER reads: from ``NER_CONTEXT`` tokens before its first name
    (of ``names``, sorted) to as many after its last; the whole sentence without one."""
    start, end = sentence
    inside = names[bisect.bisect_left(names, (start, 0)) : bisect.bisect_left(names, (end, 0))]
    if not inside:
        return start, end
    before = tokenize(text, start, inside[0][0])
    after = tokenize(text, max(e for _, e in inside), end)
    left = before[-NER_CONTEXT][0] if len(before) > NER_CONTEXT else start
    right = after[NER_CONTEXT - 1][1] if len(after) > NER_CONTEXT else end
    return left, right


def _entity(span: Any, offset: int) -> Entity:
    label = span.label_
    types = _LABEL_TYPES.get(label, frozenset({label}))
    return Entity(span.start_char + offset, span.end_char + offset, label, types)


def _phrase_forms(text: str, lemma: Callable[[str], str]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset({fold(t), lemma(t)}) for t in token_texts(text))
