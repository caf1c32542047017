"""Hostile inputs against the real daemon: how long a stop takes with a busy worker, and how
fast a healthy feed's story alerts while a host never answers and a feed floods.

    .venv/bin/python bench/faults.py [--runs 3] [--flood 10000] [--silent 40]

Each run starts ``python -m watcher run`` in a subprocess against loopback sites from
tests/hostile.py (blank NLP fallback, as the fault suite uses), alternating the two cases:

* ``stop``: a feed of 1 MB pages of one repeated name keeps a worker process busy; the
  figure is the time from SIGTERM to the daemon's exit, and its exit status (targets: 0,
  under 10 s).
* ``attack``: ``--silent`` article pages never answer and a feed has just published
  ``--flood`` items; a matching story then appears on a third, healthy feed. The figure is
  the time from its publication to its sendMessage at the Telegram Bot API double (target:
  under 5 s), and the peak RSS of the daemon and its workers meanwhile (target: under 600 MB).

Prints one JSON line per run, then the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from _common import emit, machine
from botapi import BotApiServer
from hostile import alert_latency_under_attack, stop_with_busy_worker
from httpserver import HttpServer


def _stop_run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp, HttpServer() as server:
        stopped = stop_with_busy_worker(Path(tmp), server)
    return {"exit_code": stopped.code, "sigterm_to_exit_s": round(stopped.seconds, 2)}


def _attack_run(flood: int, silent: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, BotApiServer() as bot:
        result = alert_latency_under_attack(Path(tmp), bot, flood=flood, silent=silent)
    return {
        "alert_latency_s": round(result.latency, 2),
        "peak_tree_rss_mb": round(result.peak_tree_rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--silent", type=int, default=40)
    args = parser.parse_args()
    emit({"machine": machine(), "load_avg": os.getloadavg()[0]})
    stops, attacks = [], []
    for run in range(args.runs):
        stops.append(_stop_run())
        emit({"run": run, "case": "stop", **stops[-1]})
        attacks.append(_attack_run(args.flood, args.silent))
        emit(
            {
                "run": run,
                "case": "attack",
                "flood": args.flood,
                "silent": args.silent,
                **attacks[-1],
            }
        )
    emit(
        {
            "median_sigterm_to_exit_s": statistics.median(s["sigterm_to_exit_s"] for s in stops),
            "exit_codes": sorted({s["exit_code"] for s in stops}),
            "median_alert_latency_s": statistics.median(a["alert_latency_s"] for a in attacks),
            "max_alert_latency_s": max(a["alert_latency_s"] for a in attacks),
            "max_peak_tree_rss_mb": max(a["peak_tree_rss_mb"] for a in attacks),
            "load_avg": os.getloadavg()[0],
        }
    )


if __name__ == "__main__":
    main()
