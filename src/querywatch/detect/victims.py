"""Culprits and victims: a query that slowed only because the database got busier is no cause.

Under pgbench with a bad query deployed mid-run, pgbench's own ``UPDATE pgbench_branches`` came
out as culprit #2, "7.7x slower after deploy v2", though its plan and rows per call were the
same: the bad query's load slowed it (CPU, I/O, the row locks its slower transactions held
longer). A slower query is a **victim** when both hold:

* its own behaviour did not change: rows per call and, where the source counts them
  (pg_stat_statements), shared buffers per call within ``victim_max_change`` either way, and a
  call rate that did not rise by that factor. Buffers per call are the statistics' view of the
  plan: an index scan that became a sequential scan touches many times the buffers, a query
  that only waited for CPU, I/O or a lock touches the same;
* the database got busier at the same time because of *other* queries' new load: the database
  time that new queries and queries whose own behaviour changed (by the same test) added, net
  of what queries that went away no longer cost, is at least ``victim_load_share`` of the time
  its own slowdown added and at least ``min_added_db_ms_per_s``. Slowdowns are never counted as
  load, so two slowed queries cannot make each other victims;
* and the database was busy enough for statements to overlap: at least
  ``victim_min_busy_ms_per_s`` of database time per second after (one backend busy on
  average). Serial traffic (one connection, an embedded SQLite) cannot slow one query by
  another's load, so there a slower query with the same rows stays a suspect.

A victim becomes a ``victim`` detection naming the load it suffered from; it is shown as such and
never ranked as a culprit, so it cannot make a deploy look guilty twice or trigger a rollback.
A slower query that changed its own behaviour (more rows, more calls) keeps its detection, with
the change in its evidence. Everything here is judged from the stored windows, never from names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from querywatch.detect.baseline import KeyBaseline
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.wording import ms, rate, short_sql, times

JUDGED = ("deploy_regression", "unannounced_regression")
"""Detections of a query that got slower: the ones that may turn out to be victims."""
SOURCES_KEPT = 3


@dataclass(frozen=True, slots=True)
class LoadSource:
    """Another query's new load over the same period, in database milliseconds per second."""

    fingerprint: str
    normalized: str
    added_db_ms_per_s: float
    why: str  # "new", "more calls", "more rows per call", "fewer rows per call"

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "added_db_ms_per_s": self.added_db_ms_per_s,
            "why": self.why,
        }


def own_change(before: KeyBaseline, after: KeyBaseline, policy: Policy) -> str | None:
    """How a query's own behaviour changed between the periods, or ``None`` (a possible victim):
    rows or buffers per call moved by ``victim_max_change`` either way, or its call rate rose
    by it. Buffers are judged only when both periods counted them."""
    f = policy.victim_max_change
    rows_b, rows_a = before.rows_per_call, after.rows_per_call
    if rows_a > 0 and rows_a >= f * rows_b:
        return "more rows per call"
    if rows_b > 0 and rows_b >= f * rows_a:
        return "fewer rows per call"
    blocks_b, blocks_a = before.blocks_per_call, after.blocks_per_call
    if blocks_b > 0 and blocks_a > 0 and max(blocks_a / blocks_b, blocks_b / blocks_a) >= f:
        more = "more" if blocks_a > blocks_b else "fewer"
        return f"{more} buffers per call (another plan)"
    if before.calls_per_s > 0 and after.calls_per_s >= f * before.calls_per_s:
        return "more calls"
    return None


def new_load(
    before: Mapping[str, KeyBaseline],
    after: Mapping[str, KeyBaseline],
    policy: Policy,
    *,
    exclude: str,
) -> tuple[float, list[LoadSource]]:
    """The database time per second other queries' new work added, and its largest sources.

    New queries count whole, queries whose own behaviour changed (:func:`own_change`) for all
    the time they added; the others count nothing (their slowdowns are not new work, and small
    moves of their call rates are noise). Queries gone since ``before`` take back what they
    cost. Never negative.
    """
    total = 0.0
    sources: list[LoadSource] = []
    for key, a in after.items():
        if key == exclude:
            continue
        b = before.get(key)
        if b is None or b.calls == 0:
            added, why = a.db_ms_per_s, "new"
        elif (change := own_change(b, a, policy)) is not None:
            added, why = a.db_ms_per_s - b.db_ms_per_s, change
        else:
            continue
        total += added
        if added > 0:
            sources.append(LoadSource(key, a.label, added, why))
    total -= sum(b.db_ms_per_s for key, b in before.items() if key != exclude and key not in after)
    sources.sort(key=lambda s: (-s.added_db_ms_per_s, s.fingerprint))
    return max(total, 0.0), sources[:SOURCES_KEPT]


def mark_victims(
    found: Sequence[Detection],
    before: Mapping[str, KeyBaseline],
    after: Mapping[str, KeyBaseline],
    policy: Policy,
    *,
    when: str,
) -> list[Detection]:
    """``found`` with each slower query judged: victims become ``victim`` detections, the
    others keep their kind with their own change (or its absence) in the evidence.

    ``when`` says what the periods are in a sentence ("after deploy v2", "without a deploy").
    """
    busy = sum(a.db_ms_per_s for a in after.values())
    out: list[Detection] = []
    for d in found:
        b = before.get(d.fingerprint or "")
        a = after.get(d.fingerprint or "")
        if d.kind not in JUDGED or d.fingerprint is None or b is None or a is None:
            out.append(d)
            continue
        change = own_change(b, a, policy)
        load, sources = new_load(before, after, policy, exclude=d.fingerprint)
        figures = {
            "rows_per_call_before": b.rows_per_call,
            "rows_per_call_after": a.rows_per_call,
            "own_change": change,
            "others_new_load_db_ms_per_s": load,
            "load_sources": [s.as_dict() for s in sources],
            "database_db_ms_per_s_after": busy,
        }
        needed = max(policy.min_added_db_ms_per_s, policy.victim_load_share * d.added_db_ms_per_s)
        if change is not None or load < needed or busy < policy.victim_min_busy_ms_per_s:
            out.append(replace(d, evidence={**d.evidence, **figures}))
            continue
        out.append(_victim(d, b, a, load, sources, when, figures))
    return out


def _victim(
    d: Detection,
    b: KeyBaseline,
    a: KeyBaseline,
    load: float,
    sources: list[LoadSource],
    when: str,
    figures: dict[str, Any],
) -> Detection:
    ratio = a.mean_ms / b.mean_ms if b.mean_ms > 0 else float("inf")
    top = sources[0] if sources else None
    blocks = (
        f", buffers per call {rate(b.blocks_per_call)} → {rate(a.blocks_per_call)}"
        if b.blocks and a.blocks
        else ""
    )
    source = (
        f", most of it {short_sql(top.normalized, 60)} ({top.why}, +{ms(top.added_db_ms_per_s)} "
        "ms/s)"
        if top is not None
        else ""
    )
    summary = (
        f"{short_sql(d.normalized or a.label)} got {times(ratio)} slower {when} "
        f"({ms(b.mean_ms)} → {ms(a.mean_ms)} ms mean) with its own behaviour unchanged (rows per "
        f"call {rate(b.rows_per_call)} → {rate(a.rows_per_call)}{blocks}, {rate(b.calls_per_s)} "
        f"→ {rate(a.calls_per_s)} calls/s) while other queries' new load added {ms(load)} ms of "
        f"database time per second{source}: a victim of the load, not a cause"
    )
    return replace(
        d,
        kind="victim",
        summary=summary,
        evidence={**d.evidence, **figures, "judged_as": d.kind},
    )
