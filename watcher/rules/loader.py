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
from watcher.rules.yamlpos import compose, decode

MAX_FILE_BYTES = 1_000_000
SUFFIXES = (".yaml", ".yml")  # matched as written; rules/reload.py watches the same
_UNREAD_SHOWN = 10  # rule files in subfolders named at most


def load_rules(directory: Path) -> RuleSet:
    """Every rule in ``directory``'s ``*.yaml``/``*.yml`` files (hidden files are skipped).

    Raises RuleError listing every problem of every file and duplicate rule names. What
    loads but was likely not meant is in the RuleSet's ``warnings``: rule files it does not
    read (``top.YAML``, ``sub/a.yaml``), a phrase with commas where a list was likely meant.
    """
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory not found (create it, or set rules_dir)")
    paths = sorted(
        p for p in directory.iterdir() if p.suffix in SUFFIXES and not p.name.startswith(".")
    )
    problems: list[str] = []
    warnings = _unread_files(directory)
    rules: list[Rule] = []
    digest = hashlib.sha256()
    for path in paths:
        data = _read(path, problems)
        if data is None:
            continue
        # The whole path: rules remember their file, so copies elsewhere are other rule sets.
        digest.update(str(path).encode() + b"\0" + data + b"\0")
        rules += _parse_file(path, data, problems, warnings)
    problems += _duplicate_names(rules)
    if problems:  # a warning there often explains an error ("console, email" as one)
        raise RuleError([*problems, *warnings])
    return RuleSet(tuple(rules), digest.hexdigest(), tuple(warnings))


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


def _unread_files(directory: Path) -> list[str]:
    """Rule-like files the loader would pass over without a word: ``top.YAML`` (the suffix is
    matched as written) and ``.yaml`` files in subfolders (hidden ones are kept for drafts)."""
    problems = [
        f"{p}:1:1: not read: rule files end in lowercase .yaml or .yml "
        f"(rename it to {p.stem}{p.suffix.lower()})"
        for p in sorted(directory.iterdir())
        if p.suffix.lower() in SUFFIXES and p.suffix not in SUFFIXES and p.name[:1] != "."
    ]
    nested = _nested_rule_files(directory)
    problems += [
        f"{directory / p}:1:1: rules in subfolders are not read: {p} (move it into "
        f"{directory}, or into a hidden folder such as .archive/ to keep it unread)"
        for p in nested[:_UNREAD_SHOWN]
    ]
    if len(nested) > _UNREAD_SHOWN:
        problems[-1] += "; more files in subfolders are not named"
    return problems


def _nested_rule_files(directory: Path) -> list[Path]:
    """``.yaml``/``.yml`` files (any case) in non-hidden subfolders, relative to ``directory``;
    the walk stops once it has more than it names (a rules_dir set to a big tree)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if Path(root) != directory:
            found += [
                Path(root, f).relative_to(directory)
                for f in sorted(files)
                if Path(f).suffix.lower() in SUFFIXES and not f.startswith(".")
            ]
        if len(found) > _UNREAD_SHOWN:
            break
    return found


def _duplicate_names(rules: list[Rule]) -> list[str]:
    """Rule names used twice, ignoring case (/mute and the bot's commands find rules so). The
    problem goes to the copy in the file changed last, which is most likely the new one."""
    named: dict[str, list[Rule]] = {}
    for rule in rules:
        named.setdefault(rule.name.casefold(), []).append(rule)
    problems = []
    for group in named.values():
        if len(group) < 2:
            continue  # the files' ages are read only for a name used twice
        other, *later = sorted(group, key=_age)
        for rule in later:
            same = "" if other.name == rule.name else f" as {other.name!r}"
            problems.append(
                f"{rule.path}:{rule.line}:1: duplicate rule name {rule.name!r} (also defined"
                f"{same} at {other.path}:{other.line}; rule names must be unique, ignoring "
                "case: rename one)"
            )
    return problems


def _age(rule: Rule) -> tuple[int, str, int]:
    """Older first: modification time, then file name, then line."""
    try:
        mtime = rule.path.stat().st_mtime_ns
    except OSError:  # parse_rules' made-up path, or a file gone since it was read
        mtime = 0
    return (mtime, str(rule.path), rule.line)


def _parse_file(
    path: Path, data: bytes, problems: list[str], warnings: list[str] | None = None
) -> list[Rule]:
    text = decode(path, data, problems)
    if text is None:
        return []
    found_warnings: list[str] = []
    documents = compose(path, text, problems, found_warnings)
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
    checker = Checker(path, found, found_warnings)
    many = len(documents) > 1
    rules = [checker.rule(d, default_name="" if many else path.stem) for d in documents]
    problems += sorted(found, key=_position)
    if warnings is not None:
        warnings += sorted(found_warnings, key=_position)
    return [r for r in rules if r is not None]


def _position(problem: str) -> tuple[int, int]:
    match = re.search(r":(\d+):(\d+): ", problem)
    return (int(match[1]), int(match[2])) if match else (0, 0)
