"""The generated postmortem: figures against the stored incident, edits kept, the timeline checked.

Every test builds a real SQLite store: a deploy marker, the culprit's statement windows before,
during and after the incident, and an incident with an alert, an acknowledgement, a misleading
note, a rollback, a mitigation and a resolution.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from querywatch.deploys import find_deploy, finish_deploy, start_deploy
from querywatch.detect.model import Culprit, Detection, PhaseStats
from querywatch.errors import NotFound
from querywatch.incidents import service
from querywatch.incidents.model import Impact, Incident, TimelineEvent
from querywatch.incidents.postmortem import (
    PostmortemError,
    render_postmortem,
    write_postmortem,
)
from querywatch.incidents.postmortem_render import digest, parse
from querywatch.incidents.repository import update_incident
from querywatch.records import CallSite, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.store import SqlStore, open_store
from querywatch.timefmt import duration

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC: deploy d2 starts
NOW = T0 + 10_000
FP = "fp-orders"
SQL = "SELECT * FROM orders WHERE user_id = $1 ORDER BY created_at DESC"
SITE = CallSite("shop/orders.py", 88, "order_history")
ROLLBACK = {
    "action": "rollback",
    "outcome": "ok",
    "trigger": "manual",
    "deploy_id": "d2",
    "version": "v2",
    "target_version": "v1",
    "command": "./deploy.sh v1",
    "exit_code": 0,
    "duration_s": 8.5,
}


def window(fp: str, start: float, calls: int, each_ms: float) -> StatementWindow:
    sketch = LatencySketch()
    for _ in range(calls):
        sketch.add(each_ms)
    return StatementWindow(
        fp,
        SQL if fp == FP else "SELECT 1",
        int(start),
        calls,
        calls * each_ms,
        each_ms,
        sketch=sketch,
        call_sites=(SITE,) if fp == FP else (),
    )


def seed(
    store: SqlStore,
    *,
    detected_at: float = T0 + 40,
    note_at: float = T0 + 90,
    resolved: bool = True,
) -> str:
    """The report's outage in small: v2 makes one query 40x slower; rolled back; fixed later."""
    start_deploy(store, "v1", deploy_id="d1", at=T0 - 7200)
    finish_deploy(store, deploy_id="d1", at=T0 - 7195)
    start_deploy(store, "v2", commit="abc1234", author="ci", deploy_id="d2", at=T0)
    finish_deploy(store, deploy_id="d2", at=T0 + 5)
    windows = [window(FP, T0 - 600 + 10 * k, 20, 1.5) for k in range(60)]  # 15:50:00–15:59:50
    windows += [window(FP, T0 + 10 * k, 10, 60.0) for k in range(1, 12)]  # 16:00:10–16:01:50
    windows += [window(FP, T0 + 140 + 10 * k, 20, 1.6) for k in range(7)]  # 16:02:20–16:03:20
    windows += [window("fp-other", T0 - 600 + 10 * k, 5, 9.0) for k in range(80)]  # not ours
    store.write_windows(windows)
    found = Detection(
        kind="deploy_regression",
        detected_at=detected_at,
        confidence=0.99,
        summary=f"{SQL} got 40x slower after deploy v2",
        fingerprint=FP,
        normalized=SQL,
        deploy_id="d2",
        before=PhaseStats(1200, 2.0, 1.5, 1.5, 3.0),
        after=PhaseStats(30, 1.0, 60.0, 60.0, 60.0),
        added_db_ms_per_s=58.5,
    )
    culprit = Culprit(FP, SQL, 58.5, "d1", (SITE,), ("deadbeef",), ("deploy_regression",))
    impact = Impact(3000, 2610, 300, 261, 1000.0, since=T0, until=T0 + 9000)
    incident = service.open_incident(store, [found], [culprit], None, impact, "d2", T0 + 41)
    iid = incident.id
    service.record_alert(store, iid, "critical alert sent to slack", at=T0 + 42)
    service.acknowledge(store, iid, by="alice", at=T0 + 60)
    service.add_note(
        store, iid, "checked the network switches: fine", by="bob", misleading=True, at=note_at
    )
    service.record_action(store, iid, "rolled back to v1", by="alice", at=T0 + 120, data=ROLLBACK)
    service.mitigate(store, iid, by="alice", note="rollback to v1", at=T0 + 130)
    if resolved:
        service.resolve(store, iid, by="alice", note="optimized query shipped in v3", at=T0 + 9000)
    return iid


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
def store(store_path: Path) -> Iterator[SqlStore]:
    opened = open_store(str(store_path))
    yield opened
    opened.close()


