"""watcher.launch: `watcher run` starts its worker pools first, and none outlives a failed start."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from daemonproc import pool_workers

from watcher import launch


def _config(tmp_path: Path, rules: str = "") -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    if rules:
        (tmp_path / "rules" / "bad.yaml").write_text(rules, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        '[watcher]\ndata_dir = "data"\nrules_dir = "rules"\n[articles]\nworkers = 1\n',
        encoding="utf-8",
    )
    return path


def _pool_workers() -> set[int]:
    return pool_workers(os.getpid())


def _wait_for_workers(timeout: float = 60.0) -> set[int]:
    """The pool workers, once there are any (each pool starts them from threads of its own)."""
    deadline = time.monotonic() + timeout
    while not (found := _pool_workers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _wait_until_gone(pids: set[int], timeout: float = 60.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if Path(f"/proc/{pid}").exists()}
        time.sleep(0.05)
    return pids


@pytest.mark.parametrize("argv", [["check"], ["explain", "x.html"], ["run", "--help"], []])
def test_only_watcher_run_starts_pools_early(argv: list[str]) -> None:
    assert launch._early_pools(argv) is None


def test_an_unreadable_config_starts_nothing_and_is_reported_later(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[watcher]\nno_such_key = 1\n", encoding="utf-8")
    assert launch._early_pools(["run", "--config", str(bad)]) is None
    assert launch._early_pools(["run", "--config"]) is None  # the command line says what is wrong


def test_watcher_run_starts_both_pools_before_the_command_line(tmp_path: Path) -> None:
    spawned = launch._early_pools(["run", "-c", str(_config(tmp_path))])
    assert spawned is not None
    try:
        before = _wait_for_workers()
        assert before  # workers are already loading
    finally:
        spawned.shutdown()
    assert _wait_until_gone(before) == set()


@pytest.mark.slow
def test_early_pools_do_not_outlive_a_start_that_fails(tmp_path: Path) -> None:
    config = _config(tmp_path, rules="name: bad\nmatch: {all: [nobody]}\n")
    before = _pool_workers()
    assert launch.main(["run", "--config", str(config)]) == 1  # the rules are invalid
    assert _wait_until_gone(_pool_workers() - before) == set()
