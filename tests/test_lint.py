"""Static SQL lint: every rule fires on its shape and stays quiet on the fixed shape, in each
dialect, with inline suppression, in Python and .sql sources, and through `querywatch lint`."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from querywatch.errors import ConfigError
from querywatch.findings import Finding, Location
from querywatch.sql.lint import RULES, LintParseError, lint_sql, split_statements
from querywatch.sql.source_scan import LintPathError, scan, scan_paths
from test_fingerprint import load_golden


def rules_of(sql: str, dialect: str = "postgres") -> list[str]:
    return [f.rule for f in lint_sql(sql, dialect)]


# Each rule's bad and good shapes are golden cases: tests/fixtures/rules/<rule>/lint-*.sql,
# run by tests/test_lint_rules.py.


def test_messages_name_the_figure_and_carry_no_literal_values() -> None:
    (f,) = lint_sql("SELECT id FROM t ORDER BY id LIMIT 10 OFFSET 25000")
    assert "25000" in f.message and f.evidence["offset"] == 25000
    (f,) = lint_sql("SELECT id FROM users WHERE email LIKE '%secret@example.com'")
    assert "secret" not in f.message + f.fix + json.dumps(f.evidence) + str(f.sql)
    assert f.sql == "select id from users where email like ?"
    (f,) = lint_sql("SELECT id FROM users WHERE lower(email) = 'bob@example.com'")
    assert "bob" not in f.message + f.fix + json.dumps(f.evidence) + str(f.sql)
    assert "lower(email)" in f.message and f.evidence["column"] == "email"


def test_cast_to_text_says_when_it_is_only_a_relabel() -> None:
    """PostgreSQL: varchar -> text is a relabel the planner strips (the index still serves), but
    the text cannot show the column's type: compared with a value, the message says when the
    finding holds; compared with a pattern it never is the problem and is not reported."""
    (f,) = lint_sql("SELECT id FROM orders WHERE customer_id::text = $1")
    assert "unless customer_id is already varchar or text" in f.message
    assert f.evidence["relabel_if"] == "varchar or text"
    assert lint_sql("SELECT id FROM t WHERE path::text LIKE 'ab%'") == []
    (f,) = lint_sql("SELECT id FROM t WHERE created_at::date = $1")
    assert "unless" not in f.message and f.evidence["function"] == "cast"
    # MySQL and SQLite have no relabels: a cast is a conversion there.
    assert rules_of("SELECT id FROM t WHERE CAST(path AS TEXT) LIKE 'ab%'", "sqlite") == [
        "cast-on-column-in-where"
    ]


def test_not_in_subquery_says_the_null_hazard_is_conditional() -> None:
    """Only a subquery column that can be NULL empties NOT IN, and the text cannot know: the
    message says "if", and names the column; a subquery that filters its NULLs has no hazard."""
    sql = "SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM orders)"
    (f,) = lint_sql(sql)
    assert "if user_id can be NULL, no row passes" in f.message and "anti-join" in f.message
    assert f.evidence["null_hazard"] is True
    (f,) = lint_sql(sql, "sqlite")
    assert "if user_id can be NULL" in f.message and "anti-join" not in f.message
    filtered = (
        "SELECT id FROM users WHERE id NOT IN "
        "(SELECT user_id FROM orders WHERE user_id IS NOT NULL)"
    )
    (f,) = lint_sql(filtered)
    assert "NULL" not in f.message and f.evidence["null_hazard"] is False
    assert lint_sql(filtered, "sqlite") == []


def test_fix_is_dialect_aware() -> None:
    sql = "SELECT id FROM products WHERE name LIKE '%phone'"
    fixes = {d: lint_sql(sql, d)[0].fix for d in ("postgres", "mysql", "sqlite")}
    assert "pg_trgm" in fixes["postgres"]
    assert "FULLTEXT" in fixes["mysql"]
    assert "FTS5" in fixes["sqlite"]


# -- dialects and placeholders -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("sqlite", "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = ?"),
        ("sqlite", "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = ?1"),
        ("sqlite", "SELECT id FROM orders WHERE CAST(customer_id AS TEXT) = :customer"),
        ("postgres", "SELECT id FROM orders WHERE customer_id::text = $1"),
        ("postgres", "SELECT id FROM orders WHERE customer_id::text = %s"),
        ("postgres", "SELECT id FROM orders WHERE customer_id::text = %(customer)s"),
        ("postgres", "SELECT id FROM orders WHERE customer_id::text = ?::text"),
        ("mysql", "SELECT `id` FROM `orders` WHERE CAST(`customer_id` AS CHAR) = ?"),
        ("mysql", "SELECT `id` FROM `orders` WHERE CAST(`customer_id` AS CHAR) = %s"),
    ],
)
def test_placeholders_of_every_dialect_parse(dialect: str, sql: str) -> None:
    assert rules_of(sql, dialect) == ["cast-on-column-in-where"]


def test_mysql_backticks_and_limit_offset_form() -> None:
    found = rules_of("SELECT `id` FROM `orders` ORDER BY RAND() LIMIT 5000, 20", "mysql")
    assert sorted(found) == ["deep-offset", "order-by-random"]
    # In MySQL "…" is a string: a leading wildcard in double quotes is still one.
    assert rules_of('SELECT `id` FROM `t` WHERE `name` LIKE "%x"', "mysql") == [
        "leading-wildcard-like"
    ]


def test_sqlite_comma_join_is_judged_but_written_cross_join_is_not() -> None:
    # SQLite's parser turns "a, b" into a CROSS JOIN: the text decides which one was written.
    assert rules_of("SELECT a.id FROM a, b", "sqlite") == ["implicit-cross-join"]
    assert rules_of("SELECT a.id FROM a CROSS JOIN b", "sqlite") == []
    assert rules_of("SELECT a.id FROM a, b WHERE a.id = b.a_id", "sqlite") == []


def test_every_normalized_fingerprint_text_parses() -> None:
    """Captured statements arrive normalized (`?` everywhere): lint must read all of them."""
    for dialect, _id, normalized, _sql in load_golden():
        assert "parse-error" not in rules_of(normalized, dialect), normalized


def test_rules_argument_limits_the_run() -> None:
    sql = "SELECT * FROM t ORDER BY random(); SELEC 1"
    assert [f.rule for f in lint_sql(sql, rules=["select-star"])] == ["select-star"]
    with pytest.raises(ConfigError, match="unknown lint rule"):
        lint_sql(sql, rules=["no-such-rule"])


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown SQL dialect 'oracle'"):
        lint_sql("SELECT 1", "oracle")
    assert rules_of("SELECT * FROM t", "postgresql") == ["select-star"]


# -- parse errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELEC 1", "unknown keyword 'SELEC'"),
        ("SELEC id FROM t", "not a SQL statement (unknown keyword 'SELEC')"),
        ("SELECT id FROM t WHERE", "incomplete WHERE"),
        ("SELECT id FROM t WHERE name = 'abc", "unterminated string"),
    ],
)
def test_unparsable_statement_is_a_clear_finding(sql: str, needle: str) -> None:
    (f,) = lint_sql(sql)
    assert f.rule == "parse-error" and f.severity == "info"
    assert f.message.startswith("cannot parse this statement as postgres SQL: ")
    assert needle in f.message
    assert "abc" not in f.message  # never a literal value
    with pytest.raises(LintParseError, match="cannot parse this statement"):
        lint_sql(sql, strict=True)


@pytest.mark.parametrize(
    "sql", ["DISCARD PLANS", "PRAGMA query_only = ON", "LISTEN jobs", "SET search_path TO app"]
)
def test_session_commands_are_accepted_even_from_another_dialect(sql: str) -> None:
    assert rules_of(sql, "postgres") == []


def test_one_broken_statement_does_not_hide_the_others() -> None:
    found = rules_of("SELECT * FROM t; SELEC 1; DELETE FROM t")
    assert found == ["select-star", "parse-error", "update-or-delete-without-where"]


# -- statements and inline suppression in SQL ------------------------------------------------------
def test_split_keeps_semicolons_inside_strings_comments_and_dollar_quotes() -> None:
    text = (
        "SELECT ';' AS a; -- one; two\n"
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        '/* ; */ SELECT "x;y" FROM t;\n'
        "-- only a comment;\n"
    )
    parts = split_statements(text, "postgres")
    assert [p.line for p in parts] == [1, 2, 3]
    assert parts[1].text.startswith("CREATE FUNCTION") and "$$ SELECT 1; $$" in parts[1].text


def test_trigger_body_is_one_statement_and_not_a_parse_error() -> None:
    sql = (
        "CREATE TRIGGER audit AFTER INSERT ON orders BEGIN\n"
        "  UPDATE stats SET n = CASE WHEN n IS NULL THEN 1 ELSE n + 1 END;\n"
        "  INSERT INTO log(id) VALUES (new.id);\n"
        "END;\n"
        "SELECT * FROM orders;\n"
    )
    assert [p.line for p in split_statements(sql, "sqlite")] == [1, 5]
    assert rules_of(sql, "sqlite") == ["select-star"]


def test_sql_comment_suppresses_named_rules_for_its_statement_only() -> None:
    sql = (
        "-- querywatch: ignore[select-star]\n"
        "SELECT * FROM t ORDER BY random();\n"
        "SELECT * FROM u; -- querywatch: ignore[select-star, order-by-random]\n"
        "SELECT * FROM v /* querywatch: ignore */ ORDER BY random();\n"
        "SELECT * FROM w"
    )
    findings = lint_sql(sql, location=Location("q.sql", 1))
    got = [(f.rule, f.location.line if f.location else None) for f in findings]
    assert got == [("order-by-random", 2), ("select-star", 5)]


def test_parse_error_can_be_suppressed() -> None:
    assert rules_of("-- querywatch: ignore[parse-error]\nVACUUMM t") == []


def test_findings_point_at_the_offending_line_of_the_text() -> None:
    sql = "SELECT id\nFROM users\nWHERE lower(email) = $1\n  AND name LIKE '%x'"
    where = {f.rule: f.location for f in lint_sql(sql, location=Location("a.sql", 10, 5))}
    assert where["cast-on-column-in-where"] == Location("a.sql", 12, 7)
    assert where["leading-wildcard-like"] == Location("a.sql", 13, 7)
    flat = lint_sql(sql, location=Location("a.py", 3, 9), map_positions=False)
    assert {f.location for f in flat} == {Location("a.py", 3, 9)}


# -- source scan -----------------------------------------------------------------------------------
APP = '''\
import sqlite3

from sqlalchemy import text

BY_EMAIL = "SELECT id FROM users WHERE lower(email) = ?"


def search(cur, term):
    cur.execute("SELECT id FROM products WHERE name LIKE '%phone'")
    cur.execute(BY_EMAIL, (term,))
    cur.execute(
        """
        SELECT id
        FROM products
        ORDER BY random()
        """
    )
    cur.execute("DELETE FROM carts")  # querywatch: ignore[update-or-delete-without-where]
    cur.execute(
        "DELETE FROM wishlists"  # querywatch: ignore
    )
    cur.execute(f"SELECT id FROM orders WHERE total > {term} OFFSET 5000")
    cur.execute(f"SELECT id FROM {term} ORDER {term}")
    cur.execute("SELEC 1")
    text("hello world")
    print("SELECT * FROM not_sql_call")
    return text("SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM bans)")


class Repo:
    def wipe(self, db):
        sql = "UPDATE users SET active = false"
        return db.execute(sql)
'''

SCHEMA = """\
-- reports
SELECT * FROM orders; -- querywatch: ignore[select-star]
SELECT id
FROM orders
WHERE created_at::date = $1;
SELEC broken;
DELETE FROM orders
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "repo.py").write_text(APP, encoding="utf-8")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "reports.sql").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / ".venv").mkdir()  # never walked into
    (tmp_path / ".venv" / "lib.py").write_text('cur.execute("DELETE FROM x")\n')
    (tmp_path / "notes.txt").write_text("DELETE FROM x")  # not .py/.sql: skipped in a walk
    return tmp_path