def section(text: str, section_id: str) -> str:
    """The content of one marked section of a rendered postmortem."""
    found = [p for p in parse(text) if getattr(p, "id", None) == section_id]
    assert found, f"no section {section_id}"
    return found[0].content  # type: ignore[union-attr]


# -- figures --------------------------------------------------------------------------------------


def test_figures_equal_the_stored_incident_and_say_where_they_come_from(store: SqlStore) -> None:
    iid = seed(store)
    stored = service.get_incident(store, iid)
    assert stored.impact is not None
    done = render_postmortem(store, iid, now=NOW)
    assert done.warnings == []
    summary = section(done.text, "summary")
    # Duration: from the deploy's start to the stored resolution.
    deploy = find_deploy(store, "d2")
    assert deploy is not None and stored.resolved_at is not None
    assert duration(stored.resolved_at - deploy.started_at) == "2h 30m"
    assert "2h 30m, from 16:00:00 (deploy d2 started) to 18:30:00 UTC (resolved)" in summary
    assert "deploy d2 started_at → incident resolved_at" in summary
    # Impact: the stored figures, with the range they were measured over.
    m = stored.impact
    assert (m.users_pct, m.affected_users, m.users) == (87.0, 261, 300)
    assert (m.requests_pct, m.failed_requests, m.requests) == (87.0, 2610, 3000)
    assert "87.0% of users affected (261 of 300)" in summary
    assert "87.0% of requests (2,610 of 3,000) failed or were slower than 1000 ms" in summary
    assert "request windows, 16:00:00–18:30:00 UTC" in summary
    # Root cause: the query, its call site and the deploy, 40x from the windows.
    assert f"`{SQL}` at `shop/orders.py:88`: 40.0x slower per call since deploy d2" in summary

    # The latency figures, summed here straight from the stored windows.
    def mean(since: float, until: float) -> float:
        rows = store.statement_windows(FP, since, until)
        return sum(w.total_ms for w in rows) / sum(w.calls for w in rows)

    assert round(mean(T0 - 1800, T0), 2) == 1.50
    assert round(mean(T0 + 10, T0 + 120), 1) == 60.0
    assert round(mean(T0 + 120, T0 + 9000), 2) == 1.60

    cause = section(done.text, "root-cause")
    # Before: the 60 windows of the 30 minutes before the deploy (1.5 ms each call).
    assert "before the deploy: 1.50 ms" in cause
    assert "60 statement windows starting 15:50:00–15:59:50 UTC, 1,200 calls" in cause
    # During: whole windows from the deploy's finish to the rollback (16:00:10 to 16:01:50).
    assert "during the incident: 60.0 ms (40.0x)" in cause
    assert "11 statement windows starting 16:00:10–16:01:50 UTC, 110 calls" in cause
    # After the rollback: back to 1.6 ms.
    assert "after mitigation: 1.60 ms" in cause
    assert "7 statement windows starting 16:02:20–16:03:20 UTC, 140 calls" in cause
    assert "fp-other" not in done.text and "SELECT 1`" not in done.text
    assert "called at `shop/orders.py:88` in order_history (commit deadbeef)" in cause
    assert "d2: version v2, commit abc1234, previous version v1" in cause
    assert "Manual rollback from v2 to v1: ok (exit code 0; after 8.5 s), ran `./deploy.sh v1`" in (
        cause
    )

    timeline = section(done.text, "timeline")
    assert "16:00:40 — " in timeline and "_(from timeline #1 (detected))_" in timeline
    assert "16:00:42 — alert: critical alert sent to slack _(from timeline #2 (alerted))_" in (
        timeline
    )
    assert "16:01:00 — acknowledged by alice, 18s after the first alert" in timeline
    # Misleading path: from the event before it (the acknowledgement) to the note.
    assert "16:01:30 — bob: checked the network switches: fine (30s spent on it)" in timeline
    assert "#3 (acknowledged) → timeline #4 (note tagged misleading)" in timeline
    assert "to detect: 40s (deploy d2 started 16:00:00 → detected 16:00:40)" in timeline
    assert "to mitigate: 2m 00s (deploy d2 started 16:00:00 → rollback done 16:02:00)" in timeline
    assert "to resolve: 2h 30m" in timeline
    assert "18:30:00 — resolved: optimized query shipped in v3 (by alice)" in timeline


