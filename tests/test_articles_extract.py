"""Tests for watcher.articles.extract: page extraction, text choice, local files."""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import multiprocessing
import pickle
import re
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trafilatura

from watcher.articles.extract import (
    Extracted,
    article_from_file,
    build_article,
    cap_page,
    decode_html,
    extract_page,
    language_code,
)
from watcher.errors import ParseError
from watcher.types import ArticleSource

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "articles"
URL = "https://news.example.org/2025/03/14/harbour-reopens"

# Synthetic article paragraphs, written for these tests.
PARAGRAPHS = [
    "The harbour of Puerto Nuevo reopened on Friday after three weeks of repairs to the "
    "breakwater, which a winter storm had split in two places.",
    "Fishing crews returned at dawn, and the harbour master said the first boats unloaded "
    "their catch before noon without any trouble at the new quay.",
    "Engineers from the regional authority will inspect the repaired sections again in the "
    "spring, when the tides are at their highest and the currents strongest.",
    "Local shop owners said the closure had cost them most of their February trade, and "
    "they asked the council for help with rents until the summer season begins.",
]


def _page(
    paragraphs: list[str] = PARAGRAPHS,
    *,
    title: str = "Harbour reopens after storm repairs",
    head: str = "",
    html_attrs: str = "",
) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html>\n<html{html_attrs}><head>{head}<title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Copyright the Example News Company</footer></body></html>"
    )


def _extracted(text: str = "", **fields: Any) -> Extracted:
    values: dict[str, Any] = {
        "title": "Page title",
        "text": text,
        "author": "",
        "date": None,
        "site_name": "",
        "language": "",
    }
    return Extracted(**(values | fields))


def _article(extracted: Extracted | None, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "url": URL,
        "extracted": extracted,
        "feed_title": "Feed title",
        "feed_content": "",
        "feed_summary": "",
        "published": None,
        "feed_name": "example",
        "feed_tags": ("news",),
        "language_hint": "",
        "min_text_chars": 300,
    }
    return build_article(**(values | overrides))


# --- extract_page -----------------------------------------------------------------------


def test_extract_page_finds_main_text_and_metadata() -> None:
    head = (
        "<meta property='og:site_name' content='Example News'>"
        "<meta name='author' content='Ana Gómez'>"
        "<meta property='article:published_time' content='2025-03-14T08:30:00Z'>"
    )
    got = extract_page(_page(head=head, html_attrs=" lang='en-GB'").encode(), url=URL)

    assert got is not None
    assert got.title == "Harbour reopens after storm repairs"
    assert "breakwater" in got.text and "summer season begins" in got.text
    assert "Copyright" not in got.text and "Sport" not in got.text
    assert (got.author, got.site_name, got.language) == ("Ana Gómez", "Example News", "en")
    assert got.date == datetime(2025, 3, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("head", "html_attrs", "expected"),
    [
        ("", " lang='es-VE'", "es"),
        ("", " xml:lang='pt'", "pt"),
        ("<meta http-equiv='Content-Language' content='es'>", "", "es"),
        ("<meta property='og:locale' content='en_US'>", "", "en"),
        ("", " lang='x-default'", ""),
        ("", "", ""),
    ],
)
def test_extract_page_language_from_page_metadata(
    head: str, html_attrs: str, expected: str
) -> None:
    got = extract_page(_page(head=head, html_attrs=html_attrs), url=URL)
    assert got is not None and got.language == expected


def test_extract_page_language_only_from_the_head() -> None:
    # A language meta tag in the body (a quoted snippet, an embed) is not the page's.
    page = _page(["<meta http-equiv='Content-Language' content='fr'>", *PARAGRAPHS])
    got = extract_page(
        page.replace("<p><meta", "<div><meta").replace("'fr'></p>", "'fr'></div>"), url=URL
    )
    assert got is not None and got.language == ""
    headless = "<html lang='es'><body><p>" + " ".join(PARAGRAPHS) + "</p></body></html>"
    got = extract_page(headless, url=URL)
    assert got is not None and got.language == "es"


def test_extract_page_honours_windows_1252_meta_charset() -> None:
    paragraphs = [*PARAGRAPHS, "El señor Núñez, capitán del puerto, habló del daño."]
    html = _page(paragraphs, head="<meta charset='windows-1252'>").encode("windows-1252")
    with pytest.raises(UnicodeDecodeError):
        html.decode("utf-8")

    got = extract_page(html, url=URL)

    assert got is not None and "El señor Núñez, capitán" in got.text


def test_extract_page_honours_http_equiv_latin1_as_windows_1252() -> None:
    head = "<meta http-equiv='Content-Type' content='text/html; charset=ISO-8859-1'>"
    paragraphs = [*PARAGRAPHS, "Prices rose by 3 € ‘overnight’, said the café owner."]
    got = extract_page(_page(paragraphs, head=head).encode("windows-1252"), url=URL)
    assert got is not None and "3 € ‘overnight’, said the café owner" in got.text


