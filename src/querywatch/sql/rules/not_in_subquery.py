"""``not-in-subquery``: ``x NOT IN (SELECT y …)`` has two costs, neither visible in the text.

- Correctness: it is empty as soon as one ``y`` is NULL. That only happens when ``y`` can be NULL
  (a nullable column; a NOT NULL primary key cannot), which is the schema's to say: the message
  says "if". A subquery that filters ``y IS NOT NULL`` itself, or selects a literal, has no hazard.
- Work (PostgreSQL): because of that NULL rule it is never planned as an anti-join: a hashed
  subplan when the subquery's rows fit in ``work_mem`` (cheap), a subplan re-run per outer row
  when they do not. Which one is for the plan to say: the rule is ``needs_plan``. SQLite builds
  the subquery's rows into a temporary index once and probes it (cheap); MySQL's choice varies by
  version: there only the NULL hazard is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule, shape, unparen

_WORK = {
    "postgres": "PostgreSQL cannot plan it as an anti-join: a hashed subplan if the subquery's "
    "rows fit in work_mem, re-run for every outer row if not",
}


def _first_select(query: exp.Expr) -> exp.Select | None:
    node = unparen(query)
    while isinstance(node, exp.Subquery | exp.SetOperation):
        node = unparen(node.this)
    return node if isinstance(node, exp.Select) else None


def _filters_nulls(select: exp.Select, item: exp.Expr) -> bool:
    """True when the subquery's WHERE says ``item IS NOT NULL`` at its top level."""
    where = select.args.get("where")
    stack = [where.this] if isinstance(where, exp.Where) else []
    while stack:
        node = unparen(stack.pop())
        if isinstance(node, exp.And):
            stack.extend((node.this, node.expression))
            continue
        negated = isinstance(node, exp.Not)
        inner = unparen(node.this) if negated else node
        if (
            isinstance(inner, exp.Is)
            and isinstance(inner.expression, exp.Null)
            and (negated != bool(inner.args.get("negate")))
            and inner.this == item
        ):
            return True
    return False


def _null_hazard(query: exp.Expr) -> tuple[exp.Expr | None, bool]:
    """The subquery's output (when it is one expression) and whether it may be NULL."""
    select = _first_select(query)
    if select is None or len(select.expressions) != 1:
        return None, True
    item = select.expressions[0]
    value = unparen(item.this if isinstance(item, exp.Alias) else item)
    if isinstance(value, exp.Literal | exp.Count):
        return None, False  # a constant or a count is never NULL
    return value, not _filters_nulls(select, value)


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Not):
        inner = unparen(node.this)
        if not (isinstance(inner, exp.In) and inner.args.get("query") is not None):
            continue
        subject = shape(inner.this, ctx.dialect)
        output, may_be_null = _null_hazard(inner.args["query"])
        column = shape(output, ctx.dialect) if output is not None else None
        work = _WORK.get(ctx.dialect)
        head = f"{subject} NOT IN (SELECT {column} …)" if column else f"{subject} NOT IN (SELECT …)"
        if may_be_null:
            what = column or "the subquery's column"
            message = f"{head}: if {what} can be NULL, no row passes once the subquery returns one"
            message += f"; and {work}" if work else ""
        elif work:
            message = f"{head}: {work}"
        else:
            continue  # no NULL to fear, and the planner handles it well
        yield Hit(
            node,
            message,
            "rewrite as NOT EXISTS (SELECT 1 FROM … WHERE inner.col = outer.col): an anti-join "
            "that ignores NULLs (the same rows when the column is NOT NULL)",
            {"subject": subject, "subquery_column": column, "null_hazard": may_be_null},
        )


RULE: LintRule = Rule(
    "not-in-subquery",
    "warning",
    "NOT IN (SELECT …): no rows at all if the subquery's column yields a NULL; never an "
    "anti-join in PostgreSQL.",
    check,
    needs_plan=True,  # a hashed subplan over a small subquery is cheap; NULLs need the schema
)
