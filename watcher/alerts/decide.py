"""From a processed article to what gets stored: story, match outcomes, alert and its routes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from watcher.alerts.compose import build_payload
from watcher.alerts.plan import Context, plan
from watcher.config import AlertsSettings
from watcher.rules.worker import Processed
from watcher.store.alerts import ArticleRecord, StoryChange
from watcher.stories.group import Action, decide
from watcher.types import Outcome, StoryRef


def decide_article(
    processed: Processed,
    *,
    entry_id: int | None,
    feed_id: int | None,
    url: str,
    recent: Sequence[StoryRef],
    ctx: Context,
    settings: AlertsSettings,
    blocked: str = "",
) -> ArticleRecord:
    """Pure: group the article into a story, decide each match's outcome, build the alert.
    ``blocked`` (the blocklist's reason) records every match as "blocked", with no story."""
    base = ArticleRecord(
        entry_id=entry_id,
        feed_id=feed_id,
        url=url,
        article=processed.article,
        now=ctx.now,
        update_throttle=settings.update_throttle,
        updatable_kinds=ctx.updatable_kinds,
    )
    if not processed.matches or processed.signature is None:
        return base
    if blocked:
        held = tuple(
            (m, Outcome(m.rule, "blocked", f"blocked by {blocked}")) for m in processed.matches
        )
        return replace(base, matches=held)
    scores = {m.rule: m.score for m in processed.matches}
    decision = decide(
        processed.signature,
        ctx.now,
        scores,
        recent,
        window=settings.story_window,
        develop_factor=settings.develop_factor,
    )
    result = plan(processed.matches, decision.action, decision.reason, ctx)
    alerting = set(result.alerting)
    story = StoryChange(
        story_id=decision.story_id, title=processed.article.title,
        signature=processed.signature,
        rules={r: s for r, s in scores.items() if r in alerting},
    )  # fmt: skip
    outcomes = tuple(zip(processed.matches, result.outcomes, strict=True))
    if not alerting and decision.story_id is None:
        # Everything muted: no story either, or the next match would "develop" an alert
        # nobody received.
        return replace(base, matches=outcomes)
    if not result.routes:
        return replace(base, matches=outcomes, story=story)
    sending = [m for m in processed.matches if m.rule in alerting]
    payload = build_payload(
        processed.article, sending, source=_source(processed), quotes=settings.summary_sentences
    )
    kind = "develop" if decision.action is Action.DEVELOP else "new"
    return replace(
        base, matches=outcomes, story=story, alert_kind=kind, payload=payload, routes=result.routes
    )


def _source(processed: Processed) -> str:
    article = processed.article
    return article.feed_name or article.site_name or ""
