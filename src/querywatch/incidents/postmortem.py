"""`querywatch postmortem`: the incident written up in the outage report's own structure.

Issue Summary, Timeline, Root Cause and Resolution, Corrective and Preventative Measures — the
sections of the report this project started from — written from stored facts only (the incident,
its timeline, its deploy marker, the culprits' statement windows; see ``postmortem_facts``), each
figure followed by where it comes from. A consistency check lists what the stored timeline
contradicts; a person's edits to a section survive rendering again (``postmortem_render``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from querywatch.atomic import write_atomic
from querywatch.detect.policy import Policy
from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import Incident
from querywatch.incidents.postmortem_facts import (
    Event,
    Facts,
    Latency,
    Suspect,
    check_consistency,
    gather,
)
from querywatch.incidents.postmortem_render import (
    FORMATS,
    Block,
    Document,
    Line,
    Part,
    PostmortemError,
    Section,
    code,
    line,
    render,
)
from querywatch.incidents.service import get_incident
from querywatch.records import WINDOW_SECONDS
from querywatch.store.base import Store
from querywatch.timefmt import duration

__all__ = [
    "FORMATS",
    "PlanSection",
    "Postmortem",
    "PostmortemError",
    "build_document",
    "plan_section",
    "render_postmortem",
    "write_postmortem",
]


@dataclass(slots=True)
class Postmortem:
    """A rendered postmortem: its text, the timeline's contradictions, what a person's edits kept.

    ``kept_sections`` names the sections kept as a person edited them; ``kept_additions`` the text
    a person added outside every section (kept too).
    """

    text: str
    warnings: list[str]
    kept_sections: list[str] = field(default_factory=list)
    kept_additions: list[str] = field(default_factory=list)


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


def render_postmortem(
    store: Store,
    incident_id: str,
    fmt: str = "md",
    existing: str | None = None,
    now: float | None = None,
    *,
    policy: Policy | None = None,
) -> Postmortem:
    """The postmortem of one incident; over ``existing`` text, a person's edits are kept.

    Raises NotFound for an unknown incident and PostmortemError when ``existing`` is not a
    postmortem of this incident in this format.
    """
    if fmt not in FORMATS:
        raise PostmortemError(f"unknown format {fmt!r}: use md or html")
    incident = get_incident(store, incident_id)
    facts = gather(store, incident, now=now, policy=policy)
    warnings = check_consistency(facts)
    doc = build_document(facts, warnings, plan_section(incident))
    done = render(doc, fmt, existing)
    return Postmortem(done.text, warnings, done.kept_sections, done.kept_additions)


def write_postmortem(
    store: Store, incident_id: str, path: str | Path, fmt: str = "md", now: float | None = None
) -> Postmortem:
    """Render into ``path`` atomically, keeping a person's edits to the postmortem already there."""
    target = Path(path)
    existing: str | None = None
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise PostmortemError(f"cannot write {target}: it is a directory") from None
    except UnicodeDecodeError:
        raise PostmortemError(
            f"cannot write {target}: it exists and is not a UTF-8 text postmortem"
        ) from None
    except OSError as exc:
        raise PostmortemError(f"cannot read {target}: {exc.strerror or exc}") from None
    try:
        done = render_postmortem(store, incident_id, fmt, existing, now)
    except PostmortemError as exc:
        raise PostmortemError(f"cannot write {target}: {exc}") from None
    _write_atomically(target, done.text)
    return done


def _write_atomically(target: Path, text: str) -> None:
    """Write a temporary file beside ``target`` and rename it over: never half a postmortem."""
    folder = target.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise PostmortemError(f"cannot write {target}: directory {folder} {what}")
    try:
        write_atomic(target, text)
    except OSError as exc:
        raise PostmortemError(f"cannot write {target}: {exc.strerror or exc}") from None


# -- wording --------------------------------------------------------------------------------------


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class _Clock:
    """Times of day in UTC; a time on another day than the harm's start carries its date."""

    def __init__(self, start: float) -> None:
        self.day = _day(start)

    def __call__(self, ts: float) -> str:
        fmt = "%H:%M:%S" if _day(ts) == self.day else "%Y-%m-%d %H:%M:%S"
        return time.strftime(fmt, time.gmtime(ts))


