"""Prints the architecture figures: module and function sizes, public names, store importers.

Usage: python scripts/code_stats.py [PACKAGE_DIR]   (default: watcher)
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_store(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("watcher.store"):
            return True
        if isinstance(node, ast.Import) and any(
            a.name.startswith("watcher.store") for a in node.names
        ):
            return True
    return False


def main(root: Path) -> None:
    module_lines, function_lines, public = [], [], []
    store_importers = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        name = _module_name(path, root)
        module_lines.append(len(source.splitlines()))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                function_lines.append((node.end_lineno or node.lineno) - node.lineno + 1)
        public.append(
            sum(
                1
                for node in tree.body
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and not node.name.startswith("_")
            )
        )
        if not name.startswith("watcher.store") and _imports_store(tree):
            store_importers.append(name)
    print(f"modules: {len(module_lines)}")
    for label, values in (
        ("module lines", module_lines),
        ("function lines", function_lines),
        ("public names per module", public),
    ):
        print(
            f"{label}: median {statistics.median(values):g}, p90 {_quantile(values, 0.9)}, "
            f"max {max(values)}"
        )
    print(f"modules outside the store importing it: {len(store_importers)}")
    for name in store_importers:
        print(f"  {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "watcher"))
