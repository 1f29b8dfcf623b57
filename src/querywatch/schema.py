"""Schema snapshots and their diff: did a deploy change the schema under the previous version?

Rolling a deploy back is only safe when the previous version can still run against the schema the
deploy left behind. A migration that dropped or renamed a table or column, changed a column's type
or added a NOT NULL column without a default breaks the old code's queries and INSERTs, so a
rollback would turn one outage into another. `deploy start` and `deploy finish` each take a
:func:`snapshot` of the monitored database; :func:`diff` says what changed and whether the change
is unsafe for the version before, and the deploy marker keeps that reason
(``DeployMarker.schema_change``) for the rollback guard to read.

Snapshots read catalogs only, over a read-only session with a short ``statement_timeout``
(PostgreSQL) or a ``mode=ro`` connection (SQLite): they never lock or write the database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.dsn import is_postgres_url
from querywatch.errors import DatabaseUnavailable, QuerywatchError

Dialect = Literal["postgres", "sqlite"]
FORMAT_VERSION = 1
#: Schemas that are the database's or querywatch's own, never the application's.
EXCLUDED_SCHEMAS = ("pg_catalog", "information_schema", "querywatch")
#: An unsafe reason names at most this many changes, so it stays one readable line.
MAX_REASONS = 5


class SnapshotError(QuerywatchError):
    """A stored schema snapshot cannot be read back (corrupt or from an unknown format)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column as the previous version's queries see it."""

    name: str
    type: str
    not_null: bool
    has_default: bool


@dataclass(frozen=True, slots=True)
class SchemaSnapshot:
    """The application's tables (name → columns in order) and indexes (name → table) at one time.

    PostgreSQL names are qualified with their schema unless it is ``public``.
    """

    dialect: Dialect
    database: str
    tables: Mapping[str, tuple[Column, ...]]
    indexes: Mapping[str, str] = field(default_factory=dict)
    taken_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "dialect": self.dialect,
                "database": self.database,
                "taken_at": self.taken_at,
                "tables": {
                    name: [
                        {
                            "name": c.name,
                            "type": c.type,
                            "not_null": c.not_null,
                            "has_default": c.has_default,
                        }
                        for c in columns
                    ]
                    for name, columns in sorted(self.tables.items())
                },
                "indexes": dict(sorted(self.indexes.items())),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> SchemaSnapshot:
        """Read :meth:`to_json`'s output back; anything else is a :class:`SnapshotError`."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT_VERSION:
                raise SnapshotError(
                    f"schema snapshot has format {data.get('format')!r}, "
                    f"this querywatch reads {FORMAT_VERSION}"
                )
            dialect = data["dialect"]
            if dialect not in ("postgres", "sqlite"):
                raise SnapshotError(f"schema snapshot has unknown dialect {dialect!r}")
            tables = {
                str(name): tuple(
                    Column(
                        str(c["name"]), str(c["type"]), bool(c["not_null"]), bool(c["has_default"])
                    )
                    for c in columns
                )
                for name, columns in data["tables"].items()
            }
            indexes = {str(k): str(v) for k, v in data.get("indexes", {}).items()}
            return cls(dialect, str(data["database"]), tables, indexes, float(data["taken_at"]))
        except SnapshotError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SnapshotError(f"schema snapshot is malformed: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two snapshots; ``unsafe`` if the previous version may break."""

    kind: str
    table: str
    detail: str
    unsafe: bool
    column: str | None = None


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    """What changed between two snapshots, unsafe changes first."""

    changes: tuple[Change, ...]

    @property
    def unsafe(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.unsafe)

    @property
    def safe(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.unsafe)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def unsafe_reason(self) -> str | None:
        """One line naming the unsafe changes (at most :data:`MAX_REASONS`), or ``None``."""
        unsafe = self.unsafe
        if not unsafe:
            return None
        shown = "; ".join(c.detail for c in unsafe[:MAX_REASONS])
        more = len(unsafe) - MAX_REASONS
        return shown + (f"; and {more} more" if more > 0 else "")

    def lines(self) -> list[str]:
        """One line per change for a CI log: ``unsafe: column orders.status dropped``."""
        return [f"{'unsafe' if c.unsafe else 'safe'}: {c.detail}" for c in self.changes]


