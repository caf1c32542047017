"""The daemon heartbeat file and the freshness check behind `watcher health`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HEARTBEAT_NAME = "heartbeat.json"


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    time: datetime
    started: datetime
    interval: float
    state: str  # "running" or "stopped"


def write_heartbeat(data_dir: Path, beat: Heartbeat) -> None:
    """Replace the heartbeat atomically, so a reader never sees half a file."""
    path = data_dir / HEARTBEAT_NAME
    tmp = path.with_suffix(".tmp")
    payload = {
        "pid": beat.pid,
        "time": beat.time.isoformat(),
        "started": beat.started.isoformat(),
        "interval": beat.interval,
        "state": beat.state,
    }
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, path)


def read_heartbeat(data_dir: Path) -> Heartbeat | None:
    try:
        raw = json.loads((data_dir / HEARTBEAT_NAME).read_text(encoding="utf-8"))
        return Heartbeat(
            pid=int(raw["pid"]),
            time=datetime.fromisoformat(raw["time"]),
            started=datetime.fromisoformat(raw["started"]),
            interval=float(raw["interval"]),
            state=str(raw["state"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_health(beat: Heartbeat | None, now: datetime, *, max_age: float | None = None) -> str:
    """ "" when the daemon is healthy, else the reason it is not (pure)."""
    if beat is None:
        return "no heartbeat: the daemon has not run with this data directory"
    if beat.state != "running":
        return f"daemon is not running (stopped at {beat.time.isoformat(timespec='seconds')})"
    age = (now - beat.time).total_seconds()
    limit = max_age if max_age is not None else 3 * beat.interval + 5
    if age > limit:
        return f"heartbeat is stale: last beat {age:.0f} s ago (limit {limit:.0f} s)"
    return ""
