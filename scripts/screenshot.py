"""Take the README's screenshot: the dashboard's overview right after a demo outage.

Runs `querywatch demo` (in process, as the CLI would), serves its store as `querywatch serve
--no-auth` does, and has Debian's Chromium (under Playwright, as the browser tests do) take the
overview over the demo's minutes. Refuses to write a blank or oversized picture.

    .venv/bin/python scripts/screenshot.py --no-canary --workdir /tmp/shot   # the README's
    .venv/bin/python scripts/screenshot.py --reuse --workdir /tmp/shot       # again, no new demo

--no-canary sends v2 to every user (the report's outage: the spike, then the rollback); without
it the canary's 10% makes a smaller bump. About 90 s; the picture goes to docs/images/overview.png.
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
from querywatch.incidents.repository import list_incidents  # noqa: E402
from querywatch.store import open_store  # noqa: E402
from querywatch.web.server import make_server  # noqa: E402

MAX_BYTES = 300 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/overview.png")
    parser.add_argument("--workdir", type=Path, help="the demo's work directory [a temporary one]")
    parser.add_argument("--scale", type=int, default=200_000, help="orders to seed")
    parser.add_argument("--duration", type=float, default=100.0, help="seconds of load")
    parser.add_argument("--no-canary", action="store_true", help="v2 to every user at once")
    parser.add_argument(
        "--reuse", action="store_true", help="no new demo: the store already in --workdir"
    )
    parser.add_argument("--height", type=int, default=1400, help="the window's height in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="querywatch-screenshot-") as tmp:
        workdir = args.workdir or Path(tmp)
        options = DemoOptions(
            workdir=workdir,
            scale=args.scale,
            duration=args.duration,
            canary=None if args.no_canary else CanaryPlan(10.0, ()),
        )
        if args.reuse:
            since, until = demo_span(options.store_path)
        else:
            print(f"running the demo in {workdir} ({args.duration:g} s of load)…", file=sys.stderr)
            report = run_demo(options)
            if report.incident is None:
                sys.exit("the demo opened no incident: nothing to show")
            since, until = report.run_started_at, time.time()
        server = make_server(
            options.store_path, "127.0.0.1", 0, no_auth=True, environment=ENVIRONMENT
        )
        server.start()
        try:
            # The demo's minutes, with a little before and after, rather than the last hour.
            span = {"since": f"{since - 10:.0f}", "until": f"{until + 5:.0f}"}
            png = shoot(f"{server.url}/?{urlencode(span)}", height=args.height)
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
    print(f"wrote {args.out} ({len(png) // 1024} KB)", file=sys.stderr)


def demo_span(store_path: Path) -> tuple[float, float]:
    """From the first deploy to the last incident's end, in a demo store that is there already."""
    if not store_path.exists():
        sys.exit(f"no demo store at {store_path}: run without --reuse first")
    store = open_store(store_path, read_only=True)
    try:
        (incident, *_) = list_incidents(store, limit=1)
        since = min(d.started_at for d in store.deploys(since=incident.opened_at - 3600))
        return since, incident.resolved_at or time.time()
    finally:
        store.close()


def shoot(url: str, *, height: int) -> bytes:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": VIEWPORT["width"], "height": height})
            page.goto(url)
            page.locator("svg").first.wait_for()
            return page.screenshot()
        finally:
            browser.close()


if __name__ == "__main__":
    main()
