"""The postmortem's Root Cause and Resolution and its Corrective and Preventative Measures:
each suspect with its figures and plan, what was done, and the fixes and thresholds to change."""

from __future__ import annotations

from querywatch.incidents.postmortem_facts import Facts, Suspect
from querywatch.incidents.postmortem_plans import PlanSection
from querywatch.incidents.postmortem_render import (
    Block,
    Line,
    Part,
    Section,
    code,
    line,
)
from querywatch.incidents.postmortem_timeline import describe_action, resolution_lines
from querywatch.incidents.postmortem_words import (
    Clock,
    action_figures,
    deploy_words,
    ms_text,
    query_at,
    seq_ref,
    time_lost,
    windows_source,
)
from querywatch.records import WINDOW_SECONDS
from querywatch.timefmt import duration


def _suspect_line(f: Facts, s: Suspect, t: Clock) -> Line:
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
                f"new with {deploy_words(f)}: no calls in the "
                f"{duration(f.policy.baseline_seconds)} before it.",
                source=windows_source(t, s.before) if s.before is not None else None,
            )
        )
    elif c.first_seen_deploy:
        details.append(line(f"first seen with deploy {c.first_seen_deploy}.", source="culprit"))
    if s.before is not None and s.before.mean_ms is not None:
        details.append(
            line(
                f"mean latency per call before the deploy: {ms_text(s.before.mean_ms)} ms.",
                source=windows_source(t, s.before),
            )
        )
    if s.during.mean_ms is not None:
        ratio = f" ({s.ratio:.1f}x)" if s.ratio is not None else ""
        details.append(
            line(
                "mean latency per call during the incident: "
                f"{ms_text(s.during.mean_ms)} ms{ratio}.",
                source=windows_source(t, s.during),
            )
        )
    else:
        details.append(
            line("no calls stored during the incident.", source=windows_source(t, s.during))
        )
    if s.after is not None:
        after = (
            f"mean latency per call after mitigation: {ms_text(s.after.mean_ms)} ms."
            if s.after.mean_ms is not None
            else "no calls after mitigation: the query is gone."
        )
        details.append(line(after, source=windows_source(t, s.after)))
    if s.replaced is not None:
        label, old = s.replaced
        mean = (
            f" (mean {ms_text(old.mean_ms)} ms per call before)" if old.mean_ms is not None else ""
        )
        details.append(line("it replaced ", code(label), mean, source=windows_source(t, old)))
    details.append(
        line(
            f"added {c.added_db_ms_per_s:,.1f} ms of database time per second.",
            source="culprit added_db_ms_per_s, at detection",
        )
    )
    return line(code(c.normalized or c.fingerprint), children=details)


def root_cause_section(f: Facts, t: Clock, plans: PlanSection | None) -> Section:
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
        line(f"{t(e.at)} — ", *describe_action(e), source=seq_ref(e))
        for e in f.of_kind("action")
        if e.action in ("rollback", "runbook", "recovery_check", "freeze", "refused")
    ]
    resolution += list(resolution_lines(f, t))
    blocks.append(Block("Resolution", tuple(resolution)))
    return Section("root-cause", "Root Cause and Resolution", tuple(blocks))


def measures_section(f: Facts, t: Clock, plans: PlanSection | None = None) -> Section:
    fixes = [x for s in f.suspects if (x := _fix(f, s)) is not None]
    if plans is not None:
        fixes += plans.fixes
    fixes += _rollback_fixes(f, t)
    tasks: list[Line] = []
    for s in f.suspects:
        tasks.append(
            line(
                "Add ",
                *query_at(s),
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
    t = Clock(f.harm_start)
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
            *query_at(s),
            ": load the rows in one query (a JOIN, or WHERE id IN (…)) instead of one query "
            f"per row; {loop.summary}.",
            source="N+1 detection on the incident",
        )
    if s.new_in_deploy and s.during.mean_ms is not None:
        why = (
            f"it is new with {deploy_words(f) or 'the incident'} at {ms_text(s.during.mean_ms)} ms"
        )
        why += " per call"
        src = windows_source(t, s.during)
    elif s.ratio is not None and s.ratio >= f.policy.min_latency_ratio and s.before is not None:
        why = (
            f"it went from {ms_text(s.before.mean_ms or 0)} to "
            f"{ms_text(s.during.mean_ms or 0)} ms per call ({s.ratio:.1f}x)"
        )
        src = f"before: {windows_source(t, s.before)}; during: {windows_source(t, s.during)}"
    else:
        return None
    return line("Review ", *query_at(s), f": add an index or rewrite it; {why}.", source=src)


def _rollback_fixes(f: Facts, t: Clock) -> list[Line]:
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
                line(f"Fix the rollback: the one at {when} {how}", *cmd, ".", source=seq_ref(e))
            )
        elif e.action == "rollback" and e.outcome == "dry_run":
            out.append(
                line(
                    f"The rollback at {when} was a dry run: nothing was rolled back. Turn off ",
                    code("rollback_dry_run"),
                    " once its command is trusted.",
                    source=seq_ref(e),
                )
            )
        elif e.action == "refused" or (e.action == "rollback" and e.outcome == "refused"):
            reason = f": {d['reason']}" if d.get("reason") else ""
            out.append(line(f"The rollback was refused at {when}{reason}.", source=seq_ref(e)))
        elif e.action == "recovery_check" and e.outcome == "not_recovered":
            figures = action_figures(d)
            seen = f" ({figures})" if figures else ""
            out.append(
                line(
                    f"The rollback did not help: the recovery check at {when} found the figures "
                    f"still off{seen}. Look beyond the deploy for the cause.",
                    source=seq_ref(e),
                )
            )
        elif e.action == "freeze":
            reason = f": {d['reason']}" if d.get("reason") else ""
            out.append(line(f"Deploys were frozen at {when}{reason}.", source=seq_ref(e)))
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
                source=f"timeline: no rollback action{'; ' + seq_ref(m) if m else ''}",
            )
        )
    return out


def _threshold(f: Facts, s: Suspect, t: Clock) -> Line:
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
            f"{ms_text(w.mean_ms)} ms per call, "
            f"{ms_text(w.mean_ms * w.calls / WINDOW_SECONDS)} ms of database time per second); "
            f"detection came {lag} after that window closed. ",
            code(f"Policy(min_after_windows=1, new_fingerprint_min_calls={w.calls})"),
            f" would have fired at {t(closed)}.",
            source=source,
        )
    ratio = f.policy.min_latency_ratio
    return line(
        "Alert sooner: ",
        q,
        f" ran at {ratio:g}x its mean before the deploy ({ms_text(s.before.mean_ms * ratio)} ms) "
        f"already in the window starting {t(w.start)} ({ms_text(w.mean_ms)} ms per call over "
        f"{w.calls:,} calls); detection came {lag} after that window closed. Judging a single "
        "window, ",
        code(f"Policy(min_after_windows=1, min_calls_after={w.calls})"),
        f", would have fired at {t(closed)}.",
        source=f"{source}; before: {windows_source(t, s.before)}; Policy.min_latency_ratio",
    )


def _misleading_tasks(f: Facts, t: Clock) -> list[Line]:
    out = []
    alerts = f.of_kind("alerted")
    named = f.suspects[0] if f.suspects else None
    for e in f.misleading:
        lost, prev = time_lost(f, e)
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
