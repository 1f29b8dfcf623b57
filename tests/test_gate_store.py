"""`querywatch check --store` records the gate's report in the store, and the dashboard's /checks
page shows it over real HTTP: a real run file with an N+1, a real SQLite store, a real server."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run_cli
from gate_helpers import home_page
from pages_helpers import READ, Client, serve
from querywatch.records import StatementWindow
from querywatch.store import open_store
from querywatch.store.state import GATE_REPORT_KEY
from respond_helpers import NOW
from test_gate_check import make_db, record

CI = {
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF_NAME": "feature/orders",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "shop/app",
}


def checked_store(tmp_path: Path) -> tuple[Path, dict]:
    """An N+1 run file checked with --store: the store and the report it holds."""
    make_db(tmp_path / "app.db")
    run_file = tmp_path / "run.json"
    record(tmp_path, lambda conn: home_page(conn, 11)).save(run_file)
    store = tmp_path / "store.sqlite3"
    args = ("check", "--run", str(run_file), "--baseline", str(tmp_path / "b.json"))
    result = run_cli(*args, "--store", str(store), env=CI)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "New findings" in result.stdout  # the terminal report is still printed
    with open_store(store, create=False) as db:
        raw = db.get_state(GATE_REPORT_KEY)
    assert raw is not None
    return store, json.loads(raw)


def test_check_with_store_records_the_report_and_without_records_nothing(tmp_path: Path) -> None:
    _, report = checked_store(tmp_path)
    assert report["verdict"] == "failed" and report["exit_code"] == 1
    assert report["counts"]["failing"] >= 1 and report["counts"]["accepted"] == 0
    [n1] = [f for f in report["findings"] if f["rule"] == "n-plus-one"]
    assert n1["kind"] == "new" and n1["failing"] is True
    assert n1["sql"] == "select id from orders where customer_id = ?" and n1["fingerprint"]
    assert n1["site"]["path"].endswith("gate_helpers.py") and n1["site"]["line"] > 0
    assert n1["site"]["function"] == "home_page"
    assert report["ci"] == {
        "sha": CI["GITHUB_SHA"],
        "ref": "feature/orders",
        "run_id": "4242",
        "repository": "shop/app",
        "url": "https://github.com/shop/app/actions/runs/4242",
    }

    # Accepted by the baseline: the next report says so; no --store: nothing is recorded.
    args = ("check", "--run", str(tmp_path / "run.json"), "--baseline", str(tmp_path / "b.json"))
    assert run_cli(*args, "--update-baseline").returncode == 0
    other = tmp_path / "other.sqlite3"
    assert run_cli(*args).returncode == 0 and not other.exists()
    assert run_cli(*args, env={"QUERYWATCH_STORE": str(other)}).returncode == 0
    with open_store(other, create=False) as db:
        again = json.loads(db.get_state(GATE_REPORT_KEY) or "{}")
    assert again["verdict"] == "passed" and again["counts"]["accepted"] >= 1
    assert {f["kind"] for f in again["findings"]} == {"accepted"}


def test_the_checks_page_shows_the_latest_report_escaped(tmp_path: Path) -> None:
    store, report = checked_store(tmp_path)
    [n1] = [f for f in report["findings"] if f["rule"] == "n-plus-one"]
    hostile = dict(n1, rule="<script>alert(1)</script>", fingerprint="not-in-the-store")
    hostile["site"] = {"path": "shop/<b>evil</b>.py", "line": 7, "function": "<svg onload=x>"}
    report["findings"].append(hostile)
    report["ci"]["url"] = "javascript:alert(2)"
    report["ci"]["ref"] = "<img src=x onerror=alert(3)>"
    with open_store(store, create=False) as db:
        db.set_state(GATE_REPORT_KEY, json.dumps(report))
        db.write_windows(
            [StatementWindow(n1["fingerprint"], n1["sql"], int(NOW) - 60, 3, 1.0, 0.5)]
        )
    server = serve(store)
    try:
        page = Client(server.url, token=READ).get("/checks")
    finally:
        server.shutdown()
        server.server_close()
    assert page.status == 200, page.text
    text = page.text
    assert 'data-verdict="failed"' in text and 'data-empty="checks"' not in text
    assert f'href="/fingerprints/{n1["fingerprint"]}?' in text  # known to the store: a link
    assert "/fingerprints/not-in-the-store" not in text
    site = f"{n1['site']['path']}:{n1['site']['line']}"
    assert site in text and "home_page" in text
    assert "run 4242" in text and "0123456789ab" in text
    for raw in ("<script>alert", "<b>evil", "<svg onload", "<img src", "javascript:"):
        assert raw not in text, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "shop/&lt;b&gt;evil" in text
    assert "querywatch.baseline.json" in text or "baseline" in text  # the working-dir facts stay
