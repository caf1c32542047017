"""A loopback news feed that keeps gaining distinct, matching stories, with a page for each.

    stream = FeedStream(http_server, seed=7, total=40)
    ...                                  # each fetch of stream.feed_url publishes one story
    assert stream.delivered(bot_api.sent()) == set(stream.ids())

Every story is a different event (random headline and text from a fixed vocabulary), so story
grouping must not merge any two; each mentions KEYWORD, which the rule from ``rule_yaml()``
matches, so each must alert exactly once. Texts are synthetic, written for these tests.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

from httpserver import HttpServer, RecordedRequest, Reply

KEYWORD = "lighthouse"

_PLACES = [
    "Aldermoor", "Brackenford", "Calloway Bay", "Dunmere", "Eastwick Harbour", "Fenwick",
    "Glenhollow", "Harrowgate Point", "Ivybridge", "Juniper Sound", "Kestrel Island",
    "Larkspur", "Marrowdale", "Northcliff", "Oakhaven", "Pellington", "Quarry Cove",
    "Ravensholm", "Saltmarsh", "Thornbury", "Umberlee", "Valewood", "Westerly Rocks",
    "Yarrowby",
]  # fmt: skip
_SUBJECTS = [
    "harbour master", "fishing cooperative", "coast guard", "town council", "ferry company",
    "weather service", "keeper's guild", "maritime museum", "shipping office", "school board",
    "lifeboat crew", "heritage trust", "port authority", "pilot association", "tide office",
]  # fmt: skip
_VERBS = [
    "repaired", "inspected", "repainted", "reopened", "closed", "relit", "surveyed",
    "restored", "rewired", "moved", "upgraded", "photographed", "measured", "automated",
]  # fmt: skip
_OBJECTS = [
    "the lamp room", "the spiral stairs", "the foghorn", "the keeper's cottage", "the jetty",
    "the signal mast", "the lens", "the generator", "the boat ramp", "the outer wall",
    "the gallery rail", "the radio beacon", "the slipway", "the storm shutters",
]  # fmt: skip
_DETAILS = [
    "after a winter storm", "before the summer season", "with money from a local appeal",
    "ahead of a royal visit", "following complaints from sailors", "during a night of fog",
    "with help from volunteers", "despite heavy rain", "at the request of insurers",
    "after a survey found cracks", "for the first time in forty years", "in under a week",
]  # fmt: skip
_QUOTES = [
    "the work went better than expected", "ships would be safer this autumn",
    "the costs were shared with the county", "the old brass fittings were kept",
    "the light can be seen twenty miles out", "visitors may climb the tower again in May",
    "the crew worked through two nights", "a plaque would mark the occasion",
]  # fmt: skip
_PEOPLE = [
    "Mara Quill", "Tobias Fenn", "Ines Marlow", "Oskar Dunne", "Petra Vale", "Hugo Brandt",
    "Lena Corvin", "Rafael Stone", "Nadia Holt", "Elias Wren", "Greta Lund", "Simon Ashby",
]  # fmt: skip


@dataclass(frozen=True)
class Story:
    number: int
    path: str
    title: str
    text: str
    published: datetime


def rule_yaml(name: str = "lighthouses") -> str:
    """A rule that matches every story of a FeedStream (and little else)."""
    return f"name: {name}\nkeywords:\n  lights: [{KEYWORD}]\n"


def make_story(number: int, rng: random.Random) -> Story:
    """A distinct synthetic news story: headline, and several paragraphs naming KEYWORD.

    Invented names unique to the story run through its headline and text, so no two stories
    share much of either, as two different real events would not (up to 300 stories)."""
    names = [_coined(3 * number + k, rng) for k in range(3)]
    subject, verb, obj = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
    title = f"{names[0]} and {names[1]} {verb} the {names[2]} {KEYWORD}"
    paragraphs = [_paragraph(rng, names) for _ in range(4)]
    lead = f"The {subject} in {names[0]} {verb} {obj} of the {names[2]} {KEYWORD}. "
    paragraphs[0] = lead + paragraphs[0]
    return Story(number, f"/s/{number:04d}", title, "\n\n".join(paragraphs), datetime.now(UTC))


# Three letters each: a name's first six letters (all that story grouping compares of a
# headline word) are two syllables chosen by the name's index, so no two stories share one.
_SYLLABLES = [
    "kal", "lom", "mir", "tes", "van", "dor", "ulb", "bre", "sen", "qua", "fio", "rap", "zel",
    "nim", "ost", "har", "pel", "jun", "wen", "cor", "dal", "bix", "gor", "hep", "lut", "mav",
    "nob", "pra", "sul", "tav",
]  # fmt: skip


def _coined(index: int, rng: random.Random) -> str:
    first, second = divmod(index % len(_SYLLABLES) ** 2, len(_SYLLABLES))
    tail = rng.choice(_SYLLABLES)
    return f"{_SYLLABLES[first]}{_SYLLABLES[second]}{tail}".capitalize()


def _paragraph(rng: random.Random, names: list[str]) -> str:
    sentences = []
    for _ in range(3):
        who, said = rng.choice(_PEOPLE), rng.choice(_QUOTES)
        subject, verb, obj = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        sentences.append(
            f"{rng.choice(names)} {subject} {verb} {obj} {rng.choice(_DETAILS)}, and {who} "
            f"of {rng.choice(names)} said {said}."
        )
    sentences.append(f"The {KEYWORD} at {rng.choice(names)} was {rng.choice(_VERBS)} too.")
    rng.shuffle(sentences)
    return " ".join(sentences)


def page(story: Story) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in story.text.split("\n\n"))
    title = escape(story.title)
    return (
        f'<html lang="en"><head><title>{title}</title></head><body><article>'
        f"<h1>{title}</h1>{body}</article></body></html>"
    )


class FeedStream:
    """An RSS feed on ``server`` at ``path``: each fetch first publishes one new story, until
    ``total``; ``publish()`` adds one at any time. Thread-safe (server threads fetch it)."""

    def __init__(
        self, server: HttpServer, *, seed: int, total: int, path: str = "/feed.xml"
    ) -> None:
        self.server = server
        self.path = path
        self.total = total
        self.auto = True
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stories: list[Story] = []
        self.feed_url = server.route_handler(path, self._serve_feed)

    @property
    def stories(self) -> list[Story]:
        with self._lock:
            return list(self._stories)

    def ids(self) -> list[int]:
        return [s.number for s in self.stories]

    def url(self, story: Story) -> str:
        return self.server.url(story.path)

    def publish(self) -> Story:
        with self._lock:
            story = make_story(len(self._stories) + 1, self._rng)
            self._stories.append(story)
        self.server.route(
            story.path, page(story), headers={"Content-Type": "text/html; charset=utf-8"}
        )
        return story

    @property
    def complete(self) -> bool:
        return len(self.stories) >= self.total

    def _serve_feed(self, _request: RecordedRequest) -> Reply:
        if self.auto and not self.complete:
            self.publish()
        return Reply(200, {"Content-Type": "application/rss+xml"}, self._rss())

    def _rss(self) -> str:
        items = "".join(
            f"<item><title>{escape(s.title)}</title><link>{self.url(s)}</link>"
            f"<guid isPermaLink='false'>story-{s.number}</guid>"
            f"<pubDate>{format_datetime(s.published)}</pubDate>"
            f"<description>{escape(s.text.split(chr(10))[0])}</description></item>"
            for s in reversed(self.stories)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Lighthouse News</title><link>{self.server.url('/')}</link>{items}"
            "</channel></rss>"
        )

    def numbers_in(self, texts: Iterable[str | None]) -> list[int]:
        """The story numbers whose links appear in ``texts`` (one per text), in order."""
        pattern = re.compile(re.escape(self.server.url("/s/")) + r"(\d{4})")
        found = []
        for text in texts:
            match = pattern.search(text or "")
            if match:
                found.append(int(match[1]))
        return found
