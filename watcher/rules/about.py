"""Aboutness: salience features of a rule's topic in an article, and their score (pure).

A topic sentence is a sentence of the text with a mention of the topic's first part and of
every other part within ``window`` sentences. The features, each from 0 up:

* ``title``: 1.0 when the title mentions every part of the topic, else half the share of
  the parts it mentions (a title naming Ukraine but not the talks: 0.25);
* ``lead``: 1.0 when a topic sentence is in the lead (the first ``lead`` sentences of the
  text's body, at most half of it: headings and the lines before the body do not count),
  else half the share of the parts the lead mentions;
* ``share``: topic sentences / sentences of the text;
* ``density``: mentions of the first part in topic sentences per 1,000 words (a text
  under 100 words counts as 100; at most 20);
* ``first``: 1 - (position of the first topic sentence in the body) / body sentences (0
  without one);
* ``section``: the longest run of topic sentences in a row (a gap of one sentence allowed),
  over 5 (1.0: a section of five or more sentences about the topic);
* ``heading``: 1.0 when a heading of the text (a short line without final punctuation)
  is a topic sentence ("Ukraine Peace Talks" over a section of a longer story).

The score is the sum of value x weight; the article is about the topic when the score
reaches ``min_score`` and every ``require``d feature reaches its minimum.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.rules.model import DENSITY_CAP, FEATURES, SECTION_RUN, About

MIN_WORDS = 100  # the fewest words density divides by


@dataclass(frozen=True)
class Part:
    """Where one part (operand) of the topic is mentioned."""

    in_title: bool
    sentences: tuple[int, ...]  # the text sentence of each mention, in order


@dataclass(frozen=True)
class Feature:
    name: str
    value: float
    weight: float
    detail: str

    @property
    def contribution(self) -> float:
        return self.value * self.weight


@dataclass(frozen=True)
class Aboutness:
    score: float
    min_score: float
    features: tuple[Feature, ...]
    failed: tuple[str, ...]  # features below their required minimum
    topic_sentences: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.score >= self.min_score and not self.failed


def topic_sentences(parts: Sequence[Part], window: int) -> list[int]:
    """Sentences with a mention of the first part and of every other part nearby."""
    if not parts:
        return []
    near = [_expand(p.sentences, window) for p in parts[1:]]
    return sorted({s for s in parts[0].sentences if all(s in n for n in near)})


def longest_run(sentences: Sequence[int], gap: int = 1) -> int:
    """The most sentences in a run where each follows the last within ``gap`` sentences."""
    best = run = 0
    last = None
    for s in sentences:
        run = run + 1 if last is not None and s - last <= gap + 1 else 1
        best, last = max(best, run), s
    return best


def _expand(sentences: Sequence[int], window: int) -> set[int]:
    return {s + d for s in set(sentences) for d in range(-window, window + 1)}


def aboutness(
    about: About,
    parts: Sequence[Part],
    *,
    window: int,
    sentences: int,
    words: int,
    headings: frozenset[int] = frozenset(),
    preamble: frozenset[int] = frozenset(),
) -> Aboutness:
    """The features and score of the topic whose parts are mentioned as ``parts``;
    ``headings`` and ``preamble`` (the title repeated, a byline: lines before the body) are
    no part of the lead."""
    topic = topic_sentences(parts, window)
    count = max(1, len(parts))
    in_title = sum(p.in_title for p in parts)
    # The lead and the first topic sentence are read in the body: a scraped page opens with
    # lines that are no sentences (a byline, a dateline, a section name, the title again).
    body = [i for i in range(sentences) if i not in headings and i not in preamble] or list(
        range(sentences)
    )
    lead = set(body[: lead_sentences(about.lead, len(body))])
    in_lead = sum(any(s in lead for s in p.sentences) for p in parts)
    lead_topic = not lead.isdisjoint(topic)
    in_topic = set(topic)
    mentions = sum(1 for s in parts[0].sentences if s in in_topic) if parts else 0
    # a short text counts as 100 words: one mention in a 20-word brief is not density 50
    density = min(DENSITY_CAP, mentions * 1000 / max(words, MIN_WORDS))
    first = 1 - bisect.bisect_left(body, topic[0]) / max(1, len(body)) if topic else 0.0
    values = {
        "title": (
            _partial(in_title, count),
            f"{in_title} of {count} topic parts in the title",
        ),
        "lead": (
            1.0 if lead_topic else _partial(in_lead, count),
            "a topic sentence in the lead"
            if lead_topic
            else f"{in_lead} of {count} parts in the first {len(lead)} sentence"
            + "s" * (len(lead) != 1),
        ),
        "share": (len(topic) / max(1, sentences), f"{len(topic)} of {sentences} sentences"),
        "density": (density, _density_note(mentions, words)),
        "first": (first, f"first topic sentence: #{topic[0] + 1}" if topic else "none"),
    }
    run = longest_run(topic)
    in_a_row = f"{run} topic sentence{'s' * (run != 1)} in a row"
    values["section"] = (min(run, SECTION_RUN) / SECTION_RUN, in_a_row)
    heading = next((s for s in topic if s in headings), None)
    values["heading"] = (
        float(heading is not None),
        f"sentence #{heading + 1} is a heading" if heading is not None else "no topic heading",
    )
    weights = dict(about.weights)
    features = tuple(
        Feature(name, values[name][0], weights.get(name, 0.0), values[name][1]) for name in FEATURES
    )
    required = dict(about.require)
    failed = tuple(
        f"{f.name} {f.value:.2f} < required {required[f.name]:g}"
        for f in features
        if f.name in required and f.value < required[f.name]
    )
    score = sum(f.contribution for f in features)
    return Aboutness(score, about.min_score, features, failed, tuple(topic))


def lead_sentences(lead: int, sentences: int) -> int:
    """The sentences that make the lead: ``lead``, but at most half the text (rounded up).
    In a brief of three sentences the third is its end, not its lead: a strike report whose
    last line says "the attack comes as negotiators prepare a new round" is not about talks."""
    return max(1, min(lead, (sentences + 1) // 2))


def _partial(found: int, count: int) -> float:
    """1.0 for every part, half the share for some of them."""
    return 1.0 if found == count else found / count / 2


def about_lines(result: Aboutness, topic: str) -> list[str]:
    """How the score came about, one feature a line, for ``explain``."""
    mark = "✓" if result.ok else "✗"
    score = (
        f"score {result.score:.2f} "
        f"({'>=' if result.score >= result.min_score else '<'} min_score {result.min_score:g})"
    )
    # a failed requirement decides the verdict whatever the score: it leads the line
    failed = "".join(f"{failure}; " for failure in result.failed)
    lines = [f"{mark} about {topic}: {failed}{score}"]
    lines += [
        f"  {f.name:8} {f.value:6.2f} x {f.weight:<4g} = {f.contribution:5.2f}  ({f.detail})"
        for f in result.features
    ]
    return lines


def _density_note(mentions: int, words: int) -> str:
    counted = f"{words} words" if words >= MIN_WORDS else f"{words} words, counted as {MIN_WORDS}"
    return f"{mentions} mention{'s' * (mentions != 1)} in topic sentences, {counted}"