def test_scan_reports_each_finding_at_path_line_and_function(project: Path) -> None:
    result = scan([project / "app", project / "sql"])
    repo, sql = str(project / "app" / "repo.py"), str(project / "sql" / "reports.sql")
    got = [
        (f.location.path, f.location.line, f.location.column, f.location.function, f.rule)
        for f in result.findings
        if f.location
    ]
    assert got == [
        (repo, 5, 40, None, "cast-on-column-in-where"),
        (repo, 9, 48, "search", "leading-wildcard-like"),
        (repo, 15, 18, "search", "order-by-random"),
        (repo, 22, 17, "search", "deep-offset"),
        (repo, 24, 18, "search", "parse-error"),
        (repo, 27, 45, "search", "not-in-subquery"),
        (repo, 32, 23, "Repo.wipe", "update-or-delete-without-where"),
        (sql, 5, 7, None, "cast-on-column-in-where"),
        (sql, 6, 1, None, "parse-error"),
        (sql, 7, 13, None, "update-or-delete-without-where"),
    ]
    assert result.files == 2
    assert len(result.findings) == len(got)
    offset = next(f for f in result.findings if f.rule == "deep-offset")
    assert offset.sql == "select id from orders where total > {term} offset ?"


def test_scan_paths_walks_directories_but_skips_hidden_and_other_files(project: Path) -> None:
    findings = scan_paths([project])
    paths = {Path(f.location.path).name for f in findings if f.location}
    assert paths == {"repo.py", "reports.sql"}
    assert all(isinstance(f, Finding) and f.location for f in findings)


