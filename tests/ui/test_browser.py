"""The app in a real browser: Debian's headless Chromium, driven by Playwright, over the real engines.

Types a prompt, clicks Compare, waits for both answers and their figures, checks that the plotly
charts drew, and saves a screenshot. A missing browser or Playwright fails the test: it never skips.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.engine
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FIGURES = re.compile(r"TTFT [\d,.]+ ms")  # an answer's figures; the history header says "TTFT ms"
CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: (gd.querySelector('svg .gtitle') || {}).textContent || '',
    drawn: !!gd.querySelector('svg.main-svg'),
    points: (gd.data || []).reduce((n, t) => n + (t.x || []).length, 0),
}))"""


def _sync_playwright() -> Any:
    """Playwright's sync entry point, or a failure that says what to install."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `apt-get install chromium` (scripts/install does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright is missing ({exc}): `pip install -r requirements-dev.txt`")
    return sync_playwright


def _figures_under(page: Any, pane: str) -> str:
    """The answer figures shown below a pane (same column, lower on the page), or ''."""
    box = page.locator(pane).bounding_box()
    for element in page.get_by_text(FIGURES).all():
        b = element.bounding_box()
        if box and b and box["x"] <= b["x"] + b["width"] / 2 <= box["x"] + box["width"] and b["y"] >= box["y"]:
            return str(element.inner_text())
    return ""


def _charts_with_data(page: Any) -> list[dict[str, Any]]:
    """The drawn plotly charts that hold points, once both the memory and the latency chart do."""
    charts = [c for c in page.evaluate(CHARTS) if c["drawn"] and c["points"]]
    return charts if {c["title"].split(" ")[0] for c in charts} >= {"Memory", "Latency"} else []


def _wait_for(what: str, probe: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)
    return value


def _compare(page: Any, url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Open the app, compare one prompt, wait for both answers, their figures and the charts."""
    page.goto(url, wait_until="networkidle")
    _wait_for("both engine cards to say ready", lambda: page.get_by_text("● ready").count() >= 2, 60)
    page.get_by_label("Prompt (sent to both engines)").fill("The function returns")
    page.get_by_text("Sampling", exact=True).click()
    page.get_by_label("max_tokens").fill("32")  # short answers keep the test fast
    page.get_by_role("button", name="Compare ▶").click()
    panes = [".pane-A textarea", ".pane-B textarea"]
    _wait_for("both answers", lambda: all(page.locator(s).input_value().strip() for s in panes), 120)
    _wait_for("the figures under both answers", lambda: all(_figures_under(page, f".pane-{n}") for n in "AB"), 120)
    # The charts refresh every 3 s (ui/live.py); the latency chart then holds this request's points.
    charts = _wait_for("the memory and latency charts with data", lambda: _charts_with_data(page), 30)
    return [page.locator(s).input_value() for s in panes], charts


def test_compare_in_a_real_browser(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    sync_playwright = _sync_playwright()  # before the engines start: a missing browser fails in seconds
    from playground.ui.app import LAUNCH_OPTIONS, build_ui, polled_gently

    demo = build_ui(request.getfixturevalue("arena"))
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True, **LAUNCH_OPTIONS)
    shot = tmp_path / "compare.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            try:
                answers, charts = _compare(page, demo.local_url)
            finally:  # the page as it stood, also when a wait failed
                page.screenshot(path=str(shot), full_page=True)
                print(f"\nscreenshot: {shot}")
                browser.close()
    finally:
        demo.close()
    print(f"answers: {answers}\ncharts: {charts}")
    assert all(a.strip() for a in answers)
    assert shot.stat().st_size > 10_000
