"""Canary analysis read from real stores: both releases' windows written to a SQLite file (and
the suite's PostgreSQL), then judged through the store's release filter, so what the capture
writes is what the analysis reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from querywatch.detect.canary import ReleaseWindows, analyze_canary
from querywatch.store import SqlStore, open_store
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        location = str(tmp_path / "store.sqlite3")
    else:
        location = str(request.getfixturevalue("pg_dsn"))
    with open_store(location) as s:
        yield s


def write(store: SqlStore, *sides: ReleaseWindows) -> None:
    for side in sides:
        store.write_windows(list(side.statements))
        store.write_requests(list(side.requests))
        store.write_repeats(list(side.repeats))


def test_a_slow_canary_query_fails_from_the_store_and_the_stable_release_is_untouched(
    store: SqlStore,
) -> None:
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    write(store, *simulate(1, 60, canary=swap(SHOP, ORDERS, slow)))
    v = analyze_canary(store, canary_release="v2", stable_release="v1", since=T0, until=T0 + 60)
    assert v.status == "fail", v.reason
    (f,) = v.findings
    assert (f.kind, f.fingerprint, f.normalized) == ("latency", ORDERS.fp, ORDERS.sql)
    assert f.call_sites == (ORDERS.site,)
    assert v.canary_requests > 0 and v.stable_requests > 10 * v.canary_requests
    # The other way round the fast release is not slower: no reason to fail v1 against v2.
    back = analyze_canary(store, canary_release="v1", stable_release="v2", since=T0, until=T0 + 60)
    assert back.status == "pass", back.reason


def test_a_harmless_canary_passes_from_the_store(store: SqlStore) -> None:
    renamed = replace(ORDERS, name="orders-v2", sql="SELECT o.id, o.total FROM orders o WHERE 1=1")
    write(store, *simulate(8, 120, canary=swap(SHOP, ORDERS, renamed)))
    v = analyze_canary(store, canary_release="v2", stable_release="v1", since=T0, until=T0 + 120)
    assert v.status == "pass", v.reason
    assert v.canary_calls > 0 and v.stable_calls > v.canary_calls


def test_a_release_the_store_never_saw_is_inconclusive(store: SqlStore) -> None:
    write(store, *simulate(3, 30))
    v = analyze_canary(store, canary_release="v3", stable_release="v1", since=T0, until=T0 + 30)
    assert v.status == "inconclusive" and "'v3'" in v.reason


def test_windows_outside_the_span_are_not_read(store: SqlStore) -> None:
    slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
    write(store, *simulate(1, 60, canary=swap(SHOP, ORDERS, slow)))
    later = T0 + 3600
    v = analyze_canary(
        store, canary_release="v2", stable_release="v1", since=later, until=later + 60
    )
    assert v.status == "inconclusive" and v.canary_requests == 0
