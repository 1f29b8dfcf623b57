"""SQLAlchemy engines: cursor-level event listeners (sqlalchemy is imported only for engines).

``before_cursor_execute`` stamps the start on the execution context, ``after_cursor_execute``
records, ``handle_error`` records the failure (SQLAlchemy re-raises it). Batched inserts
("insertmanyvalues") are recorded once per batch SQLAlchemy sends.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from querywatch.capture.aggregate import StatementChannel

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mysql"}


def is_engine(target: object) -> bool:
    """True for a SQLAlchemy Engine or AsyncEngine, without importing SQLAlchemy otherwise."""
    if not type(target).__module__.startswith("sqlalchemy."):
        return False
    from sqlalchemy.engine import Engine

    return isinstance(getattr(target, "sync_engine", target), Engine)


def dialect_of(engine: Any) -> str:
    name = str(getattr(engine, "sync_engine", engine).dialect.name)
    return _DIALECTS.get(name, name)


def install(engine: Any, channel: StatementChannel) -> Callable[[], None]:
    """Listen on ``engine`` (an AsyncEngine's sync_engine); returns the undo."""
    from sqlalchemy import event

    target = getattr(engine, "sync_engine", engine)
    record = channel.record

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is not None:
            context._qw_t0 = perf_counter_ns()

    def after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        t1 = perf_counter_ns()
        t0 = getattr(context, "_qw_t0", None)
        if t0 is not None:
            context._qw_t0 = None
            record(statement, t0, t1, cursor.rowcount, 0)

    def on_error(ctx: Any) -> None:
        t1 = perf_counter_ns()
        context = ctx.execution_context
        t0 = getattr(context, "_qw_t0", None)
        if t0 is not None and ctx.statement is not None:
            context._qw_t0 = None
            record(ctx.statement, t0, t1, 0, 1)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", before),
        ("after_cursor_execute", after),
        ("handle_error", on_error),
    ]
    for name, fn in listeners:
        event.listen(target, name, fn)

    def uninstall() -> None:
        for name, fn in listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    return uninstall