def test_constant_executed_twice_is_reported_once(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        textwrap.dedent(
            """\
            Q = "SELECT id FROM t ORDER BY random()"
            def a(c):
                c.execute(Q)
            def b(c):
                c.executemany(Q, [])
            """
        )
    )
    (f,) = scan_paths([src])
    assert (f.rule, f.location) == ("order-by-random", Location(str(src), 1, 32))


def test_suppression_on_the_constant_line(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        'Q = "SELECT id FROM t ORDER BY random()"  # querywatch: ignore[order-by-random]\n'
        'R = "SELECT id FROM t ORDER BY random()"\n'
        "def a(c):\n"
        "    c.execute(Q)\n"
        "    c.execute(R)\n"
    )
    assert [(f.rule, f.location.line if f.location else 0) for f in scan_paths([src])] == [
        ("order-by-random", 2)
    ]


def test_python_syntax_error_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n    pass\n")
    (f,) = scan_paths([bad])
    assert f.rule == "parse-error" and f.location and f.location.line == 1
    assert "Python" in f.message


def test_missing_path_cannot_be_checked(tmp_path: Path) -> None:
    with pytest.raises(LintPathError, match="no such file"):
        scan_paths([tmp_path / "nope"])
    link = tmp_path / "dangling.sql"
    os.symlink(tmp_path / "gone.sql", link)
    with pytest.raises(LintPathError):
        scan_paths([link])