def _ms(v: float) -> str:
    return f"{v:,.2f}" if v < 10 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _span(t: _Clock, a: float, b: float) -> str:
    return f"{t(a)}–{t(b)} UTC"


def _windows_source(t: _Clock, lat: Latency) -> str:
    if not lat.windows or lat.first_start is None or lat.last_start is None:
        return f"no statement windows starting {_span(t, lat.since, lat.until)}"
    n = "1 statement window" if lat.windows == 1 else f"{lat.windows} statement windows"
    return f"{n} starting {_span(t, lat.first_start, lat.last_start)}, {lat.calls:,} calls"


def _site(s: Suspect) -> str | None:
    sites = s.culprit.call_sites
    return f"{sites[0].path}:{sites[0].line}" if sites else None


def _query_at(s: Suspect) -> list[Part]:
    """``<query>`` at ``<call site>``, as spans."""
    parts: list[Part] = [code(s.culprit.normalized or s.culprit.fingerprint)]
    site = _site(s)
    if site is not None:
        parts += [" at ", code(site)]
    return parts


def _harm_what(f: Facts) -> str:
    return f"deploy {f.deploy.id} started" if f.deploy is not None else "detected"


def _seq(e: Event) -> str:
    return f"timeline #{e.seq} ({e.event.kind})"


def _by(e: Event) -> str:
    return f" (by {e.event.author})" if e.event.author else ""


# -- the document ---------------------------------------------------------------------------------


def build_document(facts: Facts, warnings: list[str], plans: PlanSection | None) -> Document:
    """The postmortem's sections, in the report's order."""
    i = facts.incident
    t = _Clock(facts.harm_start)
    sections = [_header(facts)]
    if warnings:
        sections.append(_consistency(warnings))
    sections += [
        _summary(facts, t),
        _timeline(facts, t),
        _root_cause(facts, t, plans),
        _measures(facts, t, plans),
    ]
    return Document(i.id, f"Postmortem Report: {i.id}", tuple(sections))


def _header(f: Facts) -> Section:
    i = f.incident
    return Section(
        "header",
        f"Postmortem Report: {i.title}",
        (
            Block(
                None,
                (
                    line(
                        f"Incident {i.id}, {i.status}. Written by ",
                        code("querywatch postmortem"),
                        " from stored facts only: the incident and its timeline, its deploy "
                        "marker and the culprit queries' statement windows. Each figure says "
                        "where it comes from; timeline #N is the N-th timeline event. Times are "
                        f"UTC, on {_day(f.harm_start)} unless a date is given.",
                    ),
                    line(
                        "Edit any section: a section you changed is kept as you left it when "
                        "the postmortem is rendered again, and text you add between sections "
                        "stays where you put it."
                    ),
                ),
                "paragraphs",
            ),
        ),
        level=1,
    )


def _consistency(warnings: list[str]) -> Section:
    return Section(
        "consistency",
        "Consistency warnings",
        (
            Block(
                None,
                (line("The stored timeline contradicts itself; check these before sharing:"),),
                "paragraphs",
            ),
            Block(None, tuple(line(w) for w in warnings)),
        ),
    )


