"""``cast-on-column-in-where``: an index on a column holds the column's values, not a cast or
function of them, so ``WHERE lower(email) = ?`` reads every row."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import COMPARISONS, Ctx, Hit, LintRule, columns, shape, unparen

# Functions whose result is not "the column, transformed": aggregates and window calls are not
# allowed in WHERE anyway; JSON extraction is how a JSON column is read, not a defeated index.
_NOT_TRANSFORMS = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "AggFunc",
            "JSONExtract",
            "JSONExtractScalar",
            "JSONBExtract",
            "JSONBExtractScalar",
            "Window",
        )
    )
    if isinstance(t, type)
)
_RESETS = (exp.Select, exp.Subquery, exp.Having, exp.Order, exp.Group)


def _comparisons(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    """Comparisons that sit in a WHERE ("where") or a JOIN … ON ("on") of their own query, in
    one pass down the tree (climbing from each comparison is quadratic on long OR chains)."""
    stack: list[tuple[exp.Expr, str | None]] = [(tree, None)]
    while stack:
        node, clause = stack.pop()
        if clause is not None and isinstance(node, COMPARISONS):
            yield node, clause
        if isinstance(node, exp.Where):
            clause = "where"
        elif isinstance(node, _RESETS):
            clause = None
        on = node.args.get("on") if isinstance(node, exp.Join) else None
        for child in node.iter_expressions():
            if isinstance(node, exp.Join):
                stack.append((child, "on" if child is on else None))
            else:
                stack.append((child, clause))


def _wrapped_column(side: exp.Expr) -> tuple[exp.Func, exp.Column] | None:
    side = unparen(side)
    if not isinstance(side, exp.Func) or isinstance(side, _NOT_TRANSFORMS):
        return None
    cols = columns(side)
    return (side, cols[0]) if cols else None


def _sides(cmp: exp.Expr) -> list[tuple[exp.Expr, list[exp.Expr]]]:
    if isinstance(cmp, exp.In):
        if cmp.args.get("query") is not None or cmp.args.get("unnest") is not None:
            return []
        return [(cmp.this, list(cmp.expressions))]
    if isinstance(cmp, exp.Between):
        return [(cmp.this, [cmp.args["low"], cmp.args["high"]])]
    left, right = cmp.this, cmp.expression
    return [(left, [right]), (right, [left])]


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for cmp, clause in _comparisons(tree):
        for side, others in _sides(cmp):
            wrapped = _wrapped_column(side)
            if wrapped is None or any(o is None or columns(o) for o in others):
                continue
            func, col = wrapped
            fname = (
                func.name.lower()
                if isinstance(func, exp.Anonymous)
                else "cast"
                if isinstance(func, exp.Cast)
                else func.sql_name().lower()
            )
            expr = shape(func, ctx.dialect)
            where = "WHERE" if clause == "where" else "JOIN … ON"
            yield Hit(
                cmp,
                f"{expr} in {where} wraps column {col.sql(dialect=ctx.dialect)}: an index on "
                "the column cannot be used for this comparison",
                f"compare the bare column (convert the value instead, e.g. a range for dates), "
                f"or create an index on the expression: CREATE INDEX … (({expr}))",
                {"clause": clause, "expression": expr, "column": col.name, "function": fname},
            )
            break


RULE: LintRule = Rule(
    "cast-on-column-in-where",
    "warning",
    "A cast or function around a column in WHERE/ON, compared to a value, defeats the index "
    "on that column.",
    check,
)
