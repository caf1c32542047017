"""Process pools for CPU-heavy work (feed parsing; extraction and matching), with budgets."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from watcher import workerproc
from watcher.errors import BudgetError, WorkerError

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """``await pool(fn, *args)`` runs a top-level function of an importable module (not of a
    script run as __main__) in a worker process, with picklable arguments and result.

    Workers are fresh interpreters started with subprocess, not forked: the daemon has
    threads (store, HTTP) whose locks a fork would copy mid-use. A worker runs
    watcher.workerproc, which imports only the standard library, and talks to its pool over
    a socket pair: no semaphores, so no multiprocessing resource tracker either. Each worker
    imports and runs ``preload`` ("module:function") with ``preload_args`` once at start-up
    (import and warm what its jobs need), one worker at a time, before its first job. At most
    one job more than there are workers is handed out at a time: the others wait here,
    those of an urgent() task first, so a fresh article or feed never queues behind a
    backfill's jobs already submitted. A job running longer than ``seconds`` is abandoned
    and its worker terminated and replaced (BudgetError); a job growing its worker's address
    space by more than ``memory_mb`` fails with MemoryError (BudgetError). A worker that
    dies (e.g. killed for memory) is replaced (WorkerError).
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
        # The arguments stay pickled until the worker preloads: unpickling them imports modules.
        self._init = (os.getpid(), sys.path, memory_mb * MB, preload, pickle.dumps(preload_args))
        # Workers preload one at a time: two loading spaCy at once on two busy cores are both
        # ready later than the first of them alone, and the first alert waits for the first.
        self._preloading = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._slots: list[_Slot] = []
        # One job more than workers: the next job is already waiting when a worker frees,
        # so none idles between jobs, and an urgent job waits for at most that one.
        self._turns = Turns(self.workers + 1)
        self._lock = threading.Lock()  # starting, handing out a job, stopping
        self.stopped = False
        self.cancelling = False  # set at a stop with cancel: workers still preloading end
        self.killing = False  # set at a stop: busy workers are terminated at once

    def start(self) -> None:
        """Start the workers now (they preload in the background) rather than at first use."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._slots or self.stopped:
            return
        slots = [_Slot(self, index) for index in range(self.workers)]
        for slot in slots:
            slot.thread.start()
        self._slots = slots

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._turns:
            return await self._run(fn, args, kwargs)

    async def _run(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        if getattr(fn, "__module__", None) == "__main__":  # a worker imports jobs by module
            raise TypeError(f"{fn.__name__} must be defined in a module, not in __main__")
        job = _Job((fn, args, kwargs))
        with self._lock:  # never queued behind the stop's end-of-work markers
            if self.stopped:
                raise WorkerError(f"{fn.__name__}: the {self.name} pool was stopped")
            self._start()
            self._jobs.put(job)
        try:
            return cast(T, await asyncio.wrap_future(job.future))
        except asyncio.CancelledError:
            job.abandoned = True  # a job already running has its worker terminated
            raise
        except _OverTime:
            raise BudgetError(
                f"{fn.__name__} ran over its {self.seconds:g} s budget in the {self.name} pool;"
                " its worker was replaced"
            ) from None
        except MemoryError:
            raise BudgetError(
                f"{fn.__name__} needed more than its {self.memory_mb} MB memory budget in the"
                f" {self.name} pool"
            ) from None
        except _Died as exc:
            log.error("a %s worker process died (%s); it is replaced", self.name, exc)
            raise WorkerError(f"worker process died while running {fn.__name__}") from None
        except _Unstartable as exc:
            raise WorkerError(
                f"no {self.name} worker process could run {fn.__name__}: {exc}"
            ) from None
        except (_Stopped, _Abandoned):
            raise WorkerError(f"{fn.__name__}: the {self.name} pool was stopped") from None

    def worker_pids(self) -> list[int]:
        """The worker processes alive now (for the stop path's checks and tests)."""
        return [pid for slot in self._slots if (pid := slot.pid()) is not None]

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        """Stop the workers (once: later calls do nothing); later jobs fail with WorkerError.
        Jobs already handed out (at most one more than workers) still run, unless
        ``cancel``. With ``grace``, a worker still busy that many seconds later is terminated
        (its job is lost, so a stop never waits on a runaway page); ``cancel`` without a
        grace terminates busy workers at once."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            if cancel:
                self.cancelling = True
                self._fail_waiting_jobs()
                self.killing = grace is None
            slots = self._slots
            for _ in slots:
                self._jobs.put(None)
        deadline = None if grace is None else time.monotonic() + grace
        for slot in slots:
            slot.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(slot.thread.is_alive() and slot.busy for slot in slots):
            log.warning("%s workers still busy at stop; terminating them", self.name)
        self.killing = True
        for slot in slots:
            slot.thread.join()

    def _fail_waiting_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(_Stopped())

    def _next_job(self) -> _Job | None:
        return self._jobs.get()

    def _spawn_worker(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """A new worker process, preloaded; _Unstartable if it cannot start or preload."""
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # out of file descriptors
            raise _Unstartable(f"cannot make a pipe to a worker: {exc}") from None
        command = [sys.executable, "-c", _CHILD.format(root=_ROOT, fd=theirs.fileno())]
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, pass_fds=[theirs.fileno()]
            )
        except OSError as exc:
            ours.close()
            raise _Unstartable(f"cannot start {sys.executable}: {exc}") from None
        finally:
            theirs.close()
        try:
            with self._preloading:
                if self.cancelling or self.killing:  # nobody is waiting for it
                    raise _Stopped()
                workerproc.send(ours.fileno(), self._init)
                status, value = _wait_reply(ours, self, None, None)
        except Exception as exc:  # it died, was stopped, or its reply was unreadable
            _end_process(process, ours)
            raise _Unstartable(f"the worker ended while preloading ({exc!r})") from None
        if status != workerproc.READY:
            _end_process(process, ours)
            log.error("a %s worker could not preload %s: %r", self.name, self._init[3], value)
            raise _Unstartable(f"preloading failed: {value!r}")
        return process, ours


# A worker's command: watcher's own folder first, so it finds the same package as this
# process; the worker then takes this process's sys.path from its init message.
_CHILD = "import sys; sys.path.insert(0, {root!r}); from watcher.workerproc import main; main({fd})"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How often a busy worker's thread checks for a stop or an abandoned job.
_CHECK_SECONDS = 0.1


class _Job:
    """One call, waiting for or running in a worker; ``abandoned`` once nobody waits for it."""

    __slots__ = ("abandoned", "call", "future")

    def __init__(self, call: tuple[Callable[..., Any], Any, Any]) -> None:
        self.call = call
        self.future: Future[Any] = Future()
        self.abandoned = False


class _OverTime(Exception):
    """The job ran over its time budget; its worker was terminated."""


class _Died(Exception):
    """The worker process exited while running the job."""


class _Unstartable(Exception):
    """No worker process could be started (or preloaded) for the job."""


class _Stopped(Exception):
    """The pool was stopped under the job."""


class _Abandoned(Exception):
    """Nobody waits for the running job any more."""


class _Slot:
    """One worker process, replaced whenever it dies or is terminated, and the thread that
    hands it jobs one at a time and waits for each one's reply."""

    def __init__(self, pool: CpuPool, index: int) -> None:
        self.pool = pool
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: socket.socket | None = None
        self.busy = False  # a job is in the worker now
        self.thread = threading.Thread(
            target=self._serve, name=f"{pool.name} worker {index}", daemon=True
        )

    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.poll() is None else None

    def _serve(self) -> None:
        try:
            self._try_to_start()
            while (job := self.pool._next_job()) is not None:
                if job.future.set_running_or_notify_cancel():
                    self._run_safely(job)
        finally:
            self._end(polite=True)

    def _run_safely(self, job: _Job) -> None:
        try:
            self._run(job)
        except Exception as exc:  # a fault here must not end this thread and strand callers
            log.exception("the %s pool failed to run a job; its worker is replaced", self.pool.name)
            self._end()
            if not job.future.done():
                job.future.set_exception(exc)

    def _try_to_start(self) -> None:
        """Start a worker in this slot now; if it cannot start, the next job says why."""
        try:
            self.process, self.conn = self.pool._spawn_worker()
        except _Unstartable:
            pass
        except Exception:  # a fault here must not end this thread and strand callers
            log.exception("a %s worker could not be started", self.pool.name)

    def _run(self, job: _Job) -> None:
        try:
            conn = self._live_worker()
        except (_Unstartable, _Stopped) as exc:
            job.future.set_exception(exc)
            return
        try:
            workerproc.send(conn.fileno(), job.call)
        except OSError:  # it died while idle, after the check above
            self._replace(job, _Died())
            return
        except Exception as exc:  # unpicklable arguments: nothing was sent
            job.future.set_exception(exc)
            return
        deadline = None if self.pool.seconds is None else time.monotonic() + self.pool.seconds
        self.busy = True
        try:
            status, value = _wait_reply(conn, self.pool, job, deadline)
        except (_OverTime, _Abandoned, _Stopped, _Died) as exc:
            self._replace(job, exc)
            return
        finally:
            self.busy = False
        if status == workerproc.OK:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)

    def _replace(self, job: _Job, failure: Exception) -> None:
        """End this slot's worker, fail ``job`` with ``failure`` (a death says the exit
        code), and start the next worker at once unless the pool is stopping."""
        code = self._end()
        if isinstance(failure, _Died):
            failure = _Died(f"exit code {code}")
        job.future.set_exception(failure)
        if not self.pool.stopped:  # the next job finds a worker ready
            self._try_to_start()

    def _live_worker(self) -> socket.socket:
        """The pipe to a live worker, started (or restarted) if need be."""
        if self.pool.killing:
            raise _Stopped()
        if self.process is not None and self.process.poll() is not None:
            self._end()  # it died while idle
        if self.conn is None:
            self.process, self.conn = self.pool._spawn_worker()
        return self.conn

    def _end(self, *, polite: bool = False) -> int | None:
        """End this slot's worker, if any; its exit code."""
        code = None
        if self.process is not None and self.conn is not None:
            _end_process(self.process, self.conn, polite=polite)
            code = self.process.returncode
        self.process = self.conn = None
        return code