def test_file_named_explicitly_is_linted_whatever_its_suffix(project: Path) -> None:
    (f,) = scan_paths([project / "notes.txt"])
    assert f.rule == "update-or-delete-without-where"


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_findings_with_path_line_fail_only_when_tables_are_assumed_large(
    project: Path,
) -> None:
    result = run_cli("lint", "app", "sql", cwd=project, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr  # every finding here depends on the sizes
    out = result.stdout
    assert "app/repo.py:9:48: info leading-wildcard-like" in out
    assert "sql/reports.sql:7:13: info update-or-delete-without-where" in out
    assert "fix: " in out
    assert "10 findings (10 info) in" in out
    assert "8 depend on table sizes and indexes, which lint cannot see" in out
    assert result.stderr == ""
    large = run_cli("lint", "app", "sql", "--assume-large", cwd=project, env={"COLUMNS": "300"})
    assert large.returncode == 1, large.stderr  # the two whole-table changes, the warnings
    assert "app/repo.py:9:48: warning leading-wildcard-like" in large.stdout
    assert "sql/reports.sql:7:13: error update-or-delete-without-where" in large.stdout


def test_cli_size_dependent_findings_are_info_unless_tables_are_assumed_large(
    tmp_path: Path,
) -> None:
    """Lint sees no database: a finding whose cost depends on the table's size and indexes
    does not fail the run; --assume-large gives it the rule's own severity."""
    sql = "SELECT id FROM products WHERE name LIKE '%phone' ORDER BY random() LIMIT 5"
    plain = run_cli("lint", "--sql", sql, "--json")
    assert plain.returncode == 0, plain.stderr
    data = json.loads(plain.stdout)["data"]
    assert data["assume_large"] is False
    assert data["counts"] == {"error": 0, "warning": 0, "info": 2}
    assert all(f["evidence"]["needs_plan"] is True for f in data["findings"])
    large = run_cli("lint", "--sql", sql, "--assume-large", "--json")
    assert large.returncode == 1
    assert json.loads(large.stdout)["data"]["counts"] == {"error": 0, "warning": 2, "info": 0}
    # A change of every row is nothing on a small table: an error only where tables are large.
    wipe = run_cli("lint", "--sql", "DELETE FROM carts")
    assert wipe.returncode == 0 and "info update-or-delete-without-where" in wipe.stdout
    wipe = run_cli("lint", "--sql", "DELETE FROM carts", "--assume-large")
    assert wipe.returncode == 1 and "error update-or-delete-without-where" in wipe.stdout


def test_cli_json_shape(project: Path) -> None:
    result = run_cli("lint", "sql", "--json", "--assume-large", cwd=project)
    assert result.returncode == 1
    data = json.loads(result.stdout)["data"]
    assert data["dialect"] == "postgres" and data["assume_large"] is True
    assert data["files"] == 1 and data["statements"] == 4
    assert data["counts"] == {"error": 1, "warning": 1, "info": 1}
    assert data["fragments"] == 0
    first = data["findings"][0]
    assert set(first) == {
        "rule", "severity", "message", "fix", "evidence", "fingerprint", "sql", "location"
    }  # fmt: skip
    assert first["location"] == {
        "path": "sql/reports.sql",
        "line": 5,
        "column": 7,
        "function": None,
    }


def test_cli_clean_exit_0_and_info_does_not_fail(tmp_path: Path) -> None:
    clean = run_cli("lint", "--sql", "SELECT id FROM t WHERE id = $1")
    assert clean.returncode == 0, clean.stderr
    assert "no findings in 1 statement" in clean.stdout
    info = run_cli("lint", "--sql", "SELECT * FROM t WHERE id = ?", "--dialect", "sqlite")
    assert info.returncode == 0 and "info select-star" in info.stdout
    ignored = run_cli(
        "lint", "--sql", "DELETE FROM t", "--ignore", "update-or-delete-without-where"
    )
    assert ignored.returncode == 0


def test_cli_cannot_check_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = run_cli("lint", "--sql", "SELEC 1")
    assert broken.returncode == 2
    assert_one_line_error(broken, "cannot parse this statement as postgres SQL", "SELEC")
    missing = run_cli("lint", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert_one_line_error(missing, "no such file or directory")
    nothing = run_cli("lint")
    assert nothing.returncode == 2
    assert_one_line_error(nothing, "give a PATH")


# -- the documented examples are true -------------------------------------------------------------
def _documented_examples() -> list[tuple[str, str, str]]:
    """(rule, "Bad"/"Good", statement) for every full statement in docs/lint.md's rule sections."""
    doc = (Path(__file__).parent.parent / "docs" / "lint.md").read_text(encoding="utf-8")
    out: list[tuple[str, str, str]] = []
    for section in doc.split("\n### `")[1:]:
        rule = section.split("`", 1)[0]
        bullets = section.split("\n- **")
        for bullet in bullets:
            kind = bullet.split("**", 1)[0]
            if kind not in ("Bad", "Good"):
                continue
            text = " ".join(bullet.split())
            for span in re.findall(r"`([^`]+)`", text):
                if re.match(r"(SELECT|UPDATE|DELETE|INSERT|WITH|SELEC) ", span):
                    out.append((rule, kind, span))
    return out


def test_documented_examples_do_what_the_docs_say() -> None:
    examples = _documented_examples()
    assert {r for r, _, _ in examples} == set(RULES)
    for rule, kind, sql in examples:
        found = rules_of(sql)
        assert (rule in found) == (kind == "Bad"), (rule, kind, sql, found)
