"""Start-up time: from launching the daemon to its first poll.

    .venv/bin/python bench/startup.py [--runs 5]

Each run starts ``python -m watcher run`` in a subprocess with a fresh data directory, the
example rules and one loopback feed, and measures (on this process's monotonic clock) the
time from launching the process until the feed server receives the first request, and until
the heartbeat file says "running"; then stops it with SIGTERM and times the stop. Prints one
JSON line per run and the median, minimum and maximum.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import LoopFeed, emit, machine, start_daemon, stop_daemon, wait_until, write_config
from httpserver import HttpServer


def _running(data: Path) -> bool:
    try:
        return json.loads((data / "heartbeat.json").read_text())["state"] == "running"
    except (OSError, ValueError, KeyError):
        return False


def one_run(web: HttpServer, feed: LoopFeed) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="watcher-bench-startup-") as tmp:
        config = write_config(Path(tmp), [feed.url])
        before = len(web.requests_to(feed.path))
        started = time.monotonic()
        proc = start_daemon(config)
        try:
            polled = wait_until(lambda: len(web.requests_to(feed.path)) > before, 120, 0.002)
            if not polled:
                raise SystemExit(f"no poll within 120 s; see {config.with_suffix('.log')}")
            first = web.requests_to(feed.path)[before].received - started
            wait_until(lambda: _running(Path(tmp) / "data"), 30, 0.002)
            heartbeat = time.monotonic() - started
        finally:
            stopping = time.monotonic()
            code = stop_daemon(proc)
            stop = time.monotonic() - stopping
        if code != 0:
            raise SystemExit(f"the daemon exited {code}; see {config.with_suffix('.log')}")
    return {"to_first_poll_s": first, "to_heartbeat_s": heartbeat, "stop_s": stop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions (5)")
    args = parser.parse_args()
    emit({"bench": "startup", "machine": machine()})
    runs = []
    with HttpServer() as web:
        feed = LoopFeed(web, "/feed.xml")
        for i in range(args.runs):
            runs.append(one_run(web, feed))
            emit(
                {"bench": "startup", "run": i + 1, **{k: round(v, 3) for k, v in runs[-1].items()}}
            )
    summary = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        summary[key] = {
            "median": round(statistics.median(values), 3),
            "min": round(min(values), 3),
            "max": round(max(values), 3),
        }
    emit({"bench": "startup", "runs": len(runs), **summary})


if __name__ == "__main__":
    sys.exit(main())
