"""Alert planning: mutes, rate limits and digests, quiet hours per destination, digest times,
and decide_article (alerts/decide.py), which turns a processed article into what is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watcher.alerts.decide import decide_article
from watcher.alerts.plan import (
    Context,
    context_from_config,
    last_digest_time,
    next_digest_time,
    plan,
    quiet_until,
)
from watcher.articles.fingerprint import signature
from watcher.config import AlertsSettings, config_from_dict
from watcher.rules.worker import Processed
from watcher.store.alerts import ArticleRecord
from watcher.stories.group import Action
from watcher.types import Article, ArticleSource, Evidence, Match, Route, StoryRef

MADRID = ZoneInfo("Europe/Madrid")
TELEGRAM, EMAIL = "telegram:-1001", "email:desk@example.org"


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)  # type: ignore[arg-type,misc]


def actor(name: str) -> Evidence:
    return Evidence("actor", name, name, "text", f"{name} spoke.", 0, len(name))


def match(
    rule: str = "venezuela",
    *,
    priority: str = "normal",
    destinations: tuple[str, ...] = (),
    actors: tuple[str, ...] = ("Nicolás Maduro",),
) -> Match:
    return Match(rule, 5.0, 3.0, tuple(map(actor, actors)), priority, destinations, ())


def ctx(**changes: Any) -> Context:
    base = Context(
        now=madrid(2026, 1, 14, 12, 0),
        tz=MADRID,
        muted=frozenset(),
        recent_alerts={},
        rate_limit=10,
        default_destinations=(TELEGRAM, EMAIL),
        local_destinations=("console", "jsonl"),
        quiet_hours={},
        default_quiet_hours="",
        critical_ignores_quiet=True,
    )
    return replace(base, **changes)


def routes(result: Any) -> dict[str, tuple[bool, datetime | None]]:
    return {r.destination: (r.digest, r.not_before) for r in result.routes}


# --- outcomes and routes ----------------------------------------------------------------


def test_a_new_story_alerts_everywhere_at_once() -> None:
    result = plan([match()], Action.ALERT, "new story", ctx())
    assert [(o.rule, o.outcome, o.reason) for o in result.outcomes] == [
        ("venezuela", "alert", "new story")
    ]
    assert result.routes == (
        Route(TELEGRAM, False, None),
        Route(EMAIL, False, None),
        Route("console", False, None),
        Route("jsonl", False, None),
    )
    assert result.alerting == ["venezuela"]


def test_a_joining_article_is_recorded_but_sends_nothing() -> None:
    result = plan([match()], Action.JOIN, "same story", ctx())
    assert [o.outcome for o in result.outcomes] == ["join"] and result.routes == ()
    assert result.alerting == []


def test_a_developing_story_alerts_again() -> None:
    result = plan([match()], Action.DEVELOP, "new rule matched: oil", ctx())
    assert [o.outcome for o in result.outcomes] == ["develop"] and len(result.routes) == 4


def test_a_rule_with_destinations_sends_only_there() -> None:
    result = plan([match(destinations=(EMAIL,))], Action.ALERT, "", ctx())
    assert list(routes(result)) == [EMAIL, "console", "jsonl"]


# --- rate limits and digests ------------------------------------------------------------


def test_alerts_over_the_rate_limit_go_to_the_digest() -> None:
    result = plan([match()], Action.ALERT, "", ctx(recent_alerts={"venezuela": 10}))
    (outcome,) = result.outcomes
    assert outcome.outcome == "digest" and "rate limit (10 per hour)" in outcome.reason
    assert routes(result) == {
        TELEGRAM: (True, None),
        EMAIL: (True, None),
        "console": (False, None),  # local records get everything at once
        "jsonl": (False, None),
    }
    assert result.alerting == ["venezuela"]


def test_the_last_alert_under_the_rate_limit_is_sent() -> None:
    result = plan([match()], Action.ALERT, "", ctx(recent_alerts={"venezuela": 9}))
    assert [o.outcome for o in result.outcomes] == ["alert"]


def test_rate_limits_count_per_rule() -> None:
    result = plan([match()], Action.ALERT, "", ctx(recent_alerts={"oil": 50}))
    assert [o.outcome for o in result.outcomes] == ["alert"]


def test_a_rate_limit_of_zero_means_no_limit() -> None:
    result = plan([match()], Action.ALERT, "", ctx(rate_limit=0, recent_alerts={"venezuela": 99}))
    assert [o.outcome for o in result.outcomes] == ["alert"]


def test_low_priority_goes_to_the_digest() -> None:
    result = plan([match(priority="low")], Action.ALERT, "", ctx())
    assert [(o.outcome, o.reason) for o in result.outcomes] == [
        ("digest", "low priority: sent in the digest")
    ]
    assert routes(result)[TELEGRAM] == (True, None)


def test_a_destination_gets_the_alert_now_if_any_rule_sends_it_now() -> None:
    low = match("oil", priority="low", destinations=(TELEGRAM, EMAIL))
    normal = match("venezuela", destinations=(TELEGRAM,))
    result = plan([low, normal], Action.ALERT, "", ctx())
    assert [o.outcome for o in result.outcomes] == ["digest", "alert"]
    assert routes(result)[TELEGRAM] == (False, None) and routes(result)[EMAIL] == (True, None)


# --- mutes ------------------------------------------------------------------------------


def test_a_muted_rule_sends_nothing() -> None:
    result = plan([match()], Action.ALERT, "", ctx(muted=frozenset({"rule:venezuela"})))
    assert [(o.outcome, o.reason) for o in result.outcomes] == [("muted", "muted: rule venezuela")]
    assert result.routes == () and result.alerting == []


def test_other_rules_still_send_when_one_is_muted() -> None:
    result = plan(
        [match("venezuela"), match("oil")], Action.ALERT, "", ctx(muted=frozenset({"rule:oil"}))
    )
    assert [o.outcome for o in result.outcomes] == ["alert", "muted"]
    assert result.alerting == ["venezuela"] and len(result.routes) == 4


def test_muting_an_actor_mutes_matches_mostly_about_them() -> None:
    muted = ctx(muted=frozenset({"actor:Nicolás Maduro"}))
    about_him = match(actors=("Nicolás Maduro", "Nicolás Maduro", "Marco Rubio"))
    result = plan([about_him], Action.ALERT, "", muted)
    assert [(o.outcome, o.reason) for o in result.outcomes] == [
        ("muted", "muted: actor Nicolás Maduro")
    ]
    mostly_rubio = match(actors=("Nicolás Maduro", "Marco Rubio", "Marco Rubio"))
    assert [o.outcome for o in plan([mostly_rubio], Action.ALERT, "", muted).outcomes] == ["alert"]


def test_an_actor_mute_weighs_mentions_by_weight_and_ignores_context_actors() -> None:
    """Maduro x3 against "United States" x3, a context-only actor (weight 0): held, every
    time; a tie between two scoring actors holds it for either's mute."""
    muted = ctx(muted=frozenset({"actor:Nicolás Maduro"}))
    context = replace(actor("United States"), weight=0.0)
    evidence = (*[actor("Nicolás Maduro")] * 3, *[context] * 3)
    tied = Match("venezuela", 5.0, 3.0, evidence, "normal", (), ())
    assert [o.outcome for o in plan([tied], Action.ALERT, "", muted).outcomes] == ["muted"]
    weighty = replace(actor("Marco Rubio"), weight=3.0)  # one mention outweighs two of weight 1
    outweighed = Match(
        "venezuela", 5.0, 3.0, (*[actor("Nicolás Maduro")] * 2, weighty), "normal", (), ()
    )
    assert [o.outcome for o in plan([outweighed], Action.ALERT, "", muted).outcomes] == ["alert"]
    even = match(actors=("Nicolás Maduro", "Marco Rubio"))
    assert [o.outcome for o in plan([even], Action.ALERT, "", muted).outcomes] == ["muted"]
    light = replace(actor("Nicolás Maduro"), weight=0.1)  # 3 x 0.1 ties 1 x 0.3
    rubio = replace(actor("Marco Rubio"), weight=0.3)
    tied_floats = Match("venezuela", 5.0, 3.0, (light, light, light, rubio), "normal", (), ())
    rubio_muted = ctx(muted=frozenset({"actor:Marco Rubio"}))
    assert [o.outcome for o in plan([tied_floats], Action.ALERT, "", rubio_muted).outcomes] == [
        "muted"
    ]


