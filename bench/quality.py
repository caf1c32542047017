"""Alert quality of the example rules on the hand-labelled dev set, against two keyword baselines.

    .venv/bin/python bench/quality.py [--system engine|regex|regex3 ...] [--counts] [--json]
                                      [--errors] [--by-dataset] [--rules DIR]

tests/data/devset.jsonl holds record ids of ../shared/corpus/news and a verdict per example
rule, given by reading the text (docs/devset.md): ``main`` (the article is about the topic),
``passing`` (the topic is mentioned, the article is about something else) or ``none``. The
texts are joined from the corpus at run time; the repository keeps no corpus text.

Systems:

* ``engine``: watcher's own rules engine on rules/*.yaml, loaded and wired exactly as
  ``watcher explain`` does (``load_rules`` -> ``Analyzer`` -> ``Matcher``), one article per
  record (title + text);
* ``regex``: a keyword regex per rule (below), alert on one mention;
* ``regex3``: the same regex, alert on three mentions or more.

Figures per rule:

* lenient: ``passing`` records are left out; precision over alerts on ``main`` + ``none``,
  recall over ``main``;
* strict: ``passing`` records count as negatives (an alert on one is a false alert);
  recall is still over ``main``.

Prints a table (or JSON lines with ``--json``); ``--counts`` prints the verdict counts per rule
by dataset and language; ``--errors`` lists each miss and false alert with the labeller's note;
``--by-dataset`` splits the counts per corpus dataset. Exits 0 with a note when the corpus is
absent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEVSET = ROOT / "tests" / "data" / "devset.jsonl"


def _news_dir() -> Path:
    """../shared/corpus/news beside the checkout; a git worktree sits one level deeper."""
    for base in ROOT.parents:
        if (base / "shared" / "corpus" / "news").is_dir():
            return base / "shared" / "corpus" / "news"
    return ROOT.parent / "shared" / "corpus" / "news"


NEWS = _news_dir()
RULES = ROOT / "rules"
RULE_NAMES = ("venezuela", "ukraine-peace")
VERDICTS = ("main", "passing", "none")
SYSTEMS = ("engine", "regex", "regex3")
CORPUS_FILES = ("articles.jsonl", "articles_ukraine_dev.jsonl")

# The keyword baselines: what a user would type into a plain keyword alert.
_VENEZUELA = re.compile(
    r"\b(?:venezuel\w*|venezolan\w*|maduro|caracas|ch[aá]vez|chavis\w*|bolivarian\w*)\b",
    re.IGNORECASE,
)
_UKRAINE = re.compile(r"\b(?:ukrain\w*|ucrania\w*|kyiv|kiev|zelensk\w*)", re.IGNORECASE)
_TALKS = re.compile(
    r"\b(?:peace|talks|negotiat\w*|ceasefire|cease-fire|truce|envoys?|"
    r"paz|negociaci\w*|tregua|alto el fuego)\b",
    re.IGNORECASE,
)


def regex_mentions(rule: str, text: str) -> int:
    """Mentions the keyword baseline sees: for ukraine-peace, the lesser of the two counts,
    so that three mentions means three of Ukraine and three of the talks."""
    if rule == "venezuela":
        return len(_VENEZUELA.findall(text))
    return min(len(_UKRAINE.findall(text)), len(_TALKS.findall(text)))


PICKED = "picked"


class CorpusMissing(Exception):
    """../shared/corpus/news is not on this machine."""


@dataclass(frozen=True)
class Label:
    id: str
    file: str
    verdicts: Mapping[str, str]  # rule -> main | passing | none
    note: str = ""
    # The first reading's verdicts where a record was read twice (see docs/devset.md).
    first: Mapping[str, str] = field(default_factory=dict)
    # How the record was drawn: "picked" (on purpose, from the hard parts of the corpus) or
    # the name of a random draw ("random-2026-12"); see docs/devset.md, Sampling.
    sample: str = PICKED


@dataclass(frozen=True)
class Record:
    label: Label
    dataset: str
    lang: str
    title: str
    text: str


@dataclass(frozen=True)
class Scores:
    """Confusion counts of one system on one rule, and the figures derived from them."""

    hits: int  # alerts on main
    missed: int  # main without an alert
    false_none: int  # alerts on none
    false_passing: int  # alerts on passing (false alerts only in the strict reading)
    quiet_passing: int  # passing without an alert

    @property
    def lenient_precision(self) -> float:
        return _ratio(self.hits, self.hits + self.false_none)

    @property
    def strict_precision(self) -> float:
        return _ratio(self.hits, self.hits + self.false_none + self.false_passing)

    @property
    def recall(self) -> float:
        return _ratio(self.hits, self.hits + self.missed)

    @property
    def lenient_f1(self) -> float:
        return _f1(self.lenient_precision, self.recall)

    @property
    def strict_f1(self) -> float:
        return _f1(self.strict_precision, self.recall)

    def figures(self) -> dict[str, float | int]:
        return asdict(self) | {
            "lenient_precision": round(self.lenient_precision, 4),
            "lenient_recall": round(self.recall, 4),
            "lenient_f1": round(self.lenient_f1, 4),
            "strict_precision": round(self.strict_precision, 4),
            "strict_recall": round(self.recall, 4),
            "strict_f1": round(self.strict_f1, 4),
        }


def _ratio(a: int, b: int) -> float:
    # No alert at all is precision 1.0 (nothing false was sent); recall then shows the cost.
    return a / b if b else 1.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def load_labels(path: Path = DEVSET, *, first_reading: bool = False) -> list[Label]:
    """The dev set; raises ValueError naming the line on a malformed or duplicate record.
    ``first_reading``: the first reader's verdicts where a record was read twice."""
    labels: list[Label] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        verdicts = {rule: raw[rule] for rule in RULE_NAMES}
        first = {rule: v for rule, v in raw.get("first", {}).items() if rule in RULE_NAMES}
        if raw["id"] in seen or raw["file"] not in CORPUS_FILES:
            raise ValueError(f"{path}:{number}: duplicate id or unknown file {raw['file']!r}")
        if any(v not in VERDICTS for v in [*verdicts.values(), *first.values()]):
            raise ValueError(f"{path}:{number}: verdicts must be one of {VERDICTS}")
        seen.add(raw["id"])
        note, sample = raw.get("note", ""), raw.get("sample", PICKED)
        label = Label(raw["id"], raw["file"], verdicts, note, first, sample)
        labels.append(replace(label, verdicts=verdicts | first) if first_reading else label)
    return labels


