"""Deployment files: the Dockerfile's layers, .dockerignore, the systemd units, lookup trimming."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from watcher.config import Config, parse_listen

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent.parent / "shared" / "corpus" / "news" / "articles.jsonl"
if not CORPUS.exists():
    CORPUS = ROOT.parent / "shared" / "corpus" / "news" / "articles.jsonl"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (Docker's rules)."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and any(fnmatch.fnmatchcase(p, pattern[3:]) for p in parts)
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_state_venvs_and_caches_out() -> None:
    for path in (".venv/bin/python", "data/watcher.db", ".git/HEAD", "watcher/__pycache__/x.pyc"):
        assert _ignored(path), path
    for path in ("pyproject.toml", "README.md", "watcher/cli.py", "rules/venezuela.yaml"):
        assert not _ignored(path), path


def test_dockerfile_installs_dependencies_before_the_code() -> None:
    steps = _instructions()
    copies = [(i, args) for i, (kind, args) in enumerate(steps) if kind == "COPY"]
    runs = [(i, args) for i, (kind, args) in enumerate(steps) if kind == "RUN"]
    pyproject = next(i for i, args in copies if args.startswith("pyproject.toml"))
    code = next(i for i, args in copies if args.startswith("watcher "))
    deps = next(i for i, args in runs if "pip install -r" in args)
    package = next(i for i, args in runs if "pip install --no-deps ." in args)
    assert pyproject < deps < code < package
    # The dependency layer reads the list from pyproject.toml, copied alone before it.
    assert "tomllib" in steps[deps][1] and steps[pyproject][1].split() == ["pyproject.toml", "./"]
    # Everything the image copies is in the build context.
    for _, args in copies:
        for source in args.split()[:-1]:
            assert (ROOT / source).exists() and not _ignored(source), source


def test_dockerfile_python_matches_ci_and_exposes_the_metrics_port() -> None:
    steps = dict(_instructions())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert steps["FROM"] == f"python:{pyproject['tool']['mypy']['python_version']}-slim"
    listen = parse_listen(Config().metrics.listen)
    assert listen is not None and steps["EXPOSE"] == str(listen[1])
    assert "watcher" in steps["HEALTHCHECK"] and steps["USER"] == "watcher"


def test_systemd_units_are_hardened_and_use_credentials() -> None:
    unit = (ROOT / "contrib" / "watcher.service").read_text()
    settings = dict(
        ln.split("=", 1) for ln in unit.splitlines() if "=" in ln and not ln.startswith("#")
    )
    assert settings["LoadCredential"].startswith("telegram-token:")
    assert settings["StateDirectory"] == "watcher"
    assert settings["NoNewPrivileges"] == "yes" and settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"] == "/var/lib/watcher"
    assert "watcher health" in settings["ExecStartPost"]
    timer = (ROOT / "contrib" / "watcher-health.timer").read_text()
    assert "OnUnitActiveSec=" in timer
    check = (ROOT / "contrib" / "watcher-health.service").read_text()
    assert "ExecStart=/opt/watcher/bin/watcher health" in check
    # Every directive the README shows is in the unit that ships.
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```ini\n", 1)[1].split("```", 1)[0]
    for line in block.splitlines():
        assert line in unit.splitlines(), line


def _trim_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "trim_lookups", ROOT / "contrib" / "trim_lookups.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LEMMAS = """
import json, re, sys
from watcher.rules.nlp import _lemmatizer
import spacy_lookups_data
texts = json.load(sys.stdin)
out = {"package": spacy_lookups_data.__file__}
for lang in ("en", "es"):
    lemma = _lemmatizer(lang)
    out[lang] = [[lemma(w) for w in re.findall(r"\\w+", text)] for text in texts[lang]]
print(json.dumps(out))
"""


def _texts() -> dict[str, list[str]]:
    texts = {
        "en": ["Envoys were holding talks; the ceasefire collapsed as troops advanced."],
        "es": ["Los enviados celebraron conversaciones de paz y las tropas avanzaron."],
    }
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as lines:
            for line in lines:
                item = json.loads(line)
                lang = item.get("lang")
                if lang in texts and len(texts[lang]) < 6:
                    texts[lang].append(item["text"][:3000])
                if all(len(v) >= 6 for v in texts.values()):
                    break
    return texts


def _lemmas(texts: dict[str, list[str]], pythonpath: str = "") -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-c", _LEMMAS],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_trimmed_lookup_tables_give_the_same_lemmas(tmp_path: Path) -> None:
    trim = _trim_module()
    installed = trim.data_dir().parent
    copy = tmp_path / "spacy_lookups_data"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("__pycache__"))
    gone = trim.trim(copy / "data", {"en", "es"})
    assert gone and not any(f.name.startswith(("en_lemma", "es_lemma")) for f in gone)
    assert trim.size(copy / "data") < trim.size(installed / "data") / 10
    texts = _texts()
    full = _lemmas(texts)
    trimmed = _lemmas(texts, str(tmp_path))
    assert str(trimmed.pop("package")).startswith(str(tmp_path))  # the copy was used
    full.pop("package")
    assert trimmed == full
    assert any(w == "hold" for doc in full["en"] for w in doc)  # type: ignore[union-attr]


def test_trim_refuses_a_layout_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "english-lemmas.json").write_text("{}")
    with pytest.raises(SystemExit):
        _trim_module().trim(tmp_path, {"en"})
    assert (tmp_path / "english-lemmas.json").exists()
