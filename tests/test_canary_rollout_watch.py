"""`querywatch watch` steps a running canary rollout at every poll: the Agent with the Monitor
that monitor_from_config builds from the settings (a real weight command, a real SQLite store, a
real pg_stat_statements source on the test cluster). The middleware's windows of both releases
are written to the store as an app would; a 100x slower canary is held on its first failing
verdict and aborted on the second (canary_fail_threshold 2), its weight set to 0 by the
command; with no rollout running, the poll steps nothing."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from pathlib import Path

from querywatch.capture.pg_stat_statements import PgStatStatementsSource
from querywatch.config import load_config
from querywatch.monitor import monitor_from_config
from querywatch.respond.canary_state import load_rollout
from querywatch.respond.notifier import Notifier
from querywatch.store import open_store
from querywatch.watch import Agent, AgentEvent
from respond_helpers import WRITE_ARGS, script, written
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap
from test_canary_analysis_store import write

ENV = "production"


def test_watch_steps_the_running_rollout_each_poll_and_aborts_a_bad_canary(
    pg_dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "weights.log"
    cfg = load_config(
        {
            "dsn": pg_dsn,
            "store": str(tmp_path / "store.sqlite3"),
            "environment": ENV,
            "canary_weight_command": script(tmp_path / "lb.py", WRITE_ARGS)
            + f" {log} {{release}} {{weight}}",
        },
        environ={},
        cwd=tmp_path,
    )
    now = [T0 + 50.0]
    events: list[AgentEvent] = []
    source = PgStatStatementsSource(pg_dsn)
    with open_store(str(tmp_path / "store.sqlite3")) as store, closing(source):
        monitor = monitor_from_config(cfg, store, Notifier([]), repo_root=tmp_path)
        assert monitor.canary is not None and monitor.canary.environment == ENV
        agent = Agent(
            source,
            store,
            state_key="pg_stat_statements:test",
            monitor=monitor,
            on_event=events.append,
            clock=lambda: now[0],
        )
        agent.poll_once()  # no rollout: nothing to step
        assert [e for e in events if e.kind == "canary"] == [] and load_rollout(store, ENV) is None

        slow = replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)
        write(store, *simulate(1, 60, canary=swap(SHOP, ORDERS, slow)))
        monitor.canary.start("v2", "v1", by="ci", now=T0)
        agent.poll_once()
        first = load_rollout(store, ENV)
        assert first is not None and first.status == "running"
        assert [v.status for v in first.verdicts] == ["fail"]
        now[0] = T0 + 60.0
        agent.poll_once()
        done = load_rollout(store, ENV)
        assert done is not None and done.status == "aborted" and done.weight == 0.0
        assert [v.status for v in done.verdicts] == ["fail", "fail"]
        assert done.incident is not None
        now[0] = T0 + 70.0
        agent.poll_once()  # ended: not stepped again
        after = load_rollout(store, ENV)
        assert after is not None and len(after.verdicts) == 2
    assert written(log) == [["v2", "5"], ["v2", "0"]]
    said = [e.message for e in events if e.kind == "canary"]
    assert len(said) == 2, said
    assert "fail, held at 5% (1 of 2 failing verdicts in a row)" in said[0]
    assert "fail, aborted, its weight set to 0" in said[1]
