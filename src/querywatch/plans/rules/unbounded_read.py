"""`unbounded-read`: a statement sends a large number of rows (or bytes) to the client. No page
shows 100,000 rows: they are read, sent and parsed only to be filtered, counted or cut in the
application, and the cost grows with the table."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.rules._base import PlanCheck, PlanContext, fmt_rows, work_evidence

_WRITES = ("ModifyTable", "Insert", "Update", "Delete")


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    root = plan.root
    if root.node_type in _WRITES or root.extra.get("Operation") or plan.dialect == "sqlite":
        return []
    rows = work.rows_out(root)
    if rows is None:
        return []
    size = rows * (root.width or 0)
    if rows < policy.large_result_rows and size < policy.large_result_bytes:
        return []
    return [
        Finding(
            rule=RULE.id,
            severity=RULE.severity,
            message=(
                f"the statement returns {fmt_rows(rows)} rows (~{size / 1048576:,.0f} MB) to the "
                "client on every call"
            ),
            fix=(
                "ask for what the page needs: a WHERE that narrows it, keyset pagination "
                "(WHERE key > last ORDER BY key LIMIT n), an aggregate computed in SQL, and only "
                "the columns used"
            ),
            evidence=work_evidence(ctx, root, returned_rows=rows, returned_bytes=size),
        )
    ]


RULE: Rule[PlanCheck] = Rule(
    "unbounded-read",
    "warning",
    "A statement sends a large number of rows or bytes to the client.",
    check,
)
