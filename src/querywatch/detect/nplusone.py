"""N+1 detection: one request issuing the same fingerprint many times.

Reads the repeat windows the WSGI/ASGI middleware writes (``Store.repeat_windows``: per route,
fingerprint and 10 s bucket, the requests that ran the fingerprint at least the capture threshold of
times, their total and maximum). A pattern is reported when enough requests repeat a fingerprint
often enough on average; a fingerprint that repeats a few times per request (a handful of lookups)
stays quiet. When the latest deploy started inside or before the lookback and the route served
requests before it without the pattern, the detection names that deploy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from querywatch.detect.model import Detection
from querywatch.records import WINDOW_SECONDS, DeployMarker, RepeatWindow
from querywatch.store.base import Store

SUMMARY_SQL_CHARS = 90


@dataclass(slots=True)
class _Pattern:
    route: str
    fingerprint: str
    normalized: str
    requests: int = 0
    total_repeats: int = 0
    max_repeats: int = 0
    windows: int = 0
    first_window: int = 0

    def add(self, w: RepeatWindow) -> None:
        if not self.windows or w.window_start < self.first_window:
            self.first_window = w.window_start
        self.requests += w.requests
        self.total_repeats += w.total_repeats
        self.max_repeats = max(self.max_repeats, w.max_repeats)
        self.windows += 1
        if not self.normalized:
            self.normalized = w.normalized

    @property
    def mean(self) -> float:
        return self.total_repeats / self.requests if self.requests else 0.0


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= SUMMARY_SQL_CHARS else sql[: SUMMARY_SQL_CHARS - 1] + "…"


HINT_PREFIX = "n_plus_one_hint:"
"""Store state an integration writes per fingerprint (``+ fingerprint id``): what the repeated
statement is in its framework's words, as JSON with ``message`` and ``fix`` (the Django app
names the model and relation loaded lazily in a loop). A detection carries it as evidence."""


def _hint(store: Store, fingerprint: str) -> dict[str, Any] | None:
    text = store.get_state(HINT_PREFIX + fingerprint)
    try:
        hint = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(hint, dict) or not isinstance(hint.get("message"), str):
        return None
    return hint


def detect_n_plus_one(
    store: Store,
    now: float,
    *,
    lookback_s: float = 60,
    min_requests: int = 3,
    min_repeats: int = 10,
    deploy: DeployMarker | None = None,
) -> list[Detection]:
    """Routes whose requests run one fingerprint ``min_repeats`` times or more on average.

    Over the repeat windows of the last ``lookback_s`` seconds, a (route, fingerprint) pair is
    reported when at least ``min_requests`` requests repeated it and those requests ran it at
    least ``min_repeats`` times each on average. ``deploy`` defaults to the store's latest; its
    id is set on a detection when the pattern appears only after it (no repeat rows for the pair
    before the deploy, while the route did serve requests before it). Most repeated first.
    """
    since = math.floor((now - lookback_s) / WINDOW_SECONDS) * WINDOW_SECONDS
    patterns: dict[tuple[str, str], _Pattern] = {}
    for w in store.repeat_windows(since=since):
        if w.window_start > now:
            continue
        key = (w.route, w.fingerprint)
        p = patterns.get(key)
        if p is None:
            p = patterns[key] = _Pattern(w.route, w.fingerprint, w.normalized)
        p.add(w)
    found = [p for p in patterns.values() if p.requests >= min_requests and p.mean >= min_repeats]
    if not found:
        return []
    if deploy is None:
        deploy = store.latest_deploy()
    requests = [r for r in store.request_windows(since=since) if r.window_start <= now]

    def served_since(route: str, start: float) -> int:
        return sum(r.requests for r in requests if r.route == route and r.window_start >= start)

    detections = []
    for p in sorted(found, key=lambda p: (-p.total_repeats, p.route, p.fingerprint)):
        normalized = p.normalized or _normalized(store, p.fingerprint, since)
        deploy_id = _introduced_by(store, p, deploy, now)
        # A pattern the deploy introduced is judged on the route's requests since the deploy:
        # the ones before it could not have shown it.
        start = since
        if deploy_id is not None and deploy is not None:
            start = max(since, math.floor(deploy.started_at / WINDOW_SECONDS) * WINDOW_SECONDS)
        served = served_since(p.route, start)
        share = min(1.0, p.requests / served) if served else None
        # Volume (how many requests show it), intensity (how far past the threshold) and
        # consistency (the share of the route's requests that do it), each 0..1.
        volume = min(1.0, math.log1p(p.requests) / math.log1p(10 * min_requests))
        # A dozen queries per request where one would do is an N+1 beyond doubt: intensity
        # saturates a little past the threshold rather than at a multiple of it.
        intensity = min(1.0, p.mean / (1.2 * min_repeats))
        consistency = share if share is not None else 0.5
        confidence = round(0.35 * volume + 0.35 * intensity + 0.3 * consistency, 3)
        span = f"since deploy {deploy.version}" if deploy_id and deploy else f"in {lookback_s:g} s"
        summary = (
            f"{p.route} runs `{_short(normalized or p.fingerprint)}` {p.mean:.0f} times per "
            f"request (max {p.max_repeats}) in {p.requests} requests {span}"
        )
        hint = _hint(store, p.fingerprint)
        if hint is not None:
            summary += f": {hint['message']}"
        detections.append(
            Detection(
                kind="n_plus_one",
                detected_at=now,
                confidence=confidence,
                summary=summary,
                fingerprint=p.fingerprint,
                normalized=normalized or None,
                route=p.route,
                deploy_id=deploy_id,
                evidence={
                    "requests": p.requests,
                    "route_requests": served,
                    "share_of_route_requests": share,
                    "total_repeats": p.total_repeats,
                    "mean_repeats": round(p.mean, 2),
                    "max_repeats": p.max_repeats,
                    "windows": p.windows,
                    "first_window": p.first_window,
                    "lookback_s": lookback_s,
                    **({"framework": hint} if hint is not None else {}),
                },
            )
        )
    return detections


def _normalized(store: Store, fingerprint: str, since: float) -> str:
    """The fingerprint's text from its statement windows (a repeat row may predate it)."""
    for w in store.statement_windows(fingerprint, since=since):
        if w.normalized:
            return w.normalized
    return ""


def _introduced_by(
    store: Store, p: _Pattern, deploy: DeployMarker | None, now: float
) -> str | None:
    """The deploy's id when the route ran fine before it and the pattern only after it."""
    if deploy is None or deploy.started_at > now:
        return None
    start = math.floor(deploy.started_at / WINDOW_SECONDS) * WINDOW_SECONDS
    if p.first_window < start:
        return None
    if store.repeat_windows(route=p.route, fingerprint=p.fingerprint, until=start):
        return None
    # Without traffic on the route before the deploy there is nothing to compare with.
    if not store.request_windows(p.route, until=start):
        return None
    return deploy.id
