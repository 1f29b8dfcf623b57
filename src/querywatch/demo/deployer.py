"""Deploy the shop's releases like a real deploy: start new, wait healthy, switch, stop old.

A release can also go out as a canary: it runs next to the stable one and the router sends it a
weighted, sticky share of users (:mod:`querywatch.demo.router`) until it is promoted (all traffic,
the old process stopped) or rolled back (weight 0, its process stopped). Each process is started
with ``QUERYWATCH_RELEASE=<version>`` so its capture tags what it records with its release.

Each release runs as its own process (``querywatch.demo.shop.serve``) in its own process group,
so stopping it also stops anything it started. Every process the Deployer starts is tracked and
killed on :meth:`Deployer.close`, on an exception during a deploy, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from querywatch.demo.router import Router
from querywatch.demo.shop.releases import commit_of
from querywatch.errors import QuerywatchError

#: What a shop process's capture reads its release from (see querywatch.capture).
RELEASE_ENV = "QUERYWATCH_RELEASE"

#: Exit status of serve.py when its port is taken (then the deployer retries another port).
_PORT_IN_USE_EXIT = 2


class DeployError(QuerywatchError):
    """The new release did not become healthy; traffic stays on the old one."""


@dataclass(frozen=True)
class Deploy:
    """One completed deploy. Times are epoch seconds.

    ``switched_at`` is when traffic moved to the new release; ``finished_at`` is after the old
    process was stopped (what a deploy tool reports as done). A canary's ``switched_at`` is when
    it took its first share (``canary_weight`` percent of users); its rollback's is when the
    canary's weight went to 0, and a promotion's when it took every user.
    """

    version: str
    commit: str
    started_at: float
    switched_at: float
    finished_at: float
    previous_version: str | None
    previous_commit: str | None
    base_url: str
    pid: int
    rollback: bool = False
    canary_weight: float | None = None  # set on a canary's start: its first share, in percent
    promoted: bool = False  # a canary that took all traffic


@dataclass
class _Backend:
    version: str
    commit: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self.process.poll()}"


def free_port() -> int:
    """A port free right now on 127.0.0.1 (a race is handled by retrying)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(base_url: str, timeout: float = 1.0) -> bool:
    """True when ``base_url``/health answers 200."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Deployer:
    """Runs the shop and moves it between releases; use as a context manager."""

    def __init__(
        self,
        db: str,
        *,
        router: Router | None = None,
        store: str | None = None,
        on_deploy: Callable[[Deploy], None] | None = None,
        python: str = sys.executable,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        drain_seconds: float = 0.3,
        extra_args: Sequence[str] = (),
        ports: Sequence[int] = (),
    ) -> None:
        self.db = db
        self.ports = tuple(ports)  # blue/green: fixed ports taken in turn; empty = any free port
        self.router = router or Router()
        self.store = store
        self.on_deploy = on_deploy
        self.python = python
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.drain_seconds = drain_seconds
        self.extra_args = tuple(extra_args)
        self.history: list[Deploy] = []
        self._current: _Backend | None = None
        self._canary: _Backend | None = None
        self._all: list[_Backend] = []
        self._lock = threading.Lock()
        atexit.register(self.close)

    @property
    def current(self) -> Deploy | None:
        """The latest deploy, or None before the first."""
        return self.history[-1] if self.history else None

    def pids(self) -> list[int]:
        """Pids of every server process started and not yet reaped (for checks and tests)."""
        return [b.process.pid for b in self._all if b.process.poll() is None]

    @property
    def canary(self) -> Deploy | None:
        """The running canary's deploy, or None when no canary runs."""
        if self._canary is None:
            return None
        return next((d for d in reversed(self.history) if d.canary_weight is not None), None)

    def deploy(self, version: str, *, rollback: bool = False) -> Deploy:
        """Start ``version``, wait until healthy, switch traffic to it, then stop the old one."""
        if self._canary is not None:
            raise DeployError("a canary is running: promote it or roll it back first")
        started = time.time()
        commit = commit_of(version)
        old = self._current
        new = self._start_healthy(version, commit)
        try:
            self.router.switch(new.base_url, version)
            switched = time.time()
            self._current = new
            if old is not None:
                time.sleep(self.drain_seconds)  # requests that already read the old URL
                self._stop(old)
        except BaseException:
            self._stop(new)
            raise
        return self._done(
            Deploy(
                version,
                commit,
                started,
                switched,
                time.time(),
                old.version if old else None,
                old.commit if old else None,
                new.base_url,
                new.process.pid,
                rollback,
            )
        )

    def _end_canary(self) -> Deploy:
        """Weight 0 (if it is not already), drain, stop the canary: the stable release stays."""
        canary, stable = self._canary, self._current
        assert canary is not None and stable is not None
        started = time.time()
        if self.router.weight > 0:
            self.router.set_weight(0)
        switched = self.router.zero_weight_at or started
        time.sleep(self.drain_seconds)  # requests that already read the canary's URL
        self.router.switch(stable.base_url, stable.version)
        self._canary = None
        self._stop(canary)
        return self._done(
            Deploy(
                stable.version,
                stable.commit,
                min(started, switched),
                switched,
                time.time(),
                canary.version,
                canary.commit,
                stable.base_url,
                stable.process.pid,
                rollback=True,
            )
        )

    def _done(self, record: Deploy) -> Deploy:
        self.history.append(record)
        if self.on_deploy is not None:
            self.on_deploy(record)
        return record

    def start_canary(self, version: str, weight: float) -> Deploy:
        """Start ``version`` next to the stable release and send it ``weight`` percent of users."""
        stable = self._current
        if stable is None:
            raise DeployError("nothing to compare a canary with: deploy a stable release first")
        if self._canary is not None:
            raise DeployError("a canary is already running: promote it or roll it back first")
        started = time.time()
        commit = commit_of(version)
        new = self._start_healthy(version, commit)
        try:
            self.router.set_canary(new.base_url, version, weight)
        except BaseException:
            self._stop(new)
            raise
        switched = time.time()
        self._canary = new
        return self._done(
            Deploy(
                version,
                commit,
                started,
                switched,
                switched,
                stable.version,
                stable.commit,
                new.base_url,
                new.process.pid,
                canary_weight=weight,
            )
        )

    def set_weight(self, weight: float) -> float:
        """Give the running canary ``weight`` percent of users; returns when it took effect."""
        if self._canary is None:
            raise DeployError("no canary is running")
        self.router.set_weight(weight)
        return time.time()

    def promote(self) -> Deploy:
        """The canary takes every user and becomes the stable release; the old one stops."""
        canary, old = self._canary, self._current
        if canary is None or old is None:
            raise DeployError("no canary is running")
        started = time.time()
        self.router.switch(canary.base_url, canary.version)
        switched = time.time()
        self._current, self._canary = canary, None
        time.sleep(self.drain_seconds)
        self._stop(old)
        return self._done(
            Deploy(
                canary.version,
                canary.commit,
                started,
                switched,
                time.time(),
                old.version,
                old.commit,
                canary.base_url,
                canary.process.pid,
                promoted=True,
            )
        )

    def rollback(self) -> Deploy:
        """Roll back: end the running canary, else deploy the version that ran before."""
        if self._canary is not None:
            return self._end_canary()
        current = self.current
        if current is None or current.previous_version is None:
            raise DeployError("nothing to roll back to: no previous release")
        return self.deploy(current.previous_version, rollback=True)

    def _next_port(self) -> int:
        if not self.ports:
            return free_port()
        used = {b.port for b in (self._current, self._canary) if b is not None}
        return next((p for p in self.ports if p not in used), self.ports[0])

    def _start_healthy(self, version: str, commit: str) -> _Backend:
        for _attempt in range(1 if self.ports else 5):
            backend = self._spawn(version, commit, self._next_port())
            try:
                if self._wait_healthy(backend):
                    return backend
            except BaseException:
                self._stop(backend)
                raise
            code = backend.process.poll()
            reason = backend.log_tail()
            self._stop(backend)
            if code == _PORT_IN_USE_EXIT and "already in use" in reason and not self.ports:
                continue
            raise DeployError(f"release {version} did not start: {reason}")
        raise DeployError(f"release {version} did not start: no free port after 5 tries")

    def _spawn(self, version: str, commit: str, port: int) -> _Backend:
        cmd = [
            self.python,
            "-m",
            "querywatch.demo.shop.serve",
            "--release",
            version,
            "--db",
            self.db,
            "--port",
            str(port),
            *self.extra_args,
        ]
        if self.store:
            cmd += ["--store", self.store]
        log = tempfile.TemporaryFile(prefix=f"shop-{version}-")  # noqa: SIM115 - kept open
        # Capture in the process tags what it records with its release (the demo's "pod label").
        env = {**os.environ, RELEASE_ENV: version}
        with self._lock:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                env=env,
            )
            backend = _Backend(version, commit, port, process, log)
            self._all.append(backend)
        return backend

    def _wait_healthy(self, backend: _Backend) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if backend.process.poll() is not None:
                return False
            if health(backend.base_url, timeout=1.0):
                return True
            time.sleep(0.05)
        raise DeployError(f"release {backend.version} not healthy within {self.ready_timeout:g} s")

    def _stop(self, backend: _Backend) -> None:
        """SIGTERM the backend's process group, wait, then SIGKILL it."""
        process = backend.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.stop_timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers in the group, or a stuck server
        process.wait()
        backend.log.close()
        with self._lock:
            if backend in self._all:
                self._all.remove(backend)

    def close(self) -> None:
        """Stop every server process this deployer started."""
        with self._lock:
            backends = list(self._all)
        for backend in backends:
            self._stop(backend)
        self._current = self._canary = None
        self.router.switch(None)
        atexit.unregister(self.close)

    def __enter__(self) -> Deployer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
