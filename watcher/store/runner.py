"""Async access to the synchronous store: calls run on one dedicated thread, in order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from watcher.store.base import Store

P = ParamSpec("P")
T = TypeVar("T")


class StoreRunner:
    """``await db(db.store.method, *args)`` runs the call on the store thread: writes are
    serialised, SQLite never sees two writers, and the event loop never blocks on disk.
    Arguments and result are checked against the method's own signature."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    @contextlib.asynccontextmanager
    async def one_replica_at_a_time(self) -> AsyncIterator[None]:
        """Hold the store's decision lock: on PostgreSQL no other replica is inside this
        block meanwhile (story grouping must see the story the last article started)."""
        await self(self.store.lock_decisions)
        try:
            yield
        finally:
            await self(self.store.unlock_decisions)

    def shutdown(self) -> None:
        # Waits for a call already handed to the thread: a stop never cuts a transaction.
        self._executor.shutdown(wait=True)
