"""Plan rules: what in a plan will hurt, judged by the work it does for what it returns.

Each rule is one module named after it, defining ``RULE = Rule(id, severity, summary, check)``
(``querywatch.findings.Rule``); ``RULES`` lists them in the order docs/plans.md does. A check reads
a :class:`PlanContext` (plan, catalog, policy, index advice) and returns findings whose evidence
carries the figures the verdict rests on (node, relation, rows, cost, table rows…), literal values
replaced by ``?``. Rules read plan structure, sizes and statistics only, never what a table or
column is called. A rule that lacks a figure it needs (SQLite has no estimates; spills and
misestimates are only certain after EXPLAIN ANALYZE) stays silent or says which figure is
estimated. Adding a rule is adding a module, its line in ``RULES`` and its golden cases under
``tests/fixtures/rules/<rule-id>/``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from querywatch.findings import SEVERITIES, Finding, Rule
from querywatch.plans.catalog import Catalog
from querywatch.plans.model import Plan
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.rules import (
    cartesian_join,
    deep_offset,
    early_stop_worst_case,
    function_on_indexed_column,
    heavy_read,
    index_would_help,
    join_fanout_collapsed,
    large_aggregate,
    large_write,
    leading_wildcard_like,
    limit_filter_clustered,
    nested_loop_large_inner,
    not_in_subquery,
    row_estimate_off,
    seq_scan_large_table,
    sort_large_for_few,
    spill_to_disk,
    subplan_per_row,
    unbounded_read,
    unindexed_join_key,
    wide_rows,
)
from querywatch.plans.rules._base import PlanCheck, PlanContext
from querywatch.sql import fingerprint

if TYPE_CHECKING:
    from querywatch.plans.advice import Advice


RULES: tuple[Rule[PlanCheck], ...] = (
    seq_scan_large_table.RULE,
    function_on_indexed_column.RULE,
    leading_wildcard_like.RULE,
    nested_loop_large_inner.RULE,
    spill_to_disk.RULE,
    deep_offset.RULE,
    limit_filter_clustered.RULE,
    row_estimate_off.RULE,
    unindexed_join_key.RULE,
    sort_large_for_few.RULE,
    subplan_per_row.RULE,
    not_in_subquery.RULE,
    cartesian_join.RULE,
    join_fanout_collapsed.RULE,
    large_aggregate.RULE,
    unbounded_read.RULE,
    large_write.RULE,
    wide_rows.RULE,
    index_would_help.RULE,  # these three speak only when no rule before them did
    early_stop_worst_case.RULE,
    heavy_read.RULE,
)
"""Every plan rule, in the order docs/plans.md lists them."""

FALLBACKS = frozenset({index_would_help.RULE.id, early_stop_worst_case.RULE.id, heavy_read.RULE.id})
"""Rules that speak only when no rule before them did: a verdict on the whole plan."""


def rule_by_id(rule_id: str) -> Rule[PlanCheck] | None:
    """The plan rule with this id, or None."""
    return next((r for r in RULES if r.id == rule_id), None)


def check_plan(
    plan: Plan,
    catalog: Catalog,
    policy: PlanPolicy | None = None,
    *,
    advice: Advice | None = None,
) -> list[Finding]:
    """Every finding of every rule on ``plan``, errors first; each carries its rule's severity,
    the statement's fingerprint and normalized text (never literal values). ``advice`` (validated
    index advice for this statement) lets ``index-would-help`` judge the plan against it."""
    ctx = PlanContext(plan, catalog, policy or PlanPolicy(), advice)
    for rule in RULES:
        for found in rule.check(ctx):
            ctx.found.append(dataclasses.replace(found, rule=rule.id, severity=rule.severity))
    out = ctx.found
    fp = fingerprint(plan.sql, plan.dialect) if plan.sql else None
    if fp is not None:
        out = [dataclasses.replace(f, fingerprint=fp.id, sql=fp.normalized) for f in out]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: (order[f.severity], f.rule))


__all__ = ["FALLBACKS", "RULES", "PlanContext", "PlanPolicy", "check_plan", "rule_by_id"]
