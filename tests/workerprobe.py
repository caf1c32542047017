"""Jobs for pool workers that import nothing: a probe must not load what it looks for."""

from __future__ import annotations

import sys


def loaded_modules() -> list[str]:
    """The modules the worker has imported (this module aside)."""
    return sorted(name for name in sys.modules if name != __name__)


def sleep_then_pid(seconds: float) -> int:
    import os
    import time

    time.sleep(seconds)
    return os.getpid()


def hold_the_gil() -> bool:
    """Hours of regular-expression backtracking, in C code that never lets the GIL go."""
    import re

    return re.match(r"(a+)+$", "a" * 64 + "!") is not None


class Unreadable:
    """Pickles fine in a worker, fails to unpickle in the daemon."""

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (int, ("not a number",))


def unreadable_result() -> Unreadable:
    return Unreadable()


def exit_the_process() -> None:
    raise SystemExit(3)
