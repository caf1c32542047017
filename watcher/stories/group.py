"""Pure story grouping: how alike two fingerprints are, and which story an article joins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.articles.fingerprint import SKETCH_SIZE
from watcher.types import Signature, StoryRef

# Thresholds tuned on real reprints and rewrites (tests/test_stories_group.py).
TEXT_SAME = 0.45  # wire copy reprinted, lightly edited
TITLE_SAME = 0.5  # rewrites of the same event with near-identical headlines
TITLE_RELATED = 0.3  # headlines that overlap...
TEXT_RELATED = 0.15  # ...and bodies that share a good part of their phrasing
# Similar headlines alone are not enough when both bodies are real text sharing almost no
# phrasing: "Takeaways from the second/third night of ..." are different articles.
TEXT_FLOOR = 0.03
# Below this many shingles (~65 words: a headline or a short summary) the text is too
# short for a lack of shared phrasing to mean much.
_HEADLINE_SHINGLES = 64


@dataclass(frozen=True)
class Similarity:
    title: float
    text: float
    bodies: bool = False  # both articles have more text than a headline

    @property
    def same_story(self) -> bool:
        return (
            self.text >= TEXT_SAME
            or (self.title >= TITLE_SAME and (self.text >= TEXT_FLOOR or not self.bodies))
            or (self.title >= TITLE_RELATED and self.text >= TEXT_RELATED)
        )


class Action(StrEnum):
    ALERT = "alert"  # a new story: send an alert
    JOIN = "join"  # same story, nothing new: count the source, no new alert
    DEVELOP = "develop"  # same story, but a new rule matched or the score jumped: alert again


@dataclass(frozen=True)
class Decision:
    action: Action
    story_id: int | None
    similarity: Similarity | None = None
    reason: str = ""


def similarity(a: Signature, b: Signature) -> Similarity:
    bodies = min(len(a.sketch), len(b.sketch)) >= _HEADLINE_SHINGLES
    return Similarity(_jaccard(a.title_terms, b.title_terms), _sketch_jaccard(a, b), bodies)


def decide(
    sig: Signature,
    when: datetime,
    scores: Mapping[str, float],
    recent: Iterable[StoryRef],
    *,
    window: float,
    develop_factor: float = 1.5,
) -> Decision:
    """Which story an article with matched rule ``scores`` belongs to, and whether it alerts.

    The most similar story seen within ``window`` seconds wins; an article that matches a
    rule the story has not alerted for, or scores ``develop_factor`` times higher, develops
    the story and alerts again (as a reply to the first alert).
    """
    story, sim = _closest(sig, when, recent, window)
    if story is None or sim is None:
        return Decision(Action.ALERT, None, reason="new story")
    new_rules = sorted(set(scores) - set(story.rules))
    if new_rules:
        return Decision(Action.DEVELOP, story.id, sim, f"new rule matched: {', '.join(new_rules)}")
    jumped = [r for r, s in scores.items() if s >= develop_factor * max(story.rules[r], 1e-9)]
    if jumped:
        return Decision(Action.DEVELOP, story.id, sim, f"score jumped for {', '.join(jumped)}")
    return Decision(Action.JOIN, story.id, sim, "same story as an earlier alert")


def _closest(
    sig: Signature, when: datetime, recent: Iterable[StoryRef], window: float
) -> tuple[StoryRef | None, Similarity | None]:
    horizon = when - timedelta(seconds=window)
    best: tuple[tuple[float, float], StoryRef, Similarity] | None = None
    for story in recent:
        if story.last_seen < horizon:
            continue
        sim = similarity(sig, story.signature)
        # Ties on the stronger signal (often two headlines alike) go to the closer body.
        rank = (max(sim.text, sim.title), sim.text + sim.title)
        if sim.same_story and (best is None or rank > best[0]):
            best = (rank, story, sim)
    return (best[1], best[2]) if best else (None, None)


def _sketch_jaccard(a: Signature, b: Signature) -> float:
    """Bottom-k estimate: of the k smallest hashes of the union, the share in both sketches."""
    if not a.sketch or not b.sketch:
        return 0.0
    set_a, set_b = set(a.sketch), set(b.sketch)
    union_k = sorted(set_a | set_b)[:SKETCH_SIZE]
    return sum(1 for h in union_k if h in set_a and h in set_b) / len(union_k)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
