"""The daemon's two worker pools (feed parsing, articles): their sizes, budgets and preload."""

from __future__ import annotations

from dataclasses import dataclass

from watcher.config import Config
from watcher.feeds import cpu as feeds_cpu
from watcher.workers import CpuPool, pool_size

# Budgets per article job (feed parsing: watcher.feeds.cpu): a job over them is abandoned
# and its worker replaced.
ARTICLE_SECONDS = 60.0
ARTICLE_MEMORY_MB = 1024
# Seconds a busy worker process gets at a stop, after in-flight work had its grace.
WORKER_GRACE = 1.0


@dataclass(frozen=True)
class Spawned:
    """Both pools, started: their workers preload in the background."""

    parse: CpuPool
    cpu: CpuPool

    def shutdown(self) -> None:
        """Stop both pools (a no-op for a pool already stopped)."""
        for pool in (self.cpu, self.parse):
            pool.shutdown(cancel=True, grace=WORKER_GRACE)


def spawn(config: Config, shipped: tuple[str, str] | None = None) -> Spawned:
    """Start both pools. ``shipped``: the rules for the article workers' preload
    (watcher.rules.worker.ship_rules); without them a worker loads the rules with its
    first job, and preloads the rest (spaCy, the extractor) at once.

    Imports nothing heavy, so `watcher run` calls it before importing the daemon.
    """
    workers = config.articles.workers
    # Half the cores parse feeds (one on two cores): parsing a whole cycle of a thousand
    # feeds takes seconds, and every worker costs ~35 MB.
    parse = CpuPool(
        max(1, pool_size(workers) // 2), name="feed", seconds=feeds_cpu.PARSE_SECONDS,
        memory_mb=feeds_cpu.PARSE_MEMORY_MB, preload="watcher.feeds.cpu:preload",
    )  # fmt: skip
    cpu = CpuPool(
        workers, name="article", seconds=ARTICLE_SECONDS, memory_mb=ARTICLE_MEMORY_MB,
        preload="watcher.rules.worker:preload", preload_args=(config.nlp, shipped),
    )  # fmt: skip
    parse.start()  # the workers preload in the background, the feed parser first
    cpu.start()
    return Spawned(parse, cpu)
