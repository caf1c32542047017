"""Shared by bench/pipeline.py, latency.py, soak.py and startup.py: machine facts, memory
readings from /proc, loopback test doubles from tests/, and JSON-lines output."""

from __future__ import annotations

import html
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# WATCHER_CORPUS: where the corpus is when the checkout is not beside it (a git worktree).
CORPUS = Path(os.environ.get("WATCHER_CORPUS") or ROOT.parent / "shared" / "corpus")
MB = 1024 * 1024

# The loopback HTTP server and Telegram Bot API double live with the tests.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))


def pid_after(hold: float) -> int:
    """A pool job: this worker's pid after ``hold`` seconds busy (so the next call goes to
    another worker). Here, not in a script: pool workers import their jobs by module."""
    time.sleep(hold)
    return os.getpid()


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model as lscpu reports it, cores, memory."""
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
            "",
        )
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "nproc": os.cpu_count(),
        "mem_total_mb": _meminfo_mb("MemTotal"),
        "python": platform.python_version(),
    }


def _meminfo_mb(key: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def status_kb(pid: int, field: str) -> int:
    """A /proc/PID/status field in kB (VmRSS now, VmHWM the peak); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int | None = None) -> float:
    return status_kb(pid or os.getpid(), "VmRSS") / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size: RSS with each shared page divided among its sharers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int | None = None) -> float:
    return status_kb(pid or os.getpid(), "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, now."""
    return sum(rss_mb(p) for p in [pid, *descendants(pid)])


def wait_until(predicate: Any, timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# --- loopback feeds and a daemon to point at them -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def page_html(title: str, paragraphs: list[str], *, lang: str = "en") -> str:
    """A news page: navigation and footer boilerplate around an <article>, as sites have."""
    nav = "".join(f'<li><a href="/section/{s}">{s.title()}</a></li>' for s in _SECTIONS)
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} | The Loopback Times</title>"
        f'<meta property="og:title" content="{html.escape(title)}"></head><body>'
        f"<header><ul>{nav}</ul></header><main><article><h1>{html.escape(title)}</h1>"
        f"{body}</article></main><footer><p>© The Loopback Times. All rights reserved."
        "</p><ul><li>About</li><li>Contact</li><li>Privacy</li></ul></footer></body></html>"
    )


_SECTIONS = ["world", "politics", "business", "science", "sport", "culture", "opinion"]


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    link: str
    published: float  # time.time()


class LoopFeed:
    """An RSS feed on a loopback HttpServer whose newest ``window`` items are served; the
    time each item was first served (time.monotonic() of the request) is recorded."""

    def __init__(self, server: Any, path: str, *, window: int = 50) -> None:
        self.path = path
        self.url = server.url(path)
        self._window = window
        self._items: list[Item] = []
        self._lock = threading.Lock()
        self.first_served: dict[str, float] = {}
        server.route_handler(path, self._handle)

    def add(self, item: Item) -> None:
        with self._lock:
            self._items.append(item)

    def _handle(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            items = self._items[-self._window :]
            for item in items:
                self.first_served.setdefault(item.guid, request.received)
        entries = "".join(
            f"<item><title>{html.escape(i.title)}</title><link>{i.link}</link>"
            f'<guid isPermaLink="false">{i.guid}</guid>'
            f"<pubDate>{formatdate(i.published, usegmt=True)}</pubDate></item>"
            for i in reversed(items)
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Loop {self.path}</title><link>{self.url}</link>{entries}</channel></rss>"
        )
        return 200, {"Content-Type": "application/rss+xml; charset=utf-8"}, body.encode()


def write_config(
    folder: Path,
    feeds: list[str],
    *,
    bot_url: str = "",
    metrics_port: int = 0,
    extra: str = "",
    backfill_items: int = 1000,
) -> Path:
    """A config for a benchmark daemon in ``folder``: loopback allowed, fast polling, every
    alert a new one sent at once (no story grouping, no rate limit), rules from rules/ sent
    to the Telegram double when ``bot_url`` is given (else to alerts.jsonl)."""
    rules = folder / "rules"
    shutil.copytree(ROOT / "rules", rules, dirs_exist_ok=True)
    for path in rules.glob("*.yaml"):  # route to the configured default destinations
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(x for x in lines if not x.startswith("destinations:")))
    telegram = f'[telegram]\napi_base_url = "{bot_url}"\nchats = ["1001"]\nbot = false\n'
    console = f"[console]\nenabled = false\njsonl = {'false' if bot_url else 'true'}\n"
    metrics = f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{metrics_port}"\n'
    tables = "".join(f'[[feeds]]\nurl = "{u}"\nname = "Loop {i}"\n' for i, u in enumerate(feeds))
    path = folder / "config.toml"
    path.write_text(
        f"""
[watcher]
data_dir = "data"
rules_dir = "rules"
heartbeat_interval = "1s"
[http]
allow_private_addresses = true
max_per_host = 8
[polling]
interval = "1s"
min_interval = "1s"
jitter = 0.0
backfill_items = {backfill_items}
tick = "0.5s"
[alerts]
story_window = 0
rate_limit = 0
{telegram if bot_url else ""}
{console}
{metrics if metrics_port else ""}
{extra}
{tables}
""",
        encoding="utf-8",
    )
    return path


def start_daemon(
    config: Path, *, token: str = "", log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m watcher run --config CONFIG`` in its folder, its log to ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHER_CONFIG", None)
    env.pop("WATCHER_DATA_DIR", None)
    if token:
        env["WATCHER_TELEGRAM_TOKEN"] = token
    out = (log or config.with_suffix(".log")).open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(config)],
        cwd=config.parent,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop_daemon(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def scrape(port: int) -> dict[str, float]:
    """The daemon's /metrics as {"name{label=value,...}": value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def metric_total(samples: dict[str, float], name: str) -> float:
    """The sum of a metric over all its label sets."""
    return sum(v for k, v in samples.items() if k.split("{", 1)[0] == name)