def agreement(labels: Iterable[Label], rule: str) -> tuple[int, float, float]:
    """Records read twice for ``rule``, the share where both readings agree on "main or
    not", and Cohen's kappa of that agreement."""
    pairs = [
        (lb.verdicts[rule] == "main", lb.first[rule] == "main") for lb in labels if rule in lb.first
    ]
    if not pairs:
        return 0, 1.0, 1.0
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    p_final, p_first = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    expected = p_final * p_first + (1 - p_final) * (1 - p_first)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
    return n, observed, kappa


def load_records(labels: Sequence[Label], news: Path = NEWS) -> list[Record]:
    """Joins the labels with the corpus text; CorpusMissing if the corpus is absent,
    LookupError naming the ids the corpus does not have."""
    if not all((news / name).is_file() for name in CORPUS_FILES):
        raise CorpusMissing(f"{news} is not present")
    wanted = {(label.file, label.id): label for label in labels}
    found: dict[str, Record] = {}
    for name in CORPUS_FILES:
        with (news / name).open(encoding="utf-8") as lines:
            for line in lines:
                raw = json.loads(line)
                label = wanted.get((name, raw["id"]))
                if label is not None:
                    found[label.id] = Record(
                        label, raw["dataset"], raw["lang"], raw["title"] or "", raw["text"] or ""
                    )
    missing = [label.id for label in labels if label.id not in found]
    if missing:
        raise LookupError(f"{len(missing)} labelled ids are not in {news}: {missing[:5]}")
    return [found[label.id] for label in labels]


Alerts = dict[str, frozenset[str]]  # record id -> rules that alerted


def regex_alerts(records: Iterable[Record], min_mentions: int = 1) -> Alerts:
    return {
        r.label.id: frozenset(
            rule
            for rule in RULE_NAMES
            if regex_mentions(rule, f"{r.title}\n{r.text}") >= min_mentions
        )
        for r in records
    }


