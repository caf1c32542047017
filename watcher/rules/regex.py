"""Regex safety: rule regexes compile with google-re2 only (linear time, no backtracking)."""

from __future__ import annotations

from typing import Any

import re2


def regex_problem(pattern: str) -> str:
    """Why google-re2 refuses ``pattern``, or "" when it compiles."""
    try:
        compile_regex(pattern)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return ""


def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by google-re2 (linear time: no catastrophic backtracking)."""
    return re2.compile(pattern, _re2_options())


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options
