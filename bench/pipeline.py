"""Article pipeline benchmark: watcher's extract+match against trafilatura alone, per stream.

    .venv/bin/python bench/pipeline.py [--pages 150] [--rules 1000] [--rounds 5] [--no-quality]

Three streams of HTML pages, read from ../shared/corpus at run time (nothing is copied):

* ``off-topic``: the real news pages of corpus/articles (scrapinghub_aeb and newspaper);
* ``on-topic``: news about Venezuela or Ukraine from corpus/news (records whose title or
  text names Venezuela, Maduro, Ukraine, Kyiv or Zelensky, 800+ characters), each rendered
  into a page since the corpus keeps
  their text, not their HTML;
* ``mixed``: the two interleaved, half and half.

Two rule sets: the 2 example rules (rules/), and those plus ``--rules`` generated rules that
name real, frequent people, places and organisations: the entities spaCy finds most often in
a sample of corpus/news, drawn at run time (never written to the repository). A person gets
``types: [PERSON]`` and a surname alias (as a rule writer would do), every rule a group of
topic words in English and Spanish and ``near`` logic.

Modes, per stream: ``trafilatura`` (``trafilatura.extract`` with the options watcher passes,
the baseline), ``trafilatura-metadata`` (the same with ``with_metadata=True``: printed as
context, since watcher also needs a page's title, author and site; never a target's
baseline), ``watcher-2`` and ``watcher-N`` (``process_entry``: extraction, fallback,
language, prefilter, windows, NER where needed, verdicts). A job carries what the pipeline
passes from a feed item: the record's title, and a date in the share of real feed items
that have one (corpus/feeds/real_news_feeds, parsed at run time); a worker then skips the
page's date search. Each rule set's matcher is built before the clock starts, as a worker
builds it once per rules version. The modes alternate within each
round (A/B/C, then again), and the median CPU time per article of ``--rounds`` rounds
counts: CPU time is what other load on a shared machine distorts least. Then: the share of
articles analysed past the prefilter and the share that reached the statistical NER; the
peak RSS (VmHWM) of two pool workers that ran the on-topic stream with every rule; bounded
cases (1 MB of one repeated name, 10,000 sentences, no sentence boundary); and the dev-set
quality figures of bench/quality.py. Prints JSON lines, then a summary with the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import emit, machine, peak_rss_mb, pid_after

from watcher.articles.extract import _OPTIONS
from watcher.config import NlpSettings
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer
from watcher.rules.schema import RuleSet, load_rules
from watcher.rules.worker import EntryJob, matcher_for, process_entry
from watcher.types import Article, ArticleSource
from watcher.workers import CpuPool

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = {
    "on-topic 1000 rules / trafilatura": 0.8,
    "1000 rules / 2 rules (every stream)": 0.85,
    "worker peak RSS MB (at most)": 300,
}
_ON_TOPIC = re.compile(r"venezuel|maduro|ukrain|kyiv|kiev|zelensk", re.IGNORECASE)


def shared_dir() -> Path:
    """../shared beside the checkout; a git worktree sits one level deeper."""
    for base in ROOT.parents:
        if (base / "shared" / "corpus").is_dir():
            return base / "shared"
    return ROOT.parent / "shared"


CORPUS = shared_dir() / "corpus"


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    html: bytes
    title: str = ""  # what a feed item would say: the corpus record's title and date
    published: datetime | None = None


def off_topic_pages(limit: int) -> list[Page]:
    import gzip

    pages = []
    aeb = CORPUS / "articles" / "scrapinghub_aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for path in sorted((aeb / "html").glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        url = truth.get(key, {}).get("url") or f"https://aeb.example/{key}"
        pages.append(Page(path.name, url, gzip.decompress(path.read_bytes())))
    for path in sorted((CORPUS / "articles" / "newspaper" / "html").glob("*.html")):
        pages.append(Page(path.name, f"https://newspaper.example/{path.stem}", path.read_bytes()))
    return pages[::2][:limit]


def news_records(on_topic: bool) -> Iterator[dict[str, Any]]:
    for name in ("articles.jsonl", "articles_ukraine_dev.jsonl"):
        with (CORPUS / "news" / name).open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                text, title = record.get("text") or "", record.get("title") or ""
                if len(text) >= 800 and bool(_ON_TOPIC.search(f"{title}\n{text}")) == on_topic:
                    yield record


def topic_pages(count: int) -> tuple[list[Page], list[Page]]:
    """``count`` off-topic pages, and as many on-topic news records set in them."""
    off = off_topic_pages(count)
    records = [r for r, _ in zip(news_records(True), range(count), strict=False)]
    return off, [render_page(r, off[i % len(off)]) for i, r in enumerate(records)]


def render_page(record: dict[str, Any], template: Page) -> Page:
    """The record's title and text in a real page of the off-topic stream: its main block's
    paragraphs are replaced, so scripts, navigation and boilerplate keep their real weight."""
    import lxml.html

    tree = lxml.html.fromstring(template.html)
    blocks = [e for e in tree.iter() if isinstance(e.tag, str) and e.find("p") is not None]
    main = max(blocks, key=_paragraph_chars) if blocks else tree.find("body")
    if main is None:
        main = tree
    for p in main.findall("p"):
        main.remove(p)
    for text in [t.strip() for t in (record.get("text") or "").split("\n") if t.strip()]:
        paragraph = lxml.html.Element("p")
        paragraph.text = text
        main.append(paragraph)
    for title in tree.iter("title", "h1"):
        title.text = record.get("title") or ""
    url = f"https://news.example/{record['id'].replace(':', '/')}"
    html = lxml.html.tostring(tree, encoding="utf-8")
    return Page(record["id"], url, html, record.get("title") or "", _record_date(record))


def _record_date(record: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(record.get("date") or "").replace(tzinfo=UTC)
    except ValueError:
        return None


def _paragraph_chars(element: Any) -> int:
    return sum(len(p.text_content()) for p in element.findall("p"))


def feed_date_share() -> float:
    """The share of real feed items that carry a date (corpus/feeds/real_news_feeds, parsed
    as the daemon parses them): the bench's jobs carry one in the same share, as the
    pipeline passes the item's date to the worker (the page's date is only a fallback)."""
    from watcher.feeds.parse import parse_feed

    dated = entries = 0
    for path in sorted((CORPUS / "feeds" / "real_news_feeds").rglob("*")):
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        try:
            parsed = parse_feed(path.read_bytes(), url="https://feeds.example/feed")
        except Exception:  # not a feed, or one the daemon would reject: not counted
            continue
        entries += len(parsed.entries)
        dated += sum(e.published is not None for e in parsed.entries)
    return dated / entries if entries else 0.0


def with_feed_dates(pages: list[Page], share: float, now: datetime) -> list[Page]:
    """The pages, a ``share`` of them (a fixed choice, by name) carrying an item date: the
    record's where the corpus has one, else ``now``."""
    import dataclasses
    import zlib

    def dated(page: Page) -> bool:
        return zlib.crc32(page.name.encode()) % 1000 < share * 1000

    return [
        dataclasses.replace(page, published=page.published or now) if dated(page)
        else dataclasses.replace(page, published=None)
        for page in pages
    ]  # fmt: skip


