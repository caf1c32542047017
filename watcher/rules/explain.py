"""Explaining an article against the rules: every verdict, its evidence, and the alert text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from watcher.rules.match import Matcher, Verdict
from watcher.types import Article, Match

Summarize = Callable[[Article, list[Match], str], str]


def explain(
    source: str,
    article: Article,
    matcher: Matcher,
    *,
    now: datetime,
    summarize: Summarize | None = None,
) -> dict[str, Any]:
    """Everything `watcher explain` reports on one article, as JSON-ready data.

    ``summarize(article, matches, source)`` writes the alert text; the caller passes it
    because composing alerts is a layer above the rules.
    """
    verdicts = matcher.explain(article, now=now)
    language = matcher.analyzer.language(article)
    matches = [_as_match(v, matcher) for v in verdicts if v.matched]
    summary = summarize(article, matches, source) if matches and summarize else None
    return {
        "source": source,
        "url": article.url,
        "title": article.title,
        "language": language,
        "length": len(article.text),
        "text_source": str(article.source),
        "fallback_reason": article.fallback_reason,
        # Input caps the page went through before matching (articles.extract.PAGE_CAP).
        "page_cap": article.extra.get("page_cap", ""),
        # What the input lacks, said by articles.extract ("the file has a title line and no text").
        "note": article.extra.get("note", ""),
        "matches": [_verdict_json(v) for v in verdicts if v.matched],
        "verdicts": [_verdict_json(v) for v in verdicts],
        "summary": summary,
    }


def _as_match(verdict: Verdict, matcher: Matcher) -> Match:
    rule = next(r for r in matcher.rules.rules if r.name == verdict.rule)
    return Match(
        rule.name,
        verdict.score,
        rule.threshold,
        verdict.evidence,
        rule.priority,
        rule.destinations,
        verdict.reasons,
    )


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "rule": v.rule,
        "matched": v.matched,
        "score": round(v.score, 2),
        "threshold": v.threshold,
        "reasons": list(v.reasons),
        "evidence": [asdict(e) for e in v.evidence],
    }


def format_explanation(report: dict[str, Any]) -> str:
    """The human-readable form of one ``explain`` report."""
    lines = [
        f"== {report['title'] or '(untitled)'}",
        f"   {report['source']}",
        f"   language {report['language'] or '?'}, {report['length']:,} characters of text "
        f"from {report['text_source']}"
        + (f" ({report['fallback_reason']})" if report["fallback_reason"] else ""),
    ]
    if report.get("page_cap"):
        lines.append(f"   page capped before extraction: {report['page_cap']}")
    if report.get("note"):
        lines.append(f"   note: {report['note']}")
    for v in report["verdicts"]:
        lines += _format_verdict(v)
    if report["summary"] and report.get("blocked"):
        lines += ["", f"blocked by {report['blocked']}: no alert would be sent"]
    elif report["summary"]:
        lines += ["", "--- the alert that would be sent ---", report["summary"]]
    else:
        lines += ["", "no rule matched: no alert would be sent"]
    return "\n".join(lines)


# spaCy's entity labels in words, for people reading `explain`.
_LABELS = {
    "PERSON": "a person",
    "NORP": "a nationality or group",
    "GPE": "a country, city or state",
    "LOC": "a place",
    "ORG": "an organisation",
    "FAC": "a building or facility",
    "EVENT": "an event",
    "PRODUCT": "a product",
    "LAW": "a law",
}


def entity_words(label: str) -> str:
    """A spaCy entity label as people say it ("GPE" -> "a country, city or state")."""
    return _LABELS.get(label, label)


def _format_verdict(v: dict[str, Any]) -> list[str]:
    head = "MATCH" if v["matched"] else "no match"
    lines = ["", f"{v['rule']}: {head} (score {v['score']:g}, threshold {v['threshold']:g})"]
    lines += [f"   {reason}" for reason in v["reasons"]]
    for e in strongest(v["evidence"]):
        lines.append(
            f"   - {evidence_name(e)}: {e['matched']!r} in {e['where']}: {_short(e['sentence'])!r}"
        )
    return lines


def evidence_name(e: Mapping[str, Any]) -> str:
    """The term as the rule names it, and for a keyword the group's phrase that matched:
    "keyword hostages (phrase 'hostage')", "actor Nicolás Maduro (as a person)"."""
    group = e.get("group") or e["term"]
    if e["kind"] == "keyword":
        return f"keyword {group} (phrase {e['term']!r})"
    label = f" (as {entity_words(e['entity_label'])})" if e.get("entity_label") else ""
    return f"{e['kind']} {group}{label}"


def strongest(evidence: Sequence[Mapping[str, Any]], limit: int = 8) -> list[Mapping[str, Any]]:
    """The evidence lines to show (explain, the web page): the first per term, phrase and
    field, at most ``limit``."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for e in evidence:
        key = (e.get("group", ""), e["term"], e["where"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out[:limit]


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