def test_pausing_everything_mutes_every_rule_even_joins() -> None:
    result = plan([match(), match("oil")], Action.JOIN, "", ctx(muted=frozenset({"all"})))
    assert {o.reason for o in result.outcomes} == {"muted: all alerts are paused"}
    assert result.routes == ()


def test_a_mute_of_something_else_changes_nothing() -> None:
    result = plan([match()], Action.ALERT, "", ctx(muted=frozenset({"rule:oil", "actor:X"})))
    assert [o.outcome for o in result.outcomes] == ["alert"]


# --- quiet hours ------------------------------------------------------------------------

NIGHT = "22:00-07:00"


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (madrid(2026, 1, 14, 23, 30), madrid(2026, 1, 15, 7, 0)),  # before midnight
        (madrid(2026, 1, 15, 0, 0), madrid(2026, 1, 15, 7, 0)),
        (madrid(2026, 1, 15, 6, 59), madrid(2026, 1, 15, 7, 0)),  # after midnight
        (madrid(2026, 1, 14, 22, 0), madrid(2026, 1, 15, 7, 0)),  # the start is inside
        (madrid(2026, 1, 15, 7, 0), None),  # the end is not
        (madrid(2026, 1, 14, 21, 59), None),
        (madrid(2026, 1, 14, 12, 0), None),
    ],
)
def test_quiet_hours_wrapping_midnight(now: datetime, until: datetime | None) -> None:
    assert quiet_until(NIGHT, now.astimezone(UTC), MADRID) == until


