"""Incidents: the JSON codec, the lifecycle rules and the impact figures, on real SQLite stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli_helpers import run_cli
from querywatch.detect.model import Culprit, Detection, PhaseStats, Triage
from querywatch.errors import InvalidTransition, NotFound
from querywatch.incidents import service
from querywatch.incidents.codec import (
    body_from_json,
    body_to_json,
    incident_from_dict,
    incident_to_dict,
)
from querywatch.incidents.impact import impact_between, impact_of, slow_requests
from querywatch.incidents.model import Impact, Incident, Status, TimelineEvent
from querywatch.incidents.repository import list_incidents, load_incident
from querywatch.records import CallSite, DeployMarker, RequestWindow
from querywatch.sketch import LatencySketch
from querywatch.store import SqlStore, open_store

T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC
DAY_PREFIX = "QW-20251124"


def detection(fp: str = "fp-orders", deploy: str | None = "d2", at: float = T0 + 30) -> Detection:
    return Detection(
        kind="deploy_regression",
        detected_at=at,
        confidence=0.995,
        summary=f"{fp} is 40x slower since deploy {deploy}",
        fingerprint=fp,
        normalized=f"SELECT * FROM {fp} WHERE user_id = $1",
        route="GET /orders",
        deploy_id=deploy,
        before=PhaseStats(120, 2.0, 1.5, 3.25, 3.0),
        after=PhaseStats(118, 1.9666666666666666, 61.2, None, 120.36),
        added_db_ms_per_s=117.36,
        p_value=1.2e-12,
        evidence={"windows": [1, 2, 3], "test": "mann-whitney", "nested": {"a": None}},
    )


def culprit(fp: str = "fp-orders", added: float = 117.36) -> Culprit:
    return Culprit(
        fingerprint=fp,
        normalized=f"SELECT * FROM {fp} WHERE user_id = $1",
        added_db_ms_per_s=added,
        first_seen_deploy="d2",
        call_sites=(
            CallSite("shop/orders.py", 88, "order_history"),
            CallSite("shop/api.py", 12, "orders"),
        ),
        commits=("deadbeef", "cafebabe"),
        detection_kinds=("deploy_regression",),
    )


def triage() -> Triage:
    return Triage(
        db_share_before=0.21,
        db_share_after=0.93,
        verdict="The database is the bottleneck: 93% of request time is spent in it (was 21%).",
        database_is_bottleneck=True,
        health={"connections": {"active": 48, "idle": 2}, "locks_waiting": 0},
    )


def full_incident() -> Incident:
    return Incident(
        id="QW-20251124-7",
        status="mitigated",
        opened_at=T0 + 31.5,
        detected_at=T0 + 30.25,
        title="Slower query: SELECT … since deploy d2",
        deploy_id="d2",
        detections=[detection(), detection("fp-cart", None)],
        culprits=[culprit(), culprit("fp-cart", 0.1 + 0.2)],  # a float that must survive exactly
        triage=triage(),
        impact=Impact(3000, 2610, 300, 261, 1000.0, since=T0, until=T0 + 9000),
        timeline=[
            TimelineEvent(T0 + 30.25, "detected", "fp-orders is 40x slower"),
            TimelineEvent(T0 + 60, "note", "network?", "bob", ("misleading",), {"k": [1, "x"]}),
            TimelineEvent(T0 + 90, "mitigated", "rolled back", "alice", (), {"deploy": "d3"}),
        ],
        resolved_at=None,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


def opened(store: SqlStore, *, fp: str = "fp-orders", deploy: str | None = "d2") -> Incident:
    return service.open_incident(
        store, [detection(fp, deploy)], [culprit(fp)], triage(), None, deploy, T0 + 31
    )


# -- codec ---------------------------------------------------------------------------------------


def test_an_incident_round_trips_through_its_json_exactly() -> None:
    incident = full_incident()
    assert incident_from_dict(incident_to_dict(incident)) == incident
    assert body_from_json(body_to_json(incident)) == (
        incident.detections,
        incident.culprits,
        incident.triage,
        incident.impact,
    )


def test_optional_parts_round_trip_as_none() -> None:
    incident = full_incident()
    incident.triage = None
    incident.impact = None
    incident.detections = [Detection("load", T0, 0.5, "everything slowed together")]
    incident.culprits = [Culprit("fp", "SELECT 1", 0.0, None)]
    incident.resolved_at = T0 + 100
    assert incident_from_dict(incident_to_dict(incident)) == incident


def test_the_json_of_an_incident_carries_the_impact_percentages() -> None:
    data = incident_to_dict(full_incident())
    assert data["impact"]["users_pct"] == 87.0 and data["impact"]["requests_pct"] == 87.0
    assert data["timeline"][1]["tags"] == ["misleading"]


def test_impact_without_request_data_is_unknown_and_says_why() -> None:
    """The pgbench trial (no middleware) read "0.0% of users (0 of 0)"."""
    from querywatch.incidents.view import incident_lines

    incident = full_incident()
    incident.impact = Impact(0, 0, 0, 0, 1000.0, since=T0, until=T0 + 60)
    shown = "\n".join(incident_lines(incident))
    assert "impact     unknown: no request data from the middleware for this period" in shown
    assert "0 of 0" not in shown and "0.0%" not in shown
    data = incident_to_dict(incident)["impact"]
    assert data["users_pct"] is None and data["requests_pct"] is None
    assert data["summary"].startswith("unknown: no request data from the middleware")
    # Requests without user ids: requests are known, users are not.
    incident.impact = Impact(400, 20, 0, 0, 1000.0)
    shown = "\n".join(incident_lines(incident))
    assert (
        "impact     users affected unknown (the middleware's requests carried no user ids); "
        "5.0% of requests (20 of 400) failed or were slower than 1000 ms"
    ) in shown
    data = incident_to_dict(incident)["impact"]
    assert data["users_pct"] is None and data["requests_pct"] == 5.0
    incident.impact = Impact(3000, 2610, 300, 261, 1000.0)
    assert "impact     87.0% of users affected (261 of 300); 87.0% of requests" in "\n".join(
        incident_lines(incident)
    )


# -- opening -------------------------------------------------------------------------------------


def test_opening_gives_a_dated_numbered_id_a_one_line_title_and_a_detected_event(
    store: SqlStore,
) -> None:
    incident = opened(store)
    assert incident.id == f"{DAY_PREFIX}-1"
    assert incident.title == (
        "Slower query: SELECT * FROM fp-orders WHERE user_id = $1 at shop/orders.py:88 "
        "since deploy d2"
    )
    assert incident.status == "open" and incident.detected_at == T0 + 30
    assert [e.kind for e in incident.timeline] == ["detected"]
    assert load_incident(store, incident.id) == incident
    second = opened(store, fp="fp-other", deploy="d3")
    assert second.id == f"{DAY_PREFIX}-2"


def test_a_long_query_is_shortened_so_the_title_stays_one_short_line(store: SqlStore) -> None:
    long_fp = "orders" + " JOIN x ON x.id = orders.id\n" * 20
    title = service.make_title([detection(long_fp)], [culprit(long_fp)], "d2")
    assert "\n" not in title and len(title) <= service.TITLE_MAX
    assert title.endswith("at shop/orders.py:88 since deploy d2") and "…" in title


def test_a_finding_on_the_same_fingerprint_joins_the_open_incident(store: SqlStore) -> None:
    first = opened(store)
    again = opened(store)  # the detector's next poll: nothing new
    assert again.id == first.id and len(again.timeline) == 1
    joined = service.open_incident(
        store,
        [detection("fp-cart", "d2", at=T0 + 50)],
        [culprit("fp-cart", 500.0)],
        None,
        Impact(10, 5, 4, 2, 1000.0),
        "d2",
        T0 + 51,
    )
    assert joined.id == first.id
    assert [c.fingerprint for c in joined.culprits] == ["fp-cart", "fp-orders"]  # costliest first
    assert joined.triage == triage()  # kept: the new finding had none
    assert joined.impact == Impact(10, 5, 4, 2, 1000.0)
    assert [e.kind for e in joined.timeline] == ["detected", "detected"]
    assert joined.timeline[1].data["fingerprints"] == ["fp-cart"]
    assert len(list_incidents(store)) == 1


def test_the_same_deploy_joins_but_a_resolved_incident_does_not(store: SqlStore) -> None:
    first = opened(store)
    assert service.find_open_incident(store, "d2", ["fp-unrelated"]) is not None
    assert service.find_open_incident(store, "d9", ["fp-unrelated"]) is None
    assert service.find_open_incident(store, None, ["fp-orders"]) is not None
    service.resolve(store, first.id, by="alice", at=T0 + 99)
    assert service.find_open_incident(store, "d2", ["fp-orders"]) is None
    assert opened(store).id == f"{DAY_PREFIX}-2"


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ["acknowledged", "mitigated", "resolved"],
        ["resolved"],
        ["acknowledged", "resolved"],
        ["mitigated", "resolved"],
    ],
)
def test_allowed_paths_end_resolved_with_one_event_per_step(
    store: SqlStore, path: list[Status]
) -> None:
    incident = opened(store)
    for n, status in enumerate(path):
        incident = service.transition(store, incident.id, status, by="alice", at=T0 + 100 + n)
    assert incident.status == "resolved" and incident.resolved_at == T0 + 100 + len(path) - 1
    assert [e.kind for e in incident.timeline] == ["detected", *path]
    assert all(e.author == "alice" for e in incident.timeline[1:])
    assert load_incident(store, incident.id) == incident


@pytest.mark.parametrize(
    ("path", "then", "message"),
    [
        (["resolved"], "resolved", "is already resolved by alice at "),
        (["resolved"], "acknowledged", "cannot acknowledge incident {id}: it is resolved; "),
        (["acknowledged"], "acknowledged", "is already acknowledged by alice"),
        (["mitigated"], "acknowledged", "it is mitigated; it can still be resolved"),
        (["acknowledged"], "open", "cannot reopen incident {id}: it is acknowledged"),
    ],
)
def test_invalid_transitions_say_why_and_change_nothing(
    store: SqlStore, path: list[Status], then: Status, message: str
) -> None:
    incident = opened(store)
    for status in path:
        service.transition(store, incident.id, status, by="alice", at=T0 + 100)
    before = load_incident(store, incident.id)
    with pytest.raises(InvalidTransition) as err:
        service.transition(store, incident.id, then, by="bob", at=T0 + 200)
    assert message.format(id=incident.id) in str(err.value)
    assert "\n" not in str(err.value)
    assert load_incident(store, incident.id) == before


def test_notes_are_allowed_after_resolution_and_keep_their_tags(store: SqlStore) -> None:
    incident = opened(store)
    service.add_note(store, incident.id, "disk latency?", by="bob", misleading=True, at=T0 + 40)
    service.resolve(store, incident.id, by="alice", note="rolled back", at=T0 + 50)
    done = service.add_note(store, incident.id, "postmortem owner: carol", tags=["pm"], at=T0 + 60)
    assert [(e.kind, e.message, e.author, e.tags) for e in done.timeline[1:]] == [
        ("note", "disk latency?", "bob", ("misleading",)),
        ("resolved", "rolled back", "alice", ()),
        ("note", "postmortem owner: carol", None, ("pm",)),
    ]
    with pytest.raises(InvalidTransition, match="a note needs some text"):
        service.add_note(store, incident.id, "   ")


def test_alerts_and_actions_land_on_the_timeline(store: SqlStore) -> None:
    incident = opened(store)
    service.record_alert(store, incident.id, "paged #oncall", at=T0 + 32, data={"sink": "slack"})
    service.record_action(store, incident.id, "rollback to v1", by="querywatch", at=T0 + 40)
    service.mitigate(store, incident.id, by="querywatch", note="rollback finished", at=T0 + 70)
    got = service.get_incident(store, incident.id)
    assert [e.kind for e in got.timeline] == ["detected", "alerted", "action", "mitigated"]
    assert got.timeline[1].data == {"sink": "slack"}


def test_an_unknown_id_is_not_found_with_the_hint(store: SqlStore) -> None:
    calls: list[Callable[[], object]] = [
        lambda: service.get_incident(store, "QW-1"),
        lambda: service.acknowledge(store, "QW-1"),
        lambda: service.add_note(store, "QW-1", "x"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as err:
            call()
        assert str(err.value) == "no incident QW-1 (querywatch incidents lists them)"


# -- impact --------------------------------------------------------------------------------------


def sketch_of(*values: float) -> LatencySketch:
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    return sketch


def test_slow_requests_are_read_off_the_sketch() -> None:
    sketch = sketch_of(100, 200, 980, 1030, 4000, 4000)
    assert slow_requests(sketch, 1000.0) == 3
    # Within the sketch's 1% a request may land on either side: 999 ms shares a bucket whose
    # value is about 1002 ms, so it counts as slow (documented in impact.py).
    assert slow_requests(sketch_of(999), 1000.0) in (0, 1)
    assert slow_requests(None, 1000.0) == 0


def test_impact_from_stored_request_windows_matches_hand_computed_figures(
    store: SqlStore,
) -> None:
    start = int(T0)
    store.write_requests(
        [
            # before the range: not counted
            RequestWindow(
                "GET /orders", start - 20, 5, 5, 50.0, 10.0, 5.0, 5, sketch_of(*[10] * 5),
                frozenset({"u9"}), frozenset({"u9"}),
            ),
            # 4 requests: 1 error (fast), 2 slower than 1 s; users a, b, c; a and b failed
            RequestWindow(
                "GET /orders", start, 4, 1, 5000.0, 2500.0, 4000.0, 8,
                sketch_of(20, 50, 2000, 2500), frozenset({"a", "b", "c"}), frozenset({"a", "b"}),
            ),
            # another route, same bucket: 3 requests, none failed; users c, d
            RequestWindow(
                "GET /cart", start, 3, 0, 60.0, 30.0, 10.0, 3, sketch_of(10, 20, 30),
                frozenset({"c", "d"}), frozenset(),
            ),
            # next bucket: 2 requests, both errors and both slow: capped at 2; user e failed
            RequestWindow(
                "GET /orders", start + 10, 2, 2, 6000.0, 3000.0, 5000.0, 2,
                sketch_of(3000, 3000), frozenset({"e"}), frozenset({"e"}),
            ),
            # at the end of the range: not counted
            RequestWindow(
                "GET /orders", start + 30, 7, 7, 70.0, 10.0, 5.0, 7, sketch_of(*[10] * 7),
                frozenset({"u8"}), frozenset({"u8"}),
            ),
        ]
    )  # fmt: skip
    impact = impact_between(store, T0 + 3, T0 + 30, slo_ms=1000.0)
    # requests 4 + 3 + 2 = 9; failed (1 + 2) + 0 + min(2, 2 + 2) = 5
    # users {a, b, c, d, e} = 5; affected {a, b, e} = 3
    assert impact == Impact(9, 5, 5, 3, 1000.0, since=T0 + 3, until=T0 + 30)
    assert round(impact.requests_pct, 3) == 55.556 and impact.users_pct == 60.0
    assert impact_between(store, T0, T0 + 30, route="GET /cart").failed_requests == 0
    assert impact_of([]) == Impact(0, 0, 0, 0, 1000.0)


def test_refresh_impact_measures_from_the_deploy_until_resolution(store: SqlStore) -> None:
    start = int(T0)
    store.record_deploy(DeployMarker("d2", "v2", "abc", "prod", started_at=T0 - 40))
    store.write_requests(
        [
            RequestWindow(
                "GET /orders", start - 40, 2, 0, 4000.0, 2000.0, 3000.0, 2,
                sketch_of(2000, 2000), frozenset({"a"}), frozenset({"a"}),
            ),
            RequestWindow(
                "GET /orders", start + 60, 3, 0, 30.0, 10.0, 5.0, 3, sketch_of(10, 10, 10),
                frozenset({"b"}), frozenset(),
            ),
            RequestWindow(  # after resolution: not counted
                "GET /orders", start + 200, 3, 3, 30.0, 10.0, 5.0, 3, sketch_of(10, 10, 10),
                frozenset({"z"}), frozenset({"z"}),
            ),
        ]
    )  # fmt: skip
    incident = opened(store)
    service.resolve(store, incident.id, at=T0 + 120)
    refreshed = service.refresh_impact(store, incident.id, slo_ms=1000.0)
    assert refreshed.impact == Impact(5, 2, 2, 1, 1000.0, since=T0 - 40, until=T0 + 120)
    assert load_incident(store, incident.id) == refreshed


def test_incidents_filter_by_the_release_their_deploy_shipped(
    store: SqlStore, tmp_path: Path
) -> None:
    """`incidents --release v2` lists what a release (a canary, a deploy) is blamed for."""
    for id_, version in (("d1", "v1"), ("d2", "v2")):
        store.record_deploy(DeployMarker(id_, version, None, "production", T0, T0 + 5))
    on_v2 = opened(store, fp="fp-orders", deploy="d2")
    on_v1 = opened(store, fp="fp-search", deploy="d1")
    opened(store, fp="fp-other", deploy=None)  # blames no deploy: no release
    assert [i.id for i in list_incidents(store, release="v2")] == [on_v2.id]
    assert [i.id for i in list_incidents(store, release="v1")] == [on_v1.id]
    assert list_incidents(store, release="v3") == []
    assert len(list_incidents(store)) == 3
    result = run_cli(
        "incidents", "--store", str(tmp_path / "store.sqlite3"), "--release", "v2", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert [i["id"] for i in json.loads(result.stdout)["data"]] == [on_v2.id]
