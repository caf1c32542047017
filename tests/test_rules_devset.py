"""The example rules against the hand-labelled dev set (tests/data/devset.jsonl, docs/devset.md).

The evaluation itself lives in bench/quality.py (``evaluate``), which also prints the keyword
baselines; here it runs on watcher's engine and fails below the targets of issue 10 minus a
small margin: per example rule, strict precision and recall >= 0.87, lenient F1 >= 0.93.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", REPO / "bench" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


quality = _load_quality()
HAVE_CORPUS = all((quality.NEWS / name).is_file() for name in quality.CORPUS_FILES)
needs_corpus = pytest.mark.skipif(not HAVE_CORPUS, reason="../shared/corpus is not present")


def test_devset_labels_are_well_formed() -> None:
    labels = quality.load_labels()
    assert len(labels) >= 420
    assert len({label.id for label in labels}) == len(labels)
    for rule in quality.RULE_NAMES:
        main = [label for label in labels if label.verdicts[rule] == "main"]
        passing = [label for label in labels if label.verdicts[rule] == "passing"]
        assert len(main) >= 20 and len(passing) >= 20, rule  # both kinds of case are covered
    samples = {label.sample for label in labels}
    # docs/devset.md names each sample and its size
    draws = {f"random-2026-12{suffix}" for suffix in ("", "b", "c", "d", "e", "f")}
    assert samples == {quality.PICKED, *draws}
    assert sum(label.sample == "random-2026-12" for label in labels) == 251
    assert sum(label.sample == "random-2026-12b" for label in labels) == 190
    assert sum(label.sample == "random-2026-12c" for label in labels) == 189
    assert sum(label.sample == "random-2026-12d" for label in labels) == 197
    assert sum(label.sample == "random-2026-12e" for label in labels) == 189
    assert sum(label.sample == "random-2026-12f" for label in labels) == 197


def test_quality_scores_one_sample_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not HAVE_CORPUS:
        pytest.skip("../shared/corpus is not present")
    assert quality.main(["--counts", "--sample", "random-2026-12"]) == 0
    assert capsys.readouterr().out.startswith("251 records")
    with pytest.raises(SystemExit) as refused:
        quality.main(["--sample", "random-2099"])
    assert refused.value.code == 2


def test_lenient_and_strict_figures_on_known_counts() -> None:
    def record(rid: str, verdict: str) -> Any:
        label = quality.Label(
            rid, "articles.jsonl", {"venezuela": verdict, "ukraine-peace": "none"}
        )
        return quality.Record(label, "test", "en", "", "")

    verdicts = ["main"] * 4 + ["passing"] * 3 + ["none"] * 3
    records = [record(f"r{i}", v) for i, v in enumerate(verdicts)]
    # alerts on 3 of 4 main, 2 of 3 passing, 1 of 3 none
    alerted = {"r0", "r1", "r2", "r4", "r5", "r7"}
    alerts = {
        r.label.id: frozenset({"venezuela"} if r.label.id in alerted else ()) for r in records
    }
    s = quality.score(records, alerts, "venezuela")
    assert (s.hits, s.missed, s.false_passing, s.quiet_passing, s.false_none) == (3, 1, 2, 1, 1)
    assert s.lenient_precision == pytest.approx(3 / 4)
    assert s.strict_precision == pytest.approx(3 / 6)
    assert s.recall == pytest.approx(3 / 4)
    assert s.lenient_f1 == pytest.approx(0.75)
    assert s.strict_f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    assert quality.score(records, alerts, "ukraine-peace").lenient_precision == 1.0  # no alerts


def test_the_table_shows_a_dash_where_there_is_nothing_to_measure() -> None:
    nothing = quality.Scores(hits=0, missed=0, false_none=0, false_passing=0, quiet_passing=3)
    assert quality._shown(nothing) == ["-"] * 6
    missed_all = quality.Scores(hits=0, missed=4, false_none=0, false_passing=1, quiet_passing=0)
    assert quality._shown(missed_all) == ["-", "0.000", "-", "0.000", "0.000", "0.000"]


def test_records_read_twice_keep_both_readings(tmp_path: Path) -> None:
    lines = [
        {
            "id": "a",
            "file": "articles.jsonl",
            "venezuela": "main",
            "ukraine-peace": "none",
            "first": {"venezuela": "passing"},
        },
        {
            "id": "b",
            "file": "articles.jsonl",
            "venezuela": "main",
            "ukraine-peace": "none",
            "first": {"venezuela": "main"},
        },
        {"id": "c", "file": "articles.jsonl", "venezuela": "none", "ukraine-peace": "none"},
    ]
    path = tmp_path / "devset.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    final = quality.load_labels(path)
    first = quality.load_labels(path, first_reading=True)
    assert [lb.verdicts["venezuela"] for lb in final] == ["main", "main", "none"]
    assert [lb.verdicts["venezuela"] for lb in first] == ["passing", "main", "none"]
    n, observed, kappa = quality.agreement(final, "venezuela")
    assert (n, observed) == (2, 0.5)
    assert kappa == pytest.approx(0.0)  # p_final 1.0, p_first 0.5: agreement is chance
    bad = dict(lines[0], first={"venezuela": "maybe"})
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ValueError):
        quality.load_labels(path)


def test_keyword_baselines_count_mentions() -> None:
    # the baseline is naive on purpose: the fruit counts as a mention
    assert quality.regex_mentions("venezuela", "Maduro spoke in Caracas; plátano maduro") == 3
    assert quality.regex_mentions("venezuela", "tomates maduros") == 0
    text = "Ukraine and Russia held talks. Kyiv wants peace. Zelensky met envoys."
    assert quality.regex_mentions("ukraine-peace", text) == 3
    assert quality.regex_mentions("ukraine-peace", "Peace talks in Gaza") == 0


@pytest.mark.corpus
@needs_corpus
def test_devset_ids_resolve_in_the_corpus() -> None:
    records = quality.load_records(quality.load_labels())
    assert all(r.text.strip() for r in records)


@pytest.fixture(scope="module")
def engine_scores() -> dict[str, Any]:
    return dict(quality.evaluate(["engine"])["engine"])


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
@pytest.mark.parametrize("rule", ["venezuela", "ukraine-peace"])
def test_engine_meets_the_quality_targets(engine_scores: dict[str, Any], rule: str) -> None:
    scores = engine_scores[rule]
    print(f"{rule}: {scores.figures()}")
    assert scores.recall >= 0.87
    assert scores.lenient_f1 >= 0.93
    # venezuela: 0.909 on the whole set, because 1,153 of its 1,789 records are random
    # Venezuelan headlines, where the rule is precise; 0.79 on the picked records alone. The
    # false alerts are mostly solidarity-campaign pages about the campaign's own business,
    # labelled passing (81, in the picked records and the first draw; docs/quality.md).
    assert scores.strict_precision >= 0.87
