"""Regression detection over a Store: which query, which deploy, how much it costs — or "load".

Three detectors share one comparison (:class:`Comparison`: a fingerprint's baseline before, its
figures after, a rank test and a latency ratio):

* **deploy_regression** — each fingerprint after the latest deploy against the 30 minutes before
  it. Judged *relative to a control*: the call-weighted median slowdown of the other fingerprints,
  so a query is blamed only for what it does beyond what everything else did.
* **load** — when most of the traffic (by calls, at least three fingerprints) slowed by a similar
  factor, one detection says so and no query is blamed unless it stands far out of the crowd.
* **new_fingerprint** — a fingerprint first seen with the deploy that takes a large share of the
  database time (paired, when it can be, with the query it replaced: same call rate, gone now).
* **unannounced_regression** — with no deploy to blame: the latest windows of each fingerprint
  against its trailing baseline (median + k·MAD, ratio, persistence), and the whole database
  slowing together (``fingerprint=None``).

Latency is what is judged, never raw database time: more calls (a burst, a marketing e-mail)
raise database time without anything being wrong with a query. See docs/detection.md.
"""

from __future__ import annotations

import math
from typing import Any

from querywatch.detect.baseline import KeyBaseline
from querywatch.detect.comparison import (
    SETTLE_S,
    Comparison,
    Phases,
    W,
    ceil_w,
    floor_w,
    traffic_start,
)
from querywatch.detect.confidence import combine, g_high, g_low
from querywatch.detect.look_back import LookBack, PassContext
from querywatch.detect.model import Detection, PhaseStats
from querywatch.detect.new_fingerprints import new_fingerprint_detections
from querywatch.detect.policy import Policy
from querywatch.detect.stats import (
    leave_one_out_weighted_medians,
    mann_whitney_greater_weighted,
    median,
    weighted_median,
)
from querywatch.detect.victims import mark_victims
from querywatch.detect.wording import ms as _ms
from querywatch.detect.wording import rate as _rate
from querywatch.detect.wording import short_sql as _short
from querywatch.detect.wording import times as _x
from querywatch.records import DeployMarker
from querywatch.store.base import Store


