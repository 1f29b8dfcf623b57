"""How fast and how safely the canary analysis judges, on simulated traffic (no demo, no database).

    .venv/bin/python bench/canary_stats.py        # 30 bad replays per effect, 30 per benign kind
    .venv/bin/python bench/canary_stats.py --bad 10 --benign 10

A shop at 30 requests/s, the canary taking 5% of them (sticky users are not modelled: requests
are split at random). Five pages; /orders gets 20% of the traffic and runs the query a bad canary
slows by 100x, 10x, 3x, 2x or 1.5x (a 4 ms mean query). Latency noise on both sides: per-call
log-normal spread (sigma 0.5, a search query 0.8), 1% of calls 10x slower (lock waits), a load
factor per 10 s window shared by both releases (log-normal sigma 0.2), and a small independent
jitter per release and window (the processes differ: sigma 0.05). The analysis runs every 5 s
over [canary start, now), as a rollout's poll would, up to 120 s.

Benign replays (each polled the same way; any "fail" is a false fail): the same code on both
sides; bursts (in 30% of the windows 3x the traffic and 2.5x the latency for 3 s, both sides);
a changed text of the /orders query (new fingerprint, same cost, same call site); a new cheap
query on every page (0.2 ms). The figures: time to the first "fail" per effect, the share failed
within 30 s, the smallest effect failed within 30 s in at least 90% of replays, the false-fail
rate, and how many benign replays pass by 60 s and 120 s.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from dataclasses import dataclass, field, replace

from querywatch.detect.canary import CanaryPolicy, ReleaseWindows, compare_releases
from querywatch.records import CallSite, RequestWindow, StatementWindow
from querywatch.sketch import LatencySketch

T0 = 1_700_000_000
RATE = 30.0
CANARY_SHARE = 0.05
POLL_S = 5
HORIZON_S = 120
TARGET_S = 30
EFFECTS = (100.0, 10.0, 3.0, 2.0, 1.5)


@dataclass(frozen=True)
class Q:
    name: str
    mean_ms: float
    site: CallSite
    sigma: float = 0.5
    rows: int = 1

    @property
    def fp(self) -> str:
        return f"fp-{self.name}"

    @property
    def sql(self) -> str:
        return f"SELECT /* {self.name} */ * FROM t WHERE id = $1"


@dataclass(frozen=True)
class Page:
    route: str
    share: float
    queries: tuple[Q, ...]


def _site(name: str, line: int) -> CallSite:
    return CallSite(f"shop/{name}.py", line, name)


USER = Q("user", 0.4, _site("auth", 10))
ORDERS = Q("orders", 4.0, _site("orders", 41), rows=12)
HOME = (Q("products", 2.5, _site("home", 30), rows=20), Q("cart_count", 0.5, _site("cart", 5)))
PRODUCT = (Q("product", 0.6, _site("product", 8)), Q("reviews", 3.0, _site("reviews", 12), rows=10))
CART = Q("cart_items", 1.2, _site("cart", 22), rows=4)
SEARCH = Q("search", 20.0, _site("search", 3), sigma=0.8, rows=30)
SHOP = (
    Page("/", 0.40, (USER, *HOME)),
    Page("/product", 0.25, (USER, *PRODUCT)),
    Page("/orders", 0.20, (USER, ORDERS)),
    Page("/cart", 0.10, (USER, CART)),
    Page("/search", 0.05, (USER, SEARCH)),
)


def swap(pages: tuple[Page, ...], old: Q, new: Q) -> tuple[Page, ...]:
    return tuple(
        replace(p, queries=tuple(new if q == old else q for q in p.queries)) for p in pages
    )


def poisson(rng: random.Random, lam: float) -> int:
    n, t = 0, rng.expovariate(1.0)
    while t < lam:
        n += 1
        t += rng.expovariate(1.0)
    return n


@dataclass
class Side:
    statements: dict[tuple[str, int], StatementWindow] = field(default_factory=dict)
    requests: dict[tuple[str, int], RequestWindow] = field(default_factory=dict)

    def windows(self) -> ReleaseWindows:
        return ReleaseWindows(list(self.statements.values()), list(self.requests.values()))


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: tuple[Page, ...] = SHOP
    bursts: bool = False


def replay(scenario: Scenario, seed: int, policy: CanaryPolicy) -> list[tuple[int, str]]:
    """The verdict at every poll: (seconds since the canary took traffic, status)."""
    rng = random.Random(seed)
    canary, stable = Side(), Side()
    load: dict[int, float] = {}
    burst_windows: set[int] = set()
    jitter: dict[tuple[int, int], float] = {}
    out: list[tuple[int, str]] = []
    for second in range(HORIZON_S):
        ws = T0 + second // 10 * 10
        if ws not in load:
            load[ws] = rng.lognormvariate(0.0, 0.2)
            if scenario.bursts and rng.random() < 0.3:
                burst_windows.add(ws)
            for k in (0, 1):
                jitter[(k, ws)] = rng.lognormvariate(0.0, 0.05)
        bursting = ws in burst_windows and second % 10 < 3
        rate = RATE * (3.0 if bursting else 1.0)
        factor = load[ws] * (2.5 if bursting else 1.0)
        for k, (side, pages, share) in enumerate(
            ((canary, scenario.canary, CANARY_SHARE), (stable, SHOP, 1.0 - CANARY_SHARE))
        ):
            f = factor * jitter[(k, ws)]
            for page in pages:
                for _ in range(poisson(rng, rate * share * page.share)):
                    _request(rng, side, page, ws, f)
        if (second + 1) % POLL_S == 0:
            v = compare_releases(
                canary.windows(),
                stable.windows(),
                canary_release="v2",
                stable_release="v1",
                since=T0,
                until=T0 + second + 1,
                policy=policy,
            )
            out.append((second + 1, v.status))
    return out


def _request(rng: random.Random, side: Side, page: Page, ws: int, factor: float) -> None:
    spent = 0.0
    for q in page.queries:
        w = side.statements.get((q.fp, ws))
        if w is None:
            w = side.statements[(q.fp, ws)] = StatementWindow(
                q.fp, q.sql, ws, 0, 0.0, 0.0, sketch=LatencySketch(), call_sites=(q.site,)
            )
        ms = rng.lognormvariate(math.log(q.mean_ms) - q.sigma**2 / 2, q.sigma) * factor
        if rng.random() < 0.01:
            ms *= 10.0  # a lock wait, a cold cache
        w.calls += 1
        w.total_ms += ms
        w.max_ms = max(w.max_ms, ms)
        w.rows += q.rows
        assert w.sketch is not None
        w.sketch.add(ms)
        spent += ms
    r = side.requests.get((page.route, ws))
    if r is None:
        r = side.requests[(page.route, ws)] = RequestWindow(page.route, ws, 0, 0, 0.0, 0.0, 0.0)
    r.requests += 1
    r.db_calls += len(page.queries)
    r.db_ms += spent
    r.total_ms += spent + 8.0
    r.max_ms = max(r.max_ms, spent + 8.0)


def first(polls: list[tuple[int, str]], status: str, streak: int = 1) -> int | None:
    """When ``status`` was first seen ``streak`` polls in a row (a rollout's failure threshold)."""
    run = 0
    for t, s in polls:
        run = run + 1 if s == status else 0
        if run >= streak:
            return t
    return None


def bad_table(n: int, seed: int, policy: CanaryPolicy) -> None:
    print(
        "| effect | failed within 30 s | failed by 120 s | time to fail: median | p90 | max "
        "| a pass before the fail | two fails in a row: median |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    smallest: dict[float, float] = {}  # share of replays -> smallest effect failed in time
    for effect in EFFECTS:
        slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * effect)
        runs = [replay(Scenario(f"{effect:g}x", swap(SHOP, ORDERS, slow)), seed + i, policy)
                for i in range(n)]  # fmt: skip
        got = sorted(t for r in runs if (t := first(r, "fail")) is not None)
        early = sum(1 for r in runs if (first(r, "pass") or 1e9) < (first(r, "fail") or 1e9))
        within = sum(1 for t in got if t <= TARGET_S)
        for share in (0.9, 0.5):
            if within >= share * n:
                smallest[share] = effect
        p90 = statistics.quantiles(got, n=10, method="inclusive")[-1] if len(got) >= 2 else None
        median = statistics.median(got) if got else None
        twice = [t for r in runs if (t := first(r, "fail", 2)) is not None]
        median2 = statistics.median(twice) if twice else None
        print(
            f"| {effect:g}x | {within}/{n} | {len(got)}/{n} | {_s(median)} | {_s(p90)} | "
            f"{_s(got[-1] if got else None)} | {early}/{n} | {_s(median2)} ({len(twice)}/{n}) |"
        )
    for share, effect in sorted(smallest.items(), reverse=True):
        print(
            f"\nsmallest effect failed within {TARGET_S} s in >= {share:.0%}: {effect:g}x", end=""
        )
    print("\n")


def benign_table(n: int, seed: int, policy: CanaryPolicy) -> None:
    renamed = replace(ORDERS, name="orders_v2", site=replace(ORDERS.site, line=44))
    flag = Q("flag", 0.2, _site("flags", 5))
    benign = (
        Scenario("same code"),
        Scenario("bursts", bursts=True),
        Scenario("changed text", swap(SHOP, ORDERS, renamed)),
        Scenario("new cheap query", tuple(replace(p, queries=(*p.queries, flag)) for p in SHOP)),
    )
    print(
        "| benign kind | replays | false fails | two fails in a row | pass by 60 s | "
        "pass by 120 s | first pass |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    total = fails = fails2 = 0
    for k, sc in enumerate(benign):  # each kind its own seeds: replays independent across kinds
        runs = [replay(sc, seed + 10_000 * k + i, policy) for i in range(n)]
        false = sum(1 for r in runs if first(r, "fail") is not None)
        false2 = sum(1 for r in runs if first(r, "fail", 2) is not None)
        at60 = sum(1 for r in runs if dict(r)[60] == "pass")
        at120 = sum(1 for r in runs if dict(r)[HORIZON_S] == "pass")
        passes = [t for r in runs if (t := first(r, "pass")) is not None]
        total, fails, fails2 = total + n, fails + false, fails2 + false2
        median = statistics.median(passes) if passes else None
        print(
            f"| {sc.name} | {n} | {false} | {false2} | {at60}/{n} | {at120}/{n} | "
            f"median {_s(median)} |"
        )
    verdicts = total * HORIZON_S // POLL_S
    print(
        f"\nfalse-fail rate: {fails}/{total} benign replays ({fails / total:.1%}); "
        f"{verdicts} verdicts; two fails in a row: {fails2}/{total}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bad", type=int, default=30, help="replays per effect")
    parser.add_argument("--benign", type=int, default=30, help="replays per benign kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    policy = CanaryPolicy()
    started = time.perf_counter()
    print(
        f"canary {CANARY_SHARE:.0%} of {RATE:g} req/s; /orders (20% of pages, {ORDERS.mean_ms:g} "
        f"ms mean) slowed on canary; polled every {POLL_S} s up to {HORIZON_S} s\n"
    )
    bad_table(args.bad, args.seed * 100_000, policy)
    benign_table(args.benign, args.seed * 100_000 + 50_000, policy)
    print(f"bench time {time.perf_counter() - started:.0f} s")


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:g} s"


if __name__ == "__main__":
    main()