def test_extract_page_honours_utf8_bom_over_a_wrong_meta() -> None:
    paragraphs = [*PARAGRAPHS, "Der Bürgermeister äußerte sich erfreut."]
    html = _page(paragraphs, head="<meta charset='iso-8859-5'>").encode("utf-8")
    got = extract_page(codecs.BOM_UTF8 + html, url=URL)
    assert got is not None and "Der Bürgermeister äußerte sich erfreut." in got.text


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        # Valid UTF-8 stays UTF-8 whatever an old declaration says.
        ("<meta charset=iso-8859-1><p>Añil</p>".encode(), "", "Añil"),
        # The HTTP header's charset outranks the <meta>.
        ("<meta charset=utf-8><p>Añil</p>".encode("cp1252"), "windows-1252", "Añil"),
        # Unknown, non-text and UTF-16 labels are ignored, never an error.
        ("<meta charset=bogus-42><p>Añil</p>".encode("cp1252"), "rot13", "A"),
        ("<meta charset=utf-16><p>Añil</p>".encode(), "", "Añil"),
        (codecs.BOM_UTF16_LE + "<p>Añil</p>".encode("utf-16-le"), "", "Añil"),
        # Declared UTF-8 with one broken byte: UTF-8, with a replacement character.
        (b"<meta charset=utf-8><p>A\xc3\xb1il \xff</p>", "", "Añil \ufffd"),
    ],
)
def test_decode_html(data: bytes, declared: str, expected: str) -> None:
    assert expected in decode_html(data, declared)


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"\x00\xff\xfe" * 500, b"%PDF-1.7\n" + bytes(range(256)) * 40, "<p>x</p>", "]]>"],
)
def test_extract_page_on_non_pages_gives_none(data: bytes | str) -> None:
    assert extract_page(data, url=URL) is None


def test_extract_page_without_main_text_keeps_the_title() -> None:
    got = extract_page("<html><head><title>Just a title</title></head><body></body></html>", url="")
    assert got is not None and (got.title, got.text) == ("Just a title", "")


def test_extracted_pickles_for_worker_processes() -> None:
    got = extract_page(_page(), url=URL)
    assert pickle.loads(pickle.dumps(got)) == got


def test_language_code() -> None:
    tags = ["ES", "en-US", "pt_BR", "fr, en", "eng", "", "x-klingon"]
    assert [language_code(tag) for tag in tags] == ["es", "en", "pt", "fr", "", "", ""]


# --- build_article ----------------------------------------------------------------------


def test_build_article_uses_page_text_when_long_enough() -> None:
    page = _extracted("x" * 300, author="Ana Gómez", site_name="Example News", language="es")
    published = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)

    article = _article(page, feed_content="feed text", published=published)

    assert (article.source, article.text, article.fallback_reason) == (
        ArticleSource.PAGE,
        "x" * 300,
        "",
    )
    assert (article.title, article.language, article.author) == ("Page title", "es", "Ana Gómez")
    assert (article.site_name, article.published) == ("Example News", published)
    assert (article.url, article.feed_name, article.feed_tags) == (URL, "example", ("news",))


def test_build_article_falls_back_to_feed_content_when_fetch_failed() -> None:
    article = _article(
        None,
        feed_content="Full text from the feed.",
        feed_summary="Summary.",
        fetch_error="fetch failed: HTTP 403 Forbidden",
    )
    assert article.source is ArticleSource.FEED_CONTENT
    assert article.text == "Full text from the feed."
    assert article.fallback_reason == "fetch failed: HTTP 403 Forbidden"
    assert article.title == "Feed title"


def test_build_article_falls_back_to_summary_when_page_text_too_short() -> None:
    article = _article(_extracted("y" * 120), feed_summary="  Summary from the feed. ")
    assert (article.source, article.text) == (ArticleSource.FEED_SUMMARY, "Summary from the feed.")
    assert article.fallback_reason == "page text too short (120 chars)"
    assert article.title == "Feed title"  # a page with too little text often has a junk title


def test_build_article_when_extraction_found_nothing() -> None:
    for page in (None, _extracted("")):
        article = _article(page, feed_content="Feed content.")
        assert article.source is ArticleSource.FEED_CONTENT
        assert article.fallback_reason == "extraction found no main text"


def test_build_article_keeps_short_page_text_when_feed_has_none() -> None:
    article = _article(_extracted("z" * 120), feed_title="")
    assert (article.source, article.text, article.title) == (
        ArticleSource.PAGE,
        "z" * 120,
        "Page title",
    )
    assert article.fallback_reason == ""