def test_quiet_hours_within_one_day() -> None:
    now = madrid(2026, 1, 14, 13, 30).astimezone(UTC)
    assert quiet_until("13:00-15:00", now, MADRID) == madrid(2026, 1, 14, 15, 0)
    assert quiet_until("13:00-15:00", now + timedelta(hours=2), MADRID) is None
    assert quiet_until("", now, MADRID) is None


def test_quiet_hours_follow_local_time_across_dst_changes() -> None:
    # Madrid moves to summer time at 02:00 on 29 March 2026 and back at 03:00 on 25 October.
    spring = quiet_until(NIGHT, datetime(2026, 3, 28, 22, 0, tzinfo=UTC), MADRID)
    assert spring is not None and spring.astimezone(UTC) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    autumn = quiet_until(NIGHT, datetime(2026, 10, 24, 21, 0, tzinfo=UTC), MADRID)
    assert autumn is not None and autumn.astimezone(UTC) == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)


def test_quiet_hours_hold_remote_alerts_until_the_window_ends() -> None:
    night = ctx(now=madrid(2026, 1, 14, 23, 30), default_quiet_hours=NIGHT)
    result = plan([match()], Action.ALERT, "", night)
    morning = madrid(2026, 1, 15, 7, 0)
    assert routes(result) == {
        TELEGRAM: (False, morning),
        EMAIL: (False, morning),
        "console": (False, None),
        "jsonl": (False, None),
    }


def test_a_destination_has_its_own_quiet_hours() -> None:
    night = ctx(
        now=madrid(2026, 1, 14, 23, 30),
        default_quiet_hours=NIGHT,
        quiet_hours={TELEGRAM: "01:00-06:00"},
    )
    assert routes(plan([match()], Action.ALERT, "", night))[TELEGRAM] == (False, None)
    later = replace(night, now=madrid(2026, 1, 15, 2, 0))
    held = routes(plan([match()], Action.ALERT, "", later))
    assert held[TELEGRAM] == (False, madrid(2026, 1, 15, 6, 0))
    assert held[EMAIL] == (False, madrid(2026, 1, 15, 7, 0))


