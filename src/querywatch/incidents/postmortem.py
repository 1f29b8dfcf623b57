"""`querywatch postmortem`: the incident written up in the outage report's own structure.

Issue Summary, Timeline, Root Cause and Resolution, Corrective and Preventative Measures — the
sections of the report this project started from — written from stored facts only (the incident,
its timeline, its deploy marker, the culprits' statement windows; see ``postmortem_facts``), each
figure followed by where it comes from. A consistency check lists what the stored timeline
contradicts; a person's edits to a section survive rendering again (``postmortem_render``).
This module holds the header and the Issue Summary and puts the document together; the other
sections are ``postmortem_timeline``, ``postmortem_cause`` (Root Cause and Resolution, and the
Measures) and ``postmortem_plans`` (what the plans say), sharing ``postmortem_words``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from querywatch.atomic import write_atomic
from querywatch.detect.policy import Policy
from querywatch.incidents.postmortem_cause import measures_section, root_cause_section
from querywatch.incidents.postmortem_facts import (
    Facts,
    Suspect,
    check_consistency,
    gather,
)
from querywatch.incidents.postmortem_plans import PlanSection, plan_section
from querywatch.incidents.postmortem_render import (
    FORMATS,
    Block,
    Document,
    Line,
    PostmortemError,
    Section,
    code,
    line,
    render,
)
from querywatch.incidents.postmortem_timeline import timeline_section
from querywatch.incidents.postmortem_words import (
    Clock,
    deploy_words,
    harm_start_words,
    ms_text,
    query_at,
    utc_day,
    utc_span,
    windows_source,
)
from querywatch.incidents.service import get_incident
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


# -- the document ---------------------------------------------------------------------------------


def build_document(facts: Facts, warnings: list[str], plans: PlanSection | None) -> Document:
    """The postmortem's sections, in the report's order."""
    i = facts.incident
    t = Clock(facts.harm_start)
    sections = [_header(facts)]
    if warnings:
        sections.append(_consistency(warnings))
    sections += [
        _summary(facts, t),
        timeline_section(facts, t),
        root_cause_section(facts, t, plans),
        measures_section(facts, t, plans),
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
                        f"UTC, on {utc_day(f.harm_start)} unless a date is given.",
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


def _summary(f: Facts, t: Clock) -> Section:
    i = f.incident
    if i.resolved_at is not None:
        took = duration(i.resolved_at - f.harm_start)
        dur = line(
            f"{took}, from {t(f.harm_start)} ({harm_start_words(f)}) to {t(i.resolved_at)} UTC "
            "(resolved).",
            source=f"{f.harm_source} → incident resolved_at",
        )
    else:
        took = duration(f.now - f.harm_start)
        dur = line(
            f"ongoing: not resolved; {took} so far, from {t(f.harm_start)} ({harm_start_words(f)}) "
            f"to now ({t(f.now)} UTC).",
            source=f"{f.harm_source}; incident status {i.status}",
        )
    if i.impact is not None:
        m = i.impact
        span = (
            f", {utc_span(t, m.since, m.until)}"
            if m.since is not None and m.until is not None
            else ""
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
    blocks = [Block("Duration", (dur,)), Block("Impact", (impact,))]
    canary = _canary_line(f, t)
    if canary is not None:
        blocks.append(Block("Caught in canary", (canary,)))
    blocks.append(Block("Root cause", tuple(causes)))
    return Section("summary", "Issue Summary", tuple(blocks))


def _canary_line(f: Facts, t: Clock) -> Line | None:
    """When a canary was aborted: its cohort, who it hurt, when, and why. Without user ids from
    the middleware (``users_total`` 0) the user figures would read "0 met it": the canary's
    request count stands in for them."""
    found = [e for e in f.of_kind("action") if e.action == "canary_abort"]
    if not found:
        return None
    e = found[0]
    d = e.data

    def number(key: str) -> float:
        value = d.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    verdict = d.get("verdict")
    reason = verdict.get("reason") if isinstance(verdict, dict) else None
    how = (
        "the canary analysis failed it"
        if isinstance(verdict, dict)
        else f"{d.get('aborted_by') or 'a person'} aborted it"
    )
    outcome = d.get("weight_outcome")
    went = (
        "its weight went to 0"
        if outcome in (None, "ok", "not_configured", "dry_run")
        else f"setting its weight to 0 {outcome}"
    )
    total = int(number("users_total"))
    if total:
        hurt = int(number("users_affected"))
        cohort = f"{number('weight_pct'):g}% of users ({int(number('users_in_canary')):,} met it)"
        harm = (
            f"; {_users(hurt)} ({100.0 * hurt / total:.1f}% of {_users(total)}) saw an error or "
            f"a page slower than {number('slo_ms'):g} ms on it"
        )
    else:
        requests = d.get("canary_requests")
        served = f" ({int(requests):,} canary requests)" if isinstance(requests, int) else ""
        cohort, harm = f"{number('weight_pct'):g}% of traffic{served}", ""
    return line(
        f"{d.get('canary_release')} took {cohort} next to {d.get('stable_release')}; {how} and "
        f"{went} at {t(e.at)}, {number('abort_after_s'):.0f} s after it took traffic{harm}."
        + (f" Evidence: {reason}" if reason else ""),
        source=f"timeline #{e.seq} (canary abort)",
    )


def _cause_line(f: Facts, s: Suspect) -> Line:
    c = s.culprit
    parts = query_at(s)
    if s.new_in_deploy and f.deploy is not None:
        during = s.during.mean_ms
        at = f" at {ms_text(during)} ms per call" if during is not None else ""
        parts.append(f": a query new with {deploy_words(f)}{at}")
        source = f"culprit; {windows_source(Clock(f.harm_start), s.during)}"
    elif s.ratio is not None and s.before is not None and s.during.mean_ms is not None:
        parts.append(
            f": {s.ratio:.1f}x slower per call since {deploy_words(f)} "
            f"({ms_text(s.before.mean_ms or 0)} → {ms_text(s.during.mean_ms)} ms)"
        )
        t = Clock(f.harm_start)
        source = (
            f"culprit; before: {windows_source(t, s.before)}; during: {windows_source(t, s.during)}"
        )
    else:
        parts.append(
            f": a regression detected at {Clock(f.harm_start)(f.incident.detected_at)} UTC"
        )
        source = "culprit; incident detected_at"
    parts.append(f", adding {c.added_db_ms_per_s:,.1f} ms of database time per second.")
    return line(*parts, source=source)


def _users(n: int) -> str:
    return f"{n:,} user" if n == 1 else f"{n:,} users"
