"""The run file: which statements each test issued, how often and from where.

``pytest --querywatch`` fills a :class:`Collector` while the tests run and writes its
:class:`GateRun` to ``.querywatch/gate-run.json``; ``querywatch check`` reads it back. Per test id
and fingerprint the run keeps the number of calls (in the test body, and separately in its
fixtures), the most one call into the application made (what N+1 is judged on) and the call sites;
per fingerprint the normalized text, the dialect, the databases it ran on and one sample statement
as issued, which EXPLAIN needs; and the objects the run created, dropped or registered itself
(:mod:`querywatch.gate.objects`). The sample holds *test* data only (the run comes from a test
suite), which is why it may carry literal values; nothing from production goes in a run file.

Who issued a statement is read from the stack. Test code is a ``test_*.py``, ``*_test.py`` or
``conftest.py`` file (or a file pytest collected tests from); everything else outside the standard
library and site-packages is the application. A statement issued by test code itself (a test or
fixture building data in a loop) is counted but never makes an N+1. Otherwise the outermost
application frame below the test is *the call*: a test that calls ``page()`` once, which runs
one query per row, makes one call with N statements (N+1); a test that loops over ``insert()``,
or a Hypothesis test whose body runs once per example, makes N calls of one statement each.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from querywatch.capture.callsite import display_path, is_library
from querywatch.errors import QuerywatchError
from querywatch.gate.objects import ddl_objects, object_key
from querywatch.records import CallSite
from querywatch.sql import fingerprint

RUN_VERSION = 1
DEFAULT_RUN_PATH = Path(".querywatch/gate-run.json")
SESSION = "<session>"
"""The test id of statements issued outside any test (collection, plugins, session start)."""
MAX_SITES = 8  # call sites kept per fingerprint and test
MAX_SAMPLE = 100_000
"""Characters of a sample statement. A longer text is never cut (a cut statement does not parse):
the first text of the fingerprint that fits is kept, and if none does it is "too long to check".
Lint parses about 75,000 characters a second, so a longer sample would cost seconds apiece."""


class GateInputError(QuerywatchError):
    """The gate could not read what it checks (run file, baseline, EXPLAIN database): exit 2."""


@dataclass(frozen=True, slots=True)
class Database:
    """A database the tests talked to: a SQLite file path or a PostgreSQL conninfo.

    ``target`` never holds a password (it is written to the run file); ``secret_target`` is the
    same with the password, kept in memory for the check that ``pytest --querywatch`` runs itself.
    """

    id: str
    dialect: str
    target: str
    secret_target: str | None = field(default=None, compare=False, repr=False)

    @property
    def connect_target(self) -> str:
        return self.secret_target or self.target


@dataclass(slots=True)
class Statement:
    """One fingerprint over the whole run."""

    fingerprint: str
    normalized: str
    dialect: str
    sample: str | None = None  # the first statement as issued (test data, for EXPLAIN)
    databases: list[str] = field(default_factory=list)  # Database ids, first seen first
    too_long: int = 0  # the length of its texts when none fit in MAX_SAMPLE (then no sample)
    errors: int = 0  # times it raised a database error when the tests ran it


@dataclass(slots=True)
class Usage:
    """One fingerprint in one test: ``count`` in the test body, ``fixture_count`` in its setup
    and teardown; ``max_per_call`` the most times one call of the test body into the application
    issued it, and ``call`` that call (N+1 is judged on these: a fixture or a test loop that
    inserts rows one by one builds test data, it does not serve a page)."""

    count: int = 0
    fixture_count: int = 0
    sites: dict[CallSite, int] = field(default_factory=dict)
    max_per_call: int = 0
    call: str | None = None
    last_call: int = field(default=0, repr=False, compare=False)  # while recording
    in_call: int = field(default=0, repr=False, compare=False)


@dataclass(slots=True)
class GateRun:
    statements: dict[str, Statement] = field(default_factory=dict)
    tests: dict[str, dict[str, Usage]] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)
    created_at: float = 0.0
    objects: set[str] = field(default_factory=set)  # created, dropped, altered, registered

    def sites_of(self, fp: str) -> list[tuple[CallSite, int]]:
        """Every call site of ``fp`` over all tests, the busiest first."""
        totals: dict[CallSite, int] = {}
        for usages in self.tests.values():
            usage = usages.get(fp)
            if usage is not None:
                for site, n in usage.sites.items():
                    totals[site] = totals.get(site, 0) + n
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0].path, kv[0].line))

    def max_calls(self, fp: str) -> tuple[int, str | None]:
        """The most times one call into the application issued ``fp`` in a test body, and that
        test (ties: first by id)."""
        best, where = 0, None
        for test_id in sorted(self.tests):
            usage = self.tests[test_id].get(fp)
            if usage is not None and usage.max_per_call > best and test_id != SESSION:
                best, where = usage.max_per_call, test_id
        return best, where

    def tests_of(self, fp: str) -> list[str]:
        return sorted(t for t, usages in self.tests.items() if fp in usages)

    # -- the file ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RUN_VERSION,
            "created_at": self.created_at,
            "objects": sorted(self.objects),
            "databases": {
                d.id: {"dialect": d.dialect, "target": d.target}
                for d in sorted(self.databases.values(), key=lambda d: d.id)
            },
            "statements": {
                fp: {
                    "normalized": s.normalized,
                    "dialect": s.dialect,
                    "databases": list(s.databases),
                    "sample": s.sample,
                    **({"too_long": s.too_long} if s.too_long else {}),
                    **({"errors": s.errors} if s.errors else {}),
                }
                for fp, s in sorted(self.statements.items())
            },
            "tests": {
                test_id: {
                    fp: {
                        "count": u.count,
                        "fixture_count": u.fixture_count,
                        "max_per_call": u.max_per_call,
                        "call": u.call,
                        "sites": [
                            {"path": s.path, "line": s.line, "function": s.function, "count": n}
                            for s, n in sorted(
                                u.sites.items(), key=lambda kv: (-kv[1], kv[0].path, kv[0].line)
                            )
                        ],
                    }
                    for fp, u in sorted(usages.items())
                }
                for test_id, usages in sorted(self.tests.items())
            },
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
            tmp.replace(target)
        except OSError as exc:
            raise GateInputError(
                f"cannot write the run file {target}: {exc.strerror or exc}"
            ) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GateRun:
        source = Path(path)
        try:
            text = source.read_text()
        except FileNotFoundError:
            raise GateInputError(
                f"{source}: no run file; run the tests with `pytest --querywatch` first"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GateInputError(f"{source}: cannot read the run file: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GateInputError(
                f"{source}: the run file is not valid JSON (line {exc.lineno}: {exc.msg})"
            ) from None
        return cls.from_json(data, source=str(source))

    @classmethod
    def from_json(cls, data: Any, *, source: str = "run file") -> GateRun:
        if not isinstance(data, dict) or "version" not in data:
            raise GateInputError(f"{source}: not a querywatch run file (no version)")
        if data["version"] != RUN_VERSION:
            raise GateInputError(
                f"{source}: run file version {data['version']!r} is not supported (this querywatch"
                f" reads version {RUN_VERSION}); rerun `pytest --querywatch`"
            )
        try:
            run = cls(
                created_at=float(data.get("created_at", 0.0)),
                objects={str(x) for x in data.get("objects", [])},
            )
            for db_id, d in data["databases"].items():
                run.databases[db_id] = Database(db_id, str(d["dialect"]), str(d["target"]))
            for fp, s in data["statements"].items():
                run.statements[fp] = Statement(
                    fp,
                    str(s["normalized"]),
                    str(s["dialect"]),
                    None if s.get("sample") is None else str(s["sample"]),
                    [str(x) for x in s.get("databases", [])],
                    int(s.get("too_long", 0)),
                    int(s.get("errors", 0)),
                )
            for test_id, usages in data["tests"].items():
                run.tests[test_id] = {
                    fp: Usage(
                        int(u["count"]),
                        int(u.get("fixture_count", 0)),
                        {
                            CallSite(str(x["path"]), int(x["line"]), str(x["function"])): int(
                                x["count"]
                            )
                            for x in u.get("sites", [])
                        },
                        int(u.get("max_per_call", u["count"])),
                        None if u.get("call") is None else str(u["call"]),
                    )
                    for fp, u in usages.items()
                }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GateInputError(f"{source}: the run file is damaged ({_why(exc)})") from None
        unknown = {fp for usages in run.tests.values() for fp in usages} - set(run.statements)
        if unknown:
            raise GateInputError(
                f"{source}: the run file is damaged (tests name unknown fingerprint"
                f" {sorted(unknown)[0]})"
            )
        return run


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


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

    def registered(self, name: object) -> None:
        """A function, aggregate or collation registered on a connection under ``name``: it
        exists only there, so EXPLAIN after the run cannot see it."""
        if isinstance(name, str):
            with self._lock:
                self._run.objects.add(object_key(name))

    def record(self, sql: object, dialect: str, database: str | None = None) -> None:
        """Count one statement for the current test, with its call site."""
        if self.closed:
            return
        try:
            text = sql if isinstance(sql, str) else _text_of(sql)
            fp = fingerprint(text, dialect)
            site, call, by_test = _origin(sys._getframe(1), self.is_test_code)
            with self._lock:
                stmt = self._run.statements.get(fp.id)
                fits = len(text) <= MAX_SAMPLE
                if stmt is None:
                    stmt = Statement(
                        fp.id,
                        fp.normalized,
                        dialect,
                        text if fits else None,
                        too_long=0 if fits else len(text),
                    )
                    self._run.statements[fp.id] = stmt
                    if fp.normalized.startswith(("create", "drop", "alter")):
                        self._run.objects.update(ddl_objects(fp.normalized))
                elif stmt.sample is None and fits:
                    stmt.sample, stmt.too_long = text, 0
                if database is not None and database not in stmt.databases:
                    stmt.databases.append(database)
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
            return _copy(self._run)

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


def _copy(run: GateRun) -> GateRun:
    return GateRun(
        statements={
            fp: Statement(
                s.fingerprint,
                s.normalized,
                s.dialect,
                s.sample,
                list(s.databases),
                s.too_long,
                s.errors,
            )
            for fp, s in run.statements.items()
        },
        tests={
            t: {
                fp: Usage(u.count, u.fixture_count, dict(u.sites), u.max_per_call, u.call)
                for fp, u in usages.items()
            }
            for t, usages in run.tests.items()
        },
        databases=dict(run.databases),
        created_at=run.created_at,
        objects=set(run.objects),
    )


def _text_of(sql: object) -> str:
    if isinstance(sql, bytes):
        return sql.decode("utf-8", "replace")
    return str(sql)
