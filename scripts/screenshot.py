"""Screenshot the running app in Debian's headless Chromium, driven by Playwright.

Usage: python scripts/screenshot.py [URL] [OUT.png] [--compare PROMPT] [--tab NAME] [--wait S]
Optionally types a prompt and clicks Compare, or opens a tab, then waits and takes a full-page shot.
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def main() -> None:
    """Open the page, act, wait, save the PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:7860")
    parser.add_argument("out", nargs="?", default="shots/app.png")
    parser.add_argument("--compare", help="prompt to send with the Compare button")
    parser.add_argument("--tab", help="tab to open before the shot")
    parser.add_argument("--click", help="a button to click after opening the tab (by its text)")
    parser.add_argument("--wait", type=float, default=4.0, help="seconds to wait before the shot")
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(args.url, wait_until="networkidle")
        page.wait_for_timeout(2000)
        if args.tab:
            page.get_by_role("tab", name=args.tab).click()
        if args.click:
            page.get_by_role("button", name=args.click).click()
        if args.compare:
            box = page.get_by_label("Prompt (sent to both engines)")
            box.fill(args.compare)
            page.get_by_role("button", name="Compare ▶").click()
        page.wait_for_timeout(args.wait * 1000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