def test_critical_alerts_bypass_quiet_hours() -> None:
    night = ctx(now=madrid(2026, 1, 14, 23, 30), default_quiet_hours=NIGHT)
    critical = [match(priority="critical")]
    assert routes(plan(critical, Action.ALERT, "", night))[TELEGRAM] == (False, None)
    strict = replace(night, critical_ignores_quiet=False)
    assert routes(plan(critical, Action.ALERT, "", strict))[TELEGRAM][1] is not None


def test_digest_routes_are_not_held_by_quiet_hours() -> None:
    # The digest itself is sent at its scheduled time; holding the entry means nothing.
    night = ctx(now=madrid(2026, 1, 14, 23, 30), default_quiet_hours=NIGHT)
    assert routes(plan([match(priority="low")], Action.ALERT, "", night))[TELEGRAM] == (True, None)


# --- digest times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (madrid(2026, 1, 14, 7, 59), madrid(2026, 1, 14, 8, 0)),
        (madrid(2026, 1, 14, 8, 0), madrid(2026, 1, 14, 18, 0)),  # strictly after
        (madrid(2026, 1, 14, 12, 0), madrid(2026, 1, 14, 18, 0)),
        (madrid(2026, 1, 14, 18, 0), madrid(2026, 1, 15, 8, 0)),
        (madrid(2026, 1, 14, 23, 59), madrid(2026, 1, 15, 8, 0)),
    ],
)
def test_next_digest_time_in_local_time(after: datetime, expected: datetime) -> None:
    got = next_digest_time(["18:00", "08:00"], after.astimezone(UTC), MADRID)
    assert got == expected and got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (madrid(2026, 1, 14, 7, 59), madrid(2026, 1, 13, 18, 0)),
        (madrid(2026, 1, 14, 8, 0), madrid(2026, 1, 14, 8, 0)),  # at or before
        (madrid(2026, 1, 14, 12, 0), madrid(2026, 1, 14, 8, 0)),
        (madrid(2026, 1, 14, 23, 59), madrid(2026, 1, 14, 18, 0)),
    ],
)
def test_last_digest_time_in_local_time(now: datetime, expected: datetime) -> None:
    got = last_digest_time(["18:00", "08:00"], now.astimezone(UTC), MADRID)
    assert got == expected
    assert last_digest_time([], now, MADRID) is None


def test_next_digest_time_across_the_dst_change() -> None:
    # The day of the change has 23 hours; 08:00 stays 08:00 local time.
    after = madrid(2026, 3, 28, 8, 0).astimezone(UTC)
    got = next_digest_time(["08:00"], after, MADRID)
    assert got.astimezone(UTC) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert got - after == timedelta(hours=23)


def test_next_digest_time_in_the_repeated_hour_is_still_after() -> None:
    # 01:30 UTC on 25 October 2026 is 02:30 CET, the second time the clock shows 02:30.
    after = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    got = next_digest_time(["02:45"], after, MADRID)
    assert got.astimezone(UTC) > after
    assert got.astimezone(UTC) - after < timedelta(days=1, hours=2)


def test_next_digest_time_in_a_skipped_hour() -> None:
    # 02:30 does not exist on 29 March 2026 in Madrid; the digest goes at the same instant
    # the clock would have shown it.
    got = next_digest_time(["02:30"], datetime(2026, 3, 29, 0, 0, tzinfo=UTC), MADRID)
    assert got.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


# --- from the config --------------------------------------------------------------------


def test_context_from_config_reads_destinations_and_quiet_hours() -> None:
    config = config_from_dict(
        {
            "watcher": {"timezone": "Europe/Madrid"},
            "telegram": {"chats": ["-1001", "-1002/7"]},
            "email": {
                "host": "127.0.0.1",
                "sender": "w@example.org",
                "recipients": ["desk@example.org"],
            },
            "alerts": {"quiet_hours": NIGHT, "rate_limit": 3},
            "destinations": {"telegram:-1002/7": {"quiet_hours": "01:00-06:00"}},
        }
    )
    now = datetime(2026, 1, 14, 22, 30, tzinfo=UTC)
    c = context_from_config(config, now, frozenset({"rule:x"}), {"venezuela": 2})
    assert c.default_destinations == ("telegram:-1001", "telegram:-1002/7", EMAIL)
    assert c.local_destinations == ("console", "jsonl")
    assert c.quiet_hours == {"telegram:-1002/7": "01:00-06:00"}
    assert (c.default_quiet_hours, c.rate_limit, c.tz) == (NIGHT, 3, MADRID)
    held = routes(plan([match()], Action.ALERT, "", c))
    assert held["telegram:-1001"][1] == madrid(2026, 1, 15, 7, 0)
    assert held["telegram:-1002/7"] == (False, None)  # its own window starts at 01:00


