"""Process pools for CPU-heavy work (feed parsing; extraction and matching), with budgets."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import importlib
import importlib.machinery
import itertools
import logging
import multiprocessing
import os
import pickle
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import pebble

from watcher.errors import BudgetError, WorkerError

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often a worker checks that the daemon that started it is still alive.
_PARENT_CHECK_SECONDS = 0.5
MB = 1024 * 1024
# Whether the current task's jobs go ahead of the others waiting for a worker (see urgent()).
_URGENT = contextvars.ContextVar("watcher_workers_urgent", default=False)


def urgent() -> None:
    """From now on, the jobs of the calling asyncio task (and of the tasks it starts) go
    ahead of every other job waiting for a worker: news ahead of a backfill."""
    _URGENT.set(True)


class Turns:
    """At most ``capacity`` holders at once; the others wait, urgent ones (urgent()) first,
    then in arrival order. ``async with turns:`` holds a turn."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiting: list[tuple[bool, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def __aenter__(self) -> None:
        if self._free > 0:  # then nobody waits: a free turn is always handed on at once
            self._free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (not _URGENT.get(), next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a turn, cancelled before using it
                self._hand_on()
            raise

    async def __aexit__(self, *_: object) -> None:
        self._hand_on()

    def _hand_on(self) -> None:
        while self._waiting:
            *_, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)
                return
        self._free += 1


def pool_size(configured: int) -> int:
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


class CpuPool:
    """``await pool(fn, *args)`` runs a picklable top-level function in a worker process.

    Workers are spawned, not forked: the daemon has threads (store, HTTP) whose locks a
    fork would copy mid-use. Each worker imports and runs ``preload`` ("module:function")
    with ``preload_args`` once at start-up (import and warm what its jobs need), one worker
    at a time, before its first job. At most one job more than there are workers is handed
    to them at a time: the others wait here, those of an urgent() task first, so a fresh article or
    feed never queues behind a backfill's jobs already submitted. A job running longer than
    ``seconds`` is abandoned and its worker terminated and replaced (BudgetError); a job
    growing its worker's address space by more than ``memory_mb`` fails with MemoryError
    (BudgetError). A worker that dies (e.g. killed for memory) is replaced (WorkerError).
    """

    def __init__(
        self,
        workers: int,
        *,
        name: str = "cpu",
        seconds: float | None = None,
        memory_mb: int = 0,
        preload: str = "",
        preload_args: tuple[Any, ...] = (),
    ) -> None:
        self.workers = pool_size(workers)
        self.name = name
        self.seconds = seconds
        self.memory_mb = memory_mb
        self._context = multiprocessing.get_context("spawn")
        # Workers preload one at a time: two loading spaCy at once on two busy cores are both
        # ready later than the first of them alone, and the first alert waits for the first.
        preloading = self._context.Lock()
        # The arguments stay pickled until the lock is held: unpickling them imports modules.
        args = pickle.dumps(preload_args)
        self._initargs = (os.getpid(), memory_mb * MB, preload, args, preloading)
        self._pool = self._new_pool()
        # One job more than workers: the next job is already in the pipe when a worker frees,
        # so none idles between jobs, and an urgent job waits for at most that one.
        self._turns = Turns(self.workers + 1)
        self._stopped = False

    def _new_pool(self) -> pebble.ProcessPool:
        return pebble.ProcessPool(
            self.workers,
            initializer=_start_worker,
            initargs=self._initargs,
            context=self._context,
        )

    def start(self) -> None:
        """Start the workers now (they preload in the background) rather than at first use."""
        for _ in range(self.workers):
            self._pool.schedule(os.getpid)

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._turns:
            return await self._run(fn, args, kwargs)

    async def _run(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        try:
            future = self._pool.schedule(fn, args, kwargs, timeout=self.seconds)
        except RuntimeError as exc:  # pebble's pool went to its error state (all workers died)
            log.error("the %s worker pool failed (%s); starting a new one", self.name, exc)
            self._replace_pool()
            raise WorkerError(f"no worker process could run {fn.__name__}: {exc}") from None
        try:
            # Cancelling the awaiting task cancels the job; pebble terminates a busy worker.
            return await asyncio.wrap_future(future)
        except TimeoutError:
            raise BudgetError(
                f"{fn.__name__} ran over its {self.seconds:g} s budget in the {self.name} pool;"
                " its worker was replaced"
            ) from None
        except MemoryError:
            raise BudgetError(
                f"{fn.__name__} needed more than its {self.memory_mb} MB memory budget in the"
                f" {self.name} pool"
            ) from None
        except pebble.ProcessExpired as exc:
            log.error("a %s worker process died (%s); it is replaced", self.name, exc)
            raise WorkerError(f"worker process died while running {fn.__name__}") from None
        except BrokenProcessPool as exc:  # no worker could start: try a new pool next time
            log.error("the %s worker pool broke (%s); starting a new one", self.name, exc)
            self._replace_pool()
            raise WorkerError(f"no worker process could run {fn.__name__}: {exc}") from None
        except FutureCancelled:  # the pool itself was stopped under the job
            raise WorkerError(f"{fn.__name__}: the {self.name} pool was stopped") from None

    def _replace_pool(self) -> None:
        old, self._pool = self._pool, self._new_pool()
        with contextlib.suppress(Exception):  # already broken: only its processes to end
            old.stop()  # type: ignore[no-untyped-call]

    def worker_pids(self) -> list[int]:
        """The worker processes alive now (for the stop path's checks and tests)."""
        # pebble keeps them in its pool manager; no public API lists them.
        workers = self._pool._pool_manager.worker_manager.workers
        return [pid for pid, process in list(workers.items()) if process.is_alive()]

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        """Stop the workers (once: later calls do nothing). With ``grace``, a worker still
        busy that many seconds later is terminated (its job is lost, so a stop never waits on
        a runaway page)."""
        if self._stopped:
            return
        self._stopped = True
        if cancel and grace is None:
            self._pool.stop()  # type: ignore[no-untyped-call]
        else:
            self._pool.close()  # type: ignore[no-untyped-call]
        try:
            self._pool.join(timeout=grace)
        except TimeoutError:
            log.warning("%s workers still busy at stop; terminating them", self.name)
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join()


def _start_worker(
    parent: int,
    memory: int,
    preload: str,
    args: bytes,
    preloading: Any,  # a multiprocessing Lock
) -> None:
    """Worker initializer: watch the parent, preload, then cap the address space."""
    _exit_with_parent(parent)
    if preload:
        with preloading:  # the imports too: they are most of a worker's start-up
            module, _, name = preload.partition(":")
            getattr(importlib.import_module(module), name)(*pickle.loads(args))
    if memory:
        # Counted from the preloaded size: what one job may add (a huge document, a bomb).
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _address_space() + memory
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _exit_with_parent(parent: int) -> None:
    """Exit as soon as the daemon that started this worker is gone.

    A daemon killed by SIGKILL or the OOM killer cannot shut its pool down, and a spawned
    worker would wait for work forever, holding the NLP models' memory, one more after every
    crash."""
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

    def start(self) -> None:
        pass

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        pass


def spawn_lightly() -> None:
    """Keep spawned workers from importing the whole command line.

    A spawned worker re-runs the parent's main script to find its functions, and the
    `watcher` console script imports watcher.cli, hence the daemon, the store, aiohttp and
    the bot. Naming the main module as the package's ``__main__`` instead is what
    ``python -m watcher`` does, and multiprocessing does not re-run a ``__main__`` module.
    """
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.machinery.ModuleSpec("watcher.__main__", None)
