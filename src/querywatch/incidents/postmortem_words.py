"""Wording shared by the postmortem's sections: times of day, figures, where a figure comes from."""

from __future__ import annotations

import time

from querywatch.incidents.postmortem_facts import Event, Facts, Latency, Suspect
from querywatch.incidents.postmortem_render import Part, code


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Clock:
    """Times of day in UTC; a time on another day than the harm's start carries its date."""

    def __init__(self, start: float) -> None:
        self.day = utc_day(start)

    def __call__(self, ts: float) -> str:
        fmt = "%H:%M:%S" if utc_day(ts) == self.day else "%Y-%m-%d %H:%M:%S"
        return time.strftime(fmt, time.gmtime(ts))


def ms_text(v: float) -> str:
    return f"{v:,.2f}" if v < 10 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def utc_span(t: Clock, a: float, b: float) -> str:
    return f"{t(a)}–{t(b)} UTC"


def windows_source(t: Clock, lat: Latency) -> str:
    if not lat.windows or lat.first_start is None or lat.last_start is None:
        return f"no statement windows starting {utc_span(t, lat.since, lat.until)}"
    n = "1 statement window" if lat.windows == 1 else f"{lat.windows} statement windows"
    return f"{n} starting {utc_span(t, lat.first_start, lat.last_start)}, {lat.calls:,} calls"


def call_site_text(s: Suspect) -> str | None:
    sites = s.culprit.call_sites
    return f"{sites[0].path}:{sites[0].line}" if sites else None


def query_at(s: Suspect) -> list[Part]:
    """``<query>`` at ``<call site>``, as spans."""
    parts: list[Part] = [code(s.culprit.normalized or s.culprit.fingerprint)]
    site = call_site_text(s)
    if site is not None:
        parts += [" at ", code(site)]
    return parts


def harm_start_words(f: Facts) -> str:
    return f"deploy {f.deploy.id} started" if f.deploy is not None else "detected"


def seq_ref(e: Event) -> str:
    return f"timeline #{e.seq} ({e.event.kind})"


def by_author(e: Event) -> str:
    return f" (by {e.event.author})" if e.event.author else ""


def deploy_words(f: Facts) -> str:
    d = f.deploy
    if d is None:
        return ""
    return f"deploy {d.id} (version {d.version})"


def action_figures(data: dict[str, object]) -> str:
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


def time_lost(f: Facts, e: Event) -> tuple[float, Event | None]:
    """Time lost on a misleading path: from the event before its note to the note, which says
    where the path ended."""
    before = [x for x in f.events if (x.at, x.seq) < (e.at, e.seq)]
    prev = before[-1] if before else None
    start = prev.at if prev is not None else f.harm_start
    return max(0.0, e.at - start), prev
