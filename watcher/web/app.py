"""The web page: aiohttp routes and server, login and CSRF, and the views; wiring only."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, PayloadEncodingError

from watcher import __version__
from watcher.channels.registry import configured_kinds
from watcher.clock import Clock
from watcher.config import Config, Secret
from watcher.errors import ConfigError, RuleError, WatcherError
from watcher.explain import Explainer
from watcher.feeds.schedule import FeedHealth, feed_status, health_problem
from watcher.rules.explain import entity_words, evidence_name, format_explanation, strongest
from watcher.rules.reload import load_checked, rules_stamp
from watcher.rules.schema import PRIORITIES, RuleSet
from watcher.store.base import Store
from watcher.store.feeds import FeedRow
from watcher.store.runner import StoreRunner
from watcher.store.views import (
    Facets,
    Page,
    StoryFilter,
    feed_activity,
    rule_activity,
    search_articles,
    stories_page,
    story_facets,
)
from watcher.types import Article
from watcher.web import render
from watcher.web.tester import backtest_rule

log = logging.getLogger(__name__)

COOKIE = "watcher_session"
# The request's session, set by the middleware for the handler running in the same task.
_SESSION: contextvars.ContextVar[_Session] = contextvars.ContextVar("watcher_web_session")
PER_PAGE = 50
# Past any store's end (50 billion stories), and (page - 1) * 50 fits a 64-bit OFFSET.
MAX_PAGE = 10**9
RULE_DAYS = 30
FEED_DAYS = 14
# A backtest reads at most this many stored articles (newest first) and this many days.
BACKTEST_ARTICLES = 5000
BACKTEST_DAYS = 90
TEXT_LIMIT = 200_000
# The tester fetches and runs NLP; past this the page says it timed out.
TESTER_TIMEOUT = 120.0
FEEDBACK_KIND = "not_relevant"  # what the Telegram bot's button stores
MUTE_HOURS = (1, 8, 24, 168)
_STATIC = Path(__file__).parent / "static"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass
class Backend:
    """What the page needs from the running daemon."""

    config: Config
    db: StoreRunner
    clock: Clock
    rules: Callable[[], RuleSet]  # the rules the daemon runs now
    explainer: Explainer  # the one explain path: URLs through the feeds' address guard
    cpu: Callable[..., Awaitable[Any]]  # a worker pool for backtests
    token: Secret | None = None


@dataclass
class _Session:
    sid: str
    auth: bool
    csrf: str
    new: bool = False


@dataclass
class _RulesCheck:
    """The last validation of the rule files (what a reload would say), by file stamp."""

    stamp: tuple[tuple[str, int, int], ...] = ()
    problems: list[str] = field(default_factory=list)


class WebApp:
    def __init__(self, backend: Backend) -> None:
        self.b = backend
        self.tz = ZoneInfo(backend.config.watcher.timezone)
        token = backend.token.reveal() if backend.token else ""
        # Signed with the token, sessions survive restarts; without one they last a process.
        seed = token.encode() if token else secrets.token_bytes(32)
        self._key = hmac.new(seed, b"watcher web session", hashlib.sha256).digest()
        self._rules_check = _RulesCheck()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("watcher.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            highlight=render.highlight,
            evidence_sentence=render.evidence_sentence,
            strongest=strongest,
            evidence_name=evidence_name,
            bars=render.bars,
            sparkline=render.sparkline,
            link=render.link,
            version=__version__,
        )
        self.env.filters["when"] = lambda v: render.when(v, self.tz)
        self.env.filters["entity_words"] = entity_words

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024 * 1024)
        app.add_routes(
            [
                web.get("/", self.home),
                web.get("/stories", self.stories),
                web.get("/search", self.search),
                web.get("/rules", self.rules),
                web.get("/feeds", self.feeds),
                web.get("/tester", self.tester),
                web.post("/tester", self.tester_run),
                web.post("/backtest", self.backtest),
                web.post("/mute", self.mute),
                web.post("/unmute", self.unmute),
                web.post("/feedback", self.feedback),
                web.get("/login", self.login_form),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.static("/static", _STATIC),
            ]
        )
        return app

    # --- sessions, login and CSRF ---

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _session(self, request: web.Request) -> _Session:
        raw = request.cookies.get(COOKIE, "")
        sid, _, rest = raw.partition(".")
        auth, _, mac = rest.partition(".")
        if (
            sid
            and auth in ("0", "1")
            and hmac.compare_digest(mac.encode(), self._sign(f"{sid}.{auth}").encode())
        ):
            return _Session(sid, auth == "1", self._sign(f"csrf.{sid}"))
        sid = secrets.token_urlsafe(18)
        return _Session(sid, False, self._sign(f"csrf.{sid}"), new=True)

    def _set_cookie(self, response: web.StreamResponse, session: _Session) -> None:
        value = f"{session.sid}.{int(session.auth)}"
        response.set_cookie(
            COOKIE,
            f"{value}.{self._sign(value)}",
            httponly=True,
            samesite="Strict",
            path="/",
        )

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        session = self._session(request)
        _SESSION.set(session)
        response = await self._respond(_without_controls(request), handler, session)
        response.headers.update(_HEADERS)
        # How long the server took (store queries and rendering), for browsers' dev tools.
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if session.new and not request.path.startswith("/static/"):
            self._set_cookie(response, session)
        return response

    async def _respond(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        session: _Session,
    ) -> web.StreamResponse:
        refused = await self._refusal(request, session)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return self._error(request, 404, "No such page.")
        except web.HTTPForbidden as exc:
            return self._error(request, 403, exc.text or "Forbidden.")
        except web.HTTPRedirection as exc:
            return _redirect(exc.headers.get("Location", "/"))
        except WatcherError as exc:
            return self._error(request, 503, f"The store could not answer: {exc}")

    async def _unrouted(self, request: web.Request) -> web.Response | None:
        """The answer to a request no route takes, before the login and CSRF checks (the form
        is not what is wrong): 405 for a method the page does not take, a redirect from
        /stories/ to /stories, 404 for no page."""
        missed = request.match_info.http_exception
        if missed is None:
            return None
        if isinstance(missed, web.HTTPMethodNotAllowed):
            response = self._error(request, 405, f"This page does not take {request.method}.")
            response.headers["Allow"] = missed.headers["Allow"]
            return response
        if request.method in ("GET", "HEAD"):
            target = await _without_slash(request)
            if target is not None:
                return _redirect(target, 301)
        return self._error(request, 404, "No such page.")

    async def _refusal(self, request: web.Request, session: _Session) -> web.Response | None:
        """The answer to a request no route takes, or without a login (when a token is set)
        or a valid CSRF token (every POST); None when it may go on."""
        unrouted = await self._unrouted(request)
        if unrouted is not None:
            return unrouted
        public = request.path.startswith("/static/") or request.path == "/login"
        if self.b.token and not session.auth and not public:
            if request.method == "GET":
                return _redirect(render.link("/login", {"next": request.path_qs}))
            return self._error(request, 403, "Log in first: this page needs the login token.")
        if request.method == "POST" and not await self._csrf_ok(request, session):
            return self._error(
                request, 403, "The form expired or came from another site; reload and try again."
            )
        return None

    async def _csrf_ok(self, request: web.Request, session: _Session) -> bool:
        if session.new:
            return False
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return False
        form = await request.post()
        return hmac.compare_digest(str(form.get("csrf", "")).encode(), session.csrf.encode())

    def _can_write(self, request: web.Request) -> bool:
        return bool(self.b.token) and _SESSION.get().auth

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page(request, request.query.get("next"))

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not self.b.token:  # nothing to guess: say why there is no login, at once
            return self._login_page(request, form.get("next"), status=403)
        token = self.b.token.reveal()
        given = str(form.get("token", ""))
        if not hmac.compare_digest(given.encode(), token.encode()):
            await asyncio.sleep(1.0)  # slows guessing down
            return self._login_page(request, form.get("next"), status=403, failed=True)
        # A new session id at login: a session planted before it is worth nothing after.
        sid = secrets.token_urlsafe(18)
        response = _redirect(_safe_next(form.get("next")))
        self._set_cookie(response, _Session(sid, True, self._sign(f"csrf.{sid}")))
        return response

    def _login_page(
        self, request: web.Request, next_url: Any, *, status: int = 200, failed: bool = False
    ) -> web.Response:
        """The login form; without a token, why the page is read-only and how to set one."""
        source = self.b.config.source
        return self._page(
            request,
            "login.html",
            status=status,
            next=_safe_next(next_url),
            failed=failed,
            read_only=not self.b.token,
            config_file=str(source) if source else "the config file",
        )

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = _redirect("/login" if self.b.token else "/stories")
        response.del_cookie(COOKIE, path="/")
        return response

    # --- pages ---

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/stories")

    async def stories(self, request: web.Request) -> web.Response:
        q = request.query
        problems: list[str] = []
        db = self.b.db
        facets = await db(story_facets, db.store)
        # Filters as applied: a value the menus cannot show, like a bad date, is ignored with a
        # note, so the menus always show what the list is filtered by.
        params = {
            key: _choice(key, q.get(key, ""), known, problems)
            for key, known in self._known_values(facets).items()
        }
        since = self._day(q.get("since", ""), "since", problems)
        until = self._day(q.get("until", ""), "until", problems, end=True)
        params["since"] = q.get("since", "") if since else ""
        params["until"] = q.get("until", "") if until else ""
        if since and until and since >= until:
            problems.append(
                f"since: {params['since']} is after until {params['until']}; no story can match"
            )
        filt = StoryFilter(
            rule=params["rule"],
            priority=params["priority"],
            language=params["language"],
            feed=params["feed"],
            since=since,
            until=until,
        )
        result = await _paged(
            q.get("page"), problems, lambda page: db(stories_page, db.store, filt, page, PER_PAGE)
        )
        menus = [
            (key, label, _offered(values, params[key]))
            for key, label, values in (
                ("rule", "Rule", facets.rules),
                ("priority", "Priority", facets.priorities),
                ("language", "Language", facets.languages),
                ("feed", "Feed", facets.feeds),
            )
        ]
        return self._page(
            request,
            "stories.html",
            result=result,
            menus=menus,
            params=params,
            problems=problems,
            mute_hours=MUTE_HOURS,
        )

    def _known_values(self, facets: Facets) -> dict[str, set[str]]:
        """The values each story filter accepts: what stored stories have, and the rules and
        priorities the rule files define (a rule without alerts yet filters to nothing)."""
        return {
            "rule": {*facets.rules, *self.b.rules().names()},
            "priority": {*facets.priorities, *PRIORITIES},
            "language": set(facets.languages),
            "feed": set(facets.feeds),
        }

    async def search(self, request: web.Request) -> web.Response:
        text = request.query.get("q", "").strip()[:500]
        problems: list[str] = []
        db = self.b.db
        result = None
        if text:
            result = await _paged(
                request.query.get("page"),
                problems,
                lambda page: db(search_articles, db.store, text, page),
            )
        return self._page(request, "search.html", q=text, result=result, problems=problems)

    async def rules(self, request: web.Request) -> web.Response:
        db, now = self.b.db, self.b.clock.now()
        activity = {a.rule: a for a in await db(rule_activity, db.store, now, RULE_DAYS)}
        mutes = await db(db.store.active_mutes, now)
        ruleset = self.b.rules()
        names = ruleset.names() + sorted(set(activity) - set(ruleset.names()))
        labels = [
            (now.date() - timedelta(days=RULE_DAYS - 1 - i)).isoformat() for i in range(RULE_DAYS)
        ]
        rows = [
            {
                "name": name,
                "rule": next((r for r in ruleset.rules if r.name == name), None),
                "activity": activity.get(name),
                "muted": mutes.get(f"rule:{name}"),
            }
            for name in names
        ]
        return self._page(
            request,
            "rules.html",
            rows=rows,
            labels=labels,
            problems=await self._rule_problems(),
            other_mutes={k: v for k, v in mutes.items() if not k.startswith("rule:")},
            mute_hours=MUTE_HOURS,
            days=RULE_DAYS,
        )

    async def feeds(self, request: web.Request) -> web.Response:
        db, now = self.b.db, self.b.clock.now()
        feeds, cadences, per_day = await db(_feed_data, db.store, now)
        labels = [
            (now.date() - timedelta(days=FEED_DAYS - 1 - i)).isoformat() for i in range(FEED_DAYS)
        ]
        rows = [self._feed_row(f, cadences.get(f.id), per_day.get(f.id), now) for f in feeds]
        sort = request.query.get("sort", "status")
        rows.sort(key=_FEED_SORTS.get(sort, _FEED_SORTS["status"]))
        desc = request.query.get("desc") == "1"
        if desc:
            rows.reverse()
        return self._page(
            request, "feeds.html", rows=rows, labels=labels, sort=sort, desc=desc, days=FEED_DAYS
        )

    def _feed_row(
        self, feed: FeedRow, cadence: float | None, per_day: tuple[int, ...] | None, now: datetime
    ) -> dict[str, Any]:
        health = FeedHealth(
            feed.failing_since, feed.last_error, feed.last_new_item_at, cadence, feed.added_at
        )
        problem = health_problem(health, now, self.b.config.polling)
        status = feed_status(problem, enabled=feed.enabled, failures=feed.failures)
        counts = per_day or (0,) * FEED_DAYS
        return {
            "feed": feed,
            "status": status,
            "problem": problem or (feed.last_error if feed.failures else ""),
            "per_day": counts,
            "items_per_day": sum(counts) / len(counts),
            "backoff": feed.failures > 0 and feed.next_poll_at is not None,
            "ago": lambda v: render.ago(v, now),
        }

    async def tester(self, request: web.Request) -> web.Response:
        return self._tester_page(request)

    def _tester_page(self, request: web.Request, status: int = 200, **extra: Any) -> web.Response:
        values = {
            "report": None,
            "cli": "",
            "error": "",
            "url": "",
            "text": "",
            "backtest": None,
            "rule": "",
            "days": 7,
            **extra,
        }
        return self._page(
            request, "tester.html", status=status, rules=self.b.rules().names(), **values
        )

    async def tester_run(self, request: web.Request) -> web.Response:
        form = await request.post()
        url = _CONTROL.sub("", str(form.get("url", ""))).strip()
        # Tabs and line breaks are text; the other control characters are dropped.
        text = _TEXT_CONTROL.sub("", str(form.get("text", ""))).strip()[:TEXT_LIMIT]
        if not url and not text:
            return self._tester_page(request, 400, error="Paste a URL or some text to test.")
        if url and not url.startswith(("http://", "https://")):
            return self._tester_page(
                request, 400, url=url, error="The URL must start with http:// or https://."
            )
        try:
            report = await asyncio.wait_for(self._explain(url, text), TESTER_TIMEOUT)
        except TimeoutError:
            return self._tester_page(request, 504, url=url, text=text, error="The test timed out.")
        except WatcherError as exc:
            return self._tester_page(request, 422, url=url, text=text, error=str(exc))
        return self._tester_page(
            request, url=url, text=text, report=report, cli=format_explanation(report)
        )

    async def _explain(self, url: str, text: str) -> dict[str, Any]:
        if url:
            return await self.b.explainer.url(url)
        return await self.b.explainer.text(text)

    async def backtest(self, request: web.Request) -> web.Response:
        form = await request.post()
        rule = str(form.get("rule", ""))
        try:
            days = int(str(form.get("days", "7")))
        except ValueError:
            days = 0
        if rule not in self.b.rules().names() or not 1 <= days <= BACKTEST_DAYS:
            return self._tester_page(
                request,
                400,
                rule=rule,
                error=f"Pick one of the rules and a number of days from 1 to {BACKTEST_DAYS}.",
            )
        db = self.b.db
        since = self.b.clock.now() - timedelta(days=days)
        stored, did = await db(_backtest_input, db.store, since)
        try:
            result = await asyncio.wait_for(
                self.b.cpu(backtest_rule, rule, stored, did, self.b.rules(), self.b.config.nlp),
                TESTER_TIMEOUT,
            )
        except TimeoutError:
            return self._tester_page(
                request, 504, rule=rule, days=days, error="The backtest timed out."
            )
        except WatcherError as exc:  # a worker over its budget, or one that died
            return self._tester_page(request, 422, rule=rule, days=days, error=str(exc))
        titles = dict(stored)
        feedback = await db(db.store.feedback_counts, since)
        return self._tester_page(
            request,
            rule=rule,
            days=days,
            backtest={
                "result": result,
                "articles": len(stored),
                "capped": len(stored) >= BACKTEST_ARTICLES,
                "articles_by_id": titles,
                "not_relevant": feedback.get(rule, 0),
            },
        )

    # --- write actions (token and CSRF) ---

    async def mute(self, request: web.Request) -> web.StreamResponse:
        form = await self._writable(request)
        rule = str(form.get("rule", ""))
        try:
            hours = int(str(form.get("hours", "24")))
        except ValueError:
            hours = 0
        if rule not in self.b.rules().names() or hours not in MUTE_HOURS:
            return self._error(request, 400, "Unknown rule or mute length.")
        now = self.b.clock.now()
        await self.b.db(
            # a new length replaces the old one, as the bot's /mute does
            self.b.db.store.set_mute,
            f"rule:{rule}",
            now + timedelta(hours=hours),
            now,
            "web",
        )
        log.info("web: muted rule %s for %d h", rule, hours)
        raise web.HTTPSeeOther(_safe_next(form.get("next"), "/rules"))

    async def unmute(self, request: web.Request) -> web.StreamResponse:
        form = await self._writable(request)
        target = str(form.get("target", ""))[:300]
        await self.b.db(self.b.db.store.remove_mute, target, self.b.clock.now())
        log.info("web: unmuted %s", target)
        raise web.HTTPSeeOther(_safe_next(form.get("next"), "/rules"))

    async def feedback(self, request: web.Request) -> web.StreamResponse:
        form = await self._writable(request)
        alert_id = _row_id(form.get("alert"))
        if alert_id is None:
            return self._error(request, 400, "No such alert.")
        db = self.b.db
        if await db(db.store.button_alert, alert_id) is None:
            return self._error(request, 404, "No such alert.")
        rules = await db(
            db.store.add_feedback_once, alert_id, FEEDBACK_KIND, "web", self.b.clock.now()
        )
        if rules:
            log.info("web: alert %d marked not relevant (%s)", alert_id, ", ".join(rules))
        raise web.HTTPSeeOther(_safe_next(form.get("next"), "/stories"))

    async def _writable(self, request: web.Request) -> Any:
        if not self._can_write(request):
            raise web.HTTPForbidden(
                text="Write actions need the login token: set $WATCHER_WEB_TOKEN or web.token_file."
            )
        return await request.post()

    # --- helpers ---

    async def _rule_problems(self) -> list[str]:
        """What the daemon's next reload would report for the rule files (file:line:col)."""
        directory = self.b.config.watcher.rules_dir
        stamp = await asyncio.to_thread(rules_stamp, directory)
        if stamp != self._rules_check.stamp:
            kinds = configured_kinds(self.b.config)
            try:
                await asyncio.to_thread(load_checked, directory, kinds)
                problems: list[str] = []
            except RuleError as exc:
                problems = exc.problems
            self._rules_check = _RulesCheck(stamp, problems)
        return self._rules_check.problems

    def _day(
        self, text: str, key: str, problems: list[str], *, end: bool = False
    ) -> datetime | None:
        if not text:
            return None
        try:
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=self.tz)
            when = start + timedelta(days=1) if end else start
            # The store compares in UTC: 0001-01-01 east of UTC is before year 1 there.
            when.astimezone(UTC)
        except (ValueError, OverflowError):  # not a date, or 9999-12-31 and the day after
            problems.append(f"{key}: {_shown(text)} is not a date like 2026-01-31; ignored")
            return None
        return when

    def _page(
        self, request: web.Request, template: str, *, status: int = 200, **values: Any
    ) -> web.Response:
        session: _Session = _SESSION.get()
        html = self.env.get_template(template).render(
            path=request.path,
            csrf=session.csrf,
            can_write=self._can_write(request),
            logged_in=session.auth,
            has_token=bool(self.b.token),
            next_url=request.path_qs,
            **values,
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        return self._page(request, "error.html", status=status, message=message)


# --- store-thread helpers (one call each, so a page is one hop to the store thread) ---


def _feed_data(
    store: Store, now: datetime
) -> tuple[list[FeedRow], dict[int, float | None], dict[int, tuple[int, ...]]]:
    feeds = store.feeds()
    return (
        feeds,
        {f.id: store.feed_cadence(f.id) for f in feeds},
        feed_activity(store, now, FEED_DAYS),
    )


def _backtest_input(
    store: Store, since: datetime
) -> tuple[list[tuple[int, Article]], dict[int, set[str]]]:
    stored = store.articles_since(since, limit=BACKTEST_ARTICLES)
    return stored, store.alerted_rules([i for i, _ in stored])


_STATUS_ORDER = {"failing": 0, "silent": 1, "erroring": 2, "ok": 3, "disabled": 4}
_FEED_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "status": lambda r: (_STATUS_ORDER[r["status"]], r["feed"].name.casefold()),
    "name": lambda r: r["feed"].name.casefold(),
    "success": lambda r: (
        r["feed"].last_success_at or datetime.min.replace(tzinfo=r["feed"].added_at.tzinfo)
    ),
    "next": lambda r: r["feed"].next_poll_at or r["feed"].added_at,
    "items": lambda r: r["items_per_day"],
}