def _summary(f: Facts, t: _Clock) -> Section:
    i = f.incident
    if i.resolved_at is not None:
        took = duration(i.resolved_at - f.harm_start)
        dur = line(
            f"{took}, from {t(f.harm_start)} ({_harm_what(f)}) to {t(i.resolved_at)} UTC "
            "(resolved).",
            source=f"{f.harm_source} → incident resolved_at",
        )
    else:
        took = duration(f.now - f.harm_start)
        dur = line(
            f"ongoing: not resolved; {took} so far, from {t(f.harm_start)} ({_harm_what(f)}) "
            f"to now ({t(f.now)} UTC).",
            source=f"{f.harm_source}; incident status {i.status}",
        )
    if i.impact is not None:
        m = i.impact
        span = (
            f", {_span(t, m.since, m.until)}" if m.since is not None and m.until is not None else ""
        )
        impact = line(
            f"{m.describe()}.",
            source=f"incident impact, from the middleware's request windows{span}",
        )
    else:
        impact = line("not measured: no request figures from the middleware are stored for it.")
    causes = [_cause_line(f, s) for s in f.suspects[:1]]
    if not causes:
        first = i.detections[0] if i.detections else None
        causes = [
            line(first.summary, source="incident detections")
            if first is not None
            else line("unknown: the incident names no query and no detection.")
        ]
    if len(f.suspects) > 1:
        more = len(f.suspects) - 1
        causes.append(line(f"{more} more culprit quer{'y' if more == 1 else 'ies'}, below."))
    victims = i.victims
    if victims:
        n = len(victims)
        causes.append(
            line(
                f"{n} other quer{'y' if n == 1 else 'ies'} only slowed because the database got "
                "busier: victims of the load, not causes (below).",
                source="incident detections",
            )
        )
    if i.triage is not None:
        causes.append(line(i.triage.verdict, source="incident triage"))
    return Section(
        "summary",
        "Issue Summary",
        (
            Block("Duration", (dur,)),
            Block("Impact", (impact,)),
            Block("Root cause", tuple(causes)),
        ),
    )


def _deploy_words(f: Facts) -> str:
    d = f.deploy
    if d is None:
        return ""
    return f"deploy {d.id} (version {d.version})"


def _cause_line(f: Facts, s: Suspect) -> Line:
    c = s.culprit
    parts = _query_at(s)
    if s.new_in_deploy and f.deploy is not None:
        during = s.during.mean_ms
        at = f" at {_ms(during)} ms per call" if during is not None else ""
        parts.append(f": a query new with {_deploy_words(f)}{at}")
        source = f"culprit; {_windows_source(_Clock(f.harm_start), s.during)}"
    elif s.ratio is not None and s.before is not None and s.during.mean_ms is not None:
        parts.append(
            f": {s.ratio:.1f}x slower per call since {_deploy_words(f)} "
            f"({_ms(s.before.mean_ms or 0)} → {_ms(s.during.mean_ms)} ms)"
        )
        t = _Clock(f.harm_start)
        source = (
            f"culprit; before: {_windows_source(t, s.before)}; "
            f"during: {_windows_source(t, s.during)}"
        )
    else:
        parts.append(
            f": a regression detected at {_Clock(f.harm_start)(f.incident.detected_at)} UTC"
        )
        source = "culprit; incident detected_at"
    parts.append(f", adding {c.added_db_ms_per_s:,.1f} ms of database time per second.")
    return line(*parts, source=source)


# -- timeline -------------------------------------------------------------------------------------

_ACTION_NAMES = {
    "rollback": "rollback",
    "runbook": "runbook step",
    "evidence_check": "evidence check",
    "recovery_check": "recovery check",
    "freeze": "deploy freeze",
    "refused": "rollback refused",
}


def _figures(data: dict[str, object]) -> str:
    figures = data.get("figures")
    if not isinstance(figures, dict):
        return ""
    parts = []
    for key, value in figures.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            parts.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value:,}")
        elif isinstance(value, str) and len(value) <= 80:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def describe_action(e: Event) -> list[Part]:
    """One action event in words: what ran, on whose trigger, and how it ended."""
    d = e.data
    if not e.action:
        return [f"{e.event.message}{_by(e)}"]
    trigger = {"auto": "automatic ", "manual": "manual "}.get(str(d.get("trigger") or ""), "")
    name = _ACTION_NAMES.get(e.action, e.action.replace("_", " "))
    head = f"{trigger}{name}".capitalize()
    if d.get("step"):
        head += f" “{d['step']}”"
    if e.action == "rollback" and d.get("version") and d.get("target_version"):
        head += f" from {d['version']} to {d['target_version']}"
    parts: list[Part] = [head]
    if e.outcome and not (e.outcome == "refused" and e.action in ("refused", "freeze")):
        parts.append(f": {e.outcome.replace('_', ' ')}")
    details = []
    if d.get("exit_code") is not None:
        details.append(f"exit code {d['exit_code']}")
    if isinstance(d.get("duration_s"), int | float):
        details.append(f"after {float(d['duration_s']):g} s")  # type: ignore[arg-type]
    figures = _figures(d)
    if figures:
        details.append(figures)
    if details:
        parts.append(f" ({'; '.join(details)})")
    message = e.event.message  # what the responder wrote; repeat nothing it already says
    command, reason = str(d.get("command") or ""), str(d.get("reason") or "")
    if command and command not in message:
        parts += [", ran ", code(command)]
    if reason and reason not in message:
        parts.append(f"; reason: {reason}")
    if message:
        parts.append(f" — {message}")
    parts.append(_by(e))
    return parts


