"""Alert composition cost: quotes, terms and rendering for real corpus articles that match.

    .venv/bin/python bench/compose.py [--rounds 5]

Matches the shipped rules against ../shared/corpus/news/articles_ukraine_dev.jsonl (or
/work/shared/...), then times build_payload + render over the matching articles, per round.
Prints one JSON line per round and the median per article; the NLP matching is done once,
before timing, since it is measured by bench/pipeline.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from _common import emit, machine

from watcher.alerts.compose import build_payload, render
from watcher.config import NlpSettings
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import load_rules
from watcher.types import Article, ArticleSource, Match

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "corpus/news/articles_ukraine_dev.jsonl"


def matched_articles() -> list[tuple[Article, list[Match]]]:
    path = next(
        p / CORPUS for p in (ROOT.parent / "shared", Path("/work/shared")) if (p / CORPUS).exists()
    )
    rules = load_rules(ROOT / "rules")
    matcher = Matcher(rules, Analyzer(NlpSettings(), rules))
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        article = Article(url=row["url"] or "https://x.example", title=row["title"] or "",
                          text=row["text"], source=ArticleSource.FILE)  # fmt: skip
        matches = matcher.match(article)
        if matches:
            found.append((article, matches))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    cases = matched_articles()
    tz = ZoneInfo("UTC")
    per_article = []
    for i in range(rounds):
        started = time.perf_counter()
        for article, matches in cases:
            render(build_payload(article, matches, source="corpus", quotes=3), tz=tz)
        ms = (time.perf_counter() - started) * 1000 / len(cases)
        per_article.append(ms)
        emit({"round": i + 1, "articles": len(cases), "ms_per_article": round(ms, 2)})
    emit({"machine": machine(), "median_ms_per_article": round(statistics.median(per_article), 2)})


if __name__ == "__main__":
    main()
