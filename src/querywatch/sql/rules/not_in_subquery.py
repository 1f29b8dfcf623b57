"""``not-in-subquery``: ``x NOT IN (SELECT …)`` is empty once the subquery yields a NULL, and
for that reason is often planned as a subplan per row instead of an anti-join."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule, shape, unparen


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Not):
        inner = unparen(node.this)
        if isinstance(inner, exp.In) and inner.args.get("query") is not None:
            subject = shape(inner.this, ctx.dialect)
            yield Hit(
                node,
                f"{subject} NOT IN (SELECT …) is empty as soon as the subquery returns a NULL, "
                "and the planner often cannot turn it into an anti-join (a subplan per row)",
                "rewrite as NOT EXISTS (SELECT 1 FROM … WHERE inner.col = outer.col)",
                {"subject": subject},
            )


RULE: LintRule = Rule(
    "not-in-subquery",
    "warning",
    "NOT IN (SELECT …): no rows at all once the subquery yields a NULL; often not an anti-join.",
    check,
    needs_plan=True,  # a hashed subplan over a small subquery is cheap; NULLs need the schema
)
