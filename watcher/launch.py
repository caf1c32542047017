"""The `watcher` entry point: `watcher run` starts its worker pools before the rest is imported."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from watcher import pools
from watcher.config import load_config
from watcher.errors import WatcherError


def main(argv: Sequence[str] | None = None) -> int:
    """Start the pools of `watcher run` at once, then run the command line.

    Importing the command line (the daemon, the store, the bot, the web page) takes most of a
    second; the article workers need longer to load spaCy and the extractor, so they start
    first and the first article finds one ready (bench/latency.py: first alert).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    spawned = _early_pools(argv)
    try:
        from watcher.cli import main as cli_main  # noqa: PLC0415  (the slow import, after the spawn)

        return cli_main(argv, spawned=spawned)
    finally:
        if spawned is not None:  # the daemon stopped them, unless it never took them
            spawned.shutdown()


def _early_pools(argv: Sequence[str]) -> pools.Spawned | None:
    """The pools of `watcher run`, started; None for any other command, or when the config
    cannot be read (the command line then says why). If another daemon holds the data
    folder, the daemon stops these at once and reports it."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("command", nargs="?")
    parser.add_argument("--config", "-c")
    try:
        known, _ = parser.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):  # the command line reports it
        return None
    if known.command != "run" or {"-h", "--help"} & set(argv):
        return None
    try:
        config = load_config(known.config, discover=True)
    except WatcherError:
        return None
    return pools.spawn(config)
