"""Pure alert composition: the stored payload, and its rendering as Telegram HTML and text."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from watcher.channels.base import OutgoingMessage
from watcher.types import Article, Evidence, Match

# Telegram counts the parsed text, not the HTML; staying under the limit with the HTML
# itself is the safe side and leaves room for the "+N sources" line added by edits.
TELEGRAM_LIMIT = 4096
_BUDGET = TELEGRAM_LIMIT - 400
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)]*\s+(?=[\"'“‘«(¿¡]?[A-ZÁÉÍÓÚÑÜ0-9])")
_MAX_SENTENCE = 500
_PRIORITY_MARK = {"critical": "🚨", "normal": "🔔", "low": "📰"}


@dataclass(frozen=True)
class Quote:
    """A sentence quoted in an alert, with the character spans to highlight."""

    text: str
    marks: tuple[tuple[int, int], ...]


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        sentences += [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
    return sentences


def choose_quotes(article: Article, matches: Sequence[Match], count: int) -> list[Quote]:
    """The lead sentence plus the sentences with the strongest evidence, in article order."""
    title = article.title.strip().casefold()
    # Extracted text often starts with the headline again; the alert already shows it.
    sentences = [s for s in split_sentences(article.text) if s.casefold() != title]
    if not sentences:
        return []
    evidence = [e for m in matches for e in m.evidence if e.where == "text"]
    strength = _sentence_strength(sentences, evidence)
    # The lead is always quoted: it must not also take one of the evidence places.
    ranked = [i for i in sorted(strength, key=lambda i: (-strength[i], i)) if i != 0]
    chosen = sorted({0, *ranked[: max(count - 1, 0)]})[:count]
    surfaces = {e.matched for e in evidence} | {e.matched for m in matches for e in m.evidence}
    return [_quote(_clip(sentences[i]), surfaces) for i in chosen]


def _sentence_strength(sentences: list[str], evidence: list[Evidence]) -> Counter[int]:
    """How many distinct terms each sentence carries (evidence quotes its sentence)."""
    terms: dict[int, set[str]] = {}
    for e in evidence:
        core = e.sentence.strip("…").strip()[:80]
        for i, sentence in enumerate(sentences):
            if core and core in sentence:
                terms.setdefault(i, set()).add(e.term)
                break
    return Counter({i: len(t) for i, t in terms.items()})


def _clip(sentence: str) -> str:
    if len(sentence) <= _MAX_SENTENCE:
        return sentence
    cut = sentence.rfind(" ", 0, _MAX_SENTENCE)
    return sentence[: cut if cut > 0 else _MAX_SENTENCE] + "…"


def _quote(sentence: str, surfaces: Iterable[str]) -> Quote:
    marks: list[tuple[int, int]] = []
    # IGNORECASE, not casefold(): casefolding changes lengths ("ß" -> "ss") and would shift
    # every later span.
    for surface in sorted({s for s in surfaces if s.strip()}, key=len, reverse=True):
        for found in re.finditer(re.escape(surface), sentence, re.IGNORECASE):
            span = (found.start(), found.end())
            if not any(a < span[1] and span[0] < b for a, b in marks):
                marks.append(span)
    return Quote(sentence, tuple(sorted(marks)))


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
    # Context-only terms (weight 0) explain nothing on their own: leave them out.
    scoring = [e for e in match.evidence if e.weight > 0]
    counts = Counter((e.kind, e.term) for e in scoring)
    weights = {e.term: e.weight for e in scoring}
    labels = {e.term: e.entity_label for e in scoring if e.entity_label}
    ranked = sorted(counts.items(), key=lambda item: -item[1] * weights[item[0][1]])
    terms = [
        {"term": term, "kind": kind, "count": n, "label": labels.get(term)}
        for (kind, term), n in ranked
    ]
    return {
        "name": match.rule,
        "score": round(match.score, 2),
        "threshold": match.threshold,
        "terms": terms,
    }


def _top_priority(priorities: Iterable[str]) -> str:
    order = ["critical", "normal", "low"]
    return min(priorities, key=lambda p: order.index(p) if p in order else 1, default="normal")


# --- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Extras:
    """What rendering adds beyond the payload: the story's other sources, a lead-in line."""

    sources: tuple[tuple[str, str], ...] = ()  # (source name, url) of later articles
    headline: str = ""  # e.g. "Story develops: new rule matched"


def render(
    payload: dict[str, Any], *, tz: ZoneInfo, extras: Extras = Extras(), silent: bool = False
) -> OutgoingMessage:
    """The alert as Telegram HTML and plain text, within Telegram's length limit.

    Quotes are dropped from the end until it fits, so nothing is ever cut inside a tag.
    """
    quotes = list(payload["quotes"])
    while True:
        parts = _parts(payload, quotes, tz, extras)
        html_text = "\n\n".join(h for h, _ in parts if h)
        if _size(html_text) <= _BUDGET or not quotes:
            break
        quotes.pop()
    if _size(html_text) > _BUDGET:
        html_text = _hard_trim(parts)
    text = "\n\n".join(t for _, t in parts if t)
    rules = ", ".join(r["name"] for r in payload["rules"])
    return OutgoingMessage(
        subject=f"[watcher] {rules}: {payload['title']}"[:200],
        html=html_text,
        text=text,
        link=payload["url"],
        silent=silent,
        buttons=(("Open article", f"url:{payload['url']}"),) if payload["url"] else (),
    )


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
    label = f" [{term['label']}]" if term.get("label") else ""
    return f"{term['term']}{label} ×{term['count']}"


def _sources(sources: Sequence[tuple[str, str]]) -> tuple[str, str]:
    shown = sources[:8]
    more = f" and {len(sources) - len(shown)} more" if len(sources) > len(shown) else ""
    links = ", ".join(f'<a href="{_esc(url)}">{_esc(name)}</a>' for name, url in shown)
    names = ", ".join(name for name, _ in shown)
    return (
        f"<b>+{len(sources)} sources:</b> {links}{more}",
        f"+{len(sources)} sources: {names}{more}",
    )


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
    head = f"📰 Digest: {len(items)} alert{'s' if len(items) != 1 else ''} ({when})"
    lines_html, lines_text = [f"<b>{_esc(head)}</b>"], [head]
    for item in items:
        rules = ", ".join(r["name"] for r in item["rules"])
        lines_html.append(
            f'• <a href="{_esc(item["url"])}">{_esc(item["title"])}</a> — '
            f"{_esc(item['source'])} ({_esc(rules)})"
        )
        lines_text.append(f"• {item['title']} — {item['source']} ({rules})\n  {item['url']}")
    return OutgoingMessage(
        subject=head, html="\n".join(lines_html), text="\n".join(lines_text), link=None, silent=True
    )
