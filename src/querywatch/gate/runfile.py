"""The run file: what ``pytest --querywatch`` recorded, and the file ``querywatch check`` reads.

Per test id and fingerprint the run keeps the number of calls (in the test body, and separately
in its fixtures), the most one call into the application made (what N+1 is judged on) and the
call sites; per fingerprint the normalized text, the dialect, the databases it ran on and one
sample statement as issued, which EXPLAIN needs; the objects the run created, dropped or
registered itself (:mod:`querywatch.gate.objects`), the SQLite functions it registered (name and
arity: the check registers stand-ins to EXPLAIN with), and the plans judged while the tests ran
(:mod:`querywatch.gate.planned`). The sample holds *test* data only (the run comes from a test
suite), which is why it may carry literal values; nothing from production goes in a run file.
:class:`querywatch.gate.collect.Collector` fills it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from querywatch.atomic import write_atomic
from querywatch.errors import QuerywatchError
from querywatch.gate.planned import PlanRecord
from querywatch.records import CallSite

RUN_VERSION = 1
DEFAULT_RUN_PATH = Path(".querywatch/gate-run.json")
SESSION = "<session>"
"""The test id of statements issued outside any test (collection, plugins, session start)."""
MAX_SITES = 8  # call sites kept per fingerprint and test
MAX_SAMPLE = 100_000
"""Characters of a sample statement. A longer text is never cut (a cut statement does not parse):
the first text of the fingerprint that fits is kept, and if none does it is "too long to check".
Lint parses about 75,000 characters a second, so a longer sample would cost seconds apiece."""
_PLANNABLE = ("select", "with", "insert", "update", "delete", "replace", "values", "table", "(")
Registered = tuple[str, str, int]
"""A SQLite function the application registered on a connection: (kind, name, number of
arguments); kind is ``function``, ``aggregate``, ``window`` or ``collation`` (arity -1)."""


def is_plannable(normalized: str) -> bool:
    """Statements that read or write rows: the ones worth a lint and an EXPLAIN (not BEGIN, SET,
    PRAGMA, DDL…)."""
    return normalized.lstrip().lower().startswith(_PLANNABLE)


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
class RunStatement:
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
    statements: dict[str, RunStatement] = field(default_factory=dict)
    tests: dict[str, dict[str, Usage]] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)
    created_at: float = 0.0
    objects: set[str] = field(default_factory=set)  # created, dropped, altered, registered
    functions: set[Registered] = field(default_factory=set)  # registered on SQLite connections
    plans: dict[str, PlanRecord] = field(default_factory=dict)  # judged while the tests ran

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
            "functions": [list(f) for f in sorted(self.functions)],
            "plans": {fp: p.to_json() for fp, p in sorted(self.plans.items())},
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
            text = json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"
            write_atomic(target, text, make_parents=True)
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
                functions={(str(k), str(n), int(a)) for k, n, a in data.get("functions", [])},
                plans={str(fp): PlanRecord.from_json(p) for fp, p in data.get("plans", {}).items()},
            )
            for db_id, d in data["databases"].items():
                run.databases[db_id] = Database(db_id, str(d["dialect"]), str(d["target"]))
            for fp, s in data["statements"].items():
                run.statements[fp] = RunStatement(
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


def copy_run(run: GateRun) -> GateRun:
    """A copy that shares nothing mutable with ``run`` (the collector goes on recording)."""
    return GateRun(
        statements={
            fp: RunStatement(
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
        functions=set(run.functions),
        plans=dict(run.plans),  # records are never changed once made
    )