def job_for(page: Page) -> EntryJob:
    return EntryJob(
        url=page.url,
        html=page.html,
        fetch_error="",
        feed_title=page.title,
        feed_content="",
        feed_summary="",
        published=page.published,
        feed_name="bench",
        feed_tags=(),
        language_hint="",
        min_text_chars=300,
    )


# --- rules naming the corpus's own frequent entities ------------------------------------

_TOPICS_EN = """sanction election protest strike merger lawsuit indictment bribery ceasefire coup
resignation impeachment tariff boycott espionage extradition bankruptcy outbreak earthquake
flood wildfire kidnapping referendum blockade corruption arrest verdict pardon deportation
riot hostage scandal default subsidy summit treaty investigation budget""".split()  # noqa: SIM905
_TOPICS_ES = """sanción elección protesta huelga fusión demanda imputación soborno tregua golpe
dimisión destitución arancel boicot espionaje extradición quiebra brote terremoto inundación
incendio secuestro referéndum bloqueo corrupción detención veredicto indulto deportación
disturbio rehén escándalo impago subsidio cumbre tratado investigación presupuesto""".split()  # noqa: SIM905
_LABELS = {"PERSON": "PERSON", "GPE": "GPE", "ORG": "ORG", "NORP": "NORP"}


def frequent_entities(count: int, sample: int = 900) -> list[tuple[str, str]]:
    """The ``count`` entities spaCy finds most often in a sample of corpus/news (name, label)."""
    import spacy

    nlp = spacy.load(NlpSettings().model, exclude=["parser", "tagger", "lemmatizer"])
    texts = [
        f"{r.get('title') or ''}\n{(r.get('text') or '')[:1500]}"
        for i, r in enumerate(news_records(False))
        if i % 3 == 0 and (r.get("lang") or "en") == "en"
    ][:sample]
    counts: Counter[tuple[str, str]] = Counter()
    for doc in nlp.pipe(texts, batch_size=32):
        for ent in doc.ents:
            name = " ".join(ent.text.split())
            if ent.label_ in _LABELS and 3 <= len(name) <= 40 and name[0].isupper():
                counts[name, ent.label_] += 1
    seen: set[str] = set()
    found = []
    for (name, label), _ in counts.most_common():
        if name.casefold() not in seen and not any(c in name for c in "\"':;()[]{}#&*!|>%@`"):
            seen.add(name.casefold())
            found.append((name, label))
    return found[:count]


