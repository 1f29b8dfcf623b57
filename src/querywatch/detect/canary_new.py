"""Queries only the canary runs, and the routes: what a canary added, judged by what it costs.

A canary-only fingerprint is first matched to the stable query it most likely replaced: one the
stable release runs and the canary no longer does, at the same call site (path and function; the
line may have moved), else on a route where both repeat, else at a similar call rate. A matched
pair is judged like a slower query (new against old, window by window); an unmatched new query
fails only when it takes a large share of the canary's database time. A new text that costs about
what the old one did, or a new query that is cheap, passes.

Per route: database calls per request (a new N+1, naming the fingerprint the canary repeats) and
the error rate, each against the stable release in the same windows.
"""

from __future__ import annotations

import math

from querywatch.detect.canary_judges import (
    Outcome,
    Scale,
    judge_errors,
    match,
    side_figures,
)
from querywatch.detect.canary_model import CanaryFinding, CanaryPolicy
from querywatch.detect.canary_sides import Query, Route, Side
from querywatch.detect.wording import ms, rate, short_sql, times

MAX_RATE_DISTANCE = math.log(2.0)
"""A replaced query runs within 2x of the new one's calls per unit of traffic."""


def _replaced(
    c: Query, canary: Side, stable: Side, vanished: dict[str, Query], scale: Scale, p: CanaryPolicy
) -> Query | None:
    """The vanished stable query ``c`` most likely replaced, or None."""
    own = scale.per_unit(c.calls, canary=True)

    def distance(s: Query) -> float:
        theirs = scale.per_unit(s.calls, canary=False)
        return abs(math.log(own / theirs)) if own > 0 and theirs > 0 else math.inf

    sites = c.sites()
    by_site = [s for s in vanished.values() if sites & s.sites()]
    if by_site:
        return min(by_site, key=lambda s: (distance(s), s.fingerprint))
    routes = {route for route, fp in canary.repeats if fp == c.fingerprint}
    by_route = [
        s for s in vanished.values() if any((r, s.fingerprint) in stable.repeats for r in routes)
    ]
    if by_route:
        return min(by_route, key=lambda s: (distance(s), s.fingerprint))
    # Without a shared place: a stable query the canary should have run by now but never did.
    share = scale.canary_units / scale.stable_units if scale.stable_units else 0.0
    by_rate = [
        s
        for s in vanished.values()
        if s.calls * share >= p.min_calls and distance(s) <= MAX_RATE_DISTANCE
    ]
    return min(by_rate, key=lambda s: (distance(s), s.fingerprint)) if by_rate else None


def judge_new_queries(
    canary: Side, stable: Side, scale: Scale, policy: CanaryPolicy, out: Outcome
) -> None:
    """Every canary-only fingerprint, costliest first."""
    vanished = {fp: q for fp, q in stable.queries.items() if fp not in canary.queries}
    new = [q for fp, q in canary.queries.items() if fp not in stable.queries]
    canary_ms = canary.total_ms
    for c in sorted(new, key=lambda q: (-q.total_ms, q.fingerprint)):
        s = _replaced(c, canary, stable, vanished, scale, policy)
        if s is not None:
            del vanished[s.fingerprint]
            _judge_pair(c, s, scale, policy, out)
        else:
            _judge_alone(c, canary_ms, scale, policy, out)


def _figures(q: Query, scale: Scale, *, canary: bool) -> dict[str, float]:
    """A side's figures plus its database time per unit: what a replaced query is judged by."""
    per_unit = scale.per_unit(q.calls, canary=canary)
    return {**side_figures(q, scale, canary=canary), f"ms_per_{scale.unit}": per_unit * q.mean_ms}


def _judge_pair(c: Query, s: Query, scale: Scale, p: CanaryPolicy, out: Outcome) -> None:
    m = match(c, s, p)
    cost_c = scale.per_unit(c.calls, canary=True) * c.mean_ms
    cost_s = scale.per_unit(s.calls, canary=False) * s.mean_ms
    added = scale.at_full_traffic(cost_c - cost_s)
    label = short_sql(c.normalized or c.fingerprint)
    effect = m.effect if m.canary_calls else (c.mean_ms / s.mean_ms if s.mean_ms else math.inf)
    bad = effect >= p.min_effect_ratio and added >= p.min_added_ms_per_s
    if not bad:
        out.judged_queries += 1 if m.canary_calls >= p.min_calls else 0
        return
    t = m.test
    enough = m.canary_calls >= p.min_calls and m.stable_calls >= p.min_stable_calls
    if not enough or t is None or m.slow_windows < p.min_windows:
        out.pending.append(
            f"{label} (new on canary, replacing {short_sql(s.normalized or s.fingerprint, 60)}) "
            f"looks {times(effect)} slower over {c.calls} call(s)"
        )
        return
    out.judged_queries += 1
    if t.superiority < p.min_superiority:
        return  # the ranks do not confirm what the means say: a few slow calls, noise
    if t.p_value > p.alpha:
        out.pending.append(
            f"{label} (new on canary) looks {times(effect)} slower than the query it replaced, "
            f"not yet significant (p={t.p_value:.2g}, needs {p.alpha:g})"
        )
        return
    out.findings.append(
        CanaryFinding(
            kind="new_query",
            fingerprint=c.fingerprint,
            route=None,
            normalized=c.normalized,
            canary={
                **_figures(c, scale, canary=True),
                "superiority": t.superiority,
                "added_ms_per_s": added,
            },
            stable={**_figures(s, scale, canary=False), "replaced": 1.0},
            p_value=t.p_value,
            effect=effect,
            call_sites=tuple(c.call_sites),
            message=(
                f"{label} is new on canary {scale.canary_release} and {times(effect)} slower than "
                f"the query it replaced at the same place on {scale.stable_release} "
                f"({short_sql(s.normalized or s.fingerprint, 60)}: {ms(s.mean_ms)} → "
                f"{ms(c.mean_ms)} ms mean, p={t.p_value:.1g}): about {ms(added)} ms of database "
                "time per second at full traffic"
            ),
        )
    )


