"""The web page in a real headless Chromium (Debian's), driven by Playwright over loopback."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_web import TOKEN, VENEZUELA, Site, serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 60_000  # ms: generous, the machine is shared

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
    ),
    pytest.mark.slow,
]

# Pixel statistics of a PNG, computed by the browser itself on a blank page (no decoder here).
_PIXEL_STATS = """async (data) => {
  const img = new Image();
  img.src = "data:image/png;base64," + data;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < px.length; i += 16) {
    const v = (px[i] + px[i + 1] + px[i + 2]) / 3;
    sum += v; sq += v * v; n++;
  }
  const mean = sum / n;
  return {width: img.width, height: img.height, mean: mean, variance: sq / n - mean * mean};
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Chromium with a fresh temporary profile (Playwright's launch makes one per browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _context(browser: Any, **options: Any) -> Any:
    context = await browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    context.set_default_timeout(WAIT)
    return context


def _shots_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $WATCHER_WEB_SHOTS to look at them, else the test's tmp dir."""
    shots = Path(os.environ.get("WATCHER_WEB_SHOTS", str(tmp_path)))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def _shot(context: Any, page: Any, path: Path) -> dict[str, float]:
    png = await page.screenshot(path=str(path), full_page=False)
    blank = await context.new_page()
    try:
        stats: dict[str, float] = await blank.evaluate(_PIXEL_STATS, base64.b64encode(png).decode())
    finally:
        await blank.close()
    return stats


async def _login(page: Any, site: Site) -> None:
    await page.goto(site.url("/stories"))
    assert "/login" in page.url
    await page.fill("input[name=token]", TOKEN)
    await page.click("form.narrow button")
    await page.wait_for_url("**/stories")


async def test_every_page_filters_search_tester_and_a_screenshot(
    tmp_path: Path, browser: Any
) -> None:
    shots = _shots_dir(tmp_path)
    async with serve(tmp_path, token=TOKEN) as site:
        context = await _context(browser)
        page = await context.new_page()
        await _login(page, site)

        # Stories: the filter applies as soon as a select changes (progressive enhancement).
        assert await page.locator("li.story").count() == 50
        await page.select_option("select[name=rule]", "ukraine-peace")
        await page.wait_for_url("**rule=ukraine-peace**")
        assert await page.locator("li.story").count() == 3
        await page.locator("li.story details summary").first.click()
        assert await page.locator("li.story details[open] .evidence mark").count() > 0
        stats = await _shot(context, page, shots / "stories.png")
        assert stats["variance"] > 100, stats

        # "Not relevant" from the page is stored once.
        await page.locator("li.story form[action='/feedback'] button").first.click()
        await page.wait_for_selector("text=1 × not relevant")
        assert await site.db(site.store.feedback_counts) == {"ukraine-peace": 1}

        # Search from the header box.
        await page.fill("header input[name=q]", "tregua")
        await page.press("header input[name=q]", "Enter")
        await page.wait_for_url("**/search?q=tregua")
        assert await page.locator("li.result").count() == 3
        assert await page.locator("li.result mark").first.inner_text() == "tregua"

        # Rules: one chart per rule, with bars.
        await page.click("nav >> text=Rules")
        await page.wait_for_url("**/rules")
        chart = page.locator("#rule-venezuela svg.chart")
        assert await chart.locator("rect.bar:not(.zero)").count() > 0
        box = await chart.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 30
        stats = await _shot(context, page, shots / "rules.png")
        assert stats["variance"] > 100, stats

        # Feeds: failing first, sparkline per feed.
        await page.click("nav >> text=Feeds")
        await page.wait_for_url("**/feeds")
        assert await page.locator("tbody tr").first.get_attribute("class") == "status-failing"
        assert await page.locator("td svg.chart").count() == 3
        await _shot(context, page, shots / "feeds.png")

        # Tester: paste text, see every rule's verdict with evidence highlighted.
        await page.click("nav >> text=Tester")
        await page.fill("textarea[name=text]", VENEZUELA)
        await page.click("form[action='/tester'] button")
        await page.wait_for_selector("#report")
        assert await page.locator("article.verdict.matched h3").first.inner_text() != ""
        assert await page.locator("article.verdict").count() == 2
        assert await page.locator("article.verdict.matched mark").count() > 0
        stats = await _shot(context, page, shots / "tester.png")
        assert stats["variance"] > 100, stats

        # Backtest over the stored stories.
        await page.select_option("select[name=rule]", "venezuela")
        await page.fill("input[name=days]", "30")
        await page.click("form[action='/backtest'] button")
        await page.wait_for_selector("#backtest")
        assert "Backtest of venezuela" in await page.locator("#backtest h2").inner_text()
        assert await page.locator("#backtest dd").count() == 5


async def test_pages_read_on_a_phone_without_javascript(tmp_path: Path, browser: Any) -> None:
    shots = _shots_dir(tmp_path)
    async with serve(tmp_path) as site:
        context = await _context(
            browser, viewport={"width": 390, "height": 844}, java_script_enabled=False
        )
        page = await context.new_page()
        await page.goto(site.url("/stories?language=es"))
        assert await page.locator("li.story").count() == 3
        # Nothing wider than the screen: no sideways scrolling to read a story.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        await page.goto(site.url("/stories"))
        stats = await _shot(context, page, shots / "phone-stories.png")
        assert stats["width"] == 390 and stats["variance"] > 100, stats
        await page.goto(site.url("/feeds"))
        assert await page.locator("td svg.chart").count() == 3
