"""`querywatch digest` on real PostgreSQL logs: the suite's own server logs a known workload.

Two servers, one per logging style — ``log_min_duration_statement = 0`` with the default prefix,
and ``log_statement = 'all'`` + ``log_duration`` with a custom prefix and auto_explain — each
writing stderr, csvlog and jsonlog. The workload (tests/log_workload.py) runs plain, multi-line
and parameterized statements, a lock wait, a sort that spills to a temporary file and failing
statements; every count per fingerprint must come out exactly as it ran, in every format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run_cli
from log_workload import (
    DURATION_STYLE,
    INSERT,
    LOCKED,
    LOOKUP,
    MULTILINE,
    SLOW,
    SORTED,
    STATEMENT_STYLE,
    Workload,
    shared_logs,
)
from querywatch.logs.digest import Digest
from querywatch.logs.report import digest_json
from querywatch.logs.scan import FileReport, digest_files, plan_files
from querywatch.sql.fingerprint import fingerprint

STYLES = {"duration": DURATION_STYLE, "statement": STATEMENT_STYLE}


class Logs:
    def __init__(self, root: Path, style: str, workload: Workload) -> None:
        self.root, self.style, self.workload = root, style, workload

    def path(self, name: str = "pg.log") -> Path:
        return self.root / name


@pytest.fixture(scope="module", params=sorted(STYLES))
def logs(request: pytest.FixtureRequest) -> Logs:
    root, done = shared_logs(request.param)
    return Logs(root, request.param, done)


def digest_of(
    *paths: Path, fmt: str = "auto", jobs: int = 1, piece: int = 1 << 25, **kw: Any
) -> tuple[Digest, list[FileReport]]:
    return digest_files(plan_files(list(paths), fmt), jobs=jobs, piece=piece, **kw)


def rows_by_id(digest: Digest, reports: list[FileReport], **kw: Any) -> dict[str, dict[str, Any]]:
    data = digest_json(digest, reports, **kw)
    return {r["fingerprint"]: r for r in data["fingerprints"]}


def fp(sql: str) -> str:
    return fingerprint(sql).id


def assert_workload(rows: dict[str, dict[str, Any]], done: Workload) -> None:
    """Every statement the workload ran, counted exactly; failures as errors, not calls."""
    for sql, calls in done.calls.items():
        row = rows[fp(sql)]
        assert row["calls"] == calls, (sql, row)
        assert row["timed_calls"] == calls, (sql, row)
        assert row["total_ms"] > 0
    for sql, errors in done.errors.items():
        row = rows[fp(sql)]
        assert (row["errors"], row["calls"]) == (errors, 0), row
        assert "no_such_table" in row["error_example"]
    locked = rows[fp(LOCKED)]
    assert locked["lock_waits"] == done.lock_waits == 1
    assert locked["lock_wait_ms"] > 100  # deadlock_timeout is 100 ms; it waited ~500 ms
    assert locked["max_ms"] >= locked["lock_wait_ms"]
    sorted_row = rows[fp(SORTED)]
    assert sorted_row["temp_files"] == done.temp_files == 1
    assert sorted_row["temp_bytes"] > 1_000_000


@pytest.mark.parametrize("name", ["pg.log", "pg.csv", "pg.json"])
def test_every_format_counts_the_workload_exactly(logs: Logs, name: str) -> None:
    digest, reports = digest_of(logs.path(name))
    assert (
        reports[0].format == {"pg.log": "pg-stderr", "pg.csv": "pg-csv", "pg.json": "pg-json"}[name]
    )
    assert reports[0].skipped.count == 0, reports[0].skipped.examples
    assert_workload(rows_by_id(digest, reports, limit=None), logs.workload)


def test_the_three_formats_agree_to_the_microsecond(logs: Logs) -> None:
    """stderr, csvlog and jsonlog carry the same durations: the same calls and total per
    fingerprint, whatever the format."""
    seen = []
    for name in ("pg.log", "pg.csv", "pg.json"):
        rows = rows_by_id(*digest_of(logs.path(name)), limit=None)
        seen.append(
            {k: (r["calls"], r["total_ms"], r["errors"], r["max_ms"]) for k, r in rows.items()}
        )
    assert seen[0] == seen[1] == seen[2]


def test_the_prefix_is_detected_with_its_fields(logs: Logs) -> None:
    digest, reports = digest_of(logs.path())
    expected = (
        "%m [%p] " if logs.style == "duration" else STATEMENT_STYLE["log_line_prefix"].strip("'")
    )
    assert reports[0].prefix == expected
    rows = rows_by_id(digest, reports)
    first, last = digest.span
    assert first > 1.7e9 and last >= first  # times read (UTC), not zero
    sample = rows[fp(LOOKUP)]["sample"]
    assert sample["file"] == str(logs.path()) and sample["line"] > 1


def test_bind_parameters_are_redacted_unless_asked(logs: Logs) -> None:
    digest, reports = digest_of(logs.path())
    redacted = rows_by_id(digest, reports)[fp(LOOKUP)]["sample"]
    assert redacted["redacted"] and redacted["parameters"] == "$1 = ?"
    assert redacted["text"] == fingerprint(LOOKUP).normalized
    shown = rows_by_id(digest, reports, show_values=True)
    lookup = shown[fp(LOOKUP)]["sample"]
    assert lookup["parameters"].startswith("$1 = '") and lookup["text"] == LOOKUP.replace(
        "%s", "$1"
    )
    insert = shown[fp(INSERT)]["sample"]["parameters"]
    # a value spanning lines comes back as it was sent (PostgreSQL's tab after the newline removed)
    assert "with a newline'" in insert and "\nwith a newline" in insert and "\t" not in insert


def test_a_multiline_statement_is_one_statement_with_its_text(logs: Logs) -> None:
    digest, reports = digest_of(logs.path())
    row = rows_by_id(digest, reports, show_values=True)[fp(MULTILINE)]
    assert row["calls"] == 7 and row["sample"]["text"] == MULTILINE


def test_auto_explain_plans_are_kept_as_plan_evidence(logs: Logs) -> None:
    digest, reports = digest_of(logs.path())
    rows = rows_by_id(digest, reports, show_values=True)
    slow = rows[fp(SLOW)]
    if logs.style == "duration":
        assert slow["plans"] == 0 and slow["plan"] is None
        return
    assert slow["calls"] == 1 and slow["plans"] == 1  # a plan is evidence, not another call
    assert slow["plan"]["duration_ms"] >= 50 and "Result" in slow["plan"]["text"]
    assert rows[fp(LOCKED)]["plans"] == 1 and "Index Scan" in rows[fp(LOCKED)]["plan"]["text"]
    hidden = rows_by_id(digest, reports)[fp(SLOW)]["plan"]
    assert hidden["text"] is None and hidden["redacted"]  # plans hold literal values


def test_the_cli_reports_the_workload(logs: Logs, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = run_cli("digest", str(logs.path()), "--json", "--limit", "100", "--html", str(html))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert_workload({r["fingerprint"]: r for r in data["fingerprints"]}, logs.workload)
    for row in data["fingerprints"]:
        assert {
            "fingerprint",
            "normalized",
            "calls",
            "total_ms",
            "mean_ms",
            "p95_ms",
            "rows",
            "first_seen",
            "last_seen",
        } <= set(row)
    page = html.read_text()
    assert (
        page.count("<svg") == 2
        and "<script" not in page
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert fingerprint(LOOKUP).normalized in page
    text = run_cli("digest", str(logs.path()), "--limit", "5")
    assert text.returncode == 0 and "statements" in text.stdout and "slowest samples" in text.stdout


@pytest.mark.parametrize("piece", [1500, 4096, 9000])
def test_parallel_pieces_count_what_one_process_counts(logs: Logs, piece: int) -> None:
    one = rows_by_id(*digest_of(logs.path()), limit=None)
    digest, reports = digest_of(logs.path(), jobs=2, piece=piece)  # pieces at message starts
    many = rows_by_id(digest, reports, limit=None)
    assert reports[0].lines == logs.path().read_bytes().count(b"\n")
    assert reports[0].skipped.count == 0
    # a statement whose duration line (log_duration) fell into the next piece is still timed
    for key in ("calls", "total_ms", "errors", "lock_waits", "temp_files"):
        assert {k: r[key] for k, r in many.items()} == {k: r[key] for k, r in one.items()}, key
