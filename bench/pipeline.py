"""Article pipeline benchmark: trafilatura alone against watcher's extract+match, on real pages.

    .venv/bin/python bench/pipeline.py [--limit N] [--rules 1000] [--workers 2]

Reads the real news pages of ../shared/corpus/articles (scrapinghub_aeb and newspaper: pages
with ground truth, see its MANIFEST.md) into memory, then, in one run and on the same pages:

* ``trafilatura``: ``trafilatura.extract(page, url=url)`` with its defaults, in this process;
* ``watcher-extract``: watcher's extraction alone (``extract_page``), in this process;
* ``watcher-1proc``: ``watcher.rules.worker.process_entry`` (extraction, fallback choice,
  language, prefilter, spaCy on the articles that pass it, rule verdicts) with the two
  example rules in rules/, in this process;
* ``watcher-pool``: the same through watcher's CpuPool, as the daemon runs it (``--workers``
  processes, 8 articles in flight, the rules pickled with every call);
* ``watcher-1proc-NNNNrules`` and ``watcher-pool-NNNNrules``: the same with ``--rules``
  generated rules added to the two (distinct people, organisations and countries with
  aliases, keyword groups in English and Spanish, a few regexes; written as YAML files into a
  temporary folder and loaded by watcher's loader), so the difference is their cost.

Every mode is warmed up first (spaCy loaded, every pool worker started), then all modes run
``--rounds`` times in turn and the fastest round of each counts, so the figures are
steady-state throughput. Prints one JSON line per mode (wall and CPU time per article,
matches, full spaCy analyses), then the ratios against the targets (also from CPU time, which
other load on the machine does not distort), then the peak RSS (VmHWM) of this process and of
each pool worker. Exits 0 without measuring when the corpus is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from _common import CORPUS, ROOT, cpu_seconds, emit, machine, peak_rss_mb

from watcher.config import NlpSettings
from watcher.rules.schema import RuleSet, load_rules
from watcher.rules.worker import EntryJob, Processed, matcher_for, process_entry
from watcher.workers import CpuPool

T = TypeVar("T")
ARTICLES = CORPUS / "articles"
IN_FLIGHT = 8  # as the daemon's ARTICLE_CONCURRENCY
WARM_PAGES = 10  # run before timing, by every mode and in every pool worker
TARGETS = {
    "watcher-1proc/trafilatura": 0.8,
    "watcher-pool/trafilatura": 1.5,
    "many-rules/2-rules": 0.85,
}


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    html: bytes


def load_pages(limit: int | None) -> list[Page]:
    pages = []
    aeb = ARTICLES / "scrapinghub_aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for path in sorted((aeb / "html").glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        url = truth.get(key, {}).get("url") or f"https://aeb.example/{key}"
        pages.append(Page(path.name, url, gzip.decompress(path.read_bytes())))
    for path in sorted((ARTICLES / "newspaper" / "html").glob("*.html")):
        pages.append(Page(path.name, f"https://newspaper.example/{path.stem}", path.read_bytes()))
    return pages[:limit] if limit else pages


def job_for(page: Page) -> EntryJob:
    return EntryJob(
        url=page.url,
        html=page.html,
        fetch_error="",
        feed_title="",
        feed_content="",
        feed_summary="",
        published=None,
        feed_name="bench",
        feed_tags=(),
        language_hint="",
        min_text_chars=300,
    )


# --- generated rules --------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_FIRST = _words("""Amara Bogdan Chiara Dmitri Elif Farid Gulnara Hamid Ingrid Jarosław Kofi Leilani
Mateus Nadia Oleksiy Priya Quentin Rasmus Sabine Tomasz Ulrike Vikram Wanjiru Ximena Yusuf
Zofia Anouk Bartholomew Catalina Desmond Esperanza Florin Giedre Hiroshi Ilse Joaquín Katarzyna
Lorenzo Marisol Nikolai Orla Pieter Rosalind Santiago Thandiwe Umberto Valentina Wilhelmina
Yannick Zainab Aurelio Beatriz Cosmin Dagny Emeka Fatou Goran Halvard Imelda Jovana""")
_LAST = _words("""Okafor Petrenko Lindqvist Marchetti Nakashima Abernathy Brankovic Castellanos
Dumitrescu Eriksen Fagerlund Gashi Haddad Iwasaki Jovanovic Kowalczyk Laine Mbeki Novak
Oyelaran Papadakis Quispe Rautio Szabo Tanaka Uzunova Vasquez Wojcik Yilmaz Zapata Achterberg
Bergstrom Cienfuegos Delacroix Estrada Fonseca Grimaldi Holmberg Ivanova Jankowski Kuznetsov
Lombardi Moreau Nwosu Olawale Pellegrini Quaresma Rinaldi Sokolova Trevisan Uribe Valdivia
Wieczorek Xiong Yamamoto Zelenko""")
_ORG_HEAD = _words("""Northwind Bluefin Silverline Redstone Granite Harbor Meridian Polar Cobalt
Summit Evergreen Ironbridge Lakeshore Sunfield Crescent Oakridge Riverside Highland Starling
Westgate""")
_ORG_MIDDLE = _words("Atlantic Pacific Continental National United Global")
_ORG_TAIL = _words("""Energy Holdings Logistics Mining Shipping Telecom Capital Airways Foods Pharma
Motors Steel Petroleum Bank Group""")
_COUNTRIES = _words("""Kenya Peru Norway Vietnam Morocco Chile Poland Ghana Indonesia Portugal
Kazakhstan Bolivia Tunisia Finland Nepal Uruguay Romania Senegal Mongolia Ecuador Croatia
Zambia Paraguay Latvia Jordan Namibia Slovakia Honduras Armenia Malawi""")
_TOPICS_EN = _words("""
sanction election protest strike merger acquisition lawsuit indictment bribery
embezzlement ceasefire coup resignation impeachment tariff boycott espionage extradition
bankruptcy layoff recall outbreak earthquake flood drought wildfire kidnapping assassination
referendum blockade smuggling corruption arrest verdict pardon deportation mutiny riot hostage
scandal default devaluation nationalisation privatisation subsidy""")
_TOPICS_ES = _words("""
sanción elección protesta huelga fusión adquisición demanda imputación soborno
malversación tregua golpe dimisión destitución arancel boicot espionaje extradición quiebra
despido retirada brote terremoto inundación sequía incendio secuestro asesinato referéndum
bloqueo contrabando corrupción detención veredicto indulto deportación motín disturbio rehén
escándalo impago devaluación nacionalización privatización subsidio""")


def generated_rules(count: int, seed: int = 7) -> Iterator[str]:
    """``count`` realistic rules as YAML: a person (aliased by surname where no other rule's
    person shares it, else by initial and surname), an organisation with its acronym, and a
    country as context, near a group of topic words; every twentieth rule has a regex."""
    rng = random.Random(seed)
    people = [(f, last) for f in _FIRST for last in _LAST]
    rng.shuffle(people)
    orgs = [(h, m, t) for h in _ORG_HEAD for m in _ORG_MIDDLE for t in _ORG_TAIL]
    rng.shuffle(orgs)
    surnames: set[str] = set()
    for i in range(count):
        (first, last), words = people[i], orgs[i]
        person, org, acronym = f"{first} {last}", " ".join(words), "".join(w[0] for w in words)
        alias = last if last not in surnames else f"{first[0]}. {last}"
        surnames.add(last)
        country = rng.choice(_COUNTRIES)
        topics = rng.sample(range(len(_TOPICS_EN)), 5)
        en = ", ".join(_TOPICS_EN[t] for t in topics)
        es = ", ".join(_TOPICS_ES[t] for t in topics)
        regex = f"\nregex:\n  case: '(?i){last} (case|affair|files)'" if i % 20 == 0 else ""
        logic = "\n    - case" if regex else ""
        yield f"""name: watch-{i:04d}
