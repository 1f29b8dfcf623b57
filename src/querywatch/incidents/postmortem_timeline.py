"""The postmortem's Timeline section: every stored event in order, with the time lost between
detection and each step, escalations and the resolution."""

from __future__ import annotations

from querywatch.incidents.postmortem_facts import Event, Facts
from querywatch.incidents.postmortem_render import (
    Block,
    Line,
    Part,
    Section,
    code,
    line,
)
from querywatch.incidents.postmortem_words import (
    Clock,
    action_figures,
    by_author,
    harm_start_words,
    seq_ref,
    time_lost,
)
from querywatch.timefmt import duration

_ACTION_NAMES = {
    "rollback": "rollback",
    "runbook": "runbook step",
    "evidence_check": "evidence check",
    "recovery_check": "recovery check",
    "freeze": "deploy freeze",
    "refused": "rollback refused",
}


def describe_action(e: Event) -> list[Part]:
    """One action event in words: what ran, on whose trigger, and how it ended."""
    d = e.data
    if not e.action:
        return [f"{e.event.message}{by_author(e)}"]
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
    figures = action_figures(d)
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
    parts.append(by_author(e))
    return parts


def timeline_section(f: Facts, t: Clock) -> Section:
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
        line(f"{t(e.at)} — {e.event.message}", source=seq_ref(e)) for e in f.of_kind("detected")
    ]
    detected += [
        line(f"{t(e.at)} — alert: {e.event.message}", source=seq_ref(e))
        for e in f.of_kind("alerted")
    ]
    if not detected:
        detected = [line(f"{t(i.detected_at)} — detected.", source="incident detected_at")]
    blocks.append(Block("Issue detected", tuple(detected)))

    acted = [
        e
        for e in f.events
        if e.event.kind == "action" or (e.event.kind == "note" and e not in f.misleading)
    ]
    actions = [line(f"{t(e.at)} — ", *_note_or_action(e), source=seq_ref(e)) for e in acted] or [
        line("none recorded on the timeline.")
    ]
    blocks.append(Block("Actions taken", tuple(actions)))
    blocks.append(Block("Misleading investigation/debugging paths", _misleading_lines(f, t)))
    blocks.append(Block("Escalation", _escalation_lines(f, t)))
    blocks.append(Block("Incident resolution", resolution_lines(f, t)))
    blocks.append(Block("Time to detect, mitigate and resolve", _times(f, t)))
    return Section("timeline", "Timeline", tuple(blocks))


def _note_or_action(e: Event) -> list[Part]:
    if e.event.kind == "action":
        return describe_action(e)
    who = f"{e.event.author}: " if e.event.author else ""
    tags = f" [{', '.join(e.event.tags)}]" if e.event.tags else ""
    return [f"{who}{e.event.message}{tags}"]


def _misleading_lines(f: Facts, t: Clock) -> tuple[Line, ...]:
    out = []
    for e in f.misleading:
        lost, prev = time_lost(f, e)
        who = f"{e.event.author}: " if e.event.author else ""
        since = f"#{prev.seq} ({prev.event.kind})" if prev is not None else "the start of harm"
        out.append(
            line(
                f"{t(e.at)} — {who}{e.event.message} ({duration(lost)} spent on it).",
                source=f"{since} → timeline #{e.seq} (note tagged misleading)",
            )
        )
    return tuple(out) or (line("none recorded (notes tagged misleading are listed here)."),)


def _escalation_lines(f: Facts, t: Clock) -> tuple[Line, ...]:
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


def resolution_lines(f: Facts, t: Clock) -> tuple[Line, ...]:
    out = []
    for e in f.events:
        if e.event.kind == "mitigated":
            text = "" if e.event.message == "mitigated" else f": {e.event.message}"
            out.append(line(f"{t(e.at)} — mitigated{text}{by_author(e)}.", source=seq_ref(e)))
        elif e.event.kind == "resolved":
            text = "" if e.event.message == "resolved" else f": {e.event.message}"
            out.append(line(f"{t(e.at)} — resolved{text}{by_author(e)}.", source=seq_ref(e)))
    if f.incident.resolved_at is None:
        out.append(
            line(
                f"not resolved yet: the incident is {f.incident.status} at {t(f.now)} UTC.",
                source="incident status",
            )
        )
    return tuple(out)


def _times(f: Facts, t: Clock) -> tuple[Line, ...]:
    i = f.incident
    origin = f"{harm_start_words(f)} {t(f.harm_start)}"
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
                source=f"{f.harm_source} → {seq_ref(m)}",
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
