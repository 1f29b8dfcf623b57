"""``deep-offset``: ``OFFSET n`` produces and throws away n rows before the page; judged only
for a literal offset (a parameter cannot be judged statically)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule, unparen

DEEP_OFFSET = 1000


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Offset):
        value = unparen(node.expression) if node.expression is not None else None
        if not (isinstance(value, exp.Literal) and not value.is_string):
            continue
        try:
            offset = int(str(value.this))
        except ValueError:
            continue
        if offset < DEEP_OFFSET:
            continue
        yield Hit(
            node,
            f"OFFSET {offset} reads and throws away {offset} rows before returning any: each "
            "page costs more than the last",
            "use keyset pagination: WHERE sort_key > :last_seen ORDER BY sort_key LIMIT n",
            {"offset": offset, "threshold": DEEP_OFFSET},
        )


RULE: LintRule = Rule(
    "deep-offset",
    "warning",
    f"A literal OFFSET of {DEEP_OFFSET} or more (slow deep paging).",
    check,
    needs_plan=True,  # an OFFSET past the rows there are is free: the table decides
)