# -- taking snapshots ------------------------------------------------------------------------------


def snapshot(
    location: str, *, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
) -> SchemaSnapshot:
    """The schema of a PostgreSQL DSN, or of a SQLite file at ``location`` (opened read-only).

    Raises :class:`DatabaseUnavailable` with one line when the database cannot be read.
    """
    if is_postgres_url(location):
        return _postgres(location, statement_timeout_ms)
    return _sqlite(location, statement_timeout_ms)


_PG_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
  AND n.nspname <> ALL(%(excluded)s) AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY n.nspname, c.relname, a.attnum
"""
# Partitions are left out: a daily partition created or dropped is routine, not a migration.
# Tables an extension owns are the extension's business.

_PG_INDEXES = """
SELECT n.nspname, i.relname, t.relname
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE t.relkind IN ('r', 'p') AND NOT t.relispartition AND t.relpersistence <> 't'
  AND n.nspname <> ALL(%(excluded)s) AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY 1, 2
"""


def _qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def _postgres(dsn: str, statement_timeout_ms: int) -> SchemaSnapshot:
    from querywatch.pg import connect, display_dsn, reason, tagged

    conn = connect(
        dsn,
        application_name="querywatch-schema",
        statement_timeout_ms=statement_timeout_ms,
        read_only=True,
    )
    try:
        params = {"excluded": list(EXCLUDED_SCHEMAS)}
        row = conn.execute(tagged("SELECT current_database()")).fetchone()
        database = str(row[0]) if row else ""
        column_rows = conn.execute(tagged(_PG_COLUMNS), params).fetchall()
        index_rows = conn.execute(tagged(_PG_INDEXES), params).fetchall()
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot read the schema of {display_dsn(dsn)}: {reason(exc, dsn)}"
        ) from exc
    finally:
        conn.close()
    tables: dict[str, list[Column]] = {}
    for schema, table, name, type_, not_null, has_default in column_rows:
        tables.setdefault(_qualified(schema, table), []).append(
            Column(str(name), str(type_), bool(not_null), bool(has_default))
        )
    indexes = {
        _qualified(schema, index): _qualified(schema, table) for schema, index, table in index_rows
    }
    return SchemaSnapshot(
        "postgres", database, {k: tuple(v) for k, v in tables.items()}, indexes, time.time()
    )


def _sqlite(location: str, statement_timeout_ms: int) -> SchemaSnapshot:
    path = Path(location).expanduser()
    if not path.is_file():
        raise DatabaseUnavailable(f"no SQLite database at {location}: the file does not exist")
    path = path.resolve()
    try:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, timeout=statement_timeout_ms / 1000
        )
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot open SQLite database {location}: {exc}") from exc
    try:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
        tables = {name: _sqlite_columns(conn, name) for name in names}
        indexes = {
            str(name): str(table)
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(
            f"cannot read the schema of SQLite database {location}: {exc}"
        ) from exc
    finally:
        conn.close()
    return SchemaSnapshot("sqlite", str(path), tables, indexes, time.time())


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> tuple[Column, ...]:
    rows: list[tuple[Any, ...]] = conn.execute(
        'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid',
        (table,),
    ).fetchall()
    primary = [r for r in rows if r[4]]
    columns = []
    for name, type_, not_null, default, pk in rows:
        declared = " ".join(str(type_ or "").lower().split())
        # An INTEGER PRIMARY KEY is the rowid: SQLite fills it in when an INSERT leaves it out.
        rowid = bool(pk) and len(primary) == 1 and declared == "integer"
        columns.append(Column(str(name), declared, bool(not_null), default is not None or rowid))
    return tuple(columns)


# -- comparing them --------------------------------------------------------------------------------


def diff(before: SchemaSnapshot, after: SchemaSnapshot) -> SchemaDiff:
    """The changes from ``before`` to ``after``, each classified for the previous version.

    Unsafe: a table or column dropped or renamed, a column's type changed, a column made NOT NULL
    or losing the default its NOT NULL needs, a new NOT NULL column without a default (the old
    INSERTs leave it out). Safe: new tables, new nullable or defaulted columns, index changes.
    A drop and an add that match (same columns; same type at the same position) read as a rename.
    """
    changes: list[Change] = []
    dropped = [t for t in before.tables if t not in after.tables]
    added = [t for t in after.tables if t not in before.tables]
    renamed = _pair_renames(
        dropped, added, lambda t: tuple((c.name, c.type) for c in before.tables[t]),
        lambda t: tuple((c.name, c.type) for c in after.tables[t]),
    )  # fmt: skip
    for old, new in renamed.items():
        changes.append(Change("table_renamed", old, f"table {old} renamed to {new}", True))
    for table in dropped:
        if table not in renamed:
            changes.append(Change("table_dropped", table, f"table {table} dropped", True))
    for table in added:
        if table not in renamed.values():
            changes.append(Change("table_added", table, f"table {table} added", False))
    for table in before.tables:
        if table in after.tables:
            changes.extend(_column_changes(table, before.tables[table], after.tables[table]))
    moved = set(dropped) | set(added)
    for index, table in before.indexes.items():
        if index not in after.indexes and table not in moved:
            changes.append(
                Change("index_dropped", table, f"index {index} on {table} dropped", False)
            )
    for index, table in after.indexes.items():
        if index not in before.indexes and table not in moved:
            changes.append(Change("index_added", table, f"index {index} on {table} added", False))
    changes.sort(key=lambda c: not c.unsafe)  # stable: unsafe first, each group in found order
    return SchemaDiff(tuple(changes))


def _pair_renames(
    dropped: Sequence[str],
    added: Sequence[str],
    old_key: Callable[[str], object],
    new_key: Callable[[str], object],
) -> dict[str, str]:
    """Drops and adds that match one-to-one by ``key``, as {old: new}."""
    pairs: dict[str, str] = {}
    for old in dropped:
        matches = [new for new in added if new_key(new) == old_key(old)]
        rivals = [o for o in dropped if matches and old_key(o) == old_key(old)]
        if len(matches) == 1 and len(rivals) == 1:
            pairs[old] = matches[0]
    return pairs


def _column_changes(
    table: str, before: tuple[Column, ...], after: tuple[Column, ...]
) -> list[Change]:
    old_cols = {c.name: c for c in before}
    new_cols = {c.name: c for c in after}
    dropped = [c.name for c in before if c.name not in new_cols]
    added = [c.name for c in after if c.name not in old_cols]
    position = {("old", c.name): i for i, c in enumerate(before)} | {
        ("new", c.name): i for i, c in enumerate(after)
    }
    renamed = _pair_renames(
        dropped, added,
        lambda n: (position["old", n], old_cols[n].type),
        lambda n: (position["new", n], new_cols[n].type),
    )  # fmt: skip
    changes: list[Change] = []

    def add(kind: str, column: str, detail: str, unsafe: bool) -> None:
        changes.append(Change(kind, table, f"column {table}.{column} {detail}", unsafe, column))

    for old_name, new_name in renamed.items():
        add("column_renamed", old_name, f"renamed to {new_name}", True)
    for name in dropped:
        if name not in renamed:
            add("column_dropped", name, "dropped", True)
    for name in added:
        if name in renamed.values():
            continue
        column = new_cols[name]
        if column.not_null and not column.has_default:
            add("column_added", name, "added NOT NULL without a default", True)
        else:
            add("column_added", name, "added", False)
    for old in before:
        new_col = new_cols.get(old.name)
        if new_col is None:
            continue
        if new_col.type != old.type:
            add("type_changed", old.name, f"type {old.type} → {new_col.type}", True)
        if new_col.not_null and not old.not_null:
            add("not_null_added", old.name, "made NOT NULL", True)
        elif old.not_null and not new_col.not_null:
            add("not_null_dropped", old.name, "made nullable", False)
        if old.has_default and not new_col.has_default:
            add("default_dropped", old.name, "lost its default", new_col.not_null)
        elif new_col.has_default and not old.has_default:
            add("default_added", old.name, "got a default", False)
    return changes
