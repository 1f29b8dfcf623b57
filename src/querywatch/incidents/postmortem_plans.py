"""The postmortem's plan lines: what the culprits' stored plan evidence says (the plan, its
findings, the plan diff, index advice) under Root Cause, and the fix it suggests under Measures."""

from __future__ import annotations

from dataclasses import dataclass

from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import Incident
from querywatch.incidents.postmortem_render import (
    Line,
    Part,
    code,
    line,
)


@dataclass(frozen=True, slots=True)
class PlanSection:
    """What the culprits' plans say: ``cause`` goes under Root Cause and Resolution (per culprit:
    the plan, its findings, the plan diff, index advice), ``fixes`` under Corrective and
    Preventative Measures (the recommended index, or the rewrite a finding suggests)."""

    cause: tuple[Line, ...]
    fixes: tuple[Line, ...]


def plan_section(incident: Incident) -> PlanSection | None:
    """Plan evidence the Monitor stored on the incident (``Incident.plans``), as postmortem lines;
    ``None`` when there is none (the Monitor ran without an explain target)."""
    cause: list[Line] = []
    fixes: list[Line] = []
    for culprit in incident.culprits:
        data = incident.plans.get(culprit.fingerprint)
        if data is None:
            continue
        ev = PlanEvidence.from_dict(data)
        cause.append(_plan_cause(ev))
        fixes += _plan_fixes(ev)
    if not cause:
        return None
    return PlanSection(tuple(cause), tuple(fixes))


def _plan_cause(ev: PlanEvidence) -> Line:
    q = code(ev.sql or ev.fingerprint)
    details: list[Line] = []
    if ev.plan is not None:
        scans = [x.strip() for x in ev.outline()]
        details.append(line("plan: ", *_joined(scans), ".", source=ev.source + _generic(ev.plan)))
        for f in ev.findings:
            details.append(
                line(
                    f"{f.get('severity')} ",
                    code(str(f.get("rule"))),
                    f": {str(f.get('message')).rstrip('.')}. Fix: {f.get('fix')}",
                    source=f"plan rules on the {ev.source}",
                )
            )
        if not ev.findings:
            details.append(line("no plan rule fired.", source=f"plan rules on the {ev.source}"))
    if ev.diff is not None and ev.against is not None:
        what: list[Part] = [f"plan diff against {ev.against_label or 'an earlier plan'}"]
        if ev.against.get("why") == "replaced query" and ev.against.get("sql"):
            what += [" ", code(str(ev.against["sql"]))]
        before = [x.strip() for x in ev.before_outline()]
        if before:
            what += [" (then: ", *_joined(before), ")"]
        details.append(
            line(
                *what,
                ": ",
                "; ".join(ev.diff_summary) or "no difference",
                ".",
                source=f"before: {ev.against_source}; now: {ev.source}",
            )
        )
    details += _advice_lines(ev)
    for note in ev.notes:
        details.append(line(note.rstrip(".") + ".", source="plan evidence"))
    return line(q, children=details)


def _advice_lines(ev: PlanEvidence) -> list[Line]:
    if ev.advice is None:
        return []
    source = f"HypoPG hypothetical indexes, {ev.source}"
    out = [
        line(
            "index advice: ",
            code(str(c.get("ddl"))),
            f" cuts the estimated plan cost from {_cost(c.get('cost_before'))} to "
            f"{_cost(c.get('cost_after'))}.",
            source=source,
        )
        for c in ev.recommended
    ]
    if out:
        return out
    unvalidated = ev.unvalidated
    if unvalidated:
        why = ev.advice_note or "no hypothetical indexes"
        return [
            line("index advice (unvalidated): ", code(str(c.get("ddl"))), f" ({why}).")
            for c in unvalidated
        ]
    candidates = ev.advice.get("candidates") or []
    if candidates:
        notes = "; ".join(f"{c.get('ddl')}: {c.get('note')}" for c in candidates)
        return [line(f"index advice: no candidate index pays ({notes}).", source=source)]
    return [line("index advice: no index candidates.", source=ev.source)]


def _plan_fixes(ev: PlanEvidence) -> list[Line]:
    q = code(ev.sql or ev.fingerprint)
    out = [
        line(
            "Create the index ",
            code(str(c.get("ddl"))),
            " for ",
            q,
            f": HypoPG estimates the plan's cost falls from {_cost(c.get('cost_before'))} to "
            f"{_cost(c.get('cost_after'))}.",
            source=f"HypoPG hypothetical index, {ev.source}",
        )
        for c in ev.recommended
    ]
    out += [
        line(
            "Consider the index ",
            code(str(c.get("ddl"))),
            " for ",
            q,
            f" (unvalidated: {ev.advice_note or 'no hypothetical indexes'}).",
            source=ev.source,
        )
        for c in ev.unvalidated
    ]
    seen: set[str] = set()
    for f in ev.findings:
        fix = str(f.get("fix") or "")
        if not fix or fix in seen or f.get("severity") == "info":
            continue
        seen.add(fix)
        out.append(
            line(
                "Rewrite or index ",
                q,
                " (",
                code(str(f.get("rule"))),
                f"): {fix}",
                source=f"plan rules on the {ev.source}",
            )
        )
    return out


def _joined(items: list[str]) -> list[Part]:
    parts: list[Part] = []
    for n, item in enumerate(items):
        if n:
            parts.append(", ")
        parts.append(code(item))
    return parts


def _generic(plan: dict[str, object]) -> str:
    return ", generic plan" if plan.get("generic") else ""


def _cost(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "unknown"