def _timeline(f: Facts, t: _Clock) -> Section:
    i = f.incident
    blocks: list[Block] = []
    if f.deploy is not None:
        d = f.deploy
        bits = [f"version {d.version}"]
        if d.commit:
            bits.append(f"commit {d.commit[:12]}")
        bits.append(f"in {d.environment}")
        if d.author:
            bits.append(f"by {d.author}")
        if d.previous_version:
            bits.append(f"after {d.previous_version}")
        tail = f"; finished {t(d.finished_at)}" if d.finished_at is not None else ""
        began = line(
            f"{t(d.started_at)} — deploy {d.id} started: {', '.join(bits)}{tail}.",
            source=f"deploy {d.id} marker",
        )
    else:
        began = line(
            f"{t(i.detected_at)} — first detected; no deploy marker is stored for this incident.",
            source="incident detected_at",
        )
    blocks.append(Block("Incident began", (began,)))

    detected = [
        line(f"{t(e.at)} — {e.event.message}", source=_seq(e)) for e in f.of_kind("detected")
    ]
    detected += [
        line(f"{t(e.at)} — alert: {e.event.message}", source=_seq(e)) for e in f.of_kind("alerted")
    ]
    if not detected:
        detected = [line(f"{t(i.detected_at)} — detected.", source="incident detected_at")]
    blocks.append(Block("Issue detected", tuple(detected)))

    acted = [
        e
        for e in f.events
        if e.event.kind == "action" or (e.event.kind == "note" and e not in f.misleading)
    ]
    actions = [line(f"{t(e.at)} — ", *_note_or_action(e), source=_seq(e)) for e in acted] or [
        line("none recorded on the timeline.")
    ]
    blocks.append(Block("Actions taken", tuple(actions)))
    blocks.append(Block("Misleading investigation/debugging paths", _misleading_lines(f, t)))
    blocks.append(Block("Escalation", _escalation_lines(f, t)))
    blocks.append(Block("Incident resolution", _resolution_lines(f, t)))
    blocks.append(Block("Time to detect, mitigate and resolve", _times(f, t)))
    return Section("timeline", "Timeline", tuple(blocks))


def _note_or_action(e: Event) -> list[Part]:
    if e.event.kind == "action":
        return describe_action(e)
    who = f"{e.event.author}: " if e.event.author else ""
    tags = f" [{', '.join(e.event.tags)}]" if e.event.tags else ""
    return [f"{who}{e.event.message}{tags}"]


def _lost(f: Facts, e: Event) -> tuple[float, Event | None]:
    """Time lost on a misleading path: from the event before its note to the note, which says
    where the path ended."""
    before = [x for x in f.events if (x.at, x.seq) < (e.at, e.seq)]
    prev = before[-1] if before else None
    start = prev.at if prev is not None else f.harm_start
    return max(0.0, e.at - start), prev


def _misleading_lines(f: Facts, t: _Clock) -> tuple[Line, ...]:
    out = []
    for e in f.misleading:
        lost, prev = _lost(f, e)
        who = f"{e.event.author}: " if e.event.author else ""
        since = f"#{prev.seq} ({prev.event.kind})" if prev is not None else "the start of harm"
        out.append(
            line(
                f"{t(e.at)} — {who}{e.event.message} ({duration(lost)} spent on it).",
                source=f"{since} → timeline #{e.seq} (note tagged misleading)",
            )
        )
    return tuple(out) or (line("none recorded (notes tagged misleading are listed here)."),)