def test_measures_are_derived_from_the_facts(store: SqlStore) -> None:
    iid = seed(store)
    measures = section(render_postmortem(store, iid, now=NOW).text, "measures")
    assert f"Add `{SQL}` at `shop/orders.py:88` to the CI baseline (`querywatch check`)" in measures
    assert "add an index or rewrite it; it went from 1.50 to 60.0 ms per call (40.0x)" in measures
    # The first slow window (16:00:10, closed 16:00:20) against the detection at 16:00:40.
    assert "ran at 2x its mean before the deploy (3.00 ms) already in the window starting " in (
        measures
    )
    assert "16:00:10 (60.0 ms per call over 10 calls); detection came 20s after" in measures
    assert "`Policy(min_after_windows=1, min_calls_after=10)`, would have fired at 16:00:20" in (
        measures
    )
    assert "30s were spent on “checked the network switches: fine”" in measures
    assert "the incident named" in measures and "was alerted at 16:00:42" in measures
    # The rollback worked: no "fix the rollback", no "no rollback recorded".
    assert "Fix the rollback" not in measures and "No rollback is recorded" not in measures


def test_an_n_plus_one_culprit_is_told_to_batch_not_to_add_an_index(store: SqlStore) -> None:
    iid = seed(store, resolved=False)
    loop = Detection(
        kind="n_plus_one",
        detected_at=T0 + 40,
        confidence=0.96,
        summary=f"/orders runs `{SQL}` 12 times per request",
        fingerprint=FP,
        normalized=SQL,
        deploy_id="d2",
    )
    culprit = Culprit(FP, SQL, 58.5, "d2", (SITE,), (), ("n_plus_one",))
    assert service.open_incident(store, [loop], [culprit], None, None, "d2", T0 + 41).id == iid
    measures = section(render_postmortem(store, iid, now=NOW).text, "measures")
    assert f"Batch `{SQL}` at `shop/orders.py:88`: load the rows in one query" in measures
    assert "12 times per request" in measures
    assert "add an index or rewrite it" not in measures


def test_a_failed_rollback_and_a_failed_recovery_are_said(store: SqlStore) -> None:
    iid = seed(store, resolved=False)
    failed = {**ROLLBACK, "outcome": "failed", "exit_code": 3}
    service.record_action(store, iid, "rollback failed", at=T0 + 150, data=failed)
    check = {
        "action": "recovery_check",
        "outcome": "not_recovered",
        "trigger": "auto",
        "figures": {"mean_ms": 55.5},
    }
    service.record_action(store, iid, "still slow", at=T0 + 200, data=check)
    done = render_postmortem(store, iid, now=T0 + 600)
    measures = section(done.text, "measures")
    assert "Fix the rollback: the one at 16:02:30 failed with exit code 3 (`./deploy.sh v1`)" in (
        measures
    )
    assert "The rollback did not help: the recovery check at 16:03:20" in measures
    assert "(mean_ms 55.5)" in measures
    summary = section(done.text, "summary")
    assert "ongoing: not resolved; 10m 00s so far" in summary


def test_an_impact_without_request_data_is_unknown_not_zero(store: SqlStore) -> None:
    """No middleware (the pgbench trial): "0.0% of users affected (0 of 0)" read as no harm."""
    iid = seed(store)
    service.refresh_impact(store, iid, now=T0 + 9000)  # the store holds no request windows
    summary = section(render_postmortem(store, iid, now=NOW).text, "summary")
    assert "unknown: no request data from the middleware for this period" in summary
    assert "0 of 0" not in summary and "0.0%" not in summary


def test_a_query_new_with_the_deploy_is_called_new(store: SqlStore) -> None:
    start_deploy(store, "v2", deploy_id="d2", at=T0)
    store.write_windows([window(FP, T0 + 10 * k, 30, 40.0) for k in range(1, 7)])
    found = Detection("new_fingerprint", T0 + 70, 0.95, "a new costly query", FP, SQL)
    culprit = Culprit(FP, SQL, 120.0, "d2", (SITE,), (), ("new_fingerprint",))
    iid = service.open_incident(store, [found], [culprit], None, None, "d2", T0 + 71).id
    done = render_postmortem(store, iid, now=T0 + 300)
    assert "a query new with deploy d2 (version v2) at 40.0 ms per call" in section(
        done.text, "summary"
    )
    assert "no calls in the 30m 00s before it" in section(done.text, "root-cause")
    measures = section(done.text, "measures")
    assert "it is new with deploy d2 (version v2) at 40.0 ms per call" in measures
    # Its first window (16:00:10, 30 calls at 40 ms: 120 ms/s) closed 50 s before detection.
    assert "first ran in the window starting 16:00:10 (30 calls, 40.0 ms per call, 120 ms" in (
        measures
    )
    assert "detection came 50s after that window closed" in measures
    assert "`Policy(min_after_windows=1, new_fingerprint_min_calls=30)` would have fired" in (
        measures
    )
    # No rollback and nothing mitigated it: the measures say so.
    assert "No rollback is recorded and nothing mitigated it" in measures


