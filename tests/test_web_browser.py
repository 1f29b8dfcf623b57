"""The dashboard in a real browser (Debian's Chromium under Playwright), over a real demo run.

One `querywatch demo --serve --keep-serving` runs for the module, as a user runs it: the browser
watches the printed overview while the outage happens (the bad release's deploy marker and the
incident show up while the demo still runs). Then the demo's store is served as `querywatch serve`
serves it, with a write and a read token, and the browser loads every page, checks that the
charts drew, follows the overview's spike to the query and its line of code, signs in with the
write token, acknowledges an incident, and gets a rollback's dry run before confirming it.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from browser import VIEWPORT, launch, read_png
from cli_helpers import assert_one_line_error, run_cli
from querywatch import deploys
from querywatch.incidents import service
from querywatch.incidents.model import Incident
from querywatch.incidents.repository import list_incidents
from querywatch.store import open_store
from querywatch.web.server import WebServer, make_server
from respond_helpers import WRITE_ARGS, culprit, detection, script, written

WRITE = "write-token-for-browser-tests-0123"
READ = "read-token-for-browser-tests-4567"

# The pages' hooks (web/charts.py, templates/pages/**): series and deploy markers in the SVG.
SERIES = "svg path.series[data-series]"
MARKER = "svg line.deploy-marker"
PAGE_ERROR = ".error-page, [role=alert]"

#: Where the v2 culprit lives in the demo's shop: what the call site must name.
V2_SOURCE = "releases/v2.py"


# -- the demo, watched live ------------------------------------------------------------------------


@dataclass
class DemoRun:
    """What `querywatch demo --serve --keep-serving` printed, and what its page showed as it ran."""

    workdir: Path
    url: str
    stdout: list[str] = field(default_factory=list)
    stderr: str = ""
    returncode: int | None = None
    #: Deploy markers' hover text and incident links on the overview, loaded before the demo
    #: printed its summary.
    live_markers: set[str] = field(default_factory=set)
    live_incidents: set[str] = field(default_factory=set)
    live_loads: int = 0
    #: The overview still answered after the summary (--keep-serving).
    served_after_summary: bool = False

    @property
    def store_path(self) -> Path:
        return self.workdir / "querywatch.sqlite3"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    workdir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    # A short canary run (about 40 s): a deploy, a regression, an incident, a rollback.
    args = "--scale 20000 --duration 50 --rate 25 --users 60 --serve --serve-port 0 --keep-serving"
    proc = subprocess.Popen(
        [sys.executable, "-m", "querywatch", "demo", "--workdir", str(workdir), *args.split()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its Ctrl-C is ours to send, not the test runner's
    )
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def read_stderr() -> None:
        assert proc.stderr is not None
        errors.append(proc.stderr.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for reader in readers:
        reader.start()
    try:
        first = lines.get(timeout=60)
        assert first is not None, errors
        found = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:\d+/\?since=15m) .*", first)
        assert found, first
        run = DemoRun(workdir, found.group(1), [first])
        page = browser.new_page(viewport=VIEWPORT)
        deadline = time.monotonic() + 240
        while not _summary_done(run, lines):
            assert time.monotonic() < deadline, run.stdout
            page.goto(run.url)
            titles = page.locator(f"{MARKER} title").all_text_contents()
            links = page.locator('a[href^="/incidents/"]').evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
            if _summary_done(run, lines):  # this load may have come after the demo's end
                break
            run.live_loads += 1
            run.live_markers.update(titles)
            run.live_incidents.update(href.split("?")[0] for href in links)
            page.wait_for_timeout(500)  # a person reloading now and then
        run.served_after_summary = bool(page.goto(run.url) and page.title().startswith("Overview"))
        page.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        run.returncode = proc.returncode
        for reader in readers:
            reader.join(timeout=10)
        _drain(run, lines)
        run.stderr = "".join(errors)
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for reader in readers:
            reader.join(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _drain(run: DemoRun, lines: queue.Queue[str | None]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            run.stdout.append(line)


def _summary_done(run: DemoRun, lines: queue.Queue[str | None]) -> bool:
    _drain(run, lines)
    return any(line.startswith("the dashboard stays up at ") for line in run.stdout)


def test_demo_serve_prints_the_dashboard_first_and_shows_the_outage_as_it_happens(
    demo: DemoRun,
) -> None:
    assert demo.stdout[0].startswith(f"dashboard: {demo.url} ")  # before the shop is seeded
    assert demo.live_loads >= 3, demo.stdout
    # The bad release's deploy marker, with its hover text, while the demo still ran...
    assert any(t.startswith("v2") or " v2" in t for t in demo.live_markers), demo.live_markers
    # ... and the incident querywatch opened on it.
    assert any(href.startswith("/incidents/QW-") for href in demo.live_incidents), (
        demo.live_incidents
    )
    # --keep-serving: still up after the summary, until Ctrl-C, which ends it cleanly.
    assert demo.served_after_summary
    assert f"the dashboard stays up at {demo.url} (Ctrl-C to stop)" in demo.stdout
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr and "stopped" in demo.stderr


def test_demo_serve_on_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("demo", "--serve", "--serve-port", str(port), "--workdir", str(tmp_path))
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "--serve-port")
    assert not (tmp_path / "shop.sqlite3").exists()  # nothing seeded


# -- the demo's store, served with tokens ----------------------------------------------------------


@dataclass
class Site:
    url: str
    store_path: Path
    demo_incident: Incident
    #: An unresolved incident on a production deploy, to act on (the demo resolves its own).
    open_incident: str
    rollback_log: Path

    @property
    def culprit(self) -> str:
        return self.demo_incident.culprits[0].fingerprint


def open_production_incident(store_path: Path, now: float) -> str:
    """A production deploy two minutes old, v2.0 -> v2.1, and an incident opened on it."""
    store = open_store(store_path)
    try:
        deploys.start_deploy(
            store,
            "v2.0",
            commit="aaaa1111",
            environment="production",
            at=now - 7200,
            deploy_id="p1",
        )
        deploys.finish_deploy(store, deploy_id="p1", at=now - 7190)
        deploys.start_deploy(
            store, "v2.1", commit="bbbb2222", environment="production", at=now - 130, deploy_id="p2"
        )
        deploys.finish_deploy(store, deploy_id="p2", at=now - 125)
        incident = service.open_incident(
            store, [detection("p2", at=now)], [culprit("p2")], None, None, "p2", now
        )
        return incident.id
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = open_store(demo.store_path)
    try:
        (demo_incident,) = list_incidents(store)
    finally:
        store.close()
    open_id = open_production_incident(demo.store_path, time.time())
    scripts = tmp_path_factory.mktemp("rollback")
    log = scripts / "deploy.log"
    program = script(scripts / "deploy.py", WRITE_ARGS)
    command = f"{program} {shlex.quote(str(log))} {{previous_version}} {{version}} {{deploy_id}}"

    def config_for(environment: str) -> dict[str, object]:
        return {"environment": environment, "rollback_command": command}

    server: WebServer = make_server(
        demo.store_path,
        "127.0.0.1",
        0,
        WRITE,
        read_token=READ,
        environment="demo",
        config_for=config_for,
    )
    server.start()
    try:
        yield Site(server.url, demo.store_path, demo_incident, open_id, log)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def reader(browser: Browser, site: Site) -> Iterator[Page]:
    """A browser tab signed in with the read token."""
    context = browser.new_context(viewport=VIEWPORT, base_url=site.url)
    page = context.new_page()
    sign_in(page, READ, "/")
    yield page
    context.close()


def sign_in(page: Page, token: str, then: str) -> None:
    """Open ``then``: the server sends the browser to /login, which sends it back signed in."""
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#token", token)
    page.click("form[action='/login'] button[type=submit]")
    expect(page).not_to_have_url(re.compile("/login"))


def charts_drew(page: Page, *, markers: int = 1) -> None:
    """A series with points and ``markers`` deploy markers, each with its hover text."""
    expect(page.locator(SERIES).first).to_be_attached()
    points = page.locator(SERIES).evaluate_all(
        "paths => paths.map(p => Number(p.dataset.points || 0))"
    )
    assert max(points) >= 2, points
    titles = page.locator(f"{MARKER} title").all_text_contents()
    assert len(titles) >= markers and all(t.strip() for t in titles), titles


def loads(page: Page, path: str, heading: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    expect(page.locator("h1").first).to_contain_text(heading)
    assert page.locator(PAGE_ERROR).count() == 0, page.locator(PAGE_ERROR).all_text_contents()


def test_every_page_loads_and_the_charts_draw(reader: Page, site: Site) -> None:
    incident = site.demo_incident
    deploy_id = incident.deploy_id
    assert deploy_id is not None
    loads(reader, "/?since=1h", "Overview")
    charts_drew(reader, markers=2)  # v1, the canary v2 and the rollback to v1
    loads(reader, f"/fingerprints/{site.culprit}", "")
    charts_drew(reader)
    loads(reader, "/deploys", "Deploys")
    expect(reader.locator(f"a[href^='/deploys/{deploy_id}']").first).to_be_visible()
    loads(reader, f"/deploys/{deploy_id}", "")
    charts_drew(reader)
    loads(reader, "/incidents", "Incidents")
    expect(reader.locator(f"a[href^='/incidents/{incident.id}']").first).to_be_visible()
    loads(reader, f"/incidents/{incident.id}", incident.id)
    expect(reader.locator("h1 [data-status]")).to_have_text("resolved")
    loads(reader, f"/incidents/{incident.id}/postmortem", "")
    expect(reader.get_by_text("Root Cause and Resolution")).to_be_visible()
    download = reader.locator("a[data-link=postmortem-md]")
    markdown = reader.request.get(download.get_attribute("href") or "")
    assert markdown.ok and "## Root Cause and Resolution" in markdown.text()
    loads(reader, "/canary", "Canary")
    loads(reader, "/checks", "Checks")


def test_from_the_spike_to_the_query_to_its_line_of_code(reader: Page, site: Site) -> None:
    reader.goto("/?since=1h")
    # The spike's query is among those with the most database time: follow it...
    row = reader.locator(f"table.top-queries tr[data-fingerprint='{site.culprit}']")
    expect(row).to_be_visible()
    row.locator("a.fingerprint-link").click()
    expect(reader).to_have_url(re.compile(rf"/fingerprints/{site.culprit}"))
    expect(reader.locator("pre.sql[data-sql]")).to_contain_text("orders")
    # ... to the line in the bad release that sends it.
    line = site.demo_incident.culprits[0].call_sites[0].line
    call_site = reader.locator(f"li.call-site[data-path$='{V2_SOURCE}'][data-line='{line}']")
    expect(call_site.locator("code.site")).to_have_text(re.compile(rf"{V2_SOURCE}:{line}$"))


def test_a_screenshot_of_the_overview_is_not_blank(reader: Page) -> None:
    reader.goto("/?since=15m")
    expect(reader.locator(SERIES).first).to_be_attached()
    pixels = read_png(reader.screenshot())
    assert (pixels.width, pixels.height) == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(pixels.colours) >= 16, pixels.colours.most_common(5)
    assert pixels.non_white_share > 0.02, pixels.non_white_share


def test_the_read_token_sees_no_actions(reader: Page, site: Site) -> None:
    reader.goto(f"/incidents/{site.open_incident}")
    expect(reader.locator("h1").first).to_contain_text(site.open_incident)
    expect(reader.get_by_text("need the write token")).to_be_visible()
    assert reader.locator("button[data-action]").count() == 0


def test_sign_in_with_the_write_token_acknowledge_and_roll_back_after_a_dry_run(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=site.url)
    try:
        page = context.new_page()
        incident_page = f"/incidents/{site.open_incident}"
        sign_in(page, WRITE, incident_page)
        expect(page).to_have_url(re.compile(re.escape(incident_page)))

        page.click("button[data-action=ack]")
        expect(page.locator("h1 [data-status]")).to_have_text("acknowledged")
        store = open_store(site.store_path)
        try:
            assert service.get_incident(store, site.open_incident).status == "acknowledged"
        finally:
            store.close()

        # A rollback shows its dry run first: the command it would run, and nothing run...
        page.click("button[data-action=rollback-dry-run]")
        dry_run = page.locator("[data-dry-run]")
        expect(dry_run).to_be_visible()
        expect(dry_run.locator("pre.command")).to_contain_text("v2.0 v2.1 p2")
        assert written(site.rollback_log) == []
        # ... until it is confirmed: then it runs, and the incident is mitigated.
        page.click("button[data-action=rollback-confirm]")
        expect(page.locator("h1 [data-status]")).to_have_text("mitigated")
        assert written(site.rollback_log) == [["v2.0", "v2.1", "p2"]]
    finally:
        context.close()
