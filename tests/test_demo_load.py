"""The load generator: the requested count at the requested rate, distinct users, timeouts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from querywatch.demo.load import LoadConfig, LoadGenerator
from querywatch.demo.router import Router

HANG_S = 5.0  # how long the stub's customer orders page takes: longer than any client timeout


class _Handler(BaseHTTPRequestHandler):
    """Answers at once, except the customer orders page, which sleeps past the client timeouts."""

    def do_GET(self) -> None:
        if self.path.startswith("/customers/"):
            time.sleep(HANG_S)
        body = b"{}"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Release", "stub")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client timed out and hung up
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sends_the_requested_count_at_the_requested_rate(stub_url: str) -> None:
    config = LoadConfig(
        rate=50,
        users=25,
        total_requests=100,
        duration=None,
        concurrency=8,
        mix={"home": 1, "product": 1, "search": 1, "order": 1},
    )
    started = time.monotonic()
    records = LoadGenerator(Router(stub_url, "stub"), config).run()
    elapsed = time.monotonic() - started
    assert len(records) == 100
    assert elapsed >= 99 / 50  # paced: 99 intervals of 20 ms, never sent ahead of time
    assert all(r.status == 200 and r.release == "stub" for r in records)
    assert Counter(r.user_id for r in records) == {u: 4 for u in range(1, 26)}
    scheduled = sorted(r.scheduled_at for r in records)
    assert scheduled[-1] - scheduled[0] == pytest.approx(99 / 50, abs=0.01)
    assert {r.page for r in records} == {"home", "product", "search", "order"}


def test_timeouts_are_recorded_as_failures(stub_url: str) -> None:
    config = LoadConfig(
        rate=40,
        users=10,
        total_requests=40,
        duration=None,
        concurrency=40,
        timeout=0.3,
        mix={"home": 1, "customer_orders": 1},
    )
    records = LoadGenerator(stub_url, config).run()
    assert len(records) == 40
    slow = [r for r in records if r.page == "customer_orders"]
    fast = [r for r in records if r.page == "home"]
    assert slow and fast
    # The client gave up (an answer would have come after HANG_S, with status 200).
    assert all(r.status == 0 and r.failed and r.error == "timeout" for r in slow)
    assert all(r.latency_ms >= 250 for r in slow)
    assert all(r.status == 200 and not r.failed for r in fast)


def test_a_saturated_client_still_bounds_each_wait_by_the_timeout(stub_url: str) -> None:
    """One worker, requests due every 20 ms, each hanging: queued ones use up their budget.

    Without the budget, a request that queued for almost the whole timeout would then wait the
    full timeout again (nearly 2x); with it, every wait ends near 1x. The bound, 1.5x, leaves
    half a timeout (500 ms) for a busy machine's scheduling delays.
    """
    timeout = 1.0
    config = LoadConfig(
        rate=50,
        users=5,
        total_requests=12,
        duration=None,
        concurrency=1,
        timeout=timeout,
        mix={"customer_orders": 1},
    )
    records = LoadGenerator(stub_url, config).run()
    assert len(records) == 12
    assert all(r.failed and r.status == 0 for r in records)
    queued = [r.started_at - r.scheduled_at for r in records]
    assert max(queued) > 0.9 * timeout  # they queued behind the first one
    for r in records:  # measured from when each request was due
        assert r.latency_ms < 1.5 * timeout * 1000, r
        if r.started_at - r.scheduled_at >= timeout:
            assert r.error is not None and r.error.startswith("not started")


def test_stop_ends_the_load_early(stub_url: str) -> None:
    config = LoadConfig(rate=20, users=5, duration=30, mix={"home": 1})  # 600 requests
    generator = LoadGenerator(stub_url, config)
    started = time.monotonic()
    generator.start()
    deadline = started + 60
    while len(generator.records) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(generator.records) >= 5
    generator.stop()
    assert generator.wait(30)  # long before the 30 s the load would have lasted
    count = len(generator.records)
    # Nothing was scheduled after the stop: no more than the schedule had reached by then.
    assert count <= (time.monotonic() - started) * config.rate + 1 < 600


def test_the_load_must_be_bounded() -> None:
    with pytest.raises(ValueError, match="bounded"):
        LoadConfig(total_requests=None, duration=None)


def test_bursty_traffic_sends_more_during_bursts(stub_url: str) -> None:
    config = LoadConfig(
        rate=20,
        users=10,
        duration=2.0,
        concurrency=8,
        mix={"home": 1},
        burst_every=1.0,
        burst_for=0.5,
        burst_factor=3.0,
    )
    records = LoadGenerator(Router(stub_url, "stub"), config).run()
    start = min(r.scheduled_at for r in records)
    in_burst = sum(1 for r in records if (r.scheduled_at - start) % 1.0 < 0.5)
    outside = len(records) - in_burst
    assert in_burst == pytest.approx(3 * outside, rel=0.15)
    assert len(records) == pytest.approx(2 * (0.5 * 60 + 0.5 * 20), rel=0.1)
