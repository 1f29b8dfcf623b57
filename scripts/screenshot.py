"""Take the README's screenshot: the dashboard's overview right after a demo outage.

Runs `querywatch demo` (in process, as the CLI would), serves its store as `querywatch serve
--no-auth` does, and has Debian's Chromium (under Playwright, as the browser tests do) take the
overview over the demo's minutes. Refuses to write a blank or oversized picture.

    .venv/bin/python scripts/screenshot.py                 # docs/images/overview.png
    .venv/bin/python scripts/screenshot.py --no-canary     # v2 to every user: the full outage
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' Chromium launcher and PNG reader

from playwright.sync_api import sync_playwright  # noqa: E402

from browser import VIEWPORT, launch, read_png  # noqa: E402
from querywatch.demo.canary import CanaryPlan  # noqa: E402
from querywatch.demo.run import DemoOptions, run_demo  # noqa: E402
from querywatch.demo.watcher import ENVIRONMENT  # noqa: E402
from querywatch.web.server import make_server  # noqa: E402

MAX_BYTES = 300 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/overview.png")
    parser.add_argument("--workdir", type=Path, help="the demo's work directory [a temporary one]")
    parser.add_argument("--scale", type=int, default=200_000, help="orders to seed")
    parser.add_argument("--duration", type=float, default=100.0, help="seconds of load")
    parser.add_argument("--no-canary", action="store_true", help="v2 to every user at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="querywatch-screenshot-") as tmp:
        workdir = args.workdir or Path(tmp)
        options = DemoOptions(
            workdir=workdir,
            scale=args.scale,
            duration=args.duration,
            canary=None if args.no_canary else CanaryPlan(10.0, ()),
        )
        print(f"running the demo in {workdir} ({args.duration:g} s of load)…", file=sys.stderr)
        report = run_demo(options)
        if report.incident is None:
            sys.exit("the demo opened no incident: nothing to show")
        # The demo's minutes, with a little before and after, rather than the last hour.
        since, until = report.run_started_at - 30, time.time() + 10
        server = make_server(
            options.store_path, "127.0.0.1", 0, no_auth=True, environment=ENVIRONMENT
        )
        server.start()
        try:
            png = shoot(
                f"{server.url}/?{urlencode({'since': f'{since:.0f}', 'until': f'{until:.0f}'})}"
            )
        finally:
            server.shutdown()
            server.server_close()
    pixels = read_png(png)
    if len(pixels.colours) < 16 or pixels.non_white_share < 0.02:
        sys.exit(f"the screenshot looks blank ({len(pixels.colours)} colours): not written")
    if len(png) > MAX_BYTES:
        sys.exit(
            f"the screenshot is {len(png) // 1024} KB, over {MAX_BYTES // 1024} KB: not written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(
        f"wrote {args.out} ({len(png) // 1024} KB, incident {report.incident.id})", file=sys.stderr
    )


def shoot(url: str) -> bytes:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.locator("svg").first.wait_for()
            return page.screenshot()
        finally:
            browser.close()


if __name__ == "__main__":
    main()
