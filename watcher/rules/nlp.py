"""NLP for matching: language detection, spaCy pipelines per language, analysed articles.

A language with an installed statistical model (``nlp.model`` for English, ``nlp.models``
for others) gets it, with the parser excluded (sentences come from ``senter``). A language
without one (Spanish: spaCy 3.8 has no Spanish model on PyPI) gets a blank pipeline with the
lookup lemmatizer from spacy-lookups-data, and entities come from the rules' actor names: a
capitalised mention of an actor is an entity of the actor's first type. Pipelines are loaded
lazily, once per process.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config import NlpSettings
from watcher.rules.prefilter import Prefilter, Scan, fold
from watcher.rules.schema import Actor, RuleSet, Term
from watcher.types import Article, Field

_LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
}
# Components matching never needs; the parser is the slowest and `senter` replaces it.
_UNUSED = ["parser", "textcat", "textcat_multilabel", "entity_linker", "spancat"]
# WikiNER labels (spaCy's Spanish, French, ... models) and the OntoNotes types they cover.
_LABEL_TYPES = {
    "PER": frozenset({"PERSON"}),
    "LOC": frozenset({"LOC", "GPE", "FAC"}),
    "MISC": frozenset({"NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE"}),
}
_TAIL_CHUNK = 100_000
_LINE_BREAK_RE = re.compile(r"\n\s*")
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
    """One analysed field (title or text): tokens, sentences and entities, by char offset."""

    name: Field
    text: str
    folded: str
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (folded text, folded lemma)
    sentence_of: list[int] = field(default_factory=list)  # per token
    word_of: list[int] = field(default_factory=list)  # per token: words up to it
    sentences: list[tuple[int, int]] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    ner_end: int = 0  # statistical NER covered text[:ner_end]
    caseless: bool = False  # all lowercase or all capitals: capitals tell nothing

    def token_at(self, offset: int) -> int:
        """The index of the token holding char ``offset`` (or the next one)."""
        return max(0, bisect.bisect_right(self.starts, offset) - 1)

    def sentence_text(self, index: int) -> str:
        if not self.sentences:
            return self.text.strip()
        start, end = self.sentences[index]
        return self.text[start:end].strip()


@dataclass
class AnalyzedArticle:
    article: Article
    language: str
    title: Section
    text: Section
    scan: Scan
    # keyword, exclude and not_near phrase -> per token, the folded forms that match it
    phrases: Mapping[str, tuple[frozenset[str], ...]]
    statistical: bool  # entities come from a statistical model (else from actor names)
    term_ids: Mapping[Term, int]  # the prefilter's ids, to look terms up in the scan

    def section(self, name: Field) -> Section:
        return self.title if name == "title" else self.text


class Analyzer:
    """Owns the prefilter and the spaCy pipelines; analyses articles for matching."""

    def __init__(self, settings: NlpSettings, rules: RuleSet) -> None:
        self.settings = settings
        self.rules = rules
        self.prefilter = Prefilter(rules)
        self.pipeline_runs = 0  # full analyses run: the prefilter spares the rest
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

    def analyze(self, article: Article, scan: Scan | None = None) -> AnalyzedArticle:
        """Tokens, lemmas, sentences and entities of title and text (the expensive pass)."""
        scan = self.scan(article) if scan is None else scan
        self.pipeline_runs += 1
        nlp, statistical = self._pipeline(scan.language or "en")
        title, text = self._sections(article, scan, nlp, statistical)
        phrases = self.phrases(scan.language)
        return AnalyzedArticle(
            article, scan.language, title, text, scan, phrases, statistical, self.prefilter.term_ids
        )

    def _pipeline(self, language: str) -> tuple[Any, bool]:
        name = self._models().get(language, "")
        nlp = _statistical(name) if name else None
        warning = _missing_warning(name, language, loaded=False)
        if nlp is None and name and model_installed(name) and warning not in self._warnings:
            self._warnings.append(warning)
        return (nlp, True) if nlp is not None else (_lookup(language), False)

    def _sections(
        self, article: Article, scan: Scan, nlp: Any, statistical: bool
    ) -> tuple[Section, Section]:
        text = article.text
        head = _cut(text, self.settings.ner_chars) if statistical else len(text)
        title_doc, head_doc = nlp.pipe([article.title, text[:head]])
        title = _section("title", article.title, scan, [(title_doc, 0)])
        tail = _tail_docs(_lookup(scan.language or "en"), text, head)
        body = _section("text", text, scan, [(head_doc, 0), *tail])
        for section, covered in ((title, len(article.title)), (body, head)):
            section.ner_end = covered if statistical else 0
            section.entities += self._rule_entities(scan, section)
        return title, body

    def _rule_entities(self, scan: Scan, section: Section) -> list[Entity]:
        """Entities from actor names where no statistical NER ran: capitalised mentions."""
        caseless = section.caseless
        found = []
        for term_id in scan.actors():
            actor = self.prefilter.terms[term_id]
            assert isinstance(actor, Actor)
            for name, start, end in scan.spans(term_id):
                if name != section.name or start < section.ner_end or not actor.types:
                    continue
                if caseless or _capitalised(section.text[start:end]):
                    found.append(Entity(start, end, actor.types[0], frozenset(actor.types)))
        return found

    def phrases(self, language: str) -> Mapping[str, tuple[frozenset[str], ...]]:
        """Every rule phrase that applies in ``language``, as the forms each token accepts."""
        if language not in self._phrases:
            texts = sorted(set(self._phrase_texts(language)))
            nlp = _lookup(language or "en")
            docs = nlp.pipe(texts)
            self._phrases[language] = {
                t: _phrase_forms(d) for t, d in zip(texts, docs, strict=True)
            }
        return self._phrases[language]

    def _phrase_texts(self, language: str) -> Iterator[str]:
        for rule in self.rules.rules:
            for group in rule.keywords:
                yield from group.for_language(language)
            for actor in rule.actors:
                yield from (*actor.exclude, *actor.not_near)


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
    """The statistical pipeline ``name`` without unused components, or None."""
    import spacy  # noqa: PLC0415  (slow import: only when a pipeline is needed)

    try:
        nlp = spacy.load(name, exclude=_UNUSED)
    except Exception:  # any load failure means: use the fallback
        return None
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    elif "senter" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer")
    return nlp


@functools.cache
def _lookup(language: str) -> Any:
    """A blank pipeline with the lookup lemmatizer (when spacy-lookups-data has the language)."""
    import spacy  # noqa: PLC0415

    try:
        nlp = spacy.blank(language)
    except Exception:  # an unknown language code
        nlp = spacy.blank("xx")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("sentencizer")
    try:
        nlp.initialize()
    except Exception:  # no lookup table for this language
        nlp.remove_pipe("lemmatizer")
        nlp.initialize()
    nlp.max_length = max(nlp.max_length, _TAIL_CHUNK * 2)
    return nlp


def _cut(text: str, limit: int) -> int:
    """Where to end the statistical part: at ``limit`` chars, backed up to a line or space."""
    if len(text) <= limit:
        return len(text)
    for separator in ("\n", " "):
        cut = text.rfind(separator, limit // 2, limit)
        if cut > 0:
            return cut
    return limit


def _tail_docs(nlp: Any, text: str, start: int) -> list[tuple[Any, int]]:
    offsets = []
    while start < len(text):
        end = start + _cut(text[start:], _TAIL_CHUNK)
        offsets.append((start, end))
        start = end
    docs = nlp.pipe(text[s:e] for s, e in offsets)
    return [(doc, s) for doc, (s, _) in zip(docs, offsets, strict=True)]


def _section(name: Field, text: str, scan: Scan, docs: Iterable[tuple[Any, int]]) -> Section:
    section = Section(name, text, scan.folded[name], caseless=text.islower() or text.isupper())
    words = 0
    for doc, offset in docs:
        section.sentences += _sentence_spans(doc, offset)
        section.entities += [_entity(e, offset) for e in doc.ents]
        for token in doc:
            if token.is_space:
                continue
            section.starts.append(token.idx + offset)
            section.ends.append(token.idx + offset + len(token.text))
            section.keys.append((fold(token.text), fold(token.lemma_ or token.text)))
            words += not token.is_punct
            section.word_of.append(words)
    starts = [s for s, _ in section.sentences]
    section.sentence_of = [max(0, bisect.bisect_right(starts, t) - 1) for t in section.starts]
    return section


def _sentence_spans(doc: Any, offset: int) -> Iterator[tuple[int, int]]:
    """Sentences, also split at line breaks: a heading is not part of the next paragraph."""
    text = doc.text  # spaCy rebuilds it from every token on each access: read it once
    for sent in doc.sents:
        start = sent.start_char
        for piece in _LINE_BREAK_RE.split(sent.text):
            if piece.strip():
                begin = text.index(piece, start)
                yield offset + begin, offset + begin + len(piece)
                start = begin + len(piece)


def _entity(span: Any, offset: int) -> Entity:
    label = span.label_
    types = _LABEL_TYPES.get(label, frozenset({label}))
    return Entity(span.start_char + offset, span.end_char + offset, label, types)


def _capitalised(surface: str) -> bool:
    return next((c.isupper() for c in surface if c.isalpha()), False)


def _phrase_forms(doc: Any) -> tuple[frozenset[str], ...]:
    return tuple(frozenset({fold(t.text), fold(t.lemma_ or t.text)}) for t in doc if not t.is_space)
