"""What a deploy did: database time before and after, the queries that got slower, the new ones.

The phases are the detector's own (:meth:`Detector.deploy_phases`: 30 min before the deploy,
up to 15 min after its traffic started). The before side is read in the store's whole slots
(5 min, or an hour for a deploy older than the 10 s windows are kept) ending at the last slot
boundary before the deploy; the after side exactly (a fresh deploy's first minutes are when
people look), for the queries whose covering slots cost the most and those born with it. Each
query's before/after is a :class:`~querywatch.detect.comparison.Comparison`, judged by the
policy's gates (enough calls on both sides, ``min_latency_ratio`` slower,
``min_added_db_ms_per_s`` added) without the rank test, which needs the per-chunk latencies the
rollups do not keep.

The list of deploys asks only for the slower and the new queries (``full=False``: the after
side's costly queries, then their before); a deploy's own page also for the biggest changes
either way. An effect whose after phase is over never changes, so it is remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from querywatch.detect.baseline import KeyBaseline
from querywatch.detect.comparison import Comparison, Phases
from querywatch.detect.policy import Policy
from querywatch.detect.regression import Detector
from querywatch.records import DeployMarker
from querywatch.store import rollup_reads
from querywatch.store.base import Store, Tx

CHANGES_SHOWN = 15
NEW_SHOWN = 15
CANDIDATES = 50  # queries whose exact after-figures are read, by their covering slots' time
MAX_BORN = 500  # new queries looked at per deploy
_REMEMBERED = 512
_ALL_OF_IT = 10**12  # one bucket covering any range


@dataclass(slots=True)
class NewQuery:
    fingerprint: str
    normalized: str
    calls: int
    mean_ms: float
    db_ms_per_s: float


@dataclass(slots=True)
class Effect:
    deploy: DeployMarker
    phases: Phases | None  # None: the new release has had no traffic to judge yet
    db_before: float | None = None  # ms of database time per second of data
    db_after: float | None = None
    slower: list[Comparison] = field(default_factory=list)  # passed the policy's gates
    changes: list[Comparison] = field(default_factory=list)  # the biggest either way
    new: list[NewQuery] = field(default_factory=list)
    new_total: int = 0
    complete: bool = False  # the after phase is over: the figures will not change

    @property
    def db_ratio(self) -> float | None:
        if self.db_before is None or self.db_after is None or not self.db_before:
            return None
        return self.db_after / self.db_before


class _Remembered:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.effects: OrderedDict[tuple[int, str, bool], Effect] = OrderedDict()


_MEMORY = _Remembered()


def deploy_effect(
    store: Store,
    deploy: DeployMarker,
    now: float,
    *,
    environment: str | None = None,
    policy: Policy | None = None,
    full: bool = True,
) -> Effect:
    """The effect of ``deploy`` as the store shows it at ``now``."""
    key = (id(store), deploy.id, full)
    with _MEMORY.lock:
        known = _MEMORY.effects.get(key)
        if known is not None and known.deploy == deploy:
            _MEMORY.effects.move_to_end(key)
            return known
    p = policy or Policy()
    phases = Detector(store, p, environment=environment).deploy_phases(deploy, now)
    if phases.after_end <= phases.after_start:
        return Effect(deploy, None)
    effect = store.transaction(lambda tx: _measure(tx, deploy, phases, now, p, full), write=False)
    if effect.complete:
        with _MEMORY.lock:
            _MEMORY.effects[key] = effect
            while len(_MEMORY.effects) > _REMEMBERED:
                _MEMORY.effects.popitem(last=False)
    return effect


def _measure(
    tx: Tx, deploy: DeployMarker, exact: Phases, now: float, p: Policy, full: bool
) -> Effect:
    g = rollup_reads.whole_grain(tx, exact.before_start)
    # Before: whole slots that end before the deploy started (none of its traffic in them).
    before_hi = int(exact.before_end) // g * g
    before_lo = min(before_hi - g, _ceil(exact.before_start, g))
    # After: exact (a fresh deploy's first minutes matter most), candidates from covering slots.
    after_lo, after_hi = exact.after_start, exact.after_end
    ph = Phases(before_lo, before_hi, after_lo, after_hi)
    effect = Effect(deploy, ph, complete=after_hi <= now - 60)
    before_s = before_hi - before_lo
    after_s = max(min(after_hi, now) - after_lo, 1.0)
    effect.db_before = _db_rate(tx, before_lo, before_hi)
    effect.db_after = _db_rate(tx, after_lo, after_hi)
    wide_lo = int(after_lo) // g * g
    wide_hi = max(_ceil(after_hi, g), wide_lo + g)
    born = set(rollup_reads.first_seen_between(tx, before_lo, after_hi))
    if full:
        covering = rollup_reads.slot_totals(tx, g, wide_lo, wide_hi)
        before = rollup_reads.slot_totals(tx, g, before_lo, before_hi)
        wanted = {fp for fp in _most(covering, CANDIDATES)} | (born & set(covering))
        wanted |= set(_most(before, CHANGES_SHOWN))
    else:  # what could pass the gates (its covering slots hold the gate's time), and the born
        floor = p.min_added_db_ms_per_s * after_s
        wanted = set(rollup_reads.heavy_in_slots(tx, g, wide_lo, wide_hi, floor))
        if born:  # born and called after it (a young store's first deploy: at most MAX_BORN)
            ran = set(rollup_reads.heavy_in_slots(tx, g, wide_lo, wide_hi, 0.0))
            wanted |= set(sorted(born & ran)[:MAX_BORN])
        before = rollup_reads.slot_figures(tx, sorted(wanted), g, before_lo, before_hi)
    after = {
        fp: (f.calls, f.total_ms)
        for fp, f in rollup_reads.figures(tx, sorted(wanted), after_lo, after_hi).items()
    }
    # Added time per query, in plain arithmetic first: Comparisons only for what is shown.
    added = {
        fp: (a[0] / after_s) * (a[1] / a[0] - before[fp][1] / before[fp][0])
        for fp, a in after.items()
        if fp in before and before[fp][0] and a[0]
    }

    def compare(fp: str) -> Comparison:
        b, a = before[fp], after[fp]
        return Comparison(
            fp,
            "",
            _baseline(fp, b, before_lo, before_hi, before_s),
            _baseline(fp, a, after_lo, after_hi, after_s),
        )

    slower = sorted(
        (
            c
            for c in (compare(fp) for fp, x in added.items() if x >= p.min_added_db_ms_per_s)
            if _passes(c, p)
        ),
        key=lambda c: -c.added_db_ms_per_s,
    )
    biggest = sorted(added, key=lambda fp: -abs(added[fp]))[:CHANGES_SHOWN] if full else []
    changes = [compare(fp) for fp in biggest]
    new = sorted(
        (
            NewQuery(fp, "", a[0], a[1] / a[0], a[1] / after_s)
            for fp, a in after.items()
            if fp in born and fp not in before and a[0] >= p.new_fingerprint_min_calls
        ),
        key=lambda n: -n.db_ms_per_s,
    )
    texts = rollup_reads.texts(
        tx, sorted({c.key for c in (*slower, *changes)} | {n.fingerprint for n in new[:NEW_SHOWN]})
    )
    for c in (*slower, *changes):
        c.label = texts.get(c.key, ("",))[0]
    for n in new:
        n.normalized = texts.get(n.fingerprint, ("",))[0]
    effect.slower, effect.changes = slower, changes
    effect.new_total, effect.new = len(new), new[:NEW_SHOWN]
    return effect


def _passes(c: Comparison, p: Policy) -> bool:
    """The detector's gates on calls, slowdown and added time (not its rank test)."""
    return (
        c.before.calls >= p.min_calls_before
        and c.after.calls >= p.min_calls_after
        and c.before.mean_ms > 0
        and c.ratio >= p.min_latency_ratio
        and c.added_db_ms_per_s >= p.min_added_db_ms_per_s
    )


def _baseline(
    fp: str, figures: tuple[int, float], start: float, end: float, seconds: float
) -> KeyBaseline:
    return KeyBaseline(
        key=fp,
        label="",
        start=start,
        end=end,
        covered_s=max(seconds, 0.0),
        windows=0,
        calls=figures[0],
        total_ms=figures[1],
        chunk_means=(),
        chunk_calls=(),
        sketch=None,
    )


def _db_rate(tx: Tx, since: float, until: float) -> float | None:
    _, buckets = rollup_reads.totals(tx, since, until, _ALL_OF_IT)
    calls, total_ms, seconds = 0, 0.0, 0
    for c, t, _, s in buckets.values():
        calls, total_ms, seconds = calls + c, total_ms + t, seconds + s
    return total_ms / seconds if seconds else None


def _most(figures: dict[str, tuple[int, float]], n: int) -> list[str]:
    """The ``n`` fingerprints with the most database time."""
    return sorted(figures, key=lambda fp: -figures[fp][1])[:n]


def _ceil(t: float, grain: int) -> int:
    return -(-int(t) // grain) * grain
