"""Text for matching: repair and cleaning, sentences, tokens and windows (pure functions).

Cleaning keeps offsets: URLs, e-mail addresses and markup leftovers become spaces of the same
length, so a mention's offsets in the cleaned text are its offsets in the repaired text.
Everything here is linear in the length of the text.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable
from re import _parser  # type: ignore[attr-defined]  # for the width of ftfy's pattern

import ftfy
import ftfy.badness

# Text longer than this is cut (at a space) before matching, and the cut is reported.
MAX_MATCH_CHARS = 300_000
# A "sentence" longer than this (a page without punctuation) is cut at a space.
MAX_SENTENCE_CHARS = 600

_URL_ONLY = r"\b(?:https?://|www\.)[^\s<>\"']+"
_URL_RE = re.compile(_URL_ONLY + r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL_ONLY_RE = re.compile(_URL_ONLY)
_MARKUP_RE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,300})?/?>|&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-z]{2,8});"
)
# Lines of the page around an article, which scraped pages and feed content keep: a link
# alone on its line (a related headline, "* [Maduro trial date set](https://...)"), a
# "Read also: ..." or "Related coverage" line, a tag list ("Tags: Colombia, Venezuela").
# They name other stories' actors, so they are blanked as markup is.
_AROUND_RE = re.compile(
    r"^[ \t]*(?:[*+•-][ \t]*)?\[[^\]\n]{1,400}\]\([^)\n]*\)[ \t]*$"
    r"|^[ \t]*(?:#{1,6}[ \t]*)?(?:read (?:also|more)|see also|related(?: coverage| stories| "
    r"articles| news| content)?|more (?:on this|from \w+)|lee también|lea también|leer más|"
    r"te puede interesar|también te puede interesar|ver también|más noticias|noticias "
    r"relacionadas|relacionad[oa]s?)\b[ \t]*(?:[:|>»–—-][^\n]*)?$"
    r"|^[ \t]*(?:tags?|topics|etiquetas|temas|filed under)[ \t]*:[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
# A sentence ends at . ! ? … (closing quotes and brackets may follow) before a capital, or
# at a line break. Each branch starts with a character, not a lookbehind or a bare \s*, so
# the engine jumps between candidate characters instead of trying every position: 2.3x
# faster on news text. split_sentences moves the match's start as the lookbehind form did.
_BOUNDARY_RE = re.compile(r"[.!?…][\"'”’)\]]*\s+(?=[\"'“‘¿¡(\[]?[A-Z0-9À-ÖØ-Þ])|\n\s*")
_ENDS = frozenset(".!?…")
# Tokens ending a text before a period that does not end a sentence ("U.S. President"),
# in English and Spanish: "EE. UU." (Estados Unidos) is one name, but "UU." itself stays a
# possible end, as "U.S." does not: "viajó a EE. UU. El presidente..." is two sentences, at
# the cost of cutting "el presidente de EE. UU. Donald Trump". "no" and "mar" (English "No.
# 10", "Mar. 3") also hold a Spanish sentence that ends "... que no." or "... al mar." open.
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "gen", "sen", "rep", "gov", "col", "lt", "sgt",
    "capt", "prof", "no", "vs", "etc", "inc", "corp", "co", "ltd", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.u",
    "ee", "sra", "srta", "dra", "gral", "lic",
})  # fmt: skip
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"[^\W_]+")


def repair(text: str) -> str:
    """``text`` with mojibake fixed ("donâ€™t" -> "don't"); unchanged when it looks fine."""
    return ftfy.fix_text(text) if looks_bad(text) else text


# ftfy's mojibake pattern: every sequence it matches holds a non-ASCII character and is at
# most _BAD_REACH characters long, so it need only be searched around non-ASCII runs. Its
# search over a whole news text costs more than the rest of matching's text preparation.
_BAD_RE = ftfy.badness.BADNESS_RE
_BAD_REACH = _parser.parse(_BAD_RE.pattern, _BAD_RE.flags).getwidth()[1]
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")


def looks_bad(text: str) -> bool:
    """Exactly ``ftfy.badness.is_bad(text)``, searching only near non-ASCII characters."""
    if _BAD_REACH > 64:  # a future pattern without a small bound: search everything
        return bool(_BAD_RE.search(text))
    start, end = 0, -1  # the window being gathered: [start, end), empty at first
    for run in _NON_ASCII_RE.finditer(text):
        if run.start() - _BAD_REACH > end:  # too far from the window: search it, start anew
            if end > start and _BAD_RE.search(text, start, end):
                return True
            start = max(0, run.start() - _BAD_REACH)
        end = run.end() + _BAD_REACH
    return end > start and bool(_BAD_RE.search(text, start, end))


def blank_noise(text: str) -> str:
    """URLs, e-mail addresses, markup leftovers and the lines of the page around the
    article (related links, "Read also", tags) replaced by spaces (same length)."""
    if "\n" in text:  # those lines need a line of their own: a title has none
        text = _AROUND_RE.sub(_spaces, text)
    if "@" in text:
        text = _URL_RE.sub(_spaces, text)
    elif "://" in text or "www." in text:  # without "@", only the URL branch can match
        text = _URL_ONLY_RE.sub(_spaces, text)
    if "<" in text or "&" in text:
        text = _MARKUP_RE.sub(_spaces, text)
    return text


def _spaces(match: re.Match[str]) -> str:
    return " " * len(match[0])


def cap(text: str, limit: int = MAX_MATCH_CHARS) -> tuple[str, str]:
    """``text`` cut to ``limit`` chars at a space, and a note saying so ("" if not cut)."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind(" ", limit // 2, limit)
    cut = cut if cut > 0 else limit
    note = f"input capped: matched the first {cut:,} of {len(text):,} characters of text"
    return text[:cut], note


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[tuple[int, int]]:
    """(start, end) of each sentence: at . ! ? before a capital, and at every line break."""
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in _BOUNDARY_RE.finditer(text):
        end = boundary.start()
        if text[end] in _ENDS:
            end += 1  # the sentence keeps its punctuation
            if "\n" not in boundary[0] and _abbreviation_before(text, end):
                continue
        else:  # a line break: the sentence ends where the whitespace before it starts
            while end > start and text[end - 1].isspace():
                end -= 1
        _add(spans, text, start, end, max_chars)
        start = boundary.end()
    _add(spans, text, start, len(text), max_chars)
    return spans