def _escalation_lines(f: Facts, t: _Clock) -> tuple[Line, ...]:
    alerts = f.of_kind("alerted")
    out = []
    for e in f.of_kind("acknowledged"):
        who = f"by {e.event.author}" if e.event.author else "(nobody named)"
        if alerts and alerts[0].at <= e.at:
            after = f"{duration(e.at - alerts[0].at)} after the first alert"
            src = f"timeline #{alerts[0].seq} (alerted) → #{e.seq} (acknowledged)"
        else:
            after = f"{duration(e.at - f.incident.detected_at)} after detection"
            src = f"incident detected_at → timeline #{e.seq} (acknowledged)"
        out.append(line(f"{t(e.at)} — acknowledged {who}, {after}.", source=src))
    return tuple(out) or (
        line("nobody acknowledged the incident (no acknowledged event on the timeline)."),
    )


def _resolution_lines(f: Facts, t: _Clock) -> tuple[Line, ...]:
    out = []
    for e in f.events:
        if e.event.kind == "mitigated":
            text = "" if e.event.message == "mitigated" else f": {e.event.message}"
            out.append(line(f"{t(e.at)} — mitigated{text}{_by(e)}.", source=_seq(e)))
        elif e.event.kind == "resolved":
            text = "" if e.event.message == "resolved" else f": {e.event.message}"
            out.append(line(f"{t(e.at)} — resolved{text}{_by(e)}.", source=_seq(e)))
    if f.incident.resolved_at is None:
        out.append(
            line(
                f"not resolved yet: the incident is {f.incident.status} at {t(f.now)} UTC.",
                source="incident status",
            )
        )
    return tuple(out)


def _times(f: Facts, t: _Clock) -> tuple[Line, ...]:
    i = f.incident
    origin = f"{_harm_what(f)} {t(f.harm_start)}"
    if f.deploy is not None:
        detect = line(
            f"to detect: {duration(i.detected_at - f.harm_start)} ({origin} → detected "
            f"{t(i.detected_at)}).",
            source=f"{f.harm_source} → incident detected_at",
        )
    else:
        detect = line(
            "to detect: unknown: no deploy marker says when the harm began, so the times below "
            f"count from the detection ({t(i.detected_at)})."
        )
    out = [detect]
    m = f.mitigated
    if m is not None:
        what = "mitigated" if m.event.kind == "mitigated" else "rollback done"
        out.append(
            line(
                f"to mitigate: {duration(m.at - f.harm_start)} ({origin} → {what} {t(m.at)}).",
                source=f"{f.harm_source} → {_seq(m)}",
            )
        )
    else:
        out.append(line("to mitigate: no mitigation or successful rollback recorded."))
    if i.resolved_at is not None:
        out.append(
            line(
                f"to resolve: {duration(i.resolved_at - f.harm_start)} ({origin} → resolved "
                f"{t(i.resolved_at)}).",
                source=f"{f.harm_source} → incident resolved_at",
            )
        )
    else:
        out.append(line(f"to resolve: not resolved; {duration(f.now - f.harm_start)} so far."))
    return tuple(out)


# -- root cause and resolution --------------------------------------------------------------------


