"""Aboutness: salience features of a rule's topic in an article, and their score (pure).

A topic sentence is a sentence of the text with a mention of the topic's first part and of
every other part within ``window`` sentences. The features, each from 0 up:

* ``title``: the share of the topic's parts mentioned in the title (1.0: all of them);
* ``lead``: the share of the parts mentioned in the lead (the first ``lead`` sentences);
* ``share``: topic sentences / sentences of the text;
* ``density``: mentions of the first part in topic sentences per 1,000 words (at most 20);
* ``first``: 1 - (index of the first topic sentence) / sentences (0 without one).

The score is the sum of value x weight; the article is about the topic when the score
reaches ``min_score`` and every ``require``d feature reaches its minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.rules.model import DENSITY_CAP, FEATURES, About


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


def _expand(sentences: Sequence[int], window: int) -> set[int]:
    return {s + d for s in set(sentences) for d in range(-window, window + 1)}


def aboutness(
    about: About, parts: Sequence[Part], *, window: int, sentences: int, words: int
) -> Aboutness:
    """The features and score of the topic whose parts are mentioned as ``parts``."""
    topic = topic_sentences(parts, window)
    count = max(1, len(parts))
    in_title = sum(p.in_title for p in parts)
    in_lead = sum(any(s < about.lead for s in p.sentences) for p in parts)
    mentions = sum(1 for s in parts[0].sentences if s in set(topic)) if parts else 0
    density = min(DENSITY_CAP, mentions * 1000 / max(words, 100))
    first = 1 - topic[0] / max(1, sentences) if topic else 0.0
    values = {
        "title": (in_title / count, f"{in_title} of {count} topic parts in the title"),
        "lead": (in_lead / count, f"{in_lead} of {count} parts in the first {about.lead}"),
        "share": (len(topic) / max(1, sentences), f"{len(topic)} of {sentences} sentences"),
        "density": (density, f"{mentions} mentions in topic sentences, {words} words"),
        "first": (first, f"first topic sentence: #{topic[0] + 1}" if topic else "none"),
    }
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


def about_lines(result: Aboutness, topic: str) -> list[str]:
    """How the score came about, one feature a line, for ``explain``."""
    mark = "✓" if result.ok else "✗"
    lines = [
        f"{mark} about {topic}: score {result.score:.2f} "
        f"({'>=' if result.score >= result.min_score else '<'} min_score {result.min_score:g})"
    ]
    lines += [
        f"  {f.name:8} {f.value:6.2f} x {f.weight:<4g} = {f.contribution:5.2f}  ({f.detail})"
        for f in result.features
    ]
    lines += [f"  required: {failure}" for failure in result.failed]
    return lines
