"""EXPLAIN capture: PostgreSQL (``FORMAT JSON``) and SQLite (``EXPLAIN QUERY PLAN``) into one model.

Safety first, because the target is usually production (DESIGN.md, "never hurt the monitored
database"): PostgreSQL sessions come from :func:`querywatch.pg.connect` (read-only, short
``statement_timeout`` and ``lock_timeout``); a plain EXPLAIN plans without running; ``analyze=True``
is refused unless the statement is a plain read that calls no volatile function (whose effects
a rollback may not undo: :mod:`querywatch.plans.volatility`), and then runs inside a transaction
that is always rolled back. SQLite files are opened read-only (``mode=ro`` and
``PRAGMA query_only``).

Statements with bind placeholders, as pg_stat_statements normalizes them (``$1``) or as drivers
send them (``%s``, ``%(name)s``), are planned as *generic* plans, the plan PostgreSQL uses when it
does not know the values: ``EXPLAIN (GENERIC_PLAN)`` on PostgreSQL 16+, and before that
``PREPARE`` plus ``EXPLAIN EXECUTE`` with ``plan_cache_mode = force_generic_plan`` (set locally
in a rolled-back transaction; the prepared statement is deallocated at once). With a generic plan
the NULLs passed to EXECUTE are never looked at, so the plan does not depend on them. Parameter
types are inferred by the server; a parameter it cannot type (``SELECT $1``) is an error that says
so. SQLite plans do not depend on values, so each placeholder is bound to NULL.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.dsn import is_postgres_url
from querywatch.errors import DatabaseUnavailable, QuerywatchError
from querywatch.pg import Connection, connect, display_dsn, reason, tagged
from querywatch.plans.catalog import Catalog, load_postgres, load_sqlite
from querywatch.plans.model import Dialect, Plan, PlanNode, node_from_postgres
from querywatch.plans.predicates import conjuncts
from querywatch.plans.sqltext import (
    LexedStatement,
    limit_offset,
    postgres_placeholders,
    scan,
    sqlite_placeholders,
)
from querywatch.plans.volatility import volatile_calls

APPLICATION_NAME = "querywatch explain"


class ExplainError(QuerywatchError):
    """The statement could not be explained (bad SQL, EXPLAIN rejected it, unsafe ``--analyze``).

    ``exit_code`` is 2, "could not check", as opposed to 1, "checked and found problems".
    """

    exit_code = 2


def sqlite_path(target: str) -> Path | None:
    """The SQLite file a target names (``sqlite:///path`` or a plain path), None for PostgreSQL.

    Any other URL scheme is taken for PostgreSQL, so libpq reports what is wrong with it.
    """
    if is_postgres_url(target):
        return None
    if target.startswith("sqlite:///"):  # SQLAlchemy's form: sqlite:///rel.db, sqlite:////abs.db
        return Path(target[len("sqlite:///") :])
    if re.match(r"[a-z][a-z0-9+.-]*://", target, re.I):
        return None
    return Path(target)


class Explainer:
    """One read-only session on a PostgreSQL database or a SQLite file, reused across statements.

    ``explain`` plans a statement; ``catalog`` returns the sizes and indexes of the relations a
    plan reads (cached for the session). Use as a context manager, or call ``close``.
    """

    def __init__(
        self,
        target: str,
        *,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self.target = target
        self.statement_timeout_ms = statement_timeout_ms
        self._pg: Connection | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._memory: tuple[int | None, float | None] | None = None
        self._offset = 0  # where the statement starts in the text last sent (error positions)
        path = sqlite_path(target)
        self.dialect: Dialect
        if path is None:
            self.dialect = "postgres"
            self._pg = connect(
                target,
                application_name=application_name,
                statement_timeout_ms=statement_timeout_ms,
                read_only=True,
            )
            # No automatic server-side prepares: psycopg answers a rollback with DEALLOCATE ALL
            # when it has some, which would also drop the statement we PREPARE for generic plans.
            self._pg.prepare_threshold = None
            self.server_version_num = self._pg.info.server_version
        else:
            self.dialect = "sqlite"
            self.server_version_num = sqlite3.sqlite_version_info[0] * 10000
            self._sqlite = _open_sqlite(path, statement_timeout_ms)
        self._catalog = Catalog(self.dialect)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()

    def __enter__(self) -> Explainer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def display_target(self) -> str:
        return display_dsn(self.target) if self.dialect == "postgres" else self.target

    @property
    def pg(self) -> Connection:
        """The PostgreSQL session (for HypoPG); an error on a SQLite target."""
        if self._pg is None:
            raise ExplainError("this needs a PostgreSQL database, not a SQLite file")
        return self._pg

    # -- planning --------------------------------------------------------------------------------

    def explain(self, sql: str, *, analyze: bool = False) -> Plan:
        """The plan of one statement. ``analyze`` runs it (plain reads only, rolled back)."""
        stmt = _checked(sql, self.dialect)
        if self.dialect == "sqlite":
            if analyze:
                raise ExplainError(
                    "--analyze needs PostgreSQL: "
                    "SQLite's EXPLAIN QUERY PLAN has no run-time figures"
                )
            return self._explain_sqlite(stmt)
        return self._explain_pg(stmt, analyze)

    def catalog(self, plan: Plan) -> Catalog:
        """Sizes, indexes and statistics of the relations ``plan`` reads."""
        missing = self._catalog.missing(plan)
        if missing:
            try:
                if self._pg is not None:
                    load_postgres(self._pg, missing, into=self._catalog)
                elif self._sqlite is not None:
                    load_sqlite(
                        self._sqlite,
                        missing,
                        budget_ms=self.statement_timeout_ms // 4,
                        into=self._catalog,
                    )
            except psycopg.Error as exc:
                raise _pg_error(exc, self.target, "reading the catalog") from exc
            except sqlite3.Error as exc:
                raise ExplainError(f"cannot read the SQLite catalog: {exc}") from exc
        return self._catalog

    def _explain_pg(self, stmt: LexedStatement, analyze: bool) -> Plan:
        text, nparams = postgres_placeholders(stmt)
        if analyze and nparams:
            raise ExplainError(
                "--analyze runs the statement, so it needs real values, not placeholders like $1"
            )
        if analyze and not stmt.is_plain_read:
            raise ExplainError(
                "--analyze runs the statement, so it is allowed only for a SELECT that writes "
                "and locks nothing; use plain EXPLAIN for this one"
            )
        if analyze:
            self._refuse_volatile(text)
        version = self.server_version_num
        options = ["FORMAT JSON", "VERBOSE"]
        if version >= 120000:
            options.append("SETTINGS")
        if analyze:
            options += ["ANALYZE", "BUFFERS"]
        generic = nparams > 0
        try:
            if generic and version >= 160000:
                options.append("GENERIC_PLAN")
                raw = self._run_explain(f"EXPLAIN ({', '.join(options)}) ", text, analyze)
            elif generic:
                raw = self._explain_prepared(options, text, nparams)
            else:
                raw = self._run_explain(f"EXPLAIN ({', '.join(options)}) ", text, analyze)
            work_mem, hash_mult = self._memory_settings()
        except psycopg.Error as exc:
            raise _pg_error(
                exc, self.target, "explaining the statement", text, self._offset
            ) from exc
        top = raw[0] if isinstance(raw, list) and raw else raw
        if not isinstance(top, dict) or "Plan" not in top:
            raise ExplainError("EXPLAIN returned no plan for this statement")
        limit, offset = limit_offset(stmt.text, "postgres")
        settings = {str(k): str(v) for k, v in (top.get("Settings") or {}).items()}
        if generic and version < 160000:
            settings.pop("plan_cache_mode", None)  # ours, set only to get the generic plan
        return Plan(
            root=node_from_postgres(top["Plan"]),
            dialect="postgres",
            sql=stmt.text,
            settings=settings,
            planning_ms=top.get("Planning Time"),
            execution_ms=top.get("Execution Time"),
            analyzed=analyze,
            generic=generic,
            work_mem_kb=work_mem,
            hash_mem_multiplier=hash_mult,
            limit=limit,
            offset=offset,
            server_version=str(version),
        )

    def _refuse_volatile(self, text: str) -> None:
        """Refuse ANALYZE when the statement can run a volatile function (see volatility.py)."""
        try:
            plan = self._run_explain("EXPLAIN (FORMAT JSON, VERBOSE) ", text, False)
        except psycopg.Error as exc:
            raise _pg_error(
                exc, self.target, "explaining the statement", text, self._offset
            ) from exc
        try:
            blockers = volatile_calls(self.pg, text, plan)
        except psycopg.Error as exc:
            raise _pg_error(exc, self.target, "reading the functions the statement calls") from exc
        if blockers:
            others = sorted({b.name for b in blockers} - {blockers[0].name})
            more = f"; also {', '.join(others[:3])}" if others else ""
            more += " …" if len(others) > 3 else ""
            raise ExplainError(
                f"--analyze runs the statement, and it calls a volatile function, {blockers[0]}"
                f"{more}: its effects (a reset, a lock, a write elsewhere) may outlive the "
                "rollback. Use plain EXPLAIN, or mark the function STABLE if it only reads"
            )

    def _run_explain(self, prefix: str, text: str, analyze: bool) -> Any:
        conn = self.pg
        query = tagged(prefix + text)
        self._offset = len(query) - len(text)
        if analyze:
            # EXPLAIN ANALYZE executes: in a (read-only) transaction that is always rolled back.
            with conn.transaction(force_rollback=True):
                row = conn.execute(query, binary=True).fetchone()
        else:
            row = conn.execute(query, binary=True).fetchone()
        return None if row is None else row[0]

    def _explain_prepared(self, options: list[str], text: str, nparams: int) -> Any:
        conn = self.pg
        name = f"qw_plan_{uuid.uuid4().hex[:12]}"
        prepared = False
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(tagged("SET LOCAL plan_cache_mode = force_generic_plan"))
                head = tagged(f"PREPARE {name} AS ")
                self._offset = len(head)
                conn.execute(head + text, binary=True)
                prepared = True
                self._offset = 1 << 30  # later errors point into our EXECUTE, not the user's text
                args = ", ".join(["NULL"] * nparams)
                row = conn.execute(
                    tagged(f"EXPLAIN ({', '.join(options)}) EXECUTE {name}({args})"), binary=True
                ).fetchone()
        finally:
            if prepared:
                # It may be gone already (a DEALLOCATE ALL or DISCARD ran).
                with contextlib.suppress(psycopg.errors.InvalidSqlStatementName):
                    conn.execute(tagged(f"DEALLOCATE {name}"))
        return None if row is None else row[0]

    def _memory_settings(self) -> tuple[int | None, float | None]:
        if self._memory is None:
            row = self.pg.execute(
                tagged(
                    "SELECT pg_size_bytes(current_setting('work_mem')) / 1024, "
                    "current_setting('hash_mem_multiplier', true)"
                )
            ).fetchone()
            if row is None:
                self._memory = (None, None)
            else:
                self._memory = (
                    int(row[0]) if row[0] is not None else None,
                    float(row[1]) if row[1] else None,
                )
        return self._memory

    def _explain_sqlite(self, stmt: LexedStatement) -> Plan:
        assert self._sqlite is not None
        text, nparams = sqlite_placeholders(stmt)
        try:
            rows = self._sqlite.execute("EXPLAIN QUERY PLAN " + text, [None] * nparams).fetchall()
        except sqlite3.Error as exc:
            raise ExplainError(f"cannot explain the statement: {exc}") from exc
        except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
            raise ExplainError(f"cannot explain the statement: {exc}") from exc
        limit, offset = limit_offset(text, "sqlite")
        root = sqlite_tree(rows, text)
        return Plan(
            root=root,
            dialect="sqlite",
            sql=stmt.text,
            generic=nparams > 0,
            limit=limit,
            offset=offset,
            server_version=sqlite3.sqlite_version,
        )


def explain(
    target: str,
    sql: str,
    *,
    analyze: bool = False,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> Plan:
    """The plan of ``sql`` on ``target`` (a PostgreSQL DSN, ``sqlite:///path`` or a file path)."""
    with Explainer(target, statement_timeout_ms=statement_timeout_ms) as explainer:
        return explainer.explain(sql, analyze=analyze)


# --- statement checks and errors ----------------------------------------------------------------


def _checked(sql: str, dialect: Dialect) -> LexedStatement:
    stmt = scan(sql, dialect)
    if not stmt.text or not stmt.first_word:
        raise ExplainError("no SQL statement to explain")
    if stmt.extra_statements:
        raise ExplainError("one statement at a time: the text holds more than one statement")
    if stmt.first_word == "EXPLAIN":
        raise ExplainError("pass the statement itself, without EXPLAIN")
    return stmt


def _pg_error(
    exc: psycopg.Error, dsn: str, doing: str, text: str | None = None, offset: int = 0
) -> QuerywatchError:
    """One line for the user; ``offset`` is where ``text`` starts in what was sent."""
    if isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled
    ):
        return DatabaseUnavailable(f"lost {display_dsn(dsn)} while {doing}: {reason(exc, dsn)}")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return ExplainError(
            f"{doing} took longer than statement_timeout and was cancelled: "
            "raise statement_timeout_ms, or drop --analyze"
        )
    message = reason(exc, dsn)
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None) if diag is not None else None
    if position and text is not None and str(position).isdigit():
        at = int(position) - offset
        if 0 < at <= len(text) + 1:
            message += f" (at character {at}: {_snippet(text, at)})"
    return ExplainError(f"cannot explain the statement: {message}")


