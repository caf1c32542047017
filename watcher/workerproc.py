"""A worker process of watcher.workers: preload, then run jobs from its pipe until stopped."""

from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import resource
import select
import signal
import struct
import sys
import threading
import time
from typing import Any

# Messages from a worker: ("ready", None) after preload, ("failed", exception) when preload
# failed, then per job ("ok", result) or ("error", exception).
READY, FAILED, OK, ERROR = "ready", "failed", "ok", "error"

# Each message on the pipe: its length, then its pickle.
_LENGTH = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# How often a worker checks that the daemon that started it is still alive.
_PARENT_CHECK_SECONDS = 0.5


def main(fd: int) -> None:
    """Serve the pool on the socket ``fd``: an init message (the parent's pid and sys.path,
    the address-space budget, the preload), then jobs ``(fn, args, kwargs)`` until ``None``
    or the parent is gone.

    This module imports only the standard library, so a worker costs what its preload and
    jobs import and no more (not even multiprocessing: no asyncio, no resource tracker)."""
    # A Ctrl-C in a terminal reaches the whole process group; the daemon decides the stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        init = pickle.loads(receive(fd))
    except (EOFError, OSError):  # the pool was stopped before this worker started
        return
    parent, path, memory, preload, args = init
    sys.path[:] = path  # the parent's: jobs may live in modules it found there (tests, bench)
    _die_with_parent(parent)
    try:
        _preload(preload, args)
        _cap_address_space(memory)
    except BaseException as exc:  # (reported to the pool, which fails the job)
        _reply(fd, (FAILED, _portable(exc)))
        return
    if _reply(fd, (READY, None)):
        _serve(fd)


def send(fd: int, message: Any) -> None:
    """Write ``message`` to the pipe ``fd``; blocks until it is all written."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int) -> bytearray:
    """The next message's pickle from the pipe ``fd``; EOFError once the other end is closed.
    MemoryError when it does not fit (the message is then skipped: the next one reads fine)."""
    (length,) = _LENGTH.unpack(_read_into(fd, bytearray(_LENGTH.size)))
    try:
        buffer = bytearray(length)
    except MemoryError:
        _skip(fd, length)
        raise
    return _read_into(fd, buffer)


def readable(fd: int, seconds: float) -> bool:
    """Whether a message (or the end of the pipe) waits on ``fd``, waiting up to ``seconds``."""
    poller = select.poll()  # not select.select: a daemon's descriptors may pass 1,024
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def _read_into(fd: int, buffer: bytearray) -> bytearray:
    view, done = memoryview(buffer), 0
    while done < len(buffer):
        got = os.readv(fd, [view[done:]])
        if not got:
            raise EOFError(f"the pipe closed {done} bytes into a {len(buffer)}-byte message")
        done += got
    return buffer


def _skip(fd: int, length: int) -> None:
    while length:
        chunk = os.read(fd, min(length, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed inside a message")
        length -= len(chunk)


def _serve(fd: int) -> None:
    while True:
        try:
            message = receive(fd)
        except (EOFError, OSError):  # the daemon is gone
            return
        except MemoryError as exc:  # the job's arguments alone overran the budget
            reply: tuple[str, Any] = (ERROR, exc)
        else:
            try:
                job = pickle.loads(message)
                if job is None:
                    return
                del message  # a page's bytes: not held while the job runs
                fn, args, kwargs = job
                reply = (OK, fn(*args, **kwargs))
            except BaseException as exc:  # (the job's failure is its caller's)
                reply = (ERROR, _portable(exc))
        if not _reply(fd, reply):
            return


def _reply(fd: int, reply: tuple[str, Any]) -> bool:
    """Send ``reply`` to the pool; False once the pool is gone (a stop, a crashed daemon)."""
    try:
        send(fd, reply)
    except OSError:
        return False
    except Exception as exc:  # an unpicklable result: pickling fails before anything is sent
        return _reply(fd, (ERROR, _portable(exc)))
    return True


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling and is an Exception, else a RuntimeError naming it:
    a SystemExit or KeyboardInterrupt raised in the daemon would end its event loop."""
    if not isinstance(exc, Exception):
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _preload(preload: str, args: bytes) -> None:
    if preload:
        module, _, name = preload.partition(":")
        getattr(importlib.import_module(module), name)(*pickle.loads(args))


def _cap_address_space(memory: int) -> None:
    """Counted from the preloaded size: what one job may add (a huge document, a bomb)."""
    if not memory:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _die_with_parent(parent: int) -> None:
    """End this worker as soon as the daemon that started it is gone, even mid-job.

    A daemon killed by SIGKILL or the OOM killer cannot stop its workers, and a busy worker
    would hold the NLP models' memory until its job ends, one more after every crash. On
    Linux the kernel kills it (PR_SET_PDEATHSIG, when the thread that started it ends), which
    works even while a job holds the GIL in C code (a regular expression); elsewhere a
    thread watches the parent."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)  # Linux only
    if prctl is not None and prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        if os.getppid() != parent:  # it died before the line above
            os._exit(1)
        return
    watch = threading.Thread(target=_watch_parent, args=(parent,), name="watch daemon")
    watch.daemon = True
    watch.start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(1)