def _suspect_line(f: Facts, s: Suspect, t: _Clock) -> Line:
    c = s.culprit
    details: list[Line] = []
    for n, site in enumerate(c.call_sites):
        commit = f" (commit {c.commits[n]})" if n < len(c.commits) else ""
        details.append(
            line("called at ", code(f"{site.path}:{site.line}"), f" in {site.function}{commit}")
        )
    if s.new_in_deploy and f.deploy is not None:
        details.append(
            line(
                f"new with {_deploy_words(f)}: no calls in the "
                f"{duration(f.policy.baseline_seconds)} before it.",
                source=_windows_source(t, s.before) if s.before is not None else None,
            )
        )
    elif c.first_seen_deploy:
        details.append(line(f"first seen with deploy {c.first_seen_deploy}.", source="culprit"))
    if s.before is not None and s.before.mean_ms is not None:
        details.append(
            line(
                f"mean latency per call before the deploy: {_ms(s.before.mean_ms)} ms.",
                source=_windows_source(t, s.before),
            )
        )
    if s.during.mean_ms is not None:
        ratio = f" ({s.ratio:.1f}x)" if s.ratio is not None else ""
        details.append(
            line(
                f"mean latency per call during the incident: {_ms(s.during.mean_ms)} ms{ratio}.",
                source=_windows_source(t, s.during),
            )
        )
    else:
        details.append(
            line("no calls stored during the incident.", source=_windows_source(t, s.during))
        )
    if s.after is not None:
        after = (
            f"mean latency per call after mitigation: {_ms(s.after.mean_ms)} ms."
            if s.after.mean_ms is not None
            else "no calls after mitigation: the query is gone."
        )
        details.append(line(after, source=_windows_source(t, s.after)))
    if s.replaced is not None:
        label, old = s.replaced
        mean = f" (mean {_ms(old.mean_ms)} ms per call before)" if old.mean_ms is not None else ""
        details.append(line("it replaced ", code(label), mean, source=_windows_source(t, old)))
    details.append(
        line(
            f"added {c.added_db_ms_per_s:,.1f} ms of database time per second.",
            source="culprit added_db_ms_per_s, at detection",
        )
    )
    return line(code(c.normalized or c.fingerprint), children=details)


def _root_cause(f: Facts, t: _Clock, plans: PlanSection | None) -> Section:
    i = f.incident
    blocks: list[Block] = []
    if f.suspects:
        blocks.append(Block("Root cause", tuple(_suspect_line(f, s, t) for s in f.suspects)))
    else:
        lines = tuple(
            line(d.summary, source="incident detections")
            for d in i.detections
            if d.kind != "victim"
        )
        blocks.append(Block("Root cause", lines or (line("no query is named."),)))
    victims = i.victims
    if victims:
        blocks.append(
            Block(
                "Victims, not causes",
                tuple(
                    line(
                        code(" ".join((d.normalized or "").split())),
                        ": ",
                        d.summary + ".",
                        source="incident detections",
                    )
                    for d in victims
                ),
            )
        )
    if f.deploy is not None:
        d = f.deploy
        bits = [f"version {d.version}"]
        if d.commit:
            bits.append(f"commit {d.commit}")
        if d.previous_version:
            bits.append(f"previous version {d.previous_version}")
        deploy_lines = [line(f"{d.id}: {', '.join(bits)}.", source=f"deploy {d.id} marker")]
        if d.rollback_unsafe_reason:
            deploy_lines.append(
                line(
                    f"rolling it back was unsafe: {d.rollback_unsafe_reason}.",
                    source=f"deploy {d.id} marker",
                )
            )
        blocks.append(Block("Deploy", tuple(deploy_lines)))
    if i.triage is not None:
        blocks.append(Block("Triage", (line(i.triage.verdict, source="incident triage"),)))
    if plans is not None:
        blocks.append(Block("Query plans", plans.cause))
    resolution = [
        line(f"{t(e.at)} — ", *describe_action(e), source=_seq(e))
        for e in f.of_kind("action")
        if e.action in ("rollback", "runbook", "recovery_check", "freeze", "refused")
    ]
    resolution += list(_resolution_lines(f, t))
    blocks.append(Block("Resolution", tuple(resolution)))
    return Section("root-cause", "Root Cause and Resolution", tuple(blocks))


# -- corrective and preventative measures ---------------------------------------------------------


