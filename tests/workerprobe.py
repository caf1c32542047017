"""Jobs for pool workers that import nothing: a probe must not load what it looks for."""

from __future__ import annotations

import sys


def loaded_modules() -> list[str]:
    """The modules the worker has imported (this module aside)."""
    return sorted(name for name in sys.modules if name != __name__)