def _wait_reply(
    conn: socket.socket, pool: CpuPool, job: _Job | None, deadline: float | None
) -> tuple[str, Any]:
    """The worker's next message; raises if it dies, overruns ``deadline``, the job is
    abandoned or the pool stops at once."""
    while True:
        if pool.killing or (job is None and pool.cancelling):  # preloading for nobody
            raise _Stopped()
        if job is not None and job.abandoned:
            raise _Abandoned()
        if deadline is not None and time.monotonic() > deadline:
            raise _OverTime()
        if workerproc.readable(conn.fileno(), _CHECK_SECONDS):
            break
    try:
        message = workerproc.receive(conn.fileno())
    except (EOFError, OSError) as exc:
        raise _Died(str(exc)) from None
    try:
        return cast(tuple[str, Any], pickle.loads(message))
    except Exception as exc:  # a result this process cannot rebuild: the job's failure
        return workerproc.ERROR, exc


def _end_process(
    process: subprocess.Popen[bytes], conn: socket.socket, *, polite: bool = False
) -> None:
    """Stop a worker: asked to (``polite``, when idle) or terminated, then killed if it lingers."""
    if polite:
        with contextlib.suppress(OSError):
            workerproc.send(conn.fileno(), None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    conn.close()


class InlinePool:
    """Runs calls in this process: for one-shot commands and measurements."""

    workers = 0

    def start(self) -> None:
        pass

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        pass