def _measures(f: Facts, t: _Clock, plans: PlanSection | None = None) -> Section:
    fixes = [x for s in f.suspects if (x := _fix(f, s)) is not None]
    if plans is not None:
        fixes += plans.fixes
    fixes += _rollback_fixes(f, t)
    tasks: list[Line] = []
    for s in f.suspects:
        tasks.append(
            line(
                "Add ",
                *_query_at(s),
                " to the CI baseline (",
                code("querywatch check"),
                "), so a change that slows it fails its pull request.",
                source="culprit",
            )
        )
    if f.suspects:
        tasks.append(_threshold(f, f.suspects[0], t))
    tasks += _misleading_tasks(f, t)
    blocks = []
    if fixes:
        blocks.append(Block("Improvements/fixes", tuple(fixes)))
    blocks.append(
        Block(
            "Tasks to address the issue",
            tuple(tasks) or (line("none derived: the incident names no query."),),
            "numbered",
        )
    )
    return Section("measures", "Corrective and Preventative Measures", tuple(blocks))


def _fix(f: Facts, s: Suspect) -> Line | None:
    """Review, index or rewrite a query that is new with the deploy or much slower."""
    t = _Clock(f.harm_start)
    loop = next(
        (
            d
            for d in f.incident.detections
            if d.kind == "n_plus_one" and d.fingerprint == s.culprit.fingerprint
        ),
        None,
    )
    if loop is not None:  # cheap per call, costly per request: batch it, no index will help
        return line(
            "Batch ",
            *_query_at(s),
            ": load the rows in one query (a JOIN, or WHERE id IN (…)) instead of one query "
            f"per row; {loop.summary}.",
            source="N+1 detection on the incident",
        )
    if s.new_in_deploy and s.during.mean_ms is not None:
        why = f"it is new with {_deploy_words(f) or 'the incident'} at {_ms(s.during.mean_ms)} ms"
        why += " per call"
        src = _windows_source(t, s.during)
    elif s.ratio is not None and s.ratio >= f.policy.min_latency_ratio and s.before is not None:
        why = (
            f"it went from {_ms(s.before.mean_ms or 0)} to {_ms(s.during.mean_ms or 0)} ms per "
            f"call ({s.ratio:.1f}x)"
        )
        src = f"before: {_windows_source(t, s.before)}; during: {_windows_source(t, s.during)}"
    else:
        return None
    return line("Review ", *_query_at(s), f": add an index or rewrite it; {why}.", source=src)


def _rollback_fixes(f: Facts, t: _Clock) -> list[Line]:
    out = []
    for e in f.of_kind("action"):
        d, when = e.data, t(e.at)
        if e.action == "rollback" and e.outcome in ("failed", "timeout"):
            how = (
                f"timed out after {float(d['duration_s']):g} s"  # type: ignore[arg-type]
                if e.outcome == "timeout" and isinstance(d.get("duration_s"), int | float)
                else "timed out"
                if e.outcome == "timeout"
                else f"failed with exit code {d['exit_code']}"
                if d.get("exit_code") is not None
                else "failed"
            )
            cmd: list[Part] = [" (", code(str(d["command"])), ")"] if d.get("command") else []
            out.append(
                line(f"Fix the rollback: the one at {when} {how}", *cmd, ".", source=_seq(e))
            )
        elif e.action == "rollback" and e.outcome == "dry_run":
            out.append(
                line(
                    f"The rollback at {when} was a dry run: nothing was rolled back. Turn off ",
                    code("rollback_dry_run"),
                    " once its command is trusted.",
                    source=_seq(e),
                )
            )
        elif e.action == "refused" or (e.action == "rollback" and e.outcome == "refused"):
            reason = f": {d['reason']}" if d.get("reason") else ""
            out.append(line(f"The rollback was refused at {when}{reason}.", source=_seq(e)))
        elif e.action == "recovery_check" and e.outcome == "not_recovered":
            figures = _figures(d)
            seen = f" ({figures})" if figures else ""
            out.append(
                line(
                    f"The rollback did not help: the recovery check at {when} found the figures "
                    f"still off{seen}. Look beyond the deploy for the cause.",
                    source=_seq(e),
                )
            )
        elif e.action == "freeze":
            reason = f": {d['reason']}" if d.get("reason") else ""
            out.append(line(f"Deploys were frozen at {when}{reason}.", source=_seq(e)))
    deploy = f.deploy
    if deploy is not None and deploy.rollback_unsafe_reason:
        out.append(
            line(
                "Ship schema migrations in a deploy of their own, so a bad release can be "
                f"rolled back: {deploy.rollback_unsafe_reason}.",
                source=f"deploy {deploy.id} marker",
            )
        )
    rollbacks = [e for e in f.of_kind("action") if e.action == "rollback"]
    if deploy is not None and f.suspects and not rollbacks:
        m = f.mitigated
        when = (
            f"mitigation came {duration(m.at - f.incident.detected_at)} after detection"
            if m is not None
            else "nothing mitigated it"
        )
        out.append(
            line(
                f"No rollback is recorded and {when}: set ",
                code("rollback_command"),
                " (and ",
                code("rollback_auto"),
                ") so the guarded rollback can act on the next bad deploy.",
                source=f"timeline: no rollback action{'; ' + _seq(m) if m else ''}",
            )
        )
    return out


