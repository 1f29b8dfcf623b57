"""`leading-wildcard-like`: LIKE/ILIKE '%…' on a large relation: no btree index can serve it,
every row is read."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import create_index_sql
from querywatch.plans.predicates import (
    parse_condition,
)
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    evidence,
    filtered_scans_of_large,
    own,
    rel_name,
    rows_tested,
)


def check(ctx: PlanContext) -> list[Finding]:
    return _check(ctx)


def _check(ctx: PlanContext) -> list[Finding]:
    plan = ctx.plan
    out: list[Finding] = []
    for node, info in filtered_scans_of_large(ctx):
        for pred in own(parse_condition(node.filter, plan.dialect), node):
            if not pred.leading_wildcard or pred.negated:
                continue
            if plan.dialect == "sqlite":
                fix = (
                    "anchor the pattern (LIKE 'abc%' can use an index), or search an FTS5 "
                    "full-text table instead of LIKE '%…%'"
                )
            else:
                key = f"({pred.expression})" if pred.expression else pred.column
                ddl = create_index_sql(
                    node.schema,
                    node.relation or "",
                    [key],
                    method="gin",
                    opclass="gin_trgm_ops",
                )
                fix = f"a trigram index serves '%…' patterns: CREATE EXTENSION pg_trgm; {ddl}"
            out.append(
                Finding(
                    rule="leading-wildcard-like",
                    severity=RULE.severity,
                    message=(
                        f"`{pred.text}` starts with a wildcard: {node.node_type} on "
                        f"{rel_name(node)} tests {rows_tested(ctx, node, info)}"
                    ),
                    fix=fix,
                    evidence=evidence(
                        node,
                        info,
                        column=pred.column,
                        predicate=pred.text,
                        case_insensitive=pred.case_insensitive or None,
                    ),
                )
            )
    return out


RULE: Rule[PlanCheck] = Rule(
    "leading-wildcard-like",
    "warning",
    "LIKE '%…' on a large relation: no btree index can serve it.",
    check,
)
