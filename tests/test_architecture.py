"""The architecture is a test: modules described, layers kept, imports from runtime dependencies."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# What the daemon's processes import: the command line and daemon, then a worker's preload
# (trafilatura, spaCy with the model and its lookup tables, the matcher).
_IMPORTS = """
import json, sys
import watcher.cli, watcher.daemon, watcher.workerproc, watcher.web
from watcher.config import NlpSettings
from watcher.rules.worker import preload
preload(NlpSettings(), None)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def test_what_watcher_imports_comes_from_its_runtime_dependencies() -> None:
    """`pip install watcher` must bring every module its processes import. The test
    environment also has the dev extra's packages, which can hide a missing one: spaCy 3.8.7
    imports click, which only apprise (dev) brought, so a user's fresh install could not
    import spaCy while every test passed."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS], capture_output=True, text=True, timeout=300, check=True
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    runtime = _runtime_closure()
    owners = importlib.metadata.packages_distributions()
    outside = {
        name: owners[name]
        for name in loaded
        if name in owners
        and name not in sys.stdlib_module_names
        and not {canonicalize_name(d) for d in owners[name]} & runtime
    }
    assert not outside, f"imported from packages that are not runtime dependencies: {outside}"


def _runtime_closure() -> set[str]:
    """The distributions `pip install watcher` installs here: pyproject's dependencies
    (markers evaluated, no extras), then theirs, with the extras each asks for."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names: set[str] = {"watcher"}
    seen: set[tuple[str, frozenset[str]]] = set()  # a distribution, with the extras asked of it
    todo = [(Requirement(r), "") for r in project["dependencies"]]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        names.add(name)
        try:
            needs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here: nothing of it can be imported either
        todo += [(Requirement(r), e) for r in needs for e in ("", *requirement.extras)]
    return names