def _abbreviation_before(text: str, end: int) -> bool:
    """Whether the period before ``end`` closes an abbreviation or an initial ("J. Smith")."""
    head = text[max(0, end - 12) : end].rstrip("\"'”’)]")
    if not head.endswith("."):
        return False
    word = head[:-1].rsplit(None, 1)[-1].lower() if head[:-1].strip() else ""
    return len(word) == 1 or word in _ABBREVIATIONS


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int, limit: int) -> None:
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        _add_stripped(spans, text, start, cut)
        start = cut
    _add_stripped(spans, text, start, end)


def _add_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    if right > left:
        spans.append((start + left, start + right))


# Articles, demonstratives and possessives (folded), per language: a name right after one,
# or after one and a common noun, is part of a noun phrase about something else ("un Maduro"
# is a cigar, "su Maduro de leche cruda" a cheese, "la colección Maduro" a collection); the
# surname of a person stands alone.
DETERMINERS = {
    lang: frozenset(words.split())
    for lang, words in {
        "es": "el la los las lo un una unos unas este esta estos estas ese esa aquel aquella "
        "su sus mi mis tu tus nuestro nuestra",
        "en": "the a an this that these those his her its their my our your",
        # not "a": in Portuguese also the preposition ("disse a Maduro")
        "pt": "o os as um uma uns umas este esta esse essa seu sua seus suas",
        "fr": "le la les un une des ce cet cette ces son sa ses leur leurs",
        "it": "il lo la i gli le un uno una questo questa suo sua",
        "de": "der die das den dem des ein eine einen einem einer dieser diese dieses sein "
        "seine ihr ihre",
    }.items()
}


def capitalised(surface: str) -> bool:
    """Whether a word of ``surface`` starts with a capital ("presidente Maduro" does, "a
    maduro look" does not): what an ambiguous or typed name needs to count as the name."""
    return any(word[:1].isupper() for word in surface.split())


def tokenize(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each token (a run of word characters, or one other character)."""
    return [m.span() for m in _TOKEN_RE.finditer(text, start, end)]


def token_texts(text: str) -> list[str]:
    """The tokens of a whole phrase, as matching splits it ("al-Assad" is three)."""
    return _TOKEN_RE.findall(text)


def count_words(text: str, start: int = 0, end: int | None = None) -> int:
    return len(_WORD_RE.findall(text, start, len(text) if end is None else end))


def words_before(text: str, sentences: list[tuple[int, int]]) -> tuple[list[int], int]:
    """Per sentence, the words in the sentences before it, and the words in them all: the
    sums of ``count_words`` per sentence. (A word cut by a sentence's length limit counts
    in both pieces, as count_words counts it.) ``findall`` per sentence: no match objects,
    and every analysed article pays this over its whole text."""
    findall = _WORD_RE.findall
    counts = [len(findall(text, start, end)) for start, end in sentences]
    before = list(itertools.accumulate(counts, initial=0))
    return before[:-1], before[-1]


def sentence_index(starts: list[int], offset: int) -> int:
    """The index of the sentence holding ``offset``, given the sentences' start offsets."""
    return max(0, bisect.bisect_right(starts, offset) - 1)


def windows(hits: Iterable[int], radius: int, count: int) -> list[tuple[int, int]]:
    """Merged [first, last] sentence ranges within ``radius`` sentences of a hit sentence."""
    merged: list[tuple[int, int]] = []
    for hit in sorted(set(hits)):
        first, last = max(0, hit - radius), min(count - 1, hit + radius)
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def title_lines(
    text: str, sentences: list[tuple[int, int]], title: str, look: int = 10
) -> frozenset[int]:
    """Among the first ``look`` sentences, those that are the title again on a line of
    their own ("# Kremlin says ..." on a scraped page), whatever the case or punctuation."""
    words = [w.casefold() for w in _WORD_RE.findall(title)]
    if not words:
        return frozenset()
    found = set()
    for index, (start, end) in enumerate(sentences[:look]):
        line_start = start == 0 or text[start - 1] == "\n"
        line_end = end == len(text) or text[end] == "\n"
        if (
            line_start
            and line_end
            and [w.casefold() for w in _WORD_RE.findall(text, start, end)] == words
        ):
            found.add(index)
    return frozenset(found)


def headings(text: str, sentences: list[tuple[int, int]], max_words: int = 12) -> frozenset[int]:
    """The sentences that are headings: a line of its own, short, without final punctuation."""
    found = set()
    for index, (start, end) in enumerate(sentences):
        line_start = start == 0 or text[start - 1] == "\n"
        line_end = end == len(text) or text[end] == "\n"
        last = text[end - 1] if end > start else "."
        if (
            line_start
            and line_end
            and last not in ".!?:;,…\"'”’"
            and count_words(text, start, end) <= max_words
        ):
            found.add(index)
    return frozenset(found)