def engine_alerts(records: Iterable[Record], rules_dir: Path = RULES) -> Alerts:
    """watcher's engine, wired as ``watcher explain`` wires it (watcher/cli.py ``_matcher``)."""
    from watcher.config import load_config
    from watcher.rules.match import Matcher
    from watcher.rules.nlp import Analyzer
    from watcher.rules.schema import load_rules
    from watcher.types import Article, ArticleSource

    # Built-in defaults only, so a WATCHER_CONFIG in the environment cannot change the figures.
    config = load_config(None, env={})
    ruleset = load_rules(rules_dir)
    matcher = Matcher(ruleset, Analyzer(config.nlp, ruleset))
    alerts: Alerts = {}
    for r in records:
        article = Article(r.label.id, r.title, r.text, ArticleSource.FEED_CONTENT)
        alerts[r.label.id] = frozenset(m.rule for m in matcher.match(article))
    return alerts


def score(records: Iterable[Record], alerts: Alerts, rule: str) -> Scores:
    counts: Counter[tuple[str, bool]] = Counter(
        (r.label.verdicts[rule], rule in alerts[r.label.id]) for r in records
    )
    return Scores(
        hits=counts["main", True],
        missed=counts["main", False],
        false_none=counts["none", True],
        false_passing=counts["passing", True],
        quiet_passing=counts["passing", False],
    )


_RUNNERS: dict[str, Callable[[Sequence[Record], Path], Alerts]] = {
    "engine": engine_alerts,
    "regex": lambda records, _: regex_alerts(records, 1),
    "regex3": lambda records, _: regex_alerts(records, 3),
}


def evaluate(
    systems: Sequence[str] = SYSTEMS,
    *,
    devset: Path = DEVSET,
    news: Path = NEWS,
    rules_dir: Path = RULES,
    records: Sequence[Record] | None = None,
) -> dict[str, dict[str, Scores]]:
    """system -> rule -> Scores on the dev set. Raises CorpusMissing when the corpus is absent."""
    if records is None:
        records = load_records(load_labels(devset), news)
    return {
        system: {rule: score(records, alerts, rule) for rule in RULE_NAMES}
        for system in systems
        for alerts in [_RUNNERS[system](records, rules_dir)]
    }


def verdict_counts(records: Iterable[Record]) -> Counter[tuple[str, str, str, str]]:
    """(rule, verdict, dataset, lang) -> records."""
    return Counter(
        (rule, r.label.verdicts[rule], r.dataset, r.lang) for r in records for rule in RULE_NAMES
    )


def _print_counts(records: Sequence[Record]) -> None:
    counts = verdict_counts(records)
    groups = sorted({(d, lang) for _, _, d, lang in counts})
    print(f"{len(records)} records")
    for rule in RULE_NAMES:
        print(f"\n{rule:<38}" + "".join(f"{v:>9}" for v in VERDICTS))
        for dataset, lang in groups:
            row = [counts[rule, v, dataset, lang] for v in VERDICTS]
            print(f"  {dataset + ' (' + lang + ')':<36}" + "".join(f"{n:>9}" for n in row))
        total = [sum(counts[rule, v, d, lang] for d, lang in groups) for v in VERDICTS]
        print(f"  {'total':<36}" + "".join(f"{n:>9}" for n in total))


def _print_errors(system: str, records: Sequence[Record], alerts: Alerts) -> None:
    """The records a system gets wrong, with the labeller's note: where to look when tuning."""
    for rule in RULE_NAMES:
        for r in records:
            verdict, alerted = r.label.verdicts[rule], rule in alerts[r.label.id]
            if (verdict == "main") != alerted:
                kind = "missed" if verdict == "main" else f"alert on {verdict}"
                print(f"{system} {rule} {kind:<16} {r.label.id}  {r.label.note}")


def _print_by_dataset(system: str, records: Sequence[Record], alerts: Alerts) -> None:
    """Where the errors come from: the same confusion counts, per corpus dataset."""
    for dataset in sorted({r.dataset for r in records}):
        subset = [r for r in records if r.dataset == dataset]
        for rule in RULE_NAMES:
            s = score(subset, alerts, rule)
            print(
                f"{system} {rule:<14} {dataset:<30} main {s.hits}/{s.hits + s.missed}, "
                f"alerts on passing {s.false_passing}/{s.false_passing + s.quiet_passing}, "
                f"on none {s.false_none}"
            )


