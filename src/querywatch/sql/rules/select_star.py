"""``select-star``: advice (info) — ``SELECT *`` reads every column and changes shape when a
column is added. Never fails the CI gate."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule


def _in_exists(select: exp.Select) -> bool:
    parent = select.parent
    while isinstance(parent, exp.Subquery | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Exists)


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for select in tree.find_all(exp.Select):
        if _in_exists(select):
            continue
        for e in select.expressions:
            if isinstance(e, exp.Star) or (
                isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
            ):
                yield Hit(
                    e,
                    "SELECT * reads every column: more I/O and network, no index-only scans, and "
                    "results change shape when a column is added",
                    "name the columns the code uses",
                    {"projection": e.sql(dialect=ctx.dialect)},
                )
                break


RULE: LintRule = Rule(
    "select-star", "info", "SELECT * reads every column and breaks when columns change.", check
)
