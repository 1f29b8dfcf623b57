"""Open-loop load: simulated users request shop pages at a fixed total rate.

Requests are scheduled by the clock (request *i* is due at ``start + i / rate``), so a slow
server does not lower the offered load, as with real users. A pool of ``concurrency`` worker
threads sends them over loopback HTTP. When every worker is busy, due requests wait in a queue;
their latency is measured from the time they were *due*, so client-side queueing counts as the
user's wait (no coordinated omission). A request still queued when its ``timeout`` has passed is
not sent and is recorded as a failure (status 0, error ``"not started: ..."``). Timeouts and
connection errors are failures with status 0.
"""

from __future__ import annotations

import http.client
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from querywatch.demo.router import Router

#: Relative weight of each page in the traffic (the customer orders page is the hot one).
DEFAULT_MIX: Mapping[str, float] = {
    "home": 0.15,
    "product": 0.30,
    "customer_orders": 0.30,
    "order": 0.15,
    "search": 0.10,
}

_SEARCH_TERMS = ("lamp", "Desk", "Mug", "Smart", "Tent", "Watch", "Eco", "Chair", "Pan", "Kettle")


@dataclass(frozen=True)
class RequestRecord:
    """One request as a user saw it. Times are epoch seconds; latency is from ``scheduled_at``."""

    scheduled_at: float
    started_at: float
    latency_ms: float
    status: int
    user_id: int
    page: str
    release: str | None = None
    error: str | None = None
    #: The release the router sent it to (a canary or the stable one); None without a router.
    routed_to: str | None = None

    @property
    def failed(self) -> bool:
        """Timeouts, connection errors, unsent requests and 5xx answers."""
        return self.status == 0 or self.status >= 500


