"""The process pool for CPU-heavy work (feed parsing, extraction, NLP), off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from watcher.errors import WatcherError

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often a worker checks that the daemon that started it is still alive.
_PARENT_CHECK_SECONDS = 0.5


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
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await loop.run_in_executor(self._executor, call)
        except BrokenProcessPool:
            log.error("a worker process died; starting a new pool")
            self._executor = self._new_executor()
            raise WatcherError(f"worker process died while running {fn.__name__}") from None

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        """Stop the workers. With ``grace``, a worker still busy that many seconds later is
        terminated (its job is lost, so a stop never waits on a runaway page)."""
        # No public API lists an executor's processes; the attribute exists since Python 3.2.
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=grace is None, cancel_futures=cancel)
        if grace is None:
            return
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                log.warning("worker process %d still busy at stop; terminating it", process.pid)
                process.kill()
                process.join()
        self._executor.shutdown(wait=True)


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the daemon that started this worker is gone.

    A daemon killed by SIGKILL or the OOM killer cannot shut its pool down, and a spawned
    worker never sees its call queue close (it holds the queue's write end too), so it would
    wait for work forever, holding the NLP models' memory, one more after every crash."""
    watch = threading.Thread(target=_watch_parent, args=(parent,), name="watch daemon")
    watch.daemon = True
    watch.start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(1)


class InlinePool:
    """Runs calls in this process: for one-shot commands and measurements."""

    workers = 0

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        pass