def _threshold(f: Facts, s: Suspect, t: _Clock) -> Line:
    """The alert threshold that would have fired at the first slow window, from its figures."""
    w, detected = s.first_slow, f.incident.detected_at
    if w is None:
        return line(
            "Alert sooner: no statement window of ",
            code(s.culprit.normalized or s.culprit.fingerprint),
            " during the incident is stored, so no earlier threshold can be derived.",
        )
    closed = w.start + WINDOW_SECONDS
    source = f"statement window starting {t(w.start)} UTC; incident detected_at"
    q = code(s.culprit.normalized or s.culprit.fingerprint)
    if closed >= detected:
        return line(
            "Alert thresholds: detection came as the first slow window of ",
            q,
            f" closed ({t(closed)} UTC); no threshold on the stored figures fires sooner.",
            source=source,
        )
    lag = duration(detected - closed)
    if s.new_in_deploy or s.before is None or s.before.mean_ms is None:
        return line(
            "Alert sooner: ",
            q,
            f" first ran in the window starting {t(w.start)} ({w.calls:,} calls, "
            f"{_ms(w.mean_ms)} ms per call, {_ms(w.mean_ms * w.calls / WINDOW_SECONDS)} ms of "
            f"database time per second); detection came {lag} after that window closed. ",
            code(f"Policy(min_after_windows=1, new_fingerprint_min_calls={w.calls})"),
            f" would have fired at {t(closed)}.",
            source=source,
        )
    ratio = f.policy.min_latency_ratio
    return line(
        "Alert sooner: ",
        q,
        f" ran at {ratio:g}x its mean before the deploy ({_ms(s.before.mean_ms * ratio)} ms) "
        f"already in the window starting {t(w.start)} ({_ms(w.mean_ms)} ms per call over "
        f"{w.calls:,} calls); detection came {lag} after that window closed. Judging a single "
        "window, ",
        code(f"Policy(min_after_windows=1, min_calls_after={w.calls})"),
        f", would have fired at {t(closed)}.",
        source=f"{source}; before: {_windows_source(t, s.before)}; Policy.min_latency_ratio",
    )


def _misleading_tasks(f: Facts, t: _Clock) -> list[Line]:
    out = []
    alerts = f.of_kind("alerted")
    named = f.suspects[0] if f.suspects else None
    for e in f.misleading:
        lost, prev = _lost(f, e)
        head: list[Part] = []
        if named is not None:
            how = f"was alerted at {t(alerts[0].at)}" if alerts else "was opened"
            head = [
                "Start from the query the alert names: the incident named ",
                code(named.culprit.normalized or named.culprit.fingerprint),
                f" at detection ({t(f.incident.detected_at)}) and {how}; ",
            ]
        since = f"#{prev.seq} ({prev.event.kind})" if prev is not None else "start of harm"
        out.append(
            line(
                *head,
                f"{duration(lost)} were spent on “{e.event.message}”, a path that led nowhere.",
                source=f"{since} → timeline #{e.seq} (note tagged misleading)",
            )
        )
    return out
