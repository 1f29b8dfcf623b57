"""Lint on what real code holds (issue 10): query-builder fragments, placeholders of every
driver, format holes, user-defined functions, long statements, advice that fits the dialect."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cli_helpers import run_cli
from querywatch.sql.lint import lint_sql
from querywatch.sql.source_scan import scan

BUILDER = """\
from psycopg import sql
from psycopg.sql import SQL, Composed, Identifier


def pieces(cur, table, cond, cols, ids):
    q = SQL("SELECT id FROM ") + Identifier(table)
    cur.execute(q)
    cur.execute(SQL('VALUES'))
    where = SQL("WHERE id = %s")
    more = " AND x = ?"
    cur.execute(SQL("SELECT id FROM {} WHERE id = %s").format(Identifier(table)), (1,))
    cur.execute("SELECT id FROM t " + cond)
    cur.execute("SELECT id FROM t WHERE " + cond + more)
    cur.execute("SELECT {} FROM t".format(", ".join(cols)))
    cur.execute(f"SELECT id FROM t WHERE id IN ({', '.join('?' * len(ids))})", ids)
    cur.execute(f"UPDATE {table} SET {cols}{cond}")
    cur.execute(f"DELETE FROM t {cond}")
    cur.execute(Composed([SQL("INSERT INTO "), Identifier(table), SQL(" VALUES (%s)")]))
    return NodeList([SQL('INSERT INTO'), Entity(table), SQL('VALUES'), EnclosedNodeList(ids)])


def wipe(cur, table):
    cur.execute(f"UPDATE {table} SET seen = 1")
    cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
"""


@pytest.fixture
def builder(tmp_path: Path) -> Path:
    path = tmp_path / "builder.py"
    path.write_text(BUILDER, encoding="utf-8")
    return path


@pytest.mark.parametrize("dialect", ["postgres", "sqlite", "mysql"])
def test_query_builder_fragments_are_skipped_and_counted_not_parse_errors(
    builder: Path, dialect: str
) -> None:
    result = scan([builder], dialect)
    assert [f for f in result.findings if f.rule == "parse-error"] == []
    assert result.fragments >= 6  # SQL('VALUES'), "WHERE id = %s", SQL('INSERT INTO')…
    # The whole statements the builder composes are still linted, holes and all.
    wiped = {(f.location.line, f.message) for f in result.findings if f.location}
    assert wiped == {
        (23, "UPDATE of {table} has no WHERE: it changes every row and locks the whole table"),
        (
            24,
            "DELETE of {sql.Identifier(table)} has no WHERE: it changes every row and locks "
            "the whole table",
        ),
    }


def test_summary_counts_skipped_fragments(builder: Path) -> None:
    out = run_cli("lint", str(builder), "--dialect", "sqlite", env={"COLUMNS": "300"})
    assert "fragments of statements skipped" in out.stdout.splitlines()[-1]
    assert "parse-error" not in out.stdout


@pytest.mark.parametrize(
    ("sql", "shown"),
    [
        ("UPDATE {table} SET a = 1", "UPDATE of {table} has no WHERE"),
        ("DELETE FROM {}", "DELETE of {} has no WHERE"),
        ("SELECT id FROM t WHERE lower({col}) = %s AND lower(name) = ?", "lower(name)"),
    ],
)
def test_messages_show_the_source_text_never_internal_markers(sql: str, shown: str) -> None:
    (f,) = lint_sql(sql, "sqlite")
    assert shown in f.message
    text = f.message + f.fix + str(f.evidence) + str(f.sql)
    assert "qw_" not in text.lower() and "SENTINEL" not in text


def test_fstring_hole_is_shown_as_written_in_python(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text('def f(c, table):\n    c.execute(f"UPDATE {table} SET seen = 1")\n')
    (f,) = scan([src], "sqlite").findings
    assert f.message.startswith("UPDATE of {table} has no WHERE")
    assert f.sql == "update {table} set seen = ?"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM ",
        "SELECT id FROM t WHERE",
        "INSERT INTO",
    ],
)
def test_parse_error_messages_carry_no_internal_tokens(sql: str) -> None:
    (f,) = lint_sql(sql, "sqlite")
    assert f.rule == "parse-error" and "SENTINEL" not in f.message


@pytest.mark.parametrize("dialect", ["postgres", "sqlite", "mysql"])
@pytest.mark.parametrize("param", ["%s", "%(name)s", "?", "?1", ":name", "$1", "{}", "{name}"])
def test_placeholders_parse_in_every_dialect(dialect: str, param: str) -> None:
    sql = (
        f"SELECT id FROM orders WHERE lower(email) = {param} AND total > {param} "
        f"ORDER BY id LIMIT {param}"
    )
    assert [f.rule for f in lint_sql(sql, dialect)] == ["cast-on-column-in-where"]


def test_sqlite_at_name_parameter_parses() -> None:
    assert [f.rule for f in lint_sql("SELECT id FROM t WHERE lower(a) = @a", "sqlite")] == [
        "cast-on-column-in-where"
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_user_defined_function_named_convert_is_a_function(dialect: str) -> None:
    """sqlite-utils registers convert(); it is not MySQL's CONVERT(x USING …) or a CAST."""
    assert lint_sql("UPDATE items SET price = convert(price) WHERE id = ?", dialect) == []
    (f,) = lint_sql("SELECT id FROM items WHERE convert(price) = ?", dialect)
    assert f.rule == "cast-on-column-in-where" and "convert(price)" in f.message


