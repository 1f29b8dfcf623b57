"""`querywatch explain "<sql>" --dsn …`: the plan tree, the findings and the index advice.

Exit codes: 0 when the statement was explained (findings or not), 2 when it could not be checked
(bad SQL, EXPLAIN rejected it, the database is unreachable, no DSN). The CI gate uses the same
split: 1 = checked and found problems, 2 = could not check.

Plan details (filters, index conditions, sort keys) and findings quote the statement, which comes
from outside: every such text is shown literally (controls escaped, never read as Rich markup).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from querywatch.cli.context import Context, could_not_check, emit_json
from querywatch.cli.options import dsn_option, json_option
from querywatch.errors import CouldNotCheck
from querywatch.terminal import one_line

if TYPE_CHECKING:  # psycopg and sqlglot load when the command runs, not with every command
    from querywatch.findings import Finding
    from querywatch.plans.advice import Advice
    from querywatch.plans.model import Plan, PlanNode
    from querywatch.plans.report import Report


@click.command("explain")
@click.argument("sql")
@dsn_option("PostgreSQL DSN, or a SQLite file (path or sqlite:///path).")
@click.option(
    "--analyze",
    is_flag=True,
    help="Run the statement (SELECT only, in a rolled-back transaction) for actual rows.",
)
@click.option("--no-advice", is_flag=True, help="Skip index advice (no HypoPG planning).")
@json_option("the plan, findings and advice as one object")
@click.pass_obj
def explain_cmd(
    obj: Context, sql: str, dsn: str | None, analyze: bool, no_advice: bool, as_json: bool
) -> None:
    """Plan, findings and index advice for one statement (`-` reads it from stdin).

    Plain EXPLAIN unless --analyze. Exit code 2 when the statement could not be checked.
    """
    from querywatch.plans.report import inspect_query

    text = sys.stdin.read() if sql == "-" else sql
    with could_not_check():
        cfg = obj.config(dsn=dsn)
        target = cfg["dsn"]
        if not target:
            raise CouldNotCheck(
                "no database to explain on: pass --dsn (a PostgreSQL DSN or a SQLite file) "
                "or set QUERYWATCH_DSN"
            )
        report = inspect_query(
            str(target),
            text,
            analyze=analyze,
            with_advice=not no_advice,
            statement_timeout_ms=int(cfg["statement_timeout_ms"]),
        )
    if as_json:
        emit_json(report.as_dict())
        return
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # pipes and CI logs: do not fold at 80
    console.print(report_view(report))


# --- terminal view ------------------------------------------------------------------------------


def report_view(report: Report) -> Group:
    plan = report.plan
    kind = "EXPLAIN ANALYZE" if plan.analyzed else "EXPLAIN"
    if plan.dialect == "sqlite":
        kind = "EXPLAIN QUERY PLAN"
    note = ", generic plan (placeholders)" if plan.generic else ""
    header = Text(f"{kind} on {one_line(report.target)}{note}", style="bold")
    parts: list[Any] = [header, plan_tree(plan)]
    if plan.planning_ms is not None:
        timing = f"planning {plan.planning_ms:.2f} ms"
        if plan.execution_ms is not None:
            timing += f", execution {plan.execution_ms:.2f} ms (rolled back)"
        parts.append(Text(timing, style="dim"))
    parts.append(Text(""))
    parts.extend(findings_view(report.findings))
    if report.advice is not None:
        parts.append(Text(""))
        parts.extend(advice_view(report.advice))
    return Group(*parts)


def plan_tree(plan: Plan) -> Tree:
    tree = Tree(_node_text(plan.root, plan), guide_style="dim")
    _add_children(tree, plan.root, plan)
    return tree


def _add_children(branch: Tree, node: PlanNode, plan: Plan) -> None:
    for child in node.children:
        sub = branch.add(_node_text(child, plan))
        _add_children(sub, child, plan)


def _node_text(node: PlanNode, plan: Plan) -> Text:
    if plan.dialect == "sqlite":
        text = Text(one_line(node.detail or node.label()), style="bold" if node.is_scan else "")
        if node.filter:
            text.append(f"\nwhere {one_line(node.filter)}", style="dim")
        return text
    text = Text(one_line(node.label()), style="bold")
    figures = []
    if node.total_cost is not None:
        figures.append(f"cost={node.startup_cost or 0:.2f}..{node.total_cost:.2f}")
    if node.est_rows is not None:
        figures.append(f"rows={node.est_rows:,.0f}")
    if node.width is not None:
        figures.append(f"width={node.width}")
    if figures:
        text.append(f"  ({' '.join(figures)})", style="")
    if node.never_executed:
        text.append("  (never executed)", style="dim")
    elif node.actual_rows is not None:
        text.append(
            f"  (actual time={node.actual_startup_ms or 0:.3f}..{node.actual_total_ms or 0:.3f} "
            f"rows={node.actual_rows:,.0f} loops={node.actual_loops or 0:,.0f})",
            style="cyan",
        )
    details: list[str] = []
    for name, value in (
        ("Index Cond", node.index_cond),
        ("Recheck Cond", node.recheck_cond),
        ("Hash Cond", node.hash_cond),
        ("Merge Cond", node.merge_cond),
        ("Join Filter", node.join_filter),
        ("Filter", node.filter),
    ):
        if value:
            details.append(f"{name}: {value}")
    if node.rows_removed_by_filter:
        details.append(f"Rows Removed by Filter: {node.rows_removed_by_filter:,.0f}")
    if node.sort_keys:
        details.append("Sort Key: " + ", ".join(node.sort_keys))
    if node.sort_method:
        space = f" {node.sort_space_type}: {node.sort_space_kb or 0:,.0f}kB"
        details.append(f"Sort Method: {node.sort_method}{space if node.sort_space_type else ''}")
    if node.hash_batches:
        details.append(
            f"Batches: {node.hash_batches} (originally {node.original_hash_batches or '?'})"
            f"  Memory Usage: {node.peak_memory_kb or 0:,.0f}kB"
        )
    for line in details:
        text.append(f"\n{one_line(line)}", style="dim")
    return text


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}


def findings_view(findings: list[Finding]) -> list[Text]:
    if not findings:
        return [Text("no findings: nothing in this plan is a known way to hurt", style="green")]
    out = [Text(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}", style="bold")]
    for f in findings:
        line = Text("  ")
        line.append(f"{f.severity:<7}", style=_SEVERITY_STYLE.get(f.severity, ""))
        line.append(f" {one_line(f.rule)}", style="bold")
        line.append(f"  {one_line(f.message)}")
        line.append(f"\n           fix: {one_line(f.fix)}", style="dim")
        out.append(line)
    return out


def advice_view(advice: Advice) -> list[Text]:
    title = "index advice" + (" (validated with HypoPG)" if advice.validated else "")
    out = [Text(title, style="bold")]
    if advice.note:
        out.append(Text(f"  {one_line(advice.note)}", style="yellow"))
    if not advice.candidates:
        out.append(Text("  no candidate index: nothing to propose for this plan"))
    for c in advice.candidates:
        if c.recommended:
            line = Text("  ")
            line.append(one_line(c.ddl), style="bold green")
            line.append(
                f"\n      estimated cost {c.cost_before or 0:,.2f} → {c.cost_after or 0:,.2f} "
                f"(-{(c.improvement or 0):.0%}); from the {', '.join(c.reasons)}",
                style="",
            )
        elif not c.validated:
            line = Text(f"  {one_line(c.ddl)}")
            line.append(f"\n      unvalidated; from the {', '.join(c.reasons)}", style="dim")
        else:
            where = f"{c.schema}.{c.table}" if c.schema else c.table
            line = Text(
                "  not recommended: "
                + one_line(f"({', '.join(c.keys)}) on {where}: {c.note or 'no gain'}"),
                style="dim",
            )
        out.append(line)
    for err in advice.errors:
        out.append(Text(f"  skipped: {one_line(str(err))}", style="yellow"))
    return out
