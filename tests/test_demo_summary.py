"""Impact figures on a hand-made record list, checked against hand-computed values."""

from __future__ import annotations

import pytest

from querywatch.demo.load import RequestRecord
from querywatch.demo.summary import percentile, summarize


def _r(at: float, ms: float, status: int, user: int) -> RequestRecord:
    return RequestRecord(at, at, ms, status, user, "customer_orders", None, None)


RECORDS = [
    # before (t < 100)
    _r(10, 10, 200, 1),
    _r(20, 20, 200, 2),
    _r(30, 30, 200, 3),
    _r(40, 40, 500, 4),
    # during (100 <= t < 200)
    _r(100, 1500, 200, 1),  # slower than the SLO -> user 1 affected
    _r(110, 900, 200, 2),  # within the SLO
    _r(120, 5000, 0, 3),  # timeout -> user 3 affected
    _r(130, 1000, 200, 2),  # exactly the SLO is not slower than it
    _r(140, 800, 503, 5),  # 5xx -> user 5 affected
    # after (t >= 200)
    _r(200, 5, 200, 1),
    _r(210, 15, 200, 4),
]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 21)], 95) == 19.0


def test_phases_and_affected_users() -> None:
    s = summarize(RECORDS, bad_at=100, rollback_at=200)
    assert (s.before.requests, s.before.errors, s.before.error_rate) == (4, 1, 0.25)
    assert (s.before.p50_ms, s.before.p95_ms) == (20, 40)
    assert (s.during.requests, s.during.errors) == (5, 2)
    assert s.during.error_rate == pytest.approx(0.4)
    assert (s.during.p50_ms, s.during.p95_ms) == (1000, 5000)
    assert (s.after.requests, s.after.errors, s.after.p50_ms, s.after.p95_ms) == (2, 0, 5, 15)
    assert s.users_total == 5
    assert s.users_affected == 3  # users 1, 3, 5
    assert s.users_affected_pct == pytest.approx(60.0)
    assert s.as_dict()["during"]["requests"] == 5


def test_the_slo_is_configurable_and_no_rollback_means_an_open_bad_phase() -> None:
    s = summarize(RECORDS, bad_at=100, rollback_at=None, slo_ms=850)
    assert s.after.requests == 0 and s.after.p50_ms is None
    assert s.during.requests == 7
    assert s.users_affected == 4  # users 1, 2 (900 ms), 3, 5; user 4 stayed fast
    assert s.users_affected_pct == pytest.approx(80.0)


def test_with_a_canary_only_requests_sent_to_the_bad_release_affect_users() -> None:
    def routed(at: float, ms: float, status: int, user: int, to: str | None) -> RequestRecord:
        return RequestRecord(at, at, ms, status, user, "home", to, None, to)

    records = [
        routed(10, 10, 200, 1, "v1"),
        routed(100, 1500, 200, 1, "v2"),  # the canary, slow -> affected
        routed(105, 1500, 200, 2, "v1"),  # slow on the stable cohort: not the bad release's
        routed(110, 5000, 0, 3, None),  # sent who knows where: counts
        routed(120, 900, 200, 4, "v2"),  # the canary, within the SLO
        routed(200, 3000, 200, 4, "v2"),  # after the canary took no traffic
    ]
    s = summarize(records, bad_at=100, rollback_at=200, bad_release="v2")
    assert s.users_total == 4 and s.users_affected == 2  # users 1 and 3
    assert summarize(records, bad_at=100, rollback_at=200).users_affected == 3
