"""What the regression detectors compare: the phases around a deploy, and one key's figures
before and after with its test and control applied."""

from __future__ import annotations

import math
from dataclasses import dataclass

from querywatch.detect.baseline import KeyBaseline
from querywatch.detect.stats import MannWhitney
from querywatch.records import WINDOW_SECONDS, DeployMarker

W = WINDOW_SECONDS
SETTLE_S = 60.0
"""Windows this recent may still be written (in-app capture flushes every few seconds, a poll
lands after its bucket's end): a trailing baseline ends this long before the current bucket,
and a detector that keeps what it read (querywatch.detect.look_back) reads them again at every
pass. A writer later than that is counted when everything is read again."""


def floor_w(t: float) -> int:
    return math.floor(t / W) * W


def ceil_w(t: float) -> int:
    return math.ceil(t / W) * W


def traffic_start(deploy: DeployMarker) -> float:
    """When the new release had all the traffic: the finish if known, else the start."""
    return deploy.finished_at if deploy.finished_at is not None else deploy.started_at


@dataclass(frozen=True, slots=True)
class Phases:
    """The time ranges compared: ``[before_start, before_end)`` and ``[after_start, after_end)``.

    Windows that straddle the deploy (or fall within its rollout) belong to neither side.
    """

    before_start: float
    before_end: float
    after_start: float
    after_end: float

    def as_dict(self) -> dict[str, float]:
        return {
            "before_start": self.before_start,
            "before_end": self.before_end,
            "after_start": self.after_start,
            "after_end": self.after_end,
        }


@dataclass(slots=True)
class Comparison:
    """One fingerprint (or route) before and after, with the test and the control applied."""

    key: str
    label: str
    before: KeyBaseline
    after: KeyBaseline
    control: float = 1.0  # the others' typical slowdown (≥ 1 is applied; speed-ups are not)
    test: MannWhitney | None = None  # after divided by the control, against before
    raw_test: MannWhitney | None = None  # after as measured, against before (load membership)
    slow_chunks: int = 0  # after-chunks slower than the (controlled) threshold: persistence
    per_call: bool = False  # whether the test used per-call latencies (sketches)

    @property
    def ratio(self) -> float:
        b = self.before.mean_ms
        return self.after.mean_ms / b if b > 0 else math.inf

    @property
    def relative(self) -> float:
        return self.ratio / max(self.control, 1.0)

    @property
    def added_db_ms_per_s(self) -> float:
        """Database time the slowdown adds at the current call rate (bursts add nothing here)."""
        return self.after.calls_per_s * (self.after.mean_ms - self.before.mean_ms)


Sides = tuple[dict[str, KeyBaseline], dict[str, KeyBaseline]]
"""Baselines of every key before and after, for one pair of phases."""
