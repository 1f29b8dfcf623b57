"""EXPLAIN for incident evidence, best effort: one session per gathering, and the statement forms
EXPLAIN takes.

A database that cannot be reached or a statement EXPLAIN rejects becomes a reason string, never an
error for the Monitor. The safety rules of :mod:`querywatch.plans.explain` hold: read-only
sessions, a short statement timeout, plain EXPLAIN (never ANALYZE), HypoPG's hypothetical indexes
only in session memory. The EXPLAIN machinery (psycopg, sqlglot) is imported only when a session
first plans something.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from querywatch.plans.model import Dialect, Plan

if TYPE_CHECKING:
    from querywatch.plans.explain import Explainer

EXPLAINABLE = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE"})
"""First words of statements worth a plan (BEGIN, SET, SHOW… have none)."""


def explainable_sql(sql: str, dialect: str) -> str | None:
    """A normalized statement (``?`` placeholders) in a form EXPLAIN takes, or None when it is
    not a statement with a plan. PostgreSQL gets ``$1``, ``$2``… (a generic plan)."""
    text = sql.strip()
    first = text.split(None, 1)[0].upper().lstrip("(") if text else ""
    if first not in EXPLAINABLE:
        return None
    return text if dialect == "sqlite" else numbered_placeholders(text)


def numbered_placeholders(sql: str) -> str:
    """``?`` outside quotes and comments become ``$n``, numbered after any ``$n`` already there."""
    import re

    highest = max((int(m) for m in re.findall(r"\$(\d+)", sql)), default=0)
    out: list[str] = []
    i, n, count = 0, len(sql), highest
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # a doubled quote stays inside
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif ch == "?":
            count += 1
            out.append(f"${count}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def display_target(target: str) -> str:
    from querywatch.plans.explain import sqlite_path

    if sqlite_path(target) is not None:
        return target
    from querywatch.pg import display_dsn

    return display_dsn(target)


class ExplainSession:
    """One Explainer opened on first use; a target that cannot be opened, or a session that
    broke, is remembered so the next statement gets the same note instead of a new timeout."""

    def __init__(self, target: str, statement_timeout_ms: int) -> None:
        from querywatch.plans.explain import sqlite_path

        self.target = target
        self.statement_timeout_ms = statement_timeout_ms
        self.dialect: Dialect = "postgres" if sqlite_path(target) is None else "sqlite"
        self.display = display_target(target)
        self.explainer: Explainer | None = None
        self.broken: str | None = None

    def __enter__(self) -> ExplainSession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.explainer is not None:
            with contextlib.suppress(Exception):  # closing a dead session cannot matter
                self.explainer.close()

    def explain(self, sql: str) -> tuple[Plan | None, str | None]:
        """(plan, None), or (None, why not)."""
        from querywatch.errors import DatabaseUnavailable, QuerywatchError
        from querywatch.plans.explain import Explainer

        if self.broken is not None:
            return None, self.broken
        if self.explainer is None:
            try:
                self.explainer = Explainer(
                    self.target,
                    statement_timeout_ms=self.statement_timeout_ms,
                    application_name="querywatch monitor",
                )
            except QuerywatchError as exc:
                self.broken = str(exc)
                return None, self.broken
            except Exception as exc:  # e.g. a SQLite file that is not a database
                self.broken = f"cannot open {self.display}: {exc}"
                return None, self.broken
        try:
            return self.explainer.explain(sql), None
        except DatabaseUnavailable as exc:
            self.broken = str(exc)
            return None, self.broken
        except QuerywatchError as exc:
            return None, str(exc)
        except Exception as exc:  # best effort: the Monitor goes on without this plan
            return None, f"{type(exc).__name__}: {exc}"
