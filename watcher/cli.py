"""The `watcher` command line: parses arguments, calls into the package, prints, exits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import difflib
import json
import logging
import socket
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from watcher import __version__
from watcher.alerts import probe
from watcher.alerts.blocklist import Blocklist, load_blocklist
from watcher.alerts.compose import plural
from watcher.alerts.templates import Templates, check_templates, templates_folder
from watcher.bot.access import unrouted_warning
from watcher.bot.webhook import webhook_mode
from watcher.channels.registry import (
    build_channels,
    configured_kinds,
    default_destinations,
    local_destinations,
)
from watcher.clock import SystemClock
from watcher.config import (
    Config,
    FeedConfig,
    PollingSettings,
    config_from_dict,
    feed_name,
    lease_warning,
    load_config,
    parse_duration,
)
from watcher.daemon import RunOptions, run_daemon
from watcher.errors import ConfigError, RuleError, StoreError, WatcherError
from watcher.explain import Explainer
from watcher.feeds.discover import Checked, candidate_urls, discover_checked
from watcher.feeds.identity import feed_url_key
from watcher.feeds.opml import OpmlFeed, export_opml, parse_opml, seconds
from watcher.feeds.schedule import FeedHealth, feed_status, health_problem
from watcher.health import check_health, read_heartbeat
from watcher.http import HttpClient
from watcher.lock import prepare_data_dir
from watcher.logs import setup_logging
from watcher.pools import Spawned
from watcher.rules.backtest import compare, format_backtest
from watcher.rules.explain import format_explanation
from watcher.rules.match import Matcher
from watcher.rules.nlp import Analyzer, spacy_problem
from watcher.rules.reload import routing_problems, rules_warnings
from watcher.rules.schema import Rule, RuleSet, load_rule_file, load_rules
from watcher.store import Store, open_store, probe_store
from watcher.store.alerts import AlertRow, DeliveryState, HeldMatch
from watcher.store.copy import copy_store
from watcher.store.feeds import FeedRow
from watcher.store.replicas import LeaseCount, ReplicaRow, alive_since
from watcher.workers import InlinePool

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, *, spawned: Spawned | None = None) -> int:
    """The command line; ``spawned``: worker pools `watcher run` adopts (watcher.launch)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.spawned = spawned
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
        for line in str(exc).splitlines() or [""]:
            print(f"watcher: {line}", file=sys.stderr)
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
    run = _add(sub, "run", _cmd_run, "run the daemon (or one cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, exit")
    run.add_argument("--log-format", choices=["text", "json"], help="override [log] format")
    run.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override [log] level"
    )
    check = _add(sub, "check", _cmd_check, "validate the config and rules; list every problem")
    check.add_argument("--rules", type=Path, metavar="DIR", help="rules folder (default: config)")
    test = _add(
        sub, "send-test", _cmd_send_test, "send a test message to each destination alerts go to"
    )
    test.add_argument(
        "destinations",
        nargs="*",
        metavar="DESTINATION",
        help="only these (e.g. telegram:-1001234567890, email:desk@example.org, webhook:desk)",
    )
    health = _add(sub, "health", _cmd_health, "exit 0 if the daemon's heartbeat is fresh")
    health.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="age that counts as stale (default: 3 x heartbeat_interval + 5)",
    )
    _feeds_parser(sub)
    exp = _add(sub, "explain", _cmd_explain, "show how the rules judge articles (URLs or files)")
    exp.add_argument(
        "inputs",
        nargs="+",
        metavar="URL-or-FILE",
        help="a URL, an HTML page, a text file (first line the title), a .json article "
        '({"id", "title", "text", "url", "lang"}) or a .jsonl file of them, one a line',
    )
    exp.add_argument("--rules", type=Path, metavar="DIR", help="rules folder (default: config)")
    exp.add_argument("--json", action="store_true", help="one JSON object per article per line")
    back = _add(sub, "backtest", _cmd_backtest, "run the current rules over stored articles")
    back.add_argument("--since", default="7d", help="how far back (default 7d)")
    back.add_argument("--rule", help="only this rule")
    back.add_argument("--rules", type=Path, metavar="DIR", help="rules folder (default: config)")
    _alerts_parser(sub)
    _add(sub, "status", _cmd_status, "the store, replicas alive, their leases, the outbox")
    store = _add(sub, "store", _cmd_store, "copy every row into another, empty database")
    store.add_argument("action", choices=["copy"])
    store.add_argument(
        "--from", dest="source", metavar="URL", help="store to read (default: the configured one)"
    )
    store.add_argument("--to", dest="target", metavar="URL", required=True, help="empty store")
    return parser


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
_LIMIT_HELP = "show the N most recent rows (default 20)"


