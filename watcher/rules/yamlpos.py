"""YAML with positions: composes rule files into values that know their line and column.

Refuses exotic tags, alias bombs and deep nesting before anything is built from them.
"""

from __future__ import annotations

import itertools
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


def compose(
    path: Path, text: str, problems: list[str], warnings: list[str] | None = None
) -> list[Y] | None:
    """The documents in ``text``, or None after a problem; ``warnings`` gets what loads but
    was likely not meant."""
    try:
        _check_depth(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
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
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    indent = line[: len(line) - len(line.lstrip())]
    said = f"{exc.problem} {exc.context}"
    if "'\\t'" in said or "\t" in indent:
        return "; indent with spaces, not tabs"
    if "<block end>" in said:
        return "; check this line's indentation against the lines above"
    if "mapping values are not allowed" in said:
        # A key indented deeper than the one above continues its value; so does "a: b: c".
        return (
            "; check this line's indentation against the lines above, and quote a value "
            "that holds ': '"
        )
    return ""


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
        return self.at(node, value, node.value)

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