def _snippet(text: str, at: int, width: int = 24) -> str:
    if at > len(text.rstrip()):
        return "the end of the statement"
    start = max(at - 1, 0)
    piece = " ".join(text[start : start + width].split())
    return piece + ("…" if start + width < len(text) else "")


# --- SQLite -------------------------------------------------------------------------------------


def _open_sqlite(path: Path, timeout_ms: int) -> sqlite3.Connection:
    if not path.exists():
        raise DatabaseUnavailable(f"no SQLite database at {path}")
    try:
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro",
            uri=True,
            timeout=max(timeout_ms / 1000, 0.1),
            check_same_thread=False,
        )
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
    return conn


_SCAN = re.compile(
    r"^SCAN (?:TABLE )?(?P<name>\S+)(?: AS (?P<alias>\S+))?"
    r"(?: USING (?P<covering>COVERING )?INDEX (?P<index>\S+))?"
)
_SEARCH = re.compile(
    r"^SEARCH (?:TABLE )?(?P<name>\S+)(?: AS (?P<alias>\S+))? USING "
    r"(?:(?P<auto>AUTOMATIC )?(?:PARTIAL )?(?P<covering>COVERING )?INDEX(?: (?P<index>\S+))?"
    r"|(?P<ipk>INTEGER PRIMARY KEY))(?: \((?P<cond>.*)\))?$"
)


