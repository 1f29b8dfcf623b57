"""Recording while the tests run: which statements each test issued, how often and from where.

``pytest --querywatch`` fills a :class:`Collector` while the tests run and writes its
:class:`~querywatch.gate.runfile.GateRun` to ``.querywatch/gate-run.json``; ``querywatch check``
reads it back (:mod:`querywatch.gate.runfile` says what it holds). Two hooks let the plugin plan
statements while their database exists (:mod:`querywatch.gate.early`): ``on_new`` hears of each
new fingerprint that reads or writes rows, at first sight, before the statement runs, and
``on_database_ddl`` of each ``CREATE/ALTER/DROP DATABASE`` before it runs (the gate's own
sessions must not hold the database open). Statements the gate issues itself, on a thread
inside :meth:`Collector.muted`, are never recorded.

Who issued a statement is read from the stack. Test code is a ``test_*.py``, ``*_test.py`` or
``conftest.py`` file (or a file pytest collected tests from); everything else outside the standard
library and site-packages is the application. A statement issued by test code itself (a test or
fixture building data in a loop) is counted but never makes an N+1. Otherwise the outermost
application frame below the test is *the call*: a test that calls ``page()`` once, which runs
one query per row, makes one call with N statements (N+1); a test that loops over ``insert()``,
or a Hypothesis test whose body runs once per example, makes N calls of one statement each.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from querywatch.capture.callsite import display_path, is_library
from querywatch.gate.objects import ddl_objects, object_key
from querywatch.gate.planned import PlanRecord
from querywatch.gate.runfile import (
    DEFAULT_RUN_PATH,
    MAX_SAMPLE,
    MAX_SITES,
    RUN_VERSION,
    SESSION,
    Database,
    GateInputError,
    GateRun,
    RunStatement,
    Usage,
    copy_run,
    is_plannable,
)
from querywatch.records import CallSite
from querywatch.sql import fingerprint

__all__ = [
    "DEFAULT_RUN_PATH",
    "MAX_SAMPLE",
    "RUN_VERSION",
    "SESSION",
    "Collector",
    "Database",
    "GateInputError",
    "GateRun",
    "RunStatement",
    "Usage",
    "is_plannable",
]

NewStatement = Callable[[str, str, str, str], None]
"""``on_new(fingerprint, sample, dialect, database id)``."""
_DATABASE_DDL = ("create database", "alter database", "drop database")


class Collector:
    """Attributes every statement to the test running now; safe to call from any thread.

    ``record`` never raises into the application. Use :meth:`wrap` (or the pytest plugin's
    patched ``sqlite3.connect`` / ``psycopg.connect``) to route a connection's statements here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run = GateRun(created_at=time.time())
        self._test = SESSION
        self._in_body = True
        self._test_files: set[str] = set()
        self._is_test: dict[str, bool] = {}
        self._call_frame: FrameType | None = None  # the call of the last statement (see below)
        self._calls = 0
        self.closed = False
        self.errors = 0  # statements that could not be recorded (a bug in querywatch if not 0)
        self._local = threading.local()  # .muted: the gate's own statements on this thread
        self.on_new: NewStatement | None = None
        self.on_database_ddl: Callable[[], None] | None = None

    @contextmanager
    def muted(self) -> Iterator[None]:
        """Record nothing this thread issues in the block (the gate's own EXPLAIN sessions);
        connections opened in it are not instrumented at all."""
        before = getattr(self._local, "muted", False)
        self._local.muted = True
        try:
            yield
        finally:
            self._local.muted = before

    def is_muted(self) -> bool:
        return bool(getattr(self._local, "muted", False))

    # -- attribution --------------------------------------------------------------------------

    def enter(self, test_id: str, phase: str = "call", path: str | None = None) -> None:
        """From now on statements belong to ``test_id``; ``phase`` setup/call/teardown;
        ``path`` the test's file (test code, whatever its name)."""
        self._test = test_id
        self._in_body = phase == "call"
        self._call_frame = None
        if path is not None and (full := os.path.abspath(path)) not in self._test_files:
            self._test_files.add(full)
            self._is_test.clear()

    def leave(self) -> None:
        self._test = SESSION
        self._in_body = True
        self._call_frame = None

    @contextmanager
    def test(self, test_id: str) -> Iterator[Collector]:
        """Attribute the statements of a ``with`` block to ``test_id`` (for in-process use)."""
        previous, in_body = self._test, self._in_body
        self.enter(test_id)
        try:
            yield self
        finally:
            self._test, self._in_body = previous, in_body
            self._call_frame = None

    def is_test_code(self, filename: str) -> bool:
        """``test_*.py``, ``*_test.py``, ``conftest.py`` or a file pytest collected tests from."""
        known = self._is_test.get(filename)
        if known is None:
            base = os.path.basename(filename)
            known = self._is_test[filename] = (
                (base.startswith("test_") and base.endswith(".py"))
                or base.endswith("_test.py")
                or base == "conftest.py"
                or os.path.abspath(filename) in self._test_files
            )
        return known

    # -- databases and statements ---------------------------------------------------------------

    def database(self, dialect: str, target: str, secret_target: str | None = None) -> str:
        """The id of a database (registered on first sight)."""
        with self._lock:
            for db in self._run.databases.values():
                if db.dialect == dialect and db.target == target:
                    return db.id
            db_id = f"db{len(self._run.databases) + 1}"
            self._run.databases[db_id] = Database(db_id, dialect, target, secret_target)
            return db_id

    def database_of(self, db_id: str) -> Database | None:
        with self._lock:
            return self._run.databases.get(db_id)

    def registered(self, name: object, kind: str = "function", narg: object = -1) -> None:
        """A function, aggregate, window function or collation registered on a connection under
        ``name``: it exists only there, so the check registers a stand-in of the same name and
        arity on its EXPLAIN session (EXPLAIN QUERY PLAN never calls it)."""
        if isinstance(name, str) and not self.is_muted():
            arity = narg if isinstance(narg, int) and kind != "collation" else -1
            with self._lock:
                self._run.objects.add(object_key(name))
                self._run.functions.add((kind, name, arity))

    def planned(self, fp: str, record: PlanRecord) -> None:
        """Keep ``fp``'s plan as judged while its database existed (the check uses it)."""
        with self._lock:
            self._run.plans[fp] = record

    def plan_of(self, fp: str) -> PlanRecord | None:
        with self._lock:
            return self._run.plans.get(fp)

    def functions(self) -> frozenset[tuple[str, str, int]]:
        """The SQLite functions registered so far (see :meth:`registered`)."""
        with self._lock:
            return frozenset(self._run.functions)

    def record(self, sql: object, dialect: str, database: str | None = None) -> None:
        """Count one statement for the current test, with its call site."""
        if self.closed or self.is_muted():
            return
        try:
            text = sql if isinstance(sql, str) else _text_of(sql)
            fp = fingerprint(text, dialect)
            site, call, by_test = _origin(sys._getframe(1), self.is_test_code)
            first_sample = False
            with self._lock:
                stmt = self._run.statements.get(fp.id)
                fits = len(text) <= MAX_SAMPLE
                if stmt is None:
                    stmt = RunStatement(
                        fp.id,
                        fp.normalized,
                        dialect,
                        text if fits else None,
                        too_long=0 if fits else len(text),
                    )
                    self._run.statements[fp.id] = stmt
                    if fp.normalized.startswith(("create", "drop", "alter")):
                        self._run.objects.update(ddl_objects(fp.normalized))
                    first_sample = fits
                elif stmt.sample is None and fits:
                    stmt.sample, stmt.too_long = text, 0
                    first_sample = True
                if database is not None and database not in stmt.databases:
                    stmt.databases.append(database)
                    first_sample = first_sample or (
                        stmt.sample is not None and fp.id not in self._run.plans
                    )
                usages = self._run.tests.setdefault(self._test, {})
                usage = usages.get(fp.id)
                if usage is None:
                    usage = usages[fp.id] = Usage()
                if self._in_body:
                    usage.count += 1
                    if not by_test:
                        self._count_call(usage, call)
                else:
                    usage.fixture_count += 1
                if site is not None and (site in usage.sites or len(usage.sites) < MAX_SITES):
                    usage.sites[site] = usage.sites.get(site, 0) + 1
        except Exception:
            self.errors += 1
            return
        # The hooks run outside the lock: they EXPLAIN on sessions of their own (muted).
        if self.on_database_ddl is not None and fp.normalized.startswith(_DATABASE_DDL):
            self._hook(self.on_database_ddl)
        if (
            first_sample
            and self.on_new is not None
            and database is not None
            and is_plannable(fp.normalized)
        ):
            self._hook(self.on_new, fp.id, text, dialect, database)

    def _hook(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            with self.muted():
                hook(*args)
        except Exception:  # a bug of ours must never reach the application
            self.errors += 1

    def failed(self, sql: object, dialect: str) -> None:
        """The statement just recorded raised a database error when the test ran it."""
        try:
            text = sql if isinstance(sql, str) else _text_of(sql)
            with self._lock:
                stmt = self._run.statements.get(fingerprint(text, dialect).id)
                if stmt is not None:
                    stmt.errors += 1
        except Exception:
            self.errors += 1

    def _count_call(self, usage: Usage, call: FrameType | None) -> None:
        """Count the statement within its call. The frame of the last call is held until the
        next statement, so ``is`` tells a new call from the same one (a freed frame's id may be
        reused). Without a test frame on the stack (another thread) all calls count as one."""
        if call is None:
            number = -1
        else:
            if call is not self._call_frame:
                self._calls += 1
                self._call_frame = call
            number = self._calls
        if usage.last_call == number:
            usage.in_call += 1
        else:
            usage.last_call, usage.in_call = number, 1
        if usage.in_call > usage.max_per_call:
            usage.max_per_call = usage.in_call
            if call is not None:
                code = call.f_code
                usage.call = f"{code.co_qualname} ({display_path(code.co_filename)})"

    def run(self) -> GateRun:
        """A copy of what was recorded so far."""
        with self._lock:
            return copy_run(self._run)

    def close(self) -> GateRun:
        """Stop recording (connections still open record nothing more); returns the run."""
        self.closed = True
        self._call_frame = None
        return self.run()

    # -- connections ----------------------------------------------------------------------------

    def wrap(self, conn: Any) -> Any:
        """Record ``conn``'s statements: a psycopg 3 connection is instrumented in place and
        returned; any other DB-API connection (sqlite3's too) comes back as a recording proxy."""
        from querywatch.gate import connections

        return connections.wrap(self, conn)


def _origin(
    frame: FrameType | None, is_test: Callable[[str], bool]
) -> tuple[CallSite | None, FrameType | None, bool]:
    """(call site, the call, issued by test code): the call site is the innermost application
    frame; when that is test code, the test issued the statement itself; else the call is the
    outermost application frame below the first test frame (None when no test frame is found)."""
    site: CallSite | None = None
    call: FrameType | None = None
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if not is_library(filename):
            test = is_test(filename)
            if site is None:
                site = CallSite(display_path(filename), frame.f_lineno, code.co_qualname)
                if test:
                    return site, None, True
            elif test:
                return site, call, False
            call = frame
        frame = frame.f_back
    return site, None, False


def _text_of(sql: object) -> str:
    if isinstance(sql, bytes):
        return sql.decode("utf-8", "replace")
    return str(sql)
