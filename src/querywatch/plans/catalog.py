"""The facts plan rules judge by: how big each relation really is and which indexes it has.

A plan alone cannot say whether a sequential scan is a problem; the same scan is right on 1,000 rows
and an outage on 10 million. So rules read sizes (``pg_class.reltuples``, ``n_live_tup``, the
relation's bytes), existing indexes with their key columns, column types and ``pg_stats`` figures
from here. Only the relations a plan reads are looked up, with catalog queries that cost
microseconds. SQLite has no statistics views: row counts come from ``sqlite_stat1`` when ANALYZE
has run, else from ``count(*)`` under a time budget (then ``max(rowid)`` if that runs out).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from querywatch.pg import Connection, tagged
from querywatch.plans.model import Dialect, Plan, PlanNode


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """An existing index: ``keys`` holds column names, or an expression key's text."""

    name: str
    keys: tuple[str, ...]
    expression_keys: tuple[bool, ...] = ()
    unique: bool = False
    primary: bool = False
    method: str = "btree"
    predicate: str | None = None  # a partial index's WHERE
    valid: bool = True
    rows: float | None = None  # entries (pg_class.reltuples of the index): a partial index's rows

    @property
    def leading_column(self) -> str | None:
        """The first key when it is a plain column (the column a btree lookup can start from)."""
        if not self.keys or (self.expression_keys and self.expression_keys[0]):
            return None
        return self.keys[0]

    def starts_with(self, keys: Iterable[str]) -> bool:
        wanted = tuple(keys)
        return self.keys[: len(wanted)] == wanted


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: str | None = None
    n_distinct: float | None = None  # pg_stats convention: negative = fraction of rows
    null_frac: float | None = None
    not_null: bool | None = None  # declared NOT NULL (None: not known)
    correlation: float | None = None  # pg_stats: how closely values follow the physical order


@dataclass(slots=True)
class RelationInfo:
    """One relation's size and indexes. ``rows`` is the best current row count."""

    name: str
    schema: str | None = None
    rows: float | None = None
    reltuples: float | None = None
    live_rows: float | None = None
    pages: int | None = None
    size_bytes: int | None = None
    rows_source: str = "statistics"  # statistics | count | max(rowid) | unknown
    size_guessed: bool = False
    """PostgreSQL has never analyzed or vacuumed the relation (reltuples -1) and it is smaller
    than 10 pages: the planner then assumes 10 pages of rows as wide as the column types say,
    whatever the table holds (often nothing: a test database's fresh tables). Estimates of rows
    read from it are that guess, not a size."""
    indexes: list[IndexInfo] = field(default_factory=list)
    columns: dict[str, ColumnInfo] = field(default_factory=dict)

    def usable_indexes(self) -> list[IndexInfo]:
        return [i for i in self.indexes if i.valid and i.predicate is None]

    def index_leading_with(self, column: str) -> IndexInfo | None:
        """A valid, non-partial index whose first key is ``column``."""
        for index in self.usable_indexes():
            if index.leading_column == column:
                return index
        return None

    def indexes_with(self, column: str) -> list[IndexInfo]:
        """Valid indexes that have ``column`` as a plain key anywhere."""
        return [
            i
            for i in self.usable_indexes()
            if any(
                k == column and not (i.expression_keys and i.expression_keys[n])
                for n, k in enumerate(i.keys)
            )
        ]

    def has_expression_index(self, expression: str) -> bool:
        wanted = _squash(expression)
        return any(
            _squash(k) == wanted
            for i in self.usable_indexes()
            for n, k in enumerate(i.keys)
            if i.expression_keys and i.expression_keys[n]
        )

    def distinct_values(self, column: str) -> float | None:
        """Distinct values of ``column`` (pg_stats' n_distinct turned into a count)."""
        info = self.columns.get(column)
        if info is None or info.n_distinct is None:
            return None
        if info.n_distinct >= 0:
            return info.n_distinct
        return -info.n_distinct * (self.rows or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "rows": self.rows,
            "rows_source": self.rows_source,
            "pages": self.pages,
            "size_bytes": self.size_bytes,
            "indexes": [
                {"name": i.name, "keys": list(i.keys), "unique": i.unique, "method": i.method}
                for i in self.indexes
            ],
        }


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "_")


@dataclass(slots=True)
class Catalog:
    """Facts about the relations of one or more plans, looked up by (schema, name)."""

    dialect: Dialect
    relations: dict[tuple[str | None, str], RelationInfo] = field(default_factory=dict)

    def get(self, name: str, schema: str | None = None) -> RelationInfo | None:
        found = self.relations.get((schema, name))
        if found is not None:
            return found
        for (s, n), info in self.relations.items():
            if n == name and (schema is None or s is None or s == schema):
                return info
        return None

    def for_node(self, node: PlanNode) -> RelationInfo | None:
        return None if node.relation is None else self.get(node.relation, node.schema)

    def add(self, info: RelationInfo) -> None:
        self.relations[(info.schema, info.name)] = info

    def missing(self, plan: Plan) -> list[tuple[str | None, str]]:
        return [(s, n) for s, n in plan.relations() if self.get(n, s) is None]

    def as_dict(self) -> dict[str, Any]:
        return {f"{s}.{n}" if s else n: r.as_dict() for (s, n), r in self.relations.items()}


