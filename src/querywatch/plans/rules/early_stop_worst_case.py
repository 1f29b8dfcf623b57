"""`early-stop-worst-case`: the plan is cheap only because a LIMIT or an EXISTS is expected to
stop early, run to its end it reads a large number of rows, and a validated index makes that
worst case many times cheaper.

PostgreSQL costs ``WHERE f = ? ORDER BY k LIMIT n`` over an index on ``k`` as reading
``n / selectivity(f)`` rows, and ``EXISTS (SELECT 1 … WHERE f = ?)`` over a Seq Scan as reading
until the first of the matches it expects: both assume the matches exist and are spread evenly.
When they sit at the far end of the walk, or do not exist (a value absent from the table), the
stop never comes and the node runs to its end. The plan's figures give that worst case exactly
(the full cost of the cut node, the rows its scans read in all, ``Plan.worst_cost``); they
cannot say whether it will happen, since the same plan serves the matches at the near end in a
millisecond. So this is a warning, not an error, and only where HypoPG proved an index bounds
the worst case: judged like ``index-would-help``, on the worst case instead of the expected one.

The statistics do say when the evenly-spread assumption is unfounded, and the rule speaks only
then, for the scan that drives the cut node (its filter decides when the stop comes):

- the matches may be **absent**: the scan expects fewer matching rows in a full run than one row
  of ANALYZE's sample stands for (relation rows / 30,000): the estimate is then a default for an
  unseen value, not a measurement;
- the matches may **sit together**: a filter column is tied to the order the scan returns rows in
  (pg_stats correlation with the physical order for a Seq Scan; for an index walk, the lower bound
  of its correlation with the index's column, as ``limit-filter-clustered`` computes it).

An EXISTS over a value the sample saw hundreds of times, spread along the table, stops early.
"""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import EarlyStop, PlanNode
from querywatch.plans.predicates import parse_condition
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    fmt_rows,
    own,
    rnd,
    work_evidence,
)
from querywatch.plans.rules._work import scans_below
from querywatch.plans.rules.limit_filter_clustered import (
    DEPENDENCE,
    dependent_filter,
    order_column,
)

ANALYZE_SAMPLE_ROWS = 30_000
"""Rows ANALYZE samples per table: 300 × default_statistics_target (100)."""


def check(ctx: PlanContext) -> list[Finding]:
    plan, advice, policy = ctx.plan, ctx.advice, ctx.policy
    if plan.dialect != "postgres" or plan.analyzed or advice is None or not advice.validated:
        return []  # with ANALYZE the rows really read decide, in the other rules
    if any(f.severity in ("error", "warning") for f in ctx.found):
        return []  # a rule already names the problem (and its fix)
    worst_cost = plan.worst_cost
    if worst_cost is None or worst_cost < policy.index_verdict_min_cost:
        return []
    stop = _largest_stop(ctx, plan.early_stops())
    if stop is None:
        return []
    cut, expected, worst = stop
    why = _why_late(ctx, cut.cut)
    if why is None:
        return []  # the statistics back the estimate's assumption: the stop comes
    best = None
    best_factor = 0.0
    for cand in advice.recommended:
        after = cand.worst_after if cand.worst_after is not None else cand.cost_after
        if cand.worst_before is None or after is None:
            continue
        factor = cand.worst_before / max(after, 0.01)
        if factor > best_factor:
            best, best_factor = cand, factor
    if best is None or best_factor < policy.index_verdict_factor:
        return []
    where = f"{best.schema}.{best.table}" if best.schema else best.table
    how = "a LIMIT" if cut.stopper.node_type == "Limit" else "an EXISTS (InitPlan)"
    return [
        Finding(
            rule=RULE.id,
            severity=RULE.severity,
            message=(
                f"{cut.cut.label()} is cheap (estimated cost {plan.total_cost or 0:,.0f}) only if "
                f"{how} stops it after ~{fmt_rows(expected)} rows; {why}, and when the rows it "
                f"wants are at the far end or absent it reads {fmt_rows(worst)} (cost "
                f"{worst_cost:,.0f}). An "
                f"index on {where} ({', '.join(best.keys)}) bounds that: worst-case cost "
                f"{best.worst_before or 0:,.0f} → {best.worst_after or 0:,.2f} (validated with "
                "HypoPG)"
            ),
            fix=f"add the index: {best.ddl}",
            evidence=work_evidence(
                ctx,
                cut.cut,
                stopped_by=cut.stopper.node_type,
                expected_rows_read=expected,
                worst_rows_read=worst,
                worst_cost=rnd(worst_cost),
                index_relation=where,
                worst_cost_after=best.worst_after,
                factor=round(best_factor, 1),
                columns=list(best.keys),
            ),
        )
    ]


def _driving_scan(node: PlanNode) -> PlanNode | None:
    """The scan whose rows reach the stopper first: down the first (outer) input."""
    while not node.is_scan:
        regular = [c for c in node.children if c.parent_relationship not in ("InitPlan", "SubPlan")]
        if not regular:
            return None
        node = regular[0]
    return node


def _why_late(ctx: PlanContext, cut: PlanNode) -> str | None:
    """Why the statistics do not back the early stop (in words), or None when they do."""
    scan = _driving_scan(cut)
    info = ctx.catalog.for_node(scan) if scan is not None else None
    if scan is None or not scan.filter or info is None or not info.rows:
        return None
    matches = scan.est_rows_all
    if matches is not None and matches * ANALYZE_SAMPLE_ROWS < info.rows:
        return (
            f"the plan expects {fmt_rows(matches)} matching rows in all, fewer than one row of "
            "ANALYZE's sample stands for (a default, not a measurement: there may be none)"
        )
    if scan.node_type == "Seq Scan":
        for pred in own(parse_condition(scan.filter), scan):
            col = info.columns.get(pred.column)
            if col is not None and abs(col.correlation or 0.0) >= DEPENDENCE:
                return (
                    f"pg_stats shows {pred.column} follows the table's physical order "
                    f"(correlation {col.correlation or 0.0:.2f}), so the matches may sit together"
                )
        return None
    order = order_column(scan, info)
    dependent = dependent_filter(scan, info, order) if order is not None else None
    if dependent is None:
        return None
    column, _bound, c_filter, c_order = dependent
    return (
        f"pg_stats shows {column} follows the table's order as {order} does (correlation "
        f"{c_filter:.2f} and {c_order:.2f}), so the matches may sit together"
    )


def _largest_stop(
    ctx: PlanContext, stops: list[EarlyStop]
) -> tuple[EarlyStop, float, float] | None:
    """The early stop with the most rows read if it never comes: (stop, rows read as estimated,
    rows read to the end), when those reach ``large_table_rows`` and ``index_verdict_factor``
    times the expected read (the early stop is what makes the plan cheap)."""
    policy, work = ctx.policy, ctx.work
    best: tuple[EarlyStop, float, float] | None = None
    for stop in stops:
        expected = worst = 0.0
        for scan in scans_below(stop.cut, subplans=False):
            read, full = work.rows_read(scan), work.worst_read(scan)
            if read is None or full is None:
                break
            expected += read
            worst += full
        else:
            if worst < policy.large_table_rows or worst < max(expected, 1.0) * (
                policy.index_verdict_factor
            ):
                continue
            if best is None or worst > best[2]:
                best = (stop, expected, worst)
    return best


RULE: Rule[PlanCheck] = Rule(
    "early-stop-worst-case",
    "warning",
    "A LIMIT or EXISTS makes the plan cheap only if it stops early; to its end it reads many "
    "rows, and a validated index bounds that worst case.",
    check,
)