def sqlite_tree(rows: list[tuple[Any, ...]], sql: str) -> PlanNode:
    """``EXPLAIN QUERY PLAN`` rows (id, parent, notused, detail) as a PlanNode tree.

    SQLite names the alias in its lines; the statement's FROM clauses map aliases back to tables.
    WHERE terms that belong to one table become that scan's ``filter`` (SQLite prints none), so the
    rules read SQLite and PostgreSQL plans the same way.
    """
    aliases, filters = _sqlite_scopes(sql)
    root = PlanNode(node_type="Query")
    by_id: dict[int, PlanNode] = {0: root}
    for row in rows:
        node_id, parent, detail = int(row[0]), int(row[1]), str(row[3])
        node = _sqlite_node(detail, aliases)
        if node.alias is not None and node.relation is not None:
            node.filter = _filter_for(node, filters)
        by_id.setdefault(parent, root).children.append(node)
        by_id[node_id] = node
    return root


def _sqlite_node(detail: str, aliases: dict[str, str]) -> PlanNode:
    if detail.startswith("SCAN CONSTANT ROW"):
        return PlanNode(node_type="Result", detail=detail)
    if m := _SEARCH.match(detail):
        name, alias = m.group("name"), m.group("alias")
        relation, alias = (name, alias) if alias else (aliases.get(name, name), name)
        node = PlanNode(
            node_type="Index Only Scan" if m.group("covering") else "Index Scan",
            relation=relation,
            alias=alias,
            index_name="rowid" if m.group("ipk") else (m.group("index") or "(automatic)"),
            index_cond=m.group("cond"),
            detail=detail,
        )
        if m.group("auto"):
            node.extra["automatic_index"] = True
        return node
    if m := _SCAN.match(detail):
        name, alias = m.group("name"), m.group("alias")
        relation, alias = (name, alias) if alias else (aliases.get(name, name), name)
        if m.group("index"):
            node_type = "Index Only Scan" if m.group("covering") else "Index Scan"
        else:
            node_type = "Seq Scan"
        if " VIRTUAL TABLE" in detail:
            node_type = "Virtual Table Scan"
        return PlanNode(
            node_type=node_type,
            relation=relation,
            alias=alias,
            index_name=m.group("index"),
            detail=detail,
        )
    if detail.startswith("USE TEMP B-TREE FOR "):
        return PlanNode(node_type="Sort", detail=detail, sort_keys=[detail[20:]])
    return PlanNode(node_type=detail, detail=detail)


