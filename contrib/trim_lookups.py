"""Trim spacy-lookups-data to the languages watcher lemmatizes, then prove they still load.

    python contrib/trim_lookups.py en es

spacy-lookups-data ships the tables of every language spaCy knows (99 MiB installed);
watcher's lookup lemmatizer needs the English and Spanish lemma tables (rules/nlp.py). The
package names its files "<lang>_<table>.json.gz"; every file of another language is deleted,
and so are the kept languages' lexeme_prob and lexeme_cluster tables (27 MiB): word
probabilities and clusters that no lemmatizer reads (spaCy loads them only when a training
config asks for them). If that layout ever changes, the check at the end fails
the build instead of trimming silently. A rule in another language then matches on word
forms instead of lemmas.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# Tables no lemmatizer reads: word probabilities and Brown clusters for model training.
_UNUSED = ("lexeme_prob", "lexeme_cluster")


def data_dir() -> Path:
    spec = importlib.util.find_spec("spacy_lookups_data")
    if spec is None or spec.origin is None:
        raise SystemExit("trim_lookups: spacy-lookups-data is not installed")
    return Path(spec.origin).parent / "data"


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())


def trim(directory: Path, keep: set[str]) -> list[Path]:
    """Delete the data files of every language not in ``keep``; return what was deleted."""
    files = sorted(f for f in directory.iterdir() if f.is_file())
    kept = [
        f
        for f in files
        if f.name.split("_", 1)[0] in keep and not f.name.split("_", 1)[1].startswith(_UNUSED)
    ]
    if not any(f.name.endswith("_lemma_lookup.json.gz") for f in kept):
        raise SystemExit(
            f"trim_lookups: no lemma_lookup tables for {sorted(keep)} in {directory}; "
            "the package layout changed, nothing deleted"
        )
    gone = [f for f in files if f not in kept]
    for f in gone:
        f.unlink()
    return gone


def check(languages: list[str]) -> None:
    """Each kept language's lookup lemmatizer initializes and lemmatizes."""
    import spacy  # noqa: PLC0415

    for lang in languages:
        nlp = spacy.blank(lang)
        nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        nlp.initialize()
        lemmas = [t.lemma_ for t in nlp("talks were held")]
        if not any(lemmas):
            raise SystemExit(f"trim_lookups: {lang}: the lemmatizer returns no lemmas")


def main(argv: list[str]) -> int:
    languages = argv or ["en", "es"]
    directory = data_dir()
    before = size(directory)
    gone = trim(directory, set(languages))
    check(languages)
    after = size(directory)
    print(
        f"spacy-lookups-data: kept {', '.join(languages)}; deleted {len(gone)} files; "
        f"{before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
