"""The rule tester's backtest, run in a worker process (explaining goes through watcher.explain)."""

from __future__ import annotations

from collections.abc import Sequence

from watcher.config import NlpSettings
from watcher.rules.backtest import RuleResult, compare
from watcher.rules.schema import RuleSet
from watcher.rules.worker import matcher_for
from watcher.types import Article


def backtest_rule(
    rule: str,
    stored: Sequence[tuple[int, Article]],
    did: dict[int, set[str]],
    rules: RuleSet,
    nlp: NlpSettings,
) -> RuleResult:
    """`watcher backtest --rule`: the current rule over stored articles vs what it matched then."""
    matcher = matcher_for(rules, nlp)
    would = {i: {m.rule for m in matcher.match(a)} for i, a in stored}
    results = [r for r in compare(would, did, [rule]) if r.rule == rule]
    return results[0] if results else RuleResult(rule)