def _redirect(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


async def _without_slash(request: web.Request) -> str | None:
    """The path and query without the path's trailing slashes, when a route takes that path
    (only our own routes: //other.example/ stays a 404, never a redirect off the site)."""
    path = request.path.rstrip("/")
    if not path or path == request.path:
        return None
    moved = request.clone(rel_url=request.rel_url.with_path(path, keep_query=True))
    found = await request.app.router.resolve(moved)
    return moved.path_qs if found.http_exception is None else None


# C0 and C1 control characters and DEL: no query means them, and a NUL in HTML is an error.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")


def _without_controls(request: web.Request) -> web.Request:
    """The request with each run of control characters in its query made one space (a search
    for 'a<TAB>b' still finds both words), so no page echoes them."""
    query = request.rel_url.query
    if not any(_CONTROL.search(key + value) for key, value in query.items()):
        return request
    cleaned = [(_CONTROL.sub(" ", key), _CONTROL.sub(" ", value)) for key, value in query.items()]
    return request.clone(rel_url=request.rel_url.with_query(cleaned))


def _page_number(text: str | None, problems: list[str]) -> int:
    """The page asked for; 1 and a note when it is not a page number. Capped where it is past
    the end of any store anyway, so that the store's OFFSET fits 64 bits."""
    if not text:
        return 1
    try:
        number = int(text)
    except ValueError:  # 'abc', '1e9', or more than 4,300 digits
        number = 0
    if number < 1:
        problems.append(f"page: {_shown(text)} is not a page number; showing page 1")
        return 1
    return min(number, MAX_PAGE)


async def _paged(
    text: str | None, problems: list[str], fetch: Callable[[int], Awaitable[Page[Any]]]
) -> Page[Any]:
    """The page ``text`` asks for; past the end, the last page and a note saying so."""
    result = await fetch(_page_number(text, problems))
    if result.page > result.pages:
        only = "is only 1 page" if result.pages == 1 else f"are only {result.pages} pages"
        problems.append(
            f"page: {_shown(text or '')} is past the end (there {only}); showing the last"
        )
        result = await fetch(result.pages)
    return result


_FILTER_NOTES = {
    "rule": "no rule is named {}",
    "priority": "{} is not a priority (" + ", ".join(PRIORITIES) + ")",
    "language": "no alerted story is in language {}",
    "feed": "no alerted story is from a feed named {}",
}


def _choice(key: str, value: str, known: set[str], problems: list[str]) -> str:
    """``value`` when the filter accepts it; else "" and a note, as for a bad date."""
    if not value or value in known:
        return value
    problems.append(f"{key}: {_FILTER_NOTES[key].format(_shown(value))}; ignored")
    return ""


def _offered(values: tuple[str, ...], current: str) -> tuple[str, ...]:
    """A menu's values, with the one applied even when no stored story has it yet."""
    return values if not current or current in values else (*values, current)


def _row_id(value: Any) -> int | None:
    """A store row id from a form, or None: past 2**63 - 1 no store column holds it (SQLite
    raises OverflowError on such a parameter)."""
    try:
        number = int(str(value or ""))
    except ValueError:
        return None
    return number if 1 <= number < 2**63 else None


def _shown(text: str, limit: int = 40) -> str:
    """A request's value quoted in a note, cut short: the note must not echo a whole URL."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _safe_next(value: Any, default: str = "/stories") -> str:
    """Only a local path: never redirect to another site after a login or an action."""
    text = str(value or "")
    return (
        text if text.startswith("/") and not text.startswith("//") and "\\" not in text else default
    )


class _QuietParseErrors(logging.Filter):
    """Makes aiohttp's record of a request it cannot parse (a request line or header over
    its limits, bytes that are not HTTP) one INFO line without a traceback.

    aiohttp answers those with a 400 before the app and its middleware see them, and logs an
    ERROR with a traceback each time: any local client could fill the daemon's log. A page's
    own crash (any other exception) keeps its traceback. A logging filter is aiohttp's public
    surface for this; its connection handler has no hook for it in 3.x.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # The parser's errors, raised before any handler; a body a handler could not read
        # (PayloadEncodingError, from request.post()) is that handler's, and keeps its trace.
        if isinstance(exc, BadHttpMessage) and not isinstance(exc, PayloadEncodingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = (
                "web: 400 for an unreadable request from %s (%s)",
                (
                    remote,
                    type(exc).__name__,
                ),
            )
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


_SERVER_LOG = logging.getLogger("aiohttp.server")


def _quiet_parse_errors() -> None:
    if not any(isinstance(f, _QuietParseErrors) for f in _SERVER_LOG.filters):
        _SERVER_LOG.addFilter(_QuietParseErrors())


class WebServer:
    """The page, listening in the daemon's event loop."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        settings = self.backend.config.web
        _quiet_parse_errors()
        self._runner = web.AppRunner(
            WebApp(self.backend).build(),
            access_log=None,
            # A stop must not wait a minute for a tester request in flight.
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"[web] cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
                "(pick another web.port, or stop what uses it)"
            ) from None
        self.port = int(self._runner.addresses[0][1])
        log.info("web page on http://%s:%d/", settings.host, self.port)

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
