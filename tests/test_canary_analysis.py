"""Canary analysis over windows built in memory: a small shop served by a stable release and a
canary at 5% of 30 requests/s, per-call log-normal latencies kept in sketches, both sides in the
same 10 s windows. Harmful canaries fail with the evidence; harmless ones (same code, bursts that
hit both sides, a changed text, a new cheap query) pass; too little data is inconclusive."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from querywatch.detect.canary import (
    CanaryPolicy,
    CanaryVerdict,
    ReleaseWindows,
    compare_releases,
)
from querywatch.detect.canary_stats import poisson_sf, stratified_mann_whitney
from querywatch.detect.stats import mann_whitney_greater_weighted
from querywatch.records import CallSite, RepeatWindow, RequestWindow, StatementWindow
from querywatch.sketch import LatencySketch

T0 = 1_700_000_000  # a window boundary
REPEAT_THRESHOLD = 5  # the middleware's default: requests running a fingerprint this often


@dataclass(frozen=True)
class Q:
    """A query a page runs: calls per request, mean latency, spread, rows, where it is issued."""

    name: str
    sql: str
    per_request: int
    mean_ms: float
    site: CallSite
    sigma: float = 0.4
    rows: int = 1

    @property
    def fp(self) -> str:
        return f"fp-{self.name}"


@dataclass(frozen=True)
class Page:
    route: str
    share: float
    queries: tuple[Q, ...]
    error_rate: float = 0.0


USER = Q("user", "SELECT * FROM users WHERE id = $1", 1, 0.3, CallSite("shop/auth.py", 12, "me"))
PRODUCTS = Q(
    "products", "SELECT * FROM products ORDER BY rank LIMIT $1", 1, 2.0,
    CallSite("shop/home.py", 30, "home"), rows=20,
)  # fmt: skip
PRODUCT = Q(
    "product", "SELECT * FROM products WHERE id = $1", 1, 0.4, CallSite("shop/p.py", 8, "show")
)
ORDERS = Q(
    "orders", "SELECT id, total FROM orders WHERE customer_id = $1", 1, 1.5,
    CallSite("shop/orders.py", 41, "list_orders"), rows=12,
)  # fmt: skip
SHOP = (
    Page("/", 0.5, (USER, PRODUCTS)),
    Page("/product", 0.3, (USER, PRODUCT)),
    Page("/orders", 0.2, (USER, ORDERS)),
)


def poisson(rng: random.Random, lam: float) -> int:
    n, t = 0, rng.expovariate(1.0)
    while t < lam:
        n += 1
        t += rng.expovariate(1.0)
    return n


@dataclass
class _Acc:
    statements: dict[tuple[str, int], StatementWindow] = field(default_factory=dict)
    requests: dict[tuple[str, int], RequestWindow] = field(default_factory=dict)
    repeats: dict[tuple[str, str, int], RepeatWindow] = field(default_factory=dict)

    def windows(self, release: str) -> ReleaseWindows:
        return ReleaseWindows(
            [replace(w, release=release) for w in self.statements.values()],
            [replace(w, release=release) for w in self.requests.values()],
            [replace(w, release=release) for w in self.repeats.values()],
        )


def simulate(
    seed: int,
    seconds: float,
    *,
    canary: tuple[Page, ...] = SHOP,
    stable: tuple[Page, ...] = SHOP,
    rate: float = 30.0,
    canary_share: float = 0.05,
    burst: Callable[[int], float] = lambda ws: 1.0,
    canary_active: Callable[[int], bool] = lambda ws: True,
) -> tuple[ReleaseWindows, ReleaseWindows]:
    """Both releases' windows over ``seconds`` from T0; ``burst(ws)`` scales every latency of a
    window on both sides (load, the host); ``canary_active(ws)`` whether the canary took any
    traffic in that window."""
    rng = random.Random(seed)
    sides = (_Acc(), _Acc())
    ws = T0
    while ws < T0 + seconds:
        length = min(10.0, T0 + seconds - ws)
        for acc, pages, share in ((sides[0], canary, canary_share), (sides[1], stable, 1.0)):
            if acc is sides[0] and not canary_active(ws):
                continue
            if acc is sides[1]:
                share = 1.0 - canary_share
            for page in pages:
                _serve(rng, acc, page, ws, poisson(rng, rate * share * page.share * length), burst)
        ws += 10
    return sides[0].windows("v2"), sides[1].windows("v1")


def _serve(
    rng: random.Random, acc: _Acc, page: Page, ws: int, n: int, burst: Callable[[int], float]
) -> None:
    if not n:
        return
    req = acc.requests.setdefault(
        (page.route, ws), RequestWindow(page.route, ws, 0, 0, 0.0, 0.0, 0.0)
    )
    for _ in range(n):
        spent = 0.0
        calls = 0
        for q in page.queries:
            w = acc.statements.setdefault(
                (q.fp, ws),
                StatementWindow(q.fp, q.sql, ws, 0, 0.0, 0.0, sketch=LatencySketch(),
                                call_sites=(q.site,)),
            )  # fmt: skip
            for _ in range(q.per_request):
                ms = rng.lognormvariate(math.log(q.mean_ms) - q.sigma**2 / 2, q.sigma) * burst(ws)
                w.calls += 1
                w.total_ms += ms
                w.max_ms = max(w.max_ms, ms)
                w.rows += q.rows
                assert w.sketch is not None
                w.sketch.add(ms)
                spent += ms
            calls += q.per_request
            if q.per_request >= REPEAT_THRESHOLD:
                rep = acc.repeats.setdefault(
                    (page.route, q.fp, ws),
                    RepeatWindow(page.route, q.fp, ws, 0, 0, 0, normalized=q.sql),
                )
                rep.requests += 1
                rep.total_repeats += q.per_request
                rep.max_repeats = max(rep.max_repeats, q.per_request)
        req.requests += 1
        req.errors += rng.random() < page.error_rate
        req.db_calls += calls
        req.db_ms += spent
        req.total_ms += spent + 5.0
        req.max_ms = max(req.max_ms, spent + 5.0)


def verdict_at(
    sides: tuple[ReleaseWindows, ReleaseWindows], seconds: float, policy: CanaryPolicy | None = None
) -> CanaryVerdict:
    c, s = sides
    return compare_releases(
        c, s, canary_release="v2", stable_release="v1", since=T0, until=T0 + seconds,
        policy=policy,
    )  # fmt: skip


def swap(pages: tuple[Page, ...], old: Q, new: Q) -> tuple[Page, ...]:
    return tuple(
        replace(p, queries=tuple(new if q == old else q for q in p.queries)) for p in pages
    )


# -- harmful canaries fail, with the evidence ----------------------------------------------------


def test_a_query_100x_slower_on_a_fifth_of_pages_fails_within_30_s_at_5_percent() -> None:
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    v = verdict_at(simulate(1, 30, canary=swap(SHOP, ORDERS, slow)), 30)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.fingerprint, f.normalized) == ("latency", ORDERS.fp, ORDERS.sql)
    assert f.call_sites == (ORDERS.site,)
    assert f.effect is not None and f.effect > 30
    assert f.p_value is not None and f.p_value <= 0.001
    assert f.canary["calls"] >= 4 and f.stable["calls"] >= 20
    assert f.canary["mean_ms"] > 50 * f.stable["mean_ms"]
    assert f.canary["added_ms_per_s"] > 100
    assert "orders" in f.message and "v2" in f.message
    assert v.canary_requests < 0.1 * v.stable_requests
    json.dumps(v.as_dict())  # what the rollout and the API serve


def test_a_rewritten_query_20x_slower_is_matched_to_the_old_one_by_call_site() -> None:
    rewrite = replace(
        ORDERS, name="orders-cast", sql="SELECT id, total FROM orders WHERE CAST(customer_id "
        "AS TEXT) = $1", mean_ms=30.0, site=replace(ORDERS.site, line=44),
    )  # fmt: skip
    v = verdict_at(simulate(2, 60, canary=swap(SHOP, ORDERS, rewrite)), 60)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.fingerprint) == ("new_query", rewrite.fp)
    assert f.stable["mean_ms"] == pytest.approx(ORDERS.mean_ms, rel=0.3)
    assert f.effect is not None and f.effect > 10
    assert "replaced" in f.message and "customer_id = $1" in f.message


def test_a_new_costly_query_with_no_counterpart_fails_on_its_share_of_database_time() -> None:
    report = Q(
        "report", "SELECT count(*) FROM orders GROUP BY day", 1, 80.0, CallSite("r.py", 3, "r")
    )
    pages = tuple(replace(p, queries=(*p.queries, report)) if p.route == "/" else p for p in SHOP)
    v = verdict_at(simulate(3, 60, canary=pages), 60)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.fingerprint, f.stable) == ("new_query", report.fp, {})
    assert f.canary["share_of_db_time"] > 0.5


def test_a_new_n_plus_one_fails_per_route_naming_the_repeated_query() -> None:
    items = Q("items", "SELECT * FROM order_items WHERE order_id = $1", 1, 0.2,
              CallSite("shop/orders.py", 50, "list_orders"))  # fmt: skip
    loop = replace(items, per_request=25)
    stable = tuple(
        replace(p, queries=(*p.queries, items)) if p.route == "/orders" else p for p in SHOP
    )
    canary = swap(stable, items, loop)
    v = verdict_at(simulate(4, 60, canary=canary, stable=stable), 60)
    assert v.status == "fail", v.reason
    kinds = {f.kind: f for f in v.findings}
    f = kinds["n_plus_one"]
    assert (f.route, f.fingerprint, f.normalized) == ("/orders", items.fp, items.sql)
    assert f.canary["calls_per_request"] == pytest.approx(27)
    assert f.stable["calls_per_request"] == pytest.approx(3)


def test_a_route_that_errs_on_canary_fails_with_both_error_rates() -> None:
    canary = tuple(replace(p, error_rate=0.4) if p.route == "/product" else p for p in SHOP)
    stable = tuple(replace(p, error_rate=0.01) for p in SHOP)
    v = verdict_at(simulate(5, 60, canary=canary, stable=stable), 60)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.route, f.fingerprint) == ("errors", "/product", None)
    assert f.canary["error_rate"] > 0.2 and f.stable["error_rate"] < 0.05
    assert f.p_value is not None and f.p_value <= 0.001


def test_many_more_rows_per_call_fails_as_rows() -> None:
    unbounded = replace(PRODUCTS, rows=5000)
    v = verdict_at(simulate(6, 60, canary=swap(SHOP, PRODUCTS, unbounded)), 60)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.fingerprint) == ("rows", PRODUCTS.fp)
    assert f.canary["rows_per_call"] == 5000 and f.stable["rows_per_call"] == 20


# -- harmless canaries pass ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_the_same_code_on_both_sides_passes(seed: int) -> None:
    v = verdict_at(simulate(100 + seed, 120), 120)
    assert v.status == "pass", v.reason
    assert v.findings == () and "queries" in v.reason


def test_bursts_that_hit_both_sides_pass_even_when_the_canary_runs_mostly_in_them() -> None:
    """Every third window is 6x slower for both releases, and the canary took traffic only in
    those: pooled over the span the canary looks 4x slower; window by window it is not."""
    bursty = lambda ws: 6.0 if (ws - T0) // 10 % 3 == 0 else 1.0  # noqa: E731
    active = lambda ws: (ws - T0) // 10 % 3 == 0  # noqa: E731
    c, s = simulate(7, 180, burst=bursty, canary_active=active, canary_share=0.2)
    v = verdict_at((c, s), 180)
    assert v.status == "pass", v.reason
    # Judged without the windows, the same data fails: the stratification is what passes it.
    pooled = ReleaseWindows(
        [replace(w, window_start=T0) for w in c.statements],
        [replace(w, window_start=T0) for w in c.requests],
    )
    pooled_stable = ReleaseWindows(
        [replace(w, window_start=T0 + 10) for w in s.statements],
        [replace(w, window_start=T0 + 10) for w in s.requests],
    )
    assert verdict_at((pooled, pooled_stable), 180).status != "pass"


def test_a_changed_text_that_costs_the_same_passes() -> None:
    renamed = replace(ORDERS, name="orders-v2", sql="SELECT o.id, o.total FROM orders o WHERE "
                      "o.customer_id = $1")  # fmt: skip
    v = verdict_at(simulate(8, 120, canary=swap(SHOP, ORDERS, renamed)), 120)
    assert v.status == "pass", v.reason


def test_a_new_cheap_query_on_every_page_passes() -> None:
    flag = Q("flag", "SELECT enabled FROM feature_flags WHERE name = $1", 1, 0.2,
             CallSite("shop/flags.py", 5, "enabled"))  # fmt: skip
    pages = tuple(replace(p, queries=(*p.queries, flag)) for p in SHOP)
    v = verdict_at(simulate(9, 120, canary=pages), 120)
    assert v.status == "pass", v.reason


def test_a_slightly_slower_cheap_query_passes_on_cost() -> None:
    """3x slower is significant, but 0.3 → 0.9 ms on one page adds under 10 ms/s at full
    traffic: not worth failing a release for."""
    slower = replace(PRODUCT, mean_ms=PRODUCT.mean_ms * 3)
    v = verdict_at(simulate(10, 120, canary=swap(SHOP, PRODUCT, slower)), 120)
    assert v.status == "pass", v.reason
    strict = CanaryPolicy(min_added_ms_per_s=1.0)
    assert (
        verdict_at(simulate(10, 120, canary=swap(SHOP, PRODUCT, slower)), 120, strict).status
        == "fail"
    )


# -- not enough data ----------------------------------------------------------------------------


def test_too_few_canary_requests_is_inconclusive_with_what_is_missing() -> None:
    v = verdict_at(simulate(11, 5), 5)
    assert v.status == "inconclusive"
    assert "canary v2 has" in v.reason and "20 are needed" in v.reason


def test_no_windows_for_the_canary_release_is_inconclusive_and_says_why() -> None:
    _, s = simulate(12, 30)
    v = verdict_at((ReleaseWindows(), s), 30)
    assert v.status == "inconclusive" and "QUERYWATCH_RELEASE" in v.reason
    assert v.canary_requests == 0 and v.stable_requests > 0


def test_a_query_that_looks_slow_on_too_few_calls_holds_the_verdict_inconclusive() -> None:
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    c, s = simulate(13, 60, canary=swap(SHOP, ORDERS, slow))
    few = [w for w in c.statements if w.fingerprint != ORDERS.fp or w.window_start == T0 + 20]
    assert 0 < sum(w.calls for w in few if w.fingerprint == ORDERS.fp) < 4
    v = verdict_at((ReleaseWindows(few, c.requests), s), 60)
    assert v.status == "inconclusive", v.reason
    assert v.pending and "looks" in v.pending[0] and "orders" in v.pending[0]


def test_a_canary_that_has_not_served_a_costly_page_yet_does_not_pass() -> None:
    """30 s in, the canary ran no /orders request (its query is a third of stable's database
    time): nothing is wrong with what it did serve, but that is not a pass."""
    no_orders = tuple(p for p in SHOP if p.route != "/orders")
    v = verdict_at(simulate(14, 30, canary=no_orders), 30)
    assert v.status == "inconclusive", v.reason
    assert any("ran SELECT id, total FROM orders" in p and "0 time(s)" in p for p in v.pending)
    # With everything served, the same span passes.
    assert verdict_at(simulate(14, 30), 30).status == "pass"


def test_policy_refuses_thresholds_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="alpha"):
        CanaryPolicy(alpha=0.0)
    with pytest.raises(ValueError, match="min_effect_ratio"):
        CanaryPolicy(min_effect_ratio=1.0)
    with pytest.raises(ValueError, match="negative"):
        CanaryPolicy(min_added_ms_per_s=math.nan)


# -- the statistics -----------------------------------------------------------------------------


def test_one_stratum_is_the_plain_mann_whitney() -> None:
    rng = random.Random(0)
    stable = [(rng.lognormvariate(0, 0.5), 1) for _ in range(40)]
    canary = [(rng.lognormvariate(0.6, 0.5), 1) for _ in range(7)]
    t = stratified_mann_whitney([(stable, canary)])
    plain = mann_whitney_greater_weighted(stable, canary)
    assert t is not None
    assert t.p_value == pytest.approx(plain.p_value) and t.u == pytest.approx(plain.u)


def test_one_sample_a_side_per_window_is_a_sign_test() -> None:
    strata = [([(1.0, 1)], [(2.0, 1)])] * 12  # canary slower in all 12 windows
    t = stratified_mann_whitney(strata)
    assert t is not None and t.superiority == 1.0
    # exact one-sided sign test: 0.5**12 = 2.4e-4; the normal approximation is near it
    assert 1e-4 < t.p_value < 1e-3
    assert stratified_mann_whitney([([(1.0, 1)], [])]) is None


def test_poisson_tail() -> None:
    assert poisson_sf(0, 3.0) == 1.0
    assert poisson_sf(1, 2.0) == pytest.approx(1 - math.exp(-2))
    assert poisson_sf(3, 0.1) == pytest.approx(1 - math.exp(-0.1) * (1 + 0.1 + 0.005))
    assert 0 < poisson_sf(60, 10.0) < 1e-20
    assert poisson_sf(1000, 1000.0) == pytest.approx(0.5, abs=0.02)
