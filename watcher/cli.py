"""The `watcher` command line: parses arguments, calls into the package, prints, exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from watcher import __version__
from watcher.clock import SystemClock
from watcher.config import Config, load_config
from watcher.daemon import RunOptions, run_daemon
from watcher.errors import ConfigError, RuleError, WatcherError
from watcher.health import check_health, read_heartbeat
from watcher.logs import setup_logging
from watcher.store import open_store
from watcher.store.feeds import FeedRow

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except (ConfigError, RuleError) as exc:
        for problem in exc.problems:
            print(f"watcher: {problem}", file=sys.stderr)
        return 1
    except WatcherError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watcher",
        description="News monitoring and alerting daemon: feeds in, explained alerts out.",
    )
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add(sub, "run", _cmd_run, "run the daemon (or one cycle with --once)")
    _add(sub, "check", _cmd_check, "validate the config and rules; list every problem")
    _add(sub, "health", _cmd_health, "exit 0 if the daemon's heartbeat is fresh")
    _add(sub, "feeds", _cmd_feeds, "show each feed's health as a table")
    return parser


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Command,
    help_text: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        help="config file (default: $WATCHER_CONFIG, else built-in defaults)",
    )
    p.set_defaults(handler=handler)
    if name == "run":
        p.add_argument("--once", action="store_true", help="poll every feed once, deliver, exit")
        p.add_argument("--log-format", choices=["text", "json"], help="override [log] format")
        p.add_argument(
            "--log-level",
            choices=["debug", "info", "warning", "error"],
            help="override [log] level",
        )
    if name == "health":
        p.add_argument(
            "--max-age",
            type=float,
            metavar="SECONDS",
            help="heartbeat age that counts as stale (default: 3 x heartbeat_interval + 5)",
        )
    return p


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    setup_logging(args.log_level or config.log.level, args.log_format or config.log.format)
    run_daemon(config, RunOptions(once=args.once))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    source = config.source or "built-in defaults"
    print(f"{source}: OK ({len(config.feeds)} feeds)")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    config = _config(args)
    problem = check_health(
        read_heartbeat(config.data_dir), SystemClock().now(), max_age=args.max_age
    )
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


def _cmd_feeds(args: argparse.Namespace) -> int:
    config = _config(args)
    logging.getLogger().setLevel(logging.WARNING)
    store = open_store(config.store_url)
    try:
        rows = store.feeds()
    finally:
        store.close()
    print(format_feed_table(rows, SystemClock().now()))
    return 0


def format_feed_table(rows: Sequence[FeedRow], now: datetime) -> str:
    header = ("FEED", "STATUS", "LAST OK", "FAILS", "LAST NEW", "NEXT POLL", "ENTRIES", "PROBLEM")
    lines = [header] + [_feed_line(r, now) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in lines
    ]
    if not rows:
        out.append("(no feeds: add [[feeds]] to the config and run the daemon)")
    return "\n".join(s.rstrip() for s in out)


def _feed_line(r: FeedRow, now: datetime) -> tuple[str, ...]:
    if not r.enabled:
        status = "disabled"
    elif r.failures:
        status = "failing"
    elif r.last_success_at:
        status = "ok"
    else:
        status = "new"
    problem = r.last_error if r.failures else (r.warning or "")
    return (
        r.name[:40],
        status,
        _ago(r.last_success_at, now),
        str(r.failures),
        _ago(r.last_new_item_at, now),
        _until(r.next_poll_at, now),
        str(r.entries_total),
        (problem or "")[:100],
    )


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    return _span((now - when).total_seconds()) + " ago"


def _until(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "now"
    seconds = (when - now).total_seconds()
    return "now" if seconds <= 0 else "in " + _span(seconds)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


if __name__ == "__main__":
    raise SystemExit(main())
