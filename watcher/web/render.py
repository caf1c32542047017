"""Pure helpers the templates use: highlighted text, inline SVG charts, times and query links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from watcher.store.views import Marked, mark_words


def highlight(marked: Marked) -> Markup:
    """The text escaped, with its marked spans in <mark>."""
    out: list[str] = []
    pos = 0
    for start, end in marked.marks:
        if start < pos or end > len(marked.text):
            continue
        out += [escape(marked.text[pos:start]), Markup("<mark>"), escape(marked.text[start:end])]
        out.append(Markup("</mark>"))
        pos = end
    out.append(escape(marked.text[pos:]))
    return Markup("").join(out)


def evidence_sentence(sentence: str, evidence: Sequence[Mapping[str, Any]]) -> Markup:
    """An explain report's evidence sentence with every matched phrase highlighted."""
    return highlight(mark_words(sentence, evidence))


def bars(
    values: Sequence[int],
    labels: Sequence[str],
    *,
    width: int = 300,
    height: int = 64,
    title: str = "",
) -> Markup:
    """A bar chart as inline SVG (no script, no external asset); each bar has a tooltip."""
    n = max(1, len(values))
    top = max(values, default=0) or 1
    step = width / n
    gap = min(2.0, step * 0.2)
    rects = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = 0.0 if value == 0 else max(1.5, (height - 2) * value / top)
        rects.append(
            f'<rect class="bar{" zero" if not value else ""}" x="{i * step:.1f}" '
            f'y="{height - max(h, 1):.1f}" width="{step - gap:.1f}" height="{max(h, 1):.1f}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
    label = escape(title or f"{sum(values)} in {n} days, most {top} a day")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{label}" width="{width}" height="{height}">'
        + "".join(rects)
        + "</svg>"
    )


def sparkline(values: Sequence[int], labels: Sequence[str]) -> Markup:
    return bars(values, labels, width=112, height=22)


def when(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"


def ago(value: datetime | None, now: datetime) -> str:
    """'3 h ago' / 'in 5 min' (for next polls)."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    text = human_seconds(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def human_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def link(base: str, params: Mapping[str, Any], **changes: Any) -> str:
    """``base`` with the current query parameters, some changed (empty values dropped)."""
    merged = {**params, **changes}
    query = urlencode({k: v for k, v in merged.items() if v not in ("", None)})
    return f"{base}?{query}" if query else base