@dataclass(frozen=True)
class LoadConfig:
    """What to send. Stops at ``total_requests`` or ``duration`` s, whichever comes first."""

    rate: float = 20.0
    users: int = 200
    total_requests: int | None = None
    duration: float | None = 60.0
    concurrency: int = 32
    timeout: float = 5.0
    products: int = 1000
    orders: int = 100_000
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 7
    #: Bursty traffic: for ``burst_for`` s of every ``burst_every`` s, send ``burst_factor`` x rate.
    burst_every: float = 0.0
    burst_for: float = 0.0
    burst_factor: float = 1.0

    def rate_at(self, offset: float) -> float:
        """The request rate ``offset`` seconds into the run."""
        if self.burst_every > 0 and offset % self.burst_every < self.burst_for:
            return self.rate * self.burst_factor
        return self.rate

    def __post_init__(self) -> None:
        if self.burst_factor <= 0 or self.burst_for < 0 or self.burst_every < 0:
            raise ValueError("burst_factor must be positive; burst_every, burst_for not negative")
        if self.rate <= 0 or self.users < 1 or self.concurrency < 1 or self.timeout <= 0:
            raise ValueError("rate, users, concurrency and timeout must be positive")
        if self.total_requests is None and self.duration is None:
            raise ValueError("give total_requests or duration: the load must be bounded")
        unknown = set(self.mix) - set(DEFAULT_MIX)
        if unknown:
            raise ValueError(f"unknown pages in mix: {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class _Job:
    scheduled_at: float  # epoch
    due: float  # monotonic
    user_id: int
    page: str
    path: str


Target = Router | str | Callable[[], str | None]


class LoadGenerator:
    """Drives the shop; :meth:`start` then :meth:`wait`, or :meth:`run` to do both."""

    def __init__(
        self,
        target: Target,
        config: LoadConfig,
        on_record: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.config = config
        self.on_record = on_record
        self._route: Callable[[int], tuple[str | None, str | None]]
        if isinstance(target, Router):
            self._route = target.route  # per user: a canary takes a sticky share of them
        elif isinstance(target, str):
            url = target
            self._route = lambda user_id: (url, None)
        else:
            base_url = target
            self._route = lambda user_id: (base_url(), None)
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()

    @property
    def records(self) -> list[RequestRecord]:
        """A copy of the records so far, in completion order."""
        with self._lock:
            return list(self._records)

    def start(self) -> None:
        """Start sending in the background."""
        if self._threads:
            raise RuntimeError("a LoadGenerator runs once")
        workers = [
            threading.Thread(target=self._work, name=f"load-worker-{i}", daemon=True)
            for i in range(self.config.concurrency)
        ]
        dispatcher = threading.Thread(target=self._dispatch, name="load-dispatch", daemon=True)
        self._threads = [dispatcher, *workers]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._finish, name="load-finish", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every scheduled request is recorded; True when finished."""
        return self._done.wait(timeout)

    def run(self) -> list[RequestRecord]:
        """Send the whole load and return every record."""
        self.start()
        self.wait()
        return self.records

    def stop(self) -> None:
        """Schedule nothing more; requests in flight finish and are recorded."""
        self._stop.set()

    # -- internals --------------------------------------------------------------------------

    def _finish(self) -> None:
        for thread in self._threads:
            thread.join()
        self._done.set()

    def _plan(self, rng: random.Random, user_id: int) -> tuple[str, str]:
        cfg = self.config
        pages = list(cfg.mix)
        page = rng.choices(pages, weights=[cfg.mix[p] for p in pages])[0]
        if page == "home":
            return page, "/"
        if page == "product":
            return page, f"/products/{1 + int(rng.random() * rng.random() * cfg.products)}"
        if page == "customer_orders":
            return page, f"/customers/{user_id}/orders"
        if page == "order":
            return page, f"/orders/{rng.randint(1, cfg.orders)}"
        return page, f"/search?q={quote(rng.choice(_SEARCH_TERMS))}"

    def _dispatch(self) -> None:
        cfg = self.config
        rng = random.Random(cfg.seed)
        users: list[int] = []
        start_mono = time.monotonic()
        start_wall = time.time()
        limit = cfg.total_requests if cfg.total_requests is not None else 1 << 62
        try:
            i = 0
            offset = 0.0
            while i < limit and not self._stop.is_set():
                if cfg.duration is not None and offset >= cfg.duration:
                    break
                if not users:  # every user gets a turn before anyone gets a second one
                    users = list(range(1, cfg.users + 1))
                    rng.shuffle(users)
                user_id = users.pop()
                page, path = self._plan(rng, user_id)
                due = start_mono + offset
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                self._jobs.put(_Job(start_wall + offset, due, user_id, page, path))
                i += 1
                offset += 1 / cfg.rate_at(offset)
        finally:
            for _ in range(cfg.concurrency):
                self._jobs.put(None)

    def _work(self) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        try:
            while (job := self._jobs.get()) is not None:
                self._record(self._send(job, conns))
        finally:
            for conn in conns.values():
                conn.close()

    def _send(self, job: _Job, conns: dict[str, http.client.HTTPConnection]) -> RequestRecord:
        timeout = self.config.timeout
        waited = time.monotonic() - job.due
        started_at = job.scheduled_at + max(waited, 0.0)
        if waited >= timeout:
            return RequestRecord(
                job.scheduled_at,
                started_at,
                waited * 1000,
                0,
                job.user_id,
                job.page,
                None,
                "not started: every client worker was busy",
                self._route(job.user_id)[1],
            )
        base, routed_to = self._route(job.user_id)
        if base is None:
            return RequestRecord(
                job.scheduled_at,
                started_at,
                max(waited, 0.0) * 1000,
                0,
                job.user_id,
                job.page,
                None,
                "no backend",
                routed_to,
            )
        status, release, error = 0, None, None
        conn = conns.get(base)
        try:
            if conn is None:
                host, _, port = base.removeprefix("http://").partition(":")
                conn = http.client.HTTPConnection(host, int(port or 80))
                conns[base] = conn
            conn.timeout = timeout - max(waited, 0.0)
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            conn.request("GET", job.path, headers={"X-User-Id": str(job.user_id)})
            response = conn.getresponse()
            response.read()
            status = response.status
            release = response.getheader("X-Release")
            if response.will_close:
                conn.close()
        except TimeoutError:
            error = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None and conn is not None:
            conn.close()
            conns.pop(base, None)
        latency = (time.monotonic() - job.due) * 1000
        return RequestRecord(
            job.scheduled_at,
            started_at,
            latency,
            status,
            job.user_id,
            job.page,
            release,
            error,
            routed_to,
        )

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
        if self.on_record is not None:
            self.on_record(record)
