"""Pure alert composition: the stored payload, and its rendering as Telegram HTML and text."""

from __future__ import annotations

import bisect
import difflib
import html
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from watcher.channels.base import OutgoingMessage
from watcher.rules.prefilter import fold
from watcher.types import Article, Evidence, Match

# Telegram counts the parsed text, not the HTML; staying under the limit with the HTML
# itself is the safe side and leaves room for the "+N sources" line added by edits.
TELEGRAM_LIMIT = 4096
_BUDGET = TELEGRAM_LIMIT - 400
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)]*\s+(?=[\"'“‘«(¿¡]?[A-ZÁÉÍÓÚÑÜ0-9])")
_MAX_SENTENCE = 500
_WORD = re.compile(r"\w+")
_TAG = re.compile(r"<[^>]*>")
# Near-duplicate sentences: this share of words in common, or a run this long in order.
_NEAR_RATIO = 0.6
_NEAR_WORDS = 120
_NEAR_CHARS = 2_000
_NEAR_RUN = 7
# Surfaces up to this long ("US", "EU") are bolded only where the case matches too.
_CASE_BLIND_FROM = 2
_PRIORITY_MARK = {"critical": "🚨", "normal": "🔔", "low": "📰"}
# Lowercase words (three letters or more) that make a sentence prose, not a dateline.
_LEAD_WORDS = 1


@dataclass(frozen=True)
class Quote:
    """A sentence quoted in an alert, with the character spans to highlight."""

    text: str
    marks: tuple[tuple[int, int], ...]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence in ``text``; paragraphs never share one."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for paragraph in text.split("\n"):
        cuts = [0, *(m.end() for m in _SENTENCE_END.finditer(paragraph)), len(paragraph)]
        for a, b in itertools.pairwise(cuts):
            piece = paragraph[a:b]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((offset + a + lead, offset + a + len(piece.rstrip())))
        offset += len(paragraph) + 1
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def near_duplicate(a: str, b: str) -> bool:
    """Whether two sentences say nearly the same words (a standfirst and the first
    paragraph): most words shared, or a run of seven in the same order."""
    # Only the first words are compared: a quote shows no more, and difflib's time grows with
    # the product of the lengths (two 100,000-word "sentences" of a page without full stops
    # held the event loop for minutes).
    words_a = _WORD.findall(a[:_NEAR_CHARS].casefold())[:_NEAR_WORDS]
    words_b = _WORD.findall(b[:_NEAR_CHARS].casefold())[:_NEAR_WORDS]
    if not words_a or not words_b:
        return False
    matcher = difflib.SequenceMatcher(None, words_a, words_b, autojunk=False)
    run = matcher.find_longest_match(0, len(words_a), 0, len(words_b)).size
    return matcher.ratio() >= _NEAR_RATIO or run >= min(_NEAR_RUN, len(words_a), len(words_b))


def choose_quotes(article: Article, matches: Sequence[Match], count: int) -> list[Quote]:
    """The lead sentence, then the best evidence of each rule (by score), then the strongest
    evidence; no two near-duplicates, nothing that repeats the title; in article order."""
    text = article.text
    spans = [
        span
        for span in sentence_spans(text)
        if not near_duplicate(text[span[0] : span[1]], article.title)
    ]
    if not spans or count <= 0:
        return []
    found = _locate(text, spans, [(m.rule, e) for m in matches for e in _scoring(m)])
    chosen: list[int] = []
    rules = [m.rule for m in sorted(matches, key=lambda m: -m.score)]
    for i in _candidates(found, rules, lead=_lead(text, spans)):
        sentence = text[slice(*spans[i])]
        if len(chosen) < count and not any(
            near_duplicate(sentence, text[slice(*spans[j])]) for j in chosen
        ):
            chosen.append(i)
    surfaces = {e.matched for m in matches for e in _scoring(m)}
    return [_quote(text, spans[i], found.get(i, []), surfaces) for i in sorted(chosen)]


def _scoring(match: Match) -> list[Evidence]:
    # Context-only terms (weight 0) explain nothing on their own: never bold or quoted.
    return [e for e in match.evidence if e.weight > 0]


def _locate(
    text: str, spans: list[tuple[int, int]], evidence: list[tuple[str, Evidence]]
) -> dict[int, list[tuple[str, Evidence]]]:
    """Sentence index -> the (rule, evidence) it carries, with offsets in ``text``."""
    found: dict[int, list[tuple[str, Evidence]]] = {}
    for rule, e in evidence:
        if e.where != "text":
            continue
        placed = _place(text, spans, e)
        if placed is not None:
            i, start = placed
            found.setdefault(i, []).append(
                (rule, replace(e, start=start, end=start + len(e.matched)))
            )
    return found


def _place(text: str, spans: list[tuple[int, int]], e: Evidence) -> tuple[int, int] | None:
    """(sentence index, start offset) of ``e``: by its offsets when the text around them is
    its sentence's, else by its sentence's text (offsets of an older extraction)."""
    if text[e.start : e.end] == e.matched and _context_agrees(text, e):
        i = bisect.bisect_right(spans, (e.start, len(text) + 1)) - 1
        if i >= 0 and spans[i][0] <= e.start and e.end <= spans[i][1]:
            return i, e.start
    core = e.sentence.strip("…").strip()[:80]
    for i, (a, b) in enumerate(spans):
        if core and core in text[a:b]:
            at = text.find(e.matched, a, b)
            return (i, at) if at >= 0 else None
    return None


def _context_agrees(text: str, e: Evidence, reach: int = 30) -> bool:
    at = e.sentence.find(e.matched)
    if at < 0:
        return True  # the sentence was shortened around the match: the offsets decide
    before = min(at, reach, e.start)
    after = min(len(e.sentence) - at - len(e.matched), reach)
    around = e.sentence[at - before : at + len(e.matched) + after]
    return text[e.start - before : e.end + after] == around


def _lead(text: str, spans: list[tuple[int, int]], look: int = 4) -> int:
    """The first sentence that reads as prose, among the first ``look``: a dateline ("Tue,
    February 24, 2026 at 10:50 AM UTC"), a byline or a photo credit is not a lead."""
    for i, (a, b) in enumerate(spans[:look]):
        words = _WORD.findall(text[a:b])
        if sum(w.isalpha() and w.islower() and len(w) > 2 for w in words) >= _LEAD_WORDS:
            return i
    return 0


def _candidates(
    found: dict[int, list[tuple[str, Evidence]]], rules: list[str], *, lead: int = 0
) -> list[int]:
    """Sentence indexes in the order they are considered: the lead, each rule's best, the rest."""

    def strength(i: int, rule: str | None = None) -> float:
        terms = {(r, e.term): e.weight for r, e in found.get(i, []) if rule in (None, r)}
        return sum(terms.values())

    best = [max(found, key=lambda i: (strength(i, r), -i)) for r in rules if found]
    best = [i for i, r in zip(best, rules, strict=False) if strength(i, r) > 0]
    rest = sorted(found, key=lambda i: (-strength(i), i))
    return [lead, *best, *rest]


def _quote(
    text: str,
    span: tuple[int, int],
    found: list[tuple[str, Evidence]],
    surfaces: Iterable[str],
) -> Quote:
    start, end = span
    sentence = _clip(text[start:end])
    marks = [(e.start - start, e.end - start) for _, e in found]
    # Other occurrences of a scoring term in the sentence, as whole words.
    for surface in sorted({s for s in surfaces if s.strip()}, key=len, reverse=True):
        pattern = rf"(?<!\w){re.escape(surface)}(?!\w)"
        flags = re.IGNORECASE if len(surface) > _CASE_BLIND_FROM else 0
        marks += [(f.start(), f.end()) for f in re.finditer(pattern, sentence, flags)]
    return Quote(sentence, _disjoint(marks, len(sentence)))


def _disjoint(marks: list[tuple[int, int]], size: int) -> tuple[tuple[int, int], ...]:
    kept: list[tuple[int, int]] = []
    # Longest first, so "Nicolas Maduro" wins over "Maduro" inside it.
    for a, b in sorted(set(marks), key=lambda m: (m[0] - m[1], m[0])):
        if b <= size and not any(x < b and a < y for x, y in kept):
            kept.append((a, b))
    return tuple(sorted(kept))


def _clip(sentence: str) -> str:
    if len(sentence) <= _MAX_SENTENCE:
        return sentence
    cut = sentence.rfind(" ", 0, _MAX_SENTENCE)
    return sentence[: cut if cut > 0 else _MAX_SENTENCE] + "…"


def build_payload(
    article: Article, matches: Sequence[Match], *, source: str, quotes: int
) -> dict[str, Any]:
    """Everything an alert shows, as JSON-ready data stored with the alert."""
    return {
        "title": article.title or "(untitled)",
        "url": article.url,
        "source": source,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
        "text_source": str(article.source),
        "quotes": [
            {"text": q.text, "marks": q.marks} for q in choose_quotes(article, matches, quotes)
        ],
        "rules": [_rule_summary(m) for m in sorted(matches, key=lambda m: -m.score)],
        "priority": _top_priority(m.priority for m in matches),
    }


def _rule_summary(match: Match) -> dict[str, Any]:
    scoring = _scoring(match)
    counts = Counter((e.kind, e.term) for e in scoring)
    weights = {e.term: e.weight for e in scoring}
    ranked = sorted(counts.items(), key=lambda item: -item[1] * weights[item[0][1]])
    terms = [
        {
            "term": term,
            "kind": kind,
            "count": n,
            "matched": _shown(scoring, kind, term),
            "names": _names(scoring, kind, term),
        }
        for (kind, term), n in ranked
    ]
    return {
        "name": match.rule,
        "score": round(match.score, 2),
        "threshold": match.threshold,
        "terms": terms,
    }


def _shown(evidence: list[Evidence], kind: str, term: str) -> str:
    """What the alert shows for a term: for an actor, the alias the article used most
    ("Steve Witkoff", not the group name "envoys"; the longest of equally frequent ones);
    for a keyword or pattern, the rule's own phrase."""
    if kind != "actor":
        return term
    surfaces = Counter(e.matched for e in evidence if e.term == term)
    return max(surfaces, key=lambda s: (surfaces[s], len(s)))


def _names(evidence: list[Evidence], kind: str, term: str) -> list[str]:
    """An actor's names as the article wrote them, most used first ([] for keywords)."""
    if kind != "actor":
        return []
    surfaces = Counter(e.matched for e in evidence if e.term == term)
    return sorted(surfaces, key=lambda s: (-surfaces[s], -len(s), s))


def _top_priority(priorities: Iterable[str]) -> str:
    order = ["critical", "normal", "low"]
    return min(priorities, key=lambda p: order.index(p) if p in order else 1, default="normal")


# --- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Extras:
    """What rendering adds beyond the payload: the story's other sources, a lead-in line."""

    sources: tuple[tuple[str, str], ...] = ()  # (source name, url) of later articles
    headline: str = ""  # e.g. "Story develops: new rule matched"


# A per-rule template: the rendering context in, Telegram-flavoured HTML out.
Template = Callable[[Mapping[str, Any]], str]


def render(
    payload: dict[str, Any],
    *,
    tz: ZoneInfo,
    extras: Extras = Extras(),
    silent: bool = False,
    template: Template | None = None,
) -> OutgoingMessage:
    """The alert as Telegram HTML and plain text, within Telegram's length limit; laid out
    by ``template`` when given (see ``template_context``), else by the built-in layout.

    Quotes are dropped from the end until it fits, so nothing is ever cut inside a tag.
    """
    quotes = list(payload["quotes"])
    while True:
        parts = _parts(payload, quotes, tz, extras)
        html_text = "\n\n".join(h for h, _ in parts if h)
        text = "\n\n".join(t for _, t in parts if t)
        if template is not None:
            html_text = template(template_context(payload, quotes, tz, extras, html_text))
            text = html_to_text(html_text)
        if _size(html_text) <= _BUDGET or not quotes:
            break
        quotes.pop()
    if _size(html_text) > _BUDGET:
        html_text = _hard_trim(parts) if template is None else _fit_plain(text)
    return OutgoingMessage(
        subject=alert_subject(payload),
        html=html_text,
        text=text,
        link=payload["url"],
        silent=silent,
        buttons=(("Open article", f"url:{payload['url']}"),) if payload["url"] else (),
    )


def template_context(
    payload: dict[str, Any],
    quotes: list[dict[str, Any]],
    tz: ZoneInfo,
    extras: Extras,
    default: str,
) -> dict[str, Any]:
    """What a template sees (documented in README "Alert templates"). Pieces that are
    already HTML are Markup, so autoescaping leaves them alone."""
    sources_html = _sources(extras.sources)[0] if extras.sources else ""
    return {
        "title": payload["title"],
        "url": payload["url"],
        "source": payload["source"],
        "published": _when(payload["published"], tz),
        "language": payload.get("language"),
        "priority": payload["priority"],
        "mark": _PRIORITY_MARK.get(payload["priority"], "🔔"),
        "headline": extras.headline,
        "quotes": [
            {"text": q["text"], "html": Markup(_highlight(q["text"], q["marks"]))} for q in quotes
        ],
        "rules": [
            {
                "name": r["name"],
                "score": r["score"],
                "threshold": r["threshold"],
                "terms": [
                    {"term": t["term"], "shown": _display(t), "count": t["count"]}
                    for t in r["terms"]
                ],
            }
            for r in payload["rules"]
        ],
        "why": Markup(_why(payload["rules"])[0]),
        "sources": [{"name": n, "url": u} for n, u in extras.sources],
        "sources_line": Markup(sources_html),
        "default": Markup(default),
    }


def html_to_text(fragment: str) -> str:
    """The plain text of Telegram-flavoured HTML: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", fragment))


def _fit_plain(text: str) -> str:
    """``text`` escaped and shortened to fit the budget (a template that renders too much)."""
    size = len(text)
    while size > 0 and _size(_esc(text[:size])) > _BUDGET - 1:
        size = size * 9 // 10
    return _esc(text[:size]) + ("…" if size < len(text) else "")


def _parts(
    payload: dict[str, Any], quotes: list[dict[str, Any]], tz: ZoneInfo, extras: Extras
) -> list[tuple[str, str]]:
    mark = _PRIORITY_MARK.get(payload["priority"], "🔔")
    title = payload["title"]
    parts = []
    if extras.headline:
        parts.append((f"<i>{_esc(extras.headline)}</i>", extras.headline))
    parts.append((f"{mark} <b>{_esc(title)}</b>", f"{mark} {title}"))
    byline = " · ".join(x for x in (payload["source"], _when(payload["published"], tz)) if x)
    parts.append((f"<i>{_esc(byline)}</i>", byline))
    parts += [(_highlight(q["text"], q["marks"]), q["text"]) for q in quotes]
    parts.append(_why(payload["rules"]))
    if extras.sources:
        parts.append(_sources(extras.sources))
    if payload["url"]:
        url = payload["url"]
        parts.append((f'<a href="{_esc(url)}">Read the article</a>', url))
    return parts


def _highlight(text: str, marks: Sequence[Sequence[int]]) -> str:
    out, at = [], 0
    for start, end in marks:
        out += [_esc(text[at:start]), f"<b>{_esc(text[start:end])}</b>"]
        at = end
    out.append(_esc(text[at:]))
    return "".join(out)


def _why(rules: list[dict[str, Any]]) -> tuple[str, str]:
    lines_html, lines_text = [], []
    for rule in rules:
        terms = ", ".join(_term(t) for t in rule["terms"][:6])
        line = f"{rule['name']} (score {rule['score']:g} ≥ {rule['threshold']:g}): {terms}"
        lines_html.append(
            f"<b>{_esc(rule['name'])}</b> (score {rule['score']:g} ≥ "
            f"{rule['threshold']:g}): {_esc(terms)}"
        )
        lines_text.append(line)
    return "Why: " + "; ".join(lines_html), "Why: " + "; ".join(lines_text)


def _term(term: dict[str, Any]) -> str:
    return f"{_display(term)} ×{term['count']}"


def _display(term: dict[str, Any]) -> str:
    """How "Why" names a term: the name the article used; for a group or an actor written
    several ways ("envoys": Witkoff, Umerov), the term with those names, so the count is not
    put on one of them. Variants of one name ("Maduro", "Nicolás Maduro") stay one name."""
    shown = str(term.get("matched") or term["term"])
    names = [str(n) for n in term.get("names") or ()]  # absent in alerts stored before
    if len(names) <= 1 or _variants(names):
        return shown
    listed = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return f"{term['term']} ({listed})"


def _variants(names: list[str]) -> bool:
    # folded as rules match names: "Nicolas Maduro" is how some write "Nicolás Maduro"
    words = set(fold(max(names, key=len)).split())
    return all(set(fold(n).split()) <= words for n in names)


# Other sources a story's alert names (the rest are counted), edited or shown alone.
SHOWN_SOURCES = 8


def _sources(sources: Sequence[tuple[str, str]]) -> tuple[str, str]:
    shown = sources[:SHOWN_SOURCES]
    more = f" and {len(sources) - len(shown)} more" if len(sources) > len(shown) else ""
    links = ", ".join(f'<a href="{_esc(url)}">{_esc(name)}</a>' for name, url in shown)
    names = ", ".join(name for name, _ in shown)
    count = plural(len(sources), "source", "+")
    return f"<b>{count}:</b> {links}{more}", f"{count}: {names}{more}"


def alert_subject(payload: dict[str, Any]) -> str:
    """The one-line subject of an alert (an email's Subject): its rules and title."""
    rules = ", ".join(r["name"] for r in payload["rules"])
    return f"[watcher] {rules}: {payload['title']}"[:200]


def plural(n: int, noun: str, sign: str = "") -> str:
    """ "1 alert", "2 alerts", "+1 source" (English nouns with a plain -s plural)."""
    return f"{sign}{n} {noun}{'' if n == 1 else 's'}"


def _when(published: str | None, tz: ZoneInfo) -> str:
    if not published:
        return ""
    when = datetime.fromisoformat(published).astimezone(tz)
    return when.strftime("%d %b %Y %H:%M %Z")


def _hard_trim(parts: list[tuple[str, str]]) -> str:
    """Last resort for absurd titles or rule lists: shorten whole parts' plain text."""
    out: list[str] = []
    for _, text in parts:
        piece = _esc(text[:600])
        if sum(_size(p) + 2 for p in out) + _size(piece) > _BUDGET:
            break
        out.append(piece)
    return "\n\n".join(out)


def _size(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units, so an emoji counts twice."""
    return len(text.encode("utf-16-le")) // 2


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_digest(
    items: Sequence[dict[str, Any]], *, tz: ZoneInfo, now: datetime
) -> OutgoingMessage:
    """One message listing held alerts, newest last; the channel splits it if it is long."""
    when = now.astimezone(tz).strftime("%d %b %H:%M %Z")
    head = f"📰 Digest: {plural(len(items), 'alert')} ({when})"
    lines_html, lines_text = [f"<b>{_esc(head)}</b>"], [head]
    for item in items:
        rules = ", ".join(r["name"] for r in item["rules"])
        lines_html.append(
            f'• <a href="{_esc(item["url"])}">{_esc(item["title"])}</a> — '
            f"{_esc(item['source'])} ({_esc(rules)})"
        )
        lines_text.append(f"• {item['title']} — {item['source']} ({rules})\n  {item['url']}")
    # "[watcher]" as every alert's subject starts (alert_subject): one mail filter for both
    subject = f"[watcher] Digest: {plural(len(items), 'alert')} ({when})"
    return OutgoingMessage(
        subject=subject,
        html="\n".join(lines_html),
        text="\n".join(lines_text),
        link=None,
        silent=True,
    )