def _feeds_parser(sub: Subparsers) -> None:
    feeds = _add(
        sub,
        "feeds",
        _cmd_feeds,
        "feed health table; import, export, discover feeds",
        epilog="Without ACTION: list. Run `watcher feeds ACTION --help` for each action.",
    )
    actions = feeds.add_subparsers(dest="action", metavar="ACTION")
    _add(
        actions,
        "list",
        _cmd_feeds,
        "a table of every feed's health: status, last success, failures, last new item, "
        "next poll, last error (read from the data directory)",
        nested=True,
    )
    imp = _add(
        actions,
        "import",
        _cmd_feeds,
        "add the feeds of an OPML file to the config file: REWRITES the --config FILE in "
        "place, appending one [[feeds]] table per feed not already there (tags come from "
        "outline categories and folders); the result is validated",
        nested=True,
    )
    imp.add_argument("target", nargs="?", metavar="FILE", help="the OPML file to import")
    _add(
        actions,
        "export",
        _cmd_feeds,
        "print the configured feeds as OPML 2.0 on standard output",
        nested=True,
    )
    disc = _add(
        actions,
        "discover",
        _cmd_feeds,
        "find the feeds a web page advertises (or serves at common paths) and print their URLs",
        nested=True,
    )
    disc.add_argument("target", nargs="?", metavar="URL", help="the web page to look at")
    feeds.set_defaults(action="list", target=None)


def _alerts_parser(sub: Subparsers) -> None:
    alerts = _add(
        sub,
        "alerts",
        _cmd_alerts,
        "recent alerts, story updates and muted or blocked matches, with delivery state",
        epilog="Without ACTION: list. Run `watcher alerts ACTION --help` for each action.",
    )
    alerts.add_argument("--limit", type=_at_least_one, default=20, metavar="N", help=_LIMIT_HELP)
    actions = alerts.add_subparsers(dest="action", metavar="ACTION")
    listing = _add(
        actions,
        "list",
        _cmd_alerts,
        "recent alerts (new, develop, digest), updates of their stories (+N sources) and "
        "matches held by a mute or the blocklist, newest first, with each destination's "
        "delivery state and last error",
        nested=True,
    )
    listing.add_argument(
        "--limit", type=_at_least_one, default=argparse.SUPPRESS, metavar="N", help=_LIMIT_HELP
    )
    _add(
        actions,
        "retry",
        _cmd_alerts,
        "queue every delivery that failed for good again; the running daemon sends them",
        nested=True,
    )
    alerts.set_defaults(action="list")


def _add(
    sub: Subparsers,
    name: str,
    handler: Command,
    help_text: str,
    *,
    epilog: str | None = None,
    nested: bool = False,
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog)
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        # Under an action, an absent --config must not hide one given before the action.
        default=argparse.SUPPRESS if nested else None,
        help="config file (default: $WATCHER_CONFIG, else ./config.toml, else built-in defaults)",
    )
    p.set_defaults(handler=handler)
    return p


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, discover=True)