def test_keyword_used_as_column_name_is_a_name() -> None:
    sql = "SELECT id, lock, status FROM jobs WHERE lower(lock) = %(lock)s GROUP BY lock, status"
    assert [f.rule for f in lint_sql(sql)] == ["cast-on-column-in-where"]


def test_valid_sqlite_that_sqlglot_does_not_know_is_not_a_parse_error() -> None:
    # SQLite's own parser accepts it: no finding (and nothing executed).
    assert lint_sql("UPDATE OR REPLACE t SET a = 1 WHERE id = ?", "sqlite") == []
    assert [f.rule for f in lint_sql("SELECT id FROM t WHERE", "sqlite")] == ["parse-error"]


def test_statement_of_another_database_is_read_in_its_dialect() -> None:
    """A library supporting several databases holds PostgreSQL casts next to SQLite SQL."""
    sql = "SELECT attname FROM pg_attribute a JOIN t ON t.x = a.y WHERE lower(t.c) = %s::text"
    (f,) = lint_sql(sql, "sqlite")
    assert f.rule == "cast-on-column-in-where"


def test_parse_error_is_info_and_does_not_fail_the_cli(tmp_path: Path) -> None:
    (f,) = lint_sql("SELECT id FROM t WHERE")
    assert f.severity == "info"
    (tmp_path / "q.sql").write_text("SELECT id FROM t WHERE;\n")
    result = run_cli("lint", "q.sql", "--dialect", "sqlite", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "info parse-error" in result.stdout


def test_long_statements_are_read_whole() -> None:
    rows = ", ".join(f"({i}, 'name {i}', {i}.5)" for i in range(2200))
    insert = f"INSERT INTO items (id, name, price) VALUES {rows}"
    assert len(insert) > 50_000
    assert lint_sql(insert, "sqlite") == []
    ors = " OR ".join(f"a = {i}" for i in range(3000))
    tail = f"SELECT id FROM t WHERE ({ors}) AND lower(name) = ?"
    assert len(tail) > 20_000
    (f,) = lint_sql(tail, "sqlite")
    assert f.rule == "cast-on-column-in-where" and f.sql is not None
    assert f.sql.endswith("and lower(name) = ?")  # the statement was not cut


def test_delete_without_where_advice_fits_the_dialect() -> None:
    fixes = {d: lint_sql("DELETE FROM carts", d)[0].fix for d in ("postgres", "mysql", "sqlite")}
    assert "use TRUNCATE" in fixes["postgres"]
    assert "use TRUNCATE TABLE" in fixes["mysql"]
    assert "use TRUNCATE" not in fixes["sqlite"]
    assert (
        "SQLite has no TRUNCATE" in fixes["sqlite"] and "truncate optimization" in fixes["sqlite"]
    )
    for dialect in ("postgres", "mysql", "sqlite"):
        (f,) = lint_sql("UPDATE users SET active = 0", dialect)
        assert "TRUNCATE" not in f.fix


def test_named_query_files_split_at_comment_headers(tmp_path: Path) -> None:
    """aiosql-style files separate statements with a blank line and a comment, not ';'."""
    path = tmp_path / "queries.sql"
    path.write_text(
        textwrap.dedent(
            """\
            -- name: stalled
            SELECT id FROM jobs WHERE status = %(status)s

            -- name: search
            SELECT id FROM jobs WHERE name LIKE '%x'
            """
        )
    )
    result = scan([path], "postgres")
    assert [(f.rule, f.location.line if f.location else 0) for f in result.findings] == [
        ("leading-wildcard-like", 5)
    ]
    assert result.statements == 2


def test_system_catalog_reads_get_no_index_advice() -> None:
    sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%x'"
    assert lint_sql(sql, "sqlite") == []
    sql = "SELECT * FROM information_schema.columns WHERE lower(table_name) = %s"
    assert lint_sql(sql, "postgres") == []
    # The same shapes on an application table are still reported.
    assert [f.rule for f in lint_sql("SELECT name FROM docs WHERE sql LIKE '%x'", "sqlite")] == [
        "leading-wildcard-like"
    ]


CATALOG_CLIENT = '''\
class Executor:
    tables_query = """
        SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = ANY(%s)
    """
    purge_query = "DELETE FROM sessions"
    mutable_query = "DELETE FROM a"

    def __init__(self):
        self.mutable_query = "DELETE FROM b"

    def tables(self, cur, kinds):
        cur.execute(self.tables_query, [kinds])

    def purge(self, cur):
        cur.execute(self.purge_query)

    def again(self, cur):
        cur.execute(self.purge_query)  # the same text: one finding

    def other(self, cur):
        cur.execute(self.mutable_query)

    @staticmethod
    def static(cur, self):
        cur.execute(self.purge_query)


def columns(cur, version):
    if version >= 110000:
        query = "SELECT attname FROM columns WHERE kind = 'a' ORDER BY random()"
    else:
        query = "DELETE FROM columns"
    cur.execute(query)


def grown(cur, cond):
    sql = "DELETE FROM logs"
    if cond:
        sql += " WHERE level = 1"
    cur.execute(sql)
'''


def test_sql_in_class_attributes_and_in_each_branch_is_linted(tmp_path: Path) -> None:
    """pgcli keeps its queries in class attributes (``cur.execute(self.tables_query)``) and picks
    one per server version in if/else branches: each text is SQL the code sends. A name
    extended with ``+=``, or an attribute some code assigns on the instance, stays unknown."""
    src = tmp_path / "pgexecute.py"
    src.write_text(CATALOG_CLIENT, encoding="utf-8")
    result = scan([src], "postgres")
    got = [(f.rule, f.location.line if f.location else 0) for f in result.findings]
    assert got == [
        ("update-or-delete-without-where", 5),  # purge_query, once for two calls
        ("order-by-random", 30),
        ("update-or-delete-without-where", 32),
    ]
    assert result.statements == 4  # tables, purge, both branches
    purge = result.findings[0]
    assert purge.location is not None and purge.location.function == "Executor"


def test_array_cast_of_a_named_type_is_not_a_parse_error() -> None:
    """``proargtypes::regtype[]`` (pgcli's catalog queries): sqlglot cannot read an array of
    some types it knows by name; PostgreSQL can, so it is not a parse error."""
    sql = "SELECT proname FROM functions WHERE proargtypes::regtype[] = $1"
    assert [f.rule for f in lint_sql(sql)] == ["cast-on-column-in-where"]
