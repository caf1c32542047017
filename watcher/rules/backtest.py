"""Backtests: the current rules over stored articles, next to what actually alerted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class RuleResult:
    rule: str
    would: int = 0
    did: int = 0
    new_hits: list[int] = field(default_factory=list)  # article ids that would now alert
    lost_hits: list[int] = field(default_factory=list)  # ids that alerted but would not now


def compare(
    would: Mapping[int, set[str]], did: Mapping[int, set[str]], rules: list[str]
) -> list[RuleResult]:
    """Per rule: how many stored articles match now vs matched then, and which differ (pure)."""
    results = {r: RuleResult(r) for r in rules}
    for article_id in sorted(set(would) | set(did)):
        now, then = would.get(article_id, set()), did.get(article_id, set())
        for rule in now | then:
            result = results.setdefault(rule, RuleResult(rule))
            result.would += rule in now
            result.did += rule in then
            if rule in now and rule not in then:
                result.new_hits.append(article_id)
            elif rule in then and rule not in now:
                result.lost_hits.append(article_id)
    return sorted(results.values(), key=lambda r: r.rule)


def format_backtest(
    results: list[RuleResult],
    titles: Mapping[int, str],
    feedback: Mapping[str, int],
    articles: int,
    *,
    show: int = 10,
) -> str:
    lines = [
        f"backtest over {articles} stored articles",
        "",
        f"{'RULE':24} {'WOULD MATCH':>11} {'DID MATCH':>9} {'NEW':>5} {'LOST':>5} "
        f"{'NOT RELEVANT':>12}",
    ]
    for r in results:
        lines.append(
            f"{r.rule:24} {r.would:>11} {r.did:>9} {len(r.new_hits):>5} "
            f"{len(r.lost_hits):>5} {feedback.get(r.rule, 0):>12}"
        )
    for r in results:
        for label, ids in (("new hits", r.new_hits), ("lost hits", r.lost_hits)):
            if ids:
                lines += ["", f"{r.rule}: {label}"]
                lines += [
                    f"  + {titles.get(i, '?')}"
                    if label == "new hits"
                    else f"  - {titles.get(i, '?')}"
                    for i in ids[:show]
                ]
                if len(ids) > show:
                    lines.append(f"  ... and {len(ids) - show} more")
    return "\n".join(lines)
