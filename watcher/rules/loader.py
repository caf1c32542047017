"""Loading rules: rule files (regular files only) read, composed and checked into a RuleSet."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from watcher.errors import RuleError
from watcher.rules.checker import Checker
from watcher.rules.model import Rule, RuleSet
from watcher.rules.yamlpos import compose

MAX_FILE_BYTES = 1_000_000


def load_rules(directory: Path) -> RuleSet:
    """Every rule in ``directory``'s ``*.yaml``/``*.yml`` files (hidden files are skipped).

    Raises RuleError listing every problem of every file, and duplicate rule names.
    """
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory not found (create it, or set rules_dir)")
    paths = sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
    )
    problems: list[str] = []
    rules: list[Rule] = []
    digest = hashlib.sha256()
    for path in paths:
        data = _read(path, problems)
        if data is None:
            continue
        # The whole path: rules remember their file, so copies elsewhere are other rule sets.
        digest.update(str(path).encode() + b"\0" + data + b"\0")
        rules += _parse_file(path, data, problems)
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules), digest.hexdigest())


def load_rule_file(path: Path) -> list[Rule]:
    """The rules in one file; raises RuleError listing every problem."""
    problems: list[str] = []
    data = _read(path, problems)
    rules = _parse_file(path, data, problems) if data is not None else []
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return rules


def parse_rules(text: str, path: Path = Path("rules.yaml")) -> list[Rule]:
    """The rules in ``text`` as if read from ``path``; raises RuleError."""
    problems: list[str] = []
    rules = _parse_file(path, text.encode("utf-8", "surrogatepass"), problems)
    problems += _duplicate_names(rules)
    if problems:
        raise RuleError(problems)
    return rules


def _read(path: Path, problems: list[str]) -> bytes | None:
    """The file's bytes; a FIFO, device or directory is refused without being opened for
    reading (opening a FIFO blocks until a writer comes, which may be never)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        problems.append(f"{path}:1:1: cannot read rule file: {exc.strerror or exc}")
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        problems.append(f"{path}:1:1: not a regular file (remove it, or rename it off .yaml)")
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        problems.append(f"{path}:1:1: rule file is larger than {MAX_FILE_BYTES:,} bytes")
        return None
    return data


def _duplicate_names(rules: list[Rule]) -> list[str]:
    first: dict[str, Rule] = {}
    problems = []
    for rule in rules:
        if rule.name in first:
            where = f"{first[rule.name].path}:{first[rule.name].line}"
            problems.append(
                f"{rule.path}:{rule.line}:1: duplicate rule name {rule.name!r} "
                f"(first defined at {where}; rule names must be unique)"
            )
        first.setdefault(rule.name, rule)
    return problems


def _parse_file(path: Path, data: bytes, problems: list[str]) -> list[Rule]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"{path}:1:1: not UTF-8 text (byte {exc.start}); save the file as UTF-8")
        return []
    documents = compose(path, text, problems)
    if documents is None:
        return []
    documents = [d for d in documents if d.value is not None]
    if not documents:
        problems.append(
            f"{path}:1:1: no rule in the file: it is empty or holds only comments (a rule "
            "needs actors, keywords or regex; delete the file or see docs/rules.md)"
        )
        return []
    found: list[str] = []
    checker = Checker(path, found)
    many = len(documents) > 1
    rules = [checker.rule(d, default_name="" if many else path.stem) for d in documents]
    problems += sorted(found, key=_position)
    return [r for r in rules if r is not None]


def _position(problem: str) -> tuple[int, int]:
    match = re.search(r":(\d+):(\d+): ", problem)
    return (int(match[1]), int(match[2])) if match else (0, 0)