def _sqlite_scopes(sql: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """alias -> table, and alias -> WHERE terms that mention only that alias."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    aliases: dict[str, str] = {}
    filters: dict[str, list[str]] = {}
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, ValueError, RecursionError):
        return aliases, filters
    for select in tree.find_all(exp.Select):
        local: list[str] = []
        for table in select.find_all(exp.Table):
            if table.find_ancestor(exp.Select) is select:
                aliases.setdefault(table.alias_or_name, table.name)
                local.append(table.alias_or_name)
        where = select.args.get("where")
        if not isinstance(where, exp.Where):
            continue
        for term in conjuncts(where.this):
            if term.find(exp.Select) is not None:
                continue
            owners = {c.table for c in term.find_all(exp.Column)}
            if owners == {""} and len(local) == 1:
                owners = {local[0]}
            if len(owners) == 1 and (owner := next(iter(owners))):
                filters.setdefault(owner, []).append(term.sql(dialect="sqlite"))
    return aliases, filters


def _filter_for(node: PlanNode, filters: dict[str, list[str]]) -> str | None:
    assert node.alias is not None
    terms = filters.get(node.alias, [])
    if node.index_cond:
        used = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)[=<>]", node.index_cond))
        terms = [t for t in terms if not any(re.search(rf"\b{re.escape(u)}\b", t) for u in used)]
    if not terms:
        return None
    return " AND ".join(f"({t})" for t in terms) if len(terms) > 1 else terms[0]