def test_build_article_with_no_text_anywhere() -> None:
    article = _article(None, fetch_error="fetch failed: connection refused")
    assert (article.source, article.text, article.title) == (
        ArticleSource.FEED_SUMMARY,
        "",
        "Feed title",
    )
    assert article.fallback_reason == "fetch failed: connection refused"


def test_build_article_language_from_page_else_hint() -> None:
    assert _article(_extracted("x" * 400, language="es"), language_hint="en").language == "es"
    assert _article(_extracted("x" * 400), language_hint="en-GB").language == "en"
    assert _article(None, language_hint="").language == ""


def test_build_article_dates_prefer_the_feed() -> None:
    page_date = datetime(2025, 3, 1, tzinfo=UTC)
    feed_date = datetime(2025, 3, 2, 10, 30, tzinfo=UTC)
    page = _extracted("x" * 400, date=page_date)
    assert _article(page, published=feed_date).published == feed_date
    assert _article(page, published=None).published == page_date


# --- article_from_file ------------------------------------------------------------------


def test_article_from_html_file(tmp_path: Path) -> None:
    path = tmp_path / "harbour.html"
    path.write_bytes(_page(html_attrs=" lang='en'").encode())

    article = article_from_file(path)

    assert (article.source, article.title, article.language) == (
        ArticleSource.FILE, "Harbour reopens after storm repairs", "en",
    )  # fmt: skip
    assert "breakwater" in article.text
    assert article.url == path.resolve().as_uri()


def test_article_from_text_file_first_nonempty_line_is_title(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("\n\n  Harbour reopens  \n\nFirst paragraph.\n\nSecond paragraph.\n")

    article = article_from_file(path)

    assert (article.source, article.title) == (ArticleSource.FILE, "Harbour reopens")
    assert article.text == "First paragraph.\n\nSecond paragraph."


def test_article_from_text_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(codecs.BOM_UTF8 + "Título\nTexto.".encode())
    assert (article_from_file(path).title, article_from_file(path).text) == ("Título", "Texto.")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "file not found"),
        (
            "binary.txt",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
            "not a text file",
        ),
        ("latin1.txt", "Año nuevo\ntexto".encode("latin-1"), "not a text file"),
        ("blank.txt", b" \n\n \t\n", "the file is empty"),
        ("empty.html", b"", "no article text found"),
        ("title.html", b"<html><head><title>T</title></head><body></body></html>", "no article"),
    ],
)
def test_article_from_file_errors_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ParseError, match=re.escape(f"{path}: ") + ".*" + message):
        article_from_file(path)


def test_article_from_file_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="is a directory"):
        article_from_file(tmp_path)


# --- the real pages in ../shared/corpus/articles ---------------------------------------


def _needs_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present at {CORPUS}")


