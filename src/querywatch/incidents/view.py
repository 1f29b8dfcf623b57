"""How an incident reads on a terminal. A view only: every figure comes from the incident."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import Incident
from querywatch.terminal import fits, left_for_text, one_line, plain_table, printable, safe_text
from querywatch.timefmt import clock, duration, local_stamp


def top_culprit(incident: Incident) -> str:
    """The culprit column: the costliest query's first call site, else its fingerprint."""
    if not incident.culprits:
        return ""
    c = incident.culprits[0]
    if c.call_sites:
        s = c.call_sites[0]
        return f"{s.path}:{s.line}"
    return c.fingerprint[:12]


TITLE_MIN_BESIDE = 40
"""The title needs this much room to sit beside the deploy and culprit columns; with less, both
go on a dim second line under the title."""
TITLE_MIN = 20
DEPLOY_MAX = 14
CULPRIT_MAX = 24


def incidents_table(incidents: Sequence[Incident], width: int | None = None) -> Table:
    """The incident list, laid out for a console ``width`` (None: natural widths).

    The id, status and time stay whole (people type the id); the title takes what is left and
    wraps. Below about 120 columns (80 on a pipe) the deploy and the culprit go on a dim line
    under the title instead of columns of their own, so the title keeps a readable width.
    """
    opened = [time.strftime("%m-%d %H:%M", time.localtime(i.opened_at)) for i in incidents]
    deploys = [i.deploy_id or "–" for i in incidents]
    culprits = [top_culprit(i) for i in incidents]
    fixed = [
        max([2, *(len(i.id) for i in incidents)]),
        max([6, *(len(i.status) for i in incidents)]),
        max([6, *(len(o) for o in opened)]),
    ]
    beside = [
        *fixed,
        min(DEPLOY_MAX, max([6, *(len(d) for d in deploys)])),
        min(CULPRIT_MAX, max([7, *(len(c) for c in culprits)])),
    ]
    table = plain_table("incidents, newest first")
    for header, w in zip(("id", "status", "opened"), fixed, strict=True):
        table.add_column(header, no_wrap=True, width=w)
    side_by_side = width is None or fits(width, beside, TITLE_MIN_BESIDE)
    if side_by_side:
        table.add_column("deploy", overflow="ellipsis", no_wrap=True, width=beside[3])
        table.add_column("culprit", overflow="ellipsis", no_wrap=True, width=beside[4])
        room = 80 if width is None else left_for_text(width, beside, TITLE_MIN_BESIDE)
        table.add_column("title", overflow="fold", max_width=room)
    else:
        room = left_for_text(width or 0, fixed, TITLE_MIN)
        table.add_column("title (deploy, culprit)", overflow="fold", width=room)
    for i, when, deploy, culprit in zip(incidents, opened, deploys, culprits, strict=True):
        style = "" if i.is_resolved else "bold red" if i.status == "open" else "yellow"
        cells = [safe_text(i.id), safe_text(i.status, style=style), Text(when)]
        if side_by_side:
            table.add_row(*cells, safe_text(deploy), safe_text(culprit), safe_text(i.title))
            continue
        title = safe_text(i.title)
        title.append("\n" + one_line(f"deploy {deploy}  {culprit}"), style="dim")
        table.add_row(*cells, title)
    return table


def incident_lines(i: Incident) -> list[str]:
    """Everything known about one incident, as plain lines safe for a terminal whatever text it
    holds (control characters in SQL, titles or notes are shown escaped)."""
    return [printable(line) for line in _incident_lines(i)]


