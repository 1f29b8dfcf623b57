"""`heavy-read`: the plan reads a great many rows for what it returns, and no rule before it said
why. The work a DBA sees first in a plan: every scan's rows (over all its loops) added up against
the rows the statement returns. Reading millions of rows for a page is slow at any plan shape;
this rule names the scan where the rows go, and the validated index when advice found one."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.predicates import redact_condition
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    advice_for,
    fmt_rows,
    rel_name,
    work_evidence,
)

_WRITES = ("ModifyTable",)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    if plan.dialect != "postgres" or any(f.severity in ("error", "warning") for f in ctx.found):
        return []  # SQLite gives no estimates; another rule already names the work
    scans = [(work.rows_read(s) or 0.0, s) for s in plan.scans()]
    read = sum(r for r, _ in scans)
    if read < policy.heavy_read_rows:
        return []
    top = plan.root
    if top.node_type in _WRITES and top.children:
        top = top.children[0]  # rows an UPDATE/DELETE changes
    returned = work.rows_out(top)
    if returned is None or returned * policy.heavy_read_ratio > read:
        return []
    most, scan = max(scans, key=lambda pair: pair[0])
    condition = redact_condition(scan.filter or scan.index_cond, plan.dialect)
    validated = advice_for(ctx, scan.relation) or advice_for(ctx, None)
    if validated is not None:
        fix = f"an index that reads less ({validated[1]}): {validated[0]}"
    elif condition:
        fix = (
            f"let an index find the rows `{condition}` wants (an index on its columns, in "
            "equality-then-range order), or narrow the statement by an indexed column"
        )
    else:
        fix = (
            "narrow the statement by an indexed column, or keep the result precomputed "
            "(a summary table or materialized view) instead of reading it per call"
        )
    return [
        Finding(
            rule=RULE.id,
            severity=RULE.severity,
            message=(
                f"the plan reads {fmt_rows(read)} rows to return {fmt_rows(returned)}; most in "
                f"{scan.node_type} on {rel_name(scan)} ({fmt_rows(most)} rows"
                f"{f' where {condition}' if condition else ''})"
            ),
            fix=fix,
            evidence=work_evidence(
                ctx, scan, rows_read=read, returned_rows=returned, scan_rows_read=most
            ),
        )
    ]


RULE: Rule[PlanCheck] = Rule(
    "heavy-read",
    "warning",
    "The plan reads a great many rows for what it returns (no other rule named why).",
    check,
)