def generated_rules(entities: list[tuple[str, str]]) -> Iterator[str]:
    surnames: set[str] = set()
    for i, (name, label) in enumerate(entities):
        words = name.split()
        aliases = []
        if label == "PERSON" and len(words) > 1 and words[-1] not in surnames:
            surnames.add(words[-1])
            aliases.append(words[-1])
        types = ["PERSON"] if label == "PERSON" else []
        pick = [_TOPICS_EN[(i * 7 + k) % len(_TOPICS_EN)] for k in range(5)]
        pick_es = [_TOPICS_ES[(i * 7 + k) % len(_TOPICS_ES)] for k in range(5)]
        yield json.dumps({
            "name": f"watch-{i:04d}",
            "actors": {name: {"aliases": aliases, "types": types}},
            "keywords": {"topic": {"en": pick, "es": pick_es}},
            "match": {"any": [{"near": [name, "topic"]}, {"term": name, "min": 3}]},
            "threshold": 2,
        }, ensure_ascii=False)  # fmt: skip


def rule_sets(entities: list[tuple[str, str]]) -> dict[str, RuleSet]:
    """The 2 example rules, and those plus a rule per entity, by name ("2rules", "1000rules")."""
    with tempfile.TemporaryDirectory(prefix="watcher-bench-rules-") as tmp:
        generated = write_rules(Path(tmp), entities)
    return {"2rules": load_rules(ROOT / "rules"), f"{len(entities)}rules": generated}


def write_rules(directory: Path, entities: list[tuple[str, str]]) -> RuleSet:
    for path in (ROOT / "rules").glob("*.yaml"):
        (directory / path.name).write_bytes(path.read_bytes())
    for i, text in enumerate(generated_rules(entities)):
        (directory / f"watch-{i:04d}.yaml").write_text(text, encoding="utf-8")  # JSON is YAML
    return load_rules(directory)


# --- timing -----------------------------------------------------------------------------