class Detector:
    """Runs the detectors over a store with one policy.

    Stateless between calls unless ``reuse_seconds`` > 0: then what a pass read is kept and the
    next pass reads only what is new (see :class:`querywatch.detect.look_back.LookBack`).
    """

    def __init__(
        self,
        store: Store,
        policy: Policy | None = None,
        *,
        environment: str | None = None,
        reuse_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.policy = policy or Policy()
        self.environment = environment
        self.look_back = LookBack(store, self.policy.min_chunk_calls, reuse_seconds=reuse_seconds)

    # -- entry point ------------------------------------------------------------------------

    def detect(self, now: float, *, deploy: DeployMarker | str | None = None) -> list[Detection]:
        """Every detection at ``now``, most confident first.

        ``deploy`` (a marker or its id) forces the deploy compared against; by default it is the
        latest deploy whose new release has had ``min_duration_s`` of traffic, if it is younger
        than ``deploy_horizon_seconds``.
        """
        p = self.policy
        look_back = p.baseline_seconds + p.deploy_horizon_seconds + p.recent_windows * W + 2 * W
        deploys = self.store.deploys(
            since=now - look_back - p.baseline_seconds, environment=self.environment
        )
        deploys = [d for d in deploys if d.started_at <= now]
        reference = self._reference(now, deploy, deploys)
        since = now - p.baseline_seconds - p.recent_windows * W - W
        if reference is not None:
            since = min(since, reference.started_at - p.baseline_seconds - W)
        phases = self.deploy_phases(reference, now) if reference is not None else None
        if phases is not None and phases.after_end <= phases.after_start:
            phases = None
        anchor = deploys[-1].id if deploys else None
        unannounced = self._unannounced_phases(now, deploys)
        ctx = self.look_back.read(now, since, phases, unannounced, anchor)
        found: list[Detection] = []
        if reference is not None and phases is not None:
            found += self._deploy_detections(ctx, reference, phases)
        blamed = {d.fingerprint for d in found if d.fingerprint is not None}
        found += [
            d
            for d in self._unannounced(ctx)
            if d.fingerprint is None or d.fingerprint not in blamed
        ]
        found.sort(key=lambda d: (-d.confidence, -d.added_db_ms_per_s, d.fingerprint or ""))
        return found

    def _reference(
        self, now: float, forced: DeployMarker | str | None, deploys: list[DeployMarker]
    ) -> DeployMarker | None:
        p = self.policy
        if isinstance(forced, DeployMarker):
            return forced
        if isinstance(forced, str):
            every = self.store.deploys(environment=self.environment)
            return next((d for d in every if d.id == forced), None)
        for d in reversed(deploys):
            start = ceil_w(traffic_start(d))
            if now - start > p.deploy_horizon_seconds:
                return None  # older deploys are older still
            if now - start >= p.min_duration_s:
                return d
            # too fresh to judge: the one before it is judged, up to this one's start
        return None

    # -- shared comparison ------------------------------------------------------------------

    def _compare(
        self,
        before: dict[str, KeyBaseline],
        after: dict[str, KeyBaseline],
        *,
        min_before_chunks: int,
    ) -> list[Comparison]:
        """Comparisons of keys with enough calls on both sides, with control and rank test."""
        p = self.policy
        comps = [
            Comparison(key, a.label, before[key], a)
            for key, a in sorted(after.items())
            if key in before
            and before[key].calls >= p.min_calls_before
            and before[key].chunks >= min_before_chunks
            and a.calls >= p.min_calls_after
            and before[key].mean_ms > 0
        ]
        controls = leave_one_out_weighted_medians(
            [c.ratio for c in comps], [float(c.after.calls) for c in comps]
        )
        for c, control in zip(comps, controls, strict=True):
            if len(comps) - 1 >= p.control_min_fingerprints and control is not None:
                c.control = control
            self._test(c)
        return comps

    def _test(self, c: Comparison) -> None:
        """Rank test of after (divided by the control) against before, and persistence."""
        p = self.policy
        scale = 1.0 / max(c.control, 1.0)
        per_call = c.before.sketch is not None and c.after.sketch is not None
        if per_call:
            before = c.before.samples()
            after = [(v * scale, n) for v, n in c.after.samples()]
        else:
            before = [(m, 1) for m in c.before.chunk_means]
            after = [(m * scale, 1) for m in c.after.chunk_means]
        c.per_call = per_call
        if before and after:
            c.test = mann_whitney_greater_weighted(before, after)
            c.raw_test = c.test
            if scale != 1.0:
                unscaled = [(v / scale, n) for v, n in after]
                c.raw_test = mann_whitney_greater_weighted(before, unscaled)
        limit = c.before.mean_ms * max(c.control, 1.0) * p.min_latency_ratio
        c.slow_chunks = sum(1 for m in c.after.chunk_means if m >= limit)

    def _passes(self, c: Comparison) -> bool:
        p = self.policy
        t = c.test
        return (
            t is not None
            and t.p_value <= p.max_p_value
            and t.superiority >= p.min_superiority
            and c.relative >= p.min_latency_ratio
            and c.slow_chunks >= p.min_after_windows
            and c.added_db_ms_per_s >= p.min_added_db_ms_per_s
        )

    def _confidence(self, c: Comparison) -> float:
        p = self.policy
        assert c.test is not None
        return combine(
            {
                "significance": (g_low(c.test.p_value, p.max_p_value, 0.5), 0.25),
                "effect": (g_high(c.relative, p.min_latency_ratio, 2.0), 0.25),
                "superiority": (
                    g_low(1.0 - c.test.superiority, 1.0 - p.min_superiority),
                    0.15,
                ),
                "volume": (g_high(c.after.calls, p.min_calls_after), 0.15),
                "persistence": (g_high(c.slow_chunks, p.min_after_windows), 0.2),
            }
        )

    def _evidence(self, c: Comparison, phases: Phases) -> dict[str, Any]:
        t = c.test
        return {
            "samples": "per-call" if c.per_call else "per-window",
            "ratio": c.ratio,
            "control_ratio": c.control,
            "relative_ratio": c.relative,
            "u": t.u if t else None,
            "superiority": t.superiority if t else None,
            "z": t.z if t else None,
            "n_before": t.n_before if t else None,
            "n_after": t.n_after if t else None,
            "slow_windows": c.slow_chunks,
            "before_windows": c.before.windows,
            "after_windows": c.after.windows,
            "before_median_ms": c.before.median_ms,
            "before_mad_ms": c.before.mad_ms,
            **phases.as_dict(),
        }

    def _common_slowdown(self, comps: list[Comparison]) -> tuple[list[Comparison], float] | None:
        """The fingerprints that slowed together, and the common factor — or None if not load."""
        p = self.policy
        if len(comps) < p.load_min_fingerprints:
            return None
        weights = [float(c.after.calls) for c in comps]
        common = weighted_median([c.ratio for c in comps], weights)
        if common < p.load_min_ratio:
            return None
        band = math.log(p.load_similarity)
        together = [
            c
            for c in comps
            if c.ratio >= p.load_min_ratio
            and abs(math.log(c.ratio / common)) <= band
            and c.raw_test is not None
            and c.raw_test.p_value <= p.max_p_value
        ]
        share = sum(c.after.calls for c in together) / sum(weights)
        if len(together) < p.load_min_fingerprints or share < p.load_share:
            return None
        return together, common

    def _load_confidence(self, together: list[Comparison], comps: list[Comparison]) -> float:
        p = self.policy
        share = sum(c.after.calls for c in together) / sum(c.after.calls for c in comps)
        spread = median([abs(math.log(c.ratio)) for c in together])
        logs = [math.log(c.ratio) for c in together]
        dispersion = median([abs(v - median(logs)) for v in logs])
        p_typical = median([c.raw_test.p_value for c in together if c.raw_test is not None])
        return combine(
            {
                "share": (g_low(1.0 - share, 1.0 - p.load_share), 0.35),
                "count": (g_high(len(together), p.load_min_fingerprints), 0.2),
                "similarity": (g_low(dispersion, math.log(p.load_similarity)), 0.2),
                "significance": (g_low(p_typical, p.max_p_value, 0.5), 0.15),
                "size": (g_high(math.exp(spread), p.load_min_ratio, 2.0), 0.1),
            }
        )

    def _phase_totals(self, comps: list[Comparison]) -> tuple[PhaseStats, PhaseStats]:
        """Before/after figures of a set of fingerprints taken together."""

        def total(side: list[KeyBaseline]) -> PhaseStats:
            calls = sum(b.calls for b in side)
            ms = sum(b.total_ms for b in side)
            covered = side[0].covered_s if side else 0.0
            return PhaseStats(
                calls=calls,
                calls_per_s=calls / covered if covered else 0.0,
                mean_ms=ms / calls if calls else 0.0,
                p95_ms=None,
                db_ms_per_s=ms / covered if covered else 0.0,
            )

        return total([c.before for c in comps]), total([c.after for c in comps])

    # -- after a deploy ---------------------------------------------------------------------

    def deploy_phases(self, deploy: DeployMarker, now: float) -> Phases:
        """Before: whole windows before the deploy started; after: whole windows from when the
        new release had the traffic, up to the next deploy, ``after_max_seconds`` or now."""
        p = self.policy
        before_end = floor_w(deploy.started_at)
        after_start = ceil_w(traffic_start(deploy))
        after_end = min(now + 1, after_start + p.after_max_seconds)
        later = [
            d.started_at
            for d in self.store.deploys(since=deploy.started_at, environment=self.environment)
            if d.id != deploy.id and d.started_at > deploy.started_at
        ]
        if later:
            after_end = min(after_end, floor_w(min(later)))
        return Phases(before_end - p.baseline_seconds, before_end, after_start, after_end)

    def _deploy_detections(
        self, ctx: PassContext, deploy: DeployMarker, ph: Phases
    ) -> list[Detection]:
        p = self.policy
        assert ctx.deploy_sides is not None
        before, after = ctx.deploy_sides
        comps = self._compare(before, after, min_before_chunks=1)
        found: list[Detection] = []
        routes = self._route_evidence(ctx)
        load = self._common_slowdown(comps)
        if load is not None:
            together, common = load
            b, a = self._phase_totals(together)
            share = sum(c.after.calls for c in together) / sum(c.after.calls for c in comps)
            found.append(
                Detection(
                    kind="load",
                    detected_at=ctx.now,
                    confidence=self._load_confidence(together, comps),
                    summary=(
                        f"{len(together)} of {len(comps)} queries ({share:.0%} of calls) slowed "
                        f"together by about {_x(common)} after deploy {deploy.version} (database "
                        f"time {_ms(b.db_ms_per_s)} → {_ms(a.db_ms_per_s)} ms/s): load or the "
                        "host, not one query"
                    ),
                    before=b,
                    after=a,
                    added_db_ms_per_s=sum(max(c.added_db_ms_per_s, 0.0) for c in together),
                    p_value=max(c.raw_test.p_value for c in together if c.raw_test is not None),
                    evidence={
                        "deploy_id": deploy.id,
                        "common_ratio": common,
                        "share_of_calls": share,
                        "fingerprints": [c.key for c in together],
                        "ratios": {c.key: c.ratio for c in together},
                        "routes": routes,
                        **ph.as_dict(),
                    },
                )
            )
        for c in comps:
            if not self._passes(c):
                continue
            assert c.test is not None
            tail = (
                f" while the other queries slowed {_x(c.control)}"
                if c.control >= p.load_min_ratio
                else ""
            )
            found.append(
                Detection(
                    kind="deploy_regression",
                    detected_at=ctx.now,
                    confidence=self._confidence(c),
                    summary=(
                        f"{_short(c.label)} got {_x(c.ratio)} slower after deploy "
                        f"{deploy.version} ({_ms(c.before.mean_ms)} → {_ms(c.after.mean_ms)} ms "
                        f"mean, {_rate(c.after.calls_per_s)} calls/s), adding "
                        f"{_ms(c.added_db_ms_per_s)} ms of database time per second{tail}"
                    ),
                    fingerprint=c.key,
                    normalized=c.label,
                    deploy_id=deploy.id,
                    before=c.before.phase_stats(),
                    after=c.after.phase_stats(),
                    added_db_ms_per_s=c.added_db_ms_per_s,
                    p_value=c.test.p_value,
                    evidence={**self._evidence(c, ph), "routes": routes},
                )
            )
        found += new_fingerprint_detections(
            self.store, self.policy, ctx.now, ctx.seen_before, deploy, ph, before, after
        )
        return mark_victims(found, before, after, p, when=f"after deploy {deploy.version}")

    def _route_evidence(self, ctx: PassContext) -> list[dict[str, Any]]:
        """Routes whose request latency rose after the deploy (what users felt), top five."""
        if ctx.routes is None:
            return []
        before, after = ctx.routes
        rows: list[dict[str, Any]] = []
        for route, a in after.items():
            b = before.get(route)
            if b is None or b.calls < self.policy.min_calls_before or b.mean_ms <= 0:
                continue
            if a.calls < self.policy.min_calls_after:
                continue
            ratio = a.mean_ms / b.mean_ms
            if ratio >= self.policy.load_min_ratio:
                rows.append(
                    {
                        "route": route,
                        "before_mean_ms": b.mean_ms,
                        "after_mean_ms": a.mean_ms,
                        "ratio": ratio,
                        "requests_per_s": a.calls_per_s,
                    }
                )
        rows.sort(key=lambda r: -float(r["ratio"]) * float(r["requests_per_s"]))
        return rows[:5]

    # -- without a deploy -------------------------------------------------------------------

    def _unannounced_phases(self, now: float, deploys: list[DeployMarker]) -> Phases | None:
        """The trailing baseline and the recent windows, or None when a deploy is that recent.

        The baseline ends ``SETTLE_S`` before the current bucket (windows younger than that may
        still be written), or where the recent windows start if that is earlier."""
        p = self.policy
        recent_start = floor_w(now) - (p.recent_windows - 1) * W
        base_end = min(recent_start, floor_w(now) - SETTLE_S)
        base_start = base_end - p.baseline_seconds
        if deploys:
            base_start = max(base_start, ceil_w(traffic_start(deploys[-1])))
        if base_start >= base_end:
            return None  # a deploy inside the recent windows: the deploy detector's business
        return Phases(base_start, base_end, recent_start, now + 1)

    def _unannounced(self, ctx: PassContext) -> list[Detection]:
        p = self.policy
        now = ctx.now
        ph = ctx.unannounced
        if ph is None or ctx.unannounced_sides is None:
            return []
        before, after = ctx.unannounced_sides
        comps = self._compare(before, after, min_before_chunks=p.min_baseline_chunks)
        found: list[Detection] = []
        load = self._common_slowdown(comps)
        if load is not None:
            together, common = load
            b, a = self._phase_totals(together)
            share = sum(c.after.calls for c in together) / sum(c.after.calls for c in comps)
            found.append(
                Detection(
                    kind="unannounced_regression",
                    detected_at=now,
                    confidence=self._load_confidence(together, comps),
                    summary=(
                        f"The whole database slowed without a deploy: {len(together)} of "
                        f"{len(comps)} queries ({share:.0%} of calls) got about {_x(common)} "
                        f"slower together (database time {_ms(b.db_ms_per_s)} → "
                        f"{_ms(a.db_ms_per_s)} ms/s), pointing at load or the host, not one query"
                    ),
                    before=b,
                    after=a,
                    added_db_ms_per_s=sum(max(c.added_db_ms_per_s, 0.0) for c in together),
                    p_value=max(c.raw_test.p_value for c in together if c.raw_test is not None),
                    evidence={
                        "scope": "database",
                        "common_ratio": common,
                        "share_of_calls": share,
                        "fingerprints": [c.key for c in together],
                        "ratios": {c.key: c.ratio for c in together},
                        **ph.as_dict(),
                    },
                )
            )
        for c in comps:
            if not self._passes(c) or not self._outlier(c):
                continue
            assert c.test is not None
            found.append(
                Detection(
                    kind="unannounced_regression",
                    detected_at=now,
                    confidence=self._confidence(c),
                    summary=(
                        f"{_short(c.label)} got {_x(c.ratio)} slower without a deploy "
                        f"({_ms(c.before.mean_ms)} → {_ms(c.after.mean_ms)} ms mean over the last "
                        f"{c.after.windows} windows, {_rate(c.after.calls_per_s)} calls/s), adding "
                        f"{_ms(c.added_db_ms_per_s)} ms of database time per second"
                    ),
                    fingerprint=c.key,
                    normalized=c.label,
                    before=c.before.phase_stats(),
                    after=c.after.phase_stats(),
                    added_db_ms_per_s=c.added_db_ms_per_s,
                    p_value=c.test.p_value,
                    evidence={**self._evidence(c, ph), "mad_k": p.mad_k},
                )
            )
        return mark_victims(found, before, after, p, when="without a deploy")

    def _outlier(self, c: Comparison) -> bool:
        """The recent chunks sit above the baseline's median + k robust deviations, persistently."""
        p = self.policy
        med = c.before.median_ms
        if med is None:
            return False
        limit = med * max(c.control, 1.0) + p.mad_k * c.before.spread_ms(p.mad_floor)
        above = sum(1 for m in c.after.chunk_means if m > limit)
        return above >= p.min_after_windows


def detect(
    store: Store,
    now: float,
    policy: Policy | None = None,
    *,
    since_deploy: DeployMarker | str | None = None,
    environment: str | None = None,
) -> list[Detection]:
    """Every detection at ``now`` (see :class:`Detector`), most confident first."""
    return Detector(store, policy, environment=environment).detect(now, deploy=since_deploy)


__all__ = ["Detector", "detect"]
