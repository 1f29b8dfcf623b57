"""``order-by-random``: ``ORDER BY random()`` computes and sorts a random key for every row to
return a few."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule, shape, unparen

_SAMPLE = {
    "postgres": "TABLESAMPLE SYSTEM (…) or a random key range",
    "mysql": "a random key range (WHERE id >= ? ORDER BY id LIMIT n)",
    "sqlite": "a random key range (WHERE rowid >= ? ORDER BY rowid LIMIT n)",
}


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Ordered):
        if isinstance(unparen(node.this), exp.Rand):
            fn = shape(unparen(node.this), ctx.dialect)
            yield Hit(
                node,
                f"ORDER BY {fn} reads and sorts every matching row to return a few",
                f"pick random keys instead: {_SAMPLE[ctx.dialect]}, or sample in the application",
                {"function": fn},
            )


RULE: LintRule = Rule(
    "order-by-random",
    "warning",
    "ORDER BY random() sorts the whole result to pick rows.",
    check,
    needs_plan=True,  # sorting a hundred rows is nothing; the table's size decides
)
