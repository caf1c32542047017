"""Feed polling benchmark: watcher against lemon24/reader on the same loopback feeds.

    .venv/bin/python bench/feeds.py [--feeds 1000 --items 20] [--runs 3] [--skip-reader]

Starts bench/feedserver.py (a pre-rendered asyncio server in its own process), then runs three
cycles in a fresh process for watcher and then for reader: all new, all 304, and 10 % of the
feeds with one new item; ``--runs`` times, alternating watcher and reader. Prints one JSON line
per cycle (wall time, requests/s, CPU seconds of the whole process tree, peak RSS of the
process and its children, server CPU seconds), then per cycle the medians and the
reader/watcher ratios of wall and CPU time (CPU ratios are steadier on a shared machine) and
the watcher/reader ratio of peak RSS.

watcher goes through the real path of the poll stage of Pipeline.run_once: Poller over all
feeds with HttpClient, the feed-parsing CpuPool as Pipeline.start builds it (preloaded,
budgeted; 1 worker, what the daemon starts on 2 cores), the store thread with its batched
poll records and a SQLite WAL file; the article stage does not run. All feeds live on one host, so
the per-host limit is raised to the global one (``--connections``); reader runs
``update_feeds(workers=16, scheduled=False)`` (scheduled=True would skip feeds not yet due).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

CYCLES = ("all-new", "all-304", "10%-new")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


# --- measuring ----------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _startup_rss() -> dict[str, Any]:
    """RSS now, before any cycle, of this process and of its children (the parsing
    workers): what imports and start-up cost."""
    children = sum(_rss(pid) for pid in _descendants(os.getpid())) / 1e6
    return {"rss_mb": round(_rss(os.getpid()) / 1e6, 1), "children_rss_mb": round(children, 1)}


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread of this process, by thread name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    found: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        name = names.get(int(task.name), f"thread-{task.name}")
        found[name] = found.get(name, 0.0) + cpu_seconds_of(task / "stat")
    return found


def cpu_seconds(pid: int) -> float:
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:  # it has just exited
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _tree_cpu_seconds() -> float:
    """CPU time used so far by this process and its live children (the parsing workers):
    steadier than wall time when other work shares the machine."""
    me = os.getpid()
    return sum(cpu_seconds(pid) for pid in [me, *_descendants(me)])


class PeakRss:
    """Samples the RSS of a process plus all its descendants every 10 ms, from outside it
    (a sampler inside would steal the very GIL being measured); ``take()`` reads and resets
    the peaks of the whole tree, of the process alone and of its children (parsing workers)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._peaks = (0, 0, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            main = _rss(self._pid)
            children = sum(_rss(pid) for pid in _descendants(self._pid))
            with self._lock:
                tree, main_peak, children_peak = self._peaks
                self._peaks = (
                    max(tree, main + children),
                    max(main_peak, main),
                    max(children_peak, children),
                )

    def take(self) -> tuple[int, int, int]:
        with self._lock:
            peaks, self._peaks = self._peaks, (0, 0, 0)
        return peaks

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def cycle(
    name: str, side: str, feeds: int, server_pid: int, extra: dict[str, Any]
) -> Iterator[None]:
    """Times the body and prints its JSON line; ``extra`` is filled in by the body.

    The "start" line lets the parent reset its RSS peak just before the cycle begins.
    """
    print(json.dumps({"start": name}), flush=True)
    server_before, cpu_before = cpu_seconds(server_pid), _tree_cpu_seconds()
    main_before, threads_before = time.process_time(), _thread_cpu()
    started = time.perf_counter()
    yield
    wall = time.perf_counter() - started
    cpu, main_cpu = _tree_cpu_seconds() - cpu_before, time.process_time() - main_before
    threads = {
        thread: round(seconds - threads_before.get(thread, 0.0), 2)
        for thread, seconds in _thread_cpu().items()
        if seconds - threads_before.get(thread, 0.0) >= 0.01
    }
    line = {
        "side": side,
        "cycle": name,
        "feeds": feeds,
        "wall_s": round(wall, 3),
        "requests_per_s": round(feeds / wall, 1),
        "cpu_s": round(cpu, 3),
        "main_cpu_s": round(main_cpu, 3),
        "server_cpu_s": round(cpu_seconds(server_pid) - server_before, 3),
        "thread_cpu_s": threads,  # the main process's threads (event loop, store, pool)
        **extra,
    }
    print(json.dumps(line), flush=True)


def switch_generation(base_url: str, generation: int) -> None:
    with urllib.request.urlopen(f"{base_url}/_gen/{generation}") as reply:
        reply.read()


# --- the two sides --------------------------------------------------------------------------


def run_watcher(args: argparse.Namespace) -> None:
    asyncio.run(_watcher_cycles(args))


async def _watcher_cycles(args: argparse.Namespace) -> None:
    from watcher.clock import SystemClock
    from watcher.config import FeedConfig, HttpSettings, PollingSettings
    from watcher.feeds import cpu as feeds_cpu
    from watcher.feeds.poll import Poller
    from watcher.http import HttpClient
    from watcher.store import open_store
    from watcher.store.runner import StoreRunner
    from watcher.workers import CpuPool

    base = f"http://127.0.0.1:{args.port}"
    http = replace(
        HttpSettings(),
        allow_private_addresses=True,
        max_connections=args.connections,
        max_per_host=args.connections,
    )
    clock = SystemClock()
    started = time.perf_counter()
    store = open_store(f"sqlite:///{args.dir}/watcher.db")
    db = StoreRunner(store)
    feeds = [FeedConfig(url=f"{base}/feeds/{i}.xml") for i in range(args.feeds)]
    await db(store.sync_feeds, feeds, clock.now())
    cpu = CpuPool(
        args.workers, name="feed", seconds=feeds_cpu.PARSE_SECONDS,
        memory_mb=feeds_cpu.PARSE_MEMORY_MB,
        preload="watcher.feeds.cpu:preload",
    )  # fmt: skip
    cpu.start()
    # Pipeline.start wires exactly these; the poll stage of Pipeline.run_once is this gather.
    client = HttpClient(http, clock=clock)
    poller = Poller(client, db, PollingSettings(), clock=clock, cpu=cpu)
    # A daemon starts its workers once; warm them here so cycle 1 is not charged for it.
    await asyncio.gather(*(cpu(os.getpid) for _ in range(4 * cpu.workers)))
    startup = {"startup_s": round(time.perf_counter() - started, 3), **_startup_rss()}
    print(json.dumps({"side": "watcher", **startup}))
    for generation, name in zip((0, 0, 1), CYCLES, strict=True):
        switch_generation(base, generation)
        extra: dict[str, Any] = {}
        with cycle(name, "watcher", args.feeds, args.server_pid, extra):
            rows = await db(store.feeds)
            results = await asyncio.gather(*(poller.poll(row) for row in rows))
        extra["outcomes"] = dict(Counter(r.outcome for r in results))
        extra["new_entries"] = sum(len(r.new_entry_ids) + r.backfilled for r in results)
        _reprint_extra(extra)
    await client.aclose()
    cpu.shutdown()
    db.shutdown()
    store.close()


def _reprint_extra(extra: dict[str, Any]) -> None:
    print(json.dumps({"check": extra}), flush=True)


def run_reader(args: argparse.Namespace) -> None:
    import reader

    base = f"http://127.0.0.1:{args.port}"
    started = time.perf_counter()
    client = reader.make_reader(f"{args.dir}/reader.sqlite", search_enabled=False)
    for i in range(args.feeds):
        client.add_feed(f"{base}/feeds/{i}.xml")
    startup = {"startup_s": round(time.perf_counter() - started, 3), **_startup_rss()}
    print(json.dumps({"side": "reader", **startup}))
    for generation, name in zip((0, 0, 1), CYCLES, strict=True):
        switch_generation(base, generation)
        extra: dict[str, Any] = {}
        with cycle(name, "reader", args.feeds, args.server_pid, extra):
            client.update_feeds(workers=args.reader_workers, scheduled=False)
        extra["entries_total"] = client.get_entry_counts().total
        _reprint_extra(extra)
    client.close()


# --- orchestration --------------------------------------------------------------------------


@contextmanager
def feed_server(feeds: int, items: int) -> Iterator[tuple[int, int]]:
    """(port, pid) of a bench/feedserver.py process, stopped afterwards."""
    command = [sys.executable, str(HERE / "feedserver.py"), f"--feeds={feeds}", f"--items={items}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"bench/feedserver.py did not start: {line!r}")
        yield int(line.split()[1]), server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_side(side: str, args: argparse.Namespace, port: int, pid: int) -> list[dict[str, Any]]:
    """Run one side in a fresh process and watch its memory from here; relay its lines."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        # Run as "-c", not as this file: the side's process then has no bench module as its
        # __main__, as under `python -m watcher`.
        launch = f"import sys; sys.path.insert(0, {str(HERE)!r}); import feeds; feeds.main()"
        command = [
            sys.executable, "-c", launch, f"--side={side}", f"--port={port}", f"--server-pid={pid}",
            f"--dir={tmp}", f"--feeds={args.feeds}", f"--workers={args.workers}",
            f"--connections={args.connections}", f"--reader-workers={args.reader_workers}",
        ]  # fmt: skip
        # reader's vendored feedparser needs sgmllib3k, not installed here; this makes it use
        # the installed feedparser, the very one watcher uses.
        env = os.environ | {"READER_NO_VENDORED_FEEDPARSER": "1"}
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        assert child.stdout is not None
        with PeakRss(child.pid) as memory:
            cycles = _relay(child.stdout, memory)
        if child.wait() != 0:
            raise SystemExit(f"the {side} side failed (exit status {child.returncode})")
    return cycles


def _relay(lines: Iterable[str], memory: PeakRss) -> list[dict[str, Any]]:
    cycles: list[dict[str, Any]] = []
    for text in lines:
        line = json.loads(text)
        if "start" in line:
            memory.take()
        elif "cycle" in line:
            tree, main, children = memory.take()
            line["peak_rss_mb"] = round(tree / 1e6, 1)
            line["peak_rss_main_mb"] = round(main / 1e6, 1)
            line["peak_rss_children_mb"] = round(children / 1e6, 1)
            cycles.append(line)
        elif "check" in line:
            cycles[-1].update(line["check"])
            print(json.dumps(cycles[-1]), flush=True)
        else:
            print(json.dumps(line), flush=True)
    return cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument(
        "--workers", type=int, default=1, help="watcher parsing processes (the daemon's on 2 cores)"
    )
    parser.add_argument("--connections", type=int, default=20, help="watcher HTTP connections")
    parser.add_argument("--reader-workers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--side", choices=["watcher", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sides: dict[str, Callable[[argparse.Namespace], None]] = {
        "watcher": run_watcher,
        "reader": run_reader,
    }
    if args.side:
        sides[args.side](args)
        return
    print(json.dumps({"machine": machine(), "load": os.getloadavg()}), flush=True)
    runs: dict[str, list[list[dict[str, Any]]]] = {"watcher": [], "reader": []}
    with feed_server(args.feeds, args.items) as (port, pid):
        for _ in range(args.runs):  # alternating, so a change in machine load hits both
            for side in ("watcher",) if args.skip_reader else ("watcher", "reader"):
                runs[side].append(run_side(side, args, port, pid))
    print(json.dumps({"load_after": os.getloadavg()}), flush=True)
    for index, name in enumerate(CYCLES):
        line: dict[str, Any] = {"cycle": name, "feeds": args.feeds, "runs": args.runs}
        for side, done in runs.items():
            for key in ("wall_s", "cpu_s", "main_cpu_s", "peak_rss_mb"):
                if done:
                    line[f"{side}_{key}"] = statistics.median(r[index][key] for r in done)
        if runs["reader"]:
            for key in ("wall_s", "cpu_s"):
                ratio = line[f"reader_{key}"] / line[f"watcher_{key}"]
                line[f"reader_over_watcher_{key.removesuffix('_s')}"] = round(ratio, 2)
            # The memory target is the other way round: watcher's peak at most 2x reader's.
            rss = line["watcher_peak_rss_mb"] / line["reader_peak_rss_mb"]
            line["watcher_over_reader_rss"] = round(rss, 2)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
