"""The baseline file: round trip, regressions against it, fixed items, and bad files."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from gate_helpers import query_per_row, record_test
from querywatch.gate import GateBaseline, GateInputError, run_check

LOOKUP = "SELECT id, total_cents FROM orders WHERE customer_id = ?"


def make_db(path: Path, rows: int = 2000) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
        " total_cents INTEGER NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)",
        [(i % 100, i) for i in range(rows)],
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    conn.close()
    return path


def lookups(n: int) -> Callable[[sqlite3.Connection], None]:
    def body(conn: sqlite3.Connection) -> None:
        query_per_row(conn, LOOKUP, n)

    return body


record = functools.partial(record_test, test_id="tests/test_shop.py::test_page")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "shop.db")


def test_round_trip_accepts_everything_and_is_stable(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "querywatch.baseline.json"
    run = record(db, lookups(12))
    first = run_check(run, baseline_path=path)
    assert [f.rule for f in first.new] == ["n-plus-one"] and first.exit_code == 1
    assert not path.exists()

    updated = run_check(run, baseline_path=path, update_baseline=True)
    assert updated.baseline_updated and updated.exit_code == 0
    text = path.read_text()
    data = json.loads(text)
    [entry] = data["fingerprints"].values()
    assert entry == {
        "normalized": "select id, total_cents from orders where customer_id = ?",
        "dialect": "sqlite",
        "plan_shape": entry["plan_shape"],
        "access": {"orders": "index"},
        "cost_class": 1,
        "calls_per_test": 12,
        "accepted": ["n-plus-one"],
    }
    assert data["version"] == 1
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert GateBaseline.load(path).dumps() == text  # load -> save is byte for byte the same

    again = run_check(run, baseline_path=path)
    assert again.new == [] and again.regressions == [] and again.unchecked == []
    assert [f.rule for f in again.accepted] == ["n-plus-one"]
    assert again.exit_code == 0
    run_check(run, baseline_path=path, update_baseline=True)
    assert path.read_text() == text  # an unchanged run rewrites an identical file


def test_a_dropped_index_is_a_plan_and_cost_regression(tmp_path: Path) -> None:
    db = make_db(tmp_path / "big.db", rows=20_000)  # a full scan now costs ~20,000
    path = tmp_path / "b.json"
    run_check(record(db, lookups(1)), baseline_path=path, update_baseline=True)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX orders_customer")
    report = run_check(record(db, lookups(1)), baseline_path=path)
    rules = sorted(f.rule for f in report.regressions)
    assert rules == ["cost-regression", "plan-regression"]
    plan = next(f for f in report.regressions if f.rule == "plan-regression")
    assert "orders: index -> seq" in plan.message
    assert plan.location is not None and plan.location.path == "tests/gate_helpers.py"
    assert report.exit_code == 1


def test_a_plan_change_too_cheap_to_matter_is_not_a_regression(db: Path, tmp_path: Path) -> None:
    """2,000 rows: a full scan instead of the index costs under REGRESSION_MIN_COST, as tiny
    test tables flip between an index and a full scan with their statistics."""
    path = tmp_path / "b.json"
    run_check(record(db, lookups(1)), baseline_path=path, update_baseline=True)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX orders_customer")
    report = run_check(record(db, lookups(1)), baseline_path=path)
    [q] = report.queries
    assert q.signature is not None and q.signature.access == {"orders": "seq"}
    assert report.regressions == [] and report.exit_code == 0


def test_more_calls_than_the_baseline_accepted_is_a_regression(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    run_check(record(db, lookups(12)), baseline_path=path, update_baseline=True)
    same = run_check(record(db, lookups(12)), baseline_path=path)
    assert same.exit_code == 0
    worse = run_check(record(db, lookups(30)), baseline_path=path)
    [reg] = worse.regressions
    assert reg.rule == "calls-regression"
    assert reg.evidence == {"before": 12, "after": 30, "test": "tests/test_shop.py::test_page"}
    assert worse.exit_code == 1


def test_a_fixed_n_plus_one_is_listed_as_fixed(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    run_check(record(db, lookups(12)), baseline_path=path, update_baseline=True)
    report = run_check(record(db, lookups(2)), baseline_path=path)
    assert [(x.rule, x.normalized) for x in report.fixed] == [
        ("n-plus-one", "select id, total_cents from orders where customer_id = ?")
    ]
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"version": 1, "fingerprints": {', "not valid JSON"),
        ('{"version": 7, "fingerprints": {}}', "baseline version 7 is not supported"),
        ('{"fingerprints": {}}', "not a querywatch baseline"),
        ('{"version": 1, "fingerprints": {"abc": {"dialect": "sqlite"}}}', "missing field"),
        ('{"version": 1, "fingerprints": []}', "damaged"),
    ],
)
def test_a_corrupt_baseline_is_one_line_and_exit_2(
    db: Path, tmp_path: Path, content: str, needle: str
) -> None:
    run_file = tmp_path / "run.json"
    record(db, lookups(1)).save(run_file)
    baseline = tmp_path / "querywatch.baseline.json"
    baseline.write_text(content)
    with pytest.raises(GateInputError, match=needle):
        GateBaseline.load(baseline)
    result = run_cli("check", "--run", str(run_file), "--baseline", str(baseline))
    assert result.returncode == 2
    assert_one_line_error(result, str(baseline), needle)
