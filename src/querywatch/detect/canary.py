"""Canary analysis: judge a canary release against the stable one, per query and per route.

Both releases run at once, so they are compared **in the same time windows**: a burst, a slow
minute of the host or a noisy neighbour hits both sides and cancels out. Per fingerprint:
latency (a Mann–Whitney U stratified by window over per-call latencies, with an effect size, a
minimum sample and persistence), rows per call and errors; fingerprints only the canary runs
(matched to the query they replaced by call site, route or call rate, and judged by the database
time they add, never by novelty); per route: database calls per request (a new N+1) and the
error rate. A release is failed for what it would cost at full traffic, so a changed text or a
new cheap query passes. See docs/canary.md ("How a canary is judged").

    verdict = analyze_canary(store, canary_release="v2", stable_release="v1",
                             since=started_at, until=time.time())
    if verdict.status == "fail": ...   # verdict.findings: fingerprint, text, call sites, figures
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from querywatch.detect.canary_judges import (
    Outcome,
    Scale,
    judge_latency,
    judge_query_errors,
    judge_rows,
)
from querywatch.detect.canary_model import (
    CanaryFinding,
    CanaryPolicy,
    CanaryVerdict,
    FindingKind,
    Status,
)
from querywatch.detect.canary_new import judge_new_queries, judge_routes
from querywatch.detect.canary_sides import Side, floor_window, gather, span_seconds
from querywatch.detect.wording import short_sql
from querywatch.records import RepeatWindow, RequestWindow, StatementWindow
from querywatch.store.base import Store

FINDINGS_IN_REASON = 3


@dataclass(frozen=True, slots=True)
class ReleaseWindows:
    """One release's windows over the span analysed (as the store's reads return them)."""

    statements: Sequence[StatementWindow] = ()
    requests: Sequence[RequestWindow] = ()
    repeats: Sequence[RepeatWindow] = ()


def analyze_canary(
    store: Store,
    *,
    canary_release: str,
    stable_release: str,
    since: float,
    until: float,
    policy: CanaryPolicy | None = None,
) -> CanaryVerdict:
    """The canary against the stable release over ``[since, until)``, from the store."""

    def read(release: str) -> ReleaseWindows:
        start = floor_window(since)
        return ReleaseWindows(
            store.statement_windows(since=start, until=until, release=release),
            store.request_windows(since=start, until=until, release=release),
            store.repeat_windows(since=start, until=until, release=release),
        )

    return compare_releases(
        read(canary_release),
        read(stable_release),
        canary_release=canary_release,
        stable_release=stable_release,
        since=since,
        until=until,
        policy=policy,
    )


def compare_releases(
    canary: ReleaseWindows,
    stable: ReleaseWindows,
    *,
    canary_release: str,
    stable_release: str,
    since: float,
    until: float,
    policy: CanaryPolicy | None = None,
) -> CanaryVerdict:
    """The verdict over windows already read: the pure half of :func:`analyze_canary`."""
    p = policy or CanaryPolicy()
    c = gather(canary.statements, canary.requests, canary.repeats, since, until)
    s = gather(stable.statements, stable.requests, stable.repeats, since, until)
    by_request = c.requests > 0 and s.requests > 0
    scale = Scale(
        canary_units=c.requests if by_request else c.calls,
        stable_units=s.requests if by_request else s.calls,
        unit="request" if by_request else "call",
        span_s=span_seconds(c, s, since, until),
        canary_release=canary_release,
        stable_release=stable_release,
    )

    def verdict(status: Status, reason: str, out: Outcome | None = None) -> CanaryVerdict:
        return CanaryVerdict(
            status=status,
            canary_release=canary_release,
            stable_release=stable_release,
            since=since,
            until=until,
            findings=tuple(out.findings) if out is not None and status == "fail" else (),
            reason=reason,
            canary_requests=c.requests,
            stable_requests=s.requests,
            canary_calls=c.calls,
            stable_calls=s.calls,
            pending=tuple(out.pending) if out is not None else (),
        )

    for side, release in ((c, canary_release), (s, stable_release)):
        if not side.queries and not side.routes:
            return verdict(
                "inconclusive",
                f"nothing was recorded for release {release!r} in the span: is capture told the "
                "release (QUERYWATCH_RELEASE, instrument(release=...), or the release header)?",
            )
    out = judge(c, s, scale, p)
    if out.findings:
        shown = "; ".join(f.message for f in out.findings[:FINDINGS_IN_REASON])
        more = len(out.findings) - FINDINGS_IN_REASON
        return verdict("fail", shown + (f"; and {more} more" if more > 0 else ""), out)
    needs = (
        (scale.canary_units, f"canary {canary_release}"),
        (scale.stable_units, f"stable {stable_release}"),
    )
    for units, who in needs:
        if units < p.min_requests:
            return verdict(
                "inconclusive",
                f"{who} has {units} {scale.unit}s in the span; {p.min_requests} are needed",
                out,
            )
    if out.pending:
        return verdict("inconclusive", "; ".join(out.pending), out)
    return verdict(
        "pass",
        f"canary {canary_release} is within the policy against {stable_release}: "
        f"{out.judged_queries} queries and {out.judged_routes} routes judged over "
        f"{scale.canary_units} canary {scale.unit}s in {scale.span_s:.0f} s",
        out,
    )


_ORDER: dict[FindingKind, int] = {
    "errors": 0,
    "latency": 1,
    "new_query": 2,
    "n_plus_one": 3,
    "rows": 4,
}


def judge(c: Side, s: Side, scale: Scale, policy: CanaryPolicy) -> Outcome:
    """Every judge over the two sides; findings most costly first.

    ``alpha`` holds for the whole verdict, not for each test: it is divided among the queries
    (and, separately, the routes) with enough canary calls to be tested (Bonferroni), so a
    service with 50 queries is not 50 times as likely to fail a harmless canary by chance.
    """
    out = Outcome()
    tested = sum(1 for q in c.queries.values() if q.calls >= policy.min_calls)
    routes = sum(1 for r in c.routes.values() if r.requests >= policy.min_route_requests)
    per_query = replace(policy, alpha=policy.alpha / max(tested, 1))
    per_route = replace(policy, alpha=policy.alpha / max(routes, 1))
    for fp, cq in sorted(c.queries.items()):
        sq = s.queries.get(fp)
        if sq is None:
            continue
        judge_latency(cq, sq, scale, per_query, out)
        judge_rows(cq, sq, scale, per_query, out)
        judge_query_errors(cq, sq, scale, per_query, out)
    judge_new_queries(c, s, scale, per_query, out)
    judge_routes(c, s, scale, per_route, out)
    unseen(c, s, scale, policy, out)
    out.findings.sort(key=lambda f: (-f.canary.get("added_ms_per_s", 0.0), _ORDER[f.kind]))
    return out


def unseen(c: Side, s: Side, scale: Scale, policy: CanaryPolicy, out: Outcome) -> None:
    """Stable queries that matter the canary has not run enough to judge: a pass would be
    about pages it has not served yet."""
    total = s.total_ms
    share = scale.canary_units / scale.stable_units if scale.stable_units else 0.0
    for fp, sq in sorted(s.queries.items(), key=lambda kv: -kv[1].total_ms):
        if total <= 0 or sq.total_ms / total < policy.coverage_share:
            break
        cq = c.queries.get(fp)
        ran = cq.calls if cq is not None else 0
        due = sq.calls * share
        if ran >= policy.min_calls or (ran == 0 and due >= 3 * policy.min_calls):
            continue
        out.pending.append(
            f"the canary ran {short_sql(sq.normalized or fp, 60)} {ran} time(s), "
            f"{policy.min_calls} are needed (it is {sq.total_ms / total:.0%} of "
            f"{scale.stable_release}'s database time)"
        )


__all__ = [
    "CanaryFinding",
    "CanaryPolicy",
    "CanaryVerdict",
    "ReleaseWindows",
    "analyze_canary",
    "compare_releases",
]
