"""The shared store: many agents write to one PostgreSQL, in its own ``querywatch`` schema."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from querywatch.dsn import redact
from querywatch.errors import StoreError
from querywatch.store.base import T, Tx
from querywatch.store.sql_store import SqlStore

SCHEMA = "querywatch"
_MIGRATION_LOCK = 0x7177_5354  # pg_advisory_xact_lock key: one agent migrates at a time


def _reason(exc: psycopg.Error) -> str:
    """libpq's first line, without the host/port preamble the message already names."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    found = re.search(r'(?:port \d+|socket "[^"]*") failed: (.*)', text)
    if found:
        text = found.group(1)
    return redact(re.sub(r"^(?:FATAL|ERROR):\s+", "", text))


class _PgTx:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.cur = cur

    def run(self, sql: str, params: Sequence[object] = ()) -> None:
        self.cur.execute(sql.replace("?", "%s"), params or None)

    def run_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self.cur.executemany(sql.replace("?", "%s"), rows)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql.replace("?", "%s"), params or None)
        return self.cur.fetchall()

    def each(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        # The result sits in libpq's buffer; psycopg makes Python rows as they are taken.
        self.cur.execute(sql.replace("?", "%s"), params or None)
        return iter(self.cur)


class PostgresStore(SqlStore):
    """A psycopg 3 connection; every statement bounded by a short ``statement_timeout``.

    ``read_only=True`` makes the session read-only (``default_transaction_read_only``) and skips
    migrations: a command that only reads never creates the schema or writes a row.
    """

    def __init__(
        self, dsn: str, *, statement_timeout_ms: int = 10_000, read_only: bool = False
    ) -> None:
        self.dsn = dsn
        self.where = redact(dsn)
        self.statement_timeout_ms = statement_timeout_ms
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._connect()
        try:
            if read_only:
                self._check_readable("postgres")
            else:
                self._migrate("postgres")
        except StoreError:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            extra: dict[str, Any] = {}
            if "connect_timeout" not in conninfo_to_dict(self.dsn):
                extra["connect_timeout"] = 5
            conn = psycopg.connect(
                self.dsn, autocommit=True, application_name="querywatch-store", **extra
            )
            conn.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
            conn.execute(f"SET search_path = {SCHEMA}")
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {self.where}: {_reason(exc)}") from exc
        self._conn = conn
        return conn

    def _before_migrate(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE rights even when it exists.
        if not tx.rows("SELECT 1 FROM pg_namespace WHERE nspname = ?", (SCHEMA,)):
            tx.run(f"CREATE SCHEMA {SCHEMA}")

    def _lock_state(self, tx: Tx, key: str) -> None:
        # Row locks cannot cover a key not yet written; a transaction-scoped advisory lock on
        # the key does, and agents sharing this store all take it.
        tx.run("SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))", ("querywatch.state", key))

    def _run(self, fn: Callable[[_PgTx], T], *, write: bool = True) -> T:
        if write and self.read_only:
            raise self._read_only_error()
        with self._lock:
            for attempt in (1, 2):
                conn = self._conn if self._conn is not None and not self._conn.closed else None
                conn = conn or self._connect()
                try:
                    with conn.transaction(), conn.cursor() as cur:
                        return fn(_PgTx(cur))
                except psycopg.OperationalError as exc:
                    # The server restarted or dropped us: the transaction rolled back with the
                    # connection, so running it once more on a new one is safe.
                    if attempt == 1 and (conn.broken or conn.closed):
                        conn.close()
                        self._conn = None
                        continue
                    raise self._error(exc, write) from exc
                except psycopg.Error as exc:
                    raise self._error(exc, write) from exc
            raise AssertionError("unreachable: the second attempt returns or raises")

    def _error(self, exc: psycopg.Error, write: bool) -> StoreError:
        verb = "write" if write else "read"
        return StoreError(f"cannot {verb} the store {self.where}: {_reason(exc)}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
