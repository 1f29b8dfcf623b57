"""`not-in-subquery`: ``x NOT IN (SELECT y …)`` where it matters. PostgreSQL cannot turn NOT IN
into an anti-join (one NULL from the subquery makes the test unknown for every row), so it keeps a
SubPlan. That matters in two cases:

- **correctness**: the subquery's output can be NULL (no NOT NULL constraint, the nullable side of
  an outer join, no WHERE that rejects NULLs): the day one NULL appears, the statement returns
  nothing;
- **work**: the SubPlan is not hashed (the result does not fit ``work_mem``), so it is run again
  for every outer row, and over all runs it produces a great many rows.

A NOT NULL key against a hashed SubPlan is fine, however large: the subquery is read once, as an
anti-join would read it. ``NOT EXISTS`` means what is almost always wanted and plans as an
anti-join."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    fmt_rows,
    negated_subplans,
    pct,
    work_evidence,
)


@dataclass(frozen=True, slots=True)
class Output:
    """What one NOT IN subquery returns: its column and whether it can be NULL (None: unknown)."""

    column: str | None
    nullable: bool | None
    why: str = ""


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    negated = negated_subplans(plan)
    outputs = _outputs_by_subplan(plan.sql, plan.dialect, sorted(negated, key=_number), ctx.catalog)
    out: list[Finding] = []
    for node in plan.nodes():
        name = str(node.extra.get("Subplan Name") or "")
        if node.parent_relationship != "SubPlan" or name not in negated:
            continue
        hashed = work.is_hashed(node)
        runs = work.executions(node)
        produced = max(work.rows_out(node) or 0.0, work.read_below(node))
        output = outputs.get(name, Output(None, None))
        heavy = not hashed and runs >= 2 and produced >= policy.nested_loop_inner_rows
        if not output.nullable and not heavy:
            continue  # NOT NULL (or unknown) and read once or little: nothing to fix
        tester = negated[name]
        reasons = []
        if output.nullable:
            reasons.append(
                f"the subquery's {output.column} can be NULL ({output.why}): one NULL makes "
                "NOT IN unknown for every row and the statement returns nothing"
            )
        if heavy:
            reasons.append(
                f"{name} is not hashed and runs {fmt_rows(runs)} times, once per row "
                f"({fmt_rows(produced)} rows produced in all)"
            )
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=f"NOT IN (subquery) on {tester.label()}: {'; and '.join(reasons)}",
                fix=(
                    "write NOT EXISTS (SELECT 1 FROM … WHERE inner.key = outer.key): it plans "
                    "as an anti-join, reads the subquery once, and is not emptied by a NULL"
                ),
                evidence=work_evidence(
                    ctx,
                    node,
                    subplan=name,
                    hashed=hashed,
                    rows_produced=produced,
                    output_column=output.column,
                    output_nullable=output.nullable,
                ),
            )
        )
    return out


def _number(name: str) -> int:
    found = re.search(r"\d+", name)
    return int(found.group()) if found else 0


def _outputs_by_subplan(
    sql: str, dialect: str, names: list[str], catalog: Catalog
) -> dict[str, Output]:
    """Each negated SubPlan's output, from the statement's NOT IN subqueries in text order (the
    plan's SubPlans are numbered in that order). Nothing when the two do not pair up."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite" if dialect == "sqlite" else "postgres")
    except (SqlglotError, ValueError, RecursionError):
        return {}
    if tree is None:
        return {}
    queries = _not_in_queries(tree)
    if len(queries) != len(names):
        return {}
    return {name: _output(q, catalog) for name, q in zip(names, queries, strict=True)}


def _not_in_queries(tree: exp.Expr) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    for neg in tree.find_all(exp.Not, bfs=False):  # depth first: in the order written
        inner = neg.this.unnest() if isinstance(neg.this, exp.Paren) else neg.this
        if isinstance(inner, exp.In) and isinstance(inner.args.get("query"), exp.Expr):
            query = inner.args["query"]
            out.append(query.this if isinstance(query, exp.Subquery) else query)
    return out


def _output(query: exp.Expr, catalog: Catalog) -> Output:
    """Whether the subquery's one output column can be NULL, from the catalog's NOT NULL, the
    joins it comes through and the WHERE terms that reject NULLs (unknown for a UNION…)."""
    if not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return Output(None, None)
    item = query.expressions[0]
    item = item.this if isinstance(item, exp.Alias) else item
    if isinstance(item, exp.Count):
        return Output("count", False)
    if not isinstance(item, exp.Column):
        return Output(None, None)
    column, qualifier = item.name, item.table or None
    tables = _tables(query)
    if qualifier is None and len(tables) == 1:
        qualifier = next(iter(tables))
    if qualifier not in tables:
        return Output(column, None)
    table, outer_side = tables[qualifier]
    shown = f"{qualifier}.{column}" if qualifier else column
    if _rejects_null(query, column, qualifier, len(tables) == 1):
        return Output(shown, False)
    if outer_side:
        return Output(shown, True, "it comes from the outer side of an outer join")
    info = catalog.get(table)
    col = info.columns.get(column) if info is not None else None
    if col is None or col.not_null is None:
        return Output(shown, None)
    if col.not_null:
        return Output(shown, False)
    now = f"; {pct(col.null_frac)} of rows are NULL now" if col.null_frac is not None else ""
    return Output(shown, True, f"it has no NOT NULL constraint{now}")


def _tables(query: exp.Select) -> dict[str, tuple[str, bool]]:
    """alias -> (table, on the nullable side of an outer join) for the subquery's own FROM."""
    out: dict[str, tuple[str, bool]] = {}
    from_ = query.args.get("from") or query.args.get("from_")
    sources: list[tuple[exp.Expr, bool]] = []
    if from_ is not None:
        sources.append((from_.this, False))
    joins = query.args.get("joins") or []
    for join in joins:
        side = (join.side or "").upper()
        sources.append((join.this, side in ("LEFT", "FULL")))
        if side in ("RIGHT", "FULL"):  # everything before the join may be NULL-extended
            out = {a: (t, True) for a, (t, _) in out.items()}
            sources = [(s, True) for s, _ in sources]
    for source, nullable in sources:
        if isinstance(source, exp.Table):
            out[source.alias_or_name] = (source.name, nullable)
    return out


_NULL_REJECTING = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.In, exp.Between)


def _rejects_null(query: exp.Select, column: str, qualifier: str | None, single: bool) -> bool:
    """A top-level WHERE term that is false or unknown when the column is NULL."""
    where = query.args.get("where")
    if where is None:
        return False
    terms = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for term in terms:
        term = term.unnest() if isinstance(term, exp.Paren) else term
        if isinstance(term, exp.Is) and term.args.get("negate"):
            target = term.this  # col IS NOT NULL
        elif (
            isinstance(term, exp.Not)
            and isinstance(term.this.unnest(), exp.Is)
            and not term.this.unnest().args.get("negate")
        ):
            target = term.this.unnest().this  # NOT (col IS NULL)
        elif isinstance(term, _NULL_REJECTING):
            target = term.this
        else:
            continue
        if (
            isinstance(target, exp.Column)
            and target.name == column
            and ((target.table or None) == qualifier or (single and not target.table))
        ):
            return True
    return False


RULE: Rule[PlanCheck] = Rule(
    "not-in-subquery",
    "error",
    "NOT IN (subquery) whose output can be NULL (the statement returns nothing), or whose "
    "SubPlan is not hashed and reruns per row over many rows.",
    check,
)
