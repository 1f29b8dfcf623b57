"""``implicit-cross-join``: tables listed with commas and nothing in WHERE linking one of them to
the others: every row of one is paired with every row of the other."""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.lint_parse import words_outside_strings
from querywatch.sql.rules._base import COMPARISONS, Ctx, Hit, LintRule, columns


def _source_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
        return node.alias_or_name.lower()
    return None


def _is_comma_join(join: exp.Join, ctx: Ctx) -> bool:
    if join.args.get("on") is not None or join.args.get("using"):
        return False
    if join.args.get("side") or join.args.get("method"):
        return False
    kind = str(join.args.get("kind") or "").upper()
    if not kind:
        return True
    # SQLite's parser records "a, b" as a CROSS JOIN; a written CROSS JOIN is deliberate.
    return (
        kind == "CROSS"
        and ctx.dialect == "sqlite"
        and not re.search(r"\bcross\b", words_outside_strings(ctx.text, "sqlite"), re.I)
    )


class _Groups:
    """Union-find over table names: which tables predicates link together."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        while self.parent.get(x, x) != x:
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for select in tree.find_all(exp.Select):
        joins: list[exp.Join] = list(select.args.get("joins") or [])
        comma = [j for j in joins if _is_comma_join(j, ctx)]
        comma_ids = {id(j) for j in comma}
        from_ = select.args.get("from") or select.args.get("from_")
        first = _source_name(from_.this) if isinstance(from_, exp.From) else None
        if not comma or first is None:
            continue
        groups = _Groups()
        for j in joins:
            name = _source_name(j.this)
            if name is not None and id(j) not in comma_ids:  # an explicit join is meant
                groups.union(name, first)
        where = select.args.get("where")
        predicates = list(where.find_all(*COMPARISONS)) if where is not None else []
        linked_all = False
        for pred in predicates:
            cols = columns(pred)
            if len(cols) < 2:
                continue
            if any(not c.table for c in cols):
                linked_all = True  # unqualified names: cannot tell which table, assume linked
                break
            ordered = sorted({c.table.lower() for c in cols})
            for a in ordered[1:]:
                groups.union(a, ordered[0])
        if linked_all:
            continue
        for j in comma:
            name = _source_name(j.this)
            if name is not None and groups.find(name) != groups.find(first):
                yield Hit(
                    j,
                    f"{name} is joined with a comma and nothing in WHERE links it to {first}: "
                    "every row of one is paired with every row of the other",
                    f"write an explicit JOIN {name} ON … (or CROSS JOIN if the product is meant)",
                    {"table": name, "joined_to": first},
                )


RULE: LintRule = Rule(
    "implicit-cross-join",
    "warning",
    "Tables listed with commas and no predicate linking them: a cartesian product.",
    check,
    needs_plan=True,  # rows x rows: harmless with a one-row table, the plan knows the sizes
)