def test_with_nothing_configured_alerts_go_to_the_console_and_jsonl() -> None:
    config = config_from_dict({"console": {"enabled": False}})
    c = context_from_config(config, datetime(2026, 1, 1, tzinfo=UTC), frozenset(), {})
    assert c.default_destinations == () and c.local_destinations == ("console", "jsonl")
    assert list(routes(plan([match()], Action.ALERT, "", c))) == ["console", "jsonl"]


# --- decide_article: the record the pipeline stores -------------------------------------

ARTICLE = Article(
    url="https://news.example/1",
    title="Warships gather in the Caribbean",
    text="Maduro spoke. Warships gathered near the coast as talks stalled.",
    source=ArticleSource.PAGE,
    feed_name="Outlet 1",
)
ARTICLE_SIG = signature(ARTICLE.title, ARTICLE.text)


def processed(*matches: Match) -> Processed:
    return Processed(ARTICLE, matches, ARTICLE_SIG if matches else None)


def story(rules: dict[str, float]) -> StoryRef:
    return StoryRef(4, ARTICLE_SIG, madrid(2026, 1, 14, 11, 0), rules)


def decided(p: Processed, recent: Sequence[StoryRef] = (), **changes: Any) -> ArticleRecord:
    return decide_article(
        p, entry_id=1, feed_id=2, url=ARTICLE.url, recent=recent, ctx=ctx(**changes),
        settings=AlertsSettings(),
    )  # fmt: skip


def test_an_article_without_matches_records_only_itself() -> None:
    rec = decided(processed())
    assert (rec.story, rec.alert_kind, rec.payload, rec.routes, rec.matches) == (
        None, None, None, (), ()
    )  # fmt: skip


def test_a_new_story_records_an_alert_with_its_routes() -> None:
    rec = decided(processed(match()))
    assert rec.story is not None and rec.story.story_id is None
    assert rec.story.rules == {"venezuela": 5.0} and rec.alert_kind == "new"
    assert rec.payload is not None and rec.payload["source"] == "Outlet 1"
    assert [r.destination for r in rec.routes] == [TELEGRAM, EMAIL, "console", "jsonl"]
    assert rec.update_throttle == AlertsSettings().update_throttle


def test_a_joining_article_records_its_story_and_no_alert() -> None:
    rec = decided(processed(match()), [story({"venezuela": 5.0})])
    assert rec.story is not None and (rec.story.story_id, rec.story.rules) == (4, {})
    assert rec.alert_kind is None and rec.routes == ()
    assert [o.outcome for _, o in rec.matches] == ["join"]


def test_a_development_alerts_for_the_new_rule_only() -> None:
    rec = decided(processed(match(), match("oil")), [story({"venezuela": 5.0})])
    assert rec.alert_kind == "develop" and rec.story is not None
    assert rec.story.rules == {"venezuela": 5.0, "oil": 5.0}
    assert rec.payload is not None and [r["name"] for r in rec.payload["rules"]] == [
        "venezuela",
        "oil",
    ]


def test_a_fully_muted_article_starts_no_story_and_sends_nothing() -> None:
    # A story with no alert would make the next match "develop" an alert nobody received.
    rec = decided(processed(match()), muted=frozenset({"all"}))
    assert rec.story is None and rec.alert_kind is None
    assert [o.outcome for _, o in rec.matches] == ["muted"]


def test_a_low_priority_alert_is_recorded_for_the_digest() -> None:
    rec = decided(processed(match(priority="low")))
    assert rec.alert_kind == "new" and rec.payload is not None
    assert rec.payload["priority"] == "low"
    assert {r.destination: r.digest for r in rec.routes}[TELEGRAM] is True
