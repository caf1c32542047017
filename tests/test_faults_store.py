"""Fault suite: a damaged store is refused with its path; a vanished one is noted in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from watcher.errors import StoreError
from watcher.store import open_store

pytestmark = pytest.mark.fault


def _filled_store(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    with store.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE filler (x TEXT)"))
        for _ in range(3000):
            conn.execute(sa.text("INSERT INTO filler VALUES (:x)"), {"x": "y" * 100})
    store.close()


def _damage(path: Path) -> None:
    """8 KB of garbage in the middle of the file, as a failing disk might leave."""
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(size // 2)
        file.write(bytes(range(256)) * 32)


def test_a_damaged_store_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    _filled_store(path)
    _damage(path)
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in str(caught.value)


def _config(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        '[watcher]\ndata_dir = "data"\n[console]\nenabled = false\njsonl = false\n'
        '[nlp]\nmodel = "watcher_test_no_such_model"\n',
        encoding="utf-8",
    )
    return path


def _run_once(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--log-format", "json"],
        cwd=config.parent,
        env=env | {"WATCHER_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_run_once_on_a_damaged_store_fails_with_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _run_once(config).returncode == 0
    database = tmp_path / "data" / "watcher.db"
    _filled_store(database)
    _damage(database)
    done = _run_once(config)
    assert done.returncode == 1
    assert str(database) in done.stderr
    assert "Traceback" not in done.stderr


def _warnings(output: str) -> list[str]:
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [r["message"] for r in records if r.get("level") == "warning"]


@pytest.mark.slow
def test_a_store_gone_from_a_used_data_dir_is_noted(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = _run_once(config)
    assert first.returncode == 0
    database = tmp_path / "data" / "watcher.db"
    assert not [w for w in _warnings(first.stderr + first.stdout) if str(database) in w]
    database.unlink()
    second = _run_once(config)
    assert second.returncode == 0
    assert [w for w in _warnings(second.stderr + second.stdout) if str(database) in w]