def _judge_alone(c: Query, canary_ms: float, scale: Scale, p: CanaryPolicy, out: Outcome) -> None:
    cost = scale.per_unit(c.calls, canary=True) * c.mean_ms
    added = scale.at_full_traffic(cost)
    share = c.total_ms / canary_ms if canary_ms > 0 else 0.0
    if added < p.min_added_ms_per_s or (share < p.new_query_share and added < p.new_query_ms_per_s):
        return
    label = short_sql(c.normalized or c.fingerprint)
    if c.calls < p.min_calls or len(c.cells) < p.min_windows:
        out.pending.append(
            f"{label} is new on canary and takes {share:.0%} of its database time over "
            f"{c.calls} call(s)"
        )
        return
    out.judged_queries += 1
    out.findings.append(
        CanaryFinding(
            kind="new_query",
            fingerprint=c.fingerprint,
            route=None,
            normalized=c.normalized,
            canary={
                **_figures(c, scale, canary=True),
                "share_of_db_time": share,
                "added_ms_per_s": added,
            },
            stable={},
            p_value=None,
            effect=None,
            call_sites=tuple(c.call_sites),
            message=(
                f"{label} is new on canary {scale.canary_release} with no counterpart on "
                f"{scale.stable_release} and takes {share:.0%} of the canary's database time "
                f"({ms(c.mean_ms)} ms mean, {rate(scale.per_unit(c.calls, canary=True))} calls "
                f"per {scale.unit}): about {ms(added)} ms of database time per second at full "
                "traffic"
            ),
        )
    )


def judge_routes(
    canary: Side, stable: Side, scale: Scale, policy: CanaryPolicy, out: Outcome
) -> None:
    """Calls per request and errors of each route the canary served."""
    s_requests = stable.requests
    pooled = (stable.errors + 0.5) / (s_requests + 1)
    for name, c in sorted(canary.routes.items()):
        if c.requests < policy.min_route_requests:
            continue
        s = stable.routes.get(name)
        out.judged_routes += 1
        _judge_route_errors(c, s, pooled, scale, policy, out)
        if s is not None and s.requests >= policy.min_route_requests:
            _judge_n_plus_one(c, s, canary, stable, scale, policy, out)


def _route_figures(r: Route) -> dict[str, float]:
    n = r.requests
    return {
        "requests": float(n),
        "errors": float(r.errors),
        "error_rate": r.errors / n if n else 0.0,
        "calls_per_request": r.db_calls / n if n else 0.0,
        "db_ms_per_request": r.db_ms / n if n else 0.0,
        "mean_ms": r.total_ms / n if n else 0.0,
    }


def _judge_route_errors(
    c: Route, s: Route | None, pooled: float, scale: Scale, p: CanaryPolicy, out: Outcome
) -> None:
    judged = judge_errors(c.cells, s.cells if s is not None else {}, pooled, p)
    if judged is None:
        return
    c_rate, s_rate, mu, p_value = judged
    out.findings.append(
        CanaryFinding(
            kind="errors",
            fingerprint=None,
            route=c.route,
            normalized="",
            canary=_route_figures(c),
            stable=_route_figures(s) if s is not None else {"error_rate": s_rate},
            p_value=p_value,
            effect=c_rate / s_rate if s_rate > 0 else None,
            call_sites=(),
            message=(
                f"{c.route} fails {c_rate:.0%} of its requests on canary {scale.canary_release} "
                f"against {s_rate:.1%} on {scale.stable_release} ({c.errors} errors where "
                f"{mu:.1f} were expected, p={p_value:.1g})"
            ),
        )
    )


def _judge_n_plus_one(
    c: Route, s: Route, canary: Side, stable: Side, scale: Scale, p: CanaryPolicy, out: Outcome
) -> None:
    # The fingerprint whose repeats per request of this route rose the most on canary.
    rises = {
        fp: n / c.requests - stable.repeats.get((route, fp), 0) / s.requests
        for (route, fp), n in canary.repeats.items()
        if route == c.route
    }
    top = max(sorted(rises), key=lambda fp: rises[fp]) if rises else None
    if c.db_calls or s.db_calls:
        c_cpr, s_cpr = c.db_calls / c.requests, s.db_calls / s.requests
    elif top is not None:
        c_cpr = canary.repeats[(c.route, top)] / c.requests
        s_cpr = stable.repeats.get((c.route, top), 0) / s.requests
    else:
        return
    if c_cpr < p.min_calls_per_request_ratio * max(s_cpr, 1.0):
        return
    if c_cpr - s_cpr < p.min_added_calls_per_request:
        return
    q = canary.queries.get(top) if top is not None else None
    normalized = (q.normalized if q is not None else "") or canary.repeat_text.get(top or "", "")
    what = f" running {short_sql(normalized, 60)} again and again" if normalized else ""
    out.findings.append(
        CanaryFinding(
            kind="n_plus_one",
            fingerprint=top,
            route=c.route,
            normalized=normalized,
            canary=_route_figures(c),
            stable=_route_figures(s),
            p_value=None,
            effect=c_cpr / max(s_cpr, 1.0),
            call_sites=tuple(q.call_sites) if q is not None else (),
            message=(
                f"{c.route} makes {rate(c_cpr)} database calls per request on canary "
                f"{scale.canary_release} against {rate(s_cpr)} on {scale.stable_release} "
                f"(over {c.requests} canary requests){what}: a new N+1"
            ),
        )
    )
