"""The layering is a test: every module is in docs/ARCHITECTURE.md, and the contract holds."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "watcher"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            continue
        names.append("/".join(parts) + ".py")
    return names


def test_every_module_is_described_in_the_architecture_document() -> None:
    """A module the guide does not name is a module a newcomer cannot place."""
    guide = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(watcher/[\w/]+\.py)`", guide))
    folders = set(re.findall(r"`(watcher/[\w/]+/)`", guide))
    missing = [
        m for m in _modules() if m not in named and not any(m.startswith(f) for f in folders)
    ]
    assert not missing, f"docs/ARCHITECTURE.md does not mention: {missing}"
    stale = [m for m in named if not (REPO / m).exists()]
    assert not stale, f"docs/ARCHITECTURE.md names modules that do not exist: {stale}"


def test_every_package_is_a_layer_of_the_contract() -> None:
    """A new top-level package or module must be placed in the layering contract."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contract = config["tool"]["importlinter"]["contracts"][0]
    assert "ignore_imports" not in contract, "the layering contract has no escape hatches"
    layered = {name.strip() for layer in contract["layers"] for name in re.split(r"[|:]", layer)}
    top = {
        f"watcher.{p.stem if p.is_file() else p.name}"
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
        or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert top <= layered, f"not placed in the layering contract: {sorted(top - layered)}"


@pytest.mark.parametrize("module", _modules())
def test_every_module_opens_with_a_docstring(module: str) -> None:
    """House style: each module says in its first line what it owns."""
    tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and doc.strip().splitlines()[0], f"{module} has no docstring line"