def _read_page(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _corpus_page_paths() -> list[Path]:
    patterns = [
        "scrapinghub_aeb/html/*.html.gz",
        "mozilla_readability/test-pages/*/source.html",
        "trafilatura_eval/cache/*.gz",
        "trafilatura_eval/eval/*.gz",
        "newspaper/html/*.html",
        "goose3/*/*.html",
    ]
    return sorted(p for pattern in patterns for p in CORPUS.glob(pattern))


def _no_crash(path: Path) -> str:
    """What went wrong, or "" when extract_page returned or raised ParseError."""
    logging.disable(logging.CRITICAL)  # trafilatura logs every discarded page
    try:
        extract_page(_read_page(path), url="")
    except ParseError:
        pass
    except Exception as exc:  # the point: report any other
        return f"{path}: {type(exc).__name__}: {exc}"
    return ""


@pytest.mark.corpus
@pytest.mark.slow
def test_extract_page_never_crashes_on_any_corpus_page() -> None:
    _needs_corpus()
    paths = _corpus_page_paths()
    assert len(paths) > 1000, "expected every corpus page (see MANIFEST.md)"
    started = time.perf_counter()
    # Spawned workers, as the daemon's pool: also proves extract_page is picklable.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        failures = [f for f in pool.map(_no_crash, paths, chunksize=16) if f]
    elapsed = time.perf_counter() - started
    print(f"\n{len(paths)} corpus pages in {elapsed:.1f} s with 2 worker processes")
    assert failures == []


def _both_parsers(path: Path) -> str:
    """How watcher's parser and trafilatura's differ on a corpus page ("" when they agree):
    the same tree, and on every fifth page the same extraction."""
    import lxml.html
    from trafilatura.utils import load_html

    from watcher.articles.extract import _extract_tree, _load_html

    logging.disable(logging.CRITICAL)
    html = cap_page(decode_html(_read_page(path)))[0]
    ours, theirs = _load_html(html), load_html(html)
    if ours is None or theirs is None:
        return "" if ours is theirs else f"{path}: only one parser found a document"
    if lxml.html.tostring(ours) != lxml.html.tostring(theirs):
        return f"{path}: the trees differ"
    if zlib.crc32(path.name.encode()) % 5 == 0:
        url = "https://corpus.example/page"
        if _extract_tree(ours, url, date=True) != _extract_tree(theirs, url, date=True):
            return f"{path}: the extractions differ"
    return ""


@pytest.mark.parametrize(
    "html",
    [
        "",
        "plain text, no markup",
        "<p>a lone paragraph</p>",
        "<html/>\n<body><p>x</p></body>",
        "<?xml version='1.0' encoding='utf-8'?><html><body><p>declared</p></body></html>",
        "<!DOCTYPE html>\n<html><head><title>T</title></head><body><p>y</p></body></html>",
        "\x00\x01\x02",
        "<html><body><p>lone surrogate \ud800 here</p></body></html>",
        "<html><body>" + "<div>" * 300 + "deep" + "</div>" * 300 + "</body></html>",
        "<html><body><form><input name=q><select><option>a</select></form></body></html>",
    ],
)
def test_watchers_parser_agrees_with_trafilaturas_on_edge_inputs(html: str) -> None:
    # Without the corpus: the inputs trafilatura's load_html has special paths for.
    import lxml.html
    from trafilatura.utils import load_html

    from watcher.articles.extract import _load_html

    ours, theirs = _load_html(html), load_html(html)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert lxml.html.tostring(ours) == lxml.html.tostring(theirs)


@pytest.mark.corpus
@pytest.mark.slow
def test_watchers_parser_reads_pages_as_trafilaturas_does() -> None:
    # extract._PARSER differs from trafilatura's own parser only in how lxml picks element
    # classes (in C, not through a Python call per element): trees and text must not differ.
    _needs_corpus()
    paths = _corpus_page_paths()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        differences = [d for d in pool.map(_both_parsers, paths, chunksize=16) if d]
    assert differences == []


_TOKEN = re.compile(r"\w+")


def _f1(got: str | None, expected: str) -> float:
    """Bag-of-words F1 of ``got`` against ``expected`` (case-insensitive word tokens)."""
    found, wanted = (
        Counter(_TOKEN.findall((got or "").lower())),
        Counter(_TOKEN.findall(expected.lower())),
    )
    common = sum((found & wanted).values())
    if not common:
        return 0.0
    precision, recall = common / sum(found.values()), common / sum(wanted.values())
    return 2 * precision * recall / (precision + recall)


def _ground_truth() -> dict[str, list[tuple[bytes, str, str]]]:
    """(page, expected main text, URL) for the scrapinghub and newspaper sets."""
    sets: dict[str, list[tuple[bytes, str, str]]] = {"scrapinghub": [], "newspaper": []}
    truth = json.loads((CORPUS / "scrapinghub_aeb" / "ground-truth.json").read_text())
    for key, item in truth.items():
        page = _read_page(CORPUS / "scrapinghub_aeb" / "html" / f"{key}.html.gz")
        sets["scrapinghub"].append((page, item["articleBody"], item["url"]))
    for html in sorted((CORPUS / "newspaper" / "html").glob("*.html")):
        text = CORPUS / "newspaper" / "text" / f"{html.stem}.txt"
        if text.is_file() and text.read_text(encoding="utf-8").strip():
            sets["newspaper"].append((html.read_bytes(), text.read_text(encoding="utf-8"), ""))
    return sets


def _mean_f1(cases: list[tuple[bytes, str, str]], extract: Any) -> tuple[float, float]:
    """Mean F1 of ``extract(page, url)`` over ``cases``, and its pages per second."""
    started = time.perf_counter()
    texts = [extract(page, url) for page, _, url in cases]
    rate = len(cases) / (time.perf_counter() - started)
    scores = [_f1(text, truth) for text, (_, truth, _) in zip(texts, cases, strict=True)]
    return sum(scores) / len(cases), rate


@pytest.mark.corpus
@pytest.mark.slow
def test_extracted_text_agrees_with_ground_truth_as_well_as_trafilatura_alone() -> None:
    _needs_corpus()
    logging.disable(logging.CRITICAL)  # trafilatura logs every discarded page
    try:
        for name, cases in _ground_truth().items():
            alone, alone_rate = _mean_f1(cases, lambda page, url: trafilatura.extract(page))
            ours, our_rate = _mean_f1(cases, lambda page, url: _text(extract_page(page, url=url)))
            print(f"\n{name} ({len(cases)} pages), mean token F1 and pages/s in one process: "
                  f"watcher {ours:.4f} at {our_rate:.0f}/s, "
                  f"trafilatura alone {alone:.4f} at {alone_rate:.0f}/s")  # fmt: skip
            assert len(cases) > 100
            assert ours >= alone - 0.01, name
    finally:
        logging.disable(logging.NOTSET)


def _text(extracted: Extracted | None) -> str:
    return extracted.text if extracted is not None else ""
