"""The worker pools: what a worker imports, preloading, and the per-job time and memory budgets."""

from __future__ import annotations

import os
import sys
import time

import pytest

from watcher.errors import BudgetError, WorkerError
from watcher.workers import CpuPool

# Modules a feed-parsing worker must never import: the store, HTTP and their libraries.
HEAVY = ("sqlalchemy", "aiohttp", "watcher.store", "watcher.http", "spacy", "trafilatura")


def loaded_modules() -> list[str]:
    return sorted(sys.modules)


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


async def test_a_feed_worker_imports_only_parsing_and_is_preloaded() -> None:
    pool = CpuPool(1, name="feed", preload="watcher.feeds.cpu:preload")
    try:
        modules = await pool(loaded_modules)
    finally:
        pool.shutdown()
    heavy = [m for m in modules if m.startswith(HEAVY)]
    assert heavy == []
    # Preloaded: the parsers were imported and used before the first job arrived.
    assert "feedparser" in modules and "watcher.feeds.cpu" in modules


async def test_a_job_over_its_time_budget_is_abandoned_and_its_worker_replaced() -> None:
    pool = CpuPool(1, name="feed", seconds=1.0)
    try:
        before = await pool(sleep_then_pid, 0)
        with pytest.raises(BudgetError):
            await pool(sleep_then_pid, 600)  # would hold the worker for ten minutes
        after = await pool(sleep_then_pid, 0)  # a new worker answers at once
    finally:
        pool.shutdown()
    assert after != before


async def test_a_job_over_its_memory_budget_fails_and_the_pool_goes_on() -> None:
    pool = CpuPool(1, name="feed", memory_mb=256)
    try:
        with pytest.raises(BudgetError):
            await pool(allocate, 2048)
        assert await pool(allocate, 16) == 16 * 1024 * 1024
    finally:
        pool.shutdown()


async def test_a_pool_whose_workers_cannot_start_fails_its_jobs_with_a_worker_error() -> None:
    pool = CpuPool(1, name="feed", preload="watcher.no_such_module:preload")
    try:
        with pytest.raises(WorkerError):
            await pool(os.getpid)
    finally:
        pool.shutdown(cancel=True)
