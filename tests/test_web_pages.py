"""The dashboard's pages over real HTTP on loopback, served from a real SQLite store filled through
the store's own write API: a shop's hour with a bad deploy and its incident, plus values a
hostile writer could put in (a deploy version, an author, a normalized SQL text, a note)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pages_helpers import READ, Client, attribute_values, serve
from querywatch import deploys
from querywatch.incidents import service
from querywatch.records import CallSite, StatementWindow
from querywatch.sql import fingerprint
from querywatch.store import open_store
from querywatch.web.server import WebServer
from respond_helpers import DEPLOY_AT, NOW, ORDERS_FP, T0, open_incident, ship_bad_release

HOSTILE_VERSION = "<script>alert(1)</script>"
HOSTILE_AUTHOR = "<img src=x onerror=alert(2)>"
HOSTILE_SQL = fingerprint('select "<script>alert(3)</script>" from t where a = 1', "postgres")
HOSTILE_NOTE = "<script>alert(4)</script> the network looked fine"
HOSTILE_SITE = CallSite("shop/<b>evil</b>.py", 13, "<svg onload=alert(5)>")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServer, str]]:
    path = tmp_path_factory.mktemp("pages") / "store.sqlite3"
    with open_store(path) as store:
        ship_bad_release(store)
        deploys.start_deploy(
            store,
            HOSTILE_VERSION,
            commit="deadbeef",
            author=HOSTILE_AUTHOR,
            at=T0 + 600,
            deploy_id="d0",
        )
        store.write_windows(
            [
                StatementWindow(
                    HOSTILE_SQL.id,
                    HOSTILE_SQL.normalized,
                    ws,
                    5,
                    10.0,
                    3.0,
                    source="app",
                    call_sites=(HOSTILE_SITE,),
                )
                for ws in range(int(NOW) - 600, int(NOW), 10)
            ]
        )
        incident = open_incident(store)
        service.add_note(store, incident.id, HOSTILE_NOTE, by="<i>mallory</i>", at=NOW - 5)
    server = serve(path)
    yield server, incident.id
    server.shutdown()
    server.server_close()


@pytest.fixture
def reader(shop: tuple[WebServer, str]) -> Client:
    return Client(shop[0].url, token=READ)


def test_every_page_needs_read_access(shop: tuple[WebServer, str]) -> None:
    anonymous = Client(shop[0].url)
    for path in ("/", "/deploys", "/incidents", f"/fingerprints/{ORDERS_FP.id}", "/canary"):
        reply = anonymous.get(path)
        assert reply.status == 303 and (reply.location or "").startswith("/login?next="), path


def test_the_overview_draws_both_series_and_marks_every_deploy(reader: Client) -> None:
    page = reader.get("/").text
    for series in ("db_time", "calls"):
        path = re.search(
            rf'<path class="series series-{series}" data-series="{series}" '
            r'data-points="(\d+)" d="([^"]*)"',
            page,
        )
        assert path is not None, series
        # Every 10 s bucket since the traffic began (T0, half an hour into the range).
        assert int(path.group(1)) == len(range(T0, int(NOW), 10))
        assert path.group(2).startswith("M")
    markers = attribute_values(page, "data-deploy-id")
    assert markers.count("d2") >= 2 and markers.count("d0") >= 2  # on both charts
    assert "d1" not in markers  # two hours before the range
    title = re.search(r'data-deploy-id="d2"[^>]*><title>([^<]*)</title>', page)
    assert title is not None
    assert title.group(1).startswith("deploy v2, commit bbbb2222")


def test_the_overview_ranks_queries_and_links_each_to_its_page(reader: Client) -> None:
    page = reader.get("/").text
    rows = attribute_values(page, "data-fingerprint")
    assert rows[0] == ORDERS_FP.id  # 30x slower for the last two minutes: the most time
    assert f'href="/fingerprints/{ORDERS_FP.id}?since=1h"' in page
    assert page.count('class="sparkline"') == len(set(rows))
    assert "Latest incident" in page and "open" in page


def test_the_open_incident_and_its_triage_show_on_the_overview(
    reader: Client, shop: tuple[WebServer, str]
) -> None:
    page = reader.get("/").text
    assert f'data-incident-id="{shop[1]}"' in page
    assert f'href="/incidents/{shop[1]}?since=1h"' in page


def test_the_fingerprint_page_shows_sql_charts_call_sites_and_incidents(
    reader: Client, shop: tuple[WebServer, str]
) -> None:
    page = reader.get(f"/fingerprints/{ORDERS_FP.id}").text
    assert '<span class="sql-keyword">SELECT</span>' in page or "sql-keyword" in page
    assert '<span class="sql-placeholder">?</span>' in page
    for series in ("calls", "mean", "p95", "rows"):
        assert f'data-series="{series}"' in page, series
    assert 'class="deploy-marker deploy" data-deploy-id="d2"' in page
    assert '<code class="site">shop/orders.py:88</code>' not in page  # the incident's site…
    assert f'data-incident-id="{shop[1]}"' in page  # …but its incident is listed
    assert "p95 needs in-app capture" not in page  # this source has per-call latencies


def test_call_sites_show_as_path_and_line(reader: Client) -> None:
    page = reader.get(f"/fingerprints/{HOSTILE_SQL.id}").text
    assert 'class="call-site" data-path="shop/&lt;b&gt;evil&lt;/b&gt;.py" data-line="13"' in page
    assert "shop/&lt;b&gt;evil&lt;/b&gt;.py:13" in page


@pytest.mark.parametrize(
    "path",
    [
        "/",
        f"/fingerprints/{HOSTILE_SQL.id}",
        "/deploys",
        "/deploys/d0",
        "/incidents",
        "INCIDENT",
        "INCIDENT/postmortem",
        "/canary",
        "/checks",
    ],
)
def test_hostile_values_are_escaped_everywhere(
    reader: Client, shop: tuple[WebServer, str], path: str
) -> None:
    path = path.replace("INCIDENT", f"/incidents/{quote(shop[1])}")
    page = reader.get(path)
    assert page.status == 200, page.text
    for raw in ("<script", "<img", "<svg onload", "<b>evil", "<i>mallory"):
        assert raw not in page.text, (path, raw)


def test_escaped_values_are_shown_not_dropped(reader: Client, shop: tuple[WebServer, str]) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reader.get("/deploys").text
    deploy = reader.get("/deploys/d0").text
    assert "&lt;img src=x onerror=alert(2)&gt;" in deploy
    sql = reader.get(f"/fingerprints/{HOSTILE_SQL.id}").text
    assert '<span class="sql-quoted">&#34;&lt;script&gt;alert(3)&lt;/script&gt;&#34;</span>' in sql
    incident = reader.get(f"/incidents/{quote(shop[1])}").text
    assert "&lt;i&gt;mallory&lt;/i&gt;: &lt;script&gt;alert(4)&lt;/script&gt;" in incident


def test_literals_never_reach_a_page(reader: Client, tmp_path: Path) -> None:
    # The store keeps normalized text; one that somehow held a literal shows it as ?.
    page = reader.get(f"/fingerprints/{HOSTILE_SQL.id}").text
    sql = re.search(r'<pre class="sql" data-sql>(.*?)</pre>', page, re.S)
    assert sql is not None and "a</span> = <span" not in sql.group(1)
    assert re.search(r"= <span class=\"sql-placeholder\"[^>]*>\?</span>", sql.group(1))


def test_the_range_picker_keeps_since_and_until_in_every_link(reader: Client) -> None:
    since, until = "2025-11-24T15:30:00", "2025-11-24T16:20:00"
    page = reader.get(f"/?since={since}&until={until}").text
    kept = f"since={quote(since)}&amp;until={quote(until)}"
    links = re.findall(r'href="(/[^"]*)"', page)
    internal = [h for h in links if not h.startswith("/static/") and h != "/login"]
    assert internal and all(kept in h for h in internal if "?" in h), internal
    assert all("?" in h for h in internal if h.startswith(("/deploys", "/incidents", "/fing")))
    assert 'value="2025-11-24T15:30"' in page and 'value="2025-11-24T16:20"' in page
    fingerprint_page = reader.get(f"/fingerprints/{ORDERS_FP.id}?since=6h").text
    assert 'href="/deploys?since=6h"' in fingerprint_page
    assert 'class="range-preset active" data-preset="6h"' in fingerprint_page


def test_a_range_that_cannot_be_read_says_so(reader: Client) -> None:
    page = reader.get("/?since=yesterday-ish").text
    assert 'class="range-error"' in page and "cannot read &#39;yesterday-ish&#39; as a time" in page
    backwards = reader.get("/?since=2025-11-24T16:00:00&until=2025-11-24T15:00:00").text
    assert "must come after its start" in backwards


@pytest.mark.parametrize(
    "path",
    [
        "/fingerprints/0123456789abcdef",
        "/deploys/no-such-deploy",
        "/incidents/no-such-incident",
        "/incidents/no-such-incident/postmortem",
        "/incidents/no-such-incident/postmortem.md",
    ],
)
def test_unknown_ids_are_404_pages(reader: Client, path: str) -> None:
    reply = reader.get(path)
    assert reply.status == 404
    assert "<h1>Not found</h1>" in reply.text


def test_the_deploys_list_shows_each_deploys_effect(reader: Client) -> None:
    page = reader.get("/deploys?since=6h").text
    rows = re.findall(r'<tr data-deploy-id="([^"]+)">', page)
    assert rows == ["d2", "d0", "d1"]  # newest first
    d2 = page[page.index('<tr data-deploy-id="d2">') :]
    d2 = d2[: d2.index("</tr>")]
    assert re.search(r'slower-count change-slower">1<', d2)  # the orders query, 30x
    assert "ms/s</span>" in d2  # database time before → after


def test_a_deploys_page_names_the_query_that_got_slower(reader: Client) -> None:
    page = reader.get("/deploys/d2").text
    slower = page[page.index('<table class="changes slower">') :]
    slower = slower[: slower.index("</table>")]
    assert f'data-fingerprint="{ORDERS_FP.id}"' in slower
    assert "×" in slower
    assert 'data-deploy-id="d2"' in page and "bbbb2222" in page


def test_the_incident_page_shows_timeline_culprits_impact_and_evidence(
    reader: Client, shop: tuple[WebServer, str]
) -> None:
    page = reader.get(f"/incidents/{quote(shop[1])}").text
    assert re.findall(r'<li class="kind-(\w+)"', page)[:1] == ["detected"]
    assert f'class="culprit" data-fingerprint="{ORDERS_FP.id}"' in page
    assert "<code>shop/orders.py:88</code>" in page
    assert 'data-kind="deploy_regression"' in page
    assert 'class="impact"' in page and 'data-series="db_time"' in page
    assert 'class="incident-marker"' in page
    # Read access: no action forms, a way to sign in instead.
    assert 'data-action="ack"' not in page and "need the write token" in page


def test_the_postmortem_renders_as_html_and_downloads_as_markdown(
    reader: Client, shop: tuple[WebServer, str]
) -> None:
    incident = quote(shop[1])
    html = reader.get(f"/incidents/{incident}/postmortem").text
    assert '<section id="timeline">' in html and "<h2>Timeline</h2>" in html
    assert f'href="/incidents/{incident}/postmortem.md?since=1h"' in html
    for path in (
        f"/incidents/{incident}/postmortem.md",
        f"/incidents/{incident}/postmortem?format=md",
    ):
        md = reader.get(path)
        assert md.status == 200
        assert md.headers["Content-Type"].startswith("text/markdown")
        assert "attachment" in md.headers["Content-Disposition"]
        assert md.text.startswith("<!-- querywatch:section id=header") or "# Postmortem" in md.text


def test_the_canary_page_says_how_to_start_one(reader: Client) -> None:
    page = reader.get("/canary").text
    assert 'data-empty="canary"' in page and "querywatch canary start" in page


def test_the_checks_page_says_where_the_gate_report_is(reader: Client) -> None:
    page = reader.get("/checks").text
    assert 'data-empty="checks"' in page and "querywatch check --format markdown" in page


def test_the_latest_deploy_is_the_last_marker_title_hover(reader: Client) -> None:
    page = reader.get(f"/fingerprints/{ORDERS_FP.id}").text
    titles = re.findall(r'data-deploy-id="d2"[^>]*><title>([^<]*)</title>', page)
    assert titles and all("v2" in t and "bbbb2222" in t for t in titles)
    at = DEPLOY_AT
    assert all(str(int(at)) not in t for t in titles)  # a readable time, not epoch seconds
