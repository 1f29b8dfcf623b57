"""`large-write`: one UPDATE, DELETE or INSERT writes a large number of rows. Every row it changes
stays locked until the statement commits, every row goes through the WAL (and to each replica),
and the table's dead rows wait for vacuum: a whole-table write in a request or a deploy blocks
the writers behind it. Judged by the rows the plan feeds the write, not by whether the text has
a WHERE: ``DELETE FROM t`` on a 1,000-row table is nothing, ``UPDATE t SET … WHERE x > 0`` that
keeps every row of a 10-million-row table is the same harm as one without WHERE."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.rules._base import PlanCheck, PlanContext, fmt_rows, rel_name, work_evidence


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    root = plan.root
    verb = str(root.extra.get("Operation") or "")
    if root.node_type != "ModifyTable" or verb not in ("Update", "Delete", "Insert"):
        return []
    fed = [c for c in root.children if c.parent_relationship not in ("SubPlan", "InitPlan")]
    rows = sum(work.rows_out(c) or 0 for c in fed)
    if rows < policy.large_table_rows:
        return []
    table = rel_name(root) if root.relation else "the table"
    verb = verb.upper()
    return [
        Finding(
            rule=RULE.id,
            severity=RULE.severity,
            message=(
                f"{verb} writes {fmt_rows(rows)} rows of {table} in one statement: each stays "
                "locked until it commits, and all of them go through the WAL and to replicas"
            ),
            fix=(
                "if not every row is meant, add the WHERE that selects the rows; a backfill or "
                "purge: write in batches by key range (… WHERE id >= ? AND id < ?), one short "
                "transaction each; to empty a table on purpose: TRUNCATE"
                if verb != "INSERT"
                else "load in batches (one short transaction per batch), or with COPY outside "
                "the request path"
            ),
            evidence=work_evidence(ctx, root, written_rows=rows, operation=verb.lower()),
        )
    ]


RULE: Rule[PlanCheck] = Rule(
    "large-write",
    "warning",
    "One UPDATE, DELETE or INSERT writes a large number of rows (locks, WAL, vacuum).",
    check,
)
