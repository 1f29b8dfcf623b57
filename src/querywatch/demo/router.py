"""Where traffic goes: the stable backend, and a canary backend for a weighted share of users.

The load generator asks :meth:`Router.route` for every request, so changing the router is the
"traffic switch" of a deploy (what a load balancer does in production). A canary takes the users
whose bucket (a stable hash of the user id, 0 <= bucket < 100) is below its weight: a user stays
in their cohort while the weight holds, raising the weight only moves stable users to the canary,
and weight 0 sends nobody there.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Literal

Cohort = Literal["stable", "canary"]


def bucket(user_id: int) -> float:
    """The user's place in [0, 100): the same for a user on every run and every machine."""
    digest = hashlib.sha256(f"querywatch-demo-user:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


@dataclass(frozen=True)
class _Target:
    stable: tuple[str | None, str | None]  # base URL, release
    canary: tuple[str, str] | None = None
    weight: float = 0.0  # percent of users on the canary


class Router:
    """The stable backend and an optional weighted canary, swapped atomically by the deployer."""

    def __init__(self, base_url: str | None = None, version: str | None = None) -> None:
        self._lock = threading.Lock()
        self._target = _Target((base_url, version))
        self.zero_weight_at: float | None = None  # when the canary last stopped taking traffic

    @property
    def base_url(self) -> str | None:
        """The stable backend's base URL."""
        return self._target.stable[0]

    @property
    def version(self) -> str | None:
        """The stable release."""
        return self._target.stable[1]

    @property
    def canary_version(self) -> str | None:
        canary = self._target.canary
        return canary[1] if canary else None

    @property
    def weight(self) -> float:
        """The canary's share of users, in percent (0 without a canary)."""
        return self._target.weight if self._target.canary else 0.0

    def switch(self, base_url: str | None, version: str | None = None) -> None:
        """Send every user to ``base_url`` from now on (any canary is dropped)."""
        with self._lock:
            had_canary = self._target.canary is not None and self._target.weight > 0
            self._target = _Target((base_url, version))
            if had_canary:
                self.zero_weight_at = time.time()

    def set_canary(self, base_url: str, version: str, weight: float) -> None:
        """Send ``weight`` percent of users (by bucket) to ``base_url``, the rest stay stable."""
        check_weight(weight)
        with self._lock:
            self._target = _Target(self._target.stable, (base_url, version), weight)
            self.zero_weight_at = None if weight > 0 else time.time()

    def set_weight(self, weight: float) -> None:
        """Change the canary's share; 0 = the canary takes no traffic."""
        check_weight(weight)
        with self._lock:
            if self._target.canary is None:
                raise ValueError("no canary to weigh")
            before = self._target.weight
            self._target = _Target(self._target.stable, self._target.canary, weight)
            if weight == 0 and before > 0:
                self.zero_weight_at = time.time()

    def cohort(self, user_id: int) -> Cohort:
        """Which side of the rollout ``user_id`` is on right now."""
        target = self._target
        return "canary" if target.canary and bucket(user_id) < target.weight else "stable"

    def route(self, user_id: int) -> tuple[str | None, str | None]:
        """(base URL, release) that serves ``user_id``'s next request."""
        target = self._target  # one read: a consistent snapshot
        if target.canary is not None and bucket(user_id) < target.weight:
            return target.canary
        return target.stable


def check_weight(weight: float) -> None:
    if not 0 <= weight <= 100:
        raise ValueError(f"a canary weight is a percentage from 0 to 100, not {weight!r}")