def test_an_unknown_incident_is_not_found(store: SqlStore) -> None:
    seed(store)
    with pytest.raises(NotFound, match="no incident QW-20990101-1"):
        render_postmortem(store, "QW-20990101-1")


# -- consistency ----------------------------------------------------------------------------------


def test_impossible_timelines_are_warned_about_in_the_document_too(store: SqlStore) -> None:
    # Detected before the deploy started, and a note at 15:45, before the outage began at 16:00:
    # the report's own "detected at 11:45 PM" against "the outage occurred from 12:00 PM".
    iid = seed(store, detected_at=T0 - 30, note_at=T0 - 900)
    done = render_postmortem(store, iid, now=NOW)
    assert (
        "detection (2025-11-24 15:59:30 UTC) is before the harm began: deploy d2 started at "
        "2025-11-24 16:00:00 UTC"
    ) in done.warnings
    assert (
        "timeline #4 (note, 2025-11-24 15:45:00 UTC) is before the incident began: deploy d2 "
        "started at 2025-11-24 16:00:00 UTC"
    ) in done.warnings
    assert len(done.warnings) == 2, done.warnings
    note = section(done.text, "consistency")
    assert "# Consistency warnings" in note
    for warning in done.warnings:
        assert warning in note


def test_events_in_the_future_and_impossible_impact_are_warned_about(store: SqlStore) -> None:
    iid = seed(store, resolved=False)
    service.add_note(store, iid, "from a skewed clock", at=T0 + 5000)

    def impossible(incident: Incident) -> list[TimelineEvent]:
        incident.impact = Impact(100, 120, 10, 12, 1000.0)
        return []

    update_incident(store, iid, impossible)
    warnings = render_postmortem(store, iid, now=T0 + 1000).warnings
    assert any("timeline #7 (note" in w and "is in the future" in w for w in warnings), warnings
    assert "impact: 12 affected users of only 10 users" in warnings
    assert "impact: 120 failed requests of only 100 requests" in warnings


# -- edits ----------------------------------------------------------------------------------------


def test_a_persons_edit_survives_rendering_again_and_unedited_sections_refresh(
    store: SqlStore, tmp_path: Path
) -> None:
    iid = seed(store, resolved=False)
    out = tmp_path / "postmortem.md"
    first = write_postmortem(store, iid, out, now=T0 + 600)
    assert first.kept_sections == []
    text = out.read_text()
    assert "not resolved yet" in section(text, "root-cause")
    # A person rewrites the summary's root cause and adds a paragraph of their own.
    edited = text.replace(
        "**Root cause:**", "**Root cause:** Missing index on orders.user_id, says Carol.", 1
    )
    edited = edited.replace(
        "<!-- querywatch:section id=timeline",
        "Lessons from the meeting: page the DBA first.\n\n<!-- querywatch:section id=timeline",
    )
    assert edited != text
    out.write_text(edited)
    service.resolve(store, iid, by="alice", note="index added", at=T0 + 9000)

    again = write_postmortem(store, iid, out, now=NOW)
    text2 = out.read_text()
    assert again.kept_sections == ["Issue Summary"]
    assert again.kept_additions == ["your text after Issue Summary"]
    # The person's summary is kept as they left it (still "ongoing": they own it now)…
    assert "Missing index on orders.user_id, says Carol." in section(text2, "summary")
    assert "ongoing" in section(text2, "summary")
    # …their paragraph stays where they put it…
    assert text2.index("Lessons from the meeting") < text2.index("id=timeline")
    assert text2.index("Lessons from the meeting") > text2.index("id=summary")
    # …and the sections nobody touched now say it was resolved.
    assert "18:30:00 — resolved: index added (by alice)" in section(text2, "root-cause")
    assert "to resolve: 2h 30m" in section(text2, "timeline")
    # Rendering a third time keeps the edit again, and changes nothing else.
    third = write_postmortem(store, iid, out, now=NOW)
    assert third.kept_sections == ["Issue Summary"]
    assert out.read_text() == text2
    # Untouched sections carry the hash of their text; the edited one does not match its hash.
    for part in parse(text2):
        if hasattr(part, "hash"):
            matches = digest(part.content) == part.hash  # type: ignore[union-attr]
            assert matches == (part.id != "summary")  # type: ignore[union-attr]


