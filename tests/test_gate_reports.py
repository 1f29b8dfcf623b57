"""The gate's reports: JUnit XML and SARIF 2.1.0 validated against their schemas, Markdown for a
pull request, the terminal, and `querywatch check --format ... -o ...`."""

from __future__ import annotations

import functools
import json
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from cli_helpers import run_cli
from gate_helpers import query_per_row, record_test
from querywatch.gate import CheckReport, render, run_check

SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"
CAST_QUERY = "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = ? || ''"
CAST_NORMALIZED = "select id from orders where cast(customer_id as text) = ? || ?"
CAST_RULE = "function-on-indexed-column"  # the plan's verdict (an error), at the call site


@functools.cache
def _template(directory: str) -> Path:
    """200,000 orders: large enough that a full scan in place of an index lookup is an error."""
    path = Path(directory) / "template.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)")
    conn.executemany(
        "INSERT INTO orders (customer_id) VALUES (?)", [(i % 5000,) for i in range(200_000)]
    )
    conn.execute("CREATE INDEX orders_customer ON orders (customer_id)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _template(str(tmp_path_factory.mktemp("shop")))


def make_db(path: Path, template: Path) -> Path:
    shutil.copyfile(template, path)
    return path


def n_plus_one(conn: sqlite3.Connection) -> None:
    query_per_row(conn, "SELECT id FROM orders WHERE customer_id = ?", 12)


def everything(conn: sqlite3.Connection) -> None:
    n_plus_one(conn)
    conn.execute(CAST_QUERY, ("7",)).fetchall()  # CAST LINE
    main = conn.execute("PRAGMA database_list").fetchone()[2]
    conn.execute("ATTACH DATABASE ? AS archive", (main,))  # not there when EXPLAIN runs
    conn.execute("SELECT id FROM archive.orders").fetchall()


CAST_LINE = next(
    i
    for i, line in enumerate(Path(__file__).read_text().splitlines(), 1)
    if line.endswith("# CAST LINE")
)


record = functools.partial(record_test, test_id="tests/test_shop.py::test_home")


@pytest.fixture
def report(tmp_path: Path, template: Path) -> CheckReport:
    """One new plan finding, one statement EXPLAIN rejects, one N+1 the baseline accepts."""
    db = make_db(tmp_path / "shop.db", template)
    baseline = tmp_path / "querywatch.baseline.json"
    run_check(record(db, n_plus_one), baseline_path=baseline, update_baseline=True)
    result = run_check(record(db, everything), baseline_path=baseline)
    assert [f.rule for f in result.new] == [CAST_RULE]
    assert [f.rule for f in result.unchecked] == ["explain-failed"]
    assert [f.rule for f in result.accepted] == ["n-plus-one"]
    return result


def test_junit_is_valid_and_fails_the_new_and_unchecked(report: CheckReport) -> None:
    text = render(report, "junit")
    xmlschema.XMLSchema(SCHEMAS / "junit-10.xsd").validate(text)
    root = ET.fromstring(text)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    failures = {f.get("type"): f for f in root.iter("failure")}
    assert set(failures) == {f"new:{CAST_RULE}", "unchecked:explain-failed"}
    cast = failures[f"new:{CAST_RULE}"].text or ""
    assert f"call site: tests/test_gate_reports.py:{CAST_LINE} in everything" in cast
    assert "fix: " in cast and CAST_NORMALIZED in cast
    accepted = [c for c in root.iter("testcase") if c.find("system-out") is not None]
    assert len(accepted) == 1 and "n-plus-one" in (accepted[0].findtext("system-out") or "")


def test_junit_of_a_clean_report_is_valid(tmp_path: Path, template: Path) -> None:
    db = make_db(tmp_path / "shop.db", template)
    clean = run_check(
        record(db, lambda c: c.execute("SELECT id FROM orders WHERE customer_id = 1").fetchall()),
        baseline_path=tmp_path / "b.json",
    )
    text = render(clean, "junit")
    xmlschema.XMLSchema(SCHEMAS / "junit-10.xsd").validate(text)
    assert ET.fromstring(text).find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def sarif_validator() -> Any:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_sarif_is_valid_2_1_0_with_annotations_at_the_call_site(report: CheckReport) -> None:
    log = json.loads(render(report, "sarif"))
    sarif_validator().validate(log)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [CAST_RULE, "explain-failed", "n-plus-one"]
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    cast = by_rule[CAST_RULE]
    # The level is the severity (function-on-indexed-column is an error), as the gate judges.
    assert cast["level"] == "error" and cast["baselineState"] == "new"
    assert by_rule["explain-failed"]["level"] == "warning"
    [loc] = cast["locations"]
    assert loc["physicalLocation"]["artifactLocation"] == {
        "uri": "tests/test_gate_reports.py",
        "uriBaseId": "%SRCROOT%",
    }
    assert loc["physicalLocation"]["region"] == {"startLine": CAST_LINE}
    assert CAST_NORMALIZED in cast["message"]["text"]
    accepted = by_rule["n-plus-one"]
    assert accepted["baselineState"] == "unchanged"
    assert accepted["suppressions"][0]["kind"] == "external"
    assert accepted["locations"][0]["physicalLocation"]["region"]["startLine"] > 0


def test_sarif_schema_rejects_a_broken_log(report: CheckReport) -> None:
    """The validator really checks: a result without a message is not SARIF."""
    log = json.loads(render(report, "sarif"))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator().validate(log)


def test_markdown_table_names_query_site_rule_and_fix(report: CheckReport) -> None:
    text = render(report, "markdown")
    lines = text.splitlines()
    assert lines[0].startswith("## ❌ querywatch check failed: 1 new finding")
    assert "| | Query | Call site | Rule | Fix |" in lines
    rows = [ln for ln in lines if ln.startswith("| new") or ln.startswith("| not checked")]
    assert len(rows) == 2
    for row in rows:  # the query's own "||" must not break the table
        assert len(re.findall(r"(?<!\\)\|", row)) == 6, row
    cast = next(r for r in rows if CAST_RULE in r)
    assert CAST_NORMALIZED.replace("|", "\\|") in cast
    assert f"`tests/test_gate_reports.py:{CAST_LINE} in everything`" in cast


def test_terminal_report(report: CheckReport) -> None:
    text = render(report, "terminal", width=100)
    assert "querywatch check failed: 1 new finding, 1 statement could not be checked" in text
    assert f"{CAST_RULE} (error) at tests/test_gate_reports.py:{CAST_LINE}" in text
    assert "fix: " in text and "no such table: archive.orders" in text


def test_check_writes_each_format_to_its_file(report: CheckReport, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    run_file = tmp_path / "run.json"
    record(db, everything).save(run_file)
    baseline = str(tmp_path / "querywatch.baseline.json")
    sarif_file, junit_file = tmp_path / "out" / "q.sarif", tmp_path / "out" / "q.xml"
    result = run_cli(
        "check", "--run", str(run_file), "--baseline", baseline,
        "--format", "sarif", "-o", str(sarif_file),
        "--format", "junit", "-o", str(junit_file),
        "--format", "markdown",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("## ❌ querywatch check failed")
    sarif_validator().validate(json.loads(sarif_file.read_text()))
    xmlschema.XMLSchema(SCHEMAS / "junit-10.xsd").validate(junit_file.read_text())
    only_files = run_cli(
        "check", "--run", str(run_file), "--baseline", baseline, "--format", "sarif", "-o",
        str(sarif_file),
    )  # fmt: skip
    assert only_files.returncode == 1
    assert "querywatch check failed" in only_files.stdout  # the terminal report still shows
    too_many = run_cli("check", "--run", str(run_file), "-o", "a", "-o", "b")
    assert too_many.returncode == 2 and "one -o per --format" in too_many.stderr


def read_every_table(conn: sqlite3.Connection) -> None:
    for table in ("orders", "a", "b", "c"):
        conn.execute(f"SELECT * FROM {table}").fetchall()  # one row API, four texts


def test_notes_at_one_call_site_are_one_block_on_the_terminal(
    tmp_path: Path, template: Path
) -> None:
    """A library whose row API reads SELECT * for every table gives one note per call site on
    the terminal (with a count), not one per table; the machine formats keep every finding."""
    db = make_db(tmp_path / "shop.db", template)
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE c (x);")
    conn.close()
    result = run_check(record(db, read_every_table), baseline_path=tmp_path / "b.json")
    assert [f.rule for f in result.below] == ["select-star"] * 4
    text = render(result, "terminal", width=200)
    assert text.count("select-star (info) at") == 1
    assert "and 3 other queries there" in text
    sarif = json.loads(render(result, "sarif"))
    assert len(sarif["runs"][0]["results"]) == 4
