"""Culprits and victims, over a real SQLite store holding the pgbench trial's statistics.

Under pgbench (200 transactions/s) a bad query deployed mid-run slowed pgbench's own
``UPDATE pgbench_branches`` 7.7x — its plan, rows and buffers per call and its call rate
unchanged — and querywatch listed it as culprit #2 of the deploy. The windows below have the
trial's shape, as pg_stat_statements deltas (no sketches, rows and buffers counted).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from querywatch.detect.attribution import attribute
from querywatch.detect.policy import Policy
from querywatch.detect.regression import detect
from querywatch.incidents.postmortem import render_postmortem
from querywatch.incidents.view import incident_lines
from querywatch.monitor import Monitor
from querywatch.records import DeployMarker, StatementWindow
from querywatch.store import SqlStore, open_store

T0 = 1_700_000_000  # a window boundary
DEPLOY = DeployMarker("d2", "v2", "bad0c0de", "prod", T0 + 60.0, T0 + 61.0)
BEFORE_WINDOWS = 6  # [T0, T0 + 60): what the trial's agent had seen before the deploy
AFTER_START = T0 + 70
AFTER_WINDOWS = 5
NOW = AFTER_START + 10 * AFTER_WINDOWS + 1.0


@dataclass(frozen=True)
class Stmt:
    fp: str
    sql: str
    mean_ms: float
    rows: float = 1.0  # per call
    blocks: float = 3.0  # shared buffers hit + read per call
    calls: int = 2000  # per 10 s window: 200/s


BRANCHES = Stmt("b1a2c3d4e5f60001", "UPDATE pgbench_branches SET bbalance = bbalance + $1 "
                "WHERE bid = $2", 0.4, blocks=2.0)  # fmt: skip
PGBENCH = (
    Stmt(
        "a1a2c3d4e5f60002",
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        0.08,
        blocks=4.0,
    ),
    Stmt("a1a2c3d4e5f60003", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 0.03),
    Stmt(
        "a1a2c3d4e5f60004",
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
        0.05,
        blocks=2.0,
    ),
    Stmt(
        "a1a2c3d4e5f60005",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
        "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
        0.04,
        blocks=1.0,
    ),
)
BAD = Stmt("badbadbadbad0006", "SELECT count(*) FROM pgbench_accounts WHERE abalance::text "
           "LIKE $1", 750.0, rows=1.0, blocks=16_400.0, calls=20)  # fmt: skip


def window(s: Stmt, start: int, rng: random.Random, *, slower: float = 1.0) -> StatementWindow:
    calls = s.calls
    mean = s.mean_ms * slower * rng.uniform(0.92, 1.08)
    return StatementWindow(
        s.fp,
        " ".join(s.sql.lower().split()),
        start,
        calls,
        calls * mean,
        mean * 3,
        source="pg_stat_statements",
        rows=round(calls * s.rows),
        shared_blks_hit=round(calls * s.blocks),
    )


def seed(
    store: SqlStore,
    *,
    branches_after: Stmt = BRANCHES,
    bad: Stmt = BAD,
    others_slower: float = 1.3,
    branches_slower: float = 7.7,
) -> None:
    """Six windows of pgbench, the deploy, then pgbench beside the bad query: pgbench's other
    statements 1.3x slower, the branches update 7.7x (its row locks are held longer)."""
    rng = random.Random(7)
    windows = []
    for k in range(BEFORE_WINDOWS):
        windows += [window(s, T0 + 10 * k, rng) for s in (BRANCHES, *PGBENCH)]
    for k in range(AFTER_WINDOWS):
        at = AFTER_START + 10 * k
        windows += [window(s, at, rng, slower=others_slower) for s in PGBENCH]
        windows.append(window(branches_after, at, rng, slower=branches_slower))
        windows.append(window(bad, at, rng))
    store.write_windows(windows)
    store.record_deploy(DEPLOY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


def test_the_query_slowed_by_the_bad_query_s_load_is_a_victim_not_a_culprit(
    store: SqlStore, tmp_path: Path
) -> None:
    seed(store)
    found = {d.fingerprint: d for d in detect(store, NOW)}
    assert found[BAD.fp].kind == "new_fingerprint"
    victim = found[BRANCHES.fp]
    assert victim.kind == "victim"
    assert victim.evidence["judged_as"] == "deploy_regression"
    assert victim.evidence["own_change"] is None
    assert victim.evidence["rows_per_call_before"] == victim.evidence["rows_per_call_after"] == 1
    assert victim.evidence["load_sources"][0]["fingerprint"] == BAD.fp
    assert victim.evidence["load_sources"][0]["why"] == "new"
    assert victim.summary.startswith("update pgbench_branches set bbalance")
    assert re.search(
        r" got 7\.\dx slower after deploy v2 \(0\.\d+ → 3\.\d ms mean\)", victim.summary
    )
    assert "rows per call 1.0 → 1.0, buffers per call 2.0 → 2.0" in victim.summary
    assert victim.summary.endswith("a victim of the load, not a cause")

    # Attribution ranks causes only.
    culprits = attribute(store, list(found.values()), repo_root=tmp_path)
    assert [c.fingerprint for c in culprits] == [BAD.fp]

    # The incident, its triage and its postmortem say which is which.
    incident = Monitor(store, n_plus_one=False, clock=lambda: NOW).check().incident
    assert incident is not None
    assert [c.fingerprint for c in incident.culprits] == [BAD.fp]
    assert [d.fingerprint for d in incident.victims] == [BRANCHES.fp]
    assert incident.title.startswith("New costly query: select count(*) from pgbench_accounts")
    assert incident.triage is not None
    assert (
        "1 query only slowed because the database got busier (victims, not causes): "
        "update pgbench_branches set bbalance = bbalance + $1 where bid = $2"
    ) in incident.triage.verdict
    shown = "\n".join(incident_lines(incident))
    culprits_part = shown.split("culprits")[1].split("victims (")[0]
    assert BRANCHES.fp not in culprits_part
    assert "victims (only slowed because the database got busier: not causes)" in shown
    postmortem = render_postmortem(store, incident.id, now=NOW).text
    assert "1 other query only slowed because the database got busier" in postmortem
    assert "**Victims, not causes:**" in postmortem


@pytest.mark.parametrize(
    ("change", "branches_after"),
    [
        ("more rows per call", Stmt(**{**BRANCHES.__dict__, "rows": 3.0})),
        ("more buffers per call (another plan)", Stmt(**{**BRANCHES.__dict__, "blocks": 40.0})),
        ("more calls", Stmt(**{**BRANCHES.__dict__, "calls": 4000})),
    ],
)
def test_a_slower_query_that_changed_its_own_behaviour_stays_a_culprit(
    store: SqlStore, tmp_path: Path, change: str, branches_after: Stmt
) -> None:
    seed(store, branches_after=branches_after)
    found = {d.fingerprint: d for d in detect(store, NOW)}
    slowed = found[BRANCHES.fp]
    assert slowed.kind == "deploy_regression"
    assert slowed.evidence["own_change"] == change
    culprits = attribute(store, list(found.values()), repo_root=tmp_path)
    assert {c.fingerprint for c in culprits} == {BAD.fp, BRANCHES.fp}


def test_without_new_load_from_others_a_slower_query_stays_a_culprit(store: SqlStore) -> None:
    """Everything else as in the trial, but no new query: nothing made the database busier, so
    a query 7.7x slower with the same rows is a suspect (its plan may have changed)."""
    seed(store, bad=Stmt(**{**BAD.__dict__, "calls": 0}))
    found = {d.fingerprint: d for d in detect(store, NOW)}
    assert found[BRANCHES.fp].kind == "deploy_regression"
    assert found[BRANCHES.fp].evidence["others_new_load_db_ms_per_s"] == 0


def test_on_a_database_that_is_not_busy_a_slower_query_stays_a_culprit(store: SqlStore) -> None:
    """Serial work (well under one busy backend) cannot slow one query by another's load."""
    seed(store, bad=Stmt(**{**BAD.__dict__, "mean_ms": 250.0}), branches_slower=4.0)
    found = {d.fingerprint: d for d in detect(store, NOW)}
    slowed = found[BRANCHES.fp]
    assert slowed.kind == "deploy_regression"
    assert slowed.evidence["others_new_load_db_ms_per_s"] >= 400  # 500 ms/s of new load
    assert slowed.evidence["database_db_ms_per_s_after"] < Policy().victim_min_busy_ms_per_s