def _incident_lines(i: Incident) -> list[str]:
    lines = [f"{i.id}  {i.status.upper()}  {i.title}", ""]
    lines.append(f"detected   {local_stamp(i.detected_at)} (opened {clock(i.opened_at)})")
    lines.append(f"deploy     {i.deploy_id or 'none recorded'}")
    if i.resolved_at is not None:
        took = duration(i.resolved_at - i.detected_at)
        lines.append(f"resolved   {local_stamp(i.resolved_at)} (after {took})")
    else:
        lines.append(f"open for   {duration(time.time() - i.detected_at)}")
    if i.impact is not None:
        m = i.impact
        span = ""
        if m.since is not None and m.until is not None:
            span = f", {clock(m.since)}–{clock(m.until)}"
        lines.append(f"impact     {m.describe()}{span}")
    else:
        lines.append("impact     not measured")
    if i.triage is not None:
        lines.append(f"triage     {i.triage.verdict}")
    if i.culprits:
        lines += ["", "culprits"]
        for n, c in enumerate(i.culprits, start=1):
            lines.append(
                f"  {n}. +{c.added_db_ms_per_s:,.1f} ms/s of database time  {c.fingerprint}"
            )
            lines.append(f"     {' '.join(c.normalized.split())}")
            for k, site in enumerate(c.call_sites):
                commit = f"  (commit {c.commits[k]})" if k < len(c.commits) else ""
                lines.append(f"     at {site}{commit}")
            if c.first_seen_deploy:
                lines.append(f"     first seen with deploy {c.first_seen_deploy}")
            if c.fingerprint in i.plans:
                lines += plan_lines(PlanEvidence.from_dict(i.plans[c.fingerprint]), "     ")
    victims = i.victims
    if victims:
        lines += ["", "victims (only slowed because the database got busier: not causes)"]
        for d in victims:
            lines.append(f"  - {d.fingerprint}  {' '.join((d.normalized or '').split())}")
            lines.append(f"    {d.summary}")
    if i.detections:
        lines += ["", "detections"]
        for d in i.detections:
            lines.append(f"  - {d.kind} ({d.confidence:.0%} confident): {d.summary}")
    lines += ["", "timeline"]
    for e in i.timeline:
        who = f"{e.author}: " if e.author and e.kind == "note" else ""
        by = f" (by {e.author})" if e.author and e.kind != "note" else ""
        tags = f"  [{', '.join(e.tags)}]" if e.tags else ""
        lines.append(f"  {local_stamp(e.at)}  {e.kind:<12} {who}{e.message}{by}{tags}")
    return lines


def plan_lines(ev: PlanEvidence, indent: str = "") -> list[str]:
    """A culprit's plan evidence: the plan now, findings, plan diff, index advice, notes."""
    out: list[str] = []
    more = indent + "  "
    if ev.plan is not None:
        kind = "EXPLAIN QUERY PLAN" if ev.dialect == "sqlite" else "EXPLAIN"
        generic = ", generic plan" if ev.plan.get("generic") else ""
        out.append(f"{indent}plan now ({ev.source.replace('EXPLAIN', kind, 1)}{generic}):")
        out += [more + x for x in ev.outline()]
        if ev.findings:
            out.append(f"{indent}plan findings:")
            for f in ev.findings:
                out.append(f"{more}{f.get('severity', ''):<7} {f.get('rule')}: {f.get('message')}")
                out.append(f"{more}        fix: {f.get('fix')}")
        else:
            out.append(f"{indent}plan findings: none")
    if ev.diff is not None and ev.against is not None:
        what = ev.against_label or "an earlier plan"
        if ev.against.get("why") == "replaced query":
            what += f" ({' '.join(str(ev.against.get('sql', '')).split())})"
        out.append(f"{indent}plan diff against {what}:")
        out += [more + x for x in ev.diff_summary]
        before = ev.before_outline()
        if before:
            out.append(f"{more}plan before ({ev.against_source}):")
            out += [more + "  " + x for x in before]
    if ev.logged:
        out.append(f"{indent}plan at the time ({ev.logged_source}):")
        out += [more + x for x in ev.logged_outline()]
    out += advice_lines(ev, indent)
    if ev.notes:
        out.append(f"{indent}plan notes:")
        out += [f"{more}- {n}" for n in ev.notes]
    return out


def advice_lines(ev: PlanEvidence, indent: str = "") -> list[str]:
    """Recommended indexes with HypoPG's cost before → after, else unvalidated candidates."""
    if ev.advice is None:
        return []
    more = indent + "  "
    recommended = ev.recommended
    if recommended:
        out = [f"{indent}index advice (validated with HypoPG, estimated plan cost):"]
        for c in recommended:
            out.append(f"{more}{c.get('ddl')}")
            cut = c.get("improvement")
            pct = f" ({cut:.0%} cheaper)" if isinstance(cut, int | float) else ""
            out.append(
                f"{more}  cost {_cost(c.get('cost_before'))} → {_cost(c.get('cost_after'))}{pct}"
            )
        return out
    unvalidated = ev.unvalidated
    if unvalidated:
        out = [f"{indent}index advice (unvalidated: {ev.advice_note or 'no HypoPG'}):"]
        out += [f"{more}{c.get('ddl')}  (unvalidated)" for c in unvalidated]
        return out
    candidates = (ev.advice or {}).get("candidates") or []
    if candidates:
        out = [f"{indent}index advice: no candidate index pays"]
        out += [f"{more}{c.get('ddl')}  ({c.get('note')})" for c in candidates]
        return out
    note = f" ({ev.advice_note})" if ev.advice_note else ""
    return [f"{indent}index advice: no index candidates{note}"]


def _cost(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "?"
