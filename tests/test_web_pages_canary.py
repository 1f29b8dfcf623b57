"""The canary page over a stored rollout: its steps and traffic, and its live verdict."""

from __future__ import annotations

from pathlib import Path

from pages_helpers import READ, Client, serve
from querywatch.respond.canary import CanaryRollout
from querywatch.respond.canary_settings import CanarySettings
from querywatch.store import open_store
from respond_helpers import NOW


def test_a_running_rollout_shows_its_steps_and_a_live_verdict(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        rollout = CanaryRollout(store, CanarySettings(environment="production"))
        rollout.start("shop-v2", "shop-v1", by="<b>ci</b>", now=NOW - 60)
    server = serve(path)
    try:
        page = Client(server.url, token=READ).get("/canary").text
    finally:
        server.shutdown()
        server.server_close()
    assert 'data-canary-status="running"' in page
    assert "shop-v2 against shop-v1" in page and "by &lt;b&gt;ci&lt;/b&gt;" in page
    assert '<span class="current-step">5%</span> → 25% → 50% → 100%' in page
    assert "Live verdict" in page
    assert 'data-verdict="inconclusive"' in page and "nothing was recorded for release" in page
    assert 'data-action="start"' in page  # what it did: the start, with its weight
