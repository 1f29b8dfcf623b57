"""``update-or-delete-without-where``: the statement changes every row of the table. The advice
for emptying a table on purpose depends on the database: SQLite has no TRUNCATE (its DELETE
without WHERE is already the fast "truncate optimization").

Whether it hurts depends on the table: emptying a 50-row table is nothing, and code that does it
usually means to (purge and rewrite helpers, fixtures: every one seen in trials on real projects
was deliberate). So the rule is ``needs_plan``: where a plan exists, the plan rule ``large-write``
judges the rows written, WHERE or not; elsewhere it is a note unless tables are assumed large."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import Ctx, Hit, LintRule

_SUPPRESS = "querywatch: ignore[update-or-delete-without-where]"
_EMPTY_ON_PURPOSE = {
    "postgres": "to empty the table on purpose use TRUNCATE (no per-row locks or WAL), or",
    "mysql": "to empty the table on purpose use TRUNCATE TABLE (no per-row locks or binlog "
    "rows), or",
    "sqlite": "SQLite has no TRUNCATE: a DELETE without WHERE already empties the table fast "
    "(its truncate optimization, unless the table has triggers), so if that is meant,",
}


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for node in tree.find_all(exp.Update, exp.Delete):
        if node.args.get("where") is not None:
            continue
        verb = "UPDATE" if isinstance(node, exp.Update) else "DELETE"
        target = node.this
        table = target.sql(dialect=ctx.dialect) if isinstance(target, exp.Table) else "the table"
        if verb == "DELETE":
            purpose = _EMPTY_ON_PURPOSE[ctx.dialect]
        else:
            purpose = "if every row is meant (a backfill in a migration),"
        yield Hit(
            node,
            f"{verb} of {table} has no WHERE: it changes every row and locks the whole table",
            f"add the WHERE clause that selects the rows meant; {purpose} suppress with "
            + _SUPPRESS,
            {"statement": verb.lower(), "table": table},
        )


RULE: LintRule = Rule(
    "update-or-delete-without-where",
    "error",
    "UPDATE or DELETE without WHERE changes every row of the table.",
    check,
    needs_plan=True,  # a whole-table write of a few rows is nothing: the plan knows the size
)
