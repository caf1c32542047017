"""An article's near-duplicate fingerprint: headline terms and a MinHash sketch of its lead."""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable

from watcher.types import Signature

# Bottom-k MinHash: a fixed-size sketch whose overlap estimates the Jaccard similarity of
# the articles' word shingles, so storage and comparison cost do not grow with length.
SKETCH_SIZE = 128
_SHINGLE = 3
_LEAD_WORDS = 400
_TERM_PREFIX = 6  # crude stemming: "negotiations"/"negotiate" share "negoti"

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "has",
        "have",
        "had",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "his",
        "her",
        "their",
        "we",
        "you",
        "i",
        "not",
        "no",
        "after",
        "over",
        "into",
        "about",
        "than",
        "says",
        "said",
        "say",
        "will",
        "would",
        "could",
        "can",
        "new",
        "also",
        "more",
        "up",
        "out",
        "who",
        "what",
        "when",
        "where",
        "how",
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
        "y",
        "o",
        "de",
        "del",
        "al",
        "en",
        "por",
        "para",
        "con",
        "sin",
        "sobre",
        "entre",
        "es",
        "son",
        "fue",
        "fueron",
        "ha",
        "han",
        "se",
        "su",
        "sus",
        "que",
        "lo",
        "le",
        "les",
        "como",
        "mas",
        "pero",
        "este",
        "esta",
        "estos",
        "estas",
        "dice",
        "dijo",
        "ya",
    ]
)


def signature(title: str, text: str) -> Signature:
    words = _words(f"{title} {text}", limit=_LEAD_WORDS)
    return Signature(title_terms=frozenset(_terms(title)), sketch=_sketch(words))


def _words(text: str, limit: int | None = None) -> list[str]:
    # Only the lead is folded: the text can be 200,000 characters, and this runs per match.
    return [_fold(m[0]) for m in itertools.islice(_WORD.finditer(text), limit)]


def _fold(word: str) -> str:
    if word.isascii():  # most words: what the decomposition below gives, much faster
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _terms(title: str) -> Iterable[str]:
    for word in _words(title):
        if word not in _STOPWORDS and len(word) > 2 and not word.isdigit():
            yield word[:_TERM_PREFIX]


def _sketch(words: list[str]) -> tuple[int, ...]:
    if len(words) < _SHINGLE:
        words = words + [""] * (_SHINGLE - len(words))
    shingles = {" ".join(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes  # bound once: ~400 calls per article
    hashes = {from_bytes(blake2b(s.encode(), digest_size=8).digest(), "big") >> 1 for s in shingles}
    return tuple(sorted(hashes)[:SKETCH_SIZE])
