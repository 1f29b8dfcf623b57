"""``leading-wildcard-like``: a LIKE pattern that starts with ``%`` or ``_`` has no prefix for a
b-tree index to seek, so every row is read and matched."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule, shape, unparen

_SEARCH_FIX = {
    "postgres": "a trigram index (CREATE EXTENSION pg_trgm; CREATE INDEX … USING gin "
    "(col gin_trgm_ops)) or full-text search",
    "mysql": "a FULLTEXT index with MATCH … AGAINST",
    "sqlite": "an FTS5 virtual table",
}


def _leftmost(node: exp.Expr) -> exp.Expr:
    """The first piece of a concatenation (``'%' || $1``, ``CONCAT('%', ?)``)."""
    node = unparen(node)
    while True:
        if isinstance(node, exp.DPipe):
            node = unparen(node.this)
        elif isinstance(node, exp.Concat | exp.ConcatWs) and node.expressions:
            parts = node.expressions[1:] if isinstance(node, exp.ConcatWs) else node.expressions
            if not parts:
                return node
            node = unparen(parts[0])
        else:
            return node


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Like, exp.ILike):
        first = _leftmost(node.expression)
        if not (isinstance(first, exp.Literal) and first.is_string):
            continue
        pattern = first.this
        if not pattern or pattern[0] not in "%_":
            continue
        if first is unparen(node.expression) and not pattern.strip("%"):
            continue  # LIKE '%' alone matches every non-NULL value: not a search
        op = "ILIKE" if isinstance(node, exp.ILike) else "LIKE"
        subject = shape(node.this, ctx.dialect)
        yield Hit(
            node,
            f"{subject} {op} '{pattern[0]}…' starts with a wildcard: no b-tree index on "
            f"{subject} can be used, every row is read",
            f"anchor the pattern at the start ('abc%') or use {_SEARCH_FIX[ctx.dialect]}",
            {"operator": op, "subject": subject, "wildcard": pattern[0]},
        )


RULE: LintRule = Rule(
    "leading-wildcard-like",
    "warning",
    "LIKE/ILIKE with a pattern that starts with a wildcard cannot use a b-tree index.",
    check,
    needs_plan=True,  # reading every row is fine on a small table, or with a trigram index
)
