"""YAML with positions: composes rule files into values that know their line and column.

Refuses exotic tags, alias bombs and deep nesting before anything is built from them.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_NODES = 200_000


@dataclass
class Y:
    """A YAML value with its position (1-based); mappings keep their keys' positions."""

    value: Any  # str | int | float | bool | None | list[Y] | dict[str, Y]
    line: int
    column: int
    keys: dict[str, Y] = field(default_factory=dict)
    raw: str = ""  # a scalar's text as written
    quoted: bool = False  # a scalar in quotes or a block (| or >): its commas are deliberate


def decode(path: Path, data: bytes, problems: list[str]) -> str | None:
    """A rule file's text (a UTF-8 BOM dropped), or None after naming the first byte that is
    not UTF-8 where an editor shows it: its line and column."""
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = body.rfind(b"\n", 0, exc.start) + 1
        line = body.count(b"\n", 0, exc.start) + 1
        column = len(body[start : exc.start].decode("utf-8", "replace")) + 1
        offset = exc.start + len(data) - len(body)
        problems.append(
            f"{path}:{line}:{column}: not UTF-8 text (byte {offset}: 0x{body[exc.start]:02x}); "
            "save the file as UTF-8"
        )
        return None


def compose(
    path: Path, text: str, problems: list[str], warnings: list[str] | None = None
) -> list[Y] | None:
    """The documents in ``text``, or None after a problem; ``warnings`` gets what loads but
    was likely not meant."""
    try:
        _check_depth(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        # An odd space where YAML wants a space makes it fail on another line: name it. Only
        # then: in a file that parses, such a space is part of a phrase or a regex.
        if _odd_spaces(path, text, problems):
            return None
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        said = f"YAML syntax error: {exc.problem or exc.context}"
        problems.append(f"{path}:{where}: {said}{_syntax_hint(exc, text)}")
        return None
    except (yaml.YAMLError, RecursionError) as exc:
        problems.append(f"{path}:1:1: YAML error: {exc}")
        return None
    converter = _Converter(path, problems, [] if warnings is None else warnings)
    documents = [converter.convert(n, 0) for n in nodes]
    return None if converter.failed else documents


def _syntax_hint(exc: yaml.MarkedYAMLError, text: str) -> str:
    """What to do about a syntax error: PyYAML words it for its parser, not for the writer."""
    mark = exc.problem_mark or exc.context_mark
    lines = _LINE_BREAK_RE.split(text)  # as PyYAML counts lines
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    indent = line[: len(line) - len(line.lstrip())]
    said = f"{exc.problem} {exc.context}"
    if unclosed := _unclosed(exc, lines):
        return unclosed
    if "'\\t'" in said or "\t" in indent:
        return _tab_hint(line, mark.column if mark else 0, indent)
    if "<block end>" in said:
        return "; check this line's indentation against the lines above"
    if "mapping values are not allowed" in said:
        # A key indented deeper than the one above continues its value; so does "a: b: c".
        return (
            "; check this line's indentation against the lines above, and quote a value "
            "that holds ': '"
        )
    return ""


# What PyYAML was reading when it failed, for a bracket or quote left open: it names the
# place the error surfaced (often the next key), and only its context says where it opened.
_OPENED = {
    "while parsing a flow sequence": "the list opened at {} is not closed: add ']' after its "
    "last item",
    "while parsing a flow mapping": "the mapping opened at {} is not closed: add '}}' after "
    "its last entry",
    "while scanning a quoted scalar": "the quoted text opened at {} is not closed: add the "
    "closing quote",
}


def _unclosed(exc: yaml.MarkedYAMLError, lines: list[str]) -> str:
    """Where a list, mapping or quote that is not closed opened; "" for another error. An
    unclosed one runs to the end of the file or into the next key, a line indented no deeper
    than the one it opened on; an error before that (on its own line, or on a continuation
    line) is a missing comma or a stray quote inside it."""
    opened, problem, said = exc.context_mark, exc.problem_mark, exc.problem or ""
    hint = _OPENED.get(exc.context or "")
    if hint is None or opened is None or problem is None:
        return ""
    at_end = any(end in said for end in ("end of stream", "<stream end>", "document"))
    if "quoted" in hint:  # a quoted text may span lines: unclosed, it runs to the end
        if not at_end:
            return ""
    elif not at_end and not (
        problem.line > opened.line and _indent(lines, problem.line) <= _indent(lines, opened.line)
    ):
        return ""
    return "; " + hint.format(f"{opened.line + 1}:{opened.column + 1}")


def _indent(lines: list[str], index: int) -> int:
    line = lines[index] if index < len(lines) else ""
    return len(line) - len(line.lstrip(" "))


def _tab_hint(line: str, column: int, indent: str) -> str:
    """YAML allows a tab neither in the indentation nor between tokens, a comment included."""
    if "\t" in indent:
        return "; indent with spaces, not tabs"
    if line[column:].lstrip(" \t").startswith("#"):
        return "; a tab before a comment: YAML allows only spaces there (replace the tab)"
    return "; replace the tab with a space, or quote the text that holds it"


# Spaces YAML does not read as spaces: Alt+Space on a Mac keyboard types U+00A0, and text
# pasted from a web page or a word processor brings the others.
_ODD_SPACE = r"[^\S \t\n\r\x85\u2028\u2029]"
_ODD_SPACE_RE = re.compile(
    rf"^[ \t-]*+(?P<indent>{_ODD_SPACE})"  # among the spaces and dashes that start the line
    rf"|^[ \t-]*+[^\s:#'\"\[\]{{}},][^:#]*+:[ \t]*+(?P<after>{_ODD_SPACE})"  # after the key's colon
)
_ODD_START_RE = re.compile(rf"(?:[^\s:#]++:)?(?P<space>{_ODD_SPACE})")  # at a text's start
_LINE_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # as PyYAML counts lines
_BLOCK_SCALAR_RE = re.compile(r"(?:^|[\s:-])[|>][-+0-9]*[ \t]*(?:#.*)?$")
_SPACE_NAMES = {
    "\u00a0": "a non-breaking space",
    "\u2007": "a figure space",
    "\u202f": "a narrow non-breaking space",
    "\u3000": "an ideographic space",
    "\x0b": "a vertical tab",
    "\x0c": "a form feed",
}


def _odd_space_said(space: str, where: str) -> str:
    """What to say of a space YAML reads as text, found ``where`` ("in the indentation")."""
    name = _SPACE_NAMES.get(space, f"an unusual space ({unicodedata.name(space, '?')})")
    return (
        f"{name} (U+{ord(space):04X}) {where}: YAML reads it as text, not as a space; replace "
        "it with a plain space"
    )


def _odd_spaces(path: Path, text: str, problems: list[str]) -> bool:
    """Names each line whose indentation, or the space after its ``key:``, holds a space YAML
    reads as text (it then fails on another line, or reads a key and its value as one text);
    such a space inside a phrase is the phrase's own. Lines of a ``|`` or ``>`` text are
    skipped. Whether any was found."""
    found = False
    block = -1  # indentation of the key whose | or > text the lines are, -1 outside one
    for number, line in enumerate(_LINE_BREAK_RE.split(text), 1):
        indent = len(line) - len(line.lstrip(" "))
        if block >= 0 and (indent > block or not line.strip()):
            continue
        block = indent if _BLOCK_SCALAR_RE.search(line) else -1
        match = _ODD_SPACE_RE.search(line)
        if match is None:
            continue
        at = match.start("indent") if match["indent"] else match.start("after")
        before = line[:at].strip()
        where = f"after {before!r}" if before else "in the indentation"
        problems.append(f"{path}:{number}:{at + 1}: {_odd_space_said(line[at], where)}")
        found = True
    return found


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"nested more than {MAX_DEPTH} levels deep",
                    problem_mark=event.start_mark,  # type: ignore[arg-type]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class _Converter:
    """Turns composed YAML nodes into Y values, refusing exotic tags and alias bombs."""

    def __init__(self, path: Path, problems: list[str], warnings: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.warnings = warnings
        self.nodes = 0
        self.failed = False
        self.too_big = False
        self.constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, message: str) -> Y:
        mark = node.start_mark
        self.problems.append(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {message}")
        self.failed = True
        return Y(None, mark.line + 1, mark.column + 1)

    def warn(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.warnings.append(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {message}")

    def convert(self, node: yaml.Node, depth: int) -> Y:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            if self.too_big:  # said once: an alias bomb would repeat it for every node
                return self.at(node, None)
            self.too_big = True
            return self.fail(node, "document too large or too deeply nested (aliases?)")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
            return self.at(node, [self.convert(n, depth + 1) for n in node.value])
        if isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
            return self.mapping(node, depth)
        return self.fail(node, f"unsupported YAML tag {node.tag!r}")

    def at(self, node: yaml.Node, value: Any, raw: str = "") -> Y:
        quoted = isinstance(node, yaml.ScalarNode) and node.style is not None
        return Y(
            value, node.start_mark.line + 1, node.start_mark.column + 1, raw=raw, quoted=quoted
        )

    def scalar(self, node: yaml.ScalarNode) -> Y:
        if node.tag not in _SCALAR_TAGS:
            return self.fail(node, f"unsupported YAML tag {node.tag!r}")
        if node.tag == "tag:yaml.org,2002:timestamp":
            return self.at(node, node.value, node.value)
        try:
            value = self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            return self.fail(node, f"invalid value {node.value!r}: {exc}")
        if node.style is None:
            self.odd_space(node)
        return self.at(node, value, node.value)

    def odd_space(self, node: yaml.ScalarNode) -> None:
        """Warns about a plain text that starts with a space YAML reads as text, or holds one
        right after a ``key:`` ("weight:<U+00A0>2" is one text, not a key and its value):
        meant as indentation or a space, it changed what YAML read. A warning: such a file
        loads as it did before (the space may be the phrase's own)."""
        text = str(node.value)
        found = _ODD_START_RE.match(text)
        if found is None:
            return
        at = found.start("space")
        where = f"after {text[:at]!r}, so {text!r} is read as one text" if at else "at its start"
        mark = node.start_mark
        self.warnings.append(
            f"{self.path}:{mark.line + 1}:{mark.column + at + 1}: "
            f"{_odd_space_said(text[at], where)}"
        )

    def mapping(self, node: yaml.MappingNode, depth: int) -> Y:
        result = self.at(node, {})
        for key_node, head, meant in _cut_by_commas(node):
            self.warn(
                key_node,
                f"{key_node.value!r} is read as a key without a value: inside {{...}} a comma "
                f"ends the value before it; to give several, write a list: "
                f"{head}: [{', '.join(meant)}]",
            )
        for key_node, value_node in self._merged(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "a key must be plain text")
                continue
            key = self.at(key_node, key_node.value, key_node.value)
            if key_node.style is None:
                self.odd_space(key_node)
            if key_node.value in result.value:
                self.fail(key_node, f"duplicate key {key_node.value!r}")
                continue
            result.value[key_node.value] = self.convert(value_node, depth + 1)
            result.keys[key_node.value] = key
        return result

    def _merged(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """The node's pairs, with ``<<: *anchor`` merges expanded (own keys win)."""
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        yield from own
        for k, v in node.value:
            if k.tag != "tag:yaml.org,2002:merge":
                continue
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fail(source, "'<<' merges only mappings")
                    continue
                for sk, sv in source.value:
                    if isinstance(sk, yaml.ScalarNode) and sk.value not in own_keys:
                        own_keys.add(sk.value)
                        yield sk, sv


def _cut_by_commas(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, str, list[str]]]:
    """In a flow mapping, the values a comma cut short: ``{crash: crash, accident}`` reads
    ``accident`` as a key without a value. Yields the first key cut off after each text
    value, that value's key, and the list the writer meant."""
    pairs = node.value if node.flow_style else []
    for i, (key, value) in enumerate(pairs):
        if not (_is_text(key) and _is_text(value)):
            continue
        cut = list(
            itertools.takewhile(lambda p: _is_text(p[0]) and _left_out(p[1]), pairs[i + 1 :])
        )
        if cut:
            yield cut[0][0], key.value, [value.value, *(k.value for k, _ in cut)]


def _is_text(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"


def _left_out(node: yaml.Node) -> bool:
    """A value left out (``{a}``, ``{a: }``), not written as ``~`` or ``null``."""
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") and node.value == ""
