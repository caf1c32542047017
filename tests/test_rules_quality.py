"""Alert quality of rules/*.yaml against a plain keyword filter, on hand-labelled real news.

tests/data/quality_labels.json holds record ids of ../shared/corpus/news/articles.jsonl and
a verdict given by reading each record: is it mainly about the topic? The records were
sampled where the shipped rules and the keyword baseline disagree (where the interesting
errors are), plus a few where both alert. Precision and recall are measured on those
labelled records, for the rules and for the baseline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from watcher.config import NlpSettings
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import load_rules
from watcher.types import Article, ArticleSource

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news" / "articles.jsonl"
LABELS = json.loads((REPO / "tests" / "data" / "quality_labels.json").read_text())

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not present"),
]

_VENEZUELA = re.compile("venezuel|maduro", re.IGNORECASE)
_UKRAINE = re.compile("ukrain", re.IGNORECASE)
_TALKS = re.compile("peace|talks|ceasefire", re.IGNORECASE)
BASELINES: dict[str, Callable[[str], bool]] = {
    "venezuela": lambda text: bool(_VENEZUELA.search(text)),
    "ukraine-peace": lambda text: bool(_UKRAINE.search(text) and _TALKS.search(text)),
}


def precision_recall(predicted: dict[str, bool], truth: dict[str, bool]) -> tuple[float, float]:
    hits = sum(predicted[k] and truth[k] for k in truth)
    alerts = sum(predicted[k] for k in truth)
    relevant = sum(truth.values())
    return hits / max(alerts, 1), hits / max(relevant, 1)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, tuple[bool, bool]]]:
    """rule -> record id -> (rule alerts, baseline alerts), for the labelled records."""
    wanted = {i for rule in BASELINES for i in LABELS[rule]}
    ruleset = load_rules(REPO / "rules")
    matcher = Matcher(ruleset, Analyzer(NlpSettings(), ruleset))
    found: dict[str, dict[str, tuple[bool, bool]]] = {rule: {} for rule in BASELINES}
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["id"] not in wanted:
                continue
            title, text = record["title"] or "", record["text"] or ""
            article = Article(record["id"], title, text, ArticleSource.FEED_CONTENT)
            alerts = {m.rule for m in matcher.match(article)}
            for rule, baseline in BASELINES.items():
                if record["id"] in LABELS[rule]:
                    found[rule][record["id"]] = (rule in alerts, baseline(f"{title}\n{text}"))
    return found


@pytest.mark.parametrize(
    ("rule", "min_precision", "min_recall"),
    [("venezuela", 0.85, 0.85), ("ukraine-peace", 0.8, 0.8)],
)
def test_rules_beat_the_keyword_baseline(
    verdicts: dict[str, dict[str, tuple[bool, bool]]],
    rule: str,
    min_precision: float,
    min_recall: float,
) -> None:
    truth = LABELS[rule]
    assert set(verdicts[rule]) == set(truth), "labelled records missing from the corpus"
    ours = precision_recall({k: v[0] for k, v in verdicts[rule].items()}, truth)
    base = precision_recall({k: v[1] for k, v in verdicts[rule].items()}, truth)
    print(
        f"{rule}: rules P={ours[0]:.2f} R={ours[1]:.2f}; baseline P={base[0]:.2f} R={base[1]:.2f}"
    )
    assert ours[0] >= min_precision and ours[1] >= min_recall
    assert ours[0] >= base[0] + 0.3  # far above the keyword filter's precision
    assert ours[1] >= base[1]  # without losing its recall