def _print_table(results: Mapping[str, Mapping[str, Scores]], seconds: Mapping[str, float]) -> None:
    head = ["system", "rule", "len P", "len R", "len F1", "str P", "str R", "str F1"]
    print(f"{head[0]:<8} {head[1]:<14}" + "".join(f"{h:>8}" for h in head[2:]) + "  alerts on")
    for system, by_rule in results.items():
        for rule, s in by_rule.items():
            row = f"{system:<8} {rule:<14}" + "".join(f"{f:>8}" for f in _shown(s))
            main_ = f"main {s.hits}/{s.hits + s.missed}"
            print(f"{row}  {main_}, passing {s.false_passing}, none {s.false_none}")
        print(f"{'':<8} ({seconds[system]:.1f} CPU s)")


def _shown(s: Scores) -> list[str]:
    """The table's six figures; "-" where there is nothing to measure (no main record, or no
    alert), rather than the 1.0 that the figures count as."""
    alerts_lenient, alerts_strict = s.hits + s.false_none, s.hits + s.false_none + s.false_passing
    mains = s.hits + s.missed

    def show(value: float, *counts: int) -> str:
        return f"{value:.3f}" if all(counts) else "-"

    recall = show(s.recall, mains)
    return [
        show(s.lenient_precision, alerts_lenient), recall,
        show(s.lenient_f1, alerts_lenient, mains),
        show(s.strict_precision, alerts_strict), recall, show(s.strict_f1, alerts_strict, mains),
    ]  # fmt: skip


def _print_agreement(labels: Sequence[Label]) -> None:
    for rule in RULE_NAMES:
        n, observed, kappa = agreement(labels, rule)
        if n:
            print(
                f"{rule}: {n} records read twice, the readings agree on main-or-not for "
                f"{observed:.0%} (Cohen's kappa {kappa:.2f})"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", action="append", choices=SYSTEMS, help="default: all")
    parser.add_argument("--rules", type=Path, default=RULES, help="rules folder (default rules/)")
    parser.add_argument("--counts", action="store_true", help="verdict counts per dataset, lang")
    parser.add_argument("--json", action="store_true", help="one JSON line per system and rule")
    parser.add_argument("--errors", action="store_true", help="list misses and false alerts")
    parser.add_argument("--by-dataset", action="store_true", help="figures per corpus dataset")
    parser.add_argument(
        "--first-reading",
        action="store_true",
        help="score against the first reader's verdicts on records read twice",
    )
    parser.add_argument(
        "--sample",
        help=f"only the records of one sample: {PICKED!r} or a random draw's name "
        "(random-2026-12, random-2026-12b to random-2026-12f); default: all",
    )
    args = parser.parse_args(argv)
    labels = load_labels(first_reading=args.first_reading)
    samples = sorted({label.sample for label in labels})
    if args.sample is not None and args.sample not in samples:
        parser.error(f"--sample {args.sample!r}: the dev set has the samples {samples}")
    if args.sample is not None:
        labels = [label for label in labels if label.sample == args.sample]
    try:
        records = load_records(labels)
    except CorpusMissing as exc:
        print(f"quality: skipped, {exc}")
        return 0
    if args.counts:
        _print_counts(records)
        return 0
    results: dict[str, dict[str, Scores]] = {}
    seconds: dict[str, float] = {}
    for system in args.system or SYSTEMS:
        started = time.process_time()
        alerts = _RUNNERS[system](records, args.rules)
        results[system] = {rule: score(records, alerts, rule) for rule in RULE_NAMES}
        seconds[system] = time.process_time() - started
        if args.errors:
            _print_errors(system, records, alerts)
        if args.by_dataset:
            _print_by_dataset(system, records, alerts)
    if args.json:
        for system, by_rule in results.items():
            for rule, s in by_rule.items():
                line = {"system": system, "rule": rule, "records": len(records)} | s.figures()
                print(json.dumps(line | {"cpu_s": round(seconds[system], 2)}))
    else:
        reading = ", first reading" if args.first_reading else ""
        reading += f", sample {args.sample}" if args.sample else ""
        print(f"dev set: {len(records)} records, {DEVSET.relative_to(ROOT)}{reading}")
        _print_table(results, seconds)
        _print_agreement([record.label for record in records])
    return 0


if __name__ == "__main__":
    sys.exit(main())