description: {person} and {org} in {country}
priority: {rng.choice(["critical", "normal", "low"])}
actors:
  {person}: {{aliases: [{alias}], types: [PERSON], weight: 2}}
  {org}: {{aliases: [{acronym}], types: [ORG]}}
  {country}: {{weight: 0}}
keywords:
  topic:
    en: [{en}]
    es: [{es}]{regex}
match:
  any:
    - near: [[{person}, {org}], topic]
    - {{term: {person}, min: 2}}{logic}
threshold: 3
"""


def write_rules(directory: Path, count: int) -> RuleSet:
    """The example rules plus ``count`` generated ones, so that the many-rules run does all
    the work of the two-rules run and the difference is the cost of the added rules."""
    for path in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    for i, text in enumerate(generated_rules(count)):
        (directory / f"watch-{i:04d}.yaml").write_text(text, encoding="utf-8")
    return load_rules(directory)


# --- the modes --------------------------------------------------------------------------

_WARM_TEXT = """<html lang="en"><head><title>Maduro answers US warships</title></head><body>
<article><p>Venezuelan President Nicolás Maduro called up militia units in Caracas after the
United States sent more warships to the Caribbean, and Venezuela asked its partners for help
against what its government called a threat to its sovereignty and an attack on its people.</p>
<p>Ukraine and Russia sent envoys to peace talks in Istanbul; Kyiv said a ceasefire was
possible if Moscow withdrew, while the Kremlin said negotiations would take months.</p>
</article></body></html>"""


def _warm_job() -> EntryJob:
    return job_for(Page("warm", "https://warm.example/a", _WARM_TEXT.encode()))


def warm_worker(rules: RuleSet, nlp: NlpSettings, sample: list[Page], hold: float) -> int:
    """Loads spaCy, builds the matcher and runs a few pages (trafilatura imports some of its
    fallbacks lazily) in a pool worker; ``hold`` keeps this worker busy so the next warm-up
    call goes to another one."""
    now = datetime.now(UTC)
    for job in [_warm_job(), *map(job_for, sample)]:
        process_entry(job, rules, nlp, now)
    time.sleep(hold)
    return os.getpid()


@dataclass
class Timing:
    """The best of several rounds of one mode."""

    mode: str
    wall: float = float("inf")
    cpu: float = 0.0  # CPU seconds of every process involved, in the best round
    results: list[Processed] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, wall: float, cpu: float, results: list[Processed] | None) -> None:
        if wall < self.wall:
            self.wall, self.cpu, self.results = wall, cpu, results

    def record(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": "pipeline",
            "mode": self.mode,
            "articles": n,
            "seconds": round(self.wall, 3),
            "articles_per_s": round(n / self.wall, 2),
            "ms_per_article": round(1000 * self.wall / n, 2),
            "cpu_ms_per_article": round(1000 * self.cpu / n, 2),
            **self.extra,
        }
        if self.results is not None:
            out["matched"] = sum(bool(p.matches) for p in self.results)
            out["matches"] = dict(Counter(m.rule for p in self.results for m in p.matches))
            out["sources"] = dict(Counter(p.article.source.value for p in self.results))
        return out


@dataclass(frozen=True)
class Mode:
    run: Callable[[], list[Processed] | None]
    pids: list[int] = field(default_factory=list)  # worker processes whose CPU time counts
    prepare: Callable[[], None] = lambda: None  # before the clock starts


def _timed(mode: Mode) -> tuple[float, float, Any]:
    """Wall time, CPU time of this process and the mode's workers, and the mode's result."""
    mode.prepare()
    cpu0 = time.process_time() + sum(map(cpu_seconds, mode.pids))
    wall0 = time.perf_counter()
    result = mode.run()
    wall = time.perf_counter() - wall0
    return wall, time.process_time() + sum(map(cpu_seconds, mode.pids)) - cpu0, result


def _trafilatura(pages: list[Page]) -> Callable[[], None]:
    import trafilatura

    def run() -> None:
        for page in pages:
            trafilatura.extract(page.html, url=page.url)

    return run


def _extract(pages: list[Page]) -> Callable[[], None]:
    from watcher.articles.extract import extract_page
    from watcher.errors import ParseError

    def run() -> None:
        for page in pages:
            with contextlib.suppress(ParseError):  # a failed page is an attempt, as in the daemon
                extract_page(page.html, url=page.url)

    return run


def _inline(pages: list[Page], rules: RuleSet, nlp: NlpSettings, extra: dict[str, Any]) -> Mode:
    now = datetime.now(UTC)

    def prepare() -> None:
        # A process holds one Matcher (for the latest rules); the modes take turns, so
        # rebuild it before the clock starts, as a worker holds it between articles.
        process_entry(_warm_job(), rules, nlp, now)

    def run() -> list[Processed]:
        analyzer = matcher_for(rules, nlp).analyzer
        before = analyzer.pipeline_runs
        done = [process_entry(job_for(page), rules, nlp, now) for page in pages]
        extra["full_analyses"] = analyzer.pipeline_runs - before  # spaCy runs: prefilter passed
        return done

    return Mode(run, prepare=prepare)


class _Pool:
    """A warmed CpuPool fed as the daemon feeds it: IN_FLIGHT articles at a time."""

    def __init__(self, workers: int, rules: RuleSet, nlp: NlpSettings, sample: list[Page]):
        self.loop = asyncio.new_event_loop()
        self.pool = CpuPool(workers)
        self.rules, self.nlp = rules, nlp
        warm = (self.pool(warm_worker, rules, nlp, sample, 1.0) for _ in range(workers))
        self.pids = sorted(set(self.loop.run_until_complete(_gather(warm))))

    def runner(self, pages: list[Page]) -> Callable[[], list[Processed]]:
        return lambda: self.loop.run_until_complete(self._pass(pages))

    async def _pass(self, pages: list[Page]) -> list[Processed]:
        slots = asyncio.Semaphore(IN_FLIGHT)
        now = datetime.now(UTC)

        async def one(page: Page) -> Processed:
            async with slots:
                return await self.pool(process_entry, job_for(page), self.rules, self.nlp, now)

        return await _gather(one(p) for p in pages)

    def close(self) -> list[float]:
        """Peak RSS of each worker, then shut the pool down."""
        peaks = [peak_rss_mb(pid) for pid in self.pids]
        self.pool.shutdown()
        self.loop.close()
        return peaks


async def _gather(aws: Iterable[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*aws))


# --- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--rules", type=int, default=1000, help="generated rules (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts (3)")
    args = parser.parse_args()
    if not ARTICLES.is_dir():
        emit({"bench": "pipeline", "skipped": f"corpus not found at {ARTICLES}"})
        return
    pages = load_pages(args.limit)
    nlp = NlpSettings()
    emit({"bench": "pipeline", "machine": machine(), "pages": len(pages),
          "megabytes": round(sum(len(p.html) for p in pages) / 1e6, 1),
          "loadavg_before": os.getloadavg()})  # fmt: skip
    example = load_rules(ROOT / "rules")
    with tempfile.TemporaryDirectory(prefix="watcher-bench-rules-") as tmp:
        started = time.perf_counter()
        many = write_rules(Path(tmp), args.rules)
        load_s = time.perf_counter() - started
    n_many = f"{args.rules}rules"
    emit({"bench": "pipeline", "generated_rules": args.rules, "total_rules": len(many.rules),
          "write_and_load_s": round(load_s, 2)})  # fmt: skip
    warm = pages[:WARM_PAGES]
    pools = {
        "watcher-pool": _Pool(args.workers, example, nlp, warm),
        f"watcher-pool-{n_many}": _Pool(args.workers, many, nlp, warm),
    }
    timings = {
        name: Timing(name)
        for name in ("trafilatura", "watcher-extract", "watcher-1proc", f"watcher-1proc-{n_many}")
    } | {name: Timing(name) for name in pools}
    modes = {
        "trafilatura": Mode(_trafilatura(pages)),
        "watcher-extract": Mode(_extract(pages)),
        "watcher-1proc": _inline(pages, example, nlp, timings["watcher-1proc"].extra),
        f"watcher-1proc-{n_many}": _inline(
            pages, many, nlp, timings[f"watcher-1proc-{n_many}"].extra
        ),
        **{name: Mode(pool.runner(pages), pool.pids) for name, pool in pools.items()},
    }
    _trafilatura(warm)()  # lazy imports and caches, in this process; the pools warmed theirs
    _extract(warm)()
    for _ in range(args.rounds):
        for name, mode in modes.items():
            timings[name].add(*_timed(mode))
    worker_peaks = [peak for pool in pools.values() for peak in pool.close()]
    for name, pool in pools.items():
        timings[name].extra["workers"] = len(pool.pids)
    for timing in timings.values():
        emit(timing.record(len(pages)))
    _report(timings, n_many, worker_peaks)


def _report(timings: dict[str, Timing], n_many: str, worker_peaks: list[float]) -> None:
    wall = {k: t.wall for k, t in timings.items()}
    ratios = {
        "watcher-1proc/trafilatura": wall["trafilatura"] / wall["watcher-1proc"],
        "watcher-pool/trafilatura": wall["trafilatura"] / wall["watcher-pool"],
        "many-rules/2-rules": wall["watcher-1proc"] / wall[f"watcher-1proc-{n_many}"],
        "many-rules/2-rules (pool)": wall["watcher-pool"] / wall[f"watcher-pool-{n_many}"],
    }
    # On a busy machine wall time shows the neighbours too; CPU time does not. Single-process
    # modes take about their CPU time on an idle core; a pool at best its total CPU time
    # (workers and this process) spread over the workers.
    cpu = {k: t.cpu / (t.extra.get("workers") or 1) for k, t in timings.items()}
    cpu_ratios = {
        "watcher-1proc/trafilatura": cpu["trafilatura"] / cpu["watcher-1proc"],
        "watcher-pool/trafilatura (ideal)": cpu["trafilatura"] / cpu["watcher-pool"],
        "many-rules/2-rules": cpu["watcher-1proc"] / cpu[f"watcher-1proc-{n_many}"],
    }
    emit({"bench": "pipeline", "ratios": {k: round(v, 3) for k, v in ratios.items()},
          "targets": TARGETS, "met": {k: ratios[k] >= t for k, t in TARGETS.items()},
          "cpu_time_ratios": {k: round(v, 3) for k, v in cpu_ratios.items()},
          "loadavg_after": os.getloadavg()})  # fmt: skip
    main_peak = peak_rss_mb()
    emit({"bench": "pipeline", "peak_rss_mb": {
        "main_process": round(main_peak, 1),
        "pool_workers": [round(p, 1) for p in worker_peaks],
    }, "target_mb": 500, "met": max([main_peak, *worker_peaks]) < 500})  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
