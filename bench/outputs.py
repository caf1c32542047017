"""What the engine outputs on bench/pipeline.py's pages, to check a speed change leaves it alone.

    .venv/bin/python bench/outputs.py --out /tmp/before.jsonl     # on the old commit
    .venv/bin/python bench/outputs.py --against /tmp/before.jsonl  # on the new one

The pages and rule sets are bench/pipeline.py's (off-topic and on-topic streams, the 2
example rules and the 1,000 rules naming the corpus's most frequent entities), read from
../shared/corpus at run time. For each page and rule set it writes one JSON line: the page,
and per matching rule its score and each evidence item's term, field, offsets and entity
label (offsets, not text: no corpus text is written). Time is fixed, so max_age cannot
differ between runs. ``--against`` compares with an earlier output and prints the pages
whose matches differ, then exits 1 if any do. ``--entities FILE`` keeps the drawn entities
between runs (drawing them runs spaCy over 900 records: about 30 s).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pipeline as bench

from watcher.config import NlpSettings
from watcher.rules.worker import process_entry

_NOW = datetime(2026, 12, 6, tzinfo=UTC)


def entities(count: int, cache: Path | None) -> list[tuple[str, str]]:
    if cache is not None and cache.is_file():
        return [(name, label) for name, label in json.loads(cache.read_text(encoding="utf-8"))]
    found = bench.frequent_entities(count)
    if cache is not None:
        cache.write_text(json.dumps(found), encoding="utf-8")
    return found


def outputs(pages: int, rules: int, cache: Path | None) -> list[dict[str, Any]]:
    off, on = bench.topic_pages(pages)
    lines = []
    for key, ruleset in bench.rule_sets(entities(rules, cache)).items():
        for page in off + on:
            found = process_entry(bench.job_for(page), ruleset, NlpSettings(), _NOW).matches
            lines.append({"rules": key, "page": page.name, "matches": [_match(m) for m in found]})
    return lines


def _match(match: Any) -> list[Any]:
    evidence = [[e.term, e.where, e.start, e.end, e.entity_label] for e in match.evidence]
    return [match.rule, round(match.score, 6), evidence]


def compare(new: list[dict[str, Any]], old_path: Path) -> int:
    old = [json.loads(line) for line in old_path.read_text(encoding="utf-8").splitlines()]
    before = {(o["rules"], o["page"]): o["matches"] for o in old}
    differ = [n for n in new if before.get((n["rules"], n["page"])) != n["matches"]]
    for n in differ[:20]:
        print(f"{n['rules']} {n['page']}:")
        for line in _differences(before.get((n["rules"], n["page"])) or [], n["matches"]):
            print(f"  {line}")
    matched = sum(bool(n["matches"]) for n in new)
    print(f"{len(new)} entries, {matched} with matches: {len(differ)} differ")
    return 1 if differ else 0


def _differences(old: list[Any], new: list[Any]) -> list[str]:
    """Per rule: matched on one side only, or its score or evidence items changed."""
    was, now = {m[0]: m for m in old}, {m[0]: m for m in new}
    lines = [f"{rule}: only before" for rule in was.keys() - now.keys()]
    lines += [f"{rule}: only after" for rule in now.keys() - was.keys()]
    for rule in sorted(was.keys() & now.keys()):
        (_, score_a, items_a), (_, score_b, items_b) = was[rule], now[rule]
        if score_a != score_b:
            lines.append(f"{rule}: score {score_a} -> {score_b}")
        changed = [(a, b) for a, b in zip(items_a, items_b, strict=False) if a != b]
        lines += [f"{rule}: {a} -> {b}" for a, b in changed[:5]]
        if len(items_a) != len(items_b):
            lines.append(f"{rule}: {len(items_a)} -> {len(items_b)} evidence items")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=150, help="pages per stream (150)")
    parser.add_argument("--rules", type=int, default=1000, help="generated rules (1000)")
    parser.add_argument("--entities", type=Path, help="keep the drawn entities in this file")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the outputs here (JSON lines)")
    target.add_argument("--against", type=Path, help="compare with an earlier --out")
    args = parser.parse_args()
    if not (bench.CORPUS / "news").is_dir():
        print(f"corpus not found at {bench.CORPUS}: nothing to compare")
        return 0
    lines = outputs(args.pages, args.rules, args.entities)
    if args.against is not None:
        return compare(lines, args.against)
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} entries written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
