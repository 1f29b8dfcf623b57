"""The CI gate for a Django project: statements per test through Django's hook, the test
database's setup left out, and N+1 findings that name the ORM relation.

Both runners use it: the pytest plugin (pytest-django, :mod:`.pytest_plugin`) and
``manage.py test`` (:mod:`.runner`). A wrapper on every Django connection hands each statement to
the gate's :class:`~querywatch.gate.collect.Collector` before it runs, so its call site is the
project's line and the gate EXPLAINs it on the database it runs on (the test database); the
statement itself then runs muted, so the gate's own psycopg recording (``pytest --querywatch``
patches ``psycopg.connect``) does not count it twice. While Django creates, migrates and
serializes the test database (:meth:`DjangoGate.setting_up`) nothing is recorded: migrations
and Django's own bookkeeping are not the project's queries.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from django.db import DatabaseError

from querywatch.contrib.django.hooks import ConnectionHook, dialect_of, skip_django_frames
from querywatch.contrib.django.orm import advise
from querywatch.findings import Finding
from querywatch.gate.check import CheckReport
from querywatch.gate.collect import Collector
from querywatch.gate.connections import sqlite_target
from querywatch.gate.nplusone import N_PLUS_ONE

UID = "querywatch.gate"
_DATABASE_DDL = ("create database", "drop database", "alter database")


class GateExecute:
    """The execute wrapper of the gate: record, then run muted."""

    __slots__ = ("dialect", "gate", "querywatch_uid")

    def __init__(self, gate: DjangoGate, dialect: str) -> None:
        self.gate = gate
        self.dialect = dialect

    def __call__(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        gate = self.gate
        collector = gate.collector
        if collector.closed or not gate.hook.installed:
            return execute(sql, params, many, context)
        if gate.in_setup:
            gate.database_ddl(sql)
            with collector.muted():
                return execute(sql, params, many, context)
        collector.record(sql, self.dialect, gate.database(context["connection"]))
        with collector.muted():
            try:
                return execute(sql, params, many, context)
            except DatabaseError:  # a test of error handling: EXPLAIN may reject it too
                collector.failed(sql, self.dialect)
                raise


class DjangoGate:
    """Routes Django's statements to ``collector`` while :meth:`install`-ed."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.in_setup = False
        self.hook = ConnectionHook(UID, lambda conn: GateExecute(self, dialect_of(conn)))

    def install(self) -> None:
        skip_django_frames()
        self.hook.install()

    def uninstall(self) -> None:
        self.hook.uninstall()

    @contextlib.contextmanager
    def setting_up(self) -> Iterator[None]:
        """Record nothing in the block: Django builds the test database in it."""
        before = self.in_setup
        self.in_setup = True
        try:
            with self.collector.muted():
                yield
        finally:
            self.in_setup = before

    def database_ddl(self, sql: Any) -> None:
        """Let the gate close its sessions before a database is created or dropped (its
        sessions must not hold the template or the test database open)."""
        hook = self.collector.on_database_ddl
        if hook is not None and str(sql).lstrip().lower().startswith(_DATABASE_DDL):
            with contextlib.suppress(Exception):
                hook()

    def database(self, connection: Any) -> str | None:
        """The collector's id of the database ``connection`` talks to (the test database)."""
        raw = connection.connection
        known = getattr(connection, "_querywatch_gate_db", None)
        if known is not None and known[0] is raw:
            return str(known[1])
        db_id = self._register(connection, raw)
        connection._querywatch_gate_db = (raw, db_id)
        return db_id

    def _register(self, connection: Any, raw: Any) -> str | None:
        dialect = dialect_of(connection)
        if dialect == "sqlite":
            target = sqlite_target(raw) if isinstance(raw, sqlite3.Connection) else None
            return None if target is None else self.collector.database("sqlite", target)
        if dialect != "postgres":
            return None
        from psycopg.conninfo import make_conninfo

        info = getattr(raw, "info", None)
        dsn = getattr(info, "dsn", None)
        if isinstance(dsn, str) and hasattr(raw, "pgconn"):  # psycopg 3: never has the password
            password = raw.pgconn.password
            secret = make_conninfo(dsn, password=password.decode()) if password else None
            return self.collector.database("postgres", dsn, secret)
        s = connection.settings_dict  # psycopg2: from the settings
        params = {
            "dbname": s.get("NAME"),
            "user": s.get("USER"),
            "host": s.get("HOST"),
            "port": str(s["PORT"]) if s.get("PORT") else None,
        }
        target = make_conninfo("", **{k: v for k, v in params.items() if v})
        secret = make_conninfo(target, password=s["PASSWORD"]) if s.get("PASSWORD") else None
        return self.collector.database("postgres", target, secret)


def advise_report(report: CheckReport) -> int:
    """Name the ORM relation in the report's N+1 findings (``Order.customer is loaded lazily…``,
    ``select_related("customer")``); returns how many were named. Needs Django's models loaded."""
    changed: dict[int, Finding] = {}
    for q in report.queries:
        context = [o.normalized for o in report.queries if set(o.tests) & set(q.tests)]
        for i, f in enumerate(q.findings):
            if f.rule != N_PLUS_ONE:
                continue
            advice = advise(q.normalized, context)
            if not advice:
                continue
            best = advice[0]
            named = replace(
                f,
                message=f"{f.message}: {best.message}",
                fix=best.fix,
                evidence={**f.evidence, "django": best.as_dict()},
            )
            changed[id(f)] = named
            q.findings[i] = named
    for findings in (report.new, report.accepted, report.regressions):
        findings[:] = [changed.get(id(f), f) for f in findings]
    return len(changed)
