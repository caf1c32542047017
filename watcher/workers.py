"""The process pool for CPU-heavy work (feed parsing, extraction, NLP), off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from watcher.errors import WatcherError

log = logging.getLogger(__name__)
T = TypeVar("T")


def pool_size(configured: int) -> int:
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


class CpuPool:
    """``await pool(fn, *args)`` runs a picklable top-level function in a worker process.

    Workers are spawned, not forked: the daemon has threads (store, HTTP) whose locks a
    fork would copy mid-use. A worker that dies (e.g. killed for memory) is replaced.
    """

    def __init__(self, workers: int) -> None:
        self.workers = pool_size(workers)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await loop.run_in_executor(self._executor, call)
        except BrokenProcessPool:
            log.error("a worker process died; starting a new pool")
            self._executor = self._new_executor()
            raise WatcherError(f"worker process died while running {fn.__name__}") from None

    def shutdown(self, *, cancel: bool = False) -> None:
        self._executor.shutdown(wait=True, cancel_futures=cancel)


class InlinePool:
    """Runs calls in this process: for one-shot commands and measurements."""

    workers = 0

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    def shutdown(self, *, cancel: bool = False) -> None:
        pass