def run_trafilatura(pages: list[Page], *, metadata: bool = False) -> None:
    import trafilatura

    for page in pages:
        trafilatura.extract(page.html, url=page.url, with_metadata=metadata, **_OPTIONS)


def run_watcher(pages: list[Page], rules: RuleSet, counts: dict[str, int]) -> None:
    nlp, now = NlpSettings(), datetime.now(UTC)
    analyzer = matcher_for(rules, nlp).analyzer  # built in cpu_ms's prepare, untimed
    # (an engine without ner_runs ran spaCy on every article it analysed: bench/README.md)
    analysed, ner = analyzer.pipeline_runs, getattr(analyzer, "ner_runs", analyzer.pipeline_runs)
    for page in pages:
        process_entry(job_for(page), rules, nlp, now)
    counts["analysed"] = analyzer.pipeline_runs - analysed
    counts["ner"] = getattr(analyzer, "ner_runs", analyzer.pipeline_runs) - ner


def cpu_ms(run: Callable[[], None], n: int, prepare: Callable[[], object] | None = None) -> float:
    if prepare is not None:
        prepare()
    started = time.process_time()
    run()
    return 1000 * (time.process_time() - started) / n


def bench_stream(
    name: str, pages: list[Page], rulesets: dict[str, RuleSet], rounds: int
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {k: {} for k in rulesets}
    modes: dict[str, Callable[[], None]] = {
        "trafilatura": lambda: run_trafilatura(pages),
        # context only, never the baseline of a target: what watcher needs from a page is
        # the text and metadata (title, author, site, date), which extract() alone skips
        "trafilatura-metadata": lambda: run_trafilatura(pages, metadata=True),
    }
    # A worker builds its matcher once per rules version; the modes here alternate between
    # two rule sets in one process, so the (re)build is done before the clock starts.
    prepares: dict[str, Callable[[], object]] = {}
    for key, rules in rulesets.items():
        modes[f"watcher-{key}"] = lambda r=rules, c=counts[key]: run_watcher(pages, r, c)
        prepares[f"watcher-{key}"] = lambda r=rules: matcher_for(r, NlpSettings())
    for run in modes.values():  # warm: imports, caches, the matcher of each rule set
        run()
    samples: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(rounds):
        order = list(modes) if i % 2 == 0 else list(reversed(modes))  # A/B, then B/A
        for mode in order:
            samples[mode].append(cpu_ms(modes[mode], len(pages), prepares.get(mode)))
    medians = {m: statistics.median(v) for m, v in samples.items()}
    out: dict[str, Any] = {
        "bench": "pipeline",
        "stream": name,
        "articles": len(pages),
        "cpu_ms_per_article": {m: round(v, 2) for m, v in medians.items()},
        "rounds": {m: [round(x, 2) for x in v] for m, v in samples.items()},
    }
    for key in rulesets:
        mode = f"watcher-{key}"
        out[f"{key}/trafilatura"] = round(medians["trafilatura"] / medians[mode], 3)
        out[f"{key}/trafilatura-metadata"] = round(
            medians["trafilatura-metadata"] / medians[mode], 3
        )
        out[f"share_analysed_{key}"] = round(counts[key]["analysed"] / len(pages), 3)
        out[f"share_ner_{key}"] = round(counts[key]["ner"] / len(pages), 3)
    keys = list(rulesets)
    few, many = (samples[f"watcher-{k}"] for k in keys)
    out[f"{keys[1]}/{keys[0]}"] = round(
        medians[f"watcher-{keys[0]}"] / medians[f"watcher-{keys[1]}"], 3
    )
    # per round (the two rule sets ran back to back in it): how far the ratio moves
    out[f"{keys[1]}/{keys[0]}_rounds"] = [round(a / b, 3) for a, b in zip(few, many, strict=True)]
    emit(out)
    return out


# --- worker memory, bounded cases, quality ----------------------------------------------


def worker_peaks(pages: list[Page], rules: RuleSet) -> list[float]:
    """Two pool workers run the stream with every rule; their peak RSS (VmHWM), in MB."""

    async def go() -> list[float]:
        pool = CpuPool(2)
        try:
            now = datetime.now(UTC)
            jobs = [pool(process_entry, job_for(p), rules, NlpSettings(), now) for p in pages]
            await asyncio.gather(*jobs)
            pids = await asyncio.gather(*(pool(pid_after, 0.5) for _ in range(4)))
            return [peak_rss_mb(pid) for pid in sorted(set(pids))]
        finally:
            pool.shutdown()

    return asyncio.run(go())


def bounded_cases() -> list[dict[str, Any]]:
    rules = load_rules(ROOT / "rules")
    matcher = Matcher(rules, Analyzer(NlpSettings(), rules))
    cases = {
        "1 MB of one repeated name": "Maduro " * 150_000,
        "10,000 sentences": "Maduro met officials in Caracas on Monday. " * 10_000,
        "no sentence boundary (1 MB)": "venezuela maduro caracas gobierno " * 30_000,
    }
    out = []
    for name, text in cases.items():
        article = Article("https://bench.example/x", "t", text, ArticleSource.FILE)
        rss0 = peak_rss_mb()
        started = time.process_time()
        found = matcher.match(article)
        matched = time.process_time() - started
        started = time.process_time()
        matcher.explain(article)
        explained = time.process_time() - started
        out.append({
            "bench": "pipeline", "bounded": name, "chars": len(text),
            "match_cpu_s": round(matched, 2), "explain_cpu_s": round(explained, 2),
            "matched": [m.rule for m in found],
            "peak_rss_growth_mb": round(peak_rss_mb() - rss0, 1),
        })  # fmt: skip
        emit(out[-1])
    return out


def quality_figures() -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import quality

    results = quality.evaluate()
    figures = {
        system: {rule: scores.figures() for rule, scores in by_rule.items()}
        for system, by_rule in results.items()
    }
    emit({"bench": "pipeline", "quality": figures})
    return figures


# --- main -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=150, help="pages per stream (150)")
    parser.add_argument("--rules", type=int, default=1000, help="generated rules (1000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument("--no-quality", action="store_true", help="skip the dev-set figures")
    args = parser.parse_args()
    if not (CORPUS / "news").is_dir():
        emit({"bench": "pipeline", "skipped": f"corpus not found at {CORPUS}"})
        return 0
    emit({"bench": "pipeline", "machine": machine()})
    share = feed_date_share()
    emit({"bench": "pipeline", "feed_items_with_a_date": round(share, 3)})
    off, on = (with_feed_dates(p, share, datetime.now(UTC)) for p in topic_pages(args.pages))
    mixed = [p for pair in zip(off[::2], on[::2], strict=False) for p in pair]
    started = time.process_time()
    entities = frequent_entities(args.rules)
    emit({"bench": "pipeline", "entities": len(entities),
          "labels": dict(Counter(label for _, label in entities)),
          "top": [name for name, _ in entities[:15]],
          "cpu_s": round(time.process_time() - started, 1)})  # fmt: skip
    key = f"{len(entities)}rules"
    rulesets = rule_sets(entities)
    streams = {"off-topic": off, "on-topic": on, "mixed": mixed}
    results = {
        name: bench_stream(name, pages, rulesets, args.rounds) for name, pages in streams.items()
    }
    peaks = worker_peaks(on, rulesets[key])
    emit({"bench": "pipeline", "worker_peak_rss_mb": peaks})
    bounded_cases()
    if not args.no_quality:
        quality_figures()
    emit({
        "bench": "pipeline", "summary": True, "targets": TARGETS,
        "on-topic 1000 rules / trafilatura": results["on-topic"][f"{key}/trafilatura"],
        "1000 rules / 2 rules": {s: r[f"{key}/2rules"] for s, r in results.items()},
        "worker peak RSS MB": max(peaks),
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
