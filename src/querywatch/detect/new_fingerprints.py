"""The new-fingerprint detector: a query first seen with a deploy that takes a large share of
the database time, judged against the query it replaced when one vanished with the deploy."""

from __future__ import annotations

import math
from collections.abc import Sequence

from querywatch.detect.baseline import KeyBaseline
from querywatch.detect.comparison import Phases, W
from querywatch.detect.confidence import combine, g_high
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.wording import ms as _ms
from querywatch.detect.wording import rate as _rate
from querywatch.detect.wording import short_sql as _short
from querywatch.records import DeployMarker
from querywatch.store.base import Store


def new_fingerprint_detections(
    store: Store,
    p: Policy,
    now: float,
    seen_before: set[str],
    deploy: DeployMarker,
    ph: Phases,
    before: dict[str, KeyBaseline],
    after: dict[str, KeyBaseline],
) -> list[Detection]:
    """Fingerprints first seen with ``deploy`` that take a large share of database time, each
    paired, when it can be, with the query it replaced (gone now, about the same call rate)."""
    total_after = sum(a.total_ms for a in after.values())
    if total_after <= 0:
        return []
    covered_before = next(iter(before.values())).covered_s if before else 0.0
    if covered_before < p.min_baseline_chunks * W:
        return []  # nothing was watched before the deploy: everything would look new
    # Anything with a window before the deploy (the whole look-back read) is not new.
    candidates = [
        a
        for key, a in after.items()
        if key not in seen_before
        and a.calls >= p.new_fingerprint_min_calls
        and a.windows >= p.min_after_windows
        and (
            a.total_ms / total_after >= p.new_fingerprint_share
            or a.db_ms_per_s >= p.new_fingerprint_db_ms_per_s
        )
    ]
    if not candidates:
        return []
    # Merely rare is not new: the store remembers every fingerprint's first window.
    first_seen = {
        s.fingerprint: s.first_seen
        for s in store.top(since=ph.after_start, until=ph.after_end, limit=len(after) + 1)
    }
    candidates = [a for a in candidates if first_seen.get(a.key, ph.after_start) >= ph.before_end]
    # Queries that vanished with the deploy: a new fingerprint may only replace one of them.
    vanished = sorted(
        (b for key, b in before.items() if key not in after and b.calls >= p.min_calls_before),
        key=lambda b: -b.db_ms_per_s,
    )
    found: list[Detection] = []
    for a in sorted(candidates, key=lambda a: -a.total_ms):
        replaced = _pair(a, vanished)
        added = a.db_ms_per_s - (replaced.mean_ms * a.calls_per_s if replaced is not None else 0.0)
        ratio = a.mean_ms / replaced.mean_ms if replaced and replaced.mean_ms > 0 else None
        if replaced is not None:
            vanished.remove(replaced)
            if ratio is not None and ratio < p.min_latency_ratio:
                continue  # a rewrite of a query that costs about what the old one did
        if added < p.min_added_db_ms_per_s:
            continue
        share = a.total_ms / total_after
        factors = {
            "share": (
                max(
                    g_high(share, p.new_fingerprint_share),
                    g_high(a.db_ms_per_s, p.new_fingerprint_db_ms_per_s),
                ),
                0.4,
            ),
            "volume": (g_high(a.calls, p.new_fingerprint_min_calls), 0.2),
            "persistence": (g_high(a.windows, p.min_after_windows), 0.25),
        }
        if ratio is not None:
            factors["effect"] = (g_high(ratio, p.min_latency_ratio, 2.0), 0.15)
        tail = (
            f", replacing a query that took {_ms(replaced.mean_ms)} ms at "
            f"{_rate(replaced.calls_per_s)} calls/s"
            if replaced is not None
            else ""
        )
        found.append(
            Detection(
                kind="new_fingerprint",
                detected_at=now,
                confidence=combine(factors),
                summary=(
                    f"{_short(a.label)} is new with deploy {deploy.version} and takes "
                    f"{share:.0%} of database time ({_ms(a.mean_ms)} ms mean, "
                    f"{_rate(a.calls_per_s)} calls/s, {_ms(a.db_ms_per_s)} ms of database time "
                    f"per second){tail}"
                ),
                fingerprint=a.key,
                normalized=a.label,
                deploy_id=deploy.id,
                before=replaced.phase_stats() if replaced is not None else None,
                after=a.phase_stats(),
                added_db_ms_per_s=added,
                evidence={
                    "share_of_db_time": share,
                    "first_seen": first_seen.get(a.key),
                    "after_windows": a.windows,
                    "replaced_fingerprint": replaced.key if replaced is not None else None,
                    "replaced_normalized": replaced.label if replaced is not None else None,
                    "ratio_to_replaced": ratio,
                    **ph.as_dict(),
                },
            )
        )
    return found


def _pair(new: KeyBaseline, vanished: Sequence[KeyBaseline]) -> KeyBaseline | None:
    """The vanished query with the closest call rate (within 2x), if any: its likely source."""
    best: tuple[float, KeyBaseline] | None = None
    for b in vanished:
        if b.calls_per_s <= 0 or new.calls_per_s <= 0:
            continue
        distance = abs(math.log(new.calls_per_s / b.calls_per_s))
        if distance <= math.log(2.0) and (best is None or distance < best[0]):
            best = (distance, b)
    return best[1] if best is not None else None