def test_an_html_edit_is_kept_and_content_is_escaped(store: SqlStore, tmp_path: Path) -> None:
    iid = seed(store)
    service.add_note(store, iid, "<script>alert('x')</script> in the logs?", by="eve", at=T0 + 100)
    out = tmp_path / "postmortem.html"
    write_postmortem(store, iid, out, fmt="html", now=NOW)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert html.escape("<script>alert('x')</script>") in page
    assert "<style>" in page and "http" not in page.split("</style>")[0].split("<style>")[1]
    page = page.replace("<h2>Timeline</h2>", "<h2>Timeline</h2>\n<p>Carol's own words.</p>")
    out.write_text(page)
    again = write_postmortem(store, iid, out, fmt="html", now=NOW)
    assert again.kept_sections == ["Timeline"]
    assert "<p>Carol's own words.</p>" in out.read_text()
    # Markdown escapes it too: no raw HTML reaches a Markdown renderer.
    md = render_postmortem(store, iid, now=NOW).text
    assert "<script>" not in md and "&lt;script>" in md


def test_a_file_that_is_not_this_postmortem_is_not_overwritten(
    store: SqlStore, tmp_path: Path
) -> None:
    iid = seed(store)
    notes = tmp_path / "notes.md"
    notes.write_text("# My own notes\n")
    with pytest.raises(PostmortemError, match="not written by querywatch postmortem"):
        write_postmortem(store, iid, notes, now=NOW)
    assert notes.read_text() == "# My own notes\n"
    other = tmp_path / "other.md"
    other.write_text(re.sub(r"incident=\S+", "incident=QW-20200101-1", _render(store, iid)))
    with pytest.raises(PostmortemError, match="postmortem of incident QW-20200101-1"):
        write_postmortem(store, iid, other, now=NOW)
    html_file = tmp_path / "pm.html"
    write_postmortem(store, iid, html_file, fmt="html", now=NOW)
    with pytest.raises(PostmortemError, match="HTML postmortem: render it with --format html"):
        write_postmortem(store, iid, html_file, fmt="md", now=NOW)
    with pytest.raises(PostmortemError, match=f"cannot write {tmp_path}: it is a directory"):
        write_postmortem(store, iid, tmp_path, now=NOW)


def _render(store: SqlStore, iid: str) -> str:
    return render_postmortem(store, iid, now=NOW).text


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_writes_warns_and_keeps_edits(store_path: Path, tmp_path: Path) -> None:
    with open_store(str(store_path)) as s:
        iid = seed(s, note_at=T0 - 900)
    out = tmp_path / "pm.md"
    env = {"QUERYWATCH_STORE": str(store_path)}
    done = run_cli("postmortem", iid, "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"postmortem of {iid} written to {out}"
    assert done.stderr.splitlines() == [
        "warning: timeline #4 (note, 2025-11-24 15:45:00 UTC) is before the incident began: "
        "deploy d2 started at 2025-11-24 16:00:00 UTC"
    ]
    out.write_text(out.read_text().replace("**Impact:**", "**Impact:** worse than it looks."))
    again = run_cli("postmortem", iid, "-o", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert "kept your edits to Issue Summary" in again.stderr.splitlines()
    assert "worse than it looks." in out.read_text()
    shown = run_cli("postmortem", iid, "--format", "html", env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("<!DOCTYPE html>")
    assert "<h2>Issue Summary</h2>" in shown.stdout


def test_cli_errors_are_one_line(store_path: Path) -> None:
    with open_store(str(store_path)) as s:
        iid = seed(s)
    env = {"QUERYWATCH_STORE": str(store_path)}
    assert_one_line_error(
        run_cli("postmortem", "QW-20990101-1", env=env), "no incident QW-20990101-1"
    )
    assert_one_line_error(
        run_cli("postmortem", iid, "-o", "/nonexistent-dir/x.md", env=env),
        "cannot write /nonexistent-dir/x.md",
        "does not exist",
    )