# --- PostgreSQL ---------------------------------------------------------------------------------

_PG_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.reltuples, c.relpages, pg_relation_size(c.oid),
       s.n_live_tup, current_setting('block_size')::int
FROM unnest(%s::text[], %s::text[]) AS w(schema_name, rel_name)
JOIN pg_class c ON c.relname = w.rel_name
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE (n.nspname = w.schema_name OR (w.schema_name IS NULL AND pg_table_is_visible(c.oid)))
  AND c.relkind IN ('r', 'p', 'm', 'f', 't')
"""

_PG_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, i.indisvalid, am.amname,
       pg_get_expr(i.indpred, i.indrelid), ic.reltuples,
       ARRAY(SELECT coalesce(a.attname::text, pg_get_indexdef(i.indexrelid, k, true))
             FROM generate_series(1, i.indnkeyatts) AS k
             LEFT JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1] AND i.indkey[k - 1] <> 0
             ORDER BY k),
       ARRAY(SELECT i.indkey[k - 1] = 0 FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY(%s::oid[])
ORDER BY ic.relname
"""

_PG_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), s.n_distinct, s.null_frac,
       a.attnotnull, s.correlation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stats s
  ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
 AND NOT s.inherited
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
"""


def load_postgres(
    conn: Connection, relations: Iterable[tuple[str | None, str]], into: Catalog | None = None
) -> Catalog:
    """Sizes, indexes and column statistics of ``relations`` from the PostgreSQL catalogs."""
    catalog = into if into is not None else Catalog("postgres")
    wanted = [(s, n) for s, n in relations if catalog.get(n, s) is None]
    if not wanted:
        return catalog
    rows = conn.execute(
        tagged(_PG_RELATIONS), ([s for s, _ in wanted], [n for _, n in wanted])
    ).fetchall()
    by_oid: dict[int, RelationInfo] = {}
    for oid, schema, name, reltuples, relpages, size, live, block in rows:
        tuples = float(reltuples) if reltuples is not None and reltuples >= 0 else None
        live_rows = float(live) if live is not None else None
        info = RelationInfo(
            name=str(name),
            schema=str(schema),
            rows=_current_rows(tuples, int(relpages), int(size), int(block), live_rows),
            reltuples=tuples,
            live_rows=live_rows,
            pages=int(relpages),
            size_bytes=int(size),
        )
        info.rows_source = "statistics" if info.rows is not None else "unknown"
        info.size_guessed = tuples is None and int(size) < _PLANNER_DEFAULT_PAGES * int(block)
        by_oid[int(oid)] = info
        catalog.add(info)
    if not by_oid:
        return catalog
    oids = list(by_oid)
    for rel, name, unique, primary, valid, method, pred, entries, keys, expr in conn.execute(
        tagged(_PG_INDEXES), (oids,)
    ).fetchall():
        by_oid[int(rel)].indexes.append(
            IndexInfo(
                name=str(name),
                keys=tuple(str(k) for k in keys),
                expression_keys=tuple(bool(e) for e in expr),
                unique=bool(unique),
                primary=bool(primary),
                method=str(method),
                predicate=pred,
                valid=bool(valid),
                rows=float(entries) if entries is not None and entries >= 0 else None,
            )
        )
    for rel, name, type_, n_distinct, null_frac, not_null, corr in conn.execute(
        tagged(_PG_COLUMNS), (oids,)
    ).fetchall():
        by_oid[int(rel)].columns[str(name)] = ColumnInfo(
            name=str(name),
            type=type_,
            n_distinct=None if n_distinct is None else float(n_distinct),
            null_frac=None if null_frac is None else float(null_frac),
            not_null=bool(not_null),
            correlation=None if corr is None else float(corr),
        )
    return catalog


_PLANNER_DEFAULT_PAGES = 10
"""Pages PostgreSQL assumes a never-analyzed relation has when it has fewer (plancat.c)."""


def _current_rows(
    reltuples: float | None, relpages: int, size: int, block: int, live: float | None
) -> float | None:
    """Rows now, as the planner reckons them: the analyzed row density times today's pages.

    ``n_live_tup`` is only a fallback (never analyzed): its counters lag and double-count around
    bulk loads.
    """
    if reltuples is not None:
        if relpages > 0 and block > 0:
            return reltuples / relpages * (size / block)
        return reltuples
    return live


# --- SQLite -------------------------------------------------------------------------------------


def load_sqlite(
    conn: sqlite3.Connection,
    relations: Iterable[tuple[str | None, str]],
    *,
    budget_ms: int = 500,
    into: Catalog | None = None,
) -> Catalog:
    """Row counts, indexes and columns of SQLite tables (``budget_ms`` bounds each count)."""
    catalog = into if into is not None else Catalog("sqlite")
    for schema, name in relations:
        if catalog.get(name, schema) is not None:
            continue
        columns = conn.execute(f"PRAGMA table_info({_quote(name)})").fetchall()
        if not columns:
            continue  # a view, a CTE or a subquery alias
        info = RelationInfo(name=name, schema=schema)
        pk = [c for c in columns if c[5]]
        for cid, cname, ctype, notnull, _default, in_pk in columns:
            info.columns[str(cname)] = ColumnInfo(
                name=str(cname),
                type=str(ctype) or None,
                not_null=bool(notnull) or (bool(in_pk) and str(ctype).upper() == "INTEGER"),
            )
            del cid
        if len(pk) == 1 and str(pk[0][2]).upper() == "INTEGER":
            info.indexes.append(
                IndexInfo(name="rowid", keys=(str(pk[0][1]),), unique=True, primary=True)
            )
        for _seq, iname, unique, origin, partial in conn.execute(
            f"PRAGMA index_list({_quote(name)})"
        ).fetchall():
            keys: list[str] = []
            exprs: list[bool] = []
            for _seqno, cid, cname in conn.execute(
                f"PRAGMA index_info({_quote(str(iname))})"
            ).fetchall():
                keys.append(str(cname) if cname is not None else "<expression>")
                exprs.append(cid == -2)
            info.indexes.append(
                IndexInfo(
                    name=str(iname),
                    keys=tuple(keys),
                    expression_keys=tuple(exprs),
                    unique=bool(unique),
                    primary=origin == "pk",
                    predicate="<partial>" if partial else None,
                )
            )
        info.rows, info.rows_source = _sqlite_rows(conn, name, budget_ms)
        catalog.add(info)
    return catalog


def _sqlite_rows(conn: sqlite3.Connection, name: str, budget_ms: int) -> tuple[float | None, str]:
    try:
        stats = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (name,)).fetchall()
    except sqlite3.Error:
        stats = []
    counts = [int(s[0].split()[0]) for s in stats if s[0] and s[0].split()[0].isdigit()]
    if counts:
        return float(max(counts)), "sqlite_stat1"
    deadline = time.monotonic() + budget_ms / 1000

    def over_budget() -> int:
        return 1 if time.monotonic() > deadline else 0

    conn.set_progress_handler(over_budget, 10_000)
    try:
        row = conn.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()
        return float(row[0]), "count"
    except sqlite3.OperationalError:
        pass  # interrupted: the table is too big to count within the budget
    finally:
        conn.set_progress_handler(None, 0)
    try:
        row = conn.execute(f"SELECT max(rowid) FROM {_quote(name)}").fetchone()
    except sqlite3.Error:
        return None, "unknown"
    return (float(row[0]), "max(rowid)") if row and row[0] is not None else (None, "unknown")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- index DDL ----------------------------------------------------------------------------------

_RESERVED = frozenset(
    {
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    }
)


def quote_ident(name: str) -> str:
    """An identifier as PostgreSQL/SQLite need it written (quoted only when it must be)."""
    if name.isidentifier() and name == name.lower() and name.isascii() and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def index_name(table: str, keys: Iterable[str]) -> str:
    """``idx_<table>_<keys>``, lower-case, at most 63 characters (PostgreSQL's limit)."""
    parts = [table, *keys]
    raw = "_".join(
        "".join(ch if ch.isalnum() else "_" for ch in p.lower()).strip("_") for p in parts
    )
    while "__" in raw:
        raw = raw.replace("__", "_")
    return ("idx_" + raw)[:63].rstrip("_")


def create_index_sql(
    schema: str | None,
    table: str,
    keys: Iterable[str],
    *,
    dialect: Dialect = "postgres",
    name: str | None = None,
    method: str | None = None,
    opclass: str | None = None,
    concurrently: bool = True,
) -> str:
    """``CREATE INDEX CONCURRENTLY idx ON schema.table (keys);`` — keys are column names, or
    expressions already wrapped in parentheses (``(lower(email))``)."""
    key_list = list(keys)
    cols = ", ".join(
        (k if k.startswith("(") else quote_ident(k)) + (f" {opclass}" if opclass else "")
        for k in key_list
    )
    target = f"{quote_ident(schema)}.{quote_ident(table)}" if schema else quote_ident(table)
    plain = [k.strip("()") for k in key_list]
    idx = quote_ident(name or index_name(table, plain + ([method] if method else [])))
    using = f" USING {method}" if method else ""
    if dialect == "sqlite":
        return f"CREATE INDEX {idx} ON {target} ({cols});"
    conc = " CONCURRENTLY" if concurrently else ""
    return f"CREATE INDEX{conc} {idx} ON {target}{using} ({cols});"
