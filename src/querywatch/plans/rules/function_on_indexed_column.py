"""`function-on-indexed-column`: a function or cast applied to an indexed column, so its index
cannot serve the filter."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import RelationInfo
from querywatch.plans.predicates import (
    Predicate,
    cast_target,
    parse_condition,
)
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    ddl,
    evidence,
    filtered_scans_of_large,
    own,
    rel_name,
    rnd,
    rows_tested,
    selectivity_of,
)


def check(ctx: PlanContext) -> list[Finding]:
    return _check(ctx)


_TEXTUAL = ("TEXT", "VARCHAR", "CHARACTER VARYING", "CHAR", "BPCHAR", "CHARACTER", "NAME")


def _is_relabel(pred: Predicate, info: RelationInfo) -> bool:
    """A cast PostgreSQL adds itself between text types (varchar -> text): not a function."""
    if pred.wrapper != "cast":
        return False
    target = cast_target(pred.expression)
    column = info.columns.get(pred.column)
    if target is None or column is None or column.type is None:
        return False
    source = column.type.upper().split("(")[0].strip()
    return target in _TEXTUAL and source in _TEXTUAL


def _check(ctx: PlanContext) -> list[Finding]:
    plan, policy = ctx.plan, ctx.policy
    out: list[Finding] = []
    for node, info in filtered_scans_of_large(ctx):
        selectivity = selectivity_of(node, info)
        if selectivity is not None and selectivity > policy.selective_fraction:
            continue
        for pred in own(parse_condition(node.filter, plan.dialect), node):
            if pred.wrapper is None or pred.kind not in ("eq", "in", "range", "like", "null"):
                continue
            if pred.negated or pred.leading_wildcard or _is_relabel(pred, info):
                continue
            index = info.index_leading_with(pred.column)
            if index is None:
                continue  # no index to lose: the seq-scan rule covers a missing one
            if pred.expression and info.has_expression_index(pred.expression):
                continue
            expression = pred.expression or pred.column
            out.append(
                Finding(
                    rule="function-on-indexed-column",
                    severity=RULE.severity,
                    message=(
                        f"{pred.wrapper}() on {rel_name(node)}.{pred.column} keeps index "
                        f"{index.name} from serving `{pred.text}`: {node.node_type} tests "
                        f"{rows_tested(ctx, node, info)}"
                    ),
                    fix=(
                        f"compare the bare column (apply {pred.wrapper} to the value instead), "
                        f"or index the expression: {ddl(node, [f'({expression})'], plan.dialect)}"
                    ),
                    evidence=evidence(
                        node,
                        info,
                        column=pred.column,
                        function=pred.wrapper,
                        index=index.name,
                        selectivity=rnd(selectivity),
                        predicate=pred.text,
                    ),
                )
            )
    return out


RULE: Rule[PlanCheck] = Rule(
    "function-on-indexed-column",
    "error",
    "A function or cast on an indexed column keeps its index from serving the filter.",
    check,
)
