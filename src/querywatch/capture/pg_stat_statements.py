"""The pg_stat_statements source: per-fingerprint deltas of PostgreSQL's own statement counters.

pg_stat_statements keeps cumulative counters per (userid, dbid, queryid, toplevel). We snapshot
them each poll and yield the difference since the previous snapshot, summed per fingerprint (one
fingerprint may cover several entries: other users, IN-lists of other lengths, literal vs bound
parameters). Counters can go backwards (``pg_stat_statements_reset()``, a crash, eviction of an
entry): that is a new baseline, never a negative number. See docs/sources.md for the semantics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
from collections.abc import Iterator
from typing import Any

import psycopg

from querywatch import pg
from querywatch.capture.pgss_counters import (
    ColumnMap,
    Counters,
    Key,
    Raw,
    counters_sql,
    decode_entries,
    encode_entries,
    entry_delta,
    ident,
    key_of,
    key_parts,
    map_columns,
    pack,
    texts_sql,
)
from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.errors import DatabaseUnavailable, ExtensionMissing, SourceError
from querywatch.records import StatementWindow, window_start
from querywatch.sql import Fingerprint, fingerprint

log = logging.getLogger(__name__)

SOURCE_NAME = "pg_stat_statements"
STATE_VERSION = 3  # 2 listed entries as JSON arrays, 1 also kept dbid and blk_read_time; restored

TEXT_BATCH = 1000
"""Query texts read per query (each read makes the server scan its query-text file once)."""
STREAM_ROWS = 500
"""Counter rows libpq holds at once while a poll converts them (see ``_read``)."""

PRELOAD_FIX = (
    "pg_stat_statements is not loaded: add it to shared_preload_libraries in postgresql.conf "
    "(shared_preload_libraries = 'pg_stat_statements') and restart PostgreSQL"
)


class PgStatStatementsSource:
    """Polls pg_stat_statements of the database named by ``dsn`` (all users' entries).

    The first poll without restored state only establishes the baseline and yields nothing.
    A lost connection makes ``poll`` raise :class:`DatabaseUnavailable` once; the snapshot is kept,
    so the next successful poll yields the whole interval exactly.
    """

    def __init__(
        self,
        dsn: str,
        *,
        name: str = SOURCE_NAME,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        connect_timeout_s: int = 5,
        application_name: str = "querywatch",
    ) -> None:
        self.name = name
        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms
        self.connect_timeout_s = connect_timeout_s
        self.application_name = application_name
        self.notes: list[str] = []
        """Warnings from the last poll (hidden entries, evictions), for the agent to surface."""
        self._conn: pg.Connection | None = None
        self._schema = "public"
        self._cmap: ColumnMap | None = None
        self._has_info = False
        self._database: tuple[str, int] | None = None
        self._user = ""
        # the last snapshot: None until a baseline exists
        self._prev: dict[Key, Raw] | None = None
        self._prev_db: tuple[str, int] | None = None
        self._stats_reset: str | None = None
        self._dealloc: int | None = None
        self._fingerprints: dict[Key, Fingerprint | None] = {}
        self._shared: dict[str, Fingerprint] = {}  # one Fingerprint per id, shared by its keys
        self._warned_hidden = False

    # -- connection -----------------------------------------------------------------------

    def _connection(self) -> pg.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        conn = pg.connect(
            self.dsn,
            application_name=self.application_name,
            statement_timeout_ms=self.statement_timeout_ms,
            connect_timeout_s=self.connect_timeout_s,
        )
        try:
            self._inspect(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _inspect(self, conn: pg.Connection) -> None:
        """Find the extension, check it is usable, and detect the view's columns."""
        row = conn.execute(
            pg.tagged(
                "SELECT current_database(), d.oid::bigint, current_user "
                "FROM pg_catalog.pg_database d WHERE d.datname = current_database()"
            )
        ).fetchone()
        assert row is not None
        datname, dbid, self._user = str(row[0]), int(row[1]), str(row[2])
        self._database = (datname, dbid)
        ext = conn.execute(
            pg.tagged(
                "SELECT n.nspname FROM pg_catalog.pg_extension e "
                "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'pg_stat_statements'"
            )
        ).fetchone()
        preloaded = self._preloaded(conn)
        create_fix = f"run CREATE EXTENSION pg_stat_statements; in database {datname}"
        if ext is None:
            if preloaded is False:
                raise ExtensionMissing(f"{PRELOAD_FIX}, then {create_fix}")
            raise ExtensionMissing(f"pg_stat_statements is not installed: {create_fix}")
        if preloaded is False:
            raise ExtensionMissing(PRELOAD_FIX)
        self._schema = str(ext[0])
        qualified = f"{ident(self._schema)}.pg_stat_statements"
        cols = conn.execute(
            pg.tagged(
                "SELECT attname FROM pg_catalog.pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
            ),
            [qualified],
        ).fetchall()
        self._cmap = map_columns([str(c[0]) for c in cols])
        info = conn.execute(
            pg.tagged("SELECT to_regclass(%s) IS NOT NULL"),
            [f"{ident(self._schema)}.pg_stat_statements_info"],
        ).fetchone()
        self._has_info = bool(info and info[0])
        try:  # calls the function for real: LIMIT 0 would not
            conn.execute(
                pg.tagged(f"SELECT 1 FROM {ident(self._schema)}.pg_stat_statements(false) LIMIT 1")
            ).fetchall()
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            # the library is not loaded (we could not read shared_preload_libraries to tell)
            raise ExtensionMissing(PRELOAD_FIX) from exc

    @staticmethod
    def _preloaded(conn: pg.Connection) -> bool | None:
        """Whether shared_preload_libraries names pg_stat_statements; None if we may not read it."""
        try:
            row = conn.execute(
                pg.tagged("SELECT current_setting('shared_preload_libraries')")
            ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return None
        value = str(row[0]) if row else ""
        libs = [lib.strip().strip('"').rsplit("/", 1)[-1] for lib in value.split(",")]
        return any(lib in ("pg_stat_statements", "pg_stat_statements.so") for lib in libs)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    # -- polling --------------------------------------------------------------------------

    def poll(self, now: float) -> list[StatementWindow]:
        """Windows for what happened since the last poll; the first poll establishes the baseline.

        A connection found dead (server restarted, backend terminated) is replaced once within
        the same poll, so a database that is back up is not reported as unavailable.
        """
        reused = self._conn is not None
        try:
            return self._poll(now)
        except psycopg.Error as exc:
            lost = self._lost(exc)
            self._drop_connection()
            if not (lost and reused):
                raise self._error(exc, lost) from exc
        try:
            return self._poll(now)
        except psycopg.Error as exc:
            lost = self._lost(exc)
            self._drop_connection()
            raise self._error(exc, lost) from exc

    def _lost(self, exc: psycopg.Error) -> bool:
        if self._conn is None or self._conn.closed or self._conn.broken:
            return True
        return isinstance(exc, psycopg.OperationalError) and not isinstance(
            exc, psycopg.errors.QueryCanceled | psycopg.errors.ObjectNotInPrerequisiteState
        )

    def _error(self, exc: psycopg.Error, lost: bool) -> SourceError:
        where = pg.display_dsn(self.dsn)
        why = pg.reason(exc, self.dsn)
        if isinstance(exc, psycopg.errors.ObjectNotInPrerequisiteState):
            return ExtensionMissing(PRELOAD_FIX)  # unloaded since we connected
        if lost:
            return DatabaseUnavailable(f"lost connection to {where}: {why}")
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return SourceError(
                f"reading pg_stat_statements on {where} took longer than "
                f"{self.statement_timeout_ms} ms and was cancelled: {why}"
            )
        return SourceError(f"cannot read pg_stat_statements on {where}: {why}")

    def _read_info(self, conn: pg.Connection) -> tuple[str | None, int | None]:
        if not self._has_info:
            return None, None
        row = conn.execute(
            pg.tagged(
                f"SELECT stats_reset::text, dealloc FROM {ident(self._schema)}"
                ".pg_stat_statements_info"
            )
        ).fetchone()
        if row is None:
            return None, None
        return (
            str(row[0]) if row[0] is not None else None,
            int(row[1]) if row[1] is not None else None,
        )

    def _read(self, conn: pg.Connection) -> tuple[dict[Key, Raw], int, str | None, int | None]:
        """Counters of this database, read between two identical stats_reset readings.

        Rows are converted one at a time as the loop takes them (never a whole list of rows),
        and each entry keeps only its counters, packed in one bytes record (:func:`pack`).
        """
        assert self._cmap is not None
        sql = counters_sql(self._schema, self._cmap)
        prev = self._prev or {}
        for _ in range(3):
            before = self._read_info(conn)
            current: dict[Key, Raw] = {}
            hidden = 0
            # Streamed in chunks: the whole result would sit in libpq (and so in malloc's heap,
            # which keeps it) while Python converts it.
            for r in conn.cursor().stream(sql, size=STREAM_ROWS):
                if r[2] is None:  # another user's entry, and we lack pg_read_all_stats
                    hidden += 1
                    continue
                key = key_of(r[0], r[2], r[3])
                raw = pack(r, 4)
                old = prev.get(key)
                # An unchanged entry keeps the record it had: only changed ones cost memory.
                current[key] = old if old == raw else raw
            after = self._read_info(conn)
            if before == after:
                break
        return current, hidden, after[0], after[1]

    def _poll(self, now: float) -> list[StatementWindow]:
        conn = self._connection()
        notes: list[str] = []
        if self._prev is not None and self._prev_db is not None and self._prev_db != self._database:
            notes.append(
                f"stored pg_stat_statements state was for database {self._prev_db[0]} "
                f"(oid {self._prev_db[1]}), not this one: starting a new baseline"
            )
            self._prev = None
        current, hidden, stats_reset, dealloc = self._read(conn)
        if hidden:
            notes.append(
                f"{hidden} pg_stat_statements entries of other users are hidden from "
                f"{self._user}: GRANT pg_read_all_stats TO {self._user}"
            )
            if not self._warned_hidden:
                log.warning("%s", notes[-1])
                self._warned_hidden = True
        prev = self._prev
        if prev is None:
            self._commit(current, stats_reset, dealloc)
            self.notes = notes
            return []
        full_reset = self._stats_reset is not None and stats_reset != self._stats_reset
        if (
            not full_reset
            and dealloc is not None
            and self._dealloc is not None
            and dealloc > self._dealloc
        ):
            notes.append(
                f"pg_stat_statements evicted {dealloc - self._dealloc} entries since the last poll "
                "(some statements may be undercounted): raise pg_stat_statements.max"
            )
        # Which entries moved: most entries, most polls, are the very record they were (after a
        # full reset every entry starts again, whatever its counters).
        changed = (
            list(current)
            if full_reset
            else [k for k, raw in current.items() if raw is not prev.get(k)]
        )
        self._resolve([k for k in changed if k not in self._fingerprints], conn)
        per_fp: dict[str, StatementWindow] = {}
        start = window_start(now)
        for key in changed:
            old = None if full_reset else prev.get(key)
            d = entry_delta(Counters.of(current[key]), None if old is None else Counters.of(old))
            if d is None:
                continue
            if key not in self._fingerprints:
                # text vanished (evicted meanwhile): keep the old baseline so nothing is lost
                if old is not None and not Counters.of(current[key]).restarted_since(
                    Counters.of(old)
                ):
                    current[key] = old
                else:
                    del current[key]
                continue
            fp = self._fingerprints[key]
            if fp is None:  # one of our own queries
                continue
            w = per_fp.get(fp.id)
            if w is None:
                per_fp[fp.id] = StatementWindow(
                    fingerprint=fp.id,
                    normalized=fp.normalized,
                    window_start=start,
                    calls=d.calls,
                    total_ms=d.total_ms,
                    max_ms=d.max_ms,
                    dialect="postgres",
                    source=SOURCE_NAME,
                    min_ms=d.min_ms,
                    rows=d.rows,
                    shared_blks_hit=d.blks_hit,
                    shared_blks_read=d.blks_read,
                )
            else:
                w.calls += d.calls
                w.total_ms += d.total_ms
                w.max_ms = max(w.max_ms, d.max_ms)
                w.min_ms = d.min_ms if w.min_ms is None else min(w.min_ms, d.min_ms)
                w.rows += d.rows
                w.shared_blks_hit += d.blks_hit
                w.shared_blks_read += d.blks_read
        self._commit(current, stats_reset, dealloc)
        self.notes = notes
        return sorted(per_fp.values(), key=lambda w: -w.total_ms)

    def _resolve(self, keys: list[Key], conn: pg.Connection) -> None:
        """Fingerprint entries seen for the first time (None marks querywatch's own queries).

        Only these entries' texts are read, and only their fingerprints are kept (not the texts:
        the fingerprint cache is bypassed, since each text is fingerprinted once).
        """
        if not keys:
            return
        assert self._cmap is not None
        wanted = set(keys)
        queryids = sorted({key_parts(k)[1] for k in keys})
        sql = texts_sql(self._schema, self._cmap)
        # In batches: the texts of 10,000 new entries at once would be megabytes held twice
        # (libpq's result and Python's), for the life of the process once malloc has them.
        for at in range(0, len(queryids), TEXT_BATCH):
            for r in conn.execute(sql, [queryids[at : at + TEXT_BATCH]]):
                key = key_of(r[0], r[2], r[3])
                text = r[4]
                if key not in wanted or text is None:
                    continue
                if pg.TAG in text:
                    self._fingerprints[key] = None
                    continue
                fp = fingerprint(text, "postgres", remember=False)
                # Entries of one fingerprint (other users, literal and bound forms) share one
                # copy.
                self._fingerprints[key] = self._shared.setdefault(fp.id, fp)

    def _commit(
        self, snapshot: dict[Key, Raw], stats_reset: str | None, dealloc: int | None
    ) -> None:
        self._prev = snapshot
        self._prev_db = self._database
        self._stats_reset = stats_reset
        self._dealloc = dealloc
        gone = [k for k in self._fingerprints if k not in snapshot]
        for key in gone:
            del self._fingerprints[key]
        if gone:
            live = {fp.id for fp in self._fingerprints.values() if fp is not None}
            for fp_id in [i for i in self._shared if i not in live]:
                del self._shared[fp_id]

    # -- state ----------------------------------------------------------------------------

    def snapshot_state(self) -> str:
        """The last snapshot as JSON: restoring it makes the next poll yield exact deltas.

        ``entries`` holds every entry's key and counters in :func:`encode_entries`'s packed
        text (the agent stores this after every poll, for every entry); its dbid is the
        database's.
        """
        return json.dumps(
            {
                "version": STATE_VERSION,
                "database": list(self._prev_db) if self._prev_db else None,
                "stats_reset": self._stats_reset,
                "dealloc": self._dealloc,
                "entries": None if self._prev is None else encode_entries(self._prev.items()),
            },
            separators=(",", ":"),
        )

    def restore_state(self, state: str) -> None:
        """Resume from :meth:`snapshot_state`; unreadable state is ignored (a new baseline)."""
        try:
            data = json.loads(state)
            version = data.get("version")
            if version not in (1, 2, STATE_VERSION):
                raise ValueError(f"state version {version!r}")
            entries = data["entries"]
            db = data["database"]
            prev_db = (str(db[0]), int(db[1])) if db else None
            prev: dict[Key, Raw] | None = None
            if entries is not None and prev_db is None and version != 1:
                raise ValueError("entries without a database")
            if version == STATE_VERSION and entries is not None:
                prev = dict(decode_entries(entries))
            elif entries is not None:
                prev = dict(_listed_entries(entries, version))
            stats_reset = data.get("stats_reset")
            dealloc = data.get("dealloc")
        except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
            log.warning(
                "ignoring unreadable pg_stat_statements state (%s): starting a new baseline", exc
            )
            self._prev = None
            return
        self._prev, self._prev_db = prev, prev_db
        self._stats_reset = None if stats_reset is None else str(stats_reset)
        self._dealloc = None if dealloc is None else int(dealloc)

    def close(self) -> None:
        self._drop_connection()


def _listed_entries(entries: list[list[Any]], version: int) -> Iterator[tuple[Key, Raw]]:
    """Entries of a state written before version 3, one JSON array each."""
    for e in entries:
        if version == 1:  # [userid, dbid, queryid, toplevel, ..., blk_read_ms, ...]
            e = [e[0], e[2], e[3], *e[4:11], *e[12:14]]
        top = None if e[2] is None else bool(e[2])
        raw = pack(
            (
                int(e[3]),
                float(e[4]),
                float(e[5]),
                float(e[6]),
                int(e[7]),
                int(e[8]),
                int(e[9]),
                None if e[10] is None else str(e[10]),
                None if e[11] is None else str(e[11]),
            )
        )
        yield key_of(int(e[0]), int(e[1]), top), raw
