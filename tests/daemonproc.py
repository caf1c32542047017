"""The daemon as a subprocess for the fault suite: its config, start, readiness, and logs.

config = stream_config(tmp_path, stream, bot_api, data_dir=data)
with DaemonProcess.start(config, token=bot_api.token, log=log, data_dir=data) as daemon:
    daemon.wait_running()
    daemon.kill()                     # SIGKILL, as a crash would
    ...
    daemon.stop()                     # SIGTERM; returns the exit code
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from botapi import BotApiServer
from feedstream import FeedStream, rule_yaml

from watcher.health import read_heartbeat

# The fault tests exercise storage and delivery, not language: a model name that is not
# installed gives the blank fallback pipeline, which starts in half the time of the real one.
FAST_NLP = '[nlp]\nmodel = "watcher_test_no_such_model"\n'


def stream_config(
    tmp_path: Path,
    stream: FeedStream,
    bot: BotApiServer,
    *,
    extra: str = "",
    chats: tuple[str, ...] = ("1001",),
    data_dir: Path | None = None,
    feed_interval: str = "1s",
) -> Path:
    """A config polling ``stream`` every second and sending every alert to ``chats`` on the
    Bot API double only (no console, no JSON lines, no command bot)."""
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "lighthouses.yaml").write_text(rule_yaml(), encoding="utf-8")
    chat_list = ", ".join(f'"{c}"' for c in chats)
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "{data_dir or tmp_path / "data"}"
rules_dir = "rules"
heartbeat_interval = "0.5s"
[http]
allow_private_addresses = true
total_timeout = "5s"
[polling]
interval = "1s"
min_interval = "0.5s"
jitter = 0
tick = "0.5s"
backfill_items = 1000
backoff_cap = "2s"
[articles]
workers = 1
{FAST_NLP}
[alerts]
rate_limit = 0
update_throttle = 0
retry_cap = "2s"
[telegram]
api_base_url = "{bot.base_url}"
chats = [{chat_list}]
bot = false
timeout = "5s"
[console]
enabled = false
jsonl = false
{extra}
[[feeds]]
url = "{stream.feed_url}"
name = "Lighthouse News"
interval = "{feed_interval}"
""",
        encoding="utf-8",
    )
    return path


def watcher_env(token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a watcher subprocess: unbuffered, with the Telegram token, and
    without the caller's WATCHER_* settings."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WATCHER_TELEGRAM_TOKEN": token}
    for name in ("WATCHER_CONFIG", "WATCHER_DATA_DIR", "WATCHER_SMTP_PASSWORD"):
        env.pop(name, None)
    return env | (extra or {})


def run_watcher(
    *args: str, config: Path, token: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m watcher ARGS --config CONFIG` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args, "--config", str(config)],
        cwd=config.parent,
        env=watcher_env(token),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    @classmethod
    def start(
        cls,
        config: Path,
        *,
        token: str,
        log: Path,
        data_dir: Path,
        env: dict[str, str] | None = None,
    ) -> DaemonProcess:
        """`python -m watcher run --config CONFIG`, output appended to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "--config", str(config)],
                cwd=config.parent,
                env=watcher_env(token, env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(proc, log, data_dir)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever happened in the test, no daemon outlives it.
        if self.proc.poll() is None:
            self.kill()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        beat = read_heartbeat(self.data_dir)
        return beat is not None and beat.pid == self.pid and beat.state == "running"

    def wait_running(self, timeout: float = 60.0) -> None:
        wait_for(self.running, timeout, f"daemon pid {self.pid} to report running", self)

    def children(self) -> list[int]:
        """Process ids of the daemon's children (its worker processes)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                found += [int(p) for p in task.read_text().split()]
            except OSError:
                continue
        return found

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (the process is killed if it overstays ``timeout``)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def pool_workers(parent: int) -> set[int]:
    """The live worker processes (watcher.workerproc) that ``parent`` started."""
    found: set[int] = set()
    for task in Path(f"/proc/{parent}/task").glob("*/children"):
        try:
            children = [int(p) for p in task.read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            if b"watcher.workerproc" in command and alive(child):
                found.add(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    daemon: DaemonProcess | None = None,
) -> float:
    """Poll ``predicate`` until true; returns the seconds waited. AssertionError on timeout,
    with the daemon's last log lines when given one."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        if daemon is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.proc.returncode}):\n{daemon.tail()}")
        time.sleep(0.05)
    log = f"\n{daemon.tail()}" if daemon is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{log}")