@contextmanager
def _store(config: Config) -> Iterator[Store]:
    logging.getLogger().setLevel(logging.WARNING)
    prepare_data_dir(config.data_dir)
    store = open_store(config.store_url, upgrade=False)  # a read never upgrades a shared store
    try:
        yield store
    finally:
        store.close()


# --- run, check, health ----------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    setup_logging(args.log_level or config.log.level, args.log_format or config.log.format)
    run_daemon(config, RunOptions(once=args.once, tick=config.polling.tick), spawned=args.spawned)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    """Every problem with the config, the rules and the channels, then exit 1 if any."""
    config = _config(args)
    rules_dir = args.rules or config.watcher.rules_dir
    rules, problems = _check_rules(rules_dir, config)
    for check in (build_channels, webhook_mode):
        try:
            check(config)
        except ConfigError as exc:
            problems += exc.problems
    blocklist = Blocklist()
    try:
        blocklist = load_blocklist(config)
    except ConfigError as exc:
        problems += exc.problems
    for warning in blocklist.warnings:
        print(f"watcher: warning: {warning}", file=sys.stderr)
    problems += routing_problems(rules.rules or _valid_rules(rules_dir), configured_kinds(config))
    problems += check_templates(templates_folder(config.alerts.templates_dir, config.source))
    try:
        print(probe_store(config.store_url))
    except StoreError as exc:  # a URL that cannot be used is named as config problems are
        said = str(exc)
        if config.store.url and config.source and said.startswith("store url "):
            said = f"{config.source}: store.url: {said.removeprefix('store url ')}"
        problems.append(said)
    for warning in _check_warnings(config, rules):
        print(f"watcher: warning: {warning}", file=sys.stderr)
    if spacy_problem():  # the daemon would run, but match worse than its rules say
        problems.append(spacy_problem())
    for problem in problems:
        print(f"watcher: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"{config.source or 'built-in defaults'}: OK ({plural(len(config.feeds), 'feed')}, "
        f"{plural(len(rules.rules), 'rule')}: "
        f"{', '.join(rules.names()) or 'none'}"
        + (f"; blocklist: {_entries(len(blocklist))}" if blocklist.path else "")
        + ")"
    )
    return 0


def _cmd_send_test(args: argparse.Namespace) -> int:
    """A test message to every destination the rules send to (or those named): one line
    each, delivered or why not; exit 1 if any was not delivered."""
    config = _config(args)
    rules = _valid_rules(config.watcher.rules_dir)
    routed = probe.routes(config, rules)
    named = list(dict.fromkeys(args.destinations)) or list(routed)
    if not named:
        print(
            "watcher: no destination to test: no remote channel has a destination (list "
            "[telegram] chats, [email] recipients or [webhook] endpoints, or a rule's "
            "destinations)",
            file=sys.stderr,
        )
        return 1
    problems = probe.problems(named, configured_kinds(config))
    for problem in problems:
        print(f"watcher: {problem}", file=sys.stderr)
    if problems:
        return 1
    now = SystemClock().now().astimezone(ZoneInfo(config.watcher.timezone))
    host = socket.gethostname()
    messages = {d: probe.message(routed.get(d, ()), host=host, now=now) for d in named}

    async def send() -> list[probe.Probe]:
        channels = build_channels(config)
        try:
            return await probe.send_each(channels, messages)
        finally:
            for channel in channels.values():
                await channel.aclose()

    results = asyncio.run(send())
    for result in results:
        if result.delivered:
            print(
                f"{result.destination}: delivered"
                + (f" (id {result.detail})" if result.detail else "")
            )
        else:
            again = " (may pass by itself: try again later)" if result.retryable else ""
            print(
                f"watcher: {result.destination}: not delivered: {result.detail}{again}",
                file=sys.stderr,
            )
    return 0 if all(r.delivered for r in results) else 1


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _valid_rules(directory: Path) -> tuple[Rule, ...]:
    """The rules of every file that loads on its own, to check even when others do not."""
    found: list[Rule] = []
    for path in sorted(directory.glob("*.y*ml")):
        with contextlib.suppress(RuleError):
            found += load_rule_file(path)
    return tuple(found)


def _check_rules(rules_dir: Path, config: Config) -> tuple[RuleSet, list[str]]:
    """The rules, or their problems; prints the warnings the daemon would log about them."""
    try:
        rules = load_rules(rules_dir)
    except RuleError as exc:
        return RuleSet(), list(exc.problems)
    for warning in rules_warnings(rules_dir, rules, config.feeds):
        print(f"watcher: warning: {warning}", file=sys.stderr)
    return rules, []


def _check_warnings(config: Config, rules: RuleSet) -> list[str]:
    """What `watcher check` warns about: the daemon would run, but not as the user meant."""
    kinds = configured_kinds(config)
    unrouted = unrouted_warning(config, rules, token="telegram" in kinds)
    return [
        *Analyzer(config.nlp, rules).warnings(),
        *filter(None, [unrouted, lease_warning(config, kinds)]),
        *_interval_warnings(config),
        *_alert_warnings(config, rules),
    ]


def _alert_warnings(config: Config, rules: RuleSet) -> list[str]:
    """Alert settings that can never apply: digest-held alerts with no digest time, settings
    for a destination nothing sends to (a typo), a template named after no rule."""
    where = config.source or "<config>"
    warnings = []
    if not config.alerts.digest_at:
        warnings.append(
            f"{where}: alerts.digest_at is empty: alerts held for a digest (low priority, over "
            'the rate limit) are never sent; list a time such as "08:00"'
        )
    routed = {*default_destinations(config), *local_destinations(config)}
    routed |= {d for rule in rules.rules for d in rule.destinations}
    warnings += [
        f'{where}: [destinations."{name}"]: no rule and no default sends to {name}, so these '
        f"settings never apply{_did_you_mean(name, sorted(routed))}"
        for name in config.destinations
        if name not in routed
    ]
    with contextlib.suppress(ConfigError):  # problems of the folder are check's errors
        folder = templates_folder(config.alerts.templates_dir, config.source)
        names = set(rules.names())
        warnings += [
            f"{folder}: template {name!r} is named after no rule, so it is never used"
            f"{_did_you_mean(name, sorted(names))}"
            for name in Templates.load(folder).names()
            if name not in names
        ]
    return warnings


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = _closest_name(name, choices)
    return f" (did you mean {close!r}?)" if close else ""


def _closest_name(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1)
    return close[0] if close else None


def _interval_warnings(config: Config) -> list[str]:
    """Intervals below [polling] min_interval: the default's, and each enabled feed's own."""
    where, floor = config.source or "<config>", config.polling.min_interval
    below = f"is below [polling] min_interval ({seconds(floor)}): polled at most once every "
    warnings = (
        [f"{where}: polling.interval ({seconds(config.polling.interval)}) {below}{seconds(floor)}"]
        if config.polling.interval < floor
        else []
    )
    return warnings + [
        f"{where}: feeds[{i}] ({feed.url}): interval {seconds(feed.interval)} {below}"
        f"{seconds(floor)}"
        for i, feed in enumerate(config.feeds)
        if feed.enabled and 0 < feed.interval < floor
    ]


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


# --- feeds ---------------------------------------------------------------------------


def _cmd_feeds(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.action in ("import", "discover") and not args.target:
        raise WatcherError(
            f"watcher feeds {args.action} needs a {'file' if args.action == 'import' else 'URL'}"
        )
    if args.action == "import":
        return _feeds_import(config, Path(args.target))
    if args.action == "export":
        feeds = [
            OpmlFeed(f.url, feed_name(f), tuple(f.tags), f.enabled, f.interval)
            for f in config.feeds
        ]
        sys.stdout.write(export_opml(feeds, title="watcher feeds").decode("utf-8"))
        return 0
    if args.action == "discover":
        return _feeds_discover(config, args.target)
    now = SystemClock().now()
    with _store(config) as store:
        stored = {r.url: r for r in store.feeds(configured_only=False)}
        synced = [r for r in stored.values() if r.in_config]  # what the daemon last read
        cadences = {r.id: store.feed_cadence(r.id) for r in synced}
        shared = store.shared
    # The config's feeds: those it added since the daemon last read it are "new".
    rows = [stored.get(f.url) or _unpolled(f, now) for f in config.feeds]
    print(format_feed_table(rows, now, config.polling, cadences))
    if {_as_read(r) for r in synced} != {_as_read(f) for f in config.feeds}:
        print(
            "(the daemon reads [[feeds]] when it starts: start or restart it to poll the "
            "feeds as listed here)"
        )
    # On SQLite the daemon is this data directory's; replicas elsewhere leave no heartbeat here.
    if not shared and (down := check_health(read_heartbeat(config.data_dir), now)):
        print(f"(nothing is polled now: {down}; NEXT POLL is when the daemon would poll)")
    return 0


def _as_read(feed: FeedRow | FeedConfig) -> tuple[object, ...]:
    """What the daemon takes from a feed's config entry, to tell whether it read this one."""
    name = feed.name if isinstance(feed, FeedRow) else feed_name(feed)
    return (feed.url, name, tuple(feed.tags), feed.interval, feed.enabled)


def _unpolled(feed: FeedConfig, now: datetime) -> FeedRow:
    """A configured feed the store has not seen yet, as `watcher feeds` shows it."""
    return FeedRow(
        id=-1, url=feed.url, name=feed_name(feed), tags=tuple(feed.tags), interval=feed.interval,
        enabled=feed.enabled, in_config=True, added_at=now, title="", etag=None,
        last_modified=None, hint=None, next_poll_at=None, last_poll_at=None,
        last_success_at=None, last_new_item_at=None, last_error=None, last_error_at=None,
        failing_since=None, failures=0, warning=None, polls=0, not_modified=0,
        entries_total=0, reported=None,
    )  # fmt: skip


def _feeds_import(config: Config, path: Path) -> int:
    if config.source is None:
        raise WatcherError("watcher feeds import needs --config FILE: the feeds are added there")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WatcherError(f"{path}: cannot read: {exc.strerror}") from None
    listed = parse_opml(data, source=str(path))
    # The same feed spelt another way ("feed.xml?", "HTTP://Host/feed.xml") is already there.
    known = {feed_url_key(f.url) for f in config.feeds}
    fresh = {feed_url_key(feed.url): feed for feed in listed}  # parse_opml merged repeats
    there = [key for key in fresh if key in known]
    taken = {feed_name(f) for f in config.feeds}
    new = _unique_names([f for key, f in fresh.items() if key not in known], taken)
    added = "".join(_feed_toml(f) for f in new)
    _valid_with(config.source, added)  # the file is changed only when the result is valid
    with config.source.open("a", encoding="utf-8") as out:
        out.write(added)
    print(f"added {len(new)} feeds to {config.source} ({len(there)} already there)")
    return 0


def _unique_names(feeds: list[OpmlFeed], taken: set[str]) -> list[OpmlFeed]:
    """``feeds``, a name the config (or an earlier one of them) has already made unique
    with a number: feed names must be unique, and one clash must not refuse the import."""
    unique = []
    for feed in feeds:
        name, n = feed.name, 1
        while name in taken:
            n += 1
            name = f"{feed.name} ({n})"
        taken.add(name)
        unique.append(dataclasses.replace(feed, name=name))
    return unique


def _valid_with(source: Path, added: str) -> None:
    """ConfigError naming the config file when ``added`` would make it invalid."""
    after = f"{source} (after the import)"
    try:
        config_from_dict(tomllib.loads(source.read_text(encoding="utf-8") + added), source=source)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{after}: invalid TOML: {exc}") from None
    except ConfigError as exc:
        raise ConfigError([p.replace(str(source), after, 1) for p in exc.problems]) from None


def _feed_toml(feed: OpmlFeed) -> str:
    tags = ", ".join(json.dumps(t, ensure_ascii=False) for t in feed.tags)
    settings = f'interval = "{seconds(feed.interval)}"\n' if feed.interval else ""
    settings += "enabled = false\n" if not feed.enabled else ""
    return (
        f"\n[[feeds]]\nurl = {json.dumps(feed.url)}\n"
        f"name = {json.dumps(feed.name, ensure_ascii=False)}\ntags = [{tags}]\n{settings}"
    )


def _feeds_discover(config: Config, url: str) -> int:
    async def go() -> list[Checked]:
        async with HttpClient(config.http) as client:
            return await discover_checked(client, url)

    found = asyncio.run(go())
    if not found:
        print(
            f"no feeds found at {url} (neither linked from the page nor at the "
            f"{len(candidate_urls(url))} usual paths)",
            file=sys.stderr,
        )
        return 1
    configured = {feed_url_key(f.url): feed_name(f) for f in config.feeds}
    for feed in found:
        there = configured.get(feed_url_key(feed.url))
        said = f"not working: {feed.problem}" if feed.problem else (feed.title or "(untitled)")
        print(f"{feed.url}  {said}" + (f"  [already configured: {there}]" if there else ""))
    if all(f.problem for f in found):
        print(f"no working feed at {url}: the page links only to these", file=sys.stderr)
        return 1
    return 0


def format_feed_table(
    rows: Sequence[FeedRow],
    now: datetime,
    polling: PollingSettings,
    cadences: Mapping[int, float | None] | None = None,
) -> str:
    """The `watcher feeds` table; the status words are the web page's (feed_status)."""
    header = ("FEED", "STATUS", "LAST OK", "FAILS", "LAST NEW", "NEXT POLL", "ENTRIES", "PROBLEM")
    cadences = cadences or {}
    lines = [_feed_line(r, now, polling, cadences.get(r.id)) for r in rows]
    out = _table(header, lines)
    if not rows:
        out += "\n(no feeds: add [[feeds]] to the config and run the daemon)"
    return out


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    everything = [tuple(header), *[tuple(line) for line in lines]]
    widths = [max(len(line[i]) for line in everything) for i in range(len(header) - 1)]
    return "\n".join(
        (
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
        ).rstrip()
        for line in everything
    )


def _feed_line(
    r: FeedRow, now: datetime, polling: PollingSettings, cadence: float | None
) -> tuple[str, ...]:
    health = FeedHealth(r.failing_since, r.last_error, r.last_new_item_at, cadence, r.added_at)
    live = health_problem(health, now, polling)
    status = feed_status(live, enabled=r.enabled, failures=r.failures)
    if status == "ok" and not r.last_success_at:
        status = "new"  # not polled yet
    problem = r.last_error if r.failures else (live or r.warning or "")
    return (
        r.name[:40],
        status,
        _ago(r.last_success_at, now),
        str(r.failures),
        _ago(r.last_new_item_at, now),
        _until(r.next_poll_at, now) if r.enabled else "-",
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


# --- explain and backtest --------------------------------------------------------------


def _matcher(config: Config, rules_dir: Path | None) -> Matcher:
    rules = load_rules(rules_dir or config.watcher.rules_dir)
    analyzer = Analyzer(config.nlp, rules)
    for warning in [spacy_problem(), *analyzer.warnings()]:
        if warning:
            print(f"watcher: warning: {warning}", file=sys.stderr)
    return Matcher(rules, analyzer)


def _cmd_explain(args: argparse.Namespace) -> int:
    config = _config(args)
    rules = _matcher(config, args.rules).rules
    blocklist = load_blocklist(config)
    failed = 0

    async def explain_all() -> None:
        nonlocal failed
        async with HttpClient(config.http) as client:
            explainer = Explainer(
                config,
                client=client,
                cpu=InlinePool(),
                rules=lambda: rules,
                clock=SystemClock(),
                blocklist=lambda: blocklist,
            )
            for source in args.inputs:
                async for report in explainer.each(source):
                    if isinstance(report, WatcherError):
                        print(f"watcher: {report}", file=sys.stderr)
                        failed += 1
                        continue
                    print(
                        json.dumps(report, ensure_ascii=False, default=str)
                        if args.json
                        else format_explanation(report) + "\n"
                    )

    asyncio.run(explain_all())
    return 1 if failed else 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    config = _config(args)
    matcher = _matcher(config, args.rules)
    try:
        since = SystemClock().now() - timedelta(seconds=parse_duration(args.since))
    except ValueError as exc:
        raise WatcherError(f"--since: {exc}") from None
    with _store(config) as store:
        stored = store.articles_since(since)
        did = store.alerted_rules([i for i, _ in stored])
        held = store.held_rules([i for i, _ in stored])
        feedback = store.feedback_counts()
    known = set(matcher.rules.names()).union(*did.values())  # a deleted rule's alerts count
    if args.rule and args.rule not in known:
        close = _closest_name(args.rule, sorted(known))
        hint = f"; did you mean {close!r}?" if close else f" (rules: {', '.join(sorted(known))})"
        raise WatcherError(f"--rule {args.rule!r}: no such rule, and none alerted{hint}")
    would = {i: {m.rule for m in matcher.match(a)} for i, a in stored}
    names = [args.rule] if args.rule else matcher.rules.names()
    results = [r for r in compare(would, did, names) if r.rule in names]
    kept_back = 0
    for r in results:
        # A match a mute or the blocklist held back was seen then: not a new hit.
        new = [i for i in r.new_hits if r.rule not in held.get(i, set())]
        kept_back += len(r.new_hits) - len(new)
        r.new_hits = new
    titles = {i: a.title for i, a in stored}
    print(format_backtest(results, titles, feedback, len(stored)))
    if kept_back:
        were = "match was" if kept_back == 1 else "matches were"
        print(f"\n({kept_back} {were} muted or blocked then; not counted as new hits)")
    return 0


# --- alerts ----------------------------------------------------------------------------


def _cmd_alerts(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(config) as store:
        if args.action == "retry":
            count = store.retry_failed(SystemClock().now())
            deliveries = "failed delivery" if count == 1 else "failed deliveries"
            print(f"{count} {deliveries} queued again; the running daemon sends them")
            return 0
        rows = store.recent_alerts(args.limit)
        held = store.held_matches(args.limit)
    print(format_alerts(rows, ZoneInfo(config.watcher.timezone), held, limit=args.limit))
    return 0


def _cmd_store(args: argparse.Namespace) -> int:
    """`watcher store copy --from sqlite:///... --to postgresql+psycopg://...`; daemon stopped."""
    source = args.source or _config(args).store_url
    copied = copy_store(source, args.target)
    print(f"copied {sum(copied.values())} rows in {len(copied)} tables to the new store")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    now = SystemClock().now()
    with _store(config) as store:
        alive = store.replicas(alive_since(now, config.store.lease))
        leases = store.lease_counts(now)
        depth = store.outbox_depth()
        print(f"store: {store.url} (schema version {store.schema_version()})")
    print(_daemon_line(config.data_dir, now))
    print(format_status(alive, leases, depth, now, shared=store.shared))
    return 0


def _daemon_line(data_dir: Path, now: datetime) -> str:
    """Whether the daemon of this data directory runs, from its heartbeat."""
    beat = read_heartbeat(data_dir)
    problem = check_health(beat, now)
    if beat is None or problem:
        return f"daemon: {problem.removeprefix('daemon is ')}"
    started = beat.started.isoformat(timespec="seconds")
    return f"daemon: running (pid {beat.pid}, since {started}, data in {data_dir})"


def format_status(
    alive: Sequence[ReplicaRow],
    leases: Sequence[LeaseCount],
    depth: dict[str, int],
    now: datetime,
    *,
    shared: bool,
) -> str:
    lines = []
    if shared:
        lines.append(f"replicas alive: {len(alive)}")
        for r in alive:
            role = "elected" if r.leader else "replica"
            seen = (now - r.seen_at).total_seconds()
            lines.append(f"  {r.id}  {role}  pid {r.pid}  v{r.version}  seen {seen:.0f}s ago")
        lines.append("leases held:" if leases else "leases held: none")
        for c in leases:
            left = (c.oldest - now).total_seconds()
            lines.append(f"  {c.owner}  {c.held} {c.kind}  (first ends in {left:.0f}s)")
    else:
        lines.append("replicas: one (SQLite); leases are for PostgreSQL replicas")
    queued = ", ".join(f"{d}={n}" for d, n in sorted(depth.items())) or "empty"
    lines.append(f"outbox: {queued}")
    return "\n".join(lines)


def format_alerts(
    rows: Sequence[AlertRow],
    tz: ZoneInfo,
    held: Sequence[HeldMatch] = (),
    *,
    limit: int | None = None,
    now: datetime | None = None,
) -> str:
    """Alerts, story updates and held (muted or blocked) matches, newest first; a delivery
    held by quiet hours says until when (after ``now``)."""
    now = now or datetime.now(tz)
    dated = [(r.created_at, _alert_line(r, tz, now)) for r in rows]
    dated += [(h.created_at, _held_line(h, tz)) for h in held]
    dated.sort(key=lambda pair: pair[0], reverse=True)
    lines = [line for _, line in dated[:limit]]
    time = f"TIME ({tz.key})"  # [watcher] timezone: the same alert reads 08:47 or 07:47
    out = _table(("ID", time, "KIND", "PRIORITY", "RULES", "TITLE", "DELIVERIES"), lines)
    return out if lines else out + "\n(no alerts yet)"


def _alert_line(r: AlertRow, tz: ZoneInfo, now: datetime) -> tuple[str, ...]:
    update = r.kind == "sources"
    title = f"story {r.story_id}: {r.title}" if update else r.title
    return (
        str(r.id),
        r.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "update" if update else r.kind,
        r.priority,
        ",".join(r.rules) or "-",
        _clip(title, 50),
        " ".join(_delivery(d, tz, now) for d in r.deliveries),
    )


def _delivery(d: DeliveryState, tz: ZoneInfo, now: datetime) -> str:
    """``telegram:-1001=pending (held until 07:00)`` (quiet hours), or with the last error."""
    said = f"{d.destination}={d.state}"
    if d.state == "pending" and d.held_until is not None and d.held_until > now:
        local = d.held_until.astimezone(tz)
        day = "" if local.date() == now.astimezone(tz).date() else local.strftime("%a ")
        said += f" (held until {day}{local:%H:%M})"
    if d.error and d.state != "sent":
        said += f" ({_clip(d.error, 60)})"
    return said


def _held_line(h: HeldMatch, tz: ZoneInfo) -> tuple[str, ...]:
    return (
        "-",
        h.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        h.outcome,
        "-",
        h.rule,
        _clip(h.title, 50),
        "not sent",
    )


def _clip(text: str, limit: int) -> str:
    """``text`` cut to fit a table column, at a word, with "…" where it was cut."""
    if len(text) <= limit:
        return text
    cut = textwrap.shorten(text, limit, placeholder="…")
    return cut if cut != "…" else text[: limit - 1] + "…"  # one long word


if __name__ == "__main__":
    raise SystemExit(main())
