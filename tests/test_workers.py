"""The worker pools: what a worker imports, preloading, and the per-job time and memory budgets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import workerprobe
from daemonproc import alive
from workerprobe import loaded_modules, sleep_then_pid

from watcher.errors import BudgetError, WorkerError
from watcher.workers import CpuPool, Turns, urgent

# Modules a feed-parsing worker must never import: the store, HTTP and their libraries, and
# what the pool's own plumbing could drag in (asyncio and ssl, multiprocessing's tracker).
HEAVY = (
    "sqlalchemy", "aiohttp", "watcher.store", "watcher.http", "spacy", "trafilatura",
    "asyncio", "ssl", "multiprocessing", "watcher.workers",
)  # fmt: skip


def exit_now(code: int) -> None:
    os._exit(code)


def unpicklable_result() -> object:
    return lambda: None


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
    # Preloaded: the fast parser was imported and used before the first job arrived;
    # feedparser waits for a feed the fast path declines (tests/test_feeds_fastparse.py).
    assert "watcher.feeds.fastparse" in modules and "watcher.feeds.cpu" in modules
    assert "lxml.etree" in modules and "feedparser" not in modules


async def test_a_job_over_its_time_budget_is_abandoned_and_its_worker_replaced() -> None:
    # The budget counts from the job's hand-over, and a fresh worker first imports the job's
    # module: workerprobe imports nothing, and 3 s leave room for a worker's start on a busy
    # machine (1 s, with the job defined in this module, which imports pytest, did not).
    pool = CpuPool(1, name="feed", seconds=3.0)
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


async def test_a_worker_that_dies_mid_job_fails_that_job_and_is_replaced() -> None:
    pool = CpuPool(1, name="article")
    try:
        before = await pool(os.getpid)
        with pytest.raises(WorkerError):
            await pool(exit_now, 3)
        after = await pool(os.getpid)
    finally:
        pool.shutdown()
    assert after != before


async def test_a_job_whose_result_cannot_cross_back_fails_and_the_worker_goes_on() -> None:
    pool = CpuPool(1, name="article")
    try:
        before = await pool(os.getpid)
        with pytest.raises(Exception) as failed:
            await pool(unpicklable_result)
        after = await pool(os.getpid)
    finally:
        pool.shutdown()
    assert not isinstance(failed.value, WorkerError)  # the job's own failure, not the pool's
    assert after == before


async def test_a_result_the_daemon_cannot_unpickle_fails_that_job_only() -> None:
    pool = CpuPool(1, name="article")
    try:
        before = await pool(os.getpid)
        with pytest.raises(ValueError):
            await pool(workerprobe.unreadable_result)
        after = await asyncio.wait_for(pool(os.getpid), 60)  # the worker still serves
    finally:
        pool.shutdown()
    assert after == before


async def test_a_job_raising_system_exit_fails_with_an_ordinary_exception() -> None:
    """A SystemExit re-raised in the daemon would end its event loop."""
    pool = CpuPool(1, name="article")
    try:
        with pytest.raises(Exception) as failed:
            await pool(workerprobe.exit_the_process)
    finally:
        pool.shutdown()
    assert not isinstance(failed.value, WorkerError)


async def test_arguments_over_the_memory_budget_fail_as_a_budget_error() -> None:
    pool = CpuPool(1, name="feed", memory_mb=64)
    try:
        before = await pool(os.getpid)
        with pytest.raises(BudgetError):
            await pool(len, b"x" * (100 * 1024 * 1024))
        after = await pool(os.getpid)
    finally:
        pool.shutdown()
    assert after == before  # the message was skipped whole; the worker reads the next one


_KILLED_PARENT = """
import asyncio, os, signal, sys
from watcher.workers import CpuPool
import workerprobe

async def main():
    pool = CpuPool(1, name="article")
    await pool(os.getpid)
    job = asyncio.ensure_future(pool(workerprobe.hold_the_gil))
    while not pool._slots[0].busy:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the job is in the worker, in C code
    print(*pool.worker_pids(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_a_daemon_killed_mid_job_leaves_no_worker_even_one_holding_the_gil() -> None:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)}
    parent = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PARENT], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]  # then it kills itself
    parent.wait(60)
    parent.stdout.close()
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # not to leave it spinning for hours
        os.kill(pid, signal.SIGKILL)
    assert workers and left == []


async def test_cancelling_the_caller_of_a_running_job_terminates_its_worker() -> None:
    pool = CpuPool(1, name="article")
    try:
        before = await pool(os.getpid)
        job = asyncio.create_task(pool(sleep_then_pid, 600))
        deadline = time.monotonic() + 60
        while not pool._slots[0].busy and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # a thread of the pool sets it: no event to wait on
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        after = await asyncio.wait_for(pool(os.getpid), 120)  # not after 600 s
    finally:
        pool.shutdown()
    assert after != before


async def test_a_pool_whose_workers_cannot_start_fails_its_jobs_with_a_worker_error() -> None:
    pool = CpuPool(1, name="feed", preload="watcher.no_such_module:preload")
    try:
        with pytest.raises(WorkerError):
            await pool(os.getpid)
    finally:
        pool.shutdown(cancel=True)


def append_label(path: str, label: str, gate: str = "") -> str:
    """Wait (up to a minute) for ``gate`` to exist, if given, then append ``label``."""
    deadline = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(path, "a") as out:
        out.write(label + "\n")
    return label


async def test_urgent_jobs_go_ahead_of_those_waiting_for_a_worker(tmp_path: Path) -> None:
    """A backfill's jobs wait for a worker here, not in the workers' pipe: a job of an
    urgent() task overtakes every one of them that has not been handed out yet."""
    done, gate = str(tmp_path / "order"), str(tmp_path / "go")
    pool = CpuPool(1, name="article")

    async def job(label: str, *, first: bool = False, hurry: bool = False) -> str:
        if hurry:
            urgent()
        return await pool(append_label, done, label, gate if first else "")

    try:
        await pool(os.getpid)  # the worker is up
        names = ["busy", "next", "backfill-1", "backfill-2", "fresh"]
        tasks = [asyncio.create_task(job(n, first=n == "busy", hurry=n == "fresh")) for n in names]
        for _ in range(5):  # every task reaches the pool (no waiting on time)
            await asyncio.sleep(0)
        await asyncio.to_thread(Path(gate).touch)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        pool.shutdown()
    # One job runs and one more is handed out ahead; the rest wait, the urgent one first.
    order = (await asyncio.to_thread(Path(done).read_text)).split()
    assert order == ["busy", "next", "fresh", "backfill-1", "backfill-2"]


async def test_a_cancelled_wait_for_a_worker_hands_its_turn_on() -> None:
    turns = Turns(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(label: str) -> None:
        async with turns:
            order.append(label)
            await release.wait()

    first = asyncio.create_task(hold("first"))
    cancelled = asyncio.create_task(hold("cancelled"))
    last = asyncio.create_task(hold("last"))
    for _ in range(3):
        await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(first, last), 60)
    assert cancelled.cancelled() and order == ["first", "last"]
