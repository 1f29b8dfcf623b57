"""The postmortem's "Caught in canary" line, from a real abort of the rollout driver on a real
SQLite store: with the middleware's user ids it gives the users who met the canary and those it
hurt; without them (users_total 0) it leaves the user figures out and gives the canary's request
count instead of "0 users met it"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from querywatch.detect.canary import ReleaseWindows
from querywatch.incidents import service
from querywatch.incidents.postmortem import render_postmortem
from querywatch.respond.canary import CanaryRollout
from querywatch.respond.canary_settings import CanarySettings
from querywatch.store import SqlStore, open_store
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap
from test_canary_analysis_store import write

ENV = "production"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(str(tmp_path / "store.sqlite3")) as s:
        yield s


def with_users(side: ReleaseWindows, users: frozenset[str], hurt: frozenset[str]) -> ReleaseWindows:
    """Every request window of one release as if the middleware had recorded these user ids."""
    requests = [replace(w, users=users, failed_users=hurt) for w in side.requests]
    return replace(side, requests=requests)


def caught_in_canary(store: SqlStore) -> tuple[str, dict[str, object]]:
    """Abort a 100x slower canary through the driver; the line and the abort's recorded data."""
    r = CanaryRollout(store, CanarySettings(environment=ENV, fail_threshold=1), clock=lambda: T0)
    r.start("v2", "v1", by="ci", now=T0)
    done = r.step(now=T0 + 60)
    assert done.did == "aborted", done.verdict.reason
    incident = service.get_incident(store, done.rollout.incident or "")
    (abort,) = [e for e in incident.timeline if e.data.get("action") == "canary_abort"]
    text = render_postmortem(store, incident.id, now=T0 + 120).text
    (line,) = [x for x in text.splitlines() if x.startswith("**Caught in canary:**")]
    return line, abort.data


def slow_canary() -> tuple[ReleaseWindows, ReleaseWindows]:
    return simulate(1, 60, canary=swap(SHOP, ORDERS, replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)))


def test_without_user_ids_the_line_gives_the_canary_requests(store: SqlStore) -> None:
    write(store, *slow_canary())
    line, data = caught_in_canary(store)
    assert data["users_total"] == 0
    requests = data["canary_requests"]
    assert isinstance(requests, int) and requests > 0
    assert f"v2 took 5% of traffic ({requests:,} canary requests) next to v1" in line, line
    assert "met it" not in line and "users" not in line
    assert "the canary analysis failed it and its weight went to 0" in line
    assert "Evidence: SELECT id, total FROM orders" in line


def test_with_user_ids_the_line_gives_who_met_the_canary_and_who_it_hurt(
    store: SqlStore,
) -> None:
    canary, stable = slow_canary()
    write(
        store,
        with_users(canary, frozenset({"c1", "c2"}), frozenset({"c1"})),
        with_users(stable, frozenset(f"s{i}" for i in range(8)), frozenset()),
    )
    line, data = caught_in_canary(store)
    assert (data["users_in_canary"], data["users_affected"], data["users_total"]) == (2, 1, 10)
    assert "v2 took 5% of users (2 met it) next to v1" in line, line
    assert "1 user (10.0% of 10 users) saw an error or a page slower than" in line
    assert "canary requests" not in line
